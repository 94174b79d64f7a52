//! No cgroup outlives its run, whatever ends it. One test in its own binary, so that no other
//! test's live runs are counted.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use nanobox::{Outcome, Sandbox, MB};

/// Every run cgroup of this process, anywhere under /sys/fs/cgroup.
fn our_cgroups() -> Vec<PathBuf> {
    let prefix = format!("nanobox-{}-", std::process::id());
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                found.push(e.path());
            } else if depth < 5 && !name.starts_with("nanobox-") {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    found
}

#[test]
fn no_cgroup_is_left_after_any_kind_of_end() {
    let sb = match Sandbox::builder()
        .memory_limit(64 * MB)
        .process_limit(32)
        .cpu_time_limit(Duration::from_secs(5))
        .wall_time_limit(common::slow(Duration::from_secs(1)))
        .output_limit(1000)
        .build()
    {
        Ok(sb) => sb,
        Err(e) => {
            eprintln!("skipped: this process gets no cgroup limits ({e}); the rlimit paths have no cgroup to leave");
            return;
        }
    };
    assert!(Path::new("/sys/fs/cgroup").exists());
    // Normal exit, wall time, output limit, memory limit.
    assert_eq!(
        sb.run("true", &[] as &[&str]).unwrap().outcome,
        Outcome::Exited(0)
    );
    let long = common::slow(Duration::from_secs(10)).as_secs().to_string();
    assert_eq!(
        sb.run("sleep", &[long.as_str()]).unwrap().outcome,
        Outcome::WallTimeLimit
    );
    assert_eq!(
        sb.run("yes", &[] as &[&str]).unwrap().outcome,
        Outcome::OutputLimit
    );
    let r = sb
        .run(
            "python3",
            &["-c", "x = [bytearray(8 << 20) for i in range(100)]"],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::MemoryLimit);
    // kill(), and a Child dropped while running.
    let mut c = sb.spawn("sleep", &[long.as_str()]).unwrap();
    assert!(
        !our_cgroups().is_empty(),
        "a running sandbox has its cgroup"
    );
    c.kill().unwrap();
    c.wait().unwrap();
    drop(sb.spawn("sleep", &[long.as_str()]).unwrap());
    // 16 at once.
    let hs: Vec<_> = (0..16)
        .map(|_| {
            let sb = sb.clone();
            std::thread::spawn(move || sb.run("sh", &["-c", "sleep 0.2"]).unwrap().outcome)
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap(), Outcome::Exited(0));
    }
    assert_eq!(our_cgroups(), Vec::<PathBuf>::new());
}
