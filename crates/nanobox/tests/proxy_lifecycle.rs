//! The proxy leaves no thread or socket behind, and an endless request head does not grow memory.
//! One test in its own binary: it counts this process's threads and descriptors.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod proxy_util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use proxy_util::*;

fn settle(what: &str, want: usize, now: impl Fn() -> usize) {
    let t = Instant::now();
    while now() != want {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{what}: {} != {want}",
            now()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stop_joins_every_thread_and_closes_every_socket_and_memory_is_bounded() {
    let origin = Origin::echo();
    let p = origin.port();
    let fds_before = fd_count();
    let tasks_before = task_count();
    assert_eq!(threads_named("nanobox-proxy"), 0);

    let (proxy, addr) = start(config(&[&format!("life.test:{p}")], &["life.test"]));
    // open tunnels that are still open when stop() runs, plus a half-sent head and an idle client
    let mut tunnels = Vec::new();
    for _ in 0..20 {
        let (mut s, head) = connect(addr, &format!("life.test:{p}"));
        assert!(head.starts_with("HTTP/1.1 200"));
        s.write_all(&tls(b"x")).unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        tunnels.push(s);
    }
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(b"CONNECT life.te").unwrap();
    let idle = TcpStream::connect(addr).unwrap();

    // an endless head from a fast writer: the proxy answers 400 and memory does not follow
    let rss_before = rss_kib();
    let writer = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"GET http://life.test/ HTTP/1.1\r\nX: ");
        let junk = vec![b'a'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 64 * 1024 * 1024 {
            match s.write(&junk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let sent = writer.join().unwrap();
    assert!(
        sent < 64 * 1024 * 1024,
        "the proxy kept reading an endless head ({sent} bytes)"
    );
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(grown < 16 * 1024, "RSS grew by {grown} KiB");

    std::thread::sleep(Duration::from_millis(100));
    // One thread serves them all.
    assert_eq!(threads_named("nanobox-proxy"), 1);
    let events = proxy.stop().events;
    assert_eq!(
        events.len(),
        1,
        "20 alike tunnels are one entry: {events:?}"
    );
    assert_eq!(events[0].count, 20);
    assert_eq!(
        threads_named("nanobox-proxy"),
        0,
        "stop() returned with proxy threads alive"
    );

    // the clients see their connections closed
    for mut s in tunnels {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 1];
        assert_eq!(s.read(&mut b).unwrap_or(0), 0);
    }
    half.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(half.read(&mut [0u8; 1]).unwrap_or(0), 0);
    drop((half, idle));

    settle("origin connections", 0, || {
        origin.active.load(Ordering::SeqCst)
    });
    settle("descriptors", fds_before, fd_count);
    settle("threads", tasks_before, task_count);

    // dropping a handle without stop() also joins everything
    let (proxy, addr) = start(config(&["*"], &[]));
    let _c = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(proxy);
    assert_eq!(threads_named("nanobox-proxy"), 0);
}
