//! The filtering proxy, end to end, against origins on 127.0.0.1 (hermetic: no other address is
//! ever contacted).

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;
mod proxy_util;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use nanobox::proxy::{Cidr, Lookup, OverrideResolver, Resolver, Upstream};
use proxy_util::*;

/// A fake DNS: every name resolves to `addr`; nothing is pinned (plain DNS answers).
struct FakeDns(IpAddr);
impl Resolver for FakeDns {
    fn resolve<'a>(&'a self, _: &'a str, _: u16) -> Lookup<'a> {
        let a = self.0;
        Box::pin(async move { Ok(vec![a]) })
    }
}

#[test]
fn connect_to_allowed_name_reaches_origin_and_half_close_propagates() {
    let origin = Origin::echo();
    let pattern = format!("origin.test:{}", origin.port());
    let (proxy, addr) = start(config(&[&pattern], &["origin.test"]));
    let (mut s, head) = connect(addr, &format!("Origin.Test.:{}", origin.port()));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let msg = tls(b"hello through the tunnel");
    s.write_all(&msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap(); // EOF arrives only if our half-close reached the origin
    assert_eq!(back, msg);
    drop(s);
    let events = proxy.stop().events;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.host.as_str(), e.port, e.allowed),
        ("origin.test", origin.port(), true)
    );
    assert_eq!(e.pattern.as_deref(), Some(pattern.as_str()));
    assert_eq!(
        e.address.as_deref(),
        Some(format!("127.0.0.1:{}", origin.port()).as_str())
    );
    assert_eq!((e.bytes_up, e.bytes_down), (27, 27));
    let json = serde_json_string(e);
    assert!(json.contains("\"allowed\":true"), "{json}");
}

fn serde_json_string(e: &nanobox::proxy::NetworkEvent) -> String {
    serde_json::to_string(e).unwrap()
}

#[test]
fn other_names_get_403_naming_host_and_patterns() {
    let origin = Origin::echo();
    let p = origin.port();
    let (proxy, addr) = start(config(
        &["origin.test:1", "*.allowed.test"],
        &["origin.test", "evil.test"],
    ));
    for target in [
        format!("evil.test:{p}"),
        format!("origin.test:{p}"),      // wrong port
        "allowed.test:443".to_string(),  // wildcard excludes the apex
        "x.allowed.test:22".to_string(), // default ports only
    ] {
        let r = exchange(
            addr,
            format!("CONNECT {target} HTTP/1.1\r\n\r\n").as_bytes(),
        );
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{r}");
        let host = target.split(':').next().unwrap();
        assert!(r.contains(&format!("{host}:")), "{r}");
        assert!(
            r.contains("is not in the sandbox's network allowlist"),
            "{r}"
        );
        assert!(
            r.contains("Allowed patterns: origin.test:1, *.allowed.test"),
            "{r}"
        );
    }
    let r = exchange(
        addr,
        format!("GET http://evil.test:{p}/ HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let events = proxy.stop().events;
    // the GET repeats the first CONNECT's host, port and reason: one entry, counted twice
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        events.iter().map(|e| e.count).collect::<Vec<_>>(),
        [2, 1, 1, 1]
    );
    assert!(events.iter().all(|e| !e.allowed && e.address.is_none()));
    assert_eq!(origin.accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[test]
fn ip_literals_need_listing_and_address_allowance() {
    let origin = Origin::echo();
    let p = origin.port();
    // '*' matches names only
    let (proxy, addr) = start(config(&["*"], &[]));
    let r = exchange(
        addr,
        format!("CONNECT 127.0.0.1:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(
        r.contains("403") && r.contains("not in the sandbox's network allowlist"),
        "{r}"
    );
    proxy.stop();
    // listed literally, but loopback is still under the address rules
    let listed = format!("127.0.0.1:{p}");
    let (proxy, addr) = start(config(&[&listed], &[]));
    let r = exchange(
        addr,
        format!("CONNECT 127.0.0.1:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(
        r.contains("403") && r.contains("127.0.0.1 is not a public address of another host"),
        "{r}"
    );
    proxy.stop();
    // listed and explicitly allowed
    let mut c = config(&[&listed], &[]);
    c.allow_addresses = vec![Cidr::parse("127.0.0.0/8").unwrap()];
    let (proxy, addr) = start(c);
    let (_s, head) = connect(addr, &listed);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let ev = proxy.stop().events;
    assert!(ev[0].allowed && ev[0].reason.is_none());
}

#[test]
fn rebinding_to_loopback_or_metadata_is_refused() {
    let origin = Origin::echo();
    let p = origin.port();
    let pattern = format!("*.test:{p}");
    let mut bodies = Vec::new();
    for (ip, class) in [
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
    ] {
        let mut c = config(&[&pattern], &[]);
        c.resolver = Arc::new(FakeDns(ip.parse().unwrap()));
        let (proxy, addr) = start(c);
        let r = exchange(
            addr,
            format!("CONNECT rebind.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
        );
        assert!(r.starts_with("HTTP/1.1 403"), "{r}");
        // The body names the rule, never what the name resolved to (no DNS oracle) ...
        assert!(
            r.contains("by the sandbox's address rules")
                && r.contains("rebind.test does not resolve to public addresses only"),
            "{r}"
        );
        let bare = ip.trim_start_matches("::ffff:");
        assert!(!r.contains(bare), "{r}");
        bodies.push(r);
        // ... the caller's log does.
        let ev = proxy.stop().events;
        assert!(!ev[0].allowed);
        let why = ev[0].reason.as_deref().unwrap();
        assert!(why.starts_with(class) && why.contains(bare), "{why}");
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "the answer differs with what the name resolved to: {bodies:#?}"
    );
    // The override pins 127.0.0.1 for pinned.test only: another name the fallback resolves to the
    // same address is refused.
    let mut c = config(&[&pattern], &[]);
    c.resolver = Arc::new(
        OverrideResolver::new(Arc::new(FakeDns(lo())))
            .map("pinned.test", lo())
            .unwrap(),
    );
    let (proxy, addr) = start(c);
    let (_s, head) = connect(addr, &format!("pinned.test:{p}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let r = exchange(
        addr,
        format!("CONNECT other.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let ev = proxy.stop().events;
    let other = ev.iter().find(|e| e.host == "other.test").unwrap();
    assert!(
        other.reason.as_deref().unwrap().starts_with("loopback"),
        "{other:?}"
    );
    // explicit allowance lets the same answer through
    let mut c = config(&[&pattern], &[]);
    c.resolver = Arc::new(FakeDns(lo()));
    c.allow_addresses = vec![Cidr::parse("127.0.0.1").unwrap()];
    let (proxy, addr) = start(c);
    let (_s, head) = connect(addr, &format!("rebind.test:{p}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    proxy.stop();
}

#[test]
fn plain_http_is_forwarded_in_origin_form_one_request_per_connection() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let origin = Origin::http(seen.clone());
    let p = origin.port();
    let (proxy, addr) = start(config(&[&format!("web.test:{p}")], &["web.test"]));
    let req = format!(
        "POST http://web.test:{p}/a/b?c=d HTTP/1.1\r\nHost: web.test:{p}\r\nProxy-Authorization: Basic eA==\r\n\
         Proxy-Connection: keep-alive\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nhello\
         GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    );
    let r = exchange(addr, req.as_bytes());
    assert!(
        r.starts_with("HTTP/1.1 200 OK") && r.ends_with("\r\n\r\nok"),
        "{r}"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let got = String::from_utf8(seen[0].clone()).unwrap();
    assert_eq!(
        got,
        format!("POST /a/b?c=d HTTP/1.1\r\nHost: web.test:{p}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    );
    // chunked body: exactly the chunks, nothing after them
    let req = format!(
        "POST http://web.test:{p}/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\nGARBAGE"
    );
    let r2 = exchange(addr, req.as_bytes());
    assert!(r2.starts_with("HTTP/1.1 200 OK"), "{r2}");
    let ev = proxy.stop().events;
    // both requests to web.test are one entry; the pipelined evil.test was never looked at
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].count, 2);
    assert_eq!(ev[0].bytes_down, (r.len() + r2.len()) as u64);
    let _ = origin;
}

#[test]
fn malformed_oversized_and_slow_heads() {
    let mut c = config(&["*"], &[]);
    c.limits.head_timeout = Duration::from_millis(500);
    let (proxy, addr) = start(c);
    let r = exchange(
        addr,
        b"GET http://a.test/ HTTP/1.1\r\nX: a\rInjected: 1\r\n\r\n",
    );
    assert!(
        r.starts_with("HTTP/1.1 400 Bad Request\r\n") && r.contains("control character"),
        "{r}"
    );
    let r = exchange(addr, b"GET /origin-form HTTP/1.1\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("absolute http:// URL or CONNECT"),
        "{r}"
    );
    let mut big = b"GET http://a.test/ HTTP/1.1\r\n".to_vec();
    big.extend(vec![b'x'; 40 * 1024]);
    let r = exchange(addr, &big);
    assert!(
        r.starts_with("HTTP/1.1 400") && r.contains("request head larger than 16384 bytes"),
        "{r}"
    );
    // a head that never ends: 408 after the head timeout
    let t = Instant::now();
    let r = exchange(addr, b"CONNECT a.test:443 HTTP/1.1\r\n");
    assert!(r.starts_with("HTTP/1.1 408"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // random bytes never crash the server
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..50 {
        let junk: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .chain(*b"\r\n\r\n")
            .collect();
        let r = exchange(addr, &junk);
        assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    }
    assert!(proxy.stop().events.is_empty());
}

#[test]
fn slow_client_byte_by_byte_works() {
    let origin = Origin::echo();
    let p = origin.port();
    let (proxy, addr) = start(config(&[&format!("slow.test:{p}")], &["slow.test"]));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sent = [
        format!("CONNECT slow.test:{p} HTTP/1.1\r\n\r\n").into_bytes(),
        tls(b"abc"),
    ]
    .concat();
    for b in sent {
        s.write_all(&[b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(read_head(&mut s).starts_with("HTTP/1.1 200"));
    let mut back = [0u8; 6];
    s.read_exact(&mut back).unwrap();
    assert_eq!(
        &back[..],
        &tls(b"abc")[..],
        "bytes sent right after the head reach the origin"
    );
    proxy.stop();
}

#[test]
fn idle_tunnels_are_closed() {
    let origin = Origin::echo();
    let p = origin.port();
    let mut c = config(&[&format!("idle.test:{p}")], &["idle.test"]);
    c.limits.idle_timeout = Duration::from_millis(300);
    let (proxy, addr) = start(c);
    let (mut s, head) = connect(addr, &format!("idle.test:{p}"));
    assert!(head.starts_with("HTTP/1.1 200"));
    let t = Instant::now();
    let mut b = [0u8; 1];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(5));
    proxy.stop();
}

#[test]
fn client_leaving_mid_transfer_ends_the_upstream_connection() {
    let origin = Origin::start(|mut c| {
        let chunk = vec![7u8; 64 * 1024];
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(20) && c.write_all(&chunk).is_ok() {}
    });
    let p = origin.port();
    let (proxy, addr) = start(config(&[&format!("big.test:{p}")], &["big.test"]));
    let (mut s, head) = connect(addr, &format!("big.test:{p}"));
    assert!(head.starts_with("HTTP/1.1 200"));
    s.write_all(TLS_START).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    s.read_exact(&mut buf).unwrap();
    drop(s);
    let t = Instant::now();
    while origin.active.load(std::sync::atomic::Ordering::SeqCst) > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "origin still writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // and the proxy still serves
    let (_s, head) = connect(addr, &format!("big.test:{p}"));
    assert!(head.starts_with("HTTP/1.1 200"));
    let ev = proxy.stop().events;
    assert!(ev[0].bytes_down >= 256 * 1024);
}

/// The byte at offset `i` of the bulk stream: a pattern that a lost, repeated or reordered chunk
/// of any size would break.
fn pattern_byte(i: u64) -> u8 {
    (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 16) as u8
}

/// Downloads 48 MiB through a tunnel and checks every byte, both ways of moving it: with the
/// relay buffer growing (the default budget) and with no budget to grow.
#[test]
fn bulk_transfers_arrive_intact_whether_or_not_relay_buffers_grow() {
    const TOTAL: u64 = 48 << 20;
    let origin = Origin::start(|mut c| {
        // The client's first bytes (closing with them unread would reset the connection).
        let mut first = [0u8; 3];
        if c.read_exact(&mut first).is_err() {
            return;
        }
        let mut sizes = [1usize, 4096, 65_536, 1 << 20, 3 * 65_536 + 7]
            .into_iter()
            .cycle();
        let mut sent = 0u64;
        while sent < TOTAL {
            let n = (sizes.next().unwrap() as u64).min(TOTAL - sent);
            let chunk: Vec<u8> = (sent..sent + n).map(pattern_byte).collect();
            if c.write_all(&chunk).is_err() {
                return;
            }
            sent += n;
        }
    });
    let p = origin.port();
    for budget in [None, Some(0)] {
        let mut cfg = config(&[&format!("bulk.test:{p}")], &["bulk.test"]);
        if let Some(b) = budget {
            cfg.limits.relay_memory = b;
        }
        let (proxy, addr) = start(cfg);
        let (mut s, head) = connect(addr, &format!("bulk.test:{p}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        s.write_all(TLS_START).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for (k, b) in buf[..n].iter().enumerate() {
                let at = got + k as u64;
                assert_eq!(*b, pattern_byte(at), "byte {at} (budget {budget:?})");
            }
            got += n as u64;
        }
        assert_eq!(got, TOTAL, "budget {budget:?}");
        let ev = proxy.stop().events;
        assert_eq!(ev[0].bytes_down, TOTAL);
    }
}

#[test]
fn upstream_connect_failure_is_502() {
    let port = {
        let l = TcpListener::bind((LO, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let (proxy, addr) = start(config(&[&format!("gone.test:{port}")], &["gone.test"]));
    let r = exchange(
        addr,
        format!("CONNECT gone.test:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(
        r.starts_with("HTTP/1.1 502 Bad Gateway") && r.contains("cannot connect to gone.test"),
        "{r}"
    );
    let ev = proxy.stop().events;
    assert!(ev[0].allowed);
    assert!(ev[0]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("connect failed"));
}

#[test]
fn many_concurrent_tunnels() {
    const N: usize = 250;
    let origin = Origin::echo();
    let p = origin.port();
    let mut c = config(&[&format!("many.test:{p}")], &["many.test"]);
    c.limits.max_connections = N;
    let (proxy, addr) = start(c);
    let barrier = Arc::new(Barrier::new(N));
    let clients: Vec<_> = (0..N)
        .map(|i| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                let (mut s, head) = connect(addr, &format!("many.test:{p}"));
                assert!(head.starts_with("HTTP/1.1 200"), "{i}: {head}");
                b.wait(); // all N tunnels are open at once
                let msg = tls(format!("client {i} ").repeat(100).as_bytes());
                s.write_all(&msg).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).unwrap();
                assert_eq!(back, msg);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let ev = proxy.stop().events;
    // N alike tunnels are one entry: counted, bytes summed.
    assert_eq!(ev.len(), 1, "{ev:?}");
    let sent: usize = (0..N)
        .map(|i| TLS_START.len() + format!("client {i} ").len() * 100)
        .sum();
    assert_eq!(ev[0].count, N as u64);
    assert!(ev[0].allowed);
    assert_eq!(
        (ev[0].bytes_up, ev[0].bytes_down),
        (sent as u64, sent as u64)
    );
}

#[test]
fn connections_past_the_cap_get_503() {
    let mut c = config(&["*"], &[]);
    c.limits.max_connections = 2;
    let (proxy, addr) = start(c);
    let a = TcpStream::connect(addr).unwrap();
    let b = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let r = exchange(addr, b"");
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    drop((a, b));
    proxy.stop();
}

/// A minimal upstream proxy: records each request head; CONNECT is relayed to the address it
/// names, GET gets a fixed answer, anything with the wrong credentials gets 407.
fn test_upstream(heads: Arc<Mutex<Vec<String>>>, auth: &'static str) -> Origin {
    Origin::start(move |mut c| {
        let head = read_head(&mut c);
        heads.lock().unwrap().push(head.clone());
        if !head.contains(&format!("\r\nProxy-Authorization: Basic {auth}\r\n")) {
            let _ = c.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
            );
            return;
        }
        if let Some(target) = head.strip_prefix("CONNECT ") {
            let target = target.split(' ').next().unwrap();
            let mut up = TcpStream::connect(target).unwrap();
            c.write_all(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
            let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
            let t = std::thread::spawn(move || {
                let _ = io::copy(&mut up2, &mut c2);
                let _ = c2.shutdown(Shutdown::Write);
            });
            let _ = io::copy(&mut c, &mut up);
            let _ = up.shutdown(Shutdown::Write);
            t.join().unwrap();
        } else {
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nupstream",
            );
        }
    })
}

#[test]
fn chaining_through_an_upstream_proxy() {
    let origin = Origin::echo();
    let p = origin.port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let upstream = test_upstream(heads.clone(), "dXNlcjpwQHNz"); // user:p@ss
    let mut c = config(&[&format!("*.test:{p}")], &["chained.test"]);
    c.upstream = Some(
        Upstream::parse(&format!("http://user:p%40ss@127.0.0.1:{}", upstream.port())).unwrap(),
    );
    let (proxy, addr) = start(c);
    // tunnel: the upstream is asked for the checked address, never the name
    let (mut s, head) = connect(addr, &format!("chained.test:{p}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s.write_all(&tls(b"ping")).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back, tls(b"ping"));
    // plain HTTP: absolute-form with the checked address, Host keeps the name
    let r = exchange(
        addr,
        format!("GET http://chained.test:{p}/x HTTP/1.1\r\nHost: chained.test:{p}\r\n\r\n")
            .as_bytes(),
    );
    assert!(r.ends_with("upstream"), "{r}");
    // refused names never reach the upstream: not allowed, and allowed-but-rebinding
    let r = exchange(
        addr,
        format!("CONNECT other.example:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(
        heads[0].starts_with(&format!("CONNECT 127.0.0.1:{p} HTTP/1.1\r\n")),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].starts_with(&format!(
            "GET http://127.0.0.1:{p}/x HTTP/1.1\r\nHost: chained.test:{p}\r\n"
        )),
        "{}",
        heads[1]
    );
    proxy.stop();

    // rebinding in chain mode: the local check still applies
    let mut c = config(&[&format!("*.test:{p}")], &[]);
    c.resolver = Arc::new(FakeDns(lo()));
    c.upstream = Some(Upstream::parse(&format!("http://127.0.0.1:{}", upstream.port())).unwrap());
    let (proxy, addr) = start(c);
    let r = exchange(
        addr,
        format!("CONNECT rebind.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(
        r.starts_with("HTTP/1.1 403") && r.contains("by the sandbox's address rules"),
        "{r}"
    );
    // wrong credentials: the upstream's 407 becomes 502
    let mut c2 = config(&[&format!("*.test:{p}")], &["chained.test"]);
    c2.upstream = Some(Upstream::parse(&format!("http://127.0.0.1:{}", upstream.port())).unwrap());
    let (proxy2, addr2) = start(c2);
    let r = exchange(
        addr2,
        format!("CONNECT chained.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(
        r.starts_with("HTTP/1.1 502") && r.contains("answered 407"),
        "{r}"
    );
    proxy.stop();
    proxy2.stop();
}

/// curl through the proxy to an `openssl s_server` origin with a certificate from a CA made here.
/// TLS passes through the tunnel untouched: curl verifies the origin's certificate for the name.
#[test]
fn https_with_curl_and_a_test_ca() {
    use std::process::{Command, Stdio};
    let have = |p: &str| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("curl")
        || !Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        eprintln!("skipped: curl or openssl is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("nanobox-proxy-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(make_test_certs(&dir, "secure.test"), "openssl failed");
    let server = TlsOrigin::start(&dir);
    let port = server.port;
    let (proxy, addr) = start(config(
        &[&format!("secure.test:{port}")],
        &["secure.test", "other.test"],
    ));
    let curl = |url: String| {
        Command::new("curl")
            .env_clear()
            .args(["-sS", "--max-time", "20", "--noproxy", "", "--cacert"])
            .arg(dir.join("ca.pem"))
            .arg("--proxy")
            .arg(format!("http://{addr}"))
            .arg(url)
            .output()
            .unwrap()
    };
    let ok = curl(format!("https://secure.test:{port}/"));
    let refused = curl(format!("https://other.test:{port}/"));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    let events = proxy.stop().events;
    let body = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(body.contains("s_server"), "{body}");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{refused:?}"
    );
    assert_eq!(events.len(), 2);
    assert!(
        events[0].allowed && events[0].bytes_down > 1000,
        "{:?}",
        events[0]
    );
    assert!(!events[1].allowed && events[1].host == "other.test");
}

#[test]
fn a_stalled_nameserver_is_bounded_in_time_and_stops_with_the_proxy() {
    let ns = StalledNameserver::start("127.0.0.1:0");
    // bounded by the resolve timeout
    let mut c = config(&["*"], &[]);
    c.resolver = Arc::new(nanobox::proxy::SystemResolver::with_nameservers([ns.addr]));
    c.limits.resolve_timeout = Duration::from_millis(800);
    let (proxy, addr) = start(c);
    let t = Instant::now();
    let r = exchange(addr, b"CONNECT stall.test:443 HTTP/1.1\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 502") && r.contains("cannot resolve stall.test"),
        "{r}"
    );
    // (the resolver's own tries alone would take 2 x 2 s)
    assert!(
        t.elapsed() < common::slow(Duration::from_secs(3)),
        "{:?}",
        t.elapsed()
    );
    let ev = proxy.stop().events;
    assert_eq!(ev[0].reason.as_deref(), Some("cannot resolve: timed out"));

    // in flight when the proxy stops: cancelled, and nothing is sent after
    let mut c = config(&["*"], &[]);
    c.resolver = Arc::new(nanobox::proxy::SystemResolver::with_nameservers([ns.addr]));
    c.limits.resolve_timeout = Duration::from_secs(60);
    let (proxy, addr) = start(c);
    let before = ns.queries();
    let client =
        std::thread::spawn(move || exchange(addr, b"CONNECT stall2.test:443 HTTP/1.1\r\n\r\n"));
    let t = Instant::now();
    while ns.queries() == before {
        assert!(t.elapsed() < Duration::from_secs(5), "no query was sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = Instant::now();
    let log = proxy.stop();
    let stopped = Instant::now();
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "stop waited for the lookup"
    );
    assert_eq!(
        client.join().unwrap(),
        "",
        "the client's connection was closed"
    );
    let e = log.events.iter().find(|e| e.host == "stall2.test").unwrap();
    assert_eq!(
        e.reason.as_deref(),
        Some("the run ended before it connected")
    );
    // the resolver retries 2 s after a query; a cancelled lookup does not (a query sent just
    // before the stop may be read by the nameserver's thread just after it: 300 ms of slack)
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        ns.queries_after(stopped + Duration::from_millis(300)),
        0,
        "queries were sent after stop()"
    );
}

#[test]
fn the_log_aggregates_keeps_allowed_destinations_and_counts_what_it_omits() {
    let origin = Origin::echo();
    let p = origin.port();
    let mut c = config(
        &[
            &format!("a.test:{p}"),
            &format!("b.test:{p}"),
            &format!("c.test:{p}"),
        ],
        &["a.test", "b.test", "c.test"],
    );
    c.limits.max_events = 3;
    let (proxy, addr) = start(c);
    for i in 0..20 {
        for _ in 0..(if i == 0 { 50 } else { 1 }) {
            let r = exchange(
                addr,
                format!("CONNECT x{i}.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
            );
            assert!(r.starts_with("HTTP/1.1 403"), "{r}");
        }
    }
    let tunnel = |addr: std::net::SocketAddr, host: &str| {
        let (mut s, head) = connect(addr, &format!("{host}:{p}"));
        if !head.starts_with("HTTP/1.1 200") {
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            return head + &body;
        }
        s.write_all(&tls(b"data")).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        String::from_utf8_lossy(&back).into_owned()
    };
    for _ in 0..5 {
        tunnel(addr, "a.test");
    }
    tunnel(addr, "b.test");
    tunnel(addr, "c.test");
    let log = proxy.log();
    // 3 distinct refusals kept (x0.test 50 times is one of them), 17 omitted, all allowed kept
    let refused: Vec<_> = log.events.iter().filter(|e| !e.allowed).collect();
    assert_eq!(refused.len(), 3, "{:?}", log.events);
    assert_eq!(refused[0].host, "x0.test");
    assert_eq!(refused[0].count, 50);
    assert_eq!(log.omitted, 17);
    let allowed: Vec<_> = log.events.iter().filter(|e| e.allowed).collect();
    assert_eq!(
        allowed
            .iter()
            .map(|e| (e.host.as_str(), e.count))
            .collect::<Vec<_>>(),
        [("a.test", 5), ("b.test", 1), ("c.test", 1)]
    );
    assert_eq!(allowed[0].bytes_up, 5 * 7);
    proxy.stop();

    // past the bound of allowed destinations, a new one is refused rather than let through unlogged
    let mut c = config(
        &[
            &format!("a.test:{p}"),
            &format!("b.test:{p}"),
            &format!("c.test:{p}"),
        ],
        &["a.test", "b.test", "c.test"],
    );
    c.limits.max_events = 2;
    let (proxy, addr) = start(c);
    let accepted = origin.accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        tunnel(addr, "a.test"),
        String::from_utf8_lossy(&tls(b"data"))
    );
    assert_eq!(
        tunnel(addr, "b.test"),
        String::from_utf8_lossy(&tls(b"data"))
    );
    let r = tunnel(addr, "c.test");
    assert!(
        r.starts_with("HTTP/1.1 503") && r.contains("network log is full"),
        "{r}"
    );
    assert_eq!(
        tunnel(addr, "a.test"),
        String::from_utf8_lossy(&tls(b"data")),
        "known ones still go"
    );
    assert_eq!(
        origin.accepted.load(std::sync::atomic::Ordering::SeqCst),
        accepted + 3,
        "c.test was never connected to"
    );
    let log = proxy.stop();
    let c_entry = log.events.iter().find(|e| e.host == "c.test").unwrap();
    assert!(!c_entry.allowed);
    assert_eq!(c_entry.reason.as_deref(), Some("the network log is full"));
}

#[test]
fn plain_http_inside_a_tunnel_must_name_the_tunnel_s_host() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let origin = Origin::http(seen.clone());
    let p = origin.port();
    let (proxy, addr) = start(config(&[&format!("allowed.test:{p}")], &["allowed.test"]));
    let inside = |first: &[u8]| {
        let (mut s, head) = connect(addr, &format!("allowed.test:{p}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        s.write_all(first).unwrap();
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
        String::from_utf8_lossy(&back).into_owned()
    };
    // refused: another name, another port, a URL naming another host, two Hosts, none
    for (req, status) in [
        (
            "GET / HTTP/1.1\r\nHost: other.test\r\n\r\n".to_string(),
            403,
        ),
        (
            "GET / HTTP/1.1\r\nHost: allowed.test:1\r\n\r\n".to_string(),
            403,
        ),
        (
            format!("GET http://other.test:{p}/ HTTP/1.1\r\nHost: allowed.test:{p}\r\n\r\n"),
            400,
        ),
        (
            "GET / HTTP/1.1\r\nHost: allowed.test\r\nHost: other.test\r\n\r\n".to_string(),
            400,
        ),
        ("GET / HTTP/1.0\r\n\r\n".to_string(), 400),
        // what some servers take as HTTP after an empty line, and what is neither TLS nor HTTP
        (
            "\r\nGET / HTTP/1.1\r\nHost: other.test\r\n\r\n".to_string(),
            400,
        ),
        ("SSH-2.0-OpenSSH_9.2\r\n".to_string(), 400),
    ] {
        let r = inside(req.as_bytes());
        assert!(
            r.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req:?}: {r}"
        );
    }
    assert!(
        seen.lock().unwrap().iter().all(|b| b.is_empty()),
        "a refused request reached the origin: {:?}",
        seen.lock().unwrap()
    );
    // the tunnel's own host: forwarded, and only that one request of the tunnel
    let r = inside(
        format!(
            "GET /a HTTP/1.1\r\nHost: Allowed.Test:{p}\r\n\r\nGET /b HTTP/1.1\r\nHost: other.test\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 200 OK") && r.ends_with("ok"), "{r}");
    let got: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(
        got,
        [format!(
            "GET /a HTTP/1.1\r\nHost: Allowed.Test:{p}\r\nConnection: close\r\n\r\n"
        )]
    );
    let ev = proxy.stop().events;
    let other = ev.iter().find(|e| e.host == "other.test").unwrap();
    assert!(!other.allowed);
    assert_eq!(
        other.reason.as_deref(),
        Some(format!("requested inside a tunnel to allowed.test:{p}").as_str())
    );
    let tunnels: u64 = ev
        .iter()
        .filter(|e| e.host == "allowed.test" && e.allowed)
        .map(|e| e.count)
        .sum();
    assert_eq!(tunnels, 8);
}
