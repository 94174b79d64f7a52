//! The proxy of a run stops with it: no thread or socket of it is left in the caller, also when
//! the program leaves in the middle of a transfer or is stopped by its wall-time limit. In its own
//! binary, since it counts the whole process's threads and descriptors.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;
mod proxy_util;

use std::io::Write;
use std::time::Duration;

use nanobox::{Outcome, Sandbox};
use proxy_util::{fd_count, read_head, threads_named, Origin};

#[test]
fn the_proxy_ends_with_the_run_and_leaves_nothing_behind() {
    let fds_before = fd_count();
    // An origin that streams without end.
    let o = Origin::start(|mut c| {
        let _ = read_head(&mut c);
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![b'x'; 65536];
        while c.write_all(&chunk).is_ok() {}
    });
    let p = o.port();
    let sb = Sandbox::builder()
        .allow_network(&[format!("stream.test:{p}")])
        .map_host("stream.test", "127.0.0.1".parse().unwrap())
        .wall_time_limit(Duration::from_secs(2))
        .build()
        .unwrap();
    for _ in 0..3 {
        // Leaves after 1 MB, mid-transfer.
        let r = sb
            .run(
                "sh",
                &[
                    "-c",
                    &format!("curl -sS http://stream.test:{p}/ | head -c 1000000 | wc -c"),
                ],
            )
            .unwrap();
        assert_eq!(r.stdout.trim(), "1000000", "{r:?}");
        assert!(r.network.iter().all(|e| e.allowed), "{:?}", r.network);
        // Stopped by the wall-time limit while downloading (and 20 connections open).
        let r = sb
            .run(
                "sh",
                &[
                    "-c",
                    &format!(
                        "for i in $(seq 20); do curl -sS -o /dev/null http://stream.test:{p}/ & done; wait"
                    ),
                ],
            )
            .unwrap();
        assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
        let requests: u64 = r.network.iter().map(|e| e.count).sum();
        assert_eq!(requests, 20, "{:?}", r.network);
        assert_eq!(threads_named("nanobox-proxy"), 0);
    }
    // The sandbox itself holds descriptors of the host directories its Landlock rules name.
    drop(sb);
    drop(o);
    assert_eq!(threads_named("nanobox-proxy"), 0);
    assert_eq!(fd_count(), fds_before, "descriptors left behind");
}
