//! The default syscall filter, attacked from inside the sandbox (as root and as uid 65534).

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use common::TempDir;
use nanobox::{Outcome, Permission, Sandbox};

/// Run python code that prints results; return stdout.
fn py(code: &str) -> String {
    let r = Sandbox::builder()
        .build()
        .unwrap()
        .run("python3", &["-c", code])
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    r.stdout
}

/// Python prelude: `sc(nr, *args)` returns (result, errno) of a raw syscall.
const PRELUDE: &str = "import ctypes, os, socket\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
libc.syscall.restype = ctypes.c_long\n\
def sc(nr, *a):\n  ctypes.set_errno(0)\n  r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(x) for x in a])\n  return (r, ctypes.get_errno())\n";

const EPERM: i32 = 1;
const ENOSYS: i32 = 38;

fn errno_of(out: &str, label: &str) -> i32 {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} in {out}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

both!(dangerous_syscalls_return_eperm, {
    let calls: &[(&str, i64)] = &[
        ("mount", libc::SYS_mount),
        ("umount2", libc::SYS_umount2),
        ("pivot_root", libc::SYS_pivot_root),
        ("chroot", libc::SYS_chroot),
        ("fsopen", libc::SYS_fsopen),
        ("open_tree", libc::SYS_open_tree),
        ("move_mount", libc::SYS_move_mount),
        ("mount_setattr", libc::SYS_mount_setattr),
        ("unshare", libc::SYS_unshare),
        ("setns", libc::SYS_setns),
        ("keyctl", libc::SYS_keyctl),
        ("add_key", libc::SYS_add_key),
        ("bpf", libc::SYS_bpf),
        ("perf_event_open", libc::SYS_perf_event_open),
        ("userfaultfd", libc::SYS_userfaultfd),
        ("fanotify_init", libc::SYS_fanotify_init),
        ("io_uring_setup", libc::SYS_io_uring_setup),
        ("kexec_load", libc::SYS_kexec_load),
        ("init_module", libc::SYS_init_module),
        ("finit_module", libc::SYS_finit_module),
        ("open_by_handle_at", libc::SYS_open_by_handle_at),
        ("name_to_handle_at", libc::SYS_name_to_handle_at),
        ("ptrace", libc::SYS_ptrace),
        ("process_vm_readv", libc::SYS_process_vm_readv),
        ("pidfd_getfd", libc::SYS_pidfd_getfd),
        ("kcmp", libc::SYS_kcmp),
        ("reboot", libc::SYS_reboot),
        ("swapon", libc::SYS_swapon),
        ("acct", libc::SYS_acct),
        ("syslog", libc::SYS_syslog),
        ("settimeofday", libc::SYS_settimeofday),
        ("clock_settime", libc::SYS_clock_settime),
        ("adjtimex", libc::SYS_adjtimex),
        ("sethostname", libc::SYS_sethostname),
        ("vhangup", libc::SYS_vhangup),
        // x86's port I/O; aarch64 has no such calls
        #[cfg(target_arch = "x86_64")]
        ("iopl", libc::SYS_iopl),
        #[cfg(target_arch = "x86_64")]
        ("ioperm", libc::SYS_ioperm),
    ];
    let mut code = PRELUDE.to_string();
    for (name, nr) in calls {
        code.push_str(&format!("print('{name}', *sc({nr}, 0, 0, 0, 0))\n"));
    }
    let out = py(&code);
    for (name, _) in calls {
        assert_eq!(errno_of(&out, name), EPERM, "{name}: {out}");
    }
});

both!(namespace_creation_and_clone3_are_refused, {
    let flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
    ];
    let mut code = PRELUDE.to_string();
    for f in flags {
        // clone(flags | SIGCHLD): refused before any child exists.
        code.push_str(&format!(
            "print('clone{f:x}', *sc({}, {} | 17, 0, 0, 0, 0))\n",
            libc::SYS_clone,
            f
        ));
    }
    code.push_str(&format!(
        "print('clone3', *sc({}, 0, 0))\n",
        libc::SYS_clone3
    ));
    code.push_str(
        "pid = os.fork()\nif pid == 0: os._exit(7)\nprint('fork', os.waitpid(pid, 0)[1] >> 8)\n",
    );
    let out = py(&code);
    for f in flags {
        assert_eq!(errno_of(&out, &format!("clone{f:x}")), EPERM, "{out}");
    }
    assert_eq!(
        errno_of(&out, "clone3"),
        ENOSYS,
        "clone3 answers ENOSYS so libc falls back: {out}"
    );
    assert!(out.contains("fork 7"), "plain fork still works: {out}");
});

both!(tiocsti_and_tioclinux_are_refused_even_with_high_bits, {
    let mut code = PRELUDE.to_string();
    for (label, req) in [
        ("sti", libc::TIOCSTI),
        ("sti_high", 0x1_0000_0000 | libc::TIOCSTI),
        ("linux", libc::TIOCLINUX),
        ("linux_high", 0xdead_0000_0000 | libc::TIOCLINUX),
        ("tcgets", libc::TCGETS),
    ] {
        code.push_str(&format!(
            "print('{label}', *sc({}, 0, {req}, 0))\n",
            libc::SYS_ioctl
        ));
    }
    let out = py(&code);
    for label in ["sti", "sti_high", "linux", "linux_high"] {
        assert_eq!(errno_of(&out, label), EPERM, "{label}: {out}");
    }
    // Other ioctls reach the kernel (stdin is not a terminal: ENOTTY).
    assert_eq!(errno_of(&out, "tcgets"), libc::ENOTTY, "{out}");
});

both!(only_unix_inet_and_netlink_route_sockets, {
    let mut code = PRELUDE.to_string();
    for (label, fam, proto) in [
        ("unix", libc::AF_UNIX, 0),
        ("inet", libc::AF_INET, 0),
        ("inet6", libc::AF_INET6, 0),
        ("route", libc::AF_NETLINK, libc::NETLINK_ROUTE),
        ("audit", libc::AF_NETLINK, libc::NETLINK_AUDIT),
        ("vsock", libc::AF_VSOCK, 0),
        ("packet", libc::AF_PACKET, 0),
        ("bluetooth", libc::AF_BLUETOOTH, 0),
        ("alg", libc::AF_ALG, 0),
    ] {
        let ty = if fam == libc::AF_NETLINK || fam == libc::AF_PACKET {
            libc::SOCK_RAW
        } else {
            libc::SOCK_STREAM
        };
        let ty = if fam == libc::AF_ALG {
            libc::SOCK_SEQPACKET
        } else {
            ty
        };
        code.push_str(&format!(
            "r = sc({}, {fam}, {ty}, {proto}); print('{label}', 'ok' if r[0] >= 0 else r[1])\n",
            libc::SYS_socket
        ));
    }
    code.push_str(&format!(
        "print('pair_inet', *sc({}, {}, 1, 0, 0))\n",
        libc::SYS_socketpair,
        libc::AF_INET
    ));
    let out = py(&code);
    for ok in ["unix", "inet", "inet6", "route"] {
        assert!(out.contains(&format!("{ok} ok")), "{ok}: {out}");
    }
    for bad in ["audit", "vsock", "packet", "bluetooth", "alg", "pair_inet"] {
        assert_eq!(errno_of(&out, bad), EPERM, "{bad}: {out}");
    }
});

both!(personality_only_takes_harmless_values, {
    let mut code = PRELUDE.to_string();
    code.push_str(&format!(
        "print('query', *sc({}, 0xffffffff))\n",
        libc::SYS_personality
    ));
    code.push_str(&format!(
        "print('norandom', *sc({}, 0x0040000))\n",
        libc::SYS_personality
    ));
    code.push_str(&format!(
        "print('readimpliesexec', *sc({}, 0x0400000))\n",
        libc::SYS_personality
    ));
    let out = py(&code);
    assert!(out.contains("query 0 0"), "{out}");
    assert_eq!(errno_of(&out, "norandom"), EPERM, "{out}");
    assert_eq!(errno_of(&out, "readimpliesexec"), EPERM, "{out}");
});

#[cfg(target_arch = "x86_64")]
both!(x32_and_i386_syscalls_are_refused, {
    // x32: getpid with the x32 bit.
    let mut code = PRELUDE.to_string();
    code.push_str(&format!(
        "print('x32', *sc(0x40000000 | {}))\n",
        libc::SYS_getpid
    ));
    code.push_str(&format!(
        "print('x32_mount', *sc(0x40000000 | {}, 0, 0, 0, 0, 0))\n",
        libc::SYS_mount
    ));
    let out = py(&code);
    assert_eq!(errno_of(&out, "x32"), ENOSYS, "{out}");
    assert_eq!(errno_of(&out, "x32_mount"), ENOSYS, "{out}");

    // i386 through int 0x80: a small C program compiled on the host, run inside.
    let d = TempDir::new();
    common::compile_c(
        d.path(),
        "i386",
        "#include <stdio.h>\nint main(void){ long r; __asm__ volatile(\"int $0x80\" : \"=a\"(r) : \"a\"(20L) : \"memory\"); printf(\"%ld\\n\", r); return 0; }\n",
    );
    let sb = Sandbox::builder()
        .mount(d.path(), "/t", Permission::ReadOnly)
        .build()
        .unwrap();
    let r = sb.run("/t/i386", &[] as &[&str]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "not killed: {r:?}");
    assert_eq!(
        r.stdout.trim(),
        format!("-{ENOSYS}"),
        "i386 getpid answers -ENOSYS: {r:?}"
    );
});

/// A static 32-bit ARM (AArch32, EABI5) program: `getpid` through `svc 0`, then `udf` (SIGILL)
/// when it answered -ENOSYS and `bkpt` (SIGTRAP) when it answered anything else. Every other call
/// it could make is refused the same way, so it ends by a signal either way; a filter that killed
/// would end it with SIGSYS.
#[cfg(target_arch = "aarch64")]
fn arm32_getpid_program() -> Vec<u8> {
    let code: [u32; 6] = [
        0xe3a0_7014, // mov r7, #20      (getpid in the 32-bit ARM table)
        0xef00_0000, // svc #0
        0xe370_0026, // cmn r0, #38      (r0 == -ENOSYS?)
        0x1a00_0000, // bne +8           (to the bkpt)
        0xe7f0_00f0, // udf #0           -> SIGILL: refused
        0xe120_0070, // bkpt #0          -> SIGTRAP: answered
    ];
    let (base, start) = (0x1_0000u32, 52 + 32);
    let size = start + 4 * code.len() as u32;
    let mut elf = b"\x7fELF\x01\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    // ELF header: executable, EM_ARM, version 1, entry, program headers at 52, EABI5 soft-float.
    for h in [2u16, 40] {
        elf.extend(h.to_le_bytes());
    }
    for w in [1u32, base + start, 52, 0, 0x0500_0200] {
        elf.extend(w.to_le_bytes());
    }
    for h in [52u16, 32, 1, 40, 0, 0] {
        elf.extend(h.to_le_bytes());
    }
    // One PT_LOAD of the whole file, read + execute.
    for w in [1u32, 0, base, base, size, size, 5, 0x1000] {
        elf.extend(w.to_le_bytes());
    }
    for c in code {
        elf.extend(c.to_le_bytes());
    }
    elf
}

#[cfg(target_arch = "aarch64")]
both!(arm32_syscalls_are_refused_not_killed, {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new();
    let bin = d.path().join("arm32");
    std::fs::write(&bin, arm32_getpid_program()).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let sb = Sandbox::builder()
        .mount(d.path(), "/t", Permission::ReadOnly)
        .build()
        .unwrap();
    match sb.run("/t/arm32", &[] as &[&str]) {
        Err(nanobox::Error::ProgramNotExecutable { ref source, .. })
            if source.raw_os_error() == Some(libc::ENOEXEC) =>
        {
            eprintln!(
                "skipped: this machine runs no 32-bit ARM programs (a CPU without AArch32 at EL0, \
                 or a kernel without CONFIG_COMPAT), so they cannot reach the filter"
            );
        }
        r => {
            let r = r.unwrap();
            assert_eq!(
                r.outcome,
                Outcome::Signaled(libc::SIGILL),
                "getpid answered -ENOSYS (SIGILL), not a value (SIGTRAP) or a kill (SIGSYS): {r:?}"
            );
        }
    }
});

both!(filter_is_installed_and_ordinary_programs_work, {
    let r = Sandbox::builder()
        .build()
        .unwrap()
        .run("sh", &["-c", "grep -E '^Seccomp' /proc/self/status; python3 -c 'import threading, subprocess; t=threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join(); print(subprocess.run([\"echo\", \"sub\"], capture_output=True).stdout.decode().strip())'"])
        .unwrap();
    assert!(r.stdout.contains("Seccomp:\t2"), "{r:?}");
    assert!(r.stdout.contains("Seccomp_filters:\t2"), "{r:?}");
    assert!(
        r.stdout.contains("thread\nsub\n"),
        "threads and subprocesses work: {r:?}"
    );
});

/// Helper for `runs_where_clone3_is_filtered`: a caller under a Docker-like filter.
#[test]
#[ignore = "helper process of runs_where_clone3_is_filtered"]
fn caller_with_clone3_filtered() {
    use seccompiler::{SeccompAction, SeccompFilter, TargetArch};
    let rules = [(libc::SYS_clone3, vec![])].into_iter().collect();
    let f = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::try_from(std::env::consts::ARCH).unwrap(),
    )
    .unwrap();
    let prog: seccompiler::BpfProgram = f.try_into().unwrap();
    seccompiler::apply_filter_all_threads(&prog).unwrap();
    let r = Sandbox::builder()
        .build()
        .unwrap()
        .run("sh", &["-c", "echo inside"])
        .unwrap();
    assert_eq!(r.stdout, "inside\n");
    println!("CLONE_FALLBACK_OK");
}

#[test]
fn runs_where_clone3_is_filtered() {
    // Docker's default profile answers ENOSYS to clone3; nanobox then falls back to clone(2).
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "caller_with_clone3_filtered",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && so.contains("CLONE_FALLBACK_OK"),
        "{so}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

both!(policy_tightens_and_loosens_by_name, {
    use nanobox::SeccompPolicy;
    let sb = Sandbox::builder()
        .seccomp(
            SeccompPolicy::default()
                .deny(&["getppid"])
                .allow(&["ptrace"]),
        )
        .build()
        .unwrap();
    let code = format!(
        "{PRELUDE}print('getppid', *sc({}))\nprint('traceme', *sc({}, 0, 0, 0, 0))\nprint('mount', *sc({}, 0, 0, 0, 0, 0))\n",
        libc::SYS_getppid,
        libc::SYS_ptrace,
        libc::SYS_mount
    );
    let out = sb.run("python3", &["-c", &code]).unwrap().stdout;
    assert_eq!(errno_of(&out, "getppid"), EPERM, "tightened: {out}");
    assert!(
        out.contains("traceme 0 0"),
        "loosened: PTRACE_TRACEME works: {out}"
    );
    assert_eq!(errno_of(&out, "mount"), EPERM, "the rest stays: {out}");
    for bad in [
        SeccompPolicy::default().deny(&["no_such_syscall"]),
        SeccompPolicy::default().allow(&["clone3"]),
        SeccompPolicy::default()
            .deny(&["ptrace"])
            .allow(&["ptrace"]),
    ] {
        let e = Sandbox::builder().seccomp(bad).build().unwrap_err();
        assert!(
            matches!(
                e,
                nanobox::Error::InvalidOption {
                    option: "seccomp",
                    ..
                }
            ),
            "{e}"
        );
    }
});
