//! Address rules: which resolved addresses the proxy may connect to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused unless explicitly allowed. `None` from [`classify`] means public.
///
/// The classes cover every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries
/// whose "Globally Reachable" is False or N/A, multicast, the deprecated site-local `fec0::/10`,
/// and every other IPv6 address outside the global unicast range `2000::/3`. The whole of
/// `192.0.0.0/24` and `2001::/23` is refused, including the few anycast blocks in them that the
/// registries mark globally reachable (`192.0.0.9`, `192.0.0.10`, `2001:1::1` to `2001:1::3`, AMT
/// `2001:3::/32`, AS112 `2001:4:112::/48`, ORCHIDv2 `2001:20::/28`, DETs `2001:30::/28`): no HTTP
/// service lives there. Any of them can be opened with
/// [`ProxyConfig::allow_addresses`](super::ProxyConfig::allow_addresses) (the builder's
/// `allow_address`).
///
/// Serialized in snake_case (`"discard_only"`); [`Display`](fmt::Display) names the class and its
/// blocks for a person (`"benchmarking (198.18.0.0/15, 2001:2::/48)"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AddressClass {
    /// "This network" 0.0.0.0/8, `::`.
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// 169.254.0.0/16 (cloud metadata 169.254.169.254 included), fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10 (RFC 6598 shared address space).
    Cgnat,
    /// fc00::/7.
    UniqueLocal,
    /// fec0::/10 (deprecated site-local).
    SiteLocal,
    /// 224.0.0.0/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 240.0.0.0/4 (reserved for future use), and IPv6 outside `2000::/3` that no other class
    /// covers (reserved by the IETF; refused so that a later assignment is not public by default).
    Reserved,
    /// IETF protocol assignments: all of 192.0.0.0/24 (cloud metadata 192.0.0.192 included) and
    /// 2001::/23, apart from the more specific classes inside the latter.
    ProtocolAssignments,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 (TEST-NET-1..3), 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15, 2001:2::/48.
    Benchmarking,
    /// 192.88.99.0/24 (the former 6to4 relay anycast), 2001:10::/28 (the former ORCHID).
    Deprecated,
    /// 64:ff9b:1::/48, the local-use IPv4/IPv6 translation prefix. (The well-known NAT64 prefix
    /// 64:ff9b::/96 is judged by the IPv4 address it embeds.)
    Translation,
    /// 100::/64, the discard-only prefix.
    DiscardOnly,
    /// 100:0:0:1::/64, the dummy IPv6 prefix.
    Dummy,
    /// 2001::/32, Teredo tunnels (which lead to an IPv4 host this check cannot see).
    Teredo,
    /// 5f00::/16, segment-routing (SRv6) segment identifiers.
    SegmentRouting,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Unspecified => "unspecified (0.0.0.0/8, ::)",
            // No blocks: "127.0.0.1 is a loopback address" is what everyone expects to read (and
            // what the proxy's tests match).
            AddressClass::Loopback => "loopback (127.0.0.0/8, ::1)",
            AddressClass::Private => "private (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
            AddressClass::LinkLocal => "link-local (169.254.0.0/16, fe80::/10)",
            AddressClass::Cgnat => "carrier-grade NAT (100.64.0.0/10)",
            AddressClass::UniqueLocal => "unique-local (fc00::/7)",
            AddressClass::SiteLocal => "site-local (fec0::/10)",
            AddressClass::Multicast => "multicast (224.0.0.0/4, ff00::/8)",
            AddressClass::Broadcast => "broadcast (255.255.255.255)",
            AddressClass::Reserved => "reserved (240.0.0.0/4, IPv6 outside 2000::/3)",
            AddressClass::ProtocolAssignments => {
                "special-purpose (IETF protocol assignments 192.0.0.0/24, 2001::/23)"
            }
            AddressClass::Documentation => {
                "documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, \
                 3fff::/20)"
            }
            AddressClass::Benchmarking => "benchmarking (198.18.0.0/15, 2001:2::/48)",
            AddressClass::Deprecated => {
                "deprecated (6to4 relay anycast 192.88.99.0/24, ORCHID 2001:10::/28)"
            }
            AddressClass::Translation => "local-use IPv4/IPv6 translation (64:ff9b:1::/48)",
            AddressClass::DiscardOnly => "discard-only (100::/64)",
            AddressClass::Dummy => "dummy-prefix (100:0:0:1::/64)",
            AddressClass::Teredo => "Teredo (2001::/32)",
            AddressClass::SegmentRouting => "segment-routing SID (5f00::/16)",
        })
    }
}

/// The refused IPv4 blocks: (network, prefix length, class). The most specific block holding an
/// address gives its class.
///
/// Every block of the IANA IPv4 Special-Purpose Address Registry
/// (<https://www.iana.org/assignments/iana-ipv4-special-registry>) whose "Globally Reachable" is
/// False or N/A, the whole of 192.0.0.0/24, and multicast. The registry's globally reachable
/// blocks outside 192.0.0.0/24 stay public: AS112-v4 192.31.196.0/24 (RFC 7535), AMT
/// 192.52.193.0/24 (RFC 7450), Direct Delegation AS112 192.175.48.0/24 (RFC 7534). Checked
/// against the registry as of 2025.
const V4_BLOCKS: &[(Ipv4Addr, u8, AddressClass)] = {
    use AddressClass::*;
    &[
        // "This network", RFC 791 section 3.2; 0.0.0.0/32 "this host", RFC 1122 section 3.2.1.3.
        (Ipv4Addr::new(0, 0, 0, 0), 8, Unspecified),
        // Private-Use, RFC 1918.
        (Ipv4Addr::new(10, 0, 0, 0), 8, Private),
        // Shared Address Space, RFC 6598.
        (Ipv4Addr::new(100, 64, 0, 0), 10, Cgnat),
        // Loopback, RFC 1122 section 3.2.1.3.
        (Ipv4Addr::new(127, 0, 0, 0), 8, Loopback),
        // Link Local, RFC 3927.
        (Ipv4Addr::new(169, 254, 0, 0), 16, LinkLocal),
        // Private-Use, RFC 1918.
        (Ipv4Addr::new(172, 16, 0, 0), 12, Private),
        // IETF Protocol Assignments, RFC 6890 section 2.1. Inside it: IPv4 Service Continuity
        // 192.0.0.0/29 (RFC 7335), dummy address 192.0.0.8 (RFC 7600), NAT64/DNS64 discovery
        // 192.0.0.170-171 (RFC 8880, RFC 7050), all not globally reachable; and the globally
        // reachable PCP anycast 192.0.0.9 (RFC 7723) and TURN anycast 192.0.0.10 (RFC 8155),
        // refused too.
        (Ipv4Addr::new(192, 0, 0, 0), 24, ProtocolAssignments),
        // Documentation (TEST-NET-1), RFC 5737.
        (Ipv4Addr::new(192, 0, 2, 0), 24, Documentation),
        // Deprecated (6to4 Relay Anycast), RFC 7526 (was RFC 3068); Globally Reachable N/A.
        // 192.88.99.2, the 6a44-relay anycast address (RFC 6751), is inside.
        (Ipv4Addr::new(192, 88, 99, 0), 24, Deprecated),
        // Private-Use, RFC 1918.
        (Ipv4Addr::new(192, 168, 0, 0), 16, Private),
        // Benchmarking, RFC 2544.
        (Ipv4Addr::new(198, 18, 0, 0), 15, Benchmarking),
        // Documentation (TEST-NET-2), RFC 5737.
        (Ipv4Addr::new(198, 51, 100, 0), 24, Documentation),
        // Documentation (TEST-NET-3), RFC 5737.
        (Ipv4Addr::new(203, 0, 113, 0), 24, Documentation),
        // Multicast, RFC 5771 (the IPv4 Multicast Address Space registry, not the special-purpose
        // one).
        (Ipv4Addr::new(224, 0, 0, 0), 4, Multicast),
        // Reserved, RFC 1112 section 4.
        (Ipv4Addr::new(240, 0, 0, 0), 4, Reserved),
        // Limited Broadcast, RFC 8190, RFC 919 section 7.
        (Ipv4Addr::new(255, 255, 255, 255), 32, Broadcast),
    ]
};

/// The refused IPv6 blocks: (network, prefix length, class). The most specific block holding an
/// address gives its class; an address in none of them is refused as [`AddressClass::Reserved`]
/// when it is outside `2000::/3`.
///
/// Every block of the IANA IPv6 Special-Purpose Address Registry
/// (<https://www.iana.org/assignments/iana-ipv6-special-registry>) whose "Globally Reachable" is
/// False or N/A, the whole of 2001::/23, the deprecated site-local prefix and multicast. Not here,
/// because [`embedded_v4`] judges them by the IPv4 address they embed: IPv4-mapped ::ffff:0:0/96
/// (RFC 4291), IPv4-compatible ::/96 (RFC 4291 section 2.5.5.1, deprecated), the well-known
/// NAT64 prefix 64:ff9b::/96 (RFC 6052, globally reachable) and 6to4 2002::/16 (RFC 3056,
/// Globally Reachable N/A). The registry's one globally reachable block outside 2001::/23 stays
/// public: Direct Delegation AS112 2620:4f:8000::/48 (RFC 7534). Checked against the registry as
/// of 2025 (its newest row: the dummy prefix, RFC 9780).
const V6_BLOCKS: &[(Ipv6Addr, u8, AddressClass)] = {
    use AddressClass::*;
    &[
        // Unspecified Address, RFC 4291.
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 128, Unspecified),
        // Loopback Address, RFC 4291.
        (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128, Loopback),
        // IPv4-IPv6 Translation, local use, RFC 8215.
        (
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
            48,
            Translation,
        ),
        // Discard-Only Address Block, RFC 6666.
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, DiscardOnly),
        // Dummy IPv6 Prefix, RFC 9780.
        (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, Dummy),
        // IETF Protocol Assignments, RFC 2928. Globally reachable inside it, refused too: PCP
        // anycast 2001:1::1 (RFC 7723), TURN anycast 2001:1::2 (RFC 8155), DNS-SD SRP anycast
        // 2001:1::3 (RFC 9665), AMT 2001:3::/32 (RFC 7450), AS112-v6 2001:4:112::/48 (RFC 7535),
        // ORCHIDv2 2001:20::/28 (RFC 7343), Drone Remote ID DETs 2001:30::/28 (RFC 9374).
        (
            Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
            23,
            ProtocolAssignments,
        ),
        // TEREDO, RFC 4380, RFC 8190; Globally Reachable N/A.
        (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, Teredo),
        // Benchmarking, RFC 5180 (and its erratum 1752).
        (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, Benchmarking),
        // Deprecated (previously ORCHID), RFC 4843; Globally Reachable N/A.
        (
            Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
            28,
            Deprecated,
        ),
        // Documentation, RFC 3849.
        (
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
            32,
            Documentation,
        ),
        // Documentation, RFC 9637.
        (
            Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
            20,
            Documentation,
        ),
        // Segment Routing (SRv6) SIDs, RFC 9602.
        (
            Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
            16,
            SegmentRouting,
        ),
        // Unique-Local, RFC 4193, RFC 8190.
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, UniqueLocal),
        // Link-Local Unicast, RFC 4291.
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, LinkLocal),
        // Site-local, deprecated by RFC 3879 (not in the special-purpose registry).
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, SiteLocal),
        // Multicast, RFC 4291 section 2.7 (the IPv6 Address Space registry).
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, Multicast),
    ]
};

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

/// The class that makes `addr` refused by default, or `None` for a public address. An IPv6 address
/// that embeds an IPv4 address (IPv4-mapped `::ffff:0:0/96`, IPv4-compatible `::/96` but for `::`
/// and `::1`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by that IPv4 address.
pub fn classify(addr: IpAddr) -> Option<AddressClass> {
    match addr {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => {
            if let Some(v4) = embedded_v4(&a) {
                return classify_v4(v4);
            }
            let bits = u128::from(a);
            most_specific(
                V6_BLOCKS.iter().map(|&(n, len, c)| (u128::from(n), len, c)),
                bits,
            )
            .or_else(|| {
                // Fail closed: outside the global unicast range 2000::/3 (RFC 4291 section
                // 2.4) everything is reserved by the IETF or listed above.
                (bits >> 125 != 0b001).then_some(AddressClass::Reserved)
            })
        }
    }
}

fn classify_v4(a: Ipv4Addr) -> Option<AddressClass> {
    let bits = u128::from(u32::from(a)) << 96;
    most_specific(
        V4_BLOCKS
            .iter()
            .map(|&(n, len, c)| (u128::from(u32::from(n)) << 96, len, c)),
        bits,
    )
}

/// The class of the longest block holding `bits`, for blocks given as (network bits, left
/// aligned in a `u128`; prefix length; class).
fn most_specific(
    blocks: impl Iterator<Item = (u128, u8, AddressClass)>,
    bits: u128,
) -> Option<AddressClass> {
    blocks
        .filter(|&(net, len, _)| bits & prefix_mask(len) == net)
        .max_by_key(|&(_, len, _)| len)
        .map(|(_, _, class)| class)
}

/// The first `len` bits set (`len` at most 128).
fn prefix_mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn c(s: &str) -> Option<AddressClass> {
        classify(s.parse().unwrap())
    }

    /// The refused IPv4 blocks, written out here independently of `V4_BLOCKS`.
    const V4_EXPECTED: &[(&str, AddressClass)] = &[
        ("0.0.0.0/8", Unspecified),
        ("10.0.0.0/8", Private),
        ("100.64.0.0/10", Cgnat),
        ("127.0.0.0/8", Loopback),
        ("169.254.0.0/16", LinkLocal),
        ("172.16.0.0/12", Private),
        ("192.0.0.0/24", ProtocolAssignments),
        ("192.0.2.0/24", Documentation),
        ("192.88.99.0/24", Deprecated),
        ("192.168.0.0/16", Private),
        ("198.18.0.0/15", Benchmarking),
        ("198.51.100.0/24", Documentation),
        ("203.0.113.0/24", Documentation),
        ("224.0.0.0/4", Multicast),
        ("240.0.0.0/4", Reserved),
        ("255.255.255.255/32", Broadcast),
    ];

    /// The refused IPv6 blocks (besides the embedded-IPv4 forms and the rest outside 2000::/3),
    /// written out here independently of `V6_BLOCKS`.
    const V6_EXPECTED: &[(&str, AddressClass)] = &[
        ("::/128", Unspecified),
        ("::1/128", Loopback),
        ("64:ff9b:1::/48", Translation),
        ("100::/64", DiscardOnly),
        ("100:0:0:1::/64", Dummy),
        ("2001::/23", ProtocolAssignments),
        ("2001::/32", Teredo),
        ("2001:2::/48", Benchmarking),
        ("2001:10::/28", Deprecated),
        ("2001:db8::/32", Documentation),
        ("3fff::/20", Documentation),
        ("5f00::/16", SegmentRouting),
        ("fc00::/7", UniqueLocal),
        ("fe80::/10", LinkLocal),
        ("fec0::/10", SiteLocal),
        ("ff00::/8", Multicast),
    ];

    /// `(first, last)` of an IPv4 block, as integers.
    fn range_v4(block: &str) -> (u32, u32) {
        let (a, len) = block.split_once('/').unwrap();
        let a = u32::from(a.parse::<Ipv4Addr>().unwrap());
        let host = u32::MAX.checked_shr(len.parse().unwrap()).unwrap_or(0);
        assert_eq!(a & host, 0, "{block} has host bits set");
        (a, a | host)
    }

    fn range_v6(block: &str) -> (u128, u128) {
        let (a, len) = block.split_once('/').unwrap();
        let a = u128::from(a.parse::<Ipv6Addr>().unwrap());
        let host = u128::MAX.checked_shr(len.parse().unwrap()).unwrap_or(0);
        assert_eq!(a & host, 0, "{block} has host bits set");
        (a, a | host)
    }

    /// The expected class of an IPv4 address: the narrowest expected block holding it.
    fn expected_v4(a: u32) -> Option<AddressClass> {
        V4_EXPECTED
            .iter()
            .map(|&(b, class)| (range_v4(b), class))
            .filter(|&((lo, hi), _)| (lo..=hi).contains(&a))
            .min_by_key(|&((lo, hi), _)| hi - lo)
            .map(|(_, class)| class)
    }

    /// The expected class of an IPv6 address: the narrowest expected block holding it, else the
    /// embedded IPv4 address's, else reserved outside 2000::/3.
    fn expected_v6(a: u128) -> Option<AddressClass> {
        let listed = V6_EXPECTED
            .iter()
            .map(|&(b, class)| (range_v6(b), class))
            .filter(|&((lo, hi), _)| (lo..=hi).contains(&a))
            .min_by_key(|&((lo, hi), _)| hi - lo)
            .map(|(_, class)| class);
        if listed.is_some() {
            return listed;
        }
        if let Some(v4) = embedded_v4(&Ipv6Addr::from(a)) {
            return expected_v4(v4.into());
        }
        let (lo, hi) = range_v6("2000::/3");
        (!(lo..=hi).contains(&a)).then_some(Reserved)
    }

    #[test]
    fn every_v4_block_is_refused_edge_to_edge_and_its_neighbours_are_not() {
        for &(block, class) in V4_EXPECTED {
            let (lo, hi) = range_v4(block);
            for a in [lo, hi] {
                let got = classify(IpAddr::V4(a.into()));
                assert!(got.is_some(), "{} in {block}", Ipv4Addr::from(a));
                assert_eq!(got, expected_v4(a), "{} in {block}", Ipv4Addr::from(a));
            }
            assert_eq!(
                c(&Ipv4Addr::from(lo).to_string()),
                Some(class),
                "{block} first"
            );
            for a in [lo.checked_sub(1), hi.checked_add(1)].into_iter().flatten() {
                let got = classify(IpAddr::V4(a.into()));
                assert_eq!(got, expected_v4(a), "{} next to {block}", Ipv4Addr::from(a));
            }
        }
        // Neighbours that are in no block are public (the check above compares with the
        // expectation; this pins that the expectation says so).
        for a in [
            "1.0.0.0",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "191.255.255.255",
            "192.0.1.0",
            "192.0.1.255",
            "192.0.3.0",
            "192.88.98.255",
            "192.88.100.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "198.51.101.0",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
        ] {
            assert_eq!(c(a), None, "{a}");
        }
    }

    #[test]
    fn every_v6_block_is_refused_edge_to_edge() {
        for &(block, class) in V6_EXPECTED {
            let (lo, hi) = range_v6(block);
            for a in [lo, hi] {
                let got = classify(IpAddr::V6(a.into()));
                assert!(got.is_some(), "{} in {block}", Ipv6Addr::from(a));
                assert_eq!(got, expected_v6(a), "{} in {block}", Ipv6Addr::from(a));
            }
            for a in [lo.checked_sub(1), hi.checked_add(1)].into_iter().flatten() {
                let got = classify(IpAddr::V6(a.into()));
                assert_eq!(got, expected_v6(a), "{} next to {block}", Ipv6Addr::from(a));
            }
            if block != "2001::/23" {
                assert_eq!(
                    c(&Ipv6Addr::from(lo).to_string()),
                    Some(class),
                    "{block} first"
                );
            }
        }
        for (a, want) in [
            ("2001::", Some(Teredo)),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Some(Teredo)),
            ("2001:1::", Some(ProtocolAssignments)),
            (
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some(ProtocolAssignments),
            ),
            ("2001:2::1", Some(Benchmarking)),
            ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Some(Benchmarking)),
            ("2001:2:1::", Some(ProtocolAssignments)),
            ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Some(Deprecated)),
            // just outside the blocks inside 2000::/3
            ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:200::", None),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:db9::", None),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("3fff:1000::", None),
            // just outside the ones outside 2000::/3: reserved
            ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("5f01::", Some(Reserved)),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("fe00::", Some(Reserved)),
            ("fec0::", Some(SiteLocal)),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(SiteLocal)),
        ] {
            assert_eq!(c(a), want, "{a}");
        }
    }

    #[test]
    fn v6_outside_global_unicast_fails_closed() {
        for a in [
            "1::",
            "400::1",
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "4000::1",
            "6000::",
            "8000::1",
            "e000::1",
            "fe00::1",
            "64:ff9b:0:1::1",
            "64:ff9b:2::",
            "100:0:0:2::",
            "::1:0:0:1",
            "::fffe:0:1",
        ] {
            assert_eq!(c(a), Some(Reserved), "{a}");
        }
        // the edges of 2000::/3
        assert_eq!(c("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), Some(Reserved));
        assert_eq!(c("2000::"), None);
        assert_eq!(c("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), None);
        assert_eq!(c("4000::"), Some(Reserved));
    }

    #[test]
    fn embedded_v4_is_judged_by_the_v4_address() {
        for (a, want) in [
            ("64:ff9b::c000:c0", Some(ProtocolAssignments)), // 192.0.0.192, cloud metadata
            ("64:ff9b::192.0.0.9", Some(ProtocolAssignments)),
            ("64:ff9b::a00:1", Some(Private)),
            ("64:ff9b::808:808", None),
            ("64:ff9b::", Some(Unspecified)),
            ("64:ff9b::ffff:ffff", Some(Broadcast)),
            ("2002:c612:0001::", Some(Benchmarking)), // 198.18.0.1
            ("2002:c613:ffff::", Some(Benchmarking)), // 198.19.255.255
            ("2002:c614::", None),                    // 198.20.0.0
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:808:808::", None),
            ("2002::", Some(Unspecified)),
            ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Broadcast)),
            ("::ffff:198.51.100.1", Some(Documentation)),
            ("::ffff:192.0.0.192", Some(ProtocolAssignments)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:255.255.255.255", Some(Broadcast)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::0.0.0.2", Some(Unspecified)),
            ("::203.0.113.1", Some(Documentation)),
            ("::8.8.8.8", None),
            ("::255.255.255.255", Some(Broadcast)),
        ] {
            assert_eq!(c(a), want, "{a}");
        }
    }

    #[test]
    fn globally_reachable_inside_the_protocol_blocks_is_refused_too() {
        for a in [
            "192.0.0.0",
            "192.0.0.8",
            "192.0.0.9",
            "192.0.0.10",
            "192.0.0.170",
            "192.0.0.171",
            "192.0.0.192",
            "192.0.0.255",
            "2001:1::1",
            "2001:1::2",
            "2001:1::3",
            "2001:3::",
            "2001:3:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:4:112::",
            "2001:4:112:ffff:ffff:ffff:ffff:ffff",
            "2001:20::1",
            "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff",
            "2001:30::1",
            "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(c(a), Some(ProtocolAssignments), "{a}");
        }
        assert_eq!(c("192.88.99.2"), Some(Deprecated)); // 6a44 relay anycast
    }

    #[test]
    fn public_addresses_and_the_public_special_blocks_are_public() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "9.9.9.9",
            "2606:4700::1111",
            "2a00:1450::1",
            "2001:4860:4860::8888",
            // globally reachable registry blocks
            "192.31.196.0",
            "192.31.196.255",
            "192.52.193.0",
            "192.52.193.255",
            "192.175.48.0",
            "192.175.48.255",
            "2620:4f:8000::",
            "2620:4f:8000:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert_eq!(c(a), None, "{a}");
        }
    }

    #[test]
    fn tables_are_well_formed_and_match_the_expectations() {
        for &(net, len, _) in V4_BLOCKS {
            assert!(len <= 32);
            assert_eq!(
                u32::from(net) & !(u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)),
                0,
                "{net}/{len}"
            );
        }
        for &(net, len, _) in V6_BLOCKS {
            assert!(len <= 128);
            assert_eq!(u128::from(net) & !prefix_mask(len), 0, "{net}/{len}");
        }
        let v4: Vec<(String, AddressClass)> = V4_BLOCKS
            .iter()
            .map(|&(n, l, c)| (format!("{n}/{l}"), c))
            .collect();
        let want: Vec<(String, AddressClass)> = V4_EXPECTED
            .iter()
            .map(|&(b, c)| (b.to_string(), c))
            .collect();
        assert_eq!(v4, want);
        let v6: Vec<(String, AddressClass)> = V6_BLOCKS
            .iter()
            .map(|&(n, l, c)| (format!("{n}/{l}"), c))
            .collect();
        let want: Vec<(String, AddressClass)> = V6_EXPECTED
            .iter()
            .map(|&(b, c)| (b.to_string(), c))
            .collect();
        assert_eq!(v6, want);
    }

    #[test]
    fn classes_name_themselves_and_their_blocks() {
        let all = [
            (Unspecified, "unspecified", "unspecified (0.0.0.0/8, ::)"),
            (Loopback, "loopback", "loopback (127.0.0.0/8, ::1)"),
            (
                Private,
                "private",
                "private (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)",
            ),
            (
                LinkLocal,
                "link_local",
                "link-local (169.254.0.0/16, fe80::/10)",
            ),
            (Cgnat, "cgnat", "carrier-grade NAT (100.64.0.0/10)"),
            (UniqueLocal, "unique_local", "unique-local (fc00::/7)"),
            (SiteLocal, "site_local", "site-local (fec0::/10)"),
            (Multicast, "multicast", "multicast (224.0.0.0/4, ff00::/8)"),
            (Broadcast, "broadcast", "broadcast (255.255.255.255)"),
            (
                Reserved,
                "reserved",
                "reserved (240.0.0.0/4, IPv6 outside 2000::/3)",
            ),
            (
                ProtocolAssignments,
                "protocol_assignments",
                "special-purpose (IETF protocol assignments 192.0.0.0/24, 2001::/23)",
            ),
            (
                Documentation,
                "documentation",
                "documentation (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, \
                 3fff::/20)",
            ),
            (
                Benchmarking,
                "benchmarking",
                "benchmarking (198.18.0.0/15, 2001:2::/48)",
            ),
            (
                Deprecated,
                "deprecated",
                "deprecated (6to4 relay anycast 192.88.99.0/24, ORCHID 2001:10::/28)",
            ),
            (
                Translation,
                "translation",
                "local-use IPv4/IPv6 translation (64:ff9b:1::/48)",
            ),
            (DiscardOnly, "discard_only", "discard-only (100::/64)"),
            (Dummy, "dummy", "dummy-prefix (100:0:0:1::/64)"),
            (Teredo, "teredo", "Teredo (2001::/32)"),
            (
                SegmentRouting,
                "segment_routing",
                "segment-routing SID (5f00::/16)",
            ),
        ];
        for (class, serialized, shown) in all {
            assert_eq!(
                serde_json::to_string(&class).unwrap(),
                format!("\"{serialized}\"")
            );
            assert_eq!(class.to_string(), shown);
        }
        // every class the tables use is listed above, and every block is named in its Display
        for &(net, len, class) in V4_BLOCKS {
            assert!(all.iter().any(|&(c, ..)| c == class));
            let shown = class.to_string();
            let named = [format!("{net}/{len}"), net.to_string(), "RFC 1918".into()];
            assert!(
                named.iter().any(|n| shown.contains(n.as_str())),
                "{shown} does not name {net}/{len}"
            );
        }
        for &(net, len, class) in V6_BLOCKS {
            assert!(all.iter().any(|&(c, ..)| c == class));
            let shown = class.to_string();
            let named = [format!("{net}/{len}"), net.to_string()];
            assert!(
                named.iter().any(|n| shown.contains(n.as_str())),
                "{shown} does not name {net}/{len}"
            );
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
}
