//! The filtering proxy against a direct connection, on loopback: throughput of a 200 MB download
//! and the latency of one small request (criterion), then the same download measured fetch by
//! fetch, direct and proxied interleaved with a pause between fetches, with the CPU time the whole
//! machine spent per GiB (from /proc/stat). Run: `cargo bench -p nanobox --bench proxy`.

// Elsewhere than Linux the splice(2) baseline and its CPU-cost report are left out.
#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nanobox::proxy::{AllowList, OverrideResolver, ProxyConfig, ProxyServer};

const BIG: usize = 200 * 1024 * 1024;

/// How a download reaches the origin.
#[derive(Clone, Copy)]
enum Via {
    Direct,
    /// The filtering proxy on this port, through a `CONNECT` tunnel.
    Proxy(u16),
    /// The bare splice relay on this port (no request head).
    Bare(u16),
}

/// An origin: reads a request head, answers `/big` with 200 MB and anything else with 2 bytes.
fn origin() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                if head.starts_with(b"GET /big") {
                    let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n");
                    let chunk = vec![b'x'; 1 << 20];
                    for _ in 0..BIG / chunk.len() {
                        if c.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                } else {
                    let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                }
            });
        }
    });
    port
}

/// A bare tunnel for comparison: no request head, no checks; it connects each client to the origin
/// and moves origin → client bytes with `splice(2)` (socket → 1 MiB pipe → socket, never through
/// user space) and the client's request with a plain copy.
#[cfg(target_os = "linux")]
fn splice_relay(origin: u16) -> u16 {
    use rustix::pipe::{fcntl_setpipe_size, pipe, splice, SpliceFlags};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            std::thread::spawn(move || {
                let up = TcpStream::connect(("127.0.0.1", origin)).unwrap();
                let (mut c2, mut up2) = (c.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut c2, &mut up2));
                let (r, w) = pipe().unwrap();
                let size = fcntl_setpipe_size(&w, 1 << 20).unwrap();
                loop {
                    let n = splice(&up, None, &w, None, size, SpliceFlags::MOVE).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    let mut left = n;
                    while left > 0 {
                        left -= splice(&r, None, &c, None, left, SpliceFlags::MOVE).unwrap();
                    }
                }
                let _ = c.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

fn read_head(s: &mut TcpStream) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1);
        head.push(b[0]);
    }
}

/// A stream to the origin.
fn open(origin: u16, via: Via) -> TcpStream {
    match via {
        Via::Direct => TcpStream::connect(("127.0.0.1", origin)).unwrap(),
        Via::Bare(p) => TcpStream::connect(("127.0.0.1", p)).unwrap(),
        Via::Proxy(p) => {
            let mut s = TcpStream::connect(("127.0.0.1", p)).unwrap();
            write!(
                s,
                "CONNECT origin.test:{origin} HTTP/1.1\r\nHost: origin.test:{origin}\r\n\r\n"
            )
            .unwrap();
            read_head(&mut s);
            s
        }
    }
}

fn fetch(origin: u16, via: Via, path: &str, len: usize) {
    let mut s = open(origin, via);
    s.set_nodelay(true).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: origin.test\r\n\r\n").unwrap();
    read_head(&mut s);
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < len {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got += n;
    }
}

fn bench(c: &mut Criterion) {
    let o = origin();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let mut cfg = ProxyConfig::new(AllowList::parse(&[format!("origin.test:{o}")]).unwrap());
    cfg.resolver = Arc::new(
        OverrideResolver::default()
            .map("origin.test", "127.0.0.1".parse().unwrap())
            .unwrap(),
    );
    let handle = ProxyServer::start(l, cfg).unwrap();

    let mut g = c.benchmark_group("download 200 MB");
    g.throughput(Throughput::Bytes(BIG as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    g.bench_function("direct", |b| b.iter(|| fetch(o, Via::Direct, "/big", BIG)));
    g.bench_function("through the proxy", |b| {
        b.iter(|| fetch(o, Via::Proxy(p), "/big", BIG))
    });
    g.finish();

    let mut g = c.benchmark_group("one small request");
    g.bench_function("direct", |b| b.iter(|| fetch(o, Via::Direct, "/small", 2)));
    g.bench_function("through the proxy", |b| {
        b.iter(|| fetch(o, Via::Proxy(p), "/small", 2))
    });
    g.finish();

    // The CPU-cost report compares with a splice(2) relay and reads /proc/stat: Linux only.
    #[cfg(target_os = "linux")]
    if std::env::args().any(|a| a == "--bench") {
        cost_report(o, p, splice_relay(o));
    }
    drop(handle);
}

/// Busy jiffies of all CPUs together: every state but idle and iowait.
#[cfg(target_os = "linux")]
fn busy_jiffies() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let cpu = stat.lines().next().unwrap();
    let v: Vec<u64> = cpu
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    v.iter().sum::<u64>() - v[3] - v[4]
}

/// Interleaved, paused fetches: criterion measures each kind back to back, where a download also
/// overlaps the teardown of the one before it; here each fetch starts on a quiet machine, and the
/// CPU time the machine spent on it is counted. Prints median GiB/s and CPU seconds per GiB.
#[cfg(target_os = "linux")]
fn cost_report(o: u16, p: u16, bare: u16) {
    const ROUNDS: usize = 20;
    let hz = 100.0; // USER_HZ, the unit of /proc/stat on Linux
    let gib = BIG as f64 / (1u64 << 30) as f64;
    let kinds = [
        ("direct", Via::Direct),
        ("through the proxy", Via::Proxy(p)),
        ("bare splice relay", Via::Bare(bare)),
    ];
    let mut rate = vec![Vec::new(); kinds.len()];
    let mut busy = vec![0u64; kinds.len()];
    for _ in 0..ROUNDS {
        for (k, (_, via)) in kinds.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(150));
            let b0 = busy_jiffies();
            let t = Instant::now();
            fetch(o, *via, "/big", BIG);
            let dt = t.elapsed().as_secs_f64();
            busy[k] += busy_jiffies() - b0;
            rate[k].push(gib / dt);
        }
    }
    let cost = |k: usize| busy[k] as f64 / hz / (ROUNDS as f64 * gib);
    println!("paused, interleaved 200 MB downloads ({ROUNDS} each): median GiB/s, CPU-s per GiB");
    let mut first = (0.0, 0.0);
    for (k, (name, _)) in kinds.iter().enumerate() {
        let v = &mut rate[k];
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let (r, c) = (v[v.len() / 2], cost(k));
        if k == 0 {
            first = (r, c);
        }
        println!(
            "  {name:18} {r:.2} GiB/s ({:3.0} %)  {c:.3} CPU-s/GiB ({:.2}x)",
            100.0 * r / first.0,
            c / first.1
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
