//! Landlock: a second filesystem layer, independent of the mount namespace.
//!
//! The mounts decide what the program can see; Landlock decides, again and separately, what it
//! may do with what it sees: read and execute the system directories, /etc and read-only mounts;
//! read and write read-write mounts, /tmp and /dev/shm; read and write the device nodes of /dev;
//! read /proc; list the sandbox's root. A mistake in the mount setup alone therefore does not open
//! the host: a host directory that ended up in the view without a rule is not readable, and a
//! read-only mount that ended up writable is still not writable.
//!
//! The rules come in two halves. Host directories (system dirs, /etc, the user's mounts) are
//! opened once, when the sandbox is built, without following symlinks, and every run adds them to
//! a fresh ruleset in the caller (with the `landlock` crate). Rules attach to inodes, so they hold
//! for the same directories bind-mounted into the sandbox. The sandbox's own filesystems (/tmp,
//! /dev, /proc, the root, and /etc, an overlay whose inodes are not the host's) only exist after
//! the mounts, so the init adds them: it opens each path,
//! checks that it is the kind of filesystem it created (tmpfs, proc), and adds the rule with a
//! raw `landlock_add_rule`, since nothing that allocates may run between clone and exec. The
//! program enforces the ruleset (`landlock_restrict_self`) after `no_new_privs`, before seccomp.
//!
//! The layer uses the newest Landlock ABI up to [`MAX_ABI`] that the kernel offers, and
//! exactly the rights of that ABI (never silently fewer): scopes (ABI 6) confine signals and
//! abstract unix sockets to the sandbox as well.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::OnceLock;

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope, ABI,
};

use super::sys::open_no_symlinks as open_beneath;
use crate::error::{Error, Result};
use crate::policy::{Permission, Policy};

/// The newest Landlock ABI this layer knows how to use.
pub(crate) const MAX_ABI: i32 = 6;

/// The ABI version of the running kernel, 0 when Landlock is missing or disabled.
pub(crate) fn kernel_abi() -> i32 {
    static ABI_VERSION: OnceLock<i32> = OnceLock::new();
    *ABI_VERSION.get_or_init(|| {
        // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) takes no
        // pointer and only returns the ABI version (or -1).
        let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) };
        v.max(0) as i32
    })
}

/// What a run without the Landlock layer lists in its result's `degraded`.
pub(crate) const MISSING_NOTE: &str =
    "no Landlock layer: this kernel has no Landlock, so the namespaces alone confine the \
     filesystem (allowed by allow_degraded_isolation)";

/// The LSMs this kernel runs, as its securityfs lists them.
pub(crate) fn active_lsms() -> Option<String> {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .ok()
        .map(|s| s.trim().to_string())
}

/// The refusal of a namespaced run on a kernel without Landlock.
pub(crate) fn missing_error() -> Error {
    let lsms = match active_lsms() {
        Some(l) => format!("this kernel runs the LSMs [{l}], without landlock"),
        None => "this kernel answers that Landlock is not available (not built in, or not in \
                 its lsm= list)"
            .to_string(),
    };
    Error::HostUnsupported {
        missing: "Landlock (the second filesystem layer of every run)",
        cause: lsms,
        fix: "add landlock to the lsm= boot parameter (Linux 5.13+), or allow the namespaces \
              alone with allow_degraded_isolation() (CLI: --allow-degraded-isolation)"
            .into(),
    }
}

fn abi_of(v: i32) -> ABI {
    ABI::from(v.min(MAX_ABI))
}

/// Read and list: what read-only places allow.
fn read_rights(abi: ABI) -> BitFlags<AccessFs> {
    (AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute) & AccessFs::from_all(abi)
}

/// Everything but creating device nodes: what writable places allow.
fn write_rights(abi: ABI) -> BitFlags<AccessFs> {
    AccessFs::from_all(abi) & !(AccessFs::MakeChar | AccessFs::MakeBlock)
}

/// The rights a rule on a regular file may carry (directory rights are refused there).
fn file_rights(abi: ABI) -> BitFlags<AccessFs> {
    AccessFs::from_file(abi)
}

/// A rule the init adds for a filesystem of the sandbox's own making.
pub(crate) struct LocalRule {
    pub path: &'static CStr,
    /// The filesystem the path must be on (statfs f_type), so that a rule never lands on a host
    /// directory by mistake.
    pub fs_magic: i64,
    pub access: u64,
}

const TMPFS_MAGIC: i64 = 0x0102_1994;
const PROC_MAGIC: i64 = 0x9fa0;
const OVERLAYFS_MAGIC: i64 = 0x794c_7630;

/// One prepared layer: the host half of the rules and the rights of the local half.
pub(crate) struct Layer {
    abi: i32,
    host_rules: Vec<(OwnedFd, BitFlags<AccessFs>)>,
    /// Handle TCP bind and connect with no rule (for a run without a network namespace).
    deny_tcp: bool,
    local: Vec<LocalRule>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("abi", &self.abi)
            .field("host_rules", &self.host_rules.len())
            .finish_non_exhaustive()
    }
}

/// Where the rules point: a host path and the rights beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostRule {
    pub path: std::path::PathBuf,
    pub writable: bool,
}

/// The host half of the rules for a policy: system directories and /etc read-only, the user's
/// mounts as they are mounted. Public to the crate so that the tests can check the list.
pub(crate) fn host_rules(policy: &Policy, system_dirs: &[String]) -> Vec<HostRule> {
    let mut out: Vec<HostRule> = system_dirs
        .iter()
        .map(|d| HostRule {
            path: Path::new("/").join(d),
            writable: false,
        })
        .collect();
    out.push(HostRule {
        path: "/etc".into(),
        writable: false,
    });
    for m in &policy.mounts {
        out.push(HostRule {
            path: m.host_canonical.clone(),
            writable: m.permission == Permission::ReadWrite,
        });
    }
    out
}

/// The local half for a namespaced run.
fn namespaced_local(abi: ABI) -> Vec<LocalRule> {
    let bits = |b: BitFlags<AccessFs>| b.bits();
    let dev = (AccessFs::ReadFile
        | AccessFs::WriteFile
        | AccessFs::ReadDir
        | AccessFs::Truncate
        | AccessFs::IoctlDev)
        & AccessFs::from_all(abi);
    vec![
        LocalRule {
            path: c"/",
            fs_magic: TMPFS_MAGIC,
            access: bits(AccessFs::ReadDir.into()),
        },
        // The sandbox's /etc is an overlay (nanobox's own files over the host's /etc): a rule on
        // the host's /etc does not cover the overlay's inodes, so it gets its own.
        LocalRule {
            path: c"/etc",
            fs_magic: OVERLAYFS_MAGIC,
            access: bits(read_rights(abi)),
        },
        LocalRule {
            path: c"/tmp",
            fs_magic: TMPFS_MAGIC,
            access: bits(write_rights(abi)),
        },
        LocalRule {
            path: c"/dev",
            fs_magic: TMPFS_MAGIC,
            access: bits(dev),
        },
        LocalRule {
            path: c"/dev/shm",
            fs_magic: TMPFS_MAGIC,
            access: bits(write_rights(abi)),
        },
        LocalRule {
            path: c"/proc",
            fs_magic: PROC_MAGIC,
            access: bits(
                (AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::WriteFile | AccessFs::Truncate)
                    & AccessFs::from_all(abi),
            ),
        },
    ]
}

impl Layer {
    /// Open the host half for a namespaced run. `None` when the kernel has no Landlock (the
    /// layer is then reported missing by `probe()`; the namespaces still hold).
    pub(crate) fn prepare(policy: &Policy, system_dirs: &[String]) -> Result<Option<Layer>> {
        let v = kernel_abi();
        if v < 1 {
            return Ok(None);
        }
        let abi = abi_of(v);
        let host_rules = open_rules(&host_rules(policy, system_dirs), abi)?;
        Ok(Some(Layer {
            abi: v.min(MAX_ABI),
            host_rules,
            deny_tcp: false,
            local: namespaced_local(abi),
        }))
    }

    /// A layer from explicit host rules and no local half (the degraded mode, where the program
    /// sees host paths), denying TCP where the kernel can (ABI 4+).
    pub(crate) fn for_host_paths(rules: &[HostRule], deny_tcp: bool) -> Result<Layer> {
        let v = kernel_abi();
        let abi = abi_of(v);
        Ok(Layer {
            abi: v.min(MAX_ABI),
            host_rules: open_rules(rules, abi)?,
            deny_tcp,
            local: Vec::new(),
        })
    }

    /// The rules the init adds after the mounts.
    pub(crate) fn local(&self) -> &[LocalRule] {
        &self.local
    }

    /// A fresh ruleset for one run, with the host half added. The init adds the local half to it
    /// and the program enforces it.
    pub(crate) fn ruleset(&self) -> Result<OwnedFd> {
        self.ruleset_with(None)
    }

    /// [`Layer::ruleset`] with one more read-write host directory (the degraded mode's per-run
    /// stand-in for /tmp).
    pub(crate) fn ruleset_with(&self, rw_dir: Option<&Path>) -> Result<OwnedFd> {
        let abi = abi_of(self.abi);
        let step = format!("building the Landlock ruleset (ABI {})", self.abi);
        let err = |e: landlock::RulesetError| setup_err(&step, e.to_string());
        let mut rs = Ruleset::default()
            .set_compatibility(CompatLevel::HardRequirement)
            .handle_access(AccessFs::from_all(abi))
            .map_err(err)?;
        if self.abi >= 6 {
            rs = rs.scope(Scope::from_all(abi)).map_err(err)?;
        }
        if self.deny_tcp && self.abi >= 4 {
            rs = rs.handle_access(AccessNet::from_all(abi)).map_err(err)?;
        }
        let mut created = rs.create().map_err(err)?;
        for (fd, access) in &self.host_rules {
            created = created
                .add_rule(PathBeneath::new(fd, *access))
                .map_err(err)?;
        }
        if let Some(dir) = rw_dir {
            let extra = open_rules(
                &[HostRule {
                    path: dir.to_path_buf(),
                    writable: true,
                }],
                abi,
            )?;
            for (fd, access) in &extra {
                created = created
                    .add_rule(PathBeneath::new(fd, *access))
                    .map_err(err)?;
            }
        }
        into_fd(created, &step)
    }
}

fn setup_err(step: &str, why: String) -> Error {
    Error::Setup {
        step: step.into(),
        source: std::io::Error::other(why),
    }
}

/// The descriptor of a created ruleset, for the child side to add to and enforce.
fn into_fd(created: landlock::RulesetCreated, step: &str) -> Result<OwnedFd> {
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| setup_err(step, "the kernel gave no ruleset".into()))
}

/// A ruleset with scopes only (ABI 6) and no filesystem rights: for the degraded init, so that
/// its `kill(-1)` reaches exactly the processes of its run (its domain and the program's, nested
/// in it).
pub(crate) fn scope_only_ruleset() -> Result<OwnedFd> {
    let step = "building the Landlock scope of the degraded init";
    let err = |e: landlock::RulesetError| setup_err(step, e.to_string());
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .scope(Scope::from_all(ABI::V6))
        .map_err(err)?
        .create()
        .map_err(err)?;
    into_fd(created, step)
}

fn open_rules(rules: &[HostRule], abi: ABI) -> Result<Vec<(OwnedFd, BitFlags<AccessFs>)>> {
    let mut out = Vec::with_capacity(rules.len());
    for r in rules {
        let fd = open_beneath(&r.path).map_err(|e| Error::Setup {
            step: format!(
                "opening {} for the Landlock layer (no symlink may be followed)",
                r.path.display()
            ),
            source: e,
        })?;
        let mut access = if r.writable {
            write_rights(abi)
        } else {
            read_rights(abi)
        };
        let is_dir = rustix::fs::fstat(&fd)
            .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
            .unwrap_or(false);
        if !is_dir {
            access &= file_rights(abi);
        }
        out.push((fd, access));
    }
    Ok(out)
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's ABI).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Add the local rules to `ruleset`. Raw syscalls only: this runs in the init, between clone and
/// exec. Returns the index of the rule that failed and the errno.
pub(crate) fn add_local(
    ruleset: RawFd,
    rules: &[LocalRule],
) -> std::result::Result<(), (usize, i32)> {
    for (i, r) in rules.iter().enumerate() {
        // SAFETY: opening a NUL-terminated path with O_PATH; the descriptor is closed below.
        let fd = unsafe {
            libc::open(
                r.path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err((i, errno()));
        }
        // SAFETY: fstatfs fills a zeroed statfs owned by this frame.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: as above; `fd` is open.
        let ok = unsafe { libc::fstatfs(fd, &mut st) } == 0;
        if !ok || st.f_type as i64 != r.fs_magic {
            let e = if ok { libc::EXDEV } else { errno() };
            // SAFETY: closing the descriptor opened above.
            unsafe { libc::close(fd) };
            return Err((i, e));
        }
        let attr = PathBeneathAttr {
            allowed_access: r.access,
            parent_fd: fd,
        };
        // SAFETY: LANDLOCK_RULE_PATH_BENEATH (1) with a pointer to a live, correctly laid out
        // attribute; the kernel copies it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                1u32,
                &attr as *const PathBeneathAttr,
                0u32,
            )
        };
        let e = errno();
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
        if rc != 0 {
            return Err((i, e));
        }
    }
    Ok(())
}

/// Enforce `ruleset` on the calling thread (which has `no_new_privs`). Raw syscall: runs between
/// clone and exec.
pub(crate) fn restrict(ruleset: RawFd) -> std::result::Result<(), i32> {
    // SAFETY: landlock_restrict_self takes a descriptor and flags; no memory is passed.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
    if rc != 0 {
        return Err(errno());
    }
    Ok(())
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A ruleset descriptor as the child sees it.
pub(crate) fn raw(fd: &Option<OwnedFd>) -> RawFd {
    fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_never_include_device_creation_and_read_never_writes() {
        for v in 1..=MAX_ABI {
            let abi = abi_of(v);
            let w = write_rights(abi);
            assert!(!w.contains(AccessFs::MakeChar) && !w.contains(AccessFs::MakeBlock));
            assert!(w.contains(AccessFs::WriteFile | AccessFs::MakeReg));
            let r = read_rights(abi);
            assert!(!r.intersects(AccessFs::from_write(abi)), "ABI {v}: {r:?}");
            assert!(r.contains(AccessFs::ReadFile | AccessFs::ReadDir | AccessFs::Execute));
        }
    }

    #[test]
    fn local_rules_are_subsets_of_the_handled_rights() {
        for v in 1..=MAX_ABI {
            let abi = abi_of(v);
            let handled = AccessFs::from_all(abi).bits();
            for r in namespaced_local(abi) {
                assert_eq!(r.access & !handled, 0, "ABI {v}: {:?}", r.path);
                assert_ne!(r.access, 0);
            }
        }
        // The root of the sandbox may be listed, nothing more: the rule reaches every mount below.
        let root = &namespaced_local(ABI::V6)[0];
        assert_eq!(root.path, c"/");
        assert_eq!(root.access, AccessFs::ReadDir as u64);
    }

    #[test]
    fn host_rules_follow_the_mounts() {
        let policy = crate::Sandbox::builder()
            .mount("/usr/share", "/data", Permission::ReadOnly)
            .mount(std::env::temp_dir(), "/out", Permission::ReadWrite)
            .validate()
            .unwrap();
        let rules = host_rules(&policy, &["usr".to_string(), "lib".to_string()]);
        let find = |p: &Path| rules.iter().find(|r| r.path == p).cloned();
        assert_eq!(find(Path::new("/usr")).map(|r| r.writable), Some(false));
        assert_eq!(find(Path::new("/lib")).map(|r| r.writable), Some(false));
        assert_eq!(find(Path::new("/etc")).map(|r| r.writable), Some(false));
        assert_eq!(
            find(Path::new("/usr/share")).map(|r| r.writable),
            Some(false)
        );
        let tmp = std::fs::canonicalize(std::env::temp_dir()).unwrap();
        assert_eq!(find(&tmp).map(|r| r.writable), Some(true));
        assert_eq!(rules.len(), 5, "{rules:?}");
    }
}
