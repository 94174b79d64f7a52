//! Verdicts under the degraded memory limit: with `allow_degraded_limits()` and no writable
//! cgroup, `memory_limit` is `RLIMIT_AS`, and a run that fails after the limit refused one of its
//! requests is `MemoryLimit` (seen by the seccomp observer, `linux/memwatch.rs`); one that handles
//! the refusal and exits 0, or fails for another reason, keeps its own outcome.
//!
//! Every test runs as root and as uid 65534 in a mount namespace of its own whose cgroup mounts
//! are unmounted (the host's cgroups are untouched): there no cgroup is writable for either, which
//! is how uid 65534 is on this host anyway. A process that is not root cannot hide its cgroups, so
//! it runs the tests itself where it has none, and skips them where it has one.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;

use common::TempDir;
use nanobox::{Error, Outcome, Permission, RunResult, Sandbox, SandboxBuilder, Verdict, MB};

/// Whether this process gets cgroup limits (then the degraded mode is not what runs).
fn cgroups() -> bool {
    !matches!(
        Sandbox::builder().memory_limit(64 * MB).build(),
        Err(Error::HostUnsupported { .. })
    )
}

/// A shell command that unmounts every cgroup mount, then executes its arguments (as uid 65534
/// with `user`). Run by root under `unshare --mount`, so only that namespace loses them.
fn without_cgroups(user: bool) -> Vec<String> {
    let unmount = "awk '{ split($0, a, \" - \"); split(a[2], b, \" \"); \
                   if (b[1] == \"cgroup\" || b[1] == \"cgroup2\") print $5 }' /proc/self/mountinfo \
                   | sort -r | while read -r m; do umount -l \"$m\" || exit 1; done";
    let exec = if user {
        format!(
            "exec setpriv --reuid={u} --regid={u} --clear-groups -- \"$@\"",
            u = common::USER
        )
    } else {
        "exec \"$@\"".into()
    };
    [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &format!("{unmount} && {exec}"),
        "sh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A test that runs as root and as uid 65534 where no cgroup is writable (see the module's doc).
macro_rules! without_cgroups {
    ($name:ident, $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body() {
                assert!(!cgroups(), "a strict memory limit must be refused here");
                $body
            }

            fn rerun(user: bool, exe: &Path) {
                let path = concat!(module_path!(), "::body_entry");
                let name = path.split_once("::").map(|(_, r)| r).unwrap_or(path);
                let wrapper = without_cgroups(user);
                let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
                let who = if user { "as uid 65534" } else { "as root" };
                common::rerun_under(
                    &wrapper,
                    exe,
                    name,
                    "NANOBOX_TEST_NO_CGROUPS",
                    &format!("{who} without cgroups"),
                );
            }

            #[test]
            fn as_root() {
                if !common::is_root() {
                    eprintln!("skipped: not running as root; `as_user` covers this process's uid");
                    return;
                }
                rerun(false, &std::env::current_exe().unwrap());
            }

            #[test]
            fn as_user() {
                if common::is_root() {
                    rerun(true, common::user_copy());
                } else if cgroups() {
                    eprintln!(
                        "skipped: this uid has a writable cgroup, which only root could hide"
                    );
                } else {
                    body()
                }
            }

            #[test]
            #[ignore = "entry point of `as_root` and `as_user`, which run it without cgroups"]
            fn body_entry() {
                body()
            }
        }
    };
}

fn degraded(limit: u64) -> SandboxBuilder {
    Sandbox::builder()
        .memory_limit(limit)
        .allow_degraded_limits()
}

fn py(b: SandboxBuilder, code: &str) -> RunResult {
    b.build().unwrap().run("python3", &["-c", code]).unwrap()
}

/// The run's line saying what the limit refused, if any.
fn refusal(r: &RunResult) -> Option<&str> {
    r.degraded
        .iter()
        .find(|d| d.contains("refused a request of"))
        .map(String::as_str)
}

#[track_caller]
fn assert_memory_limit(r: &RunResult) {
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{r:?}");
    let mech = &r
        .limits
        .iter()
        .find(|e| e.limit == "memory")
        .unwrap()
        .mechanism;
    assert!(
        mech.starts_with("RLIMIT_AS") && mech.contains("observed"),
        "{mech}"
    );
    let line = refusal(r).unwrap_or_else(|| panic!("no refusal named in {:?}", r.degraded));
    assert!(line.contains("RLIMIT_AS"), "{line}");
}

const PY_BOMB: &str = "a = []\nwhile True:\n    a.append(' ' * 10**6)\n";

without_cgroups!(python_memory_bomb_is_a_memory_limit_naming_rlimit_as, {
    let r = py(degraded(64 * MB), PY_BOMB);
    assert_memory_limit(&r);
    // The program failed its own way: the observer, not a kill, made the verdict.
    assert!(r.stderr.contains("MemoryError"), "{}", r.stderr);
    assert!(
        refusal(&r)
            .unwrap()
            .contains(&format!("RLIMIT_AS ({} bytes)", 64 * MB)),
        "{:?}",
        r.degraded
    );
});

without_cgroups!(one_huge_allocation_is_a_memory_limit, {
    let r = py(degraded(64 * MB), "' ' * 2**34");
    assert_memory_limit(&r);
    // The request named is the one the limit refused: 16 GiB, not a small one after it.
    assert!(
        refusal(&r).unwrap().contains("(mmap with"),
        "{:?}",
        r.degraded
    );
    let bytes: u64 = refusal(&r)
        .unwrap()
        .split("refused a request of ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(bytes >= 1 << 34, "{bytes}");
});

without_cgroups!(a_program_that_handles_the_refusal_and_exits_0_succeeds, {
    let code = "try:\n    ' ' * 2**34\nexcept MemoryError:\n    print('handled')\n";
    let r = py(degraded(64 * MB), code);
    assert_eq!(
        (r.outcome, r.stdout.as_str()),
        (Outcome::Exited(0), "handled\n"),
        "{r:?}"
    );
    // The refusal was seen, and still the verdict is the program's success.
    assert!(refusal(&r).is_some(), "{:?}", r.degraded);
});

without_cgroups!(a_failure_without_a_refusal_is_the_program_s_own, {
    let r = py(
        degraded(64 * MB),
        "x = ' ' * 10**6\nimport sys\nsys.exit(3)",
    );
    assert_eq!(r.outcome, Outcome::Exited(3), "{r:?}");
    assert_eq!(refusal(&r), None, "{:?}", r.degraded);
    let r = py(degraded(64 * MB), "import os\nos.kill(os.getpid(), 11)");
    assert_eq!(r.outcome, Outcome::Signaled(11), "{r:?}");
});

/// malloc and touch 1 MiB at a time; at the first NULL, write through it (SIGSEGV).
const C_BOMB: &str = "#include <stdlib.h>\n#include <string.h>\n\
int main(void) {\n\
    for (;;) {\n\
        char *volatile p = malloc(1 << 20);\n\
        if (p) memset(p, 1, 1 << 20); else { *p = 1; return 0; }\n\
    }\n\
}\n";

/// Grow the heap with sbrk alone until it is refused, then abort (SIGABRT).
const SBRK_BOMB: &str = "#include <stdint.h>\n#include <stdlib.h>\n#include <unistd.h>\n\
int main(void) {\n\
    for (;;) if (sbrk(1 << 20) == (void *)-1) abort();\n\
}\n";

/// `source` compiled into a fresh directory (readable by the sandbox user).
fn compiled(name: &str, source: &str) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new();
    let bin = common::compile_c(dir.path(), name, source);
    (dir, bin)
}

without_cgroups!(c_bombs_are_a_memory_limit_whatever_signal_ends_them, {
    // SIGSEGV after mmap refusals (malloc of 1 MiB), SIGABRT after brk refusals.
    for (name, source) in [("bomb", C_BOMB), ("sbrk", SBRK_BOMB)] {
        let (dir, _) = compiled(name, source);
        let r = degraded(64 * MB)
            .mount(dir.path(), "/w", Permission::ReadOnly)
            .build()
            .unwrap()
            .run(format!("/w/{name}"), &[] as &[&str])
            .unwrap();
        assert_memory_limit(&r);
        assert!(
            refusal(&r)
                .unwrap()
                .contains(if name == "sbrk" { "(brk" } else { "(mmap" }),
            "{name}: {:?}",
            r.degraded
        );
    }
});

without_cgroups!(the_judge_preset_s_verdict_for_a_bomb_is_memory_limit, {
    let (sub, _) = compiled("main", C_BOMB);
    let judge = Sandbox::code_judge(sub.path());
    assert!(matches!(
        judge.clone().build(),
        Err(Error::HostUnsupported { .. })
    ));
    let judge = judge.allow_degraded_limits().build().unwrap();
    let r = judge.run("/submission/main", &[] as &[&str]).unwrap();
    assert_eq!(r.verdict(), Verdict::MemoryLimit, "{r:?}");
    assert_memory_limit(&r);
    // The same judge's verdict for a program that fails otherwise.
    let r = judge.run("sh", &["-c", "exit 3"]).unwrap();
    assert_eq!(r.verdict(), Verdict::RuntimeError, "{r:?}");
});

/// The attacker: a child process bombs, the parent reports the child's failure as its own, and
/// both look for the observer's listener among their descriptors (to answer it themselves).
const HIDING_CHILD: &str = r#"
import os, sys
def listeners():
    n = 0
    for fd in os.listdir('/proc/self/fd'):
        try:
            n += 'seccomp' in os.readlink('/proc/self/fd/' + fd)
        except OSError:
            pass
    return n
pid = os.fork()
if pid == 0:
    print('child listeners', listeners(), flush=True)
    a = []
    while True:
        a.append(bytearray(1 << 20))
print('parent listeners', listeners(), flush=True)
_, st = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(st))
"#;

/// Install a filter of its own with a listener (x86_64 numbers: prctl 38 = PR_SET_NO_NEW_PRIVS,
/// syscall 317 = seccomp, flag 8 = SECCOMP_FILTER_FLAG_NEW_LISTENER); print the result and errno.
const OWN_LISTENER: &str = r#"
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
ret = (ctypes.c_uint * 2)(0x06, 0x7fff0000)
class F(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
prog = F(1, ctypes.addressof(ret))
libc.prctl(38, 1, 0, 0, 0)
r = libc.syscall(317, 1, 8, ctypes.byref(prog))
print(r, errno.errorcode.get(ctypes.get_errno()))
"#;

without_cgroups!(
    a_child_process_cannot_hide_its_refusal_or_reach_the_observer,
    {
        let r = py(degraded(64 * MB), HIDING_CHILD);
        assert_memory_limit(&r);
        assert!(r.stdout.contains("child listeners 0"), "{}", r.stdout);
        assert!(r.stdout.contains("parent listeners 0"), "{}", r.stdout);
        // A filter of its own with a listener, which could stand in for the observer, is refused:
        // one listener per chain of filters (EBUSY).
        if cfg!(target_arch = "x86_64") {
            let r = py(degraded(256 * MB), OWN_LISTENER);
            assert_eq!(r.stdout, "-1 EBUSY\n", "{r:?}");
        }
    }
);

/// The number of seccomp filters the program runs under.
fn filters(b: SandboxBuilder) -> Option<u32> {
    let r = b
        .build()
        .unwrap()
        .run("sh", &["-c", "grep Seccomp_filters: /proc/self/status"])
        .unwrap();
    r.stdout.split_whitespace().nth(1)?.parse().ok()
}

without_cgroups!(only_a_memory_limit_by_rlimit_as_is_observed, {
    let observed = filters(degraded(64 * MB));
    let plain = filters(Sandbox::builder().process_limit(64).allow_degraded_limits());
    let (Some(observed), Some(plain)) = (observed, plain) else {
        eprintln!("skipped: this kernel has no Seccomp_filters in /proc/PID/status (Linux 5.9)");
        return;
    };
    assert_eq!(observed, plain + 1);
});

#[test]
fn with_a_cgroup_the_memory_limit_is_not_observed() {
    if !cgroups() {
        eprintln!("skipped: this process has no writable cgroup (the tests above cover it)");
        return;
    }
    let with = filters(Sandbox::builder().memory_limit(64 * MB));
    let without = filters(Sandbox::builder());
    let (Some(with), Some(without)) = (with, without) else {
        eprintln!("skipped: this kernel has no Seccomp_filters in /proc/PID/status (Linux 5.9)");
        return;
    };
    assert_eq!(with, without);
}

/// Executes its arguments under a seccomp filter with a listener (one that allows everything and
/// never notifies), kept open across execve (a closed listener no longer counts): the kernel then
/// refuses the observer's filter, one listener being allowed per chain of filters.
const LISTENER_TAKEN: &str = r#"
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW) };
    struct sock_fprog p = { 1, f };
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return 99;
    int fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &p);
    /* The kernel makes the listener close-on-exec. */
    if (fd < 0 || fcntl(fd, F_SETFD, 0) < 0) {
        perror("seccomp");
        return 98;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 97;
}
"#;

/// Where the kernel refuses the observer (here: the caller's own filter has the listener), the
/// run goes on with the program's own outcome, and its result says the refusals were not seen.
mod a_refused_observer_leaves_the_program_s_own_outcome_and_says_so {
    use super::*;

    const MARKER: &str = "NANOBOX_TEST_LISTENER_TAKEN";

    fn rerun(user: bool, exe: &Path) {
        let dir = TempDir::new();
        let launcher = common::compile_c(dir.path(), "listener", LISTENER_TAKEN);
        let mut wrapper = without_cgroups(user);
        wrapper.push(launcher.to_string_lossy().into_owned());
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let name = concat!(module_path!(), "::body_entry");
        let name = name.split_once("::").map(|(_, r)| r).unwrap_or(name);
        common::rerun_under(
            &wrapper,
            exe,
            name,
            MARKER,
            "under a filter with a listener",
        );
    }

    #[test]
    fn as_root() {
        if !common::is_root() {
            eprintln!("skipped: hiding the cgroups (a mount namespace) needs root");
            return;
        }
        rerun(false, &std::env::current_exe().unwrap());
    }

    #[test]
    fn as_user() {
        if !common::is_root() {
            eprintln!("skipped: hiding the cgroups (a mount namespace) needs root");
            return;
        }
        rerun(true, common::user_copy());
    }

    #[test]
    #[ignore = "entry point of `as_root` and `as_user`, which run it under the listener's filter"]
    fn body_entry() {
        assert!(std::env::var_os(MARKER).is_some(), "run by as_root/as_user");
        assert!(!cgroups());
        let r = py(degraded(64 * MB), PY_BOMB);
        // Today's outcome: the program's own failure.
        assert_eq!(r.outcome, Outcome::Exited(1), "{r:?}");
        assert!(r.stderr.contains("MemoryError"), "{}", r.stderr);
        assert_eq!(refusal(&r), None, "{:?}", r.degraded);
        let said = r
            .degraded
            .iter()
            .find(|d| d.contains("refusals were not observed"))
            .unwrap_or_else(|| panic!("{:?}", r.degraded));
        assert!(
            said.contains("refused the observer's seccomp filter")
                && said.contains("not MemoryLimit"),
            "{said}"
        );
    }
}
