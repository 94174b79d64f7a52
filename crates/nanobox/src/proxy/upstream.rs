//! The upstream proxy the filtering proxy chains through (`http://[user:pass@]host[:port]`).

use std::fmt;

use super::pattern::{parse_port, split_host_port, Host};

/// An upstream HTTP proxy.
#[derive(Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its host (a name is resolved with the system resolver; the caller chose it, so the address
    /// rules do not apply to it).
    pub host: String,
    /// Its port (default 80).
    pub port: u16,
    /// `Proxy-Authorization` value (`Basic base64(user:pass)`), from the URL's userinfo.
    pub authorization: Option<String>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Upstream {
    /// Parses `http://[user[:pass]@]host[:port][/]`; userinfo may be percent-encoded.
    pub fn parse(url: &str) -> Result<Upstream, String> {
        let bad = |why: &str| format!("invalid upstream proxy URL: {why}");
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some(_) => return Err(bad("only http:// upstream proxies are supported")),
            None => return Err(bad("expected http://host:port")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) || rest.bytes().any(|b| b.is_ascii_control() || b == b' ')
        {
            return Err(bad("expected http://host:port without a path"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).map_err(|e| bad(&e))?;
        let port = match port {
            None => 80,
            Some(p) => parse_port(p).ok_or_else(|| bad("invalid port"))?,
        };
        let host = match Host::parse(host).map_err(|e| bad(&e))? {
            Host::Name(n) => n,
            Host::Ip(ip) => ip.to_string(),
        };
        let authorization = match userinfo {
            None => None,
            Some(u) => {
                let decoded = percent_decode(u).ok_or_else(|| bad("invalid percent-encoding"))?;
                Some(format!("Basic {}", base64(&decoded)))
            }
        };
        Ok(Upstream {
            host,
            port,
            authorization,
        })
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn urls() {
        let u = Upstream::parse("http://proxy.corp:3128").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.authorization),
            ("proxy.corp", 3128, None)
        );
        let u = Upstream::parse("HTTP://us%40er:p%3Aw@127.0.0.1:8080/").unwrap();
        assert_eq!(u.host, "127.0.0.1");
        assert_eq!(
            u.authorization.as_deref(),
            Some(format!("Basic {}", base64(b"us@er:p:w")).as_str())
        );
        assert!(!format!("{u:?}").contains(&base64(b"us@er:p:w")));
        assert_eq!(Upstream::parse("http://[::1]:1").unwrap().host, "::1");
        assert_eq!(Upstream::parse("http://p.corp").unwrap().port, 80);
        for bad in [
            "p.corp:3128",
            "https://p:1",
            "socks5://p:1",
            "http://p:0",
            "http://p:1/x",
            "http://",
            "http://u:%zz@p:1",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }
}
