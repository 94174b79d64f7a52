//! Host names and the allowlist patterns matched against them.
//!
//! Every host (from a pattern or from a request) is normalized the same way before it is compared:
//! IDNA (UTS #46) mapping to punycode, which also lowercases; one trailing dot removed; then only
//! letters, digits, `-` and `_` are accepted in labels of 1..=63 bytes, 253 bytes in all. A name whose
//! last label is numeric (`127.1`, `0x7f.1`, `2130706433`) is refused: resolvers read those as IPv4
//! addresses, so they are neither names nor literals.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A normalized request or pattern host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name in ASCII (punycode), lowercase, without a trailing dot.
    Name(String),
    /// An IP address given literally (IPv6 was written in brackets).
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

impl Host {
    /// Parses a host as it appears in an authority: a name, a dotted-quad IPv4 address, or an IPv6
    /// address in brackets.
    pub fn parse(s: &str) -> Result<Host, String> {
        if s.is_empty() {
            return Err("empty host".into());
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("unterminated '[' in host {s:?}"))?;
            let a: Ipv6Addr = inner
                .parse()
                .map_err(|_| format!("{inner:?} is not an IPv6 address"))?;
            return Ok(Host::Ip(IpAddr::V6(a)));
        }
        if s.contains(':') {
            return Err(format!("IPv6 addresses must be written in brackets: {s:?}"));
        }
        if let Ok(a) = s.parse::<Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(a)));
        }
        normalize_name(s).map(Host::Name)
    }
}

/// Normalizes a DNS name (see the module documentation).
pub fn normalize_name(s: &str) -> Result<String, String> {
    if s.len() > 1024 {
        return Err("host name too long".into());
    }
    if s.is_empty() {
        return Err("empty host name".into());
    }
    let ascii = idna::domain_to_ascii(s).map_err(|_| format!("invalid host name {s:?}"))?;
    let ascii = ascii.strip_suffix('.').unwrap_or(&ascii).to_string();
    if ascii.is_empty() || ascii.len() > 253 {
        return Err(format!("invalid host name length: {s:?}"));
    }
    for label in ascii.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("invalid label in host name {s:?}"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!("invalid character in host name {s:?}"));
        }
    }
    let last = ascii.rsplit('.').next().unwrap_or("");
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(format!(
            "{s:?} is neither a host name nor a dotted-quad IPv4 address"
        ));
    }
    Ok(ascii)
}

/// Parses a decimal port 1..=65535.
pub fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => None,
        Ok(p) => Some(p),
    }
}

/// Splits `host[:port]` / `[v6][:port]` into the host text and the optional port text.
pub fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or_else(|| format!("unterminated '[' in {s:?}"))?;
        let (h, rest) = s.split_at(end + 1);
        return match rest {
            "" => Ok((h, None)),
            r => match r.strip_prefix(':') {
                Some(p) => Ok((h, Some(p))),
                None => Err(format!("unexpected text after ']' in {s:?}")),
            },
        };
    }
    match s.rfind(':') {
        None => Ok((s, None)),
        Some(i) if s[..i].contains(':') => {
            Err(format!("IPv6 addresses must be written in brackets: {s:?}"))
        }
        Some(i) => Ok((&s[..i], Some(&s[i + 1..]))),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// `*`: any host name (never an IP literal).
    AnyName,
    /// `*.suffix`: any name ending in `.suffix`, at any depth, but not `suffix` itself.
    Subdomains(String),
    /// An exact name or an exact IP literal.
    Exact(Host),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    rule: HostRule,
    /// `None`: ports 80 and 443.
    port: Option<u16>,
}

/// A parsed list of network allowlist patterns (see [API.md, "Network allowlist"](https://github.com/nanobox-sandbox/nanobox/blob/main/docs/API.md#network-allowlist)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    patterns: Vec<Pattern>,
}

impl AllowList {
    /// Parses every pattern; the first invalid one is reported with its text.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<AllowList, String> {
        let patterns = patterns
            .iter()
            .map(|p| parse_pattern(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowList { patterns })
    }

    /// The patterns as they were written.
    pub fn patterns(&self) -> Vec<&str> {
        self.patterns.iter().map(|p| p.text.as_str()).collect()
    }

    /// Whether `host:port` is allowed; `Some(pattern)` names the first pattern that allows it.
    /// `host` is parsed and normalized like a request's host; an invalid host is never allowed.
    pub fn allows(&self, host: &str, port: u16) -> Option<&str> {
        let host = Host::parse(host).ok()?;
        self.allows_host(&host, port)
    }

    /// Like [`allows`](Self::allows) for an already normalized host.
    pub fn allows_host(&self, host: &Host, port: u16) -> Option<&str> {
        self.patterns
            .iter()
            .find(|p| {
                let port_ok = match p.port {
                    None => port == 80 || port == 443,
                    Some(q) => q == port,
                };
                port_ok
                    && match (&p.rule, host) {
                        (HostRule::AnyName, Host::Name(_)) => true,
                        (HostRule::Subdomains(suffix), Host::Name(n)) => {
                            n.len() > suffix.len() + 1
                                && n.ends_with(suffix.as_str())
                                && n.as_bytes()[n.len() - suffix.len() - 1] == b'.'
                        }
                        (HostRule::Exact(h), _) => h == host,
                        _ => false,
                    }
            })
            .map(|p| p.text.as_str())
    }
}

fn parse_pattern(text: &str) -> Result<Pattern, String> {
    let bad = |why: String| format!("invalid network pattern {text:?}: {why}");
    if text.is_empty() {
        return Err(bad("empty".into()));
    }
    if text.contains("://") || text.contains('/') {
        return Err(bad(
            "write a host, *.domain or host:port, without scheme or path".into(),
        ));
    }
    if text
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'@')
    {
        return Err(bad("whitespace, control character or '@'".into()));
    }
    let (host, port) = split_host_port(text).map_err(bad)?;
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p).ok_or_else(|| bad(format!("port {p:?} is not 1..=65535")))?),
    };
    let rule = if host == "*" {
        HostRule::AnyName
    } else if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(bad("'*' is allowed only as the whole first label".into()));
        }
        HostRule::Subdomains(normalize_name(suffix).map_err(bad)?)
    } else if host.contains('*') {
        return Err(bad("'*' is allowed only as the whole first label".into()));
    } else {
        HostRule::Exact(Host::parse(host).map_err(bad)?)
    };
    Ok(Pattern {
        text: text.to_string(),
        rule,
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> AllowList {
        AllowList::parse(p).unwrap()
    }

    #[test]
    fn exact_host_default_ports() {
        let l = list(&["pypi.org"]);
        assert_eq!(l.allows("pypi.org", 443), Some("pypi.org"));
        assert_eq!(l.allows("pypi.org", 80), Some("pypi.org"));
        assert_eq!(l.allows("pypi.org", 8080), None);
        assert_eq!(l.allows("www.pypi.org", 443), None);
        assert_eq!(l.allows("pypi.org.evil.com", 443), None);
        assert_eq!(l.allows("xpypi.org", 443), None);
        assert_eq!(l.allows("pypi.or", 443), None);
    }

    #[test]
    fn wildcard_any_depth_not_apex() {
        let l = list(&["*.example.com"]);
        assert!(l.allows("a.example.com", 443).is_some());
        assert!(l.allows("a.b.c.example.com", 80).is_some());
        assert!(l.allows("example.com", 443).is_none());
        assert!(l.allows("badexample.com", 443).is_none());
        assert!(l.allows("example.com.evil.org", 443).is_none());
        assert!(l.allows("a.example.com", 22).is_none());
    }

    #[test]
    fn case_and_trailing_dot() {
        let l = list(&["PyPI.Org.", "*.Files.Example.COM"]);
        assert!(l.allows("pypi.org", 443).is_some());
        assert!(l.allows("PYPI.ORG.", 443).is_some());
        assert!(l.allows("X.files.example.com.", 443).is_some());
        assert!(l.allows("pypi.org..", 443).is_none());
    }

    #[test]
    fn idn_in_punycode() {
        let l = list(&["bücher.example", "*.münchen.de"]);
        assert!(l.allows("xn--bcher-kva.example", 443).is_some());
        assert!(l.allows("BÜCHER.example", 443).is_some());
        assert!(l.allows("www.xn--mnchen-3ya.de", 443).is_some());
        assert!(l.allows("bucher.example", 443).is_none());
        let p = list(&["xn--bcher-kva.example"]);
        assert!(p.allows("bücher.example", 443).is_some());
    }

    #[test]
    fn explicit_ports() {
        let l = list(&["host.test:8443", "*.x.com:8443"]);
        assert!(l.allows("host.test", 8443).is_some());
        assert!(l.allows("host.test", 443).is_none());
        assert!(l.allows("host.test", 80).is_none());
        assert!(l.allows("a.x.com", 8443).is_some());
        assert!(l.allows("a.x.com", 443).is_none());
        assert!(l.allows("x.com", 8443).is_none());
    }

    #[test]
    fn ip_literals_only_when_listed() {
        let l = list(&["*", "203.0.113.7", "[2001:db8::1]:443", "[::1]:8080"]);
        assert!(l.allows("203.0.113.7", 443).is_some());
        assert!(
            l.allows("203.0.113.8", 443).is_none(),
            "'*' matches no IP literal"
        );
        assert!(l.allows("[2001:db8::1]", 443).is_some());
        assert!(l.allows("[2001:DB8:0::1]", 443).is_some());
        assert!(l.allows("[2001:db8::1]", 80).is_none());
        assert!(l.allows("[::1]", 8080).is_some());
        assert!(l.allows("[::2]", 443).is_none());
        // a name that a resolver would read as an IP is no name
        assert!(l.allows("127.1", 443).is_none());
        assert!(l.allows("2130706433", 443).is_none());
        assert!(l.allows("0x7f.0.0.1", 443).is_none());
    }

    #[test]
    fn star_alone_is_any_name() {
        let l = list(&["*"]);
        assert_eq!(l.allows("anything.example", 443), Some("*"));
        assert!(l.allows("localhost", 80).is_some());
        assert!(l.allows("anything.example", 25).is_none());
        assert!(l.allows("10.0.0.1", 443).is_none());
        let l = list(&["*:25"]);
        assert!(l.allows("mail.example", 25).is_some());
        assert!(l.allows("mail.example", 443).is_none());
    }

    #[test]
    fn first_matching_pattern_is_named() {
        let l = list(&["a.test", "*.test"]);
        assert_eq!(l.allows("a.test", 443), Some("a.test"));
        assert_eq!(l.allows("b.a.test", 443), Some("*.test"));
        assert_eq!(l.patterns(), vec!["a.test", "*.test"]);
        assert_eq!(AllowList::default().allows("a.test", 443), None);
    }

    #[test]
    fn invalid_patterns_are_named() {
        for p in [
            "",
            " ",
            "http://a.com",
            "a.com/path",
            "a.com:0",
            "a.com:65536",
            "a.com:",
            "a.com:x",
            "a.com:+80",
            "*a.com",
            "a.*.com",
            "*.*.com",
            "*.",
            "**",
            "a..com",
            "-.com:1:2",
            "::1",
            "[::1",
            "[::1]x",
            "[1.2.3.4]",
            "user@a.com",
            "a b.com",
            "a\nb.com",
            "127.1",
            "a!.com",
            &"a".repeat(64),
        ] {
            let err = AllowList::parse(&[p]).expect_err(p);
            assert!(err.contains(&format!("{p:?}")), "{err} does not name {p:?}");
        }
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Host::parse("[::ffff:1.2.3.4]").unwrap(),
            Host::Ip("::ffff:1.2.3.4".parse().unwrap())
        );
        assert_eq!(Host::parse("A.b.").unwrap(), Host::Name("a.b".into()));
        assert!(Host::parse("").is_err());
        assert!(Host::parse(".").is_err());
        assert!(Host::parse("a b").is_err());
        assert!(Host::parse("a\r\nb").is_err());
        assert_eq!(Host::Name("a.b".into()).to_string(), "a.b");
        assert_eq!(Host::parse("[::1]").unwrap().to_string(), "[::1]");
    }
}
