//! A judge runs the same sandbox thousands of times in a row: nothing may leak (descriptors,
//! threads, cgroups, memory). In its own binary, since it counts the whole process.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use nanobox::{Error, Outcome, Sandbox, Verdict};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn our_cgroups() -> usize {
    let prefix = format!("nanobox-{}-", std::process::id());
    [
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup/cpuacct",
        "/sys/fs/cgroup/cpu",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flat_map(|rd| rd.flatten())
    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    .count()
}

#[test]
fn a_thousand_judge_runs_leak_nothing() {
    let sub = common::TempDir::new();
    std::fs::write(sub.join("answer"), "42\n").unwrap();
    let judge = match Sandbox::code_judge(sub.path()).build() {
        Ok(j) => j,
        Err(Error::HostUnsupported { .. }) => Sandbox::code_judge(sub.path())
            .allow_degraded_limits()
            .build()
            .unwrap(),
        Err(e) => panic!("{e}"),
    };
    // Warm up (lazy statics, allocator arenas), then measure.
    for _ in 0..20 {
        judge.run("cat", &["/submission/answer"]).unwrap();
    }
    let (fds, tasks, rss) = (count("/proc/self/fd"), count("/proc/self/task"), rss_kib());
    for i in 0..1000 {
        let r = judge.run("cat", &["/submission/answer"]).unwrap();
        assert_eq!(
            (r.outcome, r.verdict(), r.stdout.as_str()),
            (Outcome::Exited(0), Verdict::Accepted, "42\n"),
            "run {i}: {r:?}"
        );
    }
    assert_eq!(count("/proc/self/fd"), fds, "descriptors leaked");
    assert_eq!(count("/proc/self/task"), tasks, "threads leaked");
    assert_eq!(our_cgroups(), 0, "cgroups left behind");
    let grown = rss_kib().saturating_sub(rss);
    assert!(grown < 8 * 1024, "RSS grew by {grown} KiB over 1000 runs");
}
