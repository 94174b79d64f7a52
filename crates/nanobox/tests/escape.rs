//! Escape attempts by known class, as root and as uid 65534. Together with isolation.rs and
//! seccomp.rs these are the regression suite listed in docs/SECURITY.md.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};

use common::TempDir;
use nanobox::{Outcome, Sandbox};

fn py(sb: &Sandbox, code: &str) -> String {
    let r = sb.run("python3", &["-c", code]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    r.stdout
}

fn plain() -> Sandbox {
    Sandbox::builder().build().unwrap()
}

/// Python helper: print `label ok` or `label <errno name>` for a callable.
const TRY: &str = "import os, errno\n\
def t(label, f):\n  try:\n    f(); print(label, 'ok')\n  except OSError as e:\n    print(label, errno.errorcode.get(e.errno, e.errno))\n";

fn outcome_of<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

both!(overwriting_the_runtime_binary_fails, {
    // runc CVE-2019-5736: reopen /proc/self/exe or the init's exe for writing.
    let out = py(
        &plain(),
        &format!(
            "{TRY}t('self_exe', lambda: open('/proc/self/exe', 'r+b'))\n\
             t('init_exe', lambda: open('/proc/1/exe', 'r+b'))\n\
             t('init_exe_read', lambda: open('/proc/1/exe', 'rb').read(4))\n"
        ),
    );
    for label in ["self_exe", "init_exe", "init_exe_read"] {
        assert_ne!(outcome_of(&out, label), "ok", "{label}: {out}");
    }
});

both!(leaked_host_directory_fd_gives_no_way_out, {
    // runc CVE-2024-21626: a host directory descriptor without O_CLOEXEC reaches the container,
    // which fchdir()s through it to the host. Here it is closed before the program starts.
    let d = TempDir::new();
    std::fs::write(d.join("host-secret"), "HOSTSECRET").unwrap();
    let path = std::ffi::CString::new(d.path().to_str().unwrap()).unwrap();
    // SAFETY: plain open(2) of a directory without O_CLOEXEC, as a careless caller would.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
    assert!(fd > 2);
    let out = py(
        &plain(),
        &format!(
            "{TRY}t('fchdir', lambda: os.fchdir({fd}))\n\
             t('openat', lambda: os.open('host-secret', os.O_RDONLY, dir_fd={fd}))\n\
             print('cwd', os.getcwd())\n\
             t('init_cwd', lambda: os.listdir('/proc/1/cwd'))\n"
        ),
    );
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    assert_eq!(outcome_of(&out, "fchdir"), "EBADF", "{out}");
    assert_eq!(outcome_of(&out, "openat"), "EBADF", "{out}");
    assert_eq!(
        outcome_of(&out, "cwd"),
        "/tmp",
        "the caller's cwd does not leak: {out}"
    );
    assert_ne!(outcome_of(&out, "init_cwd"), "ok", "{out}");
});

both!(chroot_dotdot_escape_fails, {
    let out = py(
        &plain(),
        &format!(
            "{TRY}os.makedirs('/tmp/jail', exist_ok=True)\n\
             t('chroot', lambda: os.chroot('/tmp/jail'))\n\
             os.chdir('/'); [os.chdir('..') for _ in range(20)]\n\
             print('root', sorted(os.listdir('.')))\n"
        ),
    );
    assert_eq!(outcome_of(&out, "chroot"), "EPERM", "{out}");
    let root = outcome_of(&out, "root");
    assert!(
        !root.contains("'home'") && !root.contains("'root'") && !root.contains("'boot'"),
        "{out}"
    );
});

both!(sysrq_sys_and_host_cgroups_are_out_of_reach, {
    let out = py(
        &plain(),
        &format!(
            "{TRY}t('sysrq', lambda: open('/proc/sysrq-trigger', 'w').write('h'))\n\
             t('sys', lambda: os.listdir('/sys'))\n\
             t('sysctl', lambda: open('/proc/sys/kernel/hostname', 'w').write('x'))\n\
             t('cgroupfs', lambda: os.listdir('/sys/fs/cgroup'))\n\
             print('cgroup', open('/proc/self/cgroup').read().strip().splitlines()[-1])\n\
             import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n\
             r = libc.mount(b'cgroup2', b'/tmp', b'cgroup2', 0, None); print('mount_cgroup', r, ctypes.get_errno())\n"
        ),
    );
    assert_ne!(outcome_of(&out, "sysrq"), "ok", "{out}");
    assert_eq!(outcome_of(&out, "sys"), "ENOENT", "no /sys: {out}");
    assert_ne!(outcome_of(&out, "sysctl"), "ok", "{out}");
    assert_eq!(outcome_of(&out, "cgroupfs"), "ENOENT", "{out}");
    assert!(
        outcome_of(&out, "cgroup").ends_with(":/"),
        "own cgroup namespace: {out}"
    );
    assert_eq!(outcome_of(&out, "mount_cgroup"), "-1 1", "{out}");
});

both!(two_sandboxes_cannot_reach_each_other, {
    // Sandbox A keeps a secret in its /tmp and waits; sandbox B, run meanwhile, looks for it and
    // tries to kill everything it can.
    let sb = plain();
    let mut a = sb
        .spawn(
            "sh",
            &[
                "-c",
                "echo A-SECRET > /tmp/secret; echo ready; sleep 3; cat /tmp/secret",
            ],
        )
        .unwrap();
    let mut out = BufReader::new(a.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let a_host_pid = a.id();
    let b = py(
        &sb,
        &format!(
            "{TRY}print('tmp', os.listdir('/tmp'))\n\
             print('pids', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n\
             t('kill_host_pid', lambda: os.kill({a_host_pid}, 9))\n\
             t('kill_all', lambda: os.kill(-1, 9))\n"
        ),
    );
    assert_eq!(outcome_of(&b, "tmp"), "[]", "{b}");
    assert_eq!(outcome_of(&b, "pids"), "[2]", "{b}");
    assert_ne!(outcome_of(&b, "kill_host_pid"), "ok", "{b}");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "A-SECRET\n", "A survived B and kept its secret");
    assert_eq!(a.wait().unwrap(), Outcome::Exited(0));
});

both!(a_crash_dumps_no_core_and_starts_no_host_helper, {
    // With a pipe core_pattern (systemd-coredump, apport) a crash starts a host helper as root on
    // the crashed program's memory. RLIMIT_CORE is 1 byte, soft and hard: the kernel then aborts
    // pipe dumps, and file dumps are below their minimum. The program cannot raise it.
    let r = plain()
        .run(
            "sh",
            &["-c", "grep '^Max core' /proc/self/limits; (ulimit -c unlimited 2>/dev/null; echo raise=$?; sh -c 'kill -SEGV $$'); ls /tmp | grep -c core"],
        )
        .unwrap();
    let limit: Vec<&str> = r
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        limit[4..7],
        ["1", "1", "bytes"],
        "soft and hard core limit of 1 byte: {r:?}"
    );
    assert!(
        !r.stdout.contains("raise=0"),
        "the hard limit cannot be raised: {r:?}"
    );
    assert!(r.stdout.trim_end().ends_with("\n0"), "no core file: {r:?}");
});

/// Whether this process holds CAP_SYS_RESOURCE (root in some containers does not).
fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:\t"))
        .unwrap();
    u64::from_str_radix(eff.trim(), 16).unwrap() & (1 << 24) /* CAP_SYS_RESOURCE */ != 0
}

both!(the_sandbox_is_the_first_oom_victim, {
    // A caller protected from the OOM killer (a daemon with a low oom_score_adj) must not pass that
    // protection on: the untrusted program is the one to kill first. Whatever this process has,
    // the program starts at 1000; where the caller holds CAP_SYS_RESOURCE, 1000 is also a floor
    // the program cannot go below.
    let mine = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    assert_ne!(
        mine.trim(),
        "1000",
        "the test needs a caller that is not already at 1000"
    );
    let r = plain()
        .run("sh", &["-c", "cat /proc/self/oom_score_adj; echo 0 > /proc/self/oom_score_adj; echo lower=$?; cat /proc/self/oom_score_adj"])
        .unwrap();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{r:?}");
    if has_cap_sys_resource() {
        assert!(
            lines[1] != "lower=0" && lines[2] == "1000",
            "the program cannot lower it: {r:?}"
        );
    }
});

/// Python: stack Landlock layers (each handling only `execute`) until the kernel refuses, and
/// print how many fit.
const LANDLOCK_STACK: &str = "import ctypes, os\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
assert libc.prctl(38, 1, 0, 0, 0) == 0\n\
attr = (1).to_bytes(8, 'little')\n\
n = 0\n\
while True:\n\
\x20   fd = libc.syscall(444, ctypes.c_char_p(attr), ctypes.c_size_t(8), 0)\n\
\x20   assert fd >= 0, ctypes.get_errno()\n\
\x20   r = libc.syscall(446, fd, 0)\n\
\x20   os.close(fd)\n\
\x20   if r != 0:\n\
\x20       print('layers', n, 'errno', ctypes.get_errno())\n\
\x20       break\n\
\x20   n += 1\n";

both!(the_program_runs_inside_a_landlock_domain, {
    // The Landlock layer is invisible while the mounts agree with it, so count it: the kernel
    // allows a fixed number of stacked layers, and inside the sandbox one is already taken.
    if !std::path::Path::new("/sys/kernel/security/lsm").exists()
        || !std::fs::read_to_string("/sys/kernel/security/lsm")
            .unwrap_or_default()
            .contains("landlock")
    {
        eprintln!("skipped: Landlock is not enabled on this kernel");
        return;
    }
    let outside = std::process::Command::new("python3")
        .args(["-c", LANDLOCK_STACK])
        .output()
        .unwrap();
    let outside = String::from_utf8_lossy(&outside.stdout).into_owned();
    let inside = py(&plain(), LANDLOCK_STACK);
    let count = |s: &str| -> u32 {
        s.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {s:?}"))
    };
    // E2BIG: the layer limit, not some other refusal.
    assert!(
        inside.contains("errno 7") && outside.contains("errno 7"),
        "{inside} / {outside}"
    );
    assert_eq!(
        count(&inside) + 1,
        count(&outside),
        "inside: {inside} outside: {outside}"
    );
});
