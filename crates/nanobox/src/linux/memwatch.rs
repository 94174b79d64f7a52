//! The degraded memory limit's verdict: whether `RLIMIT_AS` is what stopped a failed run.
//!
//! Without a cgroup, `memory_limit` is `RLIMIT_AS` on each process (see [`super::limits`]): the
//! kernel refuses `mmap`, `mremap` and `brk` growth past it with `ENOMEM`, and the program fails in
//! its own way (Python's `MemoryError`, a C program's `SIGSEGV` on a null pointer, an abort).
//! Nothing is killed, so no counter says the limit was reached. This module watches instead:
//!
//! - the program process, after fork and before `execve`, installs a small seccomp filter that
//!   answers `SECCOMP_RET_USER_NOTIF` to the three calls (native architecture only; anything else
//!   is `ALLOW` here and the main filter's business) and sends the filter's listener to the caller
//!   over a socket pair (`SCM_RIGHTS`);
//! - a thread of the caller, started right after the clone (the program waits on its first `brk`
//!   for an answer, so nothing is started on its path), takes the listener, receives each
//!   notification, reads the process's address space
//!   (`/proc/PID/statm`, the kernel's `total_vm`), judges whether the request grows it past the
//!   limit as the kernel counts it (`total_vm + growth > RLIMIT_AS` in pages; `/proc/PID/maps`
//!   only near the limit, for `MAP_FIXED` overlaps and the heap's end), checks that the
//!   notification is still valid (so the pid read was the caller's), records a refusal, and
//!   answers `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the kernel itself then runs the call and applies
//!   the limit. An observer only, never a boundary: a stale or racing judgement changes a verdict,
//!   never what the program may do.
//!
//! A run that fails (non-zero exit, or a signal) after a refusal is `MemoryLimit`; one that exits
//! 0 after handling a refused request is its own success (the rule of the cgroup's OOM counter).
//! Stacked filters give the most restrictive answer (`ERRNO` before `USER_NOTIF` before
//! `ALLOW`), so the main filter's refusals are unchanged.
//!
//! Where the kernel lacks `SECCOMP_USER_NOTIF_FLAG_CONTINUE` (Linux 5.5), or the caller's `/proc`
//! is not of its own pid namespace (notification pids are in the caller's), runs keep the
//! program's own outcome and the memory limit's mechanism says why; a run whose filter the kernel
//! refuses (EBUSY: a filter of the caller already has a listener) says so in its `degraded` notes.
//!
//! Cost (platform-linux.md, "The degraded memory limit's verdict"): about 4 µs per notified call
//! here, no measurable difference on a whole `python3 -c pass`. What it changes for the program:
//! the three calls, like slow system calls, can fail with EINTR when a handler installed without
//! SA_RESTART runs before this thread has received the notification.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::thread::JoinHandle;

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::Resource;

use super::limits::LimitsPlan;
use super::sys::last_errno;

/// `seccomp_data.arch` of the architecture this is built for.
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: Option<u32> = Some(0xc000_003e); // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: Option<u32> = Some(0xc000_00b7); // AUDIT_ARCH_AARCH64
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE_ARCH: Option<u32> = None;

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20;
const JMP_JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

const fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// The observer's filter: `USER_NOTIF` for the native `mmap`, `mremap` and `brk`, `ALLOW` for
/// everything else (x32 numbers carry a high bit, so they never equal these; foreign
/// architectures and x32 are refused by the main filter).
static FILTER: [libc::sock_filter; 8] = [
    insn(LD_W_ABS, 0, 0, DATA_ARCH),
    insn(JMP_JEQ_K, 0, 4, native_arch()),
    insn(LD_W_ABS, 0, 0, DATA_NR),
    insn(JMP_JEQ_K, 3, 0, libc::SYS_mmap as u32),
    insn(JMP_JEQ_K, 2, 0, libc::SYS_mremap as u32),
    insn(JMP_JEQ_K, 1, 0, libc::SYS_brk as u32),
    insn(RET_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    insn(RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF),
];

const fn native_arch() -> u32 {
    match NATIVE_ARCH {
        Some(a) => a,
        // Never installed (see `support`); an arch value no kernel reports.
        None => 0,
    }
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (linux/seccomp.h; the libc crate lacks it).
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;

/// What the memory limit's mechanism says when refusals are observed.
const OBSERVED: &str = "; its refusals are observed (seccomp user notification on mmap, mremap \
                        and brk): a run that fails after one is MemoryLimit";

/// How a sandbox's runs observe the degraded memory limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// `RLIMIT_AS` in bytes.
    limit: u64,
    /// The filter's flags: a new listener; from Linux 6.0 also a killable wait once the caller has
    /// received a notification (a signal handler then cannot make the call fail with EINTR).
    flags: libc::c_ulong,
}

/// The observer for a plan whose memory limit is `RLIMIT_AS`, if this host supports it; either
/// way the memory limit's mechanism in `limits` says what a failed run's outcome rests on.
pub(crate) fn plan(limits: &mut LimitsPlan) -> Option<Plan> {
    let limit = limits
        .rlimits
        .iter()
        .find(|(r, _, _)| *r == Resource::As)
        .map(|&(_, soft, _)| soft)?;
    let entry = limits.enforcement.iter_mut().find(|e| e.limit == "memory");
    match support() {
        Ok(flags) => {
            if let Some(e) = entry {
                e.mechanism.push_str(OBSERVED);
            }
            Some(Plan { limit, flags })
        }
        Err(why) => {
            if let Some(e) = entry {
                e.mechanism.push_str(&unobserved(&why));
            }
            None
        }
    }
}

fn unobserved(why: &str) -> String {
    format!(
        "; its refusals cannot be observed ({why}): a program it stops ends with its own exit or \
         signal, not MemoryLimit"
    )
}

/// The observer's filter flags on this host, or why there is no observer.
fn support() -> std::result::Result<libc::c_ulong, String> {
    if NATIVE_ARCH.is_none() {
        return Err("no observer for this architecture".into());
    }
    if !super::kernel_at_least(5, 5) {
        return Err("seccomp user notification with CONTINUE needs Linux 5.5".into());
    }
    let action: u32 = libc::SECCOMP_RET_USER_NOTIF;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 that outlives the call; it changes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    };
    if r != 0 {
        return Err(format!(
            "seccomp refuses user notification: {}",
            io::Error::from_raw_os_error(last_errno())
        ));
    }
    // Notifications carry pids of the receiver's pid namespace; /proc must show that one.
    let me = rustix::process::getpid().as_raw_nonzero().get().to_string();
    if std::fs::read_link("/proc/self").ok().as_deref() != Some(std::path::Path::new(&me)) {
        return Err("/proc is not of this process's pid namespace".into());
    }
    let mut flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if super::kernel_at_least(6, 0) {
        flags |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    }
    Ok(flags)
}

/// The socket pair the program sends the listener on: (the caller's end, the sandbox's end).
pub(crate) fn pair() -> crate::error::Result<(OwnedFd, OwnedFd)> {
    rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::SEQPACKET,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| crate::error::Error::io("creating the memory observer's socket", e.into()))
}

/// What the program process needs, prepared before the clone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildSide {
    pub sock: RawFd,
    flags: libc::c_ulong,
}

impl Plan {
    pub(crate) fn child_side(&self, sock: RawFd) -> ChildSide {
        ChildSide {
            sock,
            flags: self.flags,
        }
    }
}

impl ChildSide {
    /// In the program process (no_new_privs set), before the main filters: install the
    /// observer's filter and send its listener to the caller. Async-signal-safe: syscalls on
    /// stack data and the static filter. A filter the kernel refuses (EBUSY: one of the caller's
    /// filters already has a listener) is reported to the caller, and the run goes on unobserved;
    /// a listener that cannot be sent is an error (its filter would answer ENOSYS once it closed).
    pub(crate) fn install(&self) -> Result<(), i32> {
        let prog = libc::sock_fprog {
            len: FILTER.len() as u16,
            filter: FILTER.as_ptr() as *mut libc::sock_filter,
        };
        let set = |flags: libc::c_ulong| {
            // SAFETY: `prog` points at the static filter; the kernel copies it.
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    flags,
                    &prog as *const libc::sock_fprog,
                )
            }
        };
        let mut fd = set(self.flags);
        if fd < 0 && last_errno() == libc::EINVAL {
            // A kernel without the killable wait.
            fd = set(self.flags & !libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
        }
        let r = if fd < 0 {
            let e = last_errno();
            // Unsent, the caller finds no message, and says so just the same.
            let _ = send(self.sock, e, -1);
            Ok(())
        } else {
            let r = send(self.sock, 0, fd as RawFd);
            // SAFETY: closing our copy of the listener (the caller's is in flight).
            unsafe { libc::close(fd as RawFd) };
            r
        };
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(self.sock) };
        r
    }
}

/// Send `status` (0: `fd` attached; else the errno of the refused filter) on `sock`.
fn send(sock: RawFd, status: i32, fd: RawFd) -> Result<(), i32> {
    super::sys::send_fd(sock, &status.to_ne_bytes(), (fd >= 0).then_some(fd))
}

/// Start the run's observer thread, right after the clone: it waits for the listener the program
/// sends on `sock` (so that no thread has to be started while the program waits on its first
/// `brk`), then answers it. Without a listener (the kernel refused the filter, or the program
/// was never executed) the thread ends, and [`Seen::unobserved`] says why.
pub(crate) fn start(sock: OwnedFd, plan: &Plan) -> io::Result<Watch> {
    let (stop_r, stop_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let judge = Judge::new(plan.limit);
    let thread = std::thread::Builder::new()
        .name("nanobox-memwatch".into())
        .spawn(move || match receive(&sock, &stop_r) {
            Ok(listener) => serve(listener, stop_r, judge),
            Err(why) => Seen {
                unobserved: Some(why),
                ..Seen::default()
            },
        })?;
    Ok(Watch {
        stop: Some(stop_w),
        thread: Some(thread),
        limit: plan.limit,
    })
}

/// Wait for the program's message on `sock` (or `stop`): its listener, or why there is none.
fn receive(sock: &OwnedFd, stop: &OwnedFd) -> std::result::Result<OwnedFd, String> {
    loop {
        let mut fds = [
            PollFd::new(sock, PollFlags::IN),
            PollFd::new(stop, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("waiting for the listener: {e}")),
            Ok(_) if !fds[1].revents().is_empty() => return Err("the run ended first".into()),
            Ok(_) => break,
        }
    }
    let mut status = [0u8; 4];
    let got = super::sys::recv_fd(sock, &mut status);
    match got {
        Ok((_, Some(fd))) => {
            // Linux 6.6+: this thread and the waiting task hand over on one CPU, without
            // waiting to be scheduled. Older kernels refuse the flag, and wake as usual.
            // SAFETY: NOTIF_SET_FLAGS takes its flags by value.
            unsafe {
                libc::ioctl(
                    fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                    SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
                )
            };
            Ok(fd)
        }
        Ok((4, None)) => Err(format!(
            "the kernel refused the observer's seccomp filter: {}",
            io::Error::from_raw_os_error(i32::from_ne_bytes(status))
        )),
        Ok((_, None)) => Err("the program sent no listener".into()),
        Err(e) => Err(format!("receiving the listener: {e}")),
    }
}

/// A run's observer thread. Stopped (and joined) once every process of the run is gone.
#[derive(Debug)]
pub(crate) struct Watch {
    /// Closing it wakes the thread, which ends.
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<Seen>>,
    limit: u64,
}

impl Watch {
    /// Stop the thread (the run's processes are gone) and say what it saw.
    pub(crate) fn finish(mut self) -> Seen {
        self.stop = None;
        let mut seen = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        seen.limit = self.limit;
        seen
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The refusals one run's observer saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Requests the limit refused.
    pub refusals: u64,
    /// The first of them.
    pub first: Option<Refusal>,
    /// Why the run was not observed, if it was not.
    unobserved: Option<String>,
    limit: u64,
}

/// One request the limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub call: &'static str,
    /// By how much it would have grown the address space (whole pages).
    pub bytes: u64,
    /// The address space the process had then.
    pub in_use: u64,
}

impl Seen {
    /// The line for the run's `degraded` notes when its refusals could not be observed (not for
    /// a run whose program was never executed: there is nothing to say then).
    pub(crate) fn unobserved(&self) -> Option<String> {
        let why = self.unobserved.as_deref()?;
        Some(format!(
            "memory limit: this run's RLIMIT_AS refusals were not observed ({why}): a program it \
             stopped ends with its own exit or signal, not MemoryLimit"
        ))
    }

    /// The line for the run's `degraded` notes, when the limit refused something.
    pub(crate) fn note(&self) -> Option<String> {
        let f = self.first?;
        let more = match self.refusals {
            0 | 1 => String::new(),
            n => format!("; {} more refused after it", n - 1),
        };
        Some(format!(
            "memory limit: RLIMIT_AS ({} bytes) refused a request of {} bytes ({} with {} bytes \
             of address space in use){more}; seen by the seccomp observer",
            self.limit, f.bytes, f.call, f.in_use
        ))
    }
}

/// Answer every notification until the caller stops the thread or every task of the filter is
/// gone; record each request the limit refuses.
fn serve(listener: OwnedFd, stop: OwnedFd, mut judge: Judge) -> Seen {
    let mut seen = Seen::default();
    loop {
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::new(&stop, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
        let (l, s) = (fds[0].revents(), fds[1].revents());
        if !s.is_empty() {
            break;
        }
        if l.contains(PollFlags::IN) {
            answer_one(listener.as_fd().as_raw_fd(), &mut judge, &mut seen);
        } else if !l.is_empty() {
            break; // POLLHUP (Linux 5.8+): no task uses the filter any more
        }
    }
    seen
}

fn answer_one(fd: RawFd, judge: &mut Judge, seen: &mut Seen) {
    // SAFETY: seccomp_notif is plain data; the kernel wants it zeroed.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: NOTIF_RECV fills a seccomp_notif we own.
    if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
        return; // ENOENT: the task was interrupted or killed meanwhile
    }
    let refusal = judge.check(req.pid, i64::from(req.data.nr), &req.data.args);
    // Still valid: the task waits on this notification, so `req.pid` named it while /proc was
    // read (seccomp_unotify(2)).
    // SAFETY: NOTIF_ID_VALID reads a u64 we own.
    let valid = unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) } == 0;
    if let (true, Some(r)) = (valid, refusal) {
        seen.refusals += 1;
        seen.first.get_or_insert(r);
    }
    let resp = libc::seccomp_notif_resp {
        id: req.id,
        val: 0,
        error: 0,
        flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    };
    // SAFETY: NOTIF_SEND reads a seccomp_notif_resp we own. ENOENT (the task is gone) is fine.
    unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
}

/// A request that may grow the address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// `fixed`: MAP_FIXED, which replaces what it overlaps (MAP_FIXED_NOREPLACE fails instead).
    Mmap {
        addr: u64,
        len: u64,
        fixed: bool,
    },
    /// `target`: MREMAP_FIXED's target, unmapped first.
    Mremap {
        old_len: u64,
        new_len: u64,
        dont_unmap: bool,
        target: Option<u64>,
    },
    Brk {
        addr: u64,
    },
}

impl Call {
    fn of(nr: i64, args: &[u64; 6]) -> Option<Call> {
        let flag = |v: u64, f: libc::c_int| v & f as u64 != 0;
        match nr {
            libc::SYS_mmap if args[1] > 0 => Some(Call::Mmap {
                addr: args[0],
                len: args[1],
                fixed: flag(args[3], libc::MAP_FIXED) && !flag(args[3], libc::MAP_FIXED_NOREPLACE),
            }),
            libc::SYS_mremap => Some(Call::Mremap {
                old_len: args[1],
                new_len: args[2],
                dont_unmap: flag(args[3], libc::MREMAP_DONTUNMAP),
                target: flag(args[3], libc::MREMAP_FIXED).then_some(args[4]),
            }),
            libc::SYS_brk if args[0] > 0 => Some(Call::Brk { addr: args[0] }),
            _ => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Call::Mmap { .. } => "mmap",
            Call::Mremap { .. } => "mremap",
            Call::Brk { .. } => "brk",
        }
    }
}

/// Whole pages covering `bytes`.
fn pages(bytes: u64, page: u64) -> u64 {
    bytes.div_ceil(page)
}

/// The first field of /proc/PID/statm: the address space in pages (`total_vm`).
fn parse_statm(s: &[u8]) -> Option<u64> {
    let end = s.iter().position(|b| *b == b' ').unwrap_or(s.len());
    std::str::from_utf8(&s[..end]).ok()?.trim().parse().ok()
}

/// `start_brk`, field 47 of /proc/PID/stat (0 when the reader may not see it).
fn parse_start_brk(s: &str) -> Option<u64> {
    // Fields after the command name, which may hold spaces and parentheses: field 3 onwards.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_ascii_whitespace().nth(47 - 3)?.parse().ok()
}

/// The mappings of /proc/PID/maps: (start, end, the heap).
fn parse_maps(s: &str) -> impl Iterator<Item = (u64, u64, bool)> + '_ {
    s.lines().filter_map(|l| {
        let (range, rest) = l.split_once(' ')?;
        let (a, b) = range.split_once('-')?;
        let start = u64::from_str_radix(a, 16).ok()?;
        let end = u64::from_str_radix(b, 16).ok()?;
        Some((start, end, rest.ends_with("[heap]")))
    })
}

/// Pages of [addr, addr + len) that are already mapped.
fn overlap_pages(maps: &str, addr: u64, len: u64, page: u64) -> u64 {
    let end = addr.saturating_add(pages(len, page).saturating_mul(page));
    parse_maps(maps)
        .map(|(s, e, _)| e.min(end).saturating_sub(s.max(addr)))
        .sum::<u64>()
        / page
}

/// Judges requests against the limit, as the kernel's `may_expand_vm` counts.
struct Judge {
    limit_pages: u64,
    page: u64,
    /// /proc/TID/statm of the tasks seen, read again for each of their requests.
    statm: HashMap<u32, File>,
}

impl Judge {
    fn new(limit: u64) -> Judge {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096);
        Judge {
            limit_pages: limit / page,
            page,
            statm: HashMap::new(),
        }
    }

    /// The refusal, when `pid`'s request `nr(args)` grows its address space past the limit.
    fn check(&mut self, pid: u32, nr: i64, args: &[u64; 6]) -> Option<Refusal> {
        if pid == 0 {
            return None; // not in our pid namespace
        }
        let call = Call::of(nr, args)?;
        let vm = self.vm_pages(pid)?;
        let growth = self.growth(pid, call, self.limit_pages.saturating_sub(vm))?;
        (vm.saturating_add(growth) > self.limit_pages).then(|| Refusal {
            call: call.name(),
            bytes: growth.saturating_mul(self.page),
            in_use: vm.saturating_mul(self.page),
        })
    }

    /// How many pages `call` adds; exact (from /proc/PID/maps) only when an upper bound does not
    /// fit in `room`, so that far from the limit a request costs one read of statm.
    fn growth(&self, pid: u32, call: Call, room: u64) -> Option<u64> {
        let p = self.page;
        let maps = || std::fs::read_to_string(format!("/proc/{pid}/maps")).ok();
        match call {
            Call::Mmap { addr, len, fixed } => {
                let bound = pages(len, p);
                if !fixed || bound <= room {
                    return Some(bound);
                }
                Some(bound - overlap_pages(&maps()?, addr, len, p).min(bound))
            }
            Call::Mremap {
                old_len,
                new_len,
                dont_unmap,
                target,
            } => {
                let bound = if dont_unmap {
                    pages(old_len, p)
                } else {
                    pages(new_len, p).saturating_sub(pages(old_len, p))
                };
                match target {
                    Some(t) if bound > room => {
                        Some(bound - overlap_pages(&maps()?, t, new_len, p).min(bound))
                    }
                    _ => Some(bound),
                }
            }
            Call::Brk { addr } => {
                // The heap grows from its current end, at least start_brk.
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let start = parse_start_brk(&stat).filter(|s| *s > 0)?;
                let bound = pages(addr, p).saturating_sub(pages(start, p));
                if bound <= room {
                    return Some(bound);
                }
                let heap_end = parse_maps(&maps()?)
                    .find(|m| m.2)
                    .map(|m| m.1)
                    .unwrap_or(start);
                Some(pages(addr, p).saturating_sub(pages(heap_end, p)))
            }
        }
    }

    /// The address space of task `pid` in pages.
    fn vm_pages(&mut self, pid: u32) -> Option<u64> {
        let mut buf = [0u8; 128];
        if let Some(f) = self.statm.get(&pid) {
            // A descriptor of a task that is gone fails (ESRCH), also when its pid was reused.
            if let Ok(n) = f.read_at(&mut buf, 0) {
                return parse_statm(&buf[..n]);
            }
            self.statm.remove(&pid);
        }
        if self.statm.len() >= 1024 {
            self.statm.clear();
        }
        let f = File::open(format!("/proc/{pid}/statm")).ok()?;
        let n = f.read_at(&mut buf, 0).ok()?;
        self.statm.insert(pid, f);
        parse_statm(&buf[..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run the filter (the instructions it uses) on one syscall.
    fn eval(arch: u32, nr: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &FILTER[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => acc = if i.k == DATA_ARCH { arch } else { nr },
                RET_K => return i.k,
                JMP_JEQ_K => pc += if acc == i.k { i.jt } else { i.jf } as usize,
                c => panic!("opcode {c:#x} not modelled"),
            }
        }
    }

    #[test]
    fn the_filter_notifies_the_native_growth_calls_only() {
        let native = NATIVE_ARCH.unwrap();
        for nr in [libc::SYS_mmap, libc::SYS_mremap, libc::SYS_brk] {
            assert_eq!(eval(native, nr as u32), libc::SECCOMP_RET_USER_NOTIF);
            // Another architecture's call (the main filter refuses it).
            assert_eq!(eval(0x4000_0003, nr as u32), libc::SECCOMP_RET_ALLOW);
            // x32 numbers carry 0x40000000.
            assert_eq!(
                eval(native, nr as u32 | 0x4000_0000),
                libc::SECCOMP_RET_ALLOW
            );
        }
        for nr in [libc::SYS_munmap, libc::SYS_read, libc::SYS_mprotect] {
            assert_eq!(eval(native, nr as u32), libc::SECCOMP_RET_ALLOW);
        }
    }

    fn args(a: &[u64]) -> [u64; 6] {
        let mut out = [0; 6];
        out[..a.len()].copy_from_slice(a);
        out
    }

    #[test]
    fn calls_that_cannot_grow_are_not_judged() {
        assert_eq!(Call::of(libc::SYS_brk, &args(&[0])), None); // brk(0) asks
        assert_eq!(Call::of(libc::SYS_mmap, &args(&[0, 0])), None); // EINVAL
        assert_eq!(Call::of(libc::SYS_munmap, &args(&[0, 4096])), None);
        let fixed = (libc::MAP_FIXED | libc::MAP_PRIVATE) as u64;
        let noreplace = (libc::MAP_FIXED_NOREPLACE | libc::MAP_FIXED) as u64;
        assert_eq!(
            Call::of(libc::SYS_mmap, &args(&[1 << 20, 4096, 3, fixed])),
            Some(Call::Mmap {
                addr: 1 << 20,
                len: 4096,
                fixed: true
            })
        );
        assert!(matches!(
            Call::of(libc::SYS_mmap, &args(&[1 << 20, 4096, 3, noreplace])),
            Some(Call::Mmap { fixed: false, .. })
        ));
    }

    /// A judge for `limit` bytes.
    fn judge_with(limit: u64) -> Judge {
        Judge::new(limit)
    }

    #[test]
    fn growth_is_the_kernel_s_count_of_new_pages() {
        let j = judge_with(64 << 20);
        let p = j.page;
        let mmap = Call::of(libc::SYS_mmap, &args(&[0, 1_000_000])).unwrap();
        // Far from the limit, no /proc read beyond statm: an unknown pid does not matter.
        assert_eq!(j.growth(0, mmap, u64::MAX), Some(1_000_000u64.div_ceil(p)));
        let grow = Call::of(libc::SYS_mremap, &args(&[0, 2 * p, 3 * p, 1])).unwrap();
        assert_eq!(j.growth(0, grow, u64::MAX), Some(1));
        let shrink = Call::of(libc::SYS_mremap, &args(&[0, 3 * p, p, 1])).unwrap();
        assert_eq!(j.growth(0, shrink, u64::MAX), Some(0));
        let keep_old = libc::MREMAP_DONTUNMAP as u64 | 1;
        let dup = Call::of(libc::SYS_mremap, &args(&[0, 2 * p, 2 * p, keep_old])).unwrap();
        assert_eq!(j.growth(0, dup, u64::MAX), Some(2));
    }

    #[test]
    fn near_the_limit_a_fixed_mapping_counts_only_what_it_adds() {
        let maps = "1000-3000 rw-p 00000000 00:00 0 \n\
                    5000-6000 r--p 00000000 08:01 42 /usr/lib/x.so\n\
                    7000-9000 rw-p 00000000 00:00 0                          [heap]\n";
        // [0x2000, 0x6000): 0x2000-0x3000 and 0x5000-0x6000 are mapped.
        assert_eq!(overlap_pages(maps, 0x2000, 0x4000, 4096), 2);
        assert_eq!(overlap_pages(maps, 0xa000, 0x1000, 4096), 0);
        assert_eq!(overlap_pages(maps, 0, u64::MAX, 4096), 5);
        assert_eq!(
            parse_maps(maps).find(|m| m.2).map(|m| m.1),
            Some(0x9000),
            "the heap's end"
        );
    }

    #[test]
    fn proc_fields_parse() {
        assert_eq!(parse_statm(b"16384 2000 1000 1 0 3000 0\n"), Some(16384));
        assert_eq!(parse_statm(b"x"), None);
        // comm with a space and a parenthesis; start_brk is field 47.
        let mut stat = String::from("42 (a b) c) S");
        for i in 4..=52 {
            stat.push_str(&format!(" {}", if i == 47 { 0x5555_0000u64 } else { i }));
        }
        assert_eq!(parse_start_brk(&stat), Some(0x5555_0000));
        assert_eq!(parse_start_brk("1 (x) S 2 3"), None);
    }

    #[test]
    fn a_live_process_s_requests_are_judged_against_its_address_space() {
        // A quiet process, so that its address space holds still while it is judged: a shell
        // that has said so and waits on its stdin.
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", "echo ready; read x"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        let mut small = judge_with(1 << 20);
        let p = small.page;
        let vm = small.vm_pages(pid).unwrap();
        assert!(vm > 0);
        let r = small
            .check(pid, libc::SYS_mmap, &args(&[0, p]))
            .expect("a request past a limit below the address space in use");
        assert_eq!((r.call, r.bytes, r.in_use), ("mmap", p, vm * p));
        // One page of room: a page fits, two do not.
        let mut at = judge_with((vm + 1) * p);
        assert_eq!(at.check(pid, libc::SYS_mmap, &args(&[0, p])), None);
        let r = at.check(pid, libc::SYS_mmap, &args(&[0, 2 * p])).unwrap();
        assert_eq!(r.bytes, 2 * p);
        // MAP_FIXED over what is mapped adds nothing; over an unmapped range, all of it.
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
        let (s, e, _) = parse_maps(&maps).next().unwrap();
        let fixed = (libc::MAP_FIXED | libc::MAP_PRIVATE) as u64;
        assert_eq!(
            at.check(pid, libc::SYS_mmap, &args(&[s, e - s, 3, fixed])),
            None
        );
        // brk from the heap's end (the start of the heap when it has none yet).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let end = parse_maps(&maps)
            .find(|m| m.2)
            .map(|m| m.1)
            .unwrap_or_else(|| parse_start_brk(&stat).unwrap().div_ceil(p) * p);
        assert_eq!(at.check(pid, libc::SYS_brk, &args(&[end + p])), None);
        let r = at.check(pid, libc::SYS_brk, &args(&[end + 2 * p])).unwrap();
        assert_eq!((r.call, r.bytes), ("brk", 2 * p));
        drop(child.stdin.take());
        child.wait().unwrap();
    }

    #[test]
    fn the_note_names_the_limit_and_the_first_refusal() {
        let s = Seen {
            refusals: 3,
            first: Some(Refusal {
                call: "mmap",
                bytes: 1 << 20,
                in_use: 60 << 20,
            }),
            unobserved: None,
            limit: 64 << 20,
        };
        let n = s.note().unwrap();
        assert!(n.starts_with("memory limit: RLIMIT_AS (67108864 bytes) refused a request of 1048576 bytes (mmap with 62914560 bytes"), "{n}");
        assert!(n.contains("2 more refused"), "{n}");
        assert_eq!(Seen::default().note(), None);
    }
}
