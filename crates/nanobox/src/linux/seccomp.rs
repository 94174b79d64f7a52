//! The default syscall filter of every run, compiled when a sandbox is built and installed by the
//! program process just before `execve`.
//!
//! Two filters are stacked; the kernel applies the more restrictive answer, and between two errno
//! answers the one of the later filter:
//! 1. **by syscall number** — a binary search over the syscall number: Docker's default
//!    allow-list (x86_64) is allowed, known-dangerous syscalls answer `EPERM`, any other answers
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
//! Nothing kills: a program that tries something refused gets an error it can handle. Foreign
//! architectures (i386 through `int 0x80`) and x32 syscall numbers are refused explicitly at the
//! top of both filters (seccompiler's own architecture check would kill the process instead, and
//! does not look at x32 numbers).

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};

/// The compiled filters, in the order they are installed.
#[derive(Debug, Clone)]
pub(crate) struct Filters {
    pub by_number: BpfProgram,
    pub by_argument: BpfProgram,
}

/// io_pgetevents(2) on x86_64 (the libc crate has no constant for it).
const SYS_IO_PGETEVENTS: i64 = 333;

/// x32 syscalls carry this bit in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Allowed: Docker's default allow-list for x86_64, less what the deny-list below refuses.
/// `clone`, `ioctl`, `personality`, `socket` and `socketpair` are here and narrowed by the deny-list.
const ALLOWED: &[(&str, i64)] = &[
    ("accept", libc::SYS_accept),
    ("accept4", libc::SYS_accept4),
    ("access", libc::SYS_access),
    ("alarm", libc::SYS_alarm),
    ("arch_prctl", libc::SYS_arch_prctl),
    ("bind", libc::SYS_bind),
    ("brk", libc::SYS_brk),
    ("capget", libc::SYS_capget),
    ("capset", libc::SYS_capset),
    ("chdir", libc::SYS_chdir),
    ("chmod", libc::SYS_chmod),
    ("chown", libc::SYS_chown),
    ("clock_getres", libc::SYS_clock_getres),
    ("clock_gettime", libc::SYS_clock_gettime),
    ("clock_nanosleep", libc::SYS_clock_nanosleep),
    ("clone", libc::SYS_clone),
    ("close", libc::SYS_close),
    ("close_range", libc::SYS_close_range),
    ("connect", libc::SYS_connect),
    ("copy_file_range", libc::SYS_copy_file_range),
    ("creat", libc::SYS_creat),
    ("dup", libc::SYS_dup),
    ("dup2", libc::SYS_dup2),
    ("dup3", libc::SYS_dup3),
    ("epoll_create", libc::SYS_epoll_create),
    ("epoll_create1", libc::SYS_epoll_create1),
    ("epoll_ctl", libc::SYS_epoll_ctl),
    ("epoll_pwait", libc::SYS_epoll_pwait),
    ("epoll_pwait2", libc::SYS_epoll_pwait2),
    ("epoll_wait", libc::SYS_epoll_wait),
    ("eventfd", libc::SYS_eventfd),
    ("eventfd2", libc::SYS_eventfd2),
    ("execve", libc::SYS_execve),
    ("execveat", libc::SYS_execveat),
    ("exit", libc::SYS_exit),
    ("exit_group", libc::SYS_exit_group),
    ("faccessat", libc::SYS_faccessat),
    ("faccessat2", libc::SYS_faccessat2),
    ("fadvise64", libc::SYS_fadvise64),
    ("fallocate", libc::SYS_fallocate),
    ("fchdir", libc::SYS_fchdir),
    ("fchmod", libc::SYS_fchmod),
    ("fchmodat", libc::SYS_fchmodat),
    ("fchown", libc::SYS_fchown),
    ("fchownat", libc::SYS_fchownat),
    ("fcntl", libc::SYS_fcntl),
    ("fdatasync", libc::SYS_fdatasync),
    ("fgetxattr", libc::SYS_fgetxattr),
    ("flistxattr", libc::SYS_flistxattr),
    ("flock", libc::SYS_flock),
    ("fork", libc::SYS_fork),
    ("fremovexattr", libc::SYS_fremovexattr),
    ("fsetxattr", libc::SYS_fsetxattr),
    ("fstat", libc::SYS_fstat),
    ("fstatfs", libc::SYS_fstatfs),
    ("fsync", libc::SYS_fsync),
    ("ftruncate", libc::SYS_ftruncate),
    ("futex", libc::SYS_futex),
    ("futex_waitv", libc::SYS_futex_waitv),
    ("futimesat", libc::SYS_futimesat),
    ("getcpu", libc::SYS_getcpu),
    ("getcwd", libc::SYS_getcwd),
    ("getdents", libc::SYS_getdents),
    ("getdents64", libc::SYS_getdents64),
    ("getegid", libc::SYS_getegid),
    ("geteuid", libc::SYS_geteuid),
    ("getgid", libc::SYS_getgid),
    ("getgroups", libc::SYS_getgroups),
    ("getitimer", libc::SYS_getitimer),
    ("getpeername", libc::SYS_getpeername),
    ("getpgid", libc::SYS_getpgid),
    ("getpgrp", libc::SYS_getpgrp),
    ("getpid", libc::SYS_getpid),
    ("getppid", libc::SYS_getppid),
    ("getpriority", libc::SYS_getpriority),
    ("getrandom", libc::SYS_getrandom),
    ("getresgid", libc::SYS_getresgid),
    ("getresuid", libc::SYS_getresuid),
    ("getrlimit", libc::SYS_getrlimit),
    ("get_robust_list", libc::SYS_get_robust_list),
    ("getrusage", libc::SYS_getrusage),
    ("getsid", libc::SYS_getsid),
    ("getsockname", libc::SYS_getsockname),
    ("getsockopt", libc::SYS_getsockopt),
    ("get_thread_area", libc::SYS_get_thread_area),
    ("gettid", libc::SYS_gettid),
    ("gettimeofday", libc::SYS_gettimeofday),
    ("getuid", libc::SYS_getuid),
    ("getxattr", libc::SYS_getxattr),
    ("inotify_add_watch", libc::SYS_inotify_add_watch),
    ("inotify_init", libc::SYS_inotify_init),
    ("inotify_init1", libc::SYS_inotify_init1),
    ("inotify_rm_watch", libc::SYS_inotify_rm_watch),
    ("io_cancel", libc::SYS_io_cancel),
    ("ioctl", libc::SYS_ioctl),
    ("io_destroy", libc::SYS_io_destroy),
    ("io_getevents", libc::SYS_io_getevents),
    ("io_pgetevents", SYS_IO_PGETEVENTS),
    ("ioprio_get", libc::SYS_ioprio_get),
    ("ioprio_set", libc::SYS_ioprio_set),
    ("io_submit", libc::SYS_io_submit),
    ("kill", libc::SYS_kill),
    ("landlock_add_rule", libc::SYS_landlock_add_rule),
    ("landlock_create_ruleset", libc::SYS_landlock_create_ruleset),
    ("landlock_restrict_self", libc::SYS_landlock_restrict_self),
    ("lchown", libc::SYS_lchown),
    ("lgetxattr", libc::SYS_lgetxattr),
    ("link", libc::SYS_link),
    ("linkat", libc::SYS_linkat),
    ("listen", libc::SYS_listen),
    ("listxattr", libc::SYS_listxattr),
    ("llistxattr", libc::SYS_llistxattr),
    ("lremovexattr", libc::SYS_lremovexattr),
    ("lseek", libc::SYS_lseek),
    ("lsetxattr", libc::SYS_lsetxattr),
    ("lstat", libc::SYS_lstat),
    ("madvise", libc::SYS_madvise),
    ("membarrier", libc::SYS_membarrier),
    ("memfd_create", libc::SYS_memfd_create),
    ("mincore", libc::SYS_mincore),
    ("mkdir", libc::SYS_mkdir),
    ("mkdirat", libc::SYS_mkdirat),
    ("mknod", libc::SYS_mknod),
    ("mknodat", libc::SYS_mknodat),
    ("mlock", libc::SYS_mlock),
    ("mlock2", libc::SYS_mlock2),
    ("mlockall", libc::SYS_mlockall),
    ("mmap", libc::SYS_mmap),
    ("modify_ldt", libc::SYS_modify_ldt),
    ("mprotect", libc::SYS_mprotect),
    ("mq_getsetattr", libc::SYS_mq_getsetattr),
    ("mq_notify", libc::SYS_mq_notify),
    ("mq_open", libc::SYS_mq_open),
    ("mq_timedreceive", libc::SYS_mq_timedreceive),
    ("mq_timedsend", libc::SYS_mq_timedsend),
    ("mq_unlink", libc::SYS_mq_unlink),
    ("mremap", libc::SYS_mremap),
    ("msgctl", libc::SYS_msgctl),
    ("msgget", libc::SYS_msgget),
    ("msgrcv", libc::SYS_msgrcv),
    ("msgsnd", libc::SYS_msgsnd),
    ("msync", libc::SYS_msync),
    ("munlock", libc::SYS_munlock),
    ("munlockall", libc::SYS_munlockall),
    ("munmap", libc::SYS_munmap),
    ("nanosleep", libc::SYS_nanosleep),
    ("newfstatat", libc::SYS_newfstatat),
    ("open", libc::SYS_open),
    ("openat", libc::SYS_openat),
    // openat2 is left out on purpose: its mode sits in a struct the filter cannot read, so it
    // answers ENOSYS and libc and runtimes fall back to openat, whose mode is checked.
    ("pause", libc::SYS_pause),
    ("personality", libc::SYS_personality),
    ("pidfd_open", libc::SYS_pidfd_open),
    ("pidfd_send_signal", libc::SYS_pidfd_send_signal),
    ("pipe", libc::SYS_pipe),
    ("pipe2", libc::SYS_pipe2),
    ("pkey_alloc", libc::SYS_pkey_alloc),
    ("pkey_free", libc::SYS_pkey_free),
    ("pkey_mprotect", libc::SYS_pkey_mprotect),
    ("poll", libc::SYS_poll),
    ("ppoll", libc::SYS_ppoll),
    ("prctl", libc::SYS_prctl),
    ("pread64", libc::SYS_pread64),
    ("preadv", libc::SYS_preadv),
    ("preadv2", libc::SYS_preadv2),
    ("prlimit64", libc::SYS_prlimit64),
    ("process_mrelease", libc::SYS_process_mrelease),
    ("pselect6", libc::SYS_pselect6),
    ("pwrite64", libc::SYS_pwrite64),
    ("pwritev", libc::SYS_pwritev),
    ("pwritev2", libc::SYS_pwritev2),
    ("read", libc::SYS_read),
    ("readahead", libc::SYS_readahead),
    ("readlink", libc::SYS_readlink),
    ("readlinkat", libc::SYS_readlinkat),
    ("readv", libc::SYS_readv),
    ("recvfrom", libc::SYS_recvfrom),
    ("recvmmsg", libc::SYS_recvmmsg),
    ("recvmsg", libc::SYS_recvmsg),
    ("remap_file_pages", libc::SYS_remap_file_pages),
    ("removexattr", libc::SYS_removexattr),
    ("rename", libc::SYS_rename),
    ("renameat", libc::SYS_renameat),
    ("renameat2", libc::SYS_renameat2),
    ("restart_syscall", libc::SYS_restart_syscall),
    ("rmdir", libc::SYS_rmdir),
    ("rseq", libc::SYS_rseq),
    ("rt_sigaction", libc::SYS_rt_sigaction),
    ("rt_sigpending", libc::SYS_rt_sigpending),
    ("rt_sigprocmask", libc::SYS_rt_sigprocmask),
    ("rt_sigqueueinfo", libc::SYS_rt_sigqueueinfo),
    ("rt_sigreturn", libc::SYS_rt_sigreturn),
    ("rt_sigsuspend", libc::SYS_rt_sigsuspend),
    ("rt_sigtimedwait", libc::SYS_rt_sigtimedwait),
    ("rt_tgsigqueueinfo", libc::SYS_rt_tgsigqueueinfo),
    ("sched_getaffinity", libc::SYS_sched_getaffinity),
    ("sched_getattr", libc::SYS_sched_getattr),
    ("sched_getparam", libc::SYS_sched_getparam),
    ("sched_get_priority_max", libc::SYS_sched_get_priority_max),
    ("sched_get_priority_min", libc::SYS_sched_get_priority_min),
    ("sched_getscheduler", libc::SYS_sched_getscheduler),
    ("sched_rr_get_interval", libc::SYS_sched_rr_get_interval),
    ("sched_setaffinity", libc::SYS_sched_setaffinity),
    ("sched_setattr", libc::SYS_sched_setattr),
    ("sched_setparam", libc::SYS_sched_setparam),
    ("sched_setscheduler", libc::SYS_sched_setscheduler),
    ("sched_yield", libc::SYS_sched_yield),
    ("seccomp", libc::SYS_seccomp),
    ("select", libc::SYS_select),
    ("semctl", libc::SYS_semctl),
    ("semget", libc::SYS_semget),
    ("semop", libc::SYS_semop),
    ("semtimedop", libc::SYS_semtimedop),
    ("sendfile", libc::SYS_sendfile),
    ("sendmmsg", libc::SYS_sendmmsg),
    ("sendmsg", libc::SYS_sendmsg),
    ("sendto", libc::SYS_sendto),
    ("setfsgid", libc::SYS_setfsgid),
    ("setfsuid", libc::SYS_setfsuid),
    ("setgid", libc::SYS_setgid),
    ("setgroups", libc::SYS_setgroups),
    ("setitimer", libc::SYS_setitimer),
    ("setpgid", libc::SYS_setpgid),
    ("setpriority", libc::SYS_setpriority),
    ("setregid", libc::SYS_setregid),
    ("setresgid", libc::SYS_setresgid),
    ("setresuid", libc::SYS_setresuid),
    ("setreuid", libc::SYS_setreuid),
    ("setrlimit", libc::SYS_setrlimit),
    ("set_robust_list", libc::SYS_set_robust_list),
    ("setsid", libc::SYS_setsid),
    ("setsockopt", libc::SYS_setsockopt),
    ("set_thread_area", libc::SYS_set_thread_area),
    ("set_tid_address", libc::SYS_set_tid_address),
    ("setuid", libc::SYS_setuid),
    ("setxattr", libc::SYS_setxattr),
    ("shmat", libc::SYS_shmat),
    ("shmctl", libc::SYS_shmctl),
    ("shmdt", libc::SYS_shmdt),
    ("shmget", libc::SYS_shmget),
    ("shutdown", libc::SYS_shutdown),
    ("sigaltstack", libc::SYS_sigaltstack),
    ("signalfd", libc::SYS_signalfd),
    ("signalfd4", libc::SYS_signalfd4),
    ("socket", libc::SYS_socket),
    ("socketpair", libc::SYS_socketpair),
    ("splice", libc::SYS_splice),
    ("stat", libc::SYS_stat),
    ("statfs", libc::SYS_statfs),
    ("statx", libc::SYS_statx),
    ("symlink", libc::SYS_symlink),
    ("symlinkat", libc::SYS_symlinkat),
    ("sync", libc::SYS_sync),
    ("sync_file_range", libc::SYS_sync_file_range),
    ("syncfs", libc::SYS_syncfs),
    ("sysinfo", libc::SYS_sysinfo),
    ("tee", libc::SYS_tee),
    ("tgkill", libc::SYS_tgkill),
    ("time", libc::SYS_time),
    ("timer_create", libc::SYS_timer_create),
    ("timer_delete", libc::SYS_timer_delete),
    ("timer_getoverrun", libc::SYS_timer_getoverrun),
    ("timer_gettime", libc::SYS_timer_gettime),
    ("timer_settime", libc::SYS_timer_settime),
    ("timerfd_create", libc::SYS_timerfd_create),
    ("timerfd_gettime", libc::SYS_timerfd_gettime),
    ("timerfd_settime", libc::SYS_timerfd_settime),
    ("times", libc::SYS_times),
    ("tkill", libc::SYS_tkill),
    ("truncate", libc::SYS_truncate),
    ("umask", libc::SYS_umask),
    ("uname", libc::SYS_uname),
    ("unlink", libc::SYS_unlink),
    ("unlinkat", libc::SYS_unlinkat),
    ("utime", libc::SYS_utime),
    ("utimensat", libc::SYS_utimensat),
    ("utimes", libc::SYS_utimes),
    ("vfork", libc::SYS_vfork),
    ("vmsplice", libc::SYS_vmsplice),
    ("wait4", libc::SYS_wait4),
    ("waitid", libc::SYS_waitid),
    ("write", libc::SYS_write),
    ("writev", libc::SYS_writev),
];

/// Refused with EPERM by the number filter.
const DENIED: &[(&str, i64)] = &[
    // the mount family
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    // namespaces
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    // keyrings, bpf, perf, userfaultfd, fanotify, io_uring, AIO
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    // AIO contexts come from one host-wide pool (fs.aio-max-nr) that a sandbox could drain
    ("io_setup", libc::SYS_io_setup),
    // kernel images and modules
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    // file handles, other processes
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("kcmp", libc::SYS_kcmp),
    // the machine
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("syslog", libc::SYS_syslog),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("adjtimex", libc::SYS_adjtimex),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("sethostname", libc::SYS_sethostname),
    ("setdomainname", libc::SYS_setdomainname),
    ("vhangup", libc::SYS_vhangup),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("uselib", libc::SYS_uselib),
];

/// ioctl requests refused (compared on the low 32 bits, as the kernel reads them).
const DENIED_IOCTLS: &[u64] = &[libc::TIOCSTI, libc::TIOCLINUX];

/// Namespace flags refused in clone(2) (CLONE_NEWTIME cannot be given to clone; unshare is denied).
const CLONE_NEW_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
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

/// The set-user-ID and set-group-ID bits of a file mode.
const SETID_BITS: [u64; 2] = [libc::S_ISUID as u64, libc::S_ISGID as u64];

/// `open` flags under which the mode argument is used: O_CREAT, and O_TMPFILE (whose own bit,
/// `__O_TMPFILE`, the libc crate does not name apart from O_DIRECTORY).
const CREATING_FLAGS: [u64; 2] = [
    libc::O_CREAT as u64,
    (libc::O_TMPFILE & !libc::O_DIRECTORY) as u64,
];

/// Refuse every way of giving a file the set-user-ID or set-group-ID bit.
///
/// A file the program marks setuid is, on the host, setuid to the file's host owner: root for a
/// root caller's idmapped mounts, the caller otherwise. `nosuid` on the sandbox's mount does not
/// protect the host, which sees the file on its own mount, so the bits must never be set at all.
/// Every syscall that takes a mode for a file it creates or changes is checked: `chmod` (arg 1),
/// `fchmod` (1), `fchmodat` (2), `mknod` (1), `mknodat` (2), `creat` (1), `open` (flags 1, mode
/// 2) and `openat` (flags 2, mode 3) when they create. `fchmodat2` and `openat2` are not allowed
/// at all (ENOSYS, so libc falls back to the checked calls). Writing to, truncating or chown'ing a
/// file that already has the bits makes the kernel clear them, since the program never holds
/// CAP_FSETID. seccomp cannot tell a directory from a file, so S_ISGID on a directory (by chmod)
/// is refused too; a directory still inherits it from a set-group-ID parent.
fn setid_mode_rules(m: &mut BTreeMap<i64, Vec<SeccompRule>>) -> Result<(), String> {
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
    for (nr, mode_arg) in [
        (libc::SYS_chmod, 1),
        (libc::SYS_fchmod, 1),
        (libc::SYS_fchmodat, 2),
        (libc::SYS_mknod, 1),
        (libc::SYS_mknodat, 2),
        (libc::SYS_creat, 1),
    ] {
        m.insert(nr, mode_at(mode_arg)?);
    }
    m.insert(libc::SYS_open, creating(1, 2)?);
    m.insert(libc::SYS_openat, creating(2, 3)?);
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
fn foreign_id_rules(
    m: &mut BTreeMap<i64, Vec<SeccompRule>>,
    ids: ProgramIds,
) -> Result<(), String> {
    const UNCHANGED: u64 = u32::MAX as u64;
    // One rule per id argument: it matches when the argument is neither `own` nor -1.
    let foreign = |arg: u8, own: u32| -> Result<SeccompRule, String> {
        rule(vec![
            cond(arg, Len::Dword, Op::Ne, u64::from(own))?,
            cond(arg, Len::Dword, Op::Ne, UNCHANGED)?,
        ])
    };
    let (u, g) = (ids.uid, ids.gid);
    for (nr, uid_arg, gid_arg) in [
        (libc::SYS_chown, 1, 2),
        (libc::SYS_fchown, 1, 2),
        (libc::SYS_lchown, 1, 2),
        (libc::SYS_fchownat, 2, 3),
    ] {
        m.insert(nr, vec![foreign(uid_arg, u)?, foreign(gid_arg, g)?]);
    }
    for (nr, args, own) in [
        (libc::SYS_setuid, 0..1, u),
        (libc::SYS_setreuid, 0..2, u),
        (libc::SYS_setresuid, 0..3, u),
        (libc::SYS_setgid, 0..1, g),
        (libc::SYS_setregid, 0..2, g),
        (libc::SYS_setresgid, 0..3, g),
    ] {
        m.insert(
            nr,
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
fn own_process_rules(m: &mut BTreeMap<i64, Vec<SeccompRule>>) -> Result<(), String> {
    let not = |arg: u8, value: u64| -> Result<SeccompRule, String> {
        rule(vec![cond(arg, Len::Dword, Op::Ne, value)?])
    };
    let mut add = |nr: i64, rules: Vec<SeccompRule>| m.entry(nr).or_default().extend(rules);
    add(
        libc::SYS_setpriority,
        vec![not(0, PRIO_PROCESS)?, not(1, 0)?],
    );
    add(
        libc::SYS_ioprio_set,
        vec![not(0, IOPRIO_WHO_PROCESS)?, not(1, 0)?],
    );
    for nr in [
        libc::SYS_sched_setaffinity,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_setparam,
        libc::SYS_sched_setattr,
        libc::SYS_prlimit64,
        libc::SYS_get_robust_list,
        libc::SYS_migrate_pages,
        libc::SYS_move_pages,
    ] {
        add(nr, vec![not(0, 0)?]);
    }
    add(
        libc::SYS_prctl,
        vec![rule(vec![
            cond(0, Len::Dword, Op::Eq, PR_SCHED_CORE)?,
            cond(2, Len::Dword, Op::Ne, 0)?,
        ])?],
    );
    Ok(())
}

/// The argument checks (EPERM when a rule matches).
fn argument_rules(ids: Option<ProgramIds>) -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut m: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    setid_mode_rules(&mut m)?;
    match ids {
        Some(ids) => foreign_id_rules(&mut m, ids)?,
        // No user namespace: the degraded mode, which has no pid namespace either.
        None => own_process_rules(&mut m)?,
    }
    m.insert(
        libc::SYS_ioctl,
        DENIED_IOCTLS
            .iter()
            .map(|&req| rule(vec![cond(1, Len::Dword, Op::Eq, req)?]))
            .collect::<Result<_, _>>()?,
    );
    m.insert(
        libc::SYS_clone,
        CLONE_NEW_FLAGS
            .iter()
            .map(|&f| rule(vec![cond(0, Len::Qword, Op::MaskedEq(f), f)?]))
            .collect::<Result<_, _>>()?,
    );
    // socket: AF_UNIX, AF_INET, AF_INET6, and AF_NETLINK with NETLINK_ROUTE only.
    let families = [
        libc::AF_UNIX,
        libc::AF_INET,
        libc::AF_INET6,
        libc::AF_NETLINK,
    ];
    m.insert(
        libc::SYS_socket,
        vec![
            rule(
                families
                    .iter()
                    .map(|&f| cond(0, Len::Dword, Op::Ne, f as u64))
                    .collect::<Result<_, _>>()?,
            )?,
            rule(vec![
                cond(0, Len::Dword, Op::Eq, libc::AF_NETLINK as u64)?,
                cond(2, Len::Dword, Op::Ne, libc::NETLINK_ROUTE as u64)?,
            ])?,
        ],
    );
    m.insert(
        libc::SYS_socketpair,
        vec![rule(vec![cond(
            0,
            Len::Dword,
            Op::Ne,
            libc::AF_UNIX as u64,
        )?])?],
    );
    m.insert(
        libc::SYS_personality,
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
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Answer `foreign` to other architectures and to x32 numbers; leaves the number loaded.
fn foreign_check(foreign: u32) -> Vec<sock_filter> {
    vec![
        insn(LD_W_ABS, 0, 0, DATA_ARCH),
        insn(JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, foreign),
        insn(LD_W_ABS, 0, 0, DATA_NR),
        insn(JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, foreign),
    ]
}

/// A filter answering `actions[nr]` for the listed syscall numbers and `default` for the rest, as a
/// binary search over ranges of numbers with the same answer.
fn number_filter(actions: &BTreeMap<u32, u32>, default: u32) -> Result<BpfProgram, String> {
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
    let mut prog = foreign_check(u32::from(SeccompAction::Errno(libc::ENOSYS as u32)));
    prog.extend(emit(&ranges)?);
    Ok(prog)
}

/// Replace seccompiler's architecture check (which kills) with one that answers `foreign`, and
/// answer `foreign` to x32 syscall numbers too.
fn refuse_foreign(mut prog: BpfProgram, foreign: u32) -> Result<BpfProgram, String> {
    let arch_ok = prog.len() > 3
        && prog[0].code == LD_W_ABS
        && prog[0].k == DATA_ARCH
        && prog[1].code == JMP_JEQ_K
        && prog[1].jt == 1
        && prog[2].code == RET_K;
    if !arch_ok {
        return Err("unexpected layout of the compiled filter's architecture check".into());
    }
    prog[2].k = foreign;
    let x32 = [
        insn(LD_W_ABS, 0, 0, DATA_NR),
        insn(JMP_JSET_K, 0, 1, X32_SYSCALL_BIT),
        insn(RET_K, 0, 0, foreign),
    ];
    prog.splice(3..3, x32);
    Ok(prog)
}

/// The number of the syscall `name` in `lists`.
fn lookup(lists: &[&[(&str, i64)]], name: &str) -> Option<i64> {
    lists
        .iter()
        .flat_map(|l| l.iter())
        .find(|(n, _)| *n == name)
        .map(|&(_, nr)| nr)
}

/// Compile the filters for `policy` (the default filter, tightened or loosened by name). `ids`
/// are the program's ids in its user namespace (`None` without one: the degraded mode, where the
/// program holds real host ids and the kernel answers EPERM for the others by itself, and where
/// host pids are in reach: [`own_process_rules`] apply instead).
pub(crate) fn filters(
    policy: &crate::policy::SeccompPolicy,
    ids: Option<ProgramIds>,
) -> Result<Filters, String> {
    let allow = u32::from(SeccompAction::Allow);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let enosys = u32::from(SeccompAction::Errno(libc::ENOSYS as u32));
    let mut actions: BTreeMap<u32, u32> = BTreeMap::new();
    for &(_, nr) in ALLOWED {
        actions.insert(nr as u32, allow);
    }
    for &(_, nr) in DENIED {
        actions.insert(nr as u32, u32::from(eperm.clone()));
    }
    for name in &policy.deny {
        let nr = lookup(&[ALLOWED, DENIED], name)
            .ok_or_else(|| format!("deny: {name:?} is not a syscall nanobox knows on x86_64"))?;
        actions.insert(nr as u32, u32::from(eperm.clone()));
    }
    for name in &policy.allow {
        let nr = lookup(&[DENIED], name).ok_or_else(|| {
            format!(
                "allow: {name:?} is not refused by the default filter, so there is nothing to \
                 allow (syscalls outside Docker's allow-list, such as clone3, stay unavailable)"
            )
        })?;
        actions.insert(nr as u32, allow);
    }
    let by_number = number_filter(&actions, enosys)?;
    let by_argument: BpfProgram = SeccompFilter::new(
        argument_rules(ids)?,
        SeccompAction::Allow,
        eperm,
        TargetArch::x86_64,
    )
    .and_then(|f| f.try_into())
    .map_err(|e| e.to_string())?;
    Ok(Filters {
        by_number,
        // Foreign calls pass here; the number filter answers them ENOSYS.
        by_argument: refuse_foreign(by_argument, allow)?,
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
    const X86_64: u32 = AUDIT_ARCH_X86_64;
    const I386: u32 = 0x4000_0003;
    const IDS: ProgramIds = ProgramIds {
        uid: 1000,
        gid: 1000,
    };

    #[test]
    fn degraded_policy_refuses_sockets_and_sysv_ipc_but_keeps_socketpair() {
        let f = filters(
            &super::super::degraded::seccomp_policy(&Default::default()),
            Some(IDS),
        )
        .unwrap();
        for nr in [
            libc::SYS_socket,
            libc::SYS_shmget,
            libc::SYS_shmat,
            libc::SYS_msgget,
            libc::SYS_semget,
            libc::SYS_semop,
        ] {
            assert_eq!(eval(&f.by_number, X86_64, nr as u32, [0; 6]), EPERM, "{nr}");
        }
        for nr in [libc::SYS_socketpair, libc::SYS_read, libc::SYS_clone] {
            assert_eq!(eval(&f.by_number, X86_64, nr as u32, [0; 6]), ALLOW, "{nr}");
        }
        // The default policy keeps socket() (its families are checked by the argument filter).
        let d = filters(&Default::default(), Some(IDS)).unwrap();
        assert_eq!(
            eval(&d.by_number, X86_64, libc::SYS_socket as u32, [0; 6]),
            ALLOW
        );
    }

    /// The calls of [`own_process_rules`]: (syscall, index of the pid argument).
    const BY_PID: &[(i64, usize)] = &[
        (libc::SYS_sched_setaffinity, 0),
        (libc::SYS_sched_setscheduler, 0),
        (libc::SYS_sched_setparam, 0),
        (libc::SYS_sched_setattr, 0),
        (libc::SYS_prlimit64, 0),
        (libc::SYS_get_robust_list, 0),
        (libc::SYS_migrate_pages, 0),
        (libc::SYS_move_pages, 0),
    ];

    /// Pids the kernel reads (the low 32 bits) as another process: a host process, init, the
    /// program's own pid by number, -1, and the same behind a high half.
    const FOREIGN_PIDS: &[u64] = &[1, 2, 4242, 65534, 0xffff_ffff, (1 << 32) | 4242];

    #[test]
    fn degraded_filter_refuses_calls_on_other_processes_and_allows_pid_0() {
        let d = filters(
            &super::super::degraded::seccomp_policy(&Default::default()),
            None,
        )
        .unwrap();
        let a = |nr: i64, args: [u64; 6]| eval(&d.by_argument, X86_64, nr as u32, args);
        let with = |pid_at: usize, pid: u64| {
            let mut args = [0, 1, 0x1000, 3, 0x2000, 0];
            args[pid_at] = pid;
            args
        };
        for &(nr, at) in BY_PID {
            for &pid in FOREIGN_PIDS {
                assert_eq!(a(nr, with(at, pid)), EPERM, "syscall {nr} pid {pid:#x}");
            }
            assert_eq!(a(nr, with(at, 0)), ALLOW, "syscall {nr} pid 0");
            // The kernel reads a pid_t: a high half over 0 is still the caller.
            assert_eq!(a(nr, with(at, 1 << 32)), ALLOW, "syscall {nr}");
        }
        // setpriority(which, who, prio): PRIO_PROCESS (0) with who 0 only; PRIO_PGRP (1) and
        // PRIO_USER (2, where who 0 means every process of the uid) never.
        let (prio_process, prio_pgrp, prio_user) = (0u64, 1u64, 2u64);
        assert_eq!(
            a(libc::SYS_setpriority, [prio_process, 0, 10, 0, 0, 0]),
            ALLOW
        );
        for &who in FOREIGN_PIDS {
            assert_eq!(
                a(libc::SYS_setpriority, [prio_process, who, 10, 0, 0, 0]),
                EPERM
            );
        }
        for which in [prio_pgrp, prio_user, 3, 0xffff_ffff] {
            for who in [0, 1, 65534] {
                assert_eq!(
                    a(libc::SYS_setpriority, [which, who, 10, 0, 0, 0]),
                    EPERM,
                    "which {which} who {who}"
                );
            }
        }
        // ioprio_set(which, who, ioprio): IOPRIO_WHO_PROCESS (1) with who 0 only.
        let idle = 3 << 13;
        assert_eq!(a(libc::SYS_ioprio_set, [1, 0, idle, 0, 0, 0]), ALLOW);
        for &who in FOREIGN_PIDS {
            assert_eq!(a(libc::SYS_ioprio_set, [1, who, idle, 0, 0, 0]), EPERM);
        }
        for which in [0, 2, 3, 4] {
            for who in [0, 1, 65534] {
                assert_eq!(
                    a(libc::SYS_ioprio_set, [which, who, idle, 0, 0, 0]),
                    EPERM,
                    "which {which} who {who}"
                );
            }
        }
        // prctl(PR_SCHED_CORE, cmd, pid, ...): pid 0 only; other prctl options are not checked.
        for cmd in 0..4 {
            assert_eq!(a(libc::SYS_prctl, [62, cmd, 0, 0, 0, 0]), ALLOW);
            for &pid in FOREIGN_PIDS {
                assert_eq!(a(libc::SYS_prctl, [62, cmd, pid, 0, 0, 0]), EPERM);
            }
        }
        assert_eq!(
            a(
                libc::SYS_prctl,
                [libc::PR_SET_PDEATHSIG as u64, 9, 0, 0, 0, 0]
            ),
            ALLOW
        );
        assert_eq!(
            a(
                libc::SYS_prctl,
                [libc::PR_SET_NAME as u64, 0x1000, 4242, 0, 0, 0]
            ),
            ALLOW
        );
        // process_mrelease names its target by pidfd: refused by number.
        let n = |nr: i64| eval(&d.by_number, X86_64, nr as u32, [3, 0, 0, 0, 0, 0]);
        assert_eq!(n(libc::SYS_process_mrelease), EPERM);
        // migrate_pages, move_pages and process_madvise are not allowed by number at all.
        for nr in [
            libc::SYS_migrate_pages,
            libc::SYS_move_pages,
            libc::SYS_process_madvise,
        ] {
            assert_eq!(n(nr), ENOSYS, "{nr}");
        }
        // Reading and signalling are left to the kernel and Landlock's scope.
        for nr in [
            libc::SYS_getpriority,
            libc::SYS_sched_getaffinity,
            libc::SYS_sched_getattr,
            libc::SYS_ioprio_get,
            libc::SYS_kill,
            libc::SYS_pidfd_open,
        ] {
            assert_eq!(a(nr, [4242, 4242, 0, 0, 0, 0]), ALLOW, "{nr}");
        }
    }

    #[test]
    fn the_namespaced_filter_leaves_pids_to_the_pid_namespace() {
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        let a = |nr: i64, args: [u64; 6]| eval(&f.by_argument, X86_64, nr as u32, args);
        for &(nr, at) in BY_PID {
            let mut args = [0; 6];
            args[at] = 4242;
            assert_eq!(a(nr, args), ALLOW, "{nr}");
        }
        assert_eq!(a(libc::SYS_setpriority, [2, 0, 10, 0, 0, 0]), ALLOW);
        assert_eq!(a(libc::SYS_ioprio_set, [3, 0, 3 << 13, 0, 0, 0]), ALLOW);
        assert_eq!(a(libc::SYS_prctl, [62, 1, 4242, 0, 0, 0]), ALLOW);
        assert_eq!(
            eval(
                &f.by_number,
                X86_64,
                libc::SYS_process_mrelease as u32,
                [0; 6]
            ),
            ALLOW
        );
    }

    #[test]
    fn number_filter_answers_every_syscall_number_as_listed() {
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        assert!(
            f.by_number.len() < 400,
            "a short tree: {}",
            f.by_number.len()
        );
        for nr in 0..1024u32 {
            let want = if DENIED.iter().any(|&(_, n)| n == nr as i64) {
                EPERM
            } else if ALLOWED.iter().any(|&(_, n)| n == nr as i64) {
                ALLOW
            } else {
                ENOSYS
            };
            assert_eq!(eval(&f.by_number, X86_64, nr, [0; 6]), want, "syscall {nr}");
        }
        assert_eq!(eval(&f.by_number, X86_64, u32::MAX, [0; 6]), ENOSYS);
        assert_eq!(
            eval(&f.by_number, X86_64, libc::SYS_clone3 as u32, [0; 6]),
            ENOSYS
        );
    }

    #[test]
    fn foreign_architectures_and_x32_are_refused_not_killed() {
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        for nr in [0, 1, 20, 39, 165] {
            assert_eq!(eval(&f.by_number, I386, nr, [0; 6]), ENOSYS);
            assert_eq!(eval(&f.by_argument, I386, nr, [0; 6]), ALLOW);
            assert_eq!(
                eval(&f.by_number, X86_64, X32_SYSCALL_BIT | nr, [0; 6]),
                ENOSYS
            );
            assert_eq!(
                eval(&f.by_argument, X86_64, X32_SYSCALL_BIT | nr, [0; 6]),
                ALLOW
            );
        }
    }

    #[test]
    fn argument_filter_refuses_the_dangerous_values_only() {
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        let a = |nr: i64, args: [u64; 6]| eval(&f.by_argument, X86_64, nr as u32, args);
        assert_eq!(a(libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            a(libc::SYS_ioctl, [0, (1 << 32) | libc::TIOCSTI, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(a(libc::SYS_ioctl, [0, libc::TCGETS, 0, 0, 0, 0]), ALLOW);
        assert_eq!(
            a(
                libc::SYS_clone,
                [libc::CLONE_NEWUSER as u64 | 17, 0, 0, 0, 0, 0]
            ),
            EPERM
        );
        assert_eq!(
            a(
                libc::SYS_clone,
                [
                    libc::CLONE_VM as u64 | libc::CLONE_THREAD as u64,
                    0,
                    0,
                    0,
                    0,
                    0
                ]
            ),
            ALLOW
        );
        assert_eq!(
            a(libc::SYS_socket, [libc::AF_INET as u64, 1, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            a(libc::SYS_socket, [libc::AF_VSOCK as u64, 1, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            a(
                libc::SYS_socket,
                [
                    libc::AF_NETLINK as u64,
                    3,
                    libc::NETLINK_AUDIT as u64,
                    0,
                    0,
                    0
                ]
            ),
            EPERM
        );
        assert_eq!(
            a(libc::SYS_socket, [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            a(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            a(libc::SYS_personality, [0x0040_0000, 0, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(a(libc::SYS_read, [0; 6]), ALLOW);
    }

    #[test]
    fn lists_do_not_overlap_and_names_match_numbers() {
        for (name, nr) in DENIED {
            assert!(
                !ALLOWED.iter().any(|(_, n)| n == nr),
                "syscall {name} is both allowed and denied"
            );
        }
        assert!(
            !ALLOWED.iter().any(|&(_, n)| n == libc::SYS_clone3),
            "clone3 must answer ENOSYS"
        );
        assert_eq!(lookup(&[ALLOWED], "openat"), Some(libc::SYS_openat));
        assert_eq!(lookup(&[DENIED], "ptrace"), Some(libc::SYS_ptrace));
        assert_eq!(lookup(&[ALLOWED, DENIED], "clone3"), None);
    }

    #[test]
    fn policy_tightens_and_loosens_by_name() {
        use crate::policy::SeccompPolicy;
        let p = SeccompPolicy::default()
            .deny(&["getppid"])
            .allow(&["ptrace"]);
        let f = filters(&p, Some(IDS)).unwrap();
        let n = |nr: i64| eval(&f.by_number, X86_64, nr as u32, [0; 6]);
        assert_eq!(n(libc::SYS_getppid), EPERM);
        assert_eq!(n(libc::SYS_ptrace), ALLOW);
        assert_eq!(n(libc::SYS_getpid), ALLOW);
        assert_eq!(n(libc::SYS_mount), EPERM);
        // Argument checks stay when the syscall is allowed by name.
        let f = filters(&SeccompPolicy::default().allow(&["personality"]), Some(IDS)).unwrap_err();
        assert!(f.contains("personality"), "{f}");
        let e = filters(&SeccompPolicy::default().allow(&["clone3"]), Some(IDS)).unwrap_err();
        assert!(e.contains("clone3"), "{e}");
        let e = filters(&SeccompPolicy::default().deny(&["no_such_call"]), Some(IDS)).unwrap_err();
        assert!(e.contains("no_such_call"), "{e}");
    }

    #[test]
    fn no_mode_argument_can_carry_the_setuid_or_setgid_bit() {
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        let a = |nr: i64, args: [u64; 6]| eval(&f.by_argument, X86_64, nr as u32, args);
        let (suid, sgid) = (libc::S_ISUID as u64, libc::S_ISGID as u64);
        let creat = libc::O_CREAT as u64 | libc::O_WRONLY as u64;
        let tmpfile = libc::O_TMPFILE as u64 | libc::O_RDWR as u64;
        for bits in [suid, sgid, suid | sgid] {
            for mode in [0o755 | bits, 0o4777 & !0o4000 | bits, bits] {
                assert_eq!(a(libc::SYS_chmod, [0, mode, 0, 0, 0, 0]), EPERM);
                assert_eq!(a(libc::SYS_fchmod, [3, mode, 0, 0, 0, 0]), EPERM);
                assert_eq!(a(libc::SYS_fchmodat, [3, 0, mode, 0, 0, 0]), EPERM);
                assert_eq!(a(libc::SYS_creat, [0, mode, 0, 0, 0, 0]), EPERM);
                let reg = libc::S_IFREG as u64 | mode;
                assert_eq!(a(libc::SYS_mknod, [0, reg, 0, 0, 0, 0]), EPERM);
                assert_eq!(a(libc::SYS_mknodat, [3, 0, reg, 0, 0, 0]), EPERM);
                for flags in [creat, creat | libc::O_EXCL as u64, tmpfile] {
                    assert_eq!(a(libc::SYS_open, [0, flags, mode, 0, 0, 0]), EPERM);
                    assert_eq!(a(libc::SYS_openat, [3, 0, flags, mode, 0, 0]), EPERM);
                }
                // The high half of a register is not the mode: still refused on the low bits.
                assert_eq!(a(libc::SYS_chmod, [0, (1 << 40) | mode, 0, 0, 0, 0]), EPERM);
            }
        }
        // Ordinary modes, sticky directories and opens that create nothing pass.
        for mode in [0o644, 0o755, 0o777, 0o1777, 0o600, 0] {
            assert_eq!(a(libc::SYS_chmod, [0, mode, 0, 0, 0, 0]), ALLOW);
            assert_eq!(a(libc::SYS_fchmod, [3, mode, 0, 0, 0, 0]), ALLOW);
            assert_eq!(a(libc::SYS_fchmodat, [3, 0, mode, 0, 0, 0]), ALLOW);
            assert_eq!(a(libc::SYS_openat, [3, 0, creat, mode, 0, 0]), ALLOW);
            assert_eq!(a(libc::SYS_open, [0, creat, mode, 0, 0, 0]), ALLOW);
        }
        // Without O_CREAT or O_TMPFILE the mode argument is ignored by the kernel (garbage in
        // the register is harmless), so it is not checked.
        assert_eq!(
            a(
                libc::SYS_openat,
                [3, 0, libc::O_RDONLY as u64, 0o4755, 0, 0]
            ),
            ALLOW
        );
        // The mode-in-a-struct and flags variants are not reachable at all: libc falls back.
        for nr in [libc::SYS_openat2, libc::SYS_fchmodat2] {
            assert_eq!(
                eval(&f.by_number, X86_64, nr as u32, [0; 6]),
                ENOSYS,
                "{nr}"
            );
        }
        // Also without a user namespace (the degraded mode).
        let d = filters(&Default::default(), None).unwrap();
        assert_eq!(
            eval(
                &d.by_argument,
                X86_64,
                libc::SYS_chmod as u32,
                [0, 0o4755, 0, 0, 0, 0]
            ),
            EPERM
        );
    }

    #[test]
    fn chown_and_setid_to_an_id_the_program_does_not_hold_answer_eperm() {
        let f = filters(&Default::default(), Some(IDS)).unwrap();
        let a = |nr: i64, args: [u64; 6]| eval(&f.by_argument, X86_64, nr as u32, args);
        let (own, keep) = (1000u64, u32::MAX as u64);
        for other in [0u64, 1, 65534, 999, 1001, 0xffff_fffe] {
            assert_eq!(a(libc::SYS_chown, [0, other, keep, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_chown, [0, keep, other, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_fchown, [3, own, other, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_lchown, [0, other, own, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_fchownat, [3, 0, other, keep, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_fchownat, [3, 0, keep, other, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_setuid, [other, 0, 0, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_setgid, [other, 0, 0, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_setreuid, [keep, other, 0, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_setregid, [other, keep, 0, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_setresuid, [own, own, other, 0, 0, 0]), EPERM);
            assert_eq!(a(libc::SYS_setresgid, [keep, other, own, 0, 0, 0]), EPERM);
        }
        // Its own ids and "unchanged" are the kernel's to answer.
        assert_eq!(a(libc::SYS_chown, [0, own, own, 0, 0, 0]), ALLOW);
        assert_eq!(a(libc::SYS_fchownat, [3, 0, keep, own, 0, 0]), ALLOW);
        assert_eq!(a(libc::SYS_lchown, [0, keep, keep, 0, 0, 0]), ALLOW);
        assert_eq!(a(libc::SYS_setresuid, [own, keep, own, 0, 0, 0]), ALLOW);
        assert_eq!(a(libc::SYS_setgid, [own, 0, 0, 0, 0, 0]), ALLOW);
        // Without a user namespace the kernel already answers EPERM: no rule.
        let d = filters(&Default::default(), None).unwrap();
        assert_eq!(
            eval(
                &d.by_argument,
                X86_64,
                libc::SYS_chown as u32,
                [0, 0, 0, 0, 0, 0]
            ),
            ALLOW
        );
    }
}
