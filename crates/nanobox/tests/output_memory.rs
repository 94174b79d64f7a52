//! A program printing a gigabyte must not grow the caller's memory past the output cap.
//! Alone in its own test binary, so that the peak RSS read here belongs to this test only.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

use nanobox::{Outcome, Sandbox, MB};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn gigabyte_of_output_keeps_caller_memory_small() {
    let sb = Sandbox::builder().output_limit(4 * MB).build().unwrap();
    let before = peak_rss_kib();
    let r = sb
        .run(
            "sh",
            &["-c", "head -c 1G /dev/zero; head -c 1G /dev/zero >&2"],
        )
        .unwrap();
    let after = peak_rss_kib();
    assert_eq!(r.outcome, Outcome::OutputLimit);
    assert_eq!(r.stdout_bytes.len() as u64, 4 * MB);
    assert!(r.stdout_truncated);
    // Two copies of the kept 4 MiB (bytes + lossy String) plus buffers; far below a gigabyte.
    assert!(
        after - before < 32 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}
