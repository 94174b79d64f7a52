//! Address rules (which resolved addresses the proxy may connect to) and name resolution.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::sync::Arc;

use super::pattern::normalize_name;

/// Why an address is refused unless explicitly allowed. `None` from [`classify`] means public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressClass {
    /// 0.0.0.0/8, `::`.
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// 169.254.0.0/16 (cloud metadata 169.254.169.254 included), fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10 (RFC 6598).
    Cgnat,
    /// fc00::/7.
    UniqueLocal,
    /// fec0::/10 (deprecated site-local).
    SiteLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4 (reserved for future use).
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private (RFC 1918)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Cgnat => "carrier-grade NAT (100.64.0.0/10)",
            AddressClass::UniqueLocal => "unique-local (fc00::/7)",
            AddressClass::SiteLocal => "site-local (fec0::/10)",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved (240.0.0.0/4)",
        })
    }
}

/// The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped (`::ffff:0:0/96`),
/// IPv4-compatible (`::/96`, except `::` and `::1`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
pub fn embedded_v4(a: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let o = a.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..5] == [0; 5] && (s[5] == 0xffff || (s[5] == 0 && u32::from(tail) > 1)) {
        return Some(tail);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// The class that makes `addr` refused by default, or `None` for a public address.
pub fn classify(addr: IpAddr) -> Option<AddressClass> {
    match addr {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = embedded_v4(&a) {
                return classify_v4(v4);
            }
            let s0 = a.segments()[0];
            if a.is_unspecified() {
                Some(AddressClass::Unspecified)
            } else if a.is_loopback() {
                Some(AddressClass::Loopback)
            } else if s0 & 0xfe00 == 0xfc00 {
                Some(AddressClass::UniqueLocal)
            } else if s0 & 0xffc0 == 0xfe80 {
                Some(AddressClass::LinkLocal)
            } else if s0 & 0xffc0 == 0xfec0 {
                Some(AddressClass::SiteLocal)
            } else if s0 & 0xff00 == 0xff00 {
                Some(AddressClass::Multicast)
            } else {
                None
            }
        }
    }
}

fn classify_v4(a: Ipv4Addr) -> Option<AddressClass> {
    let o = a.octets();
    Some(match o {
        [0, ..] => AddressClass::Unspecified,
        [127, ..] => AddressClass::Loopback,
        [10, ..] => AddressClass::Private,
        [172, b, ..] if b & 0xf0 == 16 => AddressClass::Private,
        [192, 168, ..] => AddressClass::Private,
        [169, 254, ..] => AddressClass::LinkLocal,
        [100, b, ..] if b & 0xc0 == 64 => AddressClass::Cgnat,
        [255, 255, 255, 255] => AddressClass::Broadcast,
        [a, ..] if a & 0xf0 == 224 => AddressClass::Multicast,
        [a, ..] if a & 0xf0 == 240 => AddressClass::Reserved,
        _ => return None,
    })
}

/// An address block: `10.0.0.0/8`, `::1`, `fd00::/8` (a bare address is a single-address block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR` or `ADDR/PREFIX` (IPv6 without brackets).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("invalid address or CIDR block {s:?}");
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }

    /// Whether the block holds `ip`. An IPv4-mapped IPv6 address is compared as its IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (canonical(self.addr), ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; any other address unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// Turns host names into addresses. Answers are always under the address rules, except the ones for
/// which [`pinned`](Resolver::pinned) is true.
pub trait Resolver: Send + Sync {
    /// The addresses of `host` (a normalized ASCII name), in the order to try them.
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;

    /// Whether `addr`, answered by this resolver for `host`, was set explicitly by the caller and so
    /// is exempt from the address rules for connections to `host` (and only to `host`). Default:
    /// never.
    fn pinned(&self, _host: &str, _addr: IpAddr) -> bool {
        false
    }
}

/// The system resolver (`getaddrinfo` through `std::net::ToSocketAddrs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        Ok((host, port).to_socket_addrs()?.map(|s| s.ip()).collect())
    }
}

/// The test override: names mapped to fixed addresses, other names passed to a fallback resolver.
///
/// The rule: a mapped name resolves to exactly its mapped addresses (the fallback is not asked), and
/// those addresses are exempt from the address rules for connections to that name only. The same
/// address reached through another name, through the fallback, or as an IP literal is still under the
/// address rules. The name itself must still be allowed by the allowlist.
#[derive(Clone)]
pub struct OverrideResolver {
    map: HashMap<String, Vec<IpAddr>>,
    fallback: Arc<dyn Resolver>,
}

impl fmt::Debug for OverrideResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OverrideResolver")
            .field("map", &self.map)
            .finish_non_exhaustive()
    }
}

impl Default for OverrideResolver {
    fn default() -> Self {
        OverrideResolver::new(Arc::new(SystemResolver))
    }
}

impl OverrideResolver {
    /// An empty override in front of `fallback`.
    pub fn new(fallback: Arc<dyn Resolver>) -> Self {
        OverrideResolver {
            map: HashMap::new(),
            fallback,
        }
    }

    /// Maps `name` (normalized like a pattern) to `addr`; repeated calls add addresses.
    pub fn map(mut self, name: &str, addr: IpAddr) -> Result<Self, String> {
        let name = normalize_name(name)?;
        self.map.entry(name).or_default().push(addr);
        Ok(self)
    }
}

impl Resolver for OverrideResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        match self.map.get(host) {
            Some(a) => Ok(a.clone()),
            None => self.fallback.resolve(host, port),
        }
    }

    fn pinned(&self, host: &str, addr: IpAddr) -> bool {
        self.map.get(host).is_some_and(|a| a.contains(&addr)) || self.fallback.pinned(host, addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn v4_classes() {
        use AddressClass::*;
        for (a, want) in [
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.15.0.1", None),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("192.169.1.1", None),
            ("169.254.169.254", Some(LinkLocal)),
            ("169.254.0.1", Some(LinkLocal)),
            ("100.64.0.1", Some(Cgnat)),
            ("100.127.255.255", Some(Cgnat)),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("8.8.8.8", None),
            ("203.0.113.7", None),
        ] {
            assert_eq!(c(a), want, "{a}");
        }
    }

    #[test]
    fn v6_classes() {
        use AddressClass::*;
        for (a, want) in [
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(SiteLocal)),
            ("ff02::1", Some(Multicast)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("64:ff9b::a00:1", Some(Private)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:808:808::", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(c(a), want, "{a}");
        }
    }

    #[test]
    fn cidr_blocks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let b = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(b.contains(ip("10.255.1.2")));
        assert!(b.contains(ip("::ffff:10.0.0.1")));
        assert!(!b.contains(ip("11.0.0.1")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("1.2.3.4")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::2")));
        assert!(Cidr::parse("fd00::/8").unwrap().contains(ip("fd01::5")));
        assert!(!Cidr::parse("fd00::/8").unwrap().contains(ip("fe00::5")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
            "[::1]",
        ] {
            assert!(Cidr::parse(bad).unwrap_err().contains(bad));
        }
    }

    #[test]
    fn override_pins_only_its_own_answers() {
        struct Dns;
        impl Resolver for Dns {
            fn resolve(&self, _: &str, _: u16) -> io::Result<Vec<IpAddr>> {
                Ok(vec!["127.0.0.1".parse().unwrap()])
            }
        }
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let r = OverrideResolver::new(Arc::new(Dns))
            .map("Origin.Test.", lo)
            .unwrap();
        assert_eq!(r.resolve("origin.test", 1).unwrap(), vec![lo]);
        assert!(r.pinned("origin.test", lo));
        assert!(!r.pinned("origin.test", "127.0.0.2".parse().unwrap()));
        assert_eq!(r.resolve("other.test", 1).unwrap(), vec![lo]);
        assert!(!r.pinned("other.test", lo));
        assert!(OverrideResolver::default().map("127.1", lo).is_err());
    }
}
