//! The macOS calls the backend makes: process listing and usage (libproc), the Seatbelt check,
//! the unprivileged user, and what runs between fork and exec.

use std::ffi::{c_char, c_int, c_void};
use std::io;
use std::sync::OnceLock;
use std::time::Duration;

use crate::watchdog::{ProcInfo, Usage};

/// `struct mach_timebase_info` of `<mach/mach_time.h>` (the libc crate's copy is deprecated).
#[repr(C)]
struct MachTimebaseInfo {
    numer: u32,
    denom: u32,
}

extern "C" {
    /// libSystem's conversion factor from mach absolute time units to nanoseconds.
    fn mach_timebase_info(info: *mut MachTimebaseInfo) -> c_int;
    /// libsystem_sandbox (part of libSystem): whether `pid` may perform `operation`; with no
    /// operation and `SANDBOX_FILTER_NONE`, non-zero when the process is sandboxed at all.
    fn sandbox_check(pid: libc::pid_t, operation: *const c_char, filter: c_int, ...) -> c_int;
}

/// `SANDBOX_FILTER_NONE` of `<sandbox.h>`.
const SANDBOX_FILTER_NONE: c_int = 0;

/// Whether this process already runs under a Seatbelt profile (an App Sandbox, a sandbox-exec):
/// profiles do not nest, so sandbox-exec would fail in it.
pub(crate) fn caller_is_sandboxed() -> bool {
    // SAFETY: sandbox_check reads no memory of ours with a null operation and no filter
    // argument; getpid cannot fail.
    unsafe { sandbox_check(libc::getpid(), std::ptr::null(), SANDBOX_FILTER_NONE) != 0 }
}

/// Mach absolute time units per nanosecond as (numer, denom): 1/1 on Intel, 125/3 on Apple
/// silicon (a 24 MHz tick).
fn timebase() -> (u64, u64) {
    static TB: OnceLock<(u64, u64)> = OnceLock::new();
    *TB.get_or_init(|| {
        let mut info = MachTimebaseInfo { numer: 0, denom: 0 };
        // SAFETY: mach_timebase_info fills the struct it is given, laid out as in C.
        let r = unsafe { mach_timebase_info(&mut info) };
        if r != 0 || info.numer == 0 || info.denom == 0 {
            (1, 1)
        } else {
            (u64::from(info.numer), u64::from(info.denom))
        }
    })
}

/// Mach absolute time units to a duration.
pub(crate) fn mach_to_duration(t: u64) -> Duration {
    let (n, d) = timebase();
    let ns = u128::from(t) * u128::from(n) / u128::from(d);
    Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64)
}

/// Pid, parent, group and start time (microseconds since the epoch) of one process; `None` when
/// it is gone (or a zombie, whose details the kernel no longer gives).
pub(crate) fn proc_info(pid: u32) -> Option<ProcInfo> {
    let pid_c = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: proc_bsdinfo is plain data; all zeroes is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as c_int;
    // SAFETY: proc_pidinfo writes at most `size` bytes into `info`.
    let n = unsafe {
        libc::proc_pidinfo(
            pid_c,
            libc::PROC_PIDTBSDINFO,
            0,
            (&mut info as *mut libc::proc_bsdinfo).cast::<c_void>(),
            size,
        )
    };
    if n != size || info.pbi_pid != pid {
        return None;
    }
    Some(ProcInfo {
        pid,
        ppid: info.pbi_ppid,
        pgid: info.pbi_pgid,
        start: info
            .pbi_start_tvsec
            .saturating_mul(1_000_000)
            .saturating_add(info.pbi_start_tvusec),
    })
}

/// The pids a libproc list call returns (`call` fills a buffer of the given size in bytes and
/// returns how many pids it wrote, or -1), growing the buffer until the list fits.
fn list_pids(call: impl Fn(*mut c_void, c_int) -> c_int) -> Vec<u32> {
    let mut cap = 256usize;
    loop {
        let mut buf = vec![0 as libc::pid_t; cap];
        let bytes = (cap * std::mem::size_of::<libc::pid_t>()) as c_int;
        let n = call(buf.as_mut_ptr().cast::<c_void>(), bytes);
        if n < 0 {
            return Vec::new();
        }
        let n = (n as usize).min(cap);
        if n == cap && cap < 1 << 20 {
            cap *= 4;
            continue;
        }
        // Unused slots stay 0, which is never a member.
        return buf[..n]
            .iter()
            .filter(|&&p| p > 0)
            .map(|&p| p as u32)
            .collect();
    }
}

/// The children of `pid` (an empty list when it has none or is gone).
pub(crate) fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Vec::new();
    };
    list_pids(|buf, size| {
        // SAFETY: proc_listchildpids writes at most `size` bytes into `buf`, which has them.
        unsafe { libc::proc_listchildpids(pid, buf, size) }
    })
}

/// The members of the process group `pgid`.
pub(crate) fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Vec::new();
    };
    list_pids(|buf, size| {
        // SAFETY: proc_listpgrppids writes at most `size` bytes into `buf`, which has them.
        unsafe { libc::proc_listpgrppids(pgid, buf, size) }
    })
}

/// A process's physical footprint and its own CPU time (`None` when it is gone).
pub(crate) fn usage(pid: u32) -> Option<Usage> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: rusage_info_v2 is plain data; all zeroes is a valid value.
    let mut ri: libc::rusage_info_v2 = unsafe { std::mem::zeroed() };
    // SAFETY: with RUSAGE_INFO_V2, proc_pid_rusage writes one rusage_info_v2 to the buffer; the
    // C prototype takes the buffer as `rusage_info_t *`, hence the cast.
    let r = unsafe {
        libc::proc_pid_rusage(
            pid,
            libc::RUSAGE_INFO_V2,
            (&mut ri as *mut libc::rusage_info_v2).cast::<libc::rusage_info_t>(),
        )
    };
    if r != 0 {
        return None;
    }
    Some(Usage {
        memory: ri.ri_phys_footprint,
        cpu: mach_to_duration(ri.ri_user_time.saturating_add(ri.ri_system_time)),
    })
}

/// Send `sig` to `pid` if it is still the process that started at `start` (a pid the system gave
/// to another process since is left alone). The check and the kill are two calls: a pid reused in
/// between by a process that started in the same microsecond is the remaining window.
pub(crate) fn kill_member(pid: u32, start: u64, sig: c_int) {
    if proc_info(pid).is_some_and(|p| p.start == start) {
        // SAFETY: kill takes plain integers.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    }
}

/// `kill(2)` of a pid this process has not reaped (so it cannot name another process).
pub(crate) fn kill_child(pid: u32, sig: c_int) -> io::Result<()> {
    // SAFETY: kill takes plain integers.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `killpg(2)` of the group led by a pid this process has not reaped.
pub(crate) fn kill_group(pgid: u32, sig: c_int) {
    // SAFETY: killpg takes plain integers.
    unsafe { libc::killpg(pgid as libc::pid_t, sig) };
}

/// The user and group of `nobody` (-2 on macOS when the lookup fails).
pub(crate) fn nobody() -> (u32, u32) {
    let fallback = (u32::MAX - 1, u32::MAX - 1);
    // SAFETY: passwd is plain data (pointers may be null); all zeroes is a valid value.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as c_char; 4096];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r writes into `pw` and `buf` (of the length given) and sets `out` to `pw`
    // on success; the name is a NUL-terminated literal.
    let r = unsafe {
        libc::getpwnam_r(
            c"nobody".as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if r != 0 || out.is_null() || pw.pw_uid == 0 || pw.pw_gid == 0 {
        return fallback;
    }
    (pw.pw_uid, pw.pw_gid)
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// One bound set before exec: (resource, soft, hard).
pub(crate) type Rlimit = (c_int, u64, u64);

/// What the forked child does before exec: set the rlimits, then mark every descriptor but 0, 1
/// and 2 close-on-exec, up to `fd_end` (the descriptor table's size, read before the fork).
/// Marking rather than closing keeps std's own close-on-exec error pipe working (a failed exec
/// still reports its errno through it). Only async-signal-safe calls: setrlimit and fcntl.
pub(crate) fn before_exec(rlimits: &[Rlimit], fd_end: c_int) -> io::Result<()> {
    for &(res, soft, hard) in rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: setrlimit reads the struct; it is async-signal-safe.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for fd in 3..fd_end {
        // SAFETY: fcntl on a descriptor number that may not be open only fails with EBADF; it is
        // async-signal-safe.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

/// 16 times macOS's `OPEN_MAX` (10240): the most descriptors marked for an unlimited soft limit.
const FD_CAP: libc::rlim_t = 16 * 10240;

/// The size of this process's descriptor table: every open descriptor is below it (the larger of
/// the soft limit and `getdtablesize`, capped at [`FD_CAP`] for an unlimited soft limit, and above
/// every descriptor /dev/fd lists, for one opened before the limit was lowered or past the cap).
pub(crate) fn fd_table_end() -> c_int {
    // SAFETY: getdtablesize cannot fail.
    let table = unsafe { libc::getdtablesize() };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.min(FD_CAP) as c_int
    } else {
        0
    };
    // The descriptors open now, as /dev/fd lists them: one above the cap (possible with an
    // unlimited soft limit and a high kern.maxfilesperproc) is still reached. A descriptor
    // opened by another thread after this is close-on-exec if the standard library opened it.
    let open = std::fs::read_dir("/dev/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<c_int>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    table.max(soft).max(open.saturating_add(1)).max(3)
}

/// The process's exit: `Ok(Some((status, rusage)))` once reaped, `Ok(None)` while it runs.
pub(crate) fn try_reap(pid: u32) -> io::Result<Option<(c_int, libc::rusage)>> {
    let mut status: c_int = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes the status and the rusage it is given.
        let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, libc::WNOHANG, &mut ru) };
        if r == 0 {
            return Ok(None);
        }
        if r > 0 {
            return Ok(Some((status, ru)));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A kqueue that wakes when `pid` exits (`None` if it cannot be made: the caller then polls).
pub(crate) struct ExitQueue(Option<std::os::fd::OwnedFd>);

impl ExitQueue {
    pub(crate) fn new(pid: u32) -> ExitQueue {
        use std::os::fd::FromRawFd;
        // SAFETY: kqueue takes no arguments.
        let kq = unsafe { libc::kqueue() };
        if kq < 0 {
            return ExitQueue(None);
        }
        // SAFETY: kq is a new descriptor this function owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(kq) };
        let ev = libc::kevent {
            ident: pid as libc::uintptr_t,
            filter: libc::EVFILT_PROC,
            flags: libc::EV_ADD | libc::EV_ONESHOT,
            fflags: libc::NOTE_EXIT,
            data: 0,
            udata: std::ptr::null_mut(),
        };
        // SAFETY: kevent reads one change from `ev` and writes no events (nevents 0).
        let r = unsafe { libc::kevent(kq, &ev, 1, std::ptr::null_mut(), 0, std::ptr::null()) };
        // A process that has already exited cannot be registered: polling finds it at once.
        ExitQueue((r == 0).then_some(fd))
    }

    /// Sleep up to `timeout`, less when the process exits.
    pub(crate) fn wait(&self, timeout: Duration) {
        use std::os::fd::AsRawFd;
        let Some(fd) = &self.0 else {
            std::thread::sleep(timeout);
            return;
        };
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: kevent is plain data; all zeroes is a valid value.
        let mut out: libc::kevent = unsafe { std::mem::zeroed() };
        // SAFETY: kevent writes at most one event into `out` and reads the timeout.
        let n = unsafe { libc::kevent(fd.as_raw_fd(), std::ptr::null(), 0, &mut out, 1, &ts) };
        if n == 0 {
            return;
        }
        if n > 0 {
            // The one-shot event fired: later waits only sleep (the caller reaps now).
            return;
        }
        // EINTR and the like: sleep instead, the caller polls.
        std::thread::sleep(timeout.min(Duration::from_millis(5)));
    }
}
