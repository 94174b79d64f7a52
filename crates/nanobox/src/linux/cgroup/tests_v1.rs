//! Real run cgroups on this host (written for the v1 hybrid; they also run on v2, where `attach`
//! writes the v2 `cgroup.procs`). Each test skips, saying why, unless running as root with a
//! writable cgroup for what it checks.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

/// The real host, or `None` (with the reason printed) when `needed` cannot be tested here.
fn host_for(test: &str, needed: &[Controller]) -> Option<Host> {
    if !rustix::process::geteuid().is_root() {
        println!("skipping {test}: needs root (run cgroups below the caller's own cgroup)");
        return None;
    }
    let host = Host::detect();
    for &c in needed {
        let d = host.decision(c);
        if d.mechanism == Mechanism::Rlimit {
            println!(
                "skipping {test}: no writable cgroup for {}: {}",
                c.name(),
                d.reason
            );
            return None;
        }
    }
    Some(host)
}

/// Start `sh -c script` paused on its stdin; the caller attaches it, then releases it.
fn paused(script: &str) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read _go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn release(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

fn assert_gone(dirs: &[std::path::PathBuf]) {
    for d in dirs {
        assert!(!d.exists(), "{} remains", d.display());
    }
}

#[test]
fn cgroup_real_memory_limit_oom_kills_and_reports_peak() {
    let Some(host) = host_for("memory test", &[Controller::Memory]) else {
        return;
    };
    if !std::path::Path::new("/usr/bin/python3").exists() {
        println!("skipping memory test: /usr/bin/python3 is missing");
        return;
    }
    let limit: u64 = 32 << 20;
    let limits = Limits {
        memory: Some(limit),
        pids: Some(16),
        cpu: Some(0.5),
    };
    let mut run = RunCgroup::create(&host, &limits).unwrap();
    let dirs = run.dirs();
    // 100 MiB, every page written (b'x' * n fills the buffer).
    let mut child = paused("exec /usr/bin/python3 -c \"b = b'x' * (100 << 20); print(len(b))\"");
    run.attach(child.id() as i32).unwrap();
    release(&mut child);
    let out = child.wait_with_output().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "python must be OOM-killed at 32 MiB: {:?}, stdout {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(run.oom_killed(), "the OOM kill must be reported");
    let peak = run.memory_peak().expect("peak memory is readable");
    println!("memory test: peak {peak} bytes, limit {limit}");
    assert!(
        peak >= limit * 9 / 10 && peak <= limit + (1 << 20),
        "peak {peak}"
    );
    run.destroy().unwrap();
    assert_gone(&dirs);
}

#[test]
fn cgroup_real_accounting_without_limits_sees_no_oom_and_a_small_peak() {
    let Some(host) = host_for("accounting test", &[Controller::Memory]) else {
        return;
    };
    let mut run = RunCgroup::create(&host, &Limits::default()).unwrap();
    let dirs = run.dirs();
    let mut child = paused("exec /usr/bin/python3 -c \"b = b'x' * (40 << 20)\"");
    run.attach(child.id() as i32).unwrap();
    release(&mut child);
    assert!(
        child.wait().unwrap().success(),
        "no limit: the allocation succeeds"
    );
    assert!(!run.oom_killed());
    let peak = run.memory_peak().unwrap();
    assert!(peak >= 40 << 20, "peak {peak} counts the 40 MiB");
    assert!(run.cpu_usage().unwrap() > Duration::ZERO);
    run.destroy().unwrap();
    assert_gone(&dirs);
}

#[test]
fn cgroup_real_pids_limit_stops_a_fork_loop() {
    let Some(host) = host_for("pids test", &[Controller::Pids]) else {
        return;
    };
    let limits = Limits {
        pids: Some(16),
        ..Limits::default()
    };
    let mut run = RunCgroup::create(&host, &limits).unwrap();
    let dirs = run.dirs();
    let pids_dir = dirs
        .iter()
        .find(|d| d.join("pids.max").exists())
        .expect("a directory with pids.max")
        .clone();
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max")).unwrap(),
        "16\n"
    );
    // 40 background sleeps; a fork past the limit fails (EAGAIN).
    let mut child = paused(
        "ok=0; fail=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 \
         26 27 28 29 30 31 32 33 34 35 36 37 38 39 40; do if (sleep 30 >/dev/null 2>&1 &) 2>/dev/null; then \
         ok=$((ok+1)); else fail=$((fail+1)); fi; done; echo \"$ok $fail\"",
    );
    run.attach(child.id() as i32).unwrap();
    release(&mut child);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let live = std::fs::read_to_string(pids_dir.join("cgroup.procs")).unwrap();
    let live = parse::pids(&live).len();
    println!("pids test: shell says ok/fail = {text:?}, {live} processes left in the cgroup");
    let mut it = text.split_whitespace().map(|n| n.parse::<u32>().unwrap());
    let (ok, fail) = (it.next().unwrap(), it.next().unwrap());
    assert!(fail > 0, "forks past 16 must fail ({ok} ok)");
    assert!(ok < 40);
    assert!(live <= 16 && live > 0, "{live} live sleeps");
    // destroy kills the sleeps (no cgroup.kill in v1) and removes the directories.
    let t = Instant::now();
    run.destroy().unwrap();
    println!("pids test: destroy took {:?}", t.elapsed());
    assert_gone(&dirs);
}

#[test]
fn cgroup_real_cpu_usage_grows_and_the_cpu_limit_throttles() {
    let Some(host) = host_for("cpu test", &[Controller::Cpu]) else {
        return;
    };
    if host.cpu_accounting == CpuAccounting::None {
        println!("skipping cpu test: {}", host.cpu_accounting_reason);
        return;
    }
    // Unlimited, then at 0.5 cores: a busy loop for 1 s of wall time each. The comparison says
    // something only when the unlimited loop got most of a core: on a host whose cores other
    // work keeps busy it may not (434 ms seen under three parallel builds), and the pair is
    // measured again, up to three times. The limited loop's bound holds whatever the load.
    let mut used = Vec::new();
    for attempt in 1..=3 {
        used = busy_second_each(&host, &[None, Some(0.5)]);
        println!(
            "cpu test, attempt {attempt}: 1 s busy: {:?} unlimited, {:?} at 0.5 cores",
            used[0], used[1]
        );
        assert!(
            used[1] < Duration::from_millis(750),
            "0.5 cores for 1 s: {:?}",
            used[1]
        );
        if used[0] > Duration::from_millis(600) {
            break;
        }
    }
    assert!(used[0] > Duration::from_millis(600), "{:?}", used[0]);
    assert!(
        used[1] > Duration::from_millis(250),
        "0.5 cores for 1 s: {:?}",
        used[1]
    );
}

/// The CPU time a busy loop used in 1 s of wall time in a run cgroup with each `cpu` limit,
/// asserting on the way that the cgroup's usage grows as the init would read it.
fn busy_second_each(host: &Host, cpus: &[Option<f64>]) -> Vec<Duration> {
    let mut used = Vec::new();
    for &cpu in cpus {
        let mut run = RunCgroup::create(
            host,
            &Limits {
                cpu,
                ..Limits::default()
            },
        )
        .unwrap();
        let dirs = run.dirs();
        assert_eq!(run.cpu_usage(), Some(Duration::ZERO));
        let mut child = paused("while :; do :; done");
        run.attach(child.id() as i32).unwrap();
        release(&mut child);
        let fd = run.cpu_usage_fd().expect("the CPU usage file is open");
        let mut buf = [0u8; 256];
        let mut last = 0;
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(250));
            // What the sandbox's init will do: pread at 0 and parse, no allocation.
            let n = rustix::io::pread(fd, &mut buf, 0).unwrap();
            let ns = parse_cpu_usage_ns(&buf[..n], run.cpu_usage_is_v2()).unwrap();
            assert!(ns > last, "usage grows: {ns} after {last}");
            last = ns;
        }
        let usage = run.cpu_usage().unwrap();
        assert!(usage.as_nanos() as u64 >= last);
        child.kill().unwrap();
        child.wait().unwrap();
        run.destroy().unwrap();
        assert_gone(&dirs);
        used.push(usage);
    }
    used
}

#[test]
fn cgroup_real_concurrent_runs_get_their_own_cgroups_and_all_go() {
    let Some(host) = host_for("concurrency test", &[]) else {
        return;
    };
    for line in host.report() {
        println!("host: {line}");
    }
    let host = std::sync::Arc::new(host);
    let runs: Vec<RunCgroup> = (0..16)
        .map(|_| {
            let host = host.clone();
            std::thread::spawn(move || {
                RunCgroup::create(
                    &host,
                    &Limits {
                        pids: Some(4),
                        ..Limits::default()
                    },
                )
                .unwrap()
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    let mut dirs: Vec<_> = runs.iter().flat_map(|r| r.dirs()).collect();
    let n = dirs.len();
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), n, "no directory shared between runs");
    for d in &dirs {
        assert!(d.is_dir());
    }
    drop(runs);
    assert_gone(&dirs);
}

#[test]
fn cgroup_real_sweep_removes_a_dead_owners_cgroup() {
    let Some(host) = host_for("sweep test", &[]) else {
        return;
    };
    let parents = host.run_parents();
    if parents.is_empty() {
        println!("skipping sweep test: no cgroup parent is writable");
        return;
    }
    // A dead owner: a child that has exited and been reaped, with its real start time.
    let mut c = Command::new("/bin/true").spawn().unwrap();
    let pid = c.id() as i32;
    let start = RealFs.start_time(pid).unwrap_or(1);
    c.wait().unwrap();
    let stale: Vec<_> = parents
        .iter()
        .map(|p| p.join(format!("nanobox-{pid}-{start}-0")))
        .collect();
    for d in &stale {
        std::fs::create_dir(d).unwrap();
    }
    let live = RunCgroup::create(&host, &Limits::default()).unwrap();
    let removed = sweep_stale(&host).unwrap();
    for d in &stale {
        assert!(!d.exists(), "{} survives the sweep", d.display());
    }
    assert!(removed.len() >= stale.len() || stale.iter().all(|d| !d.exists()));
    for d in live.dirs() {
        assert!(d.is_dir(), "a live run's {} was swept", d.display());
    }
}
