//! The degraded mode: Landlock + seccomp where user namespaces are unavailable.
//!
//! Only with [`crate::SandboxBuilder::allow_degraded_isolation`], and only when the host refuses
//! user namespaces (a container's seccomp profile, `user.max_user_namespaces=0`, AppArmor's
//! userns restriction) or a new /proc in them (a container's masked /proc, a filter that refuses
//! mount); [`super::container`] tells which. Without the opt-in such a host gets an error that
//! names the setting.
//!
//! What still holds: the program's view of the filesystem is confined by Landlock to the system
//! directories, /etc and /dev's basic nodes (read-only), the user's mounts (as mounted), and a
//! private per-run directory that stands in for /tmp; Landlock scopes keep its signals and
//! abstract unix sockets inside the sandbox; seccomp applies the default filter plus a ban on
//! `socket` (no network, not even unix sockets; `socketpair` still works) and on SysV IPC (which
//! would be the host's), and refuses every call that changes another process's scheduling, I/O
//! priority or limits by pid (`own_process_rules` in seccomp.rs: host processes of the same uid,
//! the caller included, would otherwise be reachable); no_new_privs; a caller running as root
//! runs the program as uid 65534 with an empty bounding set; the init kills every process of the
//! run when the program ends. The stand-in for /tmp has a random name and is made so that no
//! entry planted by another user is used or followed ([`RunDir::create`]).
//!
//! What is lost, listed in every result's `degraded`: no pid namespace (the program sees host
//! pids, though not /proc), no mount namespace (host paths only: a mount must keep its host path,
//! and /tmp is a host directory without a size bound), no network namespace (the socket ban
//! replaces it), the host's hostname, no cgroup namespace, and for an unprivileged caller the
//! program keeps the caller's uid (so DAC lets it read what the caller may, within the Landlock
//! rules) and a full (but unusable: no capabilities, no_new_privs) bounding set.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
/// `lost` is what full isolation lacks here and why ("user namespaces unavailable (CAUSE)"), the
/// first note of every result; `missing` names it in the refusal when the degraded mode cannot
/// run either.
pub(crate) fn prepare(
    policy: &Policy,
    lost: &str,
    missing: &'static str,
    system_dirs: &[String],
) -> Result<Degraded> {
    let abi = super::landlock::kernel_abi();
    if abi < NEEDED_ABI {
        return Err(Error::HostUnsupported {
            missing,
            cause: format!(
                "{lost}; the degraded mode needs Landlock ABI {NEEDED_ABI} (Linux 6.12) to keep \
                 signals inside the sandbox, and this kernel has {}",
                if abi == 0 {
                    "no Landlock".to_string()
                } else {
                    format!("ABI {abi}")
                }
            ),
            fix: format!(
                "give the sandbox {missing} (see the cause), or use Linux 6.12+ with Landlock \
                 enabled"
            ),
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
        format!("{lost}: Landlock + seccomp only"),
        "no pid namespace: host pids are visible to kill/ptrace checks (Landlock scopes and \
         seccomp stop both); /proc is not readable; setpriority, sched_setaffinity, \
         sched_setscheduler, ioprio_set and prlimit work on the program itself (pid 0) only, \
         so pinning or renicing a thread by its tid fails with EPERM"
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
    /// (st_dev, st_ino) of the directory made, so that the drop removes only that one.
    id: Option<(u64, u64)>,
}

/// How many names [`RunDir::create`] tries before it gives up. A random name collides only with
/// an entry someone planted after seeing it, so this bounds a loop, not a likely case.
const NAME_ATTEMPTS: usize = 16;

/// `nanobox-run-` and 128 random bits in hex: nothing another local user can predict.
fn random_name() -> Result<String> {
    let mut raw = [0u8; 16];
    let mut done = 0;
    while done < raw.len() {
        match rustix::rand::getrandom(&mut raw[done..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(Error::io("choosing the run directory's name", e.into())),
        }
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("nanobox-run-{hex}"))
}

impl RunDir {
    /// Make a fresh directory with an unpredictable name in `base`, mode 0700, owned by `owner`
    /// (uid and gid) when given. Never follows or reuses an entry that is already there.
    pub(crate) fn create(base: &Path, owner: Option<u32>) -> Result<RunDir> {
        Self::create_named(base, owner, random_name)
    }

    /// [`RunDir::create`] with the names `next` gives, tried in turn.
    fn create_named(
        base: &Path,
        owner: Option<u32>,
        mut next: impl FnMut() -> Result<String>,
    ) -> Result<RunDir> {
        use rustix::fs::{Mode, OFlags};
        let io = |what: &str, e: rustix::io::Errno| {
            Error::io(format!("{what} in {}", base.display()), e.into())
        };
        let base_fd = rustix::fs::open(
            base,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io("opening the base of the run directory", e))?;
        for _ in 0..NAME_ATTEMPTS {
            let name = next()?;
            // mkdir follows no symlink and fails on any existing entry; 0700 from the start (the
            // umask can only take bits away), so no one else can open it at any time.
            match rustix::fs::mkdirat(&base_fd, name.as_str(), Mode::RWXU) {
                Ok(()) => {}
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(io("creating the run directory", e)),
            }
            let path = base.join(&name);
            // Everything else through a descriptor of what was made, opened without following a
            // symlink: the entry cannot have been swapped in a sticky /tmp, but `base` may be
            // another directory. A directory that is not ours is refused, not used.
            let fd = rustix::fs::openat(
                &base_fd,
                name.as_str(),
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io("opening the new run directory", e))?;
            let st = rustix::fs::fstat(&fd).map_err(|e| io("checking the run directory", e))?;
            if st.st_uid != rustix::process::geteuid().as_raw() {
                return Err(Error::io(
                    format!("creating the run directory {}", path.display()),
                    std::io::Error::other("it was replaced by another user's directory"),
                ));
            }
            let dir = RunDir {
                path,
                id: Some((st.st_dev, st.st_ino)),
            };
            // Exactly 0700, whatever the umask took away from the owner.
            rustix::fs::fchmod(&fd, Mode::RWXU)
                .map_err(|e| io("restricting the run directory", e))?;
            if let Some(uid) = owner {
                let id = Some(rustix::process::Uid::from_raw(uid));
                let gid = Some(rustix::process::Gid::from_raw(uid));
                rustix::fs::fchown(&fd, id, gid)
                    .map_err(|e| io("handing the run directory to the sandbox user", e))?;
            }
            return Ok(dir);
        }
        Err(Error::io(
            format!("creating the run directory in {}", base.display()),
            std::io::Error::other(format!(
                "{NAME_ATTEMPTS} random names were all taken: someone is planting entries"
            )),
        ))
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
        // Only the directory this run made: if something else stands at its name now, it is
        // left alone.
        let made = self.id.is_some_and(|id| {
            std::fs::symlink_metadata(&self.path)
                .is_ok_and(|m| m.is_dir() && (m.dev(), m.ino()) == id)
        });
        if made {
            // remove_dir_all does not follow symlinks the program may have left.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A base directory of the test's own, removed on drop.
    struct Base(PathBuf);

    impl Base {
        fn new(tag: &str) -> Base {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "nanobox-rundir-test-{}-{}-{tag}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir(&p).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o1777)).unwrap();
            Base(p)
        }
    }

    impl Drop for Base {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn root() -> bool {
        rustix::process::geteuid().is_root()
    }

    /// Hand a planted entry to "another user" (uid 65534) when the test can (as root).
    fn plant_as_other(p: &Path) {
        if root() {
            std::os::unix::fs::lchown(p, Some(65534), Some(65534)).unwrap();
        }
    }

    /// (mode, uid, names inside) of a directory.
    fn look(p: &Path) -> (u32, u32, Vec<std::ffi::OsString>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        (m.permissions().mode() & 0o7777, m.uid(), names)
    }

    #[test]
    fn run_directories_get_128_random_bits_mode_0700_and_the_owner_asked_for() {
        let base = Base::new("random");
        let a = RunDir::create(&base.0, None).unwrap();
        let b = RunDir::create(&base.0, None).unwrap();
        assert_ne!(a.path, b.path);
        for d in [&a, &b] {
            assert_eq!(d.path.parent(), Some(base.0.as_path()));
            let name = d.path.file_name().unwrap().to_str().unwrap();
            let hex = name.strip_prefix("nanobox-run-").unwrap();
            assert!(
                hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
                "{name}"
            );
            let (mode, uid, inside) = look(&d.path);
            assert_eq!(mode, 0o700, "{name}");
            assert_eq!(uid, rustix::process::geteuid().as_raw());
            assert!(inside.is_empty());
        }
        if root() {
            let c = RunDir::create(&base.0, Some(65534)).unwrap();
            let m = std::fs::metadata(&c.path).unwrap();
            assert_eq!(
                (m.uid(), m.gid(), m.permissions().mode() & 0o7777),
                (65534, 65534, 0o700)
            );
        } else {
            eprintln!("the chown to the sandbox user is checked only as root (it needs CAP_CHOWN)");
        }
    }

    #[test]
    fn planted_entries_are_skipped_never_followed_or_changed() {
        let base = Base::new("planted");
        let target = Base::new("target");
        std::fs::set_permissions(&target.0, std::fs::Permissions::from_mode(0o777)).unwrap();
        plant_as_other(&target.0);
        let b = |n: &str| base.0.join(n);
        std::fs::create_dir(b("dir")).unwrap();
        std::fs::set_permissions(b("dir"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink(&target.0, b("link")).unwrap();
        std::os::unix::fs::symlink(target.0.join("new"), b("dangling")).unwrap();
        std::fs::write(b("file"), "planted\n").unwrap();
        for n in ["dir", "link", "dangling", "file"] {
            plant_as_other(&b(n));
        }
        let before = (look(&b("dir")), look(&target.0));
        let mut names = ["dir", "link", "dangling", "file", "fresh"].into_iter();
        let mut tried = 0;
        let owner = root().then_some(65534);
        let d = RunDir::create_named(&base.0, owner, || {
            tried += 1;
            Ok(names.next().unwrap().to_string())
        })
        .unwrap();
        assert_eq!(tried, 5);
        assert_eq!(d.path, b("fresh"));
        let (mode, uid, _) = look(&d.path);
        assert_eq!(mode, 0o700);
        assert_eq!(
            uid,
            owner.unwrap_or_else(|| rustix::process::geteuid().as_raw())
        );
        // Nothing was made, chmod'ed or chown'ed through the planted entries.
        assert_eq!((look(&b("dir")), look(&target.0)), before);
        assert!(!target.0.join("new").exists());
        assert_eq!(std::fs::read_link(b("link")).unwrap(), target.0);
        assert_eq!(std::fs::read_to_string(b("file")).unwrap(), "planted\n");
    }

    #[test]
    fn a_base_where_every_name_is_taken_fails_the_run_after_a_bounded_number_of_tries() {
        let base = Base::new("taken");
        let target = Base::new("taken-target");
        std::os::unix::fs::symlink(&target.0, base.0.join("taken")).unwrap();
        let mut tried = 0;
        let e = RunDir::create_named(&base.0, None, || {
            tried += 1;
            Ok("taken".to_string())
        })
        .unwrap_err();
        assert_eq!(tried, NAME_ATTEMPTS);
        assert!(e.to_string().contains("taken"), "{e}");
        assert!(std::fs::symlink_metadata(base.0.join("taken"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(look(&target.0).2.is_empty());
    }

    #[test]
    fn the_drop_removes_the_run_directory_only_and_follows_no_link() {
        let base = Base::new("drop");
        let outside = Base::new("outside");
        std::fs::write(outside.0.join("keep"), "host\n").unwrap();
        let d = RunDir::create(&base.0, None).unwrap();
        let path = d.path.clone();
        std::fs::create_dir(path.join("sub")).unwrap();
        std::fs::write(path.join("sub/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside.0, path.join("out")).unwrap();
        std::os::unix::fs::symlink(outside.0.join("keep"), path.join("sub/keep")).unwrap();
        drop(d);
        assert!(!path.exists());
        assert_eq!(
            std::fs::read_to_string(outside.0.join("keep")).unwrap(),
            "host\n"
        );
        // A directory put in its place is not the run's: left alone.
        let d = RunDir::create(&base.0, None).unwrap();
        let path = d.path.clone();
        std::fs::rename(&path, base.0.join("moved")).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("theirs"), "x").unwrap();
        drop(d);
        assert!(path.join("theirs").exists());
        assert!(base.0.join("moved").is_dir());
    }

    #[test]
    fn tmp_paths_are_rewritten_to_the_run_directory_only_at_component_boundaries() {
        let d = RunDir {
            path: PathBuf::from("/var/tmp/nanobox-run-1-0"),
            id: None,
        };
        assert_eq!(d.rewrite("/tmp"), "/var/tmp/nanobox-run-1-0");
        assert_eq!(d.rewrite("/tmp/a/b"), "/var/tmp/nanobox-run-1-0/a/b");
        assert_eq!(d.rewrite("/tmpfoo"), "/tmpfoo");
        assert_eq!(d.rewrite("/usr/tmp"), "/usr/tmp");
    }
}
