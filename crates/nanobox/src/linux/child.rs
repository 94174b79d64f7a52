//! The code that runs in the sandbox's processes between `clone` and `execve`.
//!
//! The caller may be multithreaded (a Python interpreter, a tokio runtime), so after the clone only
//! async-signal-safe work is allowed: raw syscalls on data prepared before the clone. Nothing here
//! allocates, takes a lock, panics on purpose, or returns: every path ends in `execve` or `_exit`.
//!
//! Two processes run this code:
//! - the sandbox's **init** (pid 1 of the new pid namespace, a clone of the caller): it waits for the
//!   parent to write the uid/gid maps, builds the root, forks the program and reaps everything until
//!   the program exits, the wall-time limit passes, or the caller dies; meanwhile it relays to the
//!   program the signals the caller asks for on the control socket (`Child::signal`);
//! - the **program** process, forked by init: it drops every privilege and executes the program.

/// On the control socket, the bit of a signal byte that asks for the program's process group.
pub(crate) const GROUP_SIGNAL: u8 = 0x80;
use std::ffi::{c_char, CStr, CString};
use std::os::fd::RawFd;

use rustix::thread::{CapabilitiesSecureBits, CapabilitySet, CapabilitySets};

use super::plan::{self, Op};
use super::sys::{last_errno, RealSys};

/// Messages on the report pipe: which stage failed.
pub(crate) const REPORT_PLAN: u32 = 1;
pub(crate) const REPORT_STEP: u32 = 2;
pub(crate) const REPORT_EXEC: u32 = 3;

/// Steps outside the mount plan, for [`REPORT_STEP`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Step {
    Dumpable = 1,
    Identity,
    SignalFd,
    ForkProgram,
    Session,
    Stdio,
    CloseFds,
    DeathSignal,
    NoNewPrivs,
    SecureBits,
    BoundingSet,
    Capabilities,
    WorkingDir,
    SignalMask,
    Seccomp,
    CoreLimit,
    LandlockRules,
    LandlockRestrict,
    DegradedInit,
    ResourceLimits,
    ProxyListener,
    MemoryObserver,
}

impl Step {
    pub(crate) fn from_u32(v: u32) -> Option<Step> {
        use Step::*;
        [
            Dumpable,
            Identity,
            SignalFd,
            ForkProgram,
            Session,
            Stdio,
            CloseFds,
            DeathSignal,
            NoNewPrivs,
            SecureBits,
            BoundingSet,
            Capabilities,
            WorkingDir,
            SignalMask,
            Seccomp,
            CoreLimit,
            LandlockRules,
            LandlockRestrict,
            DegradedInit,
            ResourceLimits,
            ProxyListener,
            MemoryObserver,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Step::Dumpable => "making the sandbox init non-dumpable",
            Step::Identity => "switching to the sandbox user and group",
            Step::SignalFd => "setting up the init's signal handling",
            Step::ForkProgram => "forking the program process",
            Step::Session => "starting a new session (setsid)",
            Step::Stdio => "connecting stdin, stdout and stderr",
            Step::CloseFds => "closing inherited file descriptors",
            Step::DeathSignal => "setting the parent-death signal",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::SecureBits => "locking the securebits",
            Step::BoundingSet => "emptying the capability bounding set",
            Step::Capabilities => "dropping all capabilities",
            Step::WorkingDir => "changing to the working directory",
            Step::SignalMask => "resetting signal handlers",
            Step::Seccomp => "installing the seccomp filter",
            Step::CoreLimit => "disabling core dumps",
            Step::LandlockRules => {
                "adding the sandbox's own filesystems (/, /tmp, /dev, /dev/shm, /proc) to the \
                 Landlock ruleset"
            }
            Step::LandlockRestrict => "enforcing the Landlock ruleset",
            Step::ResourceLimits => "setting the resource limits (setrlimit)",
            Step::ProxyListener => {
                "opening the network proxy's listener on the sandbox's loopback (127.0.0.1:3128)"
            }
            Step::MemoryObserver => {
                "handing the memory limit's observer (a seccomp listener) to the caller"
            }
            Step::DegradedInit => {
                "setting up the degraded init (subreaper, uid drop, no_new_privs, Landlock scope)"
            }
        }
    }
}

/// Messages on the status pipe: how the program ended.
pub(crate) const STATUS_EXITED: u32 = 1;
pub(crate) const STATUS_SIGNALED: u32 = 2;
pub(crate) const STATUS_TIMEOUT: u32 = 3;
/// The whole sandbox spent its CPU-time budget.
pub(crate) const STATUS_CPU: u32 = 4;
/// A status message: the 20-byte message, then the CPU time (ns) and the largest resident size
/// (bytes) of the init's reaped children, from getrusage.
pub(crate) const STATUS_LEN: usize = MESSAGE_LEN + 16;

/// Everything the child side needs, prepared before the clone.
pub(crate) struct ChildArgs<'a> {
    pub plan: &'a [Op],
    pub prepared_fds: &'a [RawFd],
    /// Descriptors init keeps, ascending; every other inherited descriptor is closed at once.
    pub keep: &'a [RawFd],
    pub go_r: RawFd,
    pub report_w: RawFd,
    pub status_w: RawFd,
    /// The init's end of the control socket: each byte read is a signal to deliver to the
    /// program; end-of-file (the caller closed its end, or died) ends the run.
    pub control: RawFd,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub drop_groups: bool,
    pub uid: u32,
    pub gid: u32,
    /// Wall-clock limit in nanoseconds, 0 for none.
    pub wall_limit_ns: u64,
    pub workdir: &'a CStr,
    /// Paths to try with execve, in order.
    pub exec_paths: &'a [CString],
    /// NULL-terminated argv and envp.
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    pub cap_last: u32,
    pub filters: &'a super::seccomp::Filters,
    /// The run's Landlock ruleset (host half added), or -1 without Landlock.
    pub landlock_fd: RawFd,
    /// The rules init adds for the filesystems it mounted.
    pub landlock_local: &'a [super::landlock::LocalRule],
    /// No namespaces: the degraded mode (see `degraded.rs`).
    pub degraded: bool,
    /// The degraded init's own scope-only Landlock ruleset, or -1.
    pub init_scope_fd: RawFd,
    /// The cgroup's CPU usage file (pread at 0), or -1; v2 `cpu.stat` when `cpu_v2`.
    pub cpu_fd: RawFd,
    pub cpu_v2: bool,
    /// The whole sandbox's CPU-time budget in nanoseconds, 0 for none (needs `cpu_fd`).
    pub cpu_limit_ns: u64,
    /// Online CPUs: how fast the budget can be spent, for the polling interval.
    pub ncpu: u64,
    /// Resource limits the program sets before execve: (resource, soft, hard).
    pub rlimits: &'a [(rustix::process::Resource, u64, u64)],
    /// Degraded CPU limit: pin the program to these CPUs.
    pub affinity: Option<&'a libc::cpu_set_t>,
    /// With a network allowlist: the socket to hand the proxy's listener to the caller, or -1.
    pub proxy_sock: RawFd,
    /// The port the listener binds on the sandbox's loopback.
    pub proxy_port: u16,
    /// With a memory limit by RLIMIT_AS: the program sends its refusals' observer to the caller.
    pub memwatch: Option<super::memwatch::ChildSide>,
}

fn exit(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and ends the process without running any Rust or libc
    // cleanup that could touch state inherited from other threads of the caller.
    unsafe { libc::_exit(code) }
}

fn write_all(fd: RawFd, buf: &[u8]) {
    let mut off = 0;
    while off < buf.len() {
        // SAFETY: `buf[off..]` is valid for reads of its length.
        let n = unsafe { libc::write(fd, buf[off..].as_ptr().cast(), buf.len() - off) };
        if n < 0 {
            if last_errno() == libc::EINTR {
                continue;
            }
            return;
        }
        off += n as usize;
    }
}

fn message(kind: u32, a: u32, b: i32, c: u64) -> [u8; 20] {
    let mut m = [0u8; 20];
    m[0..4].copy_from_slice(&kind.to_ne_bytes());
    m[4..8].copy_from_slice(&a.to_ne_bytes());
    m[8..12].copy_from_slice(&b.to_ne_bytes());
    m[12..20].copy_from_slice(&c.to_ne_bytes());
    m
}

/// Decode a 20-byte message.
pub(crate) fn decode(m: &[u8; 20]) -> (u32, u32, i32, u64) {
    let u = |r: std::ops::Range<usize>| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&m[r]);
        b
    };
    let mut c = [0u8; 8];
    c.copy_from_slice(&m[12..20]);
    (
        u32::from_ne_bytes(u(0..4)),
        u32::from_ne_bytes(u(4..8)),
        i32::from_ne_bytes(u(8..12)),
        u64::from_ne_bytes(c),
    )
}

pub(crate) const MESSAGE_LEN: usize = 20;

/// Report how the run ended, with the rusage of what the init reaped.
fn write_status(fd: RawFd, kind: u32, value: i32, elapsed: u64) {
    let mut m = [0u8; STATUS_LEN];
    m[..MESSAGE_LEN].copy_from_slice(&message(kind, 0, value, elapsed));
    // SAFETY: getrusage fills a zeroed rusage owned by this frame.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } == 0 {
        let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
        let cpu = ns(ru.ru_utime).saturating_add(ns(ru.ru_stime));
        m[MESSAGE_LEN..MESSAGE_LEN + 8].copy_from_slice(&cpu.to_ne_bytes());
        let rss = (ru.ru_maxrss as u64).saturating_mul(1024);
        m[MESSAGE_LEN + 8..].copy_from_slice(&rss.to_ne_bytes());
    }
    write_all(fd, &m);
}

/// Decode the rusage part of a status message: (CPU ns, max RSS bytes).
pub(crate) fn decode_usage(m: &[u8; STATUS_LEN]) -> (u64, u64) {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&m[MESSAGE_LEN..MESSAGE_LEN + 8]);
    b.copy_from_slice(&m[MESSAGE_LEN + 8..]);
    (u64::from_ne_bytes(a), u64::from_ne_bytes(b))
}

/// The whole sandbox's CPU time so far, from the cgroup (pread: no allocation).
fn cpu_used(a: &ChildArgs<'_>) -> Option<u64> {
    let mut buf = [0u8; 512];
    // SAFETY: pread into a stack buffer of the given length.
    let n = unsafe { libc::pread(a.cpu_fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return None;
    }
    super::cgroup::parse_cpu_usage_ns(&buf[..n as usize], a.cpu_v2)
}

fn fail(fd: RawFd, kind: u32, step: u32, errno: i32) -> ! {
    write_all(fd, &message(kind, step, errno, 0));
    exit(1)
}

fn step_fail(fd: RawFd, step: Step, errno: i32) -> ! {
    fail(fd, REPORT_STEP, step as u32, errno)
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Close every descriptor not in `keep` (ascending).
fn close_others(keep: &[RawFd]) {
    let mut next: u32 = 0;
    for &fd in keep {
        let fd = fd as u32;
        if fd > next {
            // SAFETY: close_range only closes descriptors; none of those in range is in use here.
            unsafe { libc::close_range(next, fd - 1, 0) };
        }
        next = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::close_range(next, u32::MAX, 0) };
}

/// The sandbox's init. Called in the child right after the namespace clone.
pub(crate) fn init_main(a: &ChildArgs<'_>) -> ! {
    // Signals arrive blocked (the parent blocks them around the clone). Ignore every one but
    // SIGCHLD before anything else: the handlers inherited from the caller are not ours to run
    // (nor async-signal-safe here), and nothing but the control socket or SIGKILL may end the init.
    // The degraded init also takes SIGUSR1 (on its signalfd): the caller's request to end the run.
    let keep: &[libc::c_int] = if a.degraded {
        &[libc::SIGCHLD, libc::SIGUSR1]
    } else {
        &[libc::SIGCHLD]
    };
    super::sys::set_all_signals(true, keep);
    close_others(a.keep);
    let rep = a.report_w;
    // Wait for the parent to write our uid/gid maps. EOF means the parent gave up.
    let mut b = [0u8; 1];
    // SAFETY: reading one byte into a one-byte buffer.
    let n = unsafe { libc::read(a.go_r, b.as_mut_ptr().cast(), 1) };
    if n != 1 {
        exit(1);
    }
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(a.go_r) };
    // Non-dumpable from here on: the program can never open /proc/1/{exe,mem,environ,root} of
    // this copy of the caller. (Not earlier: an unprivileged parent could then not open our
    // /proc/PID/uid_map, which the kernel gives to root once a process is non-dumpable.)
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        step_fail(rep, Step::Dumpable, e.raw_os_error());
    }

    if a.degraded {
        if let Err(e) = degraded_init(a) {
            step_fail(rep, Step::DegradedInit, e);
        }
    } else {
        // Become the sandbox user, keeping the capabilities of our own user namespace for the
        // setup.
        if let Err(e) = become_sandbox_user(a) {
            step_fail(rep, Step::Identity, e);
        }
        if let Err((i, e)) = plan::execute(a.plan, &RealSys, a.prepared_fds) {
            fail(rep, REPORT_PLAN, i as u32, e);
        }
    }
    for &fd in a.prepared_fds {
        // SAFETY: the prepared trees are attached; their descriptors are ours to close.
        unsafe { libc::close(fd) };
    }
    if a.landlock_fd >= 0 {
        if let Err((_, e)) = super::landlock::add_local(a.landlock_fd, a.landlock_local) {
            step_fail(rep, Step::LandlockRules, e);
        }
    }
    if a.proxy_sock >= 0 {
        if let Err(e) = send_proxy_listener(a.proxy_sock, a.proxy_port) {
            step_fail(rep, Step::ProxyListener, e);
        }
    }

    // SIGCHLD arrives on a signalfd, so that one poll waits for children, the caller and the clock.
    // SAFETY: sigset operations on a local set; sigprocmask/signalfd are async-signal-safe.
    let sfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        if a.degraded {
            libc::sigaddset(&mut set, libc::SIGUSR1);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            step_fail(rep, Step::SignalFd, last_errno());
        }
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    if sfd < 0 {
        step_fail(rep, Step::SignalFd, last_errno());
    }

    // SAFETY: getpid is a plain syscall.
    let init_pid = unsafe { libc::getpid() };
    let start = now_ns();
    // A fork that runs none of the caller's atfork handlers (they are not async-signal-safe).
    // SAFETY: the child goes straight to `program_main`, which ends in execve or _exit.
    let pid = match unsafe { super::sys::raw_clone(0, libc::SIGCHLD as u64, None, None) } {
        Ok(pid) => pid,
        Err(e) => step_fail(rep, Step::ForkProgram, e),
    };
    if pid == 0 {
        program_main(a, init_pid);
    }
    // SAFETY: closing init's copies of descriptors that belong to the program now.
    unsafe {
        libc::close(a.stdin);
        libc::close(a.stdout);
        libc::close(a.stderr);
        libc::close(rep);
        if let Some(m) = a.memwatch {
            libc::close(m.sock);
        }
    }
    let deadline = if a.wall_limit_ns > 0 {
        start.saturating_add(a.wall_limit_ns)
    } else {
        0
    };
    let cpu_budget = a.cpu_fd >= 0 && a.cpu_limit_ns > 0;
    loop {
        let mut timeout_ms: i32 = if deadline == 0 {
            -1
        } else {
            let now = now_ns();
            if now >= deadline {
                write_status(a.status_w, STATUS_TIMEOUT, 0, now - start);
                finish(a);
            }
            ((deadline - now).div_ceil(1_000_000)).min(i32::MAX as u64) as i32
        };
        if cpu_budget {
            // Check the sandbox's CPU time at least as often as all CPUs together could spend
            // what is left (2 ms ..= 100 ms).
            if let Some(used) = cpu_used(a) {
                if used >= a.cpu_limit_ns {
                    write_status(a.status_w, STATUS_CPU, 0, now_ns() - start);
                    finish(a);
                }
                let step = ((a.cpu_limit_ns - used) / a.ncpu.max(1) / 1_000_000).clamp(2, 100);
                timeout_ms = if timeout_ms < 0 {
                    step as i32
                } else {
                    timeout_ms.min(step as i32)
                };
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: sfd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: a.control,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if n < 0 && last_errno() != libc::EINTR {
            exit(1);
        }
        if fds[1].revents != 0 {
            let mut asked = [0u8; 64];
            // SAFETY: recv into a stack buffer of its length; MSG_DONTWAIT never blocks.
            let n = unsafe {
                libc::recv(
                    a.control,
                    asked.as_mut_ptr().cast(),
                    asked.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n == 0 || (n < 0 && !matches!(last_errno(), libc::EAGAIN | libc::EINTR)) {
                // The caller died or dropped the run: end the sandbox (the kernel kills the
                // namespace).
                finish(a);
            }
            // Signals the caller asks for, relayed to the program. `pid` cannot name another
            // process: the init has not reaped the program (it ends as soon as it does), so the
            // pid is still the program's, at worst a zombie's. A byte with its high bit set asks
            // for the program's process group (the program leads it: it started a session);
            // a group whose leader is not reaped keeps its id.
            for &byte in &asked[..n.max(0) as usize] {
                let target = if byte & GROUP_SIGNAL != 0 { -pid } else { pid };
                // SAFETY: kill is async-signal-safe; a bad number is EINVAL and harmless.
                unsafe { libc::kill(target, libc::c_int::from(byte & !GROUP_SIGNAL)) };
            }
        }
        if fds[0].revents != 0 {
            let mut info = [0u8; 128];
            let mut end = false;
            // SAFETY: draining the signalfd into a buffer of the size of signalfd_siginfo.
            while unsafe { libc::read(sfd, info.as_mut_ptr().cast(), info.len()) } > 0 {
                // ssi_signo is the first field.
                end |= u32::from_ne_bytes([info[0], info[1], info[2], info[3]])
                    == libc::SIGUSR1 as u32;
            }
            if end {
                finish(a);
            }
            loop {
                let mut st: libc::c_int = 0;
                // SAFETY: valid out-pointer; reaps any exited child, orphans included.
                let r = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG | libc::__WALL) };
                if r <= 0 {
                    break;
                }
                if r == pid {
                    let el = now_ns() - start;
                    if libc::WIFEXITED(st) {
                        write_status(a.status_w, STATUS_EXITED, libc::WEXITSTATUS(st), el);
                    } else {
                        write_status(a.status_w, STATUS_SIGNALED, libc::WTERMSIG(st), el);
                    }
                    finish(a);
                }
            }
        }
    }
}

/// Open the proxy's listening socket on the sandbox's own loopback and pass it to the caller over
/// `sock` (SCM_RIGHTS): a socket keeps the network namespace it was made in, so the caller serves
/// the proxy here from outside, and nothing else of the host is reachable.
fn send_proxy_listener(sock: RawFd, port: u16) -> Result<(), i32> {
    // SAFETY: plain socket calls on stack data; every descriptor is closed before returning.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(last_errno());
        }
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) != 0
            || libc::listen(fd, 4096) != 0
        {
            let e = last_errno();
            libc::close(fd);
            return Err(e);
        }
        let r = super::sys::send_fd(sock, &[0], Some(fd));
        libc::close(fd);
        libc::close(sock);
        r?;
    }
    Ok(())
}

/// End the run. With namespaces, the init's exit does it (the kernel kills the pid namespace).
/// In the degraded mode the init kills every process of its Landlock domain (the scope limits
/// `kill(-1)` to the run's own processes, which all reparent to this subreaper), reaps them, and
/// only then exits, so that nothing of the run outlives it.
fn finish(a: &ChildArgs<'_>) -> ! {
    if a.degraded {
        loop {
            // SAFETY: kill and waitpid are async-signal-safe; -1 reaches only our domain.
            let r = unsafe {
                libc::kill(-1, libc::SIGKILL);
                libc::waitpid(-1, std::ptr::null_mut(), libc::__WALL)
            };
            if r < 0 && last_errno() == libc::ECHILD {
                break;
            }
        }
    }
    exit(0)
}

/// The degraded init: adopt orphans, drop root, and enter a Landlock domain whose scope confines
/// signals (its own and the program's) to the run.
fn degraded_init(a: &ChildArgs<'_>) -> Result<(), i32> {
    let e = |x: rustix::io::Errno| x.raw_os_error();
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER, 1) takes no pointer.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(last_errno());
    }
    if rustix::process::geteuid().is_root() {
        // Without NO_SETUID_FIXUP the uid change clears every capability.
        drop_bounding_set(a.cap_last)?;
        switch_ids(a, true)?;
    }
    rustix::thread::set_no_new_privs(true).map_err(e)?;
    super::landlock::restrict(a.init_scope_fd)?;
    // SAFETY: closing our own descriptor.
    unsafe { libc::close(a.init_scope_fd) };
    Ok(())
}

fn become_sandbox_user(a: &ChildArgs<'_>) -> Result<(), i32> {
    // Keep capabilities across the uid change (they are needed for the mounts that follow).
    rustix::thread::set_capabilities_secure_bits(CapabilitiesSecureBits::NO_SETUID_FIXUP)
        .map_err(|x| x.raw_os_error())?;
    switch_ids(a, a.drop_groups)
}

/// Become `a.uid`/`a.gid` (real, effective and saved), without supplementary groups if asked.
fn switch_ids(a: &ChildArgs<'_>, drop_groups: bool) -> Result<(), i32> {
    let e = |x: rustix::io::Errno| x.raw_os_error();
    if drop_groups {
        rustix::thread::set_thread_groups(&[]).map_err(e)?;
    }
    let gid = rustix::process::Gid::from_raw_unchecked(a.gid);
    let uid = rustix::process::Uid::from_raw_unchecked(a.uid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(e)?;
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(e)?;
    Ok(())
}

/// Empty the capability bounding set (needs CAP_SETPCAP).
fn drop_bounding_set(cap_last: u32) -> Result<(), i32> {
    for cap in 0..=cap_last {
        // SAFETY: prctl(PR_CAPBSET_DROP) takes a capability number; numbers up to cap_last exist.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// The program process: drop everything, then execve.
fn program_main(a: &ChildArgs<'_>, init_pid: libc::pid_t) -> ! {
    let rep = a.report_w;
    // SAFETY: signal-mask and disposition resets on local data; all async-signal-safe.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            step_fail(rep, Step::SignalMask, last_errno());
        }
        // Dispositions set to "ignore" survive execve; the caller's (Python ignores SIGPIPE) must
        // not leak into the program.
        super::sys::set_all_signals(false, &[]);
        libc::umask(0o022);
    }
    if let Err(e) = rustix::process::setsid() {
        step_fail(rep, Step::Session, e.raw_os_error());
    }
    // Move the three stdio sources above 2 first, so that none is overwritten by another's dup2.
    let srcs = [a.stdin, a.stdout, a.stderr];
    let mut high = [-1; 3];
    for i in 0..3 {
        // SAFETY: duplicating descriptors we hold.
        high[i] = unsafe { libc::fcntl(srcs[i], libc::F_DUPFD_CLOEXEC, 3) };
        if high[i] < 0 {
            step_fail(rep, Step::Stdio, last_errno());
        }
    }
    for (i, &h) in high.iter().enumerate() {
        // SAFETY: as above; dup2 clears close-on-exec on the target.
        if unsafe { libc::dup2(h, i as i32) } < 0 {
            step_fail(rep, Step::Stdio, last_errno());
        }
    }
    // Everything above 2 closes at execve (the report pipe stays usable until then).
    // SAFETY: only marks descriptors close-on-exec.
    if unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as i32) } != 0 {
        step_fail(rep, Step::CloseFds, last_errno());
    }
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        step_fail(rep, Step::DeathSignal, e.raw_os_error());
    }
    // SAFETY: getppid is a plain syscall.
    if unsafe { libc::getppid() } != init_pid {
        exit(1); // init is already gone
    }
    if let Err(e) = rustix::thread::set_no_new_privs(true) {
        step_fail(rep, Step::NoNewPrivs, e.raw_os_error());
    }
    let locked = CapabilitiesSecureBits::NO_ROOT
        | CapabilitiesSecureBits::NO_ROOT_LOCKED
        | CapabilitiesSecureBits::NO_SETUID_FIXUP
        | CapabilitiesSecureBits::NO_SETUID_FIXUP_LOCKED
        | CapabilitiesSecureBits::KEEP_CAPS_LOCKED
        | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE
        | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE_LOCKED;
    // Without a user namespace the program has no capability to drop, nor the CAP_SETPCAP that
    // locking the securebits needs (a root caller's degraded init emptied the bounding set).
    if !a.degraded {
        if let Err(e) = rustix::thread::set_capabilities_secure_bits(locked) {
            step_fail(rep, Step::SecureBits, e.raw_os_error());
        }
    }
    if !a.degraded {
        if let Err(e) = drop_bounding_set(a.cap_last) {
            step_fail(rep, Step::BoundingSet, e);
        }
    }
    if let Err(e) = rustix::thread::clear_ambient_capability_set() {
        step_fail(rep, Step::Capabilities, e.raw_os_error());
    }
    let none = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    if let Err(e) = rustix::thread::set_capabilities(None, none) {
        step_fail(rep, Step::Capabilities, e.raw_os_error());
    }
    // The second filesystem layer (needs no_new_privs, set above).
    if a.landlock_fd >= 0 {
        if let Err(e) = super::landlock::restrict(a.landlock_fd) {
            step_fail(rep, Step::LandlockRestrict, e);
        }
    }
    // No core dumps, and none through a host core_pattern pipe helper (which would run as root on
    // the program's memory): the kernel aborts pipe dumps when RLIMIT_CORE is exactly 1, and a
    // file dump needs more than 1 byte. Soft and hard, so the program cannot raise it.
    let one = rustix::process::Rlimit {
        current: Some(1),
        maximum: Some(1),
    };
    if let Err(e) = rustix::process::setrlimit(rustix::process::Resource::Core, one) {
        step_fail(rep, Step::CoreLimit, e.raw_os_error());
    }
    for &(res, soft, hard) in a.rlimits {
        let lim = rustix::process::Rlimit {
            current: Some(soft),
            maximum: Some(hard),
        };
        if let Err(e) = rustix::process::setrlimit(res, lim) {
            step_fail(rep, Step::ResourceLimits, e.raw_os_error());
        }
    }
    if let Some(set) = a.affinity {
        // SAFETY: sched_setaffinity reads a cpu_set_t of the size given.
        if unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) } != 0 {
            step_fail(rep, Step::ResourceLimits, last_errno());
        }
    }
    if let Err(e) = rustix::process::chdir(a.workdir) {
        step_fail(rep, Step::WorkingDir, e.raw_os_error());
    }
    // Before the main filters, which need not allow its seccomp call.
    if let Some(m) = a.memwatch {
        if let Err(e) = m.install() {
            step_fail(rep, Step::MemoryObserver, e);
        }
    }
    // Last before execve: from here on the program's syscalls are filtered.
    for f in [&a.filters.by_number, &a.filters.by_argument] {
        if let Err(e) = super::seccomp::install(f) {
            step_fail(rep, Step::Seccomp, e);
        }
    }
    let mut err = libc::ENOENT;
    for (i, path) in a.exec_paths.iter().enumerate() {
        // SAFETY: path, argv and envp are NUL-terminated and outlive the call.
        unsafe { libc::execve(path.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr()) };
        let e = last_errno();
        match e {
            libc::ENOENT | libc::ENOTDIR => continue,
            libc::EACCES => {
                err = e;
                let _ = i;
                continue;
            }
            _ => {
                err = e;
                break;
            }
        }
    }
    fail(rep, REPORT_EXEC, 0, err)
}
