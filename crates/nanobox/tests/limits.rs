//! Resource limits, each attacked by a hostile program, as root (cgroups: v1 on the test machine,
//! v2 where the host has it) and as uid 65534 (no writable cgroup there: a strict sandbox refuses,
//! and with `allow_degraded_limits` the rlimits hold).

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use nanobox::{Error, Outcome, RunResult, Sandbox, SandboxBuilder, MB};

/// Whether this process gets cgroup limits (strict build of every cgroup-only limit succeeds).
fn cgroups() -> bool {
    match Sandbox::builder()
        .memory_limit(64 * MB)
        .process_limit(64)
        .cpu_limit(1.0)
        .cpu_time_limit(Duration::from_secs(10))
        .build()
    {
        Ok(_) => true,
        Err(Error::HostUnsupported { .. }) => false,
        Err(e) => panic!("unexpected: {e}"),
    }
}

fn py(b: SandboxBuilder, code: &str) -> RunResult {
    b.build().unwrap().run("python3", &["-c", code]).unwrap()
}

fn mechanism<'a>(r: &'a RunResult, limit: &str) -> &'a str {
    r.limits
        .iter()
        .find(|e| e.limit == limit)
        .map(|e| e.mechanism.as_str())
        .unwrap_or_else(|| panic!("no {limit} in {:?}", r.limits))
}

#[track_caller]
fn refused(b: SandboxBuilder, what: &str) {
    match b.build() {
        Err(Error::HostUnsupported {
            missing,
            cause,
            fix,
        }) => {
            assert!(missing.contains(what), "{missing}");
            assert!(
                !cause.is_empty() && fix.contains("allow_degraded_limits"),
                "{fix}"
            );
        }
        other => panic!("expected a refusal naming {what}, got {other:?}"),
    }
}

const MEMORY_BOMB: &str = "chunks = []\n\
while True:\n\
\x20   chunks.append(bytearray(8 << 20))\n";

both!(memory_bomb_ends_as_memory_limit, {
    if cgroups() {
        let r = py(Sandbox::builder().memory_limit(64 * MB), MEMORY_BOMB);
        assert_eq!(r.outcome, Outcome::MemoryLimit, "{r:?}");
        assert!(mechanism(&r, "memory").starts_with("cgroup v"));
        assert!(r.accounting.starts_with("cgroup v"), "{}", r.accounting);
        assert!(
            r.peak_memory > 32 * MB && r.peak_memory <= 64 * MB,
            "peak {}",
            r.peak_memory
        );
        // The host is unaffected: the caller is alive and the next run works.
        let ok = py(Sandbox::builder().memory_limit(64 * MB), "print('fine')");
        assert_eq!(
            (ok.outcome, ok.stdout.as_str()),
            (Outcome::Exited(0), "fine\n")
        );
        assert!(ok.peak_memory > 0 && ok.peak_memory < 64 * MB);
    } else {
        refused(Sandbox::builder().memory_limit(64 * MB), "memory");
        let r = py(
            Sandbox::builder()
                .memory_limit(256 * MB)
                .allow_degraded_limits(),
            MEMORY_BOMB,
        );
        // RLIMIT_AS: the allocation fails inside the program (MemoryError), nothing is killed;
        // the refusal was observed, so the failed run is the memory limit's (degraded_memory.rs).
        assert_eq!(r.outcome, Outcome::MemoryLimit, "{r:?}");
        assert!(r.stderr.contains("MemoryError"), "{}", r.stderr);
        assert!(mechanism(&r, "memory").contains("RLIMIT_AS"));
        assert!(
            r.degraded.iter().any(|d| d.contains("memory limit")),
            "{:?}",
            r.degraded
        );
        assert_eq!(r.accounting, "rusage");
    }
});

both!(filling_tmp_is_stopped_by_the_memory_limit, {
    if !cgroups() {
        // rlimits cannot count tmpfs pages; the result says so.
        let sb = Sandbox::builder()
            .memory_limit(64 * MB)
            .allow_degraded_limits()
            .build()
            .unwrap();
        assert!(sb.degraded().iter().any(|d| d.contains("/tmp not counted")));
        return;
    }
    let r = Sandbox::builder()
        .memory_limit(64 * MB)
        .tmp_size(1024 * MB)
        .build()
        .unwrap()
        .run(
            "sh",
            &["-c", "head -c 512M /dev/zero > /tmp/fill; echo wrote $?"],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{r:?}");
    assert!(r.peak_memory <= 64 * MB, "peak {}", r.peak_memory);
});

/// Python: fork children that sleep until `n` forks succeeded or one failed; print the count.
const FORK_COUNT: &str = "import os, time\n\
ok = 0\n\
for i in range(200):\n\
\x20   try:\n\
\x20       if os.fork() == 0:\n\
\x20           time.sleep(100)\n\
\x20           os._exit(0)\n\
\x20       ok += 1\n\
\x20   except OSError as e:\n\
\x20       print('refused', e.errno)\n\
\x20       break\n\
print('forked', ok)\n";

both!(process_limit_caps_live_processes, {
    let b = if cgroups() {
        Sandbox::builder().process_limit(16)
    } else {
        refused(Sandbox::builder().process_limit(16), "pids");
        Sandbox::builder().process_limit(16).allow_degraded_limits()
    };
    let r = py(b.wall_time_limit(Duration::from_secs(20)), FORK_COUNT);
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    // 16 processes: python and 15 children; the 16th fork fails with EAGAIN.
    assert_eq!(r.stdout, "refused 11\nforked 15\n");
});

both!(fork_bomb_is_held_and_ended_by_the_wall_time_limit, {
    let b = if cgroups() {
        Sandbox::builder().process_limit(64)
    } else {
        Sandbox::builder().process_limit(64).allow_degraded_limits()
    };
    let t = std::time::Instant::now();
    let r = b
        .wall_time_limit(Duration::from_secs(2))
        .build()
        .unwrap()
        // `exec`: the shell's own sleep needs no fork, which the bomb may already have used up
        // (seen in a slow VM: the shell exited 2, "Cannot fork", before the limit).
        .run("sh", &["-c", "f() { f | f & }; f; exec sleep 100"])
        .unwrap();
    assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // The host still forks.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
});

both!(thread_bomb_is_held_by_the_process_limit, {
    let b = if cgroups() {
        Sandbox::builder().process_limit(16)
    } else {
        Sandbox::builder().process_limit(16).allow_degraded_limits()
    };
    let code = "import threading, time\n\
n = 0\n\
try:\n\
\x20   for i in range(10000):\n\
\x20       threading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n\
\x20       n += 1\n\
except RuntimeError:\n\
\x20   pass\n\
print('threads', n, flush=True)\n\
time.sleep(100)\n";
    let r = py(b.wall_time_limit(Duration::from_secs(2)), code);
    assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
    // 16 tasks: the main thread and 15 more.
    assert_eq!(r.stdout, "threads 15\n");
});

both!(busy_loop_ends_at_the_cpu_time_limit, {
    let b = if cgroups() {
        Sandbox::builder()
    } else {
        refused(
            Sandbox::builder().cpu_time_limit(Duration::from_secs(1)),
            "CPU time",
        );
        Sandbox::builder().allow_degraded_limits()
    };
    let r = b
        .cpu_time_limit(Duration::from_secs(1))
        .wall_time_limit(Duration::from_secs(30))
        .build()
        .unwrap()
        .run("sh", &["-c", "while :; do :; done"])
        .unwrap();
    assert_eq!(r.outcome, Outcome::CpuTimeLimit, "{r:?}");
    // With a cgroup the init ends the run on the cgroup's exact usage: never before the limit.
    // RLIMIT_CPU alone (the degraded limits) is checked by the kernel against tick-sampled
    // process time, which under contention runs ahead of the real usage (867 ms seen).
    let floor = if cgroups() { 1000 } else { 700 };
    assert!(
        r.cpu_time >= Duration::from_millis(floor) && r.cpu_time < Duration::from_millis(2500),
        "{:?}",
        r.cpu_time
    );
});

both!(forked_workers_share_one_cpu_time_budget, {
    if !cgroups() {
        // Without a cgroup each process has its own RLIMIT_CPU; the result says so.
        let sb = Sandbox::builder()
            .cpu_time_limit(Duration::from_secs(1))
            .allow_degraded_limits()
            .build()
            .unwrap();
        assert!(sb
            .degraded()
            .iter()
            .any(|d| d.contains("each process alone")));
        return;
    }
    let r = Sandbox::builder()
        .cpu_time_limit(Duration::from_secs(1))
        .wall_time_limit(Duration::from_secs(30))
        .build()
        .unwrap()
        .run(
            "sh",
            &[
                "-c",
                "for i in 1 2 3 4; do (while :; do :; done) & done; wait",
            ],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::CpuTimeLimit, "{r:?}");
    // About one second of CPU in total, not four, and not less than the limit.
    assert!(
        r.cpu_time >= Duration::from_millis(1000) && r.cpu_time < Duration::from_millis(1600),
        "{:?}",
        r.cpu_time
    );
});

both!(cpu_limit_of_half_a_core_gives_half_a_core, {
    if !cgroups() {
        // No cgroup: refused, or with the opt-in pinned to one whole CPU.
        refused(Sandbox::builder().cpu_limit(0.5), "cpu");
        let r = py(
            Sandbox::builder().cpu_limit(0.5).allow_degraded_limits(),
            "import os; print(len(os.sched_getaffinity(0)))",
        );
        assert_eq!(
            (r.outcome, r.stdout.as_str()),
            (Outcome::Exited(0), "1\n"),
            "{r:?}"
        );
        assert!(mechanism(&r, "cpu").contains("affinity"));
        return;
    }
    let r = Sandbox::builder()
        .cpu_limit(0.5)
        .wall_time_limit(Duration::from_secs(2))
        .build()
        .unwrap()
        .run("sh", &["-c", "while :; do :; done"])
        .unwrap();
    assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
    let cores = r.cpu_time.as_secs_f64() / r.wall_time.as_secs_f64();
    assert!((0.4..=0.6).contains(&cores), "{cores} cores ({r:?})");
});

both!(writing_past_the_file_size_limit_fails, {
    let code = "import errno, os, signal\n\
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n\
fd = os.open('/tmp/big', os.O_WRONLY | os.O_CREAT)\n\
total = 0\n\
try:\n\
\x20   while total < 4 << 20:\n\
\x20       total += os.write(fd, b'x' * 65536)\n\
except OSError as e:\n\
\x20   print(errno.errorcode[e.errno])\n\
print(os.path.getsize('/tmp/big'))\n";
    let r = py(Sandbox::builder().file_size_limit(MB), code);
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(r.stdout, format!("EFBIG\n{}\n", MB));
    assert_eq!(mechanism(&r, "file_size"), "RLIMIT_FSIZE");
    // Without the handler the writer dies of SIGXFSZ.
    let r = Sandbox::builder()
        .file_size_limit(MB)
        .build()
        .unwrap()
        .run("sh", &["-c", "exec head -c 2000000 /dev/zero > /tmp/f"])
        .unwrap();
    assert_eq!(r.outcome, Outcome::Signaled(libc::SIGXFSZ), "{r:?}");
});

both!(concurrent_runs_each_see_only_their_own_limits, {
    let degraded = !cgroups();
    let handles: Vec<_> = (0..16u64)
        .map(|i| {
            std::thread::spawn(move || {
                let mut b = Sandbox::builder()
                    .process_limit(2 + i % 8)
                    .wall_time_limit(Duration::from_secs(60));
                if degraded {
                    b = b.allow_degraded_limits();
                }
                (i, py(b, FORK_COUNT))
            })
        })
        .collect();
    for h in handles {
        let (i, r) = h.join().unwrap();
        assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
        assert!(
            r.stdout.ends_with(&format!("forked {}\n", 1 + i % 8)),
            "run {i}: {}",
            r.stdout
        );
    }
});

#[test]
fn accounting_is_reported_without_limits() {
    let r = Sandbox::builder()
        .build()
        .unwrap()
        .run(
            "python3",
            &["-c", "x = bytearray(48 << 20); sum(range(3000000))"],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(r.accounting, "rusage");
    assert!(r.cpu_time > Duration::from_millis(10), "{:?}", r.cpu_time);
    assert!(r.peak_memory >= 48 * MB, "{}", r.peak_memory);
    assert!(r.limits.is_empty());
}

#[test]
fn limit_values_are_validated() {
    for (b, option) in [
        (Sandbox::builder().memory_limit(1000), "memory_limit"),
        (Sandbox::builder().cpu_limit(0.0), "cpu_limit"),
        (Sandbox::builder().cpu_limit(f64::NAN), "cpu_limit"),
        (
            Sandbox::builder().cpu_time_limit(Duration::ZERO),
            "cpu_time_limit",
        ),
        (Sandbox::builder().process_limit(0), "process_limit"),
        (Sandbox::builder().file_size_limit(0), "file_size_limit"),
    ] {
        match b.build() {
            Err(Error::InvalidOption { option: o, .. }) => assert_eq!(o, option),
            other => panic!("{option}: {other:?}"),
        }
    }
}
