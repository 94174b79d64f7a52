//! What one proxy (one sandbox's) takes from the calling process: a bounded number of
//! connections, one thread, and descriptors bounded by the connection cap. One test in this
//! binary: it counts the process's threads and descriptors.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod proxy_util;

use std::io::{Read, Write};
use std::net::Shutdown;

use nanobox::proxy::Limits;
use proxy_util::*;

#[test]
fn one_proxy_holds_a_bounded_number_of_connections_threads_and_descriptors() {
    let origin = Origin::echo();
    let p = origin.port();
    let max = Limits::default().max_connections;
    assert_eq!(max, 64);
    let fds_before = fd_count();
    let (proxy, addr) = start(config(&[&format!("b.test:{p}")], &["b.test"]));
    // The program opens as many tunnels as it can, and keeps them open.
    let mut tunnels = Vec::new();
    for _ in 0..max {
        let (mut s, head) = connect(addr, &format!("b.test:{p}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        s.write_all(&tls(b"x")).unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        tunnels.push(s);
    }
    // Everything past the cap gets 503 at once and holds nothing.
    for _ in 0..300 {
        let r = exchange(addr, b"");
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    }
    assert_eq!(
        threads_named("nanobox-proxy"),
        1,
        "one thread for all of it"
    );
    // This process holds: the test's `max` client sockets, the origin's `max` accepted ones, and
    // the proxy's: its runtime (3: two epoll instances and an eventfd), its listener, and 2 per
    // connection.
    let held = fd_count() - fds_before;
    let proxy_fds = held - 2 * max;
    assert!(
        proxy_fds <= 4 + 2 * max,
        "the proxy holds {proxy_fds} descriptors for {max} connections"
    );
    // A connection that ends frees its place.
    let s = tunnels.pop().unwrap();
    s.shutdown(Shutdown::Both).unwrap();
    drop(s);
    let t = std::time::Instant::now();
    loop {
        // (while the place is not free yet, the proxy answers 503 and closes, which may reset
        // the connection under this write)
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        let _ = write!(c, "CONNECT b.test:{p} HTTP/1.1\r\n\r\n");
        let head = read_head(&mut c);
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{head}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(tunnels);
    proxy.stop();
    assert_eq!(threads_named("nanobox-proxy"), 0);
}
