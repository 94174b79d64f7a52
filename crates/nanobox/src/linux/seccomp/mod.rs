//! The default syscall filter of every run, compiled when a sandbox is built and installed by the
//! program process just before `execve`.
//!
//! Two filters are stacked; the kernel applies the more restrictive answer, and between two errno
//! answers the one of the later filter:
//! 1. **by syscall number** — a binary search over the syscall number: Docker's default
//!    allow-list is allowed, known-dangerous syscalls answer `EPERM`, any other answers
//!    `ENOSYS`, so libc falls back (e.g. `clone3` -> `clone`) and unknown new syscalls stay
//!    unreachable. A search tree rather than a chain of comparisons, because the kernel prepares
//!    each filter once per run (JIT, and its action cache emulates the filter for every syscall
//!    number): with the ~1,200-instruction chain seccompiler generates for this list, that cost
//!    0.3 ms per run on the test machine.
//! 2. **by argument** (seccompiler) — dangerous argument values of allowed syscalls answer
//!    `EPERM`: `ioctl` TIOCSTI/TIOCLINUX on the low 32 bits, sockets other than unix, inet, inet6
//!    and netlink-route, `socketpair` other than unix, `clone` with a namespace flag, `personality`
//!    other than Docker's harmless values; a mode with S_ISUID or S_ISGID in `chmod`, `fchmod`,
//!    `fchmodat`, `mknod`, `mknodat`, `creat`, and `open`/`openat` with `O_CREAT` or `O_TMPFILE`
//!    (see [`setid_mode_rules`]); in a user namespace, `chown` and `set*id` to an id the
//!    program does not hold (see [`foreign_id_rules`]); without one (the degraded mode, which
//!    has no pid namespace either), calls that change another process's scheduling, I/O
//!    priority or limits (see [`own_process_rules`]).
//!
//! The lists are names; each architecture's table ([`x86_64`], [`aarch64`]) gives the numbers,
//! and a name the architecture does not have is left out of its filter (aarch64 has none of the
//! legacy calls such as `open`, `fork`, `stat` or `pipe`: its libc uses `openat`, `clone`,
//! `newfstatat`, `pipe2`). Both filters are built from data on every host, so the tests check
//! both architectures' filters wherever they run; [`Arch::native`] picks the table, and a build
//! for another architecture refuses to run anything.
//!
//! Nothing kills: a program that tries something refused gets an error it can handle. The other
//! syscall ABIs of the architecture, i386 (`int 0x80`) and x32 numbers on x86_64 and 32-bit ARM
//! (AArch32 programs) on aarch64, are refused explicitly at the top of both filters
//! (seccompiler's own architecture check would kill the process instead, and does not look at
//! x32 numbers).

mod aarch64;
mod arch;
mod x86_64;

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule,
};

pub(crate) use arch::Arch;

/// The compiled filters, in the order they are installed.
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    pub by_number: BpfProgram,
    pub by_argument: BpfProgram,
}

/// Allowed: Docker's default allow-list, less what the deny-list below refuses. One list for
/// every architecture, as Docker's is: each filter takes the names its architecture has (aarch64
/// lacks the legacy calls and x86's own `arch_prctl`, `modify_ldt`, `*_thread_area`; Docker's
/// arm/arm64 entries `arm_fadvise64_64`, `arm_sync_file_range`, `sync_file_range2`, `breakpoint`,
/// `cacheflush`, `set_tls` are 32-bit ARM calls that aarch64's own table does not have).
/// `clone`, `ioctl`, `personality`, `socket` and `socketpair` are here and narrowed by the deny-list.
pub(crate) const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "alarm",
    "arch_prctl",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "clock_getres",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchownat",
    "fcntl",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstatfs",
    "fsync",
    "ftruncate",
    "futex",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getgroups",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresuid",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "ioprio_get",
    "ioprio_set",
    "io_submit",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "madvise",
    "membarrier",
    "memfd_create",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "modify_ldt",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedsend",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    // openat2 is left out on purpose: its mode sits in a struct the filter cannot read, so it
    // answers ENOSYS and libc and runtimes fall back to openat, whose mode is checked.
    "pause",
    "personality",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "sendfile",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsuid",
    "setgid",
    "setgroups",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "splice",
    "stat",
    "statfs",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_settime",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_settime",
    "times",
    "tkill",
    "truncate",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "write",
    "writev",
];

/// Refused with EPERM by the number filter.
pub(crate) const DENIED: &[&str] = &[
    // the mount family
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // namespaces
    "unshare",
    "setns",
    // keyrings, bpf, perf, userfaultfd, fanotify, io_uring, AIO
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "fanotify_init",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // AIO contexts come from one host-wide pool (fs.aio-max-nr) that a sandbox could drain
    "io_setup",
    // kernel images and modules
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    // file handles, other processes
    "open_by_handle_at",
    "name_to_handle_at",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    // the machine
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "sethostname",
    "setdomainname",
    "vhangup",
    "iopl",
    "ioperm",
    "lookup_dcookie",
    "uselib",
];

/// The values of the kernel's ABI that the argument filter compares. They are the same on x86_64
/// and aarch64 (both take them from asm-generic: fcntl.h, ioctls.h, sched.h, socket.h, stat.h),
/// so one set serves both filters on any host; `tests::abi_values_match_libc` checks them against
/// the libc crate of the target it runs on.
mod abi {
    pub const S_ISUID: u64 = 0o4000;
    pub const S_ISGID: u64 = 0o2000;
    pub const O_CREAT: u64 = 0o100;
    /// `__O_TMPFILE`, O_TMPFILE's own bit (O_TMPFILE is this | O_DIRECTORY, whose value differs
    /// between the two architectures).
    pub const O_TMPFILE_BIT: u64 = 0o20_000_000;
    pub const TIOCSTI: u64 = 0x5412;
    pub const TIOCLINUX: u64 = 0x541c;
    pub const CLONE_NEWNS: u64 = 0x0002_0000;
    pub const CLONE_NEWCGROUP: u64 = 0x0200_0000;
    pub const CLONE_NEWUTS: u64 = 0x0400_0000;
    pub const CLONE_NEWIPC: u64 = 0x0800_0000;
    pub const CLONE_NEWUSER: u64 = 0x1000_0000;
    pub const CLONE_NEWPID: u64 = 0x2000_0000;
    pub const CLONE_NEWNET: u64 = 0x4000_0000;
    pub const AF_UNIX: u64 = 1;
    pub const AF_INET: u64 = 2;
    pub const AF_INET6: u64 = 10;
    pub const AF_NETLINK: u64 = 16;
    pub const NETLINK_ROUTE: u64 = 0;
}

/// ioctl requests refused (compared on the low 32 bits, as the kernel reads them).
const DENIED_IOCTLS: &[u64] = &[abi::TIOCSTI, abi::TIOCLINUX];

/// Namespace flags refused in clone(2) (CLONE_NEWTIME cannot be given to clone; unshare is denied).
/// `clone` takes its flags first on both architectures (only s390 differs).
const CLONE_NEW_FLAGS: &[u64] = &[
    abi::CLONE_NEWNS,
    abi::CLONE_NEWCGROUP,
    abi::CLONE_NEWUTS,
    abi::CLONE_NEWIPC,
    abi::CLONE_NEWUSER,
    abi::CLONE_NEWPID,
    abi::CLONE_NEWNET,
];

/// personality(2) values allowed (Docker's list): PER_LINUX, PER_LINUX32, UNAME26,
/// PER_LINUX32|UNAME26, and the query 0xffffffff.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Result<Cond, String> {
    Cond::new(arg, len, op, value).map_err(|e| e.to_string())
}

fn rule(conds: Vec<Cond>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| e.to_string())
}

/// The argument rules of one architecture, by its syscall numbers. A syscall it does not have
/// gets no rule: the number filter answers ENOSYS for every number it does not list.
struct Rules {
    arch: Arch,
    by_nr: BTreeMap<i64, Vec<SeccompRule>>,
    /// Every name given, for the test that each is a syscall.
    #[cfg(test)]
    named: Vec<&'static str>,
}

impl Rules {
    fn new(arch: Arch) -> Rules {
        Rules {
            arch,
            by_nr: BTreeMap::new(),
            #[cfg(test)]
            named: Vec::new(),
        }
    }

    /// Add `rules` to those of syscall `name`, where the architecture has it.
    fn add(&mut self, name: &'static str, rules: Vec<SeccompRule>) {
        #[cfg(test)]
        self.named.push(name);
        if let Some(nr) = self.arch.nr(name) {
            self.by_nr.entry(i64::from(nr)).or_default().extend(rules);
        }
    }
}

/// The set-user-ID and set-group-ID bits of a file mode.
const SETID_BITS: [u64; 2] = [abi::S_ISUID, abi::S_ISGID];

/// `open` flags under which the mode argument is used: O_CREAT, and O_TMPFILE.
const CREATING_FLAGS: [u64; 2] = [abi::O_CREAT, abi::O_TMPFILE_BIT];

/// Refuse every way of giving a file the set-user-ID or set-group-ID bit.
///
/// A file the program marks setuid is, on the host, setuid to the file's host owner: root for a
/// root caller's idmapped mounts, the caller otherwise. `nosuid` on the sandbox's mount does not
/// protect the host, which sees the file on its own mount, so the bits must never be set at all.
/// Every syscall that takes a mode for a file it creates or changes is checked: `chmod` (arg 1),
/// `fchmod` (1), `fchmodat` (2), `mknod` (1), `mknodat` (2), `creat` (1), `open` (flags 1, mode
/// 2) and `openat` (flags 2, mode 3) when they create (aarch64 has only `fchmod`, `fchmodat`,
/// `mknodat` and `openat` of these). `fchmodat2` and `openat2` are not allowed at all (ENOSYS,
/// so libc falls back to the checked calls). Writing to, truncating or chown'ing a file that
/// already has the bits makes the kernel clear them, since the program never holds CAP_FSETID.
/// seccomp cannot tell a directory from a file, so S_ISGID on a directory (by chmod) is refused
/// too; a directory still inherits it from a set-group-ID parent.
fn setid_mode_rules(m: &mut Rules) -> Result<(), String> {
    let mode_at = |mode_arg: u8| -> Result<Vec<SeccompRule>, String> {
        SETID_BITS
            .iter()
            .map(|&bit| rule(vec![cond(mode_arg, Len::Dword, Op::MaskedEq(bit), bit)?]))
            .collect()
    };
    let creating = |flags_arg: u8, mode_arg: u8| -> Result<Vec<SeccompRule>, String> {
        let mut out = Vec::new();
        for &flag in &CREATING_FLAGS {
            for &bit in &SETID_BITS {
                out.push(rule(vec![
                    cond(flags_arg, Len::Dword, Op::MaskedEq(flag), flag)?,
                    cond(mode_arg, Len::Dword, Op::MaskedEq(bit), bit)?,
                ])?);
            }
        }
        Ok(out)
    };
    for (name, mode_arg) in [
        ("chmod", 1),
        ("fchmod", 1),
        ("fchmodat", 2),
        ("mknod", 1),
        ("mknodat", 2),
        ("creat", 1),
    ] {
        m.add(name, mode_at(mode_arg)?);
    }
    m.add("open", creating(1, 2)?);
    m.add("openat", creating(2, 3)?);
    Ok(())
}

/// The uid and gid the program holds, for [`foreign_id_rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProgramIds {
    pub uid: u32,
    pub gid: u32,
}

/// In a user namespace that maps one id, refuse with EPERM what an unprivileged user may not do
/// with another user's id: `chown`, `fchown`, `lchown`, `fchownat` to a uid or gid other than the
/// program's own (or -1, "unchanged"), and `setuid`, `setgid`, `setreuid`, `setregid`,
/// `setresuid`, `setresgid` to an id other than its own. The kernel refuses these anyway (the
/// program has no capabilities), but with EINVAL for an unmapped id, which programs and test
/// suites do not expect from an ordinary user; EPERM is what they get outside.
fn foreign_id_rules(m: &mut Rules, ids: ProgramIds) -> Result<(), String> {
    const UNCHANGED: u64 = u32::MAX as u64;
    // One rule per id argument: it matches when the argument is neither `own` nor -1.
    let foreign = |arg: u8, own: u32| -> Result<SeccompRule, String> {
        rule(vec![
            cond(arg, Len::Dword, Op::Ne, u64::from(own))?,
            cond(arg, Len::Dword, Op::Ne, UNCHANGED)?,
        ])
    };
    let (u, g) = (ids.uid, ids.gid);
    for (name, uid_arg, gid_arg) in [
        ("chown", 1, 2),
        ("fchown", 1, 2),
        ("lchown", 1, 2),
        ("fchownat", 2, 3),
    ] {
        m.add(name, vec![foreign(uid_arg, u)?, foreign(gid_arg, g)?]);
    }
    for (name, args, own) in [
        ("setuid", 0..1, u),
        ("setreuid", 0..2, u),
        ("setresuid", 0..3, u),
        ("setgid", 0..1, g),
        ("setregid", 0..2, g),
        ("setresgid", 0..3, g),
    ] {
        m.add(
            name,
            args.map(|a| foreign(a, own))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(())
}

/// `which` values of setpriority(2) and ioprio_set(2) that name one process (linux/resource.h,
/// linux/ioprio.h); the libc crate has no constant for the second.
const PRIO_PROCESS: u64 = 0;
const IOPRIO_WHO_PROCESS: u64 = 1;
/// prctl(2) core scheduling, whose third argument is a pid (linux/prctl.h).
const PR_SCHED_CORE: u64 = 62;

/// Without a pid namespace (the degraded mode), refuse with EPERM every allowed call that changes
/// another process, chosen by pid, process group or user, unless it names the calling process as
/// 0. The kernel lets a process change these for any process of its own uid (no capability, no
/// ptrace check, nothing Landlock governs), so the program could slow, pin, starve or cripple
/// same-uid host processes, the nanobox caller included (an RLIMIT_NOFILE of 0 made the CLI lose
/// the program's output). Refused:
/// - `setpriority` unless `PRIO_PROCESS` with who 0 (`PRIO_PGRP`, and `PRIO_USER`, whose who 0
///   means every process of the uid, are refused);
/// - `ioprio_set` unless `IOPRIO_WHO_PROCESS` with who 0;
/// - `sched_setaffinity`, `sched_setscheduler`, `sched_setparam`, `sched_setattr`, `prlimit64`
///   (also to read another process's limits), `get_robust_list`, `migrate_pages`, `move_pages`
///   with a pid other than 0 (the last two answer ENOSYS by number anyway);
/// - `prctl(PR_SCHED_CORE, cmd, pid)` with a pid other than 0.
///
/// `process_mrelease` takes a pidfd the filter cannot look into, and has no use on the caller
/// itself: the degraded mode refuses it by number (`degraded::EXTRA_DENIED`).
///
/// The filter sees numbers only, so per-thread calls by tid (`pthread_setaffinity_np`,
/// `pthread_setschedparam`, threads created with an affinity or scheduling attribute) and calls
/// naming the process's own pid by number are refused too; glibc's `nice`, `setrlimit` and
/// `getrlimit` pass 0. Left alone, because the kernel or Landlock already confines them:
/// `kill`, `tkill`, `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo`, `pidfd_send_signal`, and
/// `fcntl(F_SETOWN)` (Landlock's signal scope); `setpgid` and `wait4`/`waitid` (own children
/// only); `capset` (the caller only). The calls that only read (`getpriority`, `ioprio_get`,
/// `sched_get*`, `sched_rr_get_interval`, `getpgid`, `getsid`, `capget`) and `pidfd_open` stay:
/// they change nothing, and glibc's per-thread getters pass a tid.
fn own_process_rules(m: &mut Rules) -> Result<(), String> {
    let not = |arg: u8, value: u64| -> Result<SeccompRule, String> {
        rule(vec![cond(arg, Len::Dword, Op::Ne, value)?])
    };
    m.add("setpriority", vec![not(0, PRIO_PROCESS)?, not(1, 0)?]);
    m.add("ioprio_set", vec![not(0, IOPRIO_WHO_PROCESS)?, not(1, 0)?]);
    for name in [
        "sched_setaffinity",
        "sched_setscheduler",
        "sched_setparam",
        "sched_setattr",
        "prlimit64",
        "get_robust_list",
        "migrate_pages",
        "move_pages",
    ] {
        m.add(name, vec![not(0, 0)?]);
    }
    m.add(
        "prctl",
        vec![rule(vec![
            cond(0, Len::Dword, Op::Eq, PR_SCHED_CORE)?,
            cond(2, Len::Dword, Op::Ne, 0)?,
        ])?],
    );
    Ok(())
}

/// The argument checks of `arch` (EPERM when a rule matches).
fn argument_rules(arch: Arch, ids: Option<ProgramIds>) -> Result<Rules, String> {
    let mut m = Rules::new(arch);
    setid_mode_rules(&mut m)?;
    match ids {
        Some(ids) => foreign_id_rules(&mut m, ids)?,
        // No user namespace: the degraded mode, which has no pid namespace either.
        None => own_process_rules(&mut m)?,
    }
    m.add(
        "ioctl",
        DENIED_IOCTLS
            .iter()
            .map(|&req| rule(vec![cond(1, Len::Dword, Op::Eq, req)?]))
            .collect::<Result<_, _>>()?,
    );
    m.add(
        "clone",
        CLONE_NEW_FLAGS
            .iter()
            .map(|&f| rule(vec![cond(0, Len::Qword, Op::MaskedEq(f), f)?]))
            .collect::<Result<_, _>>()?,
    );
    // socket: AF_UNIX, AF_INET, AF_INET6, and AF_NETLINK with NETLINK_ROUTE only.
    let families = [abi::AF_UNIX, abi::AF_INET, abi::AF_INET6, abi::AF_NETLINK];
    m.add(
        "socket",
        vec![
            rule(
                families
                    .iter()
                    .map(|&f| cond(0, Len::Dword, Op::Ne, f))
                    .collect::<Result<_, _>>()?,
            )?,
            rule(vec![
                cond(0, Len::Dword, Op::Eq, abi::AF_NETLINK)?,
                cond(2, Len::Dword, Op::Ne, abi::NETLINK_ROUTE)?,
            ])?,
        ],
    );
    m.add(
        "socketpair",
        vec![rule(vec![cond(0, Len::Dword, Op::Ne, abi::AF_UNIX)?])?],
    );
    m.add(
        "personality",
        vec![rule(
            PERSONALITIES
                .iter()
                .map(|&p| cond(0, Len::Dword, Op::Ne, p))
                .collect::<Result<_, _>>()?,
        )?],
    );
    Ok(m)
}

// Classic BPF opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JMP_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JMP_JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Answer `foreign` to numbers marked as another ABI's (x32 on x86_64); expects the number
/// loaded and leaves it so.
fn foreign_number_check(arch: Arch, foreign: u32) -> Vec<sock_filter> {
    match arch.foreign_number_bit() {
        Some(bit) => vec![insn(JMP_JSET_K, 0, 1, bit), insn(RET_K, 0, 0, foreign)],
        None => Vec::new(),
    }
}

/// Answer `foreign` to every other architecture value and to foreign numbers; leaves the number
/// loaded.
fn foreign_check(arch: Arch, foreign: u32) -> Vec<sock_filter> {
    let mut prog = vec![
        insn(LD_W_ABS, 0, 0, DATA_ARCH),
        insn(JMP_JEQ_K, 1, 0, arch.audit()),
        insn(RET_K, 0, 0, foreign),
        insn(LD_W_ABS, 0, 0, DATA_NR),
    ];
    prog.extend(foreign_number_check(arch, foreign));
    prog
}

/// A filter answering `actions[nr]` for the listed syscall numbers and `default` for the rest, as a
/// binary search over ranges of numbers with the same answer.
fn number_filter(
    arch: Arch,
    actions: &BTreeMap<u32, u32>,
    default: u32,
) -> Result<BpfProgram, String> {
    // Partition 0..=u32::MAX into ranges (start, answer), each answer differing from the last.
    let mut ranges: Vec<(u32, u32)> = vec![(0, default)];
    for (&nr, &action) in actions {
        let last = ranges.last().map(|r| r.1);
        let prev_listed = nr > 0 && actions.get(&(nr - 1)).is_some();
        if !prev_listed && last != Some(default) {
            ranges.push((nr, default)); // a gap before this number
        }
        if ranges.last().map(|r| r.1) != Some(action) {
            ranges.push((nr, action));
        }
        if actions.get(&(nr + 1)).is_none() && action != default {
            ranges.push((nr + 1, default));
        }
    }
    ranges.dedup_by(|b, a| a.1 == b.1);
    fn emit(r: &[(u32, u32)]) -> Result<Vec<sock_filter>, String> {
        if r.len() == 1 {
            return Ok(vec![insn(RET_K, 0, 0, r[0].1)]);
        }
        let mid = r.len() / 2;
        let (left, right) = (emit(&r[..mid])?, emit(&r[mid..])?);
        let jt = u8::try_from(left.len()).map_err(|_| "filter subtree too large for a BPF jump")?;
        let mut out = vec![insn(JMP_JGE_K, jt, 0, r[mid].0)];
        out.extend(left);
        out.extend(right);
        Ok(out)
    }
    let mut prog = foreign_check(arch, u32::from(SeccompAction::Errno(libc::ENOSYS as u32)));
    prog.extend(emit(&ranges)?);
    Ok(prog)
}

/// Replace seccompiler's architecture check (which kills) with one that answers `foreign`, and
/// answer `foreign` to foreign numbers (x32) too.
fn refuse_foreign(arch: Arch, mut prog: BpfProgram, foreign: u32) -> Result<BpfProgram, String> {
    let arch_ok = prog.len() > 3
        && prog[0].code == LD_W_ABS
        && prog[0].k == DATA_ARCH
        && prog[1].code == JMP_JEQ_K
        && prog[1].k == arch.audit()
        && prog[1].jt == 1
        && prog[2].code == RET_K;
    if !arch_ok {
        return Err("unexpected layout of the compiled filter's architecture check".into());
    }
    prog[2].k = foreign;
    let mut numbers = vec![insn(LD_W_ABS, 0, 0, DATA_NR)];
    numbers.extend(foreign_number_check(arch, foreign));
    if numbers.len() > 1 {
        prog.splice(3..3, numbers);
    }
    Ok(prog)
}

/// Whether `name` is in one of `lists`.
fn listed(lists: &[&[&str]], name: &str) -> bool {
    lists.iter().any(|l| l.contains(&name))
}

/// Compile the filters for `policy` (the default filter, tightened or loosened by name) for the
/// architecture this build runs on. `ids` are the program's ids in its user namespace (`None`
/// without one: the degraded mode, where the program holds real host ids and the kernel answers
/// EPERM for the others by itself, and where host pids are in reach: [`own_process_rules`]
/// apply instead).
pub(crate) fn filters(
    policy: &crate::policy::SeccompPolicy,
    ids: Option<ProgramIds>,
) -> Result<Filters, String> {
    filters_for(Arch::native().map_err(|e| e.to_string())?, policy, ids)
}

/// [`filters`] for `arch`. A name in the policy that the architecture has no syscall for (such as
/// `open` on aarch64) changes nothing: that call does not exist there.
fn filters_for(
    arch: Arch,
    policy: &crate::policy::SeccompPolicy,
    ids: Option<ProgramIds>,
) -> Result<Filters, String> {
    let allow = u32::from(SeccompAction::Allow);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let enosys = u32::from(SeccompAction::Errno(libc::ENOSYS as u32));
    let mut actions: BTreeMap<u32, u32> = BTreeMap::new();
    let mut set = |name: &str, action: u32| {
        if let Some(nr) = arch.nr(name) {
            actions.insert(nr, action);
        }
    };
    for &name in ALLOWED {
        set(name, allow);
    }
    for &name in DENIED {
        set(name, u32::from(eperm.clone()));
    }
    for name in &policy.deny {
        if !listed(&[ALLOWED, DENIED], name) {
            return Err(format!("deny: {name:?} is not a syscall nanobox knows"));
        }
        set(name, u32::from(eperm.clone()));
    }
    for name in &policy.allow {
        if !listed(&[DENIED], name) {
            return Err(format!(
                "allow: {name:?} is not refused by the default filter, so there is nothing to \
                 allow (syscalls outside Docker's allow-list, such as clone3, stay unavailable)"
            ));
        }
        set(name, allow);
    }
    let by_number = number_filter(arch, &actions, enosys)?;
    let by_argument: BpfProgram = SeccompFilter::new(
        argument_rules(arch, ids)?.by_nr,
        SeccompAction::Allow,
        eperm,
        arch.target(),
    )
    .and_then(|f| f.try_into())
    .map_err(|e| e.to_string())?;
    Ok(Filters {
        by_number,
        // Foreign calls pass here; the number filter answers them ENOSYS.
        by_argument: refuse_foreign(arch, by_argument, allow)?,
    })
}

/// Install one filter (no_new_privs is already set). Async-signal-safe: one syscall on prepared
/// data.
pub(crate) fn install(prog: &BpfProgram) -> Result<(), i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`'s instructions, which outlive the call; the kernel copies
    // the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(super::sys::last_errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::arch::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64};
    use super::*;

    /// Run a classic BPF program (the instructions the filters use) on one syscall.
    fn eval(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = &prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS => {
                    let o = i.k as usize;
                    acc = u32::from_ne_bytes(data[o..o + 4].try_into().unwrap());
                }
                RET_K => return i.k,
                0x05 => pc += i.k as usize, // BPF_JMP | BPF_JA
                c => {
                    let taken = match c {
                        JMP_JEQ_K => acc == i.k,
                        JMP_JGE_K => acc >= i.k,
                        0x25 => acc > i.k, // JGT
                        JMP_JSET_K => acc & i.k != 0,
                        0x54 => {
                            // BPF_ALU | BPF_AND | BPF_K
                            acc &= i.k;
                            continue;
                        }
                        other => panic!("opcode {other:#x} not modelled"),
                    };
                    pc += if taken { i.jt } else { i.jf } as usize;
                }
            }
        }
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const IDS: ProgramIds = ProgramIds {
        uid: 1000,
        gid: 1000,
    };
    /// AUDIT_ARCH_RISCV64: an architecture with no table.
    const RISCV64: u32 = 0xc000_00f3;

    /// The number of `name` on `arch`, which must have it.
    fn nr(arch: Arch, name: &str) -> u32 {
        arch.nr(name)
            .unwrap_or_else(|| panic!("{} has no {name}", arch.name()))
    }

    /// Both filters of `arch`, with an evaluator of each that takes syscall names.
    struct Eval {
        arch: Arch,
        f: Filters,
    }

    impl Eval {
        fn new(arch: Arch, policy: &crate::policy::SeccompPolicy, ids: Option<ProgramIds>) -> Self {
            Eval {
                arch,
                f: filters_for(arch, policy, ids).unwrap(),
            }
        }
        fn default(arch: Arch) -> Self {
            Eval::new(arch, &Default::default(), Some(IDS))
        }
        fn degraded(arch: Arch) -> Self {
            Eval::new(
                arch,
                &super::super::degraded::seccomp_policy(&Default::default()),
                None,
            )
        }
        /// The number filter's answer to `name`.
        fn n(&self, name: &str) -> u32 {
            eval(
                &self.f.by_number,
                self.arch.audit(),
                nr(self.arch, name),
                [0; 6],
            )
        }
        /// The argument filter's answer to `name(args)`.
        fn a(&self, name: &str, args: [u64; 6]) -> u32 {
            eval(
                &self.f.by_argument,
                self.arch.audit(),
                nr(self.arch, name),
                args,
            )
        }
        /// Whether the architecture has `name`.
        fn has(&self, name: &str) -> bool {
            self.arch.nr(name).is_some()
        }
    }

    #[test]
    fn degraded_policy_refuses_sockets_and_sysv_ipc_but_keeps_socketpair() {
        for arch in Arch::ALL {
            let f = Eval::new(
                arch,
                &super::super::degraded::seccomp_policy(&Default::default()),
                Some(IDS),
            );
            for name in ["socket", "shmget", "shmat", "msgget", "semget", "semop"] {
                assert_eq!(f.n(name), EPERM, "{} {name}", arch.name());
            }
            for name in ["socketpair", "read", "clone"] {
                assert_eq!(f.n(name), ALLOW, "{} {name}", arch.name());
            }
            // The default policy keeps socket() (its families are checked by the argument filter).
            assert_eq!(Eval::default(arch).n("socket"), ALLOW);
        }
    }

    /// The calls of [`own_process_rules`]: (syscall, index of the pid argument).
    const BY_PID: &[(&str, usize)] = &[
        ("sched_setaffinity", 0),
        ("sched_setscheduler", 0),
        ("sched_setparam", 0),
        ("sched_setattr", 0),
        ("prlimit64", 0),
        ("get_robust_list", 0),
        ("migrate_pages", 0),
        ("move_pages", 0),
    ];

    /// Pids the kernel reads (the low 32 bits) as another process: a host process, init, the
    /// program's own pid by number, -1, and the same behind a high half.
    const FOREIGN_PIDS: &[u64] = &[1, 2, 4242, 65534, 0xffff_ffff, (1 << 32) | 4242];

    #[test]
    fn degraded_filter_refuses_calls_on_other_processes_and_allows_pid_0() {
        for arch in Arch::ALL {
            let d = Eval::degraded(arch);
            let with = |pid_at: usize, pid: u64| {
                let mut args = [0, 1, 0x1000, 3, 0x2000, 0];
                args[pid_at] = pid;
                args
            };
            for &(name, at) in BY_PID {
                for &pid in FOREIGN_PIDS {
                    assert_eq!(d.a(name, with(at, pid)), EPERM, "{name} pid {pid:#x}");
                }
                assert_eq!(d.a(name, with(at, 0)), ALLOW, "{name} pid 0");
                // The kernel reads a pid_t: a high half over 0 is still the caller.
                assert_eq!(d.a(name, with(at, 1 << 32)), ALLOW, "{name}");
            }
            // setpriority(which, who, prio): PRIO_PROCESS (0) with who 0 only; PRIO_PGRP (1) and
            // PRIO_USER (2, where who 0 means every process of the uid) never.
            let (prio_process, prio_pgrp, prio_user) = (0u64, 1u64, 2u64);
            assert_eq!(d.a("setpriority", [prio_process, 0, 10, 0, 0, 0]), ALLOW);
            for &who in FOREIGN_PIDS {
                assert_eq!(d.a("setpriority", [prio_process, who, 10, 0, 0, 0]), EPERM);
            }
            for which in [prio_pgrp, prio_user, 3, 0xffff_ffff] {
                for who in [0, 1, 65534] {
                    assert_eq!(
                        d.a("setpriority", [which, who, 10, 0, 0, 0]),
                        EPERM,
                        "which {which} who {who}"
                    );
                }
            }
            // ioprio_set(which, who, ioprio): IOPRIO_WHO_PROCESS (1) with who 0 only.
            let idle = 3 << 13;
            assert_eq!(d.a("ioprio_set", [1, 0, idle, 0, 0, 0]), ALLOW);
            for &who in FOREIGN_PIDS {
                assert_eq!(d.a("ioprio_set", [1, who, idle, 0, 0, 0]), EPERM);
            }
            for which in [0, 2, 3, 4] {
                for who in [0, 1, 65534] {
                    assert_eq!(
                        d.a("ioprio_set", [which, who, idle, 0, 0, 0]),
                        EPERM,
                        "which {which} who {who}"
                    );
                }
            }
            // prctl(PR_SCHED_CORE, cmd, pid, ...): pid 0 only; other prctl options are not checked.
            for cmd in 0..4 {
                assert_eq!(d.a("prctl", [62, cmd, 0, 0, 0, 0]), ALLOW);
                for &pid in FOREIGN_PIDS {
                    assert_eq!(d.a("prctl", [62, cmd, pid, 0, 0, 0]), EPERM);
                }
            }
            let (pr_set_pdeathsig, pr_set_name) = (1u64, 15u64);
            assert_eq!(d.a("prctl", [pr_set_pdeathsig, 9, 0, 0, 0, 0]), ALLOW);
            assert_eq!(d.a("prctl", [pr_set_name, 0x1000, 4242, 0, 0, 0]), ALLOW);
            // process_mrelease names its target by pidfd: refused by number.
            assert_eq!(d.n("process_mrelease"), EPERM);
            // migrate_pages, move_pages and process_madvise are not allowed by number at all.
            for name in ["migrate_pages", "move_pages", "process_madvise"] {
                assert_eq!(d.n(name), ENOSYS, "{name}");
            }
            // Reading and signalling are left to the kernel and Landlock's scope.
            for name in [
                "getpriority",
                "sched_getaffinity",
                "sched_getattr",
                "ioprio_get",
                "kill",
                "pidfd_open",
            ] {
                assert_eq!(d.a(name, [4242, 4242, 0, 0, 0, 0]), ALLOW, "{name}");
            }
        }
    }

    #[test]
    fn the_namespaced_filter_leaves_pids_to_the_pid_namespace() {
        for arch in Arch::ALL {
            let f = Eval::default(arch);
            for &(name, at) in BY_PID {
                let mut args = [0; 6];
                args[at] = 4242;
                assert_eq!(f.a(name, args), ALLOW, "{name}");
            }
            assert_eq!(f.a("setpriority", [2, 0, 10, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("ioprio_set", [3, 0, 3 << 13, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("prctl", [62, 1, 4242, 0, 0, 0]), ALLOW);
            assert_eq!(f.n("process_mrelease"), ALLOW);
        }
    }

    #[test]
    fn number_filter_answers_every_syscall_number_as_listed() {
        for arch in Arch::ALL {
            let f = filters_for(arch, &Default::default(), Some(IDS)).unwrap();
            assert!(
                f.by_number.len() < 400,
                "a short tree: {}",
                f.by_number.len()
            );
            // The sizes docs/ARCHITECTURE.md gives (`-- --nocapture` shows them).
            eprintln!(
                "{}: number filter {} instructions, argument filter {}",
                arch.name(),
                f.by_number.len(),
                f.by_argument.len()
            );
            let numbers = |list: &[&str]| -> Vec<u32> {
                list.iter().filter_map(|&name| arch.nr(name)).collect()
            };
            let (allowed, denied) = (numbers(ALLOWED), numbers(DENIED));
            // Not vacuous: most of each list is in each table.
            assert!(allowed.len() > 230 && denied.len() > 45, "{}", arch.name());
            for nr in 0..1024u32 {
                let want = if denied.contains(&nr) {
                    EPERM
                } else if allowed.contains(&nr) {
                    ALLOW
                } else {
                    ENOSYS
                };
                let got = eval(&f.by_number, arch.audit(), nr, [0; 6]);
                assert_eq!(got, want, "{} syscall {nr}", arch.name());
            }
            // Past the table and the x32 range: unknown.
            for nr in [1 << 29, 0x7fff_ffff, 0x8000_0000, u32::MAX - 1, u32::MAX] {
                assert_eq!(eval(&f.by_number, arch.audit(), nr, [0; 6]), ENOSYS);
            }
            // Every syscall of the table that the lists do not name is unknown to the filter.
            for &(name, nr) in arch.table() {
                if !listed(&[ALLOWED, DENIED], name) {
                    assert_eq!(
                        eval(&f.by_number, arch.audit(), nr, [0; 6]),
                        ENOSYS,
                        "{name}"
                    );
                }
            }
            assert_eq!(Eval::default(arch).n("clone3"), ENOSYS);
        }
    }

    #[test]
    fn foreign_architectures_and_compat_abis_are_refused_not_killed() {
        for arch in Arch::ALL {
            let f = filters_for(arch, &Default::default(), Some(IDS)).unwrap();
            let mut foreign: Vec<u32> = arch.compat().iter().map(|&(_, a)| a).collect();
            foreign.extend(
                [AUDIT_ARCH_X86_64, AUDIT_ARCH_AARCH64, RISCV64, 0, u32::MAX]
                    .into_iter()
                    .filter(|&a| a != arch.audit()),
            );
            for a in foreign {
                // Numbers that are allowed natively, and the native execve and ptrace.
                for nr in [0, 1, 20, 39, 165, nr(arch, "execve"), nr(arch, "ptrace")] {
                    assert_eq!(eval(&f.by_number, a, nr, [0; 6]), ENOSYS, "{a:#x} {nr}");
                    assert_eq!(eval(&f.by_argument, a, nr, [0; 6]), ALLOW, "{a:#x} {nr}");
                }
            }
        }
        // The compat ABIs by name: i386 on x86_64, 32-bit ARM on aarch64.
        assert_eq!(Arch::X86_64.compat(), &[("i386", AUDIT_ARCH_I386)]);
        assert_eq!(Arch::Aarch64.compat(), &[("arm", AUDIT_ARCH_ARM)]);
        let a64 = filters_for(Arch::Aarch64, &Default::default(), Some(IDS)).unwrap();
        // 32-bit ARM's read (3), open (5) and socketcall (102) under AUDIT_ARCH_ARM.
        for nr in [3, 5, 102] {
            assert_eq!(eval(&a64.by_number, AUDIT_ARCH_ARM, nr, [0; 6]), ENOSYS);
        }
        // x32 numbers on x86_64: its own arch value, the x32 bit in the number.
        let x64 = filters_for(Arch::X86_64, &Default::default(), Some(IDS)).unwrap();
        for nr in [0, 1, 20, 39, 165] {
            let x32 = arch::X32_SYSCALL_BIT | nr;
            assert_eq!(eval(&x64.by_number, AUDIT_ARCH_X86_64, x32, [0; 6]), ENOSYS);
            assert_eq!(
                eval(&x64.by_argument, AUDIT_ARCH_X86_64, x32, [0; 6]),
                ALLOW
            );
        }
        // aarch64 has no such bit: a number with it set is just an unknown number.
        assert_eq!(
            eval(
                &a64.by_number,
                AUDIT_ARCH_AARCH64,
                arch::X32_SYSCALL_BIT | 63,
                [0; 6]
            ),
            ENOSYS
        );
    }

    #[test]
    fn argument_filter_refuses_the_dangerous_values_only() {
        for arch in Arch::ALL {
            let f = Eval::default(arch);
            assert_eq!(f.a("ioctl", [0, abi::TIOCSTI, 0, 0, 0, 0]), EPERM);
            assert_eq!(f.a("ioctl", [0, abi::TIOCLINUX, 0, 0, 0, 0]), EPERM);
            assert_eq!(
                f.a("ioctl", [0, (1 << 32) | abi::TIOCSTI, 0, 0, 0, 0]),
                EPERM
            );
            let tcgets = 0x5401;
            assert_eq!(f.a("ioctl", [0, tcgets, 0, 0, 0, 0]), ALLOW);
            for &flag in CLONE_NEW_FLAGS {
                assert_eq!(f.a("clone", [flag | 17, 0, 0, 0, 0, 0]), EPERM, "{flag:#x}");
            }
            let (clone_vm, clone_thread) = (0x100u64, 0x10000u64);
            assert_eq!(
                f.a("clone", [clone_vm | clone_thread, 0, 0, 0, 0, 0]),
                ALLOW
            );
            assert_eq!(f.a("clone", [17, 0, 0, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("socket", [abi::AF_INET, 1, 0, 0, 0, 0]), ALLOW);
            let af_vsock = 40;
            assert_eq!(f.a("socket", [af_vsock, 1, 0, 0, 0, 0]), EPERM);
            let netlink_audit = 9;
            assert_eq!(
                f.a("socket", [abi::AF_NETLINK, 3, netlink_audit, 0, 0, 0]),
                EPERM
            );
            assert_eq!(f.a("socket", [abi::AF_NETLINK, 3, 0, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("socketpair", [abi::AF_UNIX, 1, 0, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("socketpair", [abi::AF_INET, 1, 0, 0, 0, 0]), EPERM);
            assert_eq!(f.a("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("personality", [0x0040_0000, 0, 0, 0, 0, 0]), EPERM);
            assert_eq!(f.a("read", [0; 6]), ALLOW);
        }
    }

    /// The names of the lists that aarch64 has no syscall for: the legacy calls its libc does
    /// without, and x86's own.
    const NOT_ON_AARCH64: &[&str] = &[
        "access",
        "alarm",
        "arch_prctl",
        "chmod",
        "chown",
        "creat",
        "dup2",
        "epoll_create",
        "epoll_wait",
        "eventfd",
        "fork",
        "futimesat",
        "get_thread_area",
        "getdents",
        "getpgrp",
        "inotify_init",
        "ioperm",
        "iopl",
        "lchown",
        "link",
        "lstat",
        "mkdir",
        "mknod",
        "modify_ldt",
        "open",
        "pause",
        "pipe",
        "poll",
        "readlink",
        "rename",
        "rmdir",
        "select",
        "set_thread_area",
        "signalfd",
        "stat",
        "symlink",
        "time",
        "unlink",
        "uselib",
        "utime",
        "utimes",
        "vfork",
    ];

    #[test]
    fn lists_do_not_overlap_and_every_name_is_a_syscall() {
        for (i, name) in DENIED.iter().enumerate() {
            assert!(
                !ALLOWED.contains(name),
                "syscall {name} is both allowed and denied"
            );
            assert!(!DENIED[i + 1..].contains(name), "{name} twice");
        }
        for (i, name) in ALLOWED.iter().enumerate() {
            assert!(!ALLOWED[i + 1..].contains(name), "{name} twice");
        }
        for unreachable in ["clone3", "openat2", "fchmodat2", "process_madvise"] {
            assert!(!listed(&[ALLOWED, DENIED], unreachable), "{unreachable}");
        }
        // Docker's list is x86_64's: every name is an x86_64 syscall (so a typo cannot pass
        // for a call another architecture lacks).
        for &name in ALLOWED.iter().chain(DENIED) {
            assert!(Arch::X86_64.nr(name).is_some(), "x86_64 has no {name}");
        }
        // aarch64 has all of them but the legacy and x86-only calls, and has the modern calls
        // that glibc uses in their place.
        let missing: Vec<&str> = ALLOWED
            .iter()
            .chain(DENIED)
            .copied()
            .filter(|&n| Arch::Aarch64.nr(n).is_none())
            .collect();
        let mut want = NOT_ON_AARCH64.to_vec();
        let mut got = missing.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want);
        for name in [
            "openat",
            "newfstatat",
            "faccessat",
            "pipe2",
            "ppoll",
            "pselect6",
            "dup3",
            "epoll_create1",
            "epoll_pwait",
            "eventfd2",
            "getdents64",
            "mkdirat",
            "mknodat",
            "fchmodat",
            "fchownat",
            "unlinkat",
            "renameat",
            "renameat2",
            "linkat",
            "symlinkat",
            "readlinkat",
            "utimensat",
            "inotify_init1",
            "signalfd4",
            "clone",
        ] {
            assert!(ALLOWED.contains(&name), "{name}");
            assert!(Arch::Aarch64.nr(name).is_some(), "aarch64 has no {name}");
        }
    }

    #[test]
    fn every_argument_rule_names_an_allowed_syscall() {
        for arch in Arch::ALL {
            for ids in [Some(IDS), None] {
                let r = argument_rules(arch, ids).unwrap();
                assert!(r.named.len() > 20);
                for name in &r.named {
                    // migrate_pages and move_pages answer ENOSYS by number anyway.
                    let ruled =
                        ALLOWED.contains(name) || ["migrate_pages", "move_pages"].contains(name);
                    assert!(ruled, "{name}");
                    assert!(Arch::X86_64.nr(name).is_some(), "{name}");
                }
                let expected = r.named.iter().filter(|n| arch.nr(n).is_some()).count();
                let mut distinct: Vec<&str> = r
                    .named
                    .iter()
                    .copied()
                    .filter(|n| arch.nr(n).is_some())
                    .collect();
                distinct.sort_unstable();
                distinct.dedup();
                assert!(expected >= distinct.len());
                assert_eq!(r.by_nr.len(), distinct.len(), "{}", arch.name());
            }
        }
    }

    #[test]
    fn policy_tightens_and_loosens_by_name() {
        use crate::policy::SeccompPolicy;
        for arch in Arch::ALL {
            let p = SeccompPolicy::default()
                .deny(&["getppid"])
                .allow(&["ptrace"]);
            let f = Eval::new(arch, &p, Some(IDS));
            assert_eq!(f.n("getppid"), EPERM);
            assert_eq!(f.n("ptrace"), ALLOW);
            assert_eq!(f.n("getpid"), ALLOW);
            assert_eq!(f.n("mount"), EPERM);
            // Argument checks stay when the syscall is allowed by name.
            let e = filters_for(
                arch,
                &SeccompPolicy::default().allow(&["personality"]),
                Some(IDS),
            )
            .unwrap_err();
            assert!(e.contains("personality"), "{e}");
            let e = filters_for(
                arch,
                &SeccompPolicy::default().allow(&["clone3"]),
                Some(IDS),
            )
            .unwrap_err();
            assert!(e.contains("clone3"), "{e}");
            let e = filters_for(
                arch,
                &SeccompPolicy::default().deny(&["no_such_call"]),
                Some(IDS),
            )
            .unwrap_err();
            assert!(e.contains("no_such_call"), "{e}");
        }
        // A known name that aarch64 lacks is accepted and changes nothing there; the call that
        // takes its place keeps its own answer.
        let p = SeccompPolicy::default()
            .deny(&["open", "getppid"])
            .allow(&["iopl"]);
        let a64 = Eval::new(Arch::Aarch64, &p, Some(IDS));
        assert_eq!(a64.n("openat"), ALLOW);
        assert_eq!(a64.n("getppid"), EPERM);
        let x64 = Eval::new(Arch::X86_64, &p, Some(IDS));
        assert_eq!(x64.n("open"), EPERM);
        assert_eq!(x64.n("iopl"), ALLOW);
        assert_eq!(x64.n("openat"), ALLOW);
    }

    #[test]
    fn no_mode_argument_can_carry_the_setuid_or_setgid_bit() {
        for arch in Arch::ALL {
            let f = Eval::default(arch);
            let (suid, sgid) = (abi::S_ISUID, abi::S_ISGID);
            let (o_wronly, o_rdwr, o_excl, s_ifreg) = (0o1u64, 0o2u64, 0o200u64, 0o100_000u64);
            let creat = abi::O_CREAT | o_wronly;
            let tmpfile = abi::O_TMPFILE_BIT | o_rdwr;
            // (syscall, index of the mode) for the calls that take only a mode.
            let by_mode = [
                ("chmod", 1),
                ("fchmod", 1),
                ("fchmodat", 2),
                ("creat", 1),
                ("mknod", 1),
                ("mknodat", 2),
            ];
            // (syscall, index of the flags) for the opens; the mode follows the flags.
            let opens = [("open", 1), ("openat", 2)];
            let mut checked = Vec::new();
            for bits in [suid, sgid, suid | sgid] {
                for mode in [0o755 | bits, 0o4777 & !0o4000 | bits, bits] {
                    for (name, at) in by_mode.into_iter().filter(|(n, _)| f.has(n)) {
                        let m = if name.starts_with("mknod") {
                            s_ifreg | mode
                        } else {
                            mode
                        };
                        let mut args = [3, 0, 0, 0, 0, 0];
                        args[at] = m;
                        assert_eq!(f.a(name, args), EPERM, "{name} {m:#o}");
                        // The high half of a register is not the mode: still refused on the
                        // low bits.
                        args[at] = (1 << 40) | m;
                        assert_eq!(f.a(name, args), EPERM, "{name} {m:#o}");
                        checked.push(name);
                    }
                    for (name, at) in opens.into_iter().filter(|(n, _)| f.has(n)) {
                        for flags in [creat, creat | o_excl, tmpfile] {
                            let mut args = [3, 0, 0, 0, 0, 0];
                            args[at] = flags;
                            args[at + 1] = mode;
                            assert_eq!(f.a(name, args), EPERM, "{name} {flags:#o} {mode:#o}");
                        }
                        checked.push(name);
                    }
                }
            }
            checked.sort_unstable();
            checked.dedup();
            // Where the legacy calls are missing, the *at calls that replace them are checked.
            let want: &[&str] = match arch {
                Arch::X86_64 => &[
                    "chmod", "creat", "fchmod", "fchmodat", "mknod", "mknodat", "open", "openat",
                ],
                Arch::Aarch64 => &["fchmod", "fchmodat", "mknodat", "openat"],
            };
            assert_eq!(checked, want, "{}", arch.name());
            // Ordinary modes, sticky directories and opens that create nothing pass.
            for mode in [0o644, 0o755, 0o777, 0o1777, 0o600, 0] {
                for (name, at) in by_mode.into_iter().filter(|(n, _)| f.has(n)) {
                    let mut args = [3, 0, 0, 0, 0, 0];
                    args[at] = if name.starts_with("mknod") {
                        s_ifreg | mode
                    } else {
                        mode
                    };
                    assert_eq!(f.a(name, args), ALLOW, "{name} {mode:#o}");
                }
                for (name, at) in opens.into_iter().filter(|(n, _)| f.has(n)) {
                    let mut args = [3, 0, 0, 0, 0, 0];
                    args[at] = creat;
                    args[at + 1] = mode;
                    assert_eq!(f.a(name, args), ALLOW, "{name} {mode:#o}");
                }
            }
            // Without O_CREAT or O_TMPFILE the mode argument is ignored by the kernel (garbage in
            // the register is harmless), so it is not checked.
            assert_eq!(f.a("openat", [3, 0, 0, 0o4755, 0, 0]), ALLOW);
            // The mode-in-a-struct and flags variants are not reachable at all: libc falls back.
            for name in ["openat2", "fchmodat2"] {
                assert_eq!(f.n(name), ENOSYS, "{name}");
            }
            // Also without a user namespace (the degraded mode).
            let d = Eval::degraded(arch);
            assert_eq!(d.a("fchmodat", [3, 0, 0o4755, 0, 0, 0]), EPERM);
        }
    }

    #[test]
    fn chown_and_setid_to_an_id_the_program_does_not_hold_answer_eperm() {
        for arch in Arch::ALL {
            let f = Eval::default(arch);
            let (own, keep) = (1000u64, u32::MAX as u64);
            // (syscall, index of the uid); the gid follows.
            let chowns = [("chown", 1), ("fchown", 1), ("lchown", 1), ("fchownat", 2)];
            let chowns: Vec<_> = chowns.into_iter().filter(|(n, _)| f.has(n)).collect();
            assert!(chowns.len() >= 2, "fchown and fchownat everywhere");
            let with = |at: usize, uid: u64, gid: u64| {
                let mut args = [3, 0, 0, 0, 0, 0];
                args[at] = uid;
                args[at + 1] = gid;
                args
            };
            for other in [0u64, 1, 65534, 999, 1001, 0xffff_fffe] {
                for &(name, at) in &chowns {
                    assert_eq!(f.a(name, with(at, other, keep)), EPERM, "{name}");
                    assert_eq!(f.a(name, with(at, keep, other)), EPERM, "{name}");
                    assert_eq!(f.a(name, with(at, own, other)), EPERM, "{name}");
                }
                assert_eq!(f.a("setuid", [other, 0, 0, 0, 0, 0]), EPERM);
                assert_eq!(f.a("setgid", [other, 0, 0, 0, 0, 0]), EPERM);
                assert_eq!(f.a("setreuid", [keep, other, 0, 0, 0, 0]), EPERM);
                assert_eq!(f.a("setregid", [other, keep, 0, 0, 0, 0]), EPERM);
                assert_eq!(f.a("setresuid", [own, own, other, 0, 0, 0]), EPERM);
                assert_eq!(f.a("setresgid", [keep, other, own, 0, 0, 0]), EPERM);
            }
            // Its own ids and "unchanged" are the kernel's to answer.
            for &(name, at) in &chowns {
                assert_eq!(f.a(name, with(at, own, own)), ALLOW, "{name}");
                assert_eq!(f.a(name, with(at, keep, own)), ALLOW, "{name}");
                assert_eq!(f.a(name, with(at, keep, keep)), ALLOW, "{name}");
            }
            assert_eq!(f.a("setresuid", [own, keep, own, 0, 0, 0]), ALLOW);
            assert_eq!(f.a("setgid", [own, 0, 0, 0, 0, 0]), ALLOW);
            // Without a user namespace the kernel already answers EPERM: no rule.
            let d = Eval::new(arch, &Default::default(), None);
            assert_eq!(d.a("fchownat", [3, 0, 0, 0, 0, 0]), ALLOW);
        }
    }

    #[test]
    fn abi_values_match_libc() {
        // The target's own values; the same test on the other architecture checks its own.
        assert_eq!(abi::S_ISUID, u64::from(libc::S_ISUID));
        assert_eq!(abi::S_ISGID, u64::from(libc::S_ISGID));
        assert_eq!(abi::O_CREAT, libc::O_CREAT as u64);
        assert_eq!(
            abi::O_TMPFILE_BIT,
            (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64
        );
        assert_eq!(abi::TIOCSTI, libc::TIOCSTI);
        assert_eq!(abi::TIOCLINUX, libc::TIOCLINUX);
        for (ours, theirs) in [
            (abi::CLONE_NEWNS, libc::CLONE_NEWNS),
            (abi::CLONE_NEWCGROUP, libc::CLONE_NEWCGROUP),
            (abi::CLONE_NEWUTS, libc::CLONE_NEWUTS),
            (abi::CLONE_NEWIPC, libc::CLONE_NEWIPC),
            (abi::CLONE_NEWUSER, libc::CLONE_NEWUSER),
            (abi::CLONE_NEWPID, libc::CLONE_NEWPID),
            (abi::CLONE_NEWNET, libc::CLONE_NEWNET),
            (abi::AF_UNIX, libc::AF_UNIX),
            (abi::AF_INET, libc::AF_INET),
            (abi::AF_INET6, libc::AF_INET6),
            (abi::AF_NETLINK, libc::AF_NETLINK),
            (abi::NETLINK_ROUTE, libc::NETLINK_ROUTE),
        ] {
            assert_eq!(ours, theirs as u64);
        }
    }

    #[test]
    fn the_native_filter_is_the_native_table_s() {
        let arch = Arch::native().unwrap();
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        let g = filters_for(arch, &Default::default(), Some(IDS)).unwrap();
        assert_eq!(f.by_number, g.by_number);
        assert_eq!(f.by_argument, g.by_argument);
        // And the two architectures' filters differ (their numbers do).
        for other in Arch::ALL.into_iter().filter(|&a| a != arch) {
            let o = filters_for(other, &Default::default(), Some(IDS)).unwrap();
            assert_ne!(o.by_number, f.by_number);
        }
    }
}
