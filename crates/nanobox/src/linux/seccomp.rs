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
//! 2. **by argument** (seccompiler) — dangerous argument values of five allowed syscalls answer
//!    `EPERM`: `ioctl` TIOCSTI/TIOCLINUX on the low 32 bits, sockets other than unix, inet, inet6
//!    and netlink-route, `socketpair` other than unix, `clone` with a namespace flag, `personality`
//!    other than Docker's harmless values.
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
const ALLOWED: &[i64] = &[
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_access,
    libc::SYS_alarm,
    libc::SYS_arch_prctl,
    libc::SYS_bind,
    libc::SYS_brk,
    libc::SYS_capget,
    libc::SYS_capset,
    libc::SYS_chdir,
    libc::SYS_chmod,
    libc::SYS_chown,
    libc::SYS_clock_getres,
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_clone,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_connect,
    libc::SYS_copy_file_range,
    libc::SYS_creat,
    libc::SYS_dup,
    libc::SYS_dup2,
    libc::SYS_dup3,
    libc::SYS_epoll_create,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_epoll_wait,
    libc::SYS_eventfd,
    libc::SYS_eventfd2,
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_fadvise64,
    libc::SYS_fallocate,
    libc::SYS_fchdir,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_fcntl,
    libc::SYS_fdatasync,
    libc::SYS_fgetxattr,
    libc::SYS_flistxattr,
    libc::SYS_flock,
    libc::SYS_fork,
    libc::SYS_fremovexattr,
    libc::SYS_fsetxattr,
    libc::SYS_fstat,
    libc::SYS_fstatfs,
    libc::SYS_fsync,
    libc::SYS_ftruncate,
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    libc::SYS_futimesat,
    libc::SYS_getcpu,
    libc::SYS_getcwd,
    libc::SYS_getdents,
    libc::SYS_getdents64,
    libc::SYS_getegid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getgroups,
    libc::SYS_getitimer,
    libc::SYS_getpeername,
    libc::SYS_getpgid,
    libc::SYS_getpgrp,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getpriority,
    libc::SYS_getrandom,
    libc::SYS_getresgid,
    libc::SYS_getresuid,
    libc::SYS_getrlimit,
    libc::SYS_get_robust_list,
    libc::SYS_getrusage,
    libc::SYS_getsid,
    libc::SYS_getsockname,
    libc::SYS_getsockopt,
    libc::SYS_get_thread_area,
    libc::SYS_gettid,
    libc::SYS_gettimeofday,
    libc::SYS_getuid,
    libc::SYS_getxattr,
    libc::SYS_inotify_add_watch,
    libc::SYS_inotify_init,
    libc::SYS_inotify_init1,
    libc::SYS_inotify_rm_watch,
    libc::SYS_io_cancel,
    libc::SYS_ioctl,
    libc::SYS_io_destroy,
    libc::SYS_io_getevents,
    SYS_IO_PGETEVENTS,
    libc::SYS_ioprio_get,
    libc::SYS_ioprio_set,
    libc::SYS_io_setup,
    libc::SYS_io_submit,
    libc::SYS_kill,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_restrict_self,
    libc::SYS_lchown,
    libc::SYS_lgetxattr,
    libc::SYS_link,
    libc::SYS_linkat,
    libc::SYS_listen,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_lremovexattr,
    libc::SYS_lseek,
    libc::SYS_lsetxattr,
    libc::SYS_lstat,
    libc::SYS_madvise,
    libc::SYS_membarrier,
    libc::SYS_memfd_create,
    libc::SYS_mincore,
    libc::SYS_mkdir,
    libc::SYS_mkdirat,
    libc::SYS_mknod,
    libc::SYS_mknodat,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_mlockall,
    libc::SYS_mmap,
    libc::SYS_modify_ldt,
    libc::SYS_mprotect,
    libc::SYS_mq_getsetattr,
    libc::SYS_mq_notify,
    libc::SYS_mq_open,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_unlink,
    libc::SYS_mremap,
    libc::SYS_msgctl,
    libc::SYS_msgget,
    libc::SYS_msgrcv,
    libc::SYS_msgsnd,
    libc::SYS_msync,
    libc::SYS_munlock,
    libc::SYS_munlockall,
    libc::SYS_munmap,
    libc::SYS_nanosleep,
    libc::SYS_newfstatat,
    libc::SYS_open,
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_pause,
    libc::SYS_personality,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_pipe,
    libc::SYS_pipe2,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_prctl,
    libc::SYS_pread64,
    libc::SYS_preadv,
    libc::SYS_preadv2,
    libc::SYS_prlimit64,
    libc::SYS_process_mrelease,
    libc::SYS_pselect6,
    libc::SYS_pwrite64,
    libc::SYS_pwritev,
    libc::SYS_pwritev2,
    libc::SYS_read,
    libc::SYS_readahead,
    libc::SYS_readlink,
    libc::SYS_readlinkat,
    libc::SYS_readv,
    libc::SYS_recvfrom,
    libc::SYS_recvmmsg,
    libc::SYS_recvmsg,
    libc::SYS_remap_file_pages,
    libc::SYS_removexattr,
    libc::SYS_rename,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_restart_syscall,
    libc::SYS_rmdir,
    libc::SYS_rseq,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_getattr,
    libc::SYS_sched_getparam,
    libc::SYS_sched_get_priority_max,
    libc::SYS_sched_get_priority_min,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_rr_get_interval,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_setattr,
    libc::SYS_sched_setparam,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_yield,
    libc::SYS_seccomp,
    libc::SYS_select,
    libc::SYS_semctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_sendfile,
    libc::SYS_sendmmsg,
    libc::SYS_sendmsg,
    libc::SYS_sendto,
    libc::SYS_setfsgid,
    libc::SYS_setfsuid,
    libc::SYS_setgid,
    libc::SYS_setgroups,
    libc::SYS_setitimer,
    libc::SYS_setpgid,
    libc::SYS_setpriority,
    libc::SYS_setregid,
    libc::SYS_setresgid,
    libc::SYS_setresuid,
    libc::SYS_setreuid,
    libc::SYS_setrlimit,
    libc::SYS_set_robust_list,
    libc::SYS_setsid,
    libc::SYS_setsockopt,
    libc::SYS_set_thread_area,
    libc::SYS_set_tid_address,
    libc::SYS_setuid,
    libc::SYS_setxattr,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_shmdt,
    libc::SYS_shmget,
    libc::SYS_shutdown,
    libc::SYS_sigaltstack,
    libc::SYS_signalfd,
    libc::SYS_signalfd4,
    libc::SYS_socket,
    libc::SYS_socketpair,
    libc::SYS_splice,
    libc::SYS_stat,
    libc::SYS_statfs,
    libc::SYS_statx,
    libc::SYS_symlink,
    libc::SYS_symlinkat,
    libc::SYS_sync,
    libc::SYS_sync_file_range,
    libc::SYS_syncfs,
    libc::SYS_sysinfo,
    libc::SYS_tee,
    libc::SYS_tgkill,
    libc::SYS_time,
    libc::SYS_timer_create,
    libc::SYS_timer_delete,
    libc::SYS_timer_getoverrun,
    libc::SYS_timer_gettime,
    libc::SYS_timer_settime,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_gettime,
    libc::SYS_timerfd_settime,
    libc::SYS_times,
    libc::SYS_tkill,
    libc::SYS_truncate,
    libc::SYS_umask,
    libc::SYS_uname,
    libc::SYS_unlink,
    libc::SYS_unlinkat,
    libc::SYS_utime,
    libc::SYS_utimensat,
    libc::SYS_utimes,
    libc::SYS_vfork,
    libc::SYS_vmsplice,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_write,
    libc::SYS_writev,
];

/// Refused with EPERM by the number filter.
const DENIED: &[i64] = &[
    // the mount family
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    // namespaces
    libc::SYS_unshare,
    libc::SYS_setns,
    // keyrings, bpf, perf, userfaultfd, fanotify, io_uring
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    libc::SYS_fanotify_init,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // kernel images and modules
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    // file handles, other processes
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    // the machine
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_adjtimex,
    libc::SYS_clock_adjtime,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_vhangup,
    libc::SYS_iopl,
    libc::SYS_ioperm,
    libc::SYS_lookup_dcookie,
    libc::SYS_uselib,
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

/// The argument checks (EPERM when a rule matches).
fn argument_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut m: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
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

/// Compile the default filters.
pub(crate) fn default_filters() -> Result<Filters, String> {
    let allow = u32::from(SeccompAction::Allow);
    let eperm = SeccompAction::Errno(libc::EPERM as u32);
    let enosys = u32::from(SeccompAction::Errno(libc::ENOSYS as u32));
    let mut actions: BTreeMap<u32, u32> = BTreeMap::new();
    for &nr in ALLOWED {
        actions.insert(nr as u32, allow);
    }
    for &nr in DENIED {
        actions.insert(nr as u32, u32::from(eperm.clone()));
    }
    let by_number = number_filter(&actions, enosys)?;
    let by_argument: BpfProgram = SeccompFilter::new(
        argument_rules()?,
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

    #[test]
    fn number_filter_answers_every_syscall_number_as_listed() {
        let f = default_filters().unwrap();
        assert!(
            f.by_number.len() < 400,
            "a short tree: {}",
            f.by_number.len()
        );
        for nr in 0..1024u32 {
            let want = if DENIED.contains(&(nr as i64)) {
                EPERM
            } else if ALLOWED.contains(&(nr as i64)) {
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
        let f = default_filters().unwrap();
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
        let f = default_filters().unwrap();
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
    fn lists_do_not_overlap() {
        for nr in DENIED {
            assert!(
                !ALLOWED.contains(nr),
                "syscall {nr} is both allowed and denied"
            );
        }
        assert!(
            !ALLOWED.contains(&libc::SYS_clone3),
            "clone3 must answer ENOSYS"
        );
    }
}
