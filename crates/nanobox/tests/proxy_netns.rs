//! The proxy's address rules against a host that really has the addresses in question: each test
//! runs in a network namespace of its own (re-executed under `unshare -rn`), whose loopback
//! carries "public" test addresses and special-purpose ones, with an origin listening on every
//! address. No packet leaves that namespace's loopback.
//!
//! The proxy runs in the caller's process and its code does not depend on the caller's uid, so
//! these run once (as whoever runs the tests) rather than as root and as uid 65534.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;
mod proxy_util;

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use nanobox::proxy::{classify, Cidr, Lookup, OverrideResolver, Resolver};
use proxy_util::*;

/// A fake DNS: every name resolves to `addr`; nothing is pinned (plain DNS answers).
struct FakeDns(IpAddr);
impl Resolver for FakeDns {
    fn resolve<'a>(&'a self, _: &'a str, _: u16) -> Lookup<'a> {
        let a = self.0;
        Box::pin(async move { Ok(vec![a]) })
    }
}

/// Defines `$name` (re-executes this binary's `$name::in_netns` under `unshare -rn`) and
/// `$name::in_netns` (ignored when run directly: it changes the namespace's addresses).
macro_rules! netns_test {
    ($name:ident, $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn in_own_netns() {
                super::rerun_in_netns(concat!(stringify!($name), "::in_netns"));
            }

            #[test]
            #[ignore = "entry point of `in_own_netns`, which runs it in a network namespace of its own"]
            fn in_netns() {
                assert_eq!(
                    std::env::var("NANOBOX_TEST_NETNS").as_deref(),
                    Ok("1"),
                    "run through in_own_netns only: it changes the network namespace's addresses"
                );
                $body
            }
        }
    };
}

fn rerun_in_netns(name: &str) {
    common::rerun_under(
        &["unshare", "--user", "--map-root-user", "--net", "--"],
        &std::env::current_exe().unwrap(),
        name,
        "NANOBOX_TEST_NETNS",
        "in its own network namespace",
    );
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Brings up loopback and puts `addrs` on it; `local` prefixes become local routes (every address
/// in them is this host's, as with `ip route add local`, without being on an interface).
fn setup(addrs: &[&str], local: &[&str]) {
    ip(&["link", "set", "lo", "up"]);
    for a in addrs {
        ip(&["addr", "add", a, "dev", "lo"]);
    }
    for r in local {
        ip(&["route", "add", "local", r, "dev", "lo"]);
    }
}

/// An echo origin on every address of the namespace.
fn everywhere() -> Origin {
    Origin::echo_at("[::]:0".parse::<SocketAddr>().unwrap())
}

/// `CONNECT name:port` through a proxy whose DNS answers `addr` for every name.
fn through(addr: IpAddr, port: u16, allow: &[Cidr]) -> (String, Vec<nanobox::NetworkEvent>) {
    let mut c = config(&[&format!("*:{port}")], &[]);
    c.resolver = Arc::new(FakeDns(addr));
    c.allow_addresses = allow.to_vec();
    let (proxy, paddr) = start(c);
    let r = exchange(
        paddr,
        format!("CONNECT name.test:{port} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    (r, proxy.stop().events)
}

/// An allowed tunnel works end to end (the echo comes back).
fn tunnel_works(proxy: SocketAddr, target: &str) -> bool {
    let (mut s, head) = connect(proxy, target);
    if !head.starts_with("HTTP/1.1 200") {
        return false;
    }
    let msg = tls(b"hello");
    s.write_all(&msg).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back == msg
}

netns_test!(this_host_s_own_addresses_are_refused_whatever_the_name, {
    setup(&["8.8.8.8/32", "2001:4860:4860::8888/128"], &["1.2.3.0/24"]);
    let origin = everywhere();
    let p = origin.port();
    let mut bodies = Vec::new();
    for addr in [
        "8.8.8.8",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",
        "1.2.3.4",
        "1.2.3.200",
    ] {
        let a: IpAddr = addr.parse().unwrap();
        assert_eq!(classify(a), None, "{addr} is a public address");
        let (r, ev) = through(a, p, &[]);
        assert!(r.starts_with("HTTP/1.1 403"), "{addr}: {r}");
        assert!(r.contains("by the sandbox's address rules"), "{r}");
        assert!(!r.contains(addr.trim_start_matches("::ffff:")), "{r}");
        let why = ev[0].reason.as_deref().unwrap();
        assert!(why.contains("is an address of this host"), "{addr}: {why}");
        assert!(!ev[0].allowed);
        bodies.push(r);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:#?}");
    // listed as a literal: still this host
    let literal = format!("8.8.8.8:{p}");
    let (proxy, paddr) = start(config(&[&literal], &[]));
    let r = exchange(
        paddr,
        format!("CONNECT {literal} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    proxy.stop();
    assert_eq!(
        origin.accepted.load(Ordering::SeqCst),
        0,
        "a refused address reached the host's service"
    );

    // checked when the request comes, not when the proxy started: an address added later counts
    let mut c = config(&[&format!("*:{p}")], &[]);
    c.resolver = Arc::new(FakeDns("9.9.9.9".parse().unwrap()));
    let (proxy, paddr) = start(c);
    ip(&["addr", "add", "9.9.9.9/32", "dev", "lo"]);
    let r = exchange(
        paddr,
        format!("CONNECT late.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    proxy.stop();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 0);

    // a public address that is not this host's passes the rules (and fails to connect: this
    // namespace has no route to it)
    let (r, ev) = through("8.8.4.4".parse().unwrap(), p, &[]);
    assert!(r.starts_with("HTTP/1.1 502"), "{r}");
    assert!(ev[0].allowed, "{ev:?}");
    assert!(ev[0]
        .reason
        .as_deref()
        .unwrap()
        .starts_with("connect failed"));

    // allow_address names it: then it is reached (so the refusals above were the rule's)
    let mut c = config(&[&format!("*:{p}")], &[]);
    c.resolver = Arc::new(FakeDns("8.8.8.8".parse().unwrap()));
    c.allow_addresses = vec![Cidr::parse("8.8.8.8").unwrap()];
    let (proxy, paddr) = start(c);
    assert!(tunnel_works(paddr, &format!("name.test:{p}")));
    proxy.stop();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 1);
});

netns_test!(special_purpose_addresses_are_refused_whatever_the_name, {
    let on_lo = [
        "192.0.0.192",
        "192.0.0.8",
        "198.18.0.1",
        "198.19.255.254",
        "192.0.2.1",
        "198.51.100.1",
        "203.0.113.1",
        "100.64.0.1",
        "192.88.99.1",
    ];
    let addrs: Vec<String> = on_lo.iter().map(|a| format!("{a}/32")).collect();
    let addrs: Vec<&str> = addrs.iter().map(String::as_str).collect();
    setup(&addrs, &[]);
    let origin = everywhere();
    let p = origin.port();
    let embedded = [
        "64:ff9b::c000:c0", // NAT64 of 192.0.0.192
        "2002:c612:1::1",   // 6to4 of 198.18.0.1
        "::ffff:192.0.2.1", // IPv4-mapped
        "64:ff9b:1::a00:1", // local-use NAT64
        "2001:db8::1",      // documentation
        "3fff::1",          // documentation (RFC 9637)
        "2001:2::1",        // benchmarking
        "100::1",           // discard-only
        "5f00::1",          // segment routing
        "fec0::1",          // site-local
        "4000::1",          // outside 2000::/3
    ];
    let mut bodies = Vec::new();
    for addr in on_lo.iter().chain(embedded.iter()) {
        let a: IpAddr = addr.parse().unwrap();
        let class = classify(a).unwrap_or_else(|| panic!("{addr} is special-purpose"));
        let (r, ev) = through(a, p, &[]);
        assert!(r.starts_with("HTTP/1.1 403"), "{addr}: {r}");
        let why = ev[0].reason.as_deref().unwrap();
        assert_eq!(why, format!("{class} address {a}"), "{addr}");
        bodies.push(r);
    }
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:#?}");
    assert_eq!(
        origin.accepted.load(Ordering::SeqCst),
        0,
        "a special-purpose address reached a service"
    );

    // the explicit allowances: allow_address, and map_host (the resolver's pin)
    let meta: IpAddr = "192.0.0.192".parse().unwrap();
    let mut c = config(&[&format!("*:{p}")], &[]);
    c.resolver = Arc::new(FakeDns(meta));
    c.allow_addresses = vec![Cidr::parse("192.0.0.0/24").unwrap()];
    let (proxy, paddr) = start(c);
    assert!(tunnel_works(paddr, &format!("name.test:{p}")));
    proxy.stop();
    let mut c = config(&[&format!("*:{p}")], &[]);
    c.resolver = Arc::new(
        OverrideResolver::new(Arc::new(FakeDns(meta)))
            .map("meta.test", meta)
            .unwrap(),
    );
    let (proxy, paddr) = start(c);
    assert!(tunnel_works(paddr, &format!("meta.test:{p}")));
    // the pin is for its name only
    let r = exchange(
        paddr,
        format!("CONNECT other.test:{p} HTTP/1.1\r\n\r\n").as_bytes(),
    );
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    proxy.stop();
    assert_eq!(origin.accepted.load(Ordering::SeqCst), 2);
});
