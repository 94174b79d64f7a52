//! The filtering proxy against a direct connection, on loopback: throughput of a 200 MB download
//! and the latency of one small request. Run: `cargo bench -p nanobox --bench proxy`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nanobox::proxy::{AllowList, OverrideResolver, ProxyConfig, ProxyServer};

const BIG: usize = 200 * 1024 * 1024;

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

fn read_head(s: &mut TcpStream) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1);
        head.push(b[0]);
    }
}

/// A stream to the origin: direct, or through a CONNECT tunnel of the proxy.
fn open(origin: u16, proxy: Option<u16>) -> TcpStream {
    match proxy {
        None => TcpStream::connect(("127.0.0.1", origin)).unwrap(),
        Some(p) => {
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

fn fetch(origin: u16, proxy: Option<u16>, path: &str, len: usize) {
    let mut s = open(origin, proxy);
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
    g.bench_function("direct", |b| b.iter(|| fetch(o, None, "/big", BIG)));
    g.bench_function("through the proxy", |b| {
        b.iter(|| fetch(o, Some(p), "/big", BIG))
    });
    g.finish();

    let mut g = c.benchmark_group("one small request");
    g.bench_function("direct", |b| b.iter(|| fetch(o, None, "/small", 2)));
    g.bench_function("through the proxy", |b| {
        b.iter(|| fetch(o, Some(p), "/small", 2))
    });
    g.finish();
    drop(handle);
}

criterion_group!(benches, bench);
criterion_main!(benches);
