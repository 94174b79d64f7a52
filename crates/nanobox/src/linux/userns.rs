//! User-namespace plumbing on the parent's side: the id maps, the clone, and the helper namespace
//! that idmapped mounts need when nanobox runs as root.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::error::Error;

/// The uid and gid the program has inside the sandbox.
pub(crate) const SANDBOX_ID: u32 = 1000;
/// The host uid and gid a sandbox started by root runs as (nobody/nogroup on Debian).
pub(crate) const ROOT_HOST_ID: u32 = 65534;

/// All the namespaces of a run.
pub(crate) const NS_FLAGS: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// waitid(2) id type for a pidfd (linux/wait.h).
const P_PIDFD: libc::idtype_t = 3;

/// clone3 with a pidfd and no exit signal (a caller's `wait(-1)` or `SIGCHLD` handling never sees
/// the child). Returns 0 in the child.
///
/// # Safety
/// In the child, only async-signal-safe calls may follow, and it must end in `execve` or `_exit`.
pub(crate) unsafe fn clone_pidfd(
    flags: u64,
    cgroup: Option<RawFd>,
) -> io::Result<(libc::pid_t, Option<OwnedFd>)> {
    let mut pidfd: RawFd = -1;
    // SAFETY: the caller's contract is raw_clone's.
    let pid = unsafe { super::sys::raw_clone(flags, 0, Some(&mut pidfd), cgroup) }
        .map_err(io::Error::from_raw_os_error)?;
    if pid == 0 {
        return Ok((0, None));
    }
    // SAFETY: the kernel returned a new pidfd that nobody else owns.
    Ok((pid, Some(unsafe { OwnedFd::from_raw_fd(pidfd) })))
}

/// Wait for a child started by [`clone_pidfd`]; returns its raw wait status as (code, signal).
pub(crate) fn wait_pidfd(pidfd: &OwnedFd) -> io::Result<(Option<i32>, Option<i32>)> {
    loop {
        // SAFETY: siginfo_t is plain data and a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: the pidfd is open; __WALL waits for children with any exit signal.
        let r = unsafe {
            libc::waitid(
                P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::__WALL,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        // SAFETY: after a successful waitid with WEXITED, si_status is initialised.
        let status = unsafe { info.si_status() };
        return Ok(if info.si_code == libc::CLD_EXITED {
            (Some(status), None)
        } else {
            (None, Some(status))
        });
    }
}

/// Send SIGKILL through a pidfd (no pid-reuse race). A process already gone is not an error.
pub(crate) fn kill_pidfd(pidfd: &OwnedFd) {
    let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
}

/// The maps a run's user namespace gets.
#[derive(Debug, Clone)]
pub(crate) struct IdMaps {
    pub uid_map: String,
    pub gid_map: String,
    /// Write "deny" to setgroups first (required when not root); the program then keeps the
    /// caller's supplementary groups, which the kernel does not let an unprivileged caller drop.
    pub deny_setgroups: bool,
}

impl IdMaps {
    pub(crate) fn for_caller() -> IdMaps {
        let euid = rustix::process::geteuid().as_raw();
        let egid = rustix::process::getegid().as_raw();
        if euid == 0 {
            IdMaps {
                uid_map: format!("{SANDBOX_ID} {ROOT_HOST_ID} 1\n"),
                gid_map: format!("{SANDBOX_ID} {ROOT_HOST_ID} 1\n"),
                deny_setgroups: false,
            }
        } else {
            IdMaps {
                uid_map: format!("{SANDBOX_ID} {euid} 1\n"),
                gid_map: format!("{SANDBOX_ID} {egid} 1\n"),
                deny_setgroups: true,
            }
        }
    }

    pub(crate) fn write(&self, pid: libc::pid_t) -> io::Result<()> {
        if self.deny_setgroups {
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
        }
        std::fs::write(format!("/proc/{pid}/uid_map"), &self.uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), &self.gid_map)?;
        Ok(())
    }
}

/// A user namespace mapping id 0 to `host_id`, for idmapped mounts: through it, files the caller
/// (root) owns appear as owned by the sandbox user, and what the sandbox user creates lands on disk
/// owned by root.
pub(crate) fn idmap_userns(host_id: u32) -> io::Result<OwnedFd> {
    let map = format!("0 {host_id} 1\n");
    helper_userns(&map, &map)
}

/// A user namespace mapping every id to itself except `hidden_id`, for the idmapped /etc of root
/// callers: through it no file is owned by the program's uid or gid (65534), so the program reads
/// only what "other" may read.
pub(crate) fn etc_userns(hidden_id: u32) -> io::Result<OwnedFd> {
    let below = hidden_id;
    let above = u32::MAX - hidden_id - 1;
    let map = format!("0 0 {below}\n{0} {0} {above}\n", hidden_id + 1);
    helper_userns(&map, &map)
}

/// Block every signal in the calling thread; returns the previous mask.
pub(crate) fn block_all_signals() -> libc::sigset_t {
    // SAFETY: sigset operations on local values; pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        old
    }
}

/// Put back the mask [`block_all_signals`] returned.
pub(crate) fn restore_signals(old: &libc::sigset_t) {
    // SAFETY: `old` is a mask pthread_sigmask filled in.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut()) };
}

/// A user namespace with these maps, held by a descriptor (its short-lived process is gone).
///
/// The helper process only sleeps until it is killed: it holds no pipe, since a helper cloned by
/// another thread at the same moment would inherit the pipe's write end and keep it from closing.
fn helper_userns(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    // With every signal blocked across the clone, the helper never runs a handler of the caller's;
    // only the parent's SIGKILL ends its pause.
    let mask = block_all_signals();
    // SAFETY: the child only calls pause, which is async-signal-safe.
    let cloned = unsafe { clone_pidfd(libc::CLONE_NEWUSER as u64, None) };
    if let Ok((0, _)) = cloned {
        // SAFETY: child side: sleep until killed by the parent.
        unsafe {
            loop {
                libc::pause();
            }
        }
    }
    restore_signals(&mask);
    let (pid, pidfd) = cloned?;
    let pidfd = pidfd.expect("pidfd for parent");
    let res = (|| {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        let f = std::fs::File::open(format!("/proc/{pid}/ns/user"))?;
        Ok(OwnedFd::from(f))
    })();
    kill_pidfd(&pidfd);
    let _ = wait_pidfd(&pidfd);
    res
}

/// Explain a failed namespace clone: which setting refuses it and how to change it.
pub(crate) fn diagnose_clone_error(e: io::Error) -> Error {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    let errno = e.raw_os_error().unwrap_or(0);
    // A seccomp filter (a container's profile) answers EPERM, or ENOSYS for clone3 and clone
    // alike; a sysctl that refuses namespaces outranks it as the cause.
    let filtered =
        super::container::Status::parse(&read("/proc/thread-self/status").unwrap_or_default())
            .seccomp
            == Some(2);
    // The same rule as the container classifier's (Debian's switch spares root).
    let sysctl = super::container::refusing_sysctl().is_some();
    if filtered && !sysctl && (errno == libc::EPERM || errno == libc::ENOSYS) {
        let case = super::container::Case::SeccompRefusesNamespaces(errno);
        return Error::HostUnsupported {
            missing: case.missing(),
            cause: case.cause(&super::container::observe()),
            fix: case.fix(),
        };
    }
    if errno == libc::ENOSYS {
        return Error::HostUnsupported {
            missing: "clone3 (Linux 5.3 or newer)",
            cause: format!("clone3 returned {e}"),
            fix: "run nanobox on Linux 5.12 or newer".into(),
        };
    }
    if let Some(err) = super::apparmor::explain(super::apparmor::Failure::Clone(errno)) {
        return err;
    }
    let mut cause = format!("creating the sandbox namespaces failed: {e}");
    let mut fix = String::new();
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        cause.push_str("; user.max_user_namespaces is 0");
        fix = "sysctl -w user.max_user_namespaces=15000".into();
    } else if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        cause.push_str("; kernel.unprivileged_userns_clone is 0");
        fix = "sysctl -w kernel.unprivileged_userns_clone=1".into();
    } else if errno == libc::EPERM {
        cause.push_str(
            "; the process may be in a chroot, or an LSM or a container's policy refuses \
             namespaces",
        );
        fix = "run nanobox outside the chroot, or allow clone/unshare with CLONE_NEWUSER in the \
               container's policy (Docker, Podman: --security-opt seccomp=PROFILE.json with a \
               profile that allows them)"
            .into();
    } else if errno == libc::ENOSPC || errno == libc::EUSERS {
        cause.push_str("; the per-user namespace limit is reached");
        fix = "raise user.max_user_namespaces (sysctl) or end other sandboxes".into();
    }
    if fix.is_empty() {
        fix = "run `nanobox doctor` for a full check of this host".into();
    }
    Error::HostUnsupported {
        missing: "user namespaces",
        cause,
        fix,
    }
}

/// The highest capability number this kernel knows.
pub(crate) fn cap_last() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// A C string for a path-like thing, or an InvalidOption error.
pub(crate) fn cstr_of(option: &'static str, bytes: &[u8]) -> Result<std::ffi::CString, Error> {
    std::ffi::CString::new(bytes).map_err(|_| Error::InvalidOption {
        option,
        reason: format!("{:?} contains a NUL byte", String::from_utf8_lossy(bytes)),
    })
}
