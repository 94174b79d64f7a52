//! The degraded mode: Landlock + seccomp where user namespaces are unavailable.
//!
//! Only with [`crate::SandboxBuilder::allow_degraded_isolation`], and only when the host refuses
//! user namespaces (a container's seccomp profile, `user.max_user_namespaces=0`, AppArmor's
//! userns restriction). Without the opt-in such a host gets an error that names the setting.
//!
//! What still holds: the program's view of the filesystem is confined by Landlock to the system
//! directories, /etc and /dev's basic nodes (read-only), the user's mounts (as mounted), and a
//! private per-run directory that stands in for /tmp; Landlock scopes keep its signals and
//! abstract unix sockets inside the sandbox; seccomp applies the default filter plus a ban on
//! `socket` (no network, not even unix sockets; `socketpair` still works) and on SysV IPC (which
//! would be the host's); no_new_privs; a caller running as root runs the program as uid 65534
//! with an empty bounding set; the init kills every process of the run when the program ends.
//!
//! What is lost, listed in every result's `degraded`: no pid namespace (the program sees host
//! pids, though not /proc), no mount namespace (host paths only: a mount must keep its host path,
//! and /tmp is a host directory without a size bound), no network namespace (the socket ban
//! replaces it), the host's hostname, no cgroup namespace, and for an unprivileged caller the
//! program keeps the caller's uid (so DAC lets it read what the caller may, within the Landlock
//! rules) and a full (but unusable: no capabilities, no_new_privs) bounding set.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::landlock::{HostRule, Layer};
use crate::error::{Error, Result};
use crate::policy::{Policy, SeccompPolicy};

/// The Landlock ABI the degraded mode needs: scoped signals and abstract unix sockets (6.12+).
pub(crate) const NEEDED_ABI: i32 = 6;

/// Syscalls the degraded mode denies on top of the default filter: without namespaces, sockets
/// and SysV IPC would be the host's.
pub(crate) const EXTRA_DENIED: &[&str] = &[
    "socket",
    "shmget",
    "shmat",
    "shmctl",
    "shmdt",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "semget",
    "semop",
    "semctl",
    "semtimedop",
    // Acts on another (dying) process through a pidfd the argument filter cannot look into;
    // never useful on the program itself. The rest of that class: `own_process_rules` in
    // seccomp.rs.
    "process_mrelease",
];

/// Whether a user namespace can be created here; the error names the setting that refuses it.
pub(crate) fn userns_available() -> Result<()> {
    let mask = super::userns::block_all_signals();
    // SAFETY: the child only calls _exit, which is async-signal-safe.
    let cloned = unsafe { super::userns::clone_pidfd(libc::CLONE_NEWUSER as u64, None) };
    if let Ok((0, _)) = cloned {
        // SAFETY: child side: end at once.
        unsafe { libc::_exit(0) };
    }
    super::userns::restore_signals(&mask);
    match cloned {
        Ok((_, Some(pidfd))) => {
            let _ = super::userns::wait_pidfd(&pidfd);
            Ok(())
        }
        Ok((_, None)) => Ok(()),
        Err(e) => Err(super::userns::diagnose_clone_error(e)),
    }
}

/// What a degraded sandbox keeps from its build.
#[derive(Debug)]
pub(crate) struct Degraded {
    pub layer: Layer,
    /// Why the full isolation is not available, and what is weaker because of it.
    pub notes: Vec<String>,
    /// Where per-run directories are made.
    pub run_base: PathBuf,
    pub root_caller: bool,
}

/// Check that `policy` can be honoured without namespaces, and prepare the layer.
pub(crate) fn prepare(policy: &Policy, why: &Error, system_dirs: &[String]) -> Result<Degraded> {
    let abi = super::landlock::kernel_abi();
    if abi < NEEDED_ABI {
        return Err(Error::HostUnsupported {
            missing: "user namespaces, and Landlock ABI 6 for the degraded mode",
            cause: format!(
                "{why}; the degraded mode needs Landlock ABI {NEEDED_ABI} (Linux 6.12) to keep \
                 signals inside the sandbox, and this kernel has {}",
                if abi == 0 {
                    "no Landlock".to_string()
                } else {
                    format!("ABI {abi}")
                }
            ),
            fix: "enable user namespaces (see the cause), or use Linux 6.12+ with Landlock enabled"
                .into(),
        });
    }
    for m in &policy.mounts {
        if m.sandbox != m.host_canonical {
            return Err(Error::HostUnsupported {
                missing: "a mount namespace (the degraded mode has none)",
                cause: format!(
                    "{} cannot be placed at {}: without a mount namespace the program sees host \
                     paths",
                    m.host.display(),
                    m.sandbox.display()
                ),
                fix: format!(
                    "mount it at its host path ({}), or enable user namespaces",
                    m.host_canonical.display()
                ),
            });
        }
    }
    if matches!(policy.network, crate::policy::Network::Allowlist(_)) {
        return Err(Error::HostUnsupported {
            missing: "a network namespace (the degraded mode has none)",
            cause: "the network allowlist serves its proxy on the sandbox's own loopback, and the \
                    degraded mode refuses every socket instead"
                .into(),
            fix: "enable user namespaces, or run without allow_network".into(),
        });
    }
    if policy.hostname != crate::policy::DEFAULT_HOSTNAME {
        return Err(Error::HostUnsupported {
            missing: "a UTS namespace (the degraded mode has none)",
            cause: "the hostname cannot be set: the program sees the host's".into(),
            fix: "leave the hostname unset, or enable user namespaces".into(),
        });
    }
    let mut rules = super::landlock::host_rules(policy, system_dirs);
    for d in super::plan::DEVICES {
        let p = Path::new("/dev").join(d);
        if *d != "tty" && p.exists() {
            rules.push(HostRule {
                path: p,
                writable: true,
            });
        }
    }
    let layer = Layer::for_host_paths(&rules, true)?;
    let root_caller = rustix::process::geteuid().is_root();
    let mut notes = vec![
        format!("user namespaces unavailable ({why}): Landlock + seccomp only"),
        "no pid namespace: host pids are visible to kill/ptrace checks (Landlock scopes and \
         seccomp stop both); /proc is not readable"
            .to_string(),
        "no mount namespace: the program sees host paths; /tmp is a private host directory \
         without a size bound"
            .to_string(),
        "no network namespace: socket() is refused, TCP bind/connect denied by Landlock"
            .to_string(),
        "no IPC, UTS or cgroup namespace: SysV IPC is refused; the hostname is the host's, and \
         so are /etc/hostname, /etc/hosts and /etc/machine-id"
            .to_string(),
    ];
    if !root_caller {
        notes.push(
            "the program runs as the caller's uid (no uid change without a user namespace)"
                .to_string(),
        );
    }
    Ok(Degraded {
        layer,
        notes,
        run_base: std::env::temp_dir(),
        root_caller,
    })
}

/// The seccomp policy of a degraded run.
pub(crate) fn seccomp_policy(p: &SeccompPolicy) -> SeccompPolicy {
    p.clone().deny(EXTRA_DENIED)
}

/// The private directory that stands in for /tmp in one degraded run; removed with the run.
#[derive(Debug)]
pub(crate) struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub(crate) fn create(base: &Path, owner: Option<u32>) -> Result<RunDir> {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = base.join(format!(
            "nanobox-run-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let io = |e| Error::io(format!("creating the run directory {}", path.display()), e);
        std::fs::create_dir(&path).map_err(io)?;
        let dir = RunDir { path };
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("restricting the run directory", e))?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&dir.path, Some(uid), Some(uid))
                .map_err(|e| Error::io("handing the run directory to the sandbox user", e))?;
        }
        Ok(dir)
    }

    /// `value` with a leading `/tmp` replaced by this directory.
    pub(crate) fn rewrite(&self, value: &str) -> String {
        match value.strip_prefix("/tmp") {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                format!("{}{rest}", self.path.display())
            }
            _ => value.to_string(),
        }
    }

    /// The program's environment for this run: `HOME`, `PWD` and `TMPDIR` moved from /tmp to this
    /// directory, and `TMPDIR` set to it when the policy has none.
    pub(crate) fn env(&self, env: &[(String, String)]) -> Result<Vec<CString>> {
        let mut out = Vec::with_capacity(env.len() + 1);
        for (k, v) in env {
            let v = if matches!(k.as_str(), "HOME" | "PWD" | "TMPDIR") {
                self.rewrite(v)
            } else {
                v.clone()
            };
            out.push(super::userns::cstr_of(
                "env",
                format!("{k}={v}").as_bytes(),
            )?);
        }
        if !env.iter().any(|(k, _)| k == "TMPDIR") {
            let mut t = b"TMPDIR=".to_vec();
            t.extend_from_slice(self.path.as_os_str().as_bytes());
            out.push(super::userns::cstr_of("env", &t)?);
        }
        Ok(out)
    }

    pub(crate) fn cstring(&self, value: &str) -> Result<CString> {
        super::userns::cstr_of("working_dir", self.rewrite(value).as_bytes())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks the program may have left.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_paths_are_rewritten_to_the_run_directory_only_at_component_boundaries() {
        let d = RunDir {
            path: PathBuf::from("/var/tmp/nanobox-run-1-0"),
        };
        assert_eq!(d.rewrite("/tmp"), "/var/tmp/nanobox-run-1-0");
        assert_eq!(d.rewrite("/tmp/a/b"), "/var/tmp/nanobox-run-1-0/a/b");
        assert_eq!(d.rewrite("/tmpfoo"), "/tmpfoo");
        assert_eq!(d.rewrite("/usr/tmp"), "/usr/tmp");
        std::mem::forget(d);
    }
}
