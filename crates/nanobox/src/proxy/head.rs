//! The request-head parser: bounded, strict, and allocation-bounded by its input.
//!
//! Accepted: `CONNECT host:port HTTP/1.x` (authority-form, port required) and absolute-form
//! `METHOD http://host[:port][/path][?query] HTTP/1.x`. Lines end in CRLF; header names are tokens;
//! values hold no control character but HTAB; obsolete line folding, a bare CR or LF, NUL, userinfo in
//! the URL, `https://` absolute-form, conflicting `Content-Length`s, `Content-Length` together with
//! `Transfer-Encoding`, and any transfer coding but `chunked` are refused (400).

use super::pattern::{parse_port, split_host_port, Host};

/// Default bound on a request head, request line and headers included.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Default bound on the number of header lines.
pub const MAX_HEADER_LINES: usize = 100;

/// What the request asks the proxy to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A tunnel (`CONNECT`).
    Connect,
    /// A plain-HTTP request to forward; `path` is the origin-form target (`/` at least).
    Forward {
        /// The origin-form request target.
        path: String,
    },
}

/// How the request body is delimited (plain-HTTP requests only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method, as sent.
    pub method: String,
    /// The target host, normalized.
    pub host: Host,
    /// The target port (80 when an `http://` URL names none).
    pub port: u16,
    /// The authority as the client wrote it (for the `Host` header of a forwarded request).
    pub authority: String,
    /// Tunnel or forward.
    pub target: Target,
    /// `HTTP/1.0` → 0, `HTTP/1.1` → 1.
    pub minor_version: u8,
    /// The headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body framing.
    pub body: Body,
}

/// Why a head was refused (all of these answer 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadError {
    /// No end of head within the byte bound.
    TooLarge(usize),
    /// More header lines than the bound.
    TooManyHeaders(usize),
    /// Anything else; the text says what.
    Malformed(String),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::TooLarge(n) => write!(f, "request head larger than {n} bytes"),
            HeadError::TooManyHeaders(n) => write!(f, "more than {n} header lines"),
            HeadError::Malformed(m) => write!(f, "malformed request: {m}"),
        }
    }
}

/// Whether `b`, the first bytes a client sent, can no longer become a request line (a method
/// token of at most 32 bytes, then a space): then it is not HTTP, whatever follows.
pub fn cannot_start_a_request(b: &[u8]) -> bool {
    for (i, &c) in b.iter().enumerate() {
        if c == b' ' {
            return i == 0;
        }
        if !is_tchar(c) || i >= 32 {
            return true;
        }
    }
    false
}

/// The length of the head in `buf` (through the blank line), if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn bad(m: impl Into<String>) -> HeadError {
    HeadError::Malformed(m.into())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a complete proxy request head (`buf` must end with the blank line; see [`head_end`]).
pub fn parse_request_head(buf: &[u8], max_lines: usize) -> Result<RequestHead, HeadError> {
    parse_head(buf, max_lines, Form::Proxy)
}

/// A plain-HTTP request sent inside a `CONNECT` tunnel, and whether its `Host` names a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunneledRequest {
    /// The request; `host`, `port` and `authority` are those of its `Host` header (port 80 when it
    /// names none), `target` is [`Target::Forward`].
    pub head: RequestHead,
    /// Whether the `Host` header named a port.
    pub explicit_port: bool,
}

/// Parses a complete head of a request the client sent to the origin inside a tunnel: origin-form
/// (`GET /path HTTP/1.1`), `OPTIONS *`, or absolute-form `http://` (whose authority must then equal
/// the `Host` header's). Exactly one `Host` header is required: it is what the origin reads.
pub fn parse_tunneled_head(buf: &[u8], max_lines: usize) -> Result<TunneledRequest, HeadError> {
    let head = parse_head(buf, max_lines, Form::Origin)?;
    let hosts: Vec<&str> = head
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_str())
        .collect();
    let [value] = hosts[..] else {
        return Err(bad(
            "a request inside a tunnel needs exactly one Host header",
        ));
    };
    let value = value.to_string();
    let (host_text, port_text) = split_host_port(&value).map_err(bad)?;
    let explicit_port = port_text.is_some();
    let host = Host::parse(host_text).map_err(bad)?;
    let port = match port_text {
        Some(p) => parse_port(p).ok_or_else(|| bad(format!("invalid port {p:?}")))?,
        None => 80,
    };
    if !head.authority.is_empty() {
        // absolute-form: the URL's authority is what the origin uses; it must be the Host too
        let (url_host, url_port) = (head.host.clone(), head.port);
        if url_host != host || url_port != port {
            return Err(bad(
                "the request URL and its Host header name different hosts",
            ));
        }
    }
    Ok(TunneledRequest {
        head: RequestHead {
            host,
            port,
            authority: value,
            ..head
        },
        explicit_port,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// What a client sends to a proxy: `CONNECT` or absolute-form.
    Proxy,
    /// What a client sends to an origin (inside a tunnel): origin-form, `*`, or absolute-form.
    Origin,
}

fn parse_head(buf: &[u8], max_lines: usize, form: Form) -> Result<RequestHead, HeadError> {
    let text = buf
        .strip_suffix(b"\r\n\r\n")
        .ok_or_else(|| bad("head does not end with a blank line"))?;
    let text = std::str::from_utf8(text).map_err(|_| bad("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    if request_line.bytes().any(|b| b.is_ascii_control()) {
        return Err(bad("control character in the request line"));
    }
    let mut parts = request_line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => (m, t, v),
        _ => return Err(bad("the request line is not METHOD TARGET VERSION")),
    };
    if !method.bytes().all(is_tchar) {
        return Err(bad("invalid method"));
    }
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(bad("only HTTP/1.0 and HTTP/1.1 are supported")),
    };
    if !target.is_ascii() {
        return Err(bad("non-ASCII request target"));
    }

    if form == Form::Origin && (target.starts_with('/') || (target == "*" && method == "OPTIONS")) {
        if method == "CONNECT" {
            return Err(bad("CONNECT inside a tunnel"));
        }
        let path = target.split('#').next().unwrap_or("").to_string();
        return parse_headers(lines, max_lines).map(|(headers, body)| {
            RequestHead {
                method: method.to_string(),
                // The Host header's, filled in by parse_tunneled_head.
                host: Host::Name(String::new()),
                port: 0,
                authority: String::new(),
                target: Target::Forward { path },
                minor_version,
                headers,
                body,
            }
        });
    }
    let (authority, target) = if method == "CONNECT" {
        if form == Form::Origin {
            return Err(bad("CONNECT inside a tunnel"));
        }
        (target, Target::Connect)
    } else {
        let scheme_end = target
            .find("://")
            .ok_or_else(|| bad("a proxy request needs an absolute http:// URL or CONNECT"))?;
        if !target[..scheme_end].eq_ignore_ascii_case("http") {
            return Err(bad(
                "only http:// URLs are forwarded (use CONNECT for https)",
            ));
        }
        let rest = &target[scheme_end + 3..];
        let rest = rest.split('#').next().unwrap_or("");
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(auth_end);
        let path = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        (authority, Target::Forward { path })
    };
    if authority.contains('@') {
        return Err(bad("userinfo in the request target"));
    }
    let (host_text, port_text) = split_host_port(authority).map_err(bad)?;
    let host = Host::parse(host_text).map_err(bad)?;
    let port = match (port_text, &target) {
        (Some(p), _) => parse_port(p).ok_or_else(|| bad(format!("invalid port {p:?}")))?,
        (None, Target::Forward { .. }) => 80,
        (None, Target::Connect) => return Err(bad("CONNECT needs host:port")),
    };
    let (headers, body) = parse_headers(lines, max_lines)?;
    if matches!(target, Target::Connect) && body != Body::None {
        return Err(bad("CONNECT with a body"));
    }
    Ok(RequestHead {
        method: method.to_string(),
        host,
        port,
        authority: authority.to_string(),
        target,
        minor_version,
        headers,
        body,
    })
}

type Headers = Vec<(String, String)>;

/// The header lines after the request line, and the body framing they give.
fn parse_headers<'a>(
    lines: impl Iterator<Item = &'a str>,
    max_lines: usize,
) -> Result<(Headers, Body), HeadError> {
    let mut headers = Vec::new();
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    for line in lines {
        if headers.len() >= max_lines {
            return Err(HeadError::TooManyHeaders(max_lines));
        }
        if line.starts_with([' ', '\t']) {
            return Err(bad("obsolete header line folding"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("header line without ':'"))?;
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(bad("invalid header name"));
        }
        if value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(bad("control character in a header value"));
        }
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") {
            let n = if !value.is_empty()
                && value.len() <= 19
                && value.bytes().all(|b| b.is_ascii_digit())
            {
                value
                    .parse::<u64>()
                    .map_err(|_| bad("invalid Content-Length"))?
            } else {
                return Err(bad("invalid Content-Length"));
            };
            if content_length.is_some_and(|c| c != n) {
                return Err(bad("conflicting Content-Length headers"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = true;
            for coding in value.split(',').map(|c| c.trim_matches([' ', '\t'])) {
                if coding.eq_ignore_ascii_case("chunked") && !chunked {
                    chunked = true;
                } else {
                    return Err(bad("unsupported Transfer-Encoding (only chunked)"));
                }
            }
        }
        headers.push((name.to_string(), value.to_string()));
    }
    let body = match (content_length, transfer_encoding) {
        (Some(_), true) => return Err(bad("both Content-Length and Transfer-Encoding")),
        (Some(0), false) | (None, false) => Body::None,
        (Some(n), false) => Body::Length(n),
        (None, true) => Body::Chunked,
    };
    Ok((headers, body))
}

/// Headers never forwarded: hop-by-hop ones, `Proxy-*`, and `Host` (rewritten from the URL).
fn is_dropped(name: &str, connection_tokens: &[String]) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("proxy-")
        || matches!(
            n.as_str(),
            "connection" | "keep-alive" | "te" | "trailer" | "upgrade" | "host"
        )
        || connection_tokens.contains(&n)
}

/// The head to send to the origin (or to an upstream proxy): the request line with `target`
/// (origin-form for an origin, absolute-form for an upstream proxy), `Host` from the URL,
/// `Connection: close`, and `extra` headers (e.g. `Proxy-Authorization` for the upstream).
pub fn forward_head(req: &RequestHead, target: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let connection_tokens: Vec<String> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = format!(
        "{} {} HTTP/1.{}\r\nHost: {}\r\n",
        req.method, target, req.minor_version, req.authority
    );
    for (n, v) in &req.headers {
        let framing =
            n.eq_ignore_ascii_case("transfer-encoding") || n.eq_ignore_ascii_case("content-length");
        if framing || !is_dropped(n, &connection_tokens) {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    for (n, v) in extra {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("Connection: close\r\n\r\n");
    out.into_bytes()
}

/// A complete error response with a plain-text body; the connection closes after it.
pub fn error_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\nProxy-Agent: nanobox\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads the status code of a response head (`HTTP/1.x NNN ...`), for an upstream proxy's answer.
pub fn response_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let v = parts.next()?;
    if !v.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<RequestHead, HeadError> {
        parse_request_head(s.as_bytes(), MAX_HEADER_LINES)
    }

    #[test]
    fn connect() {
        let h = p("CONNECT Example.COM:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").unwrap();
        assert_eq!(h.host, Host::Name("example.com".into()));
        assert_eq!(h.port, 443);
        assert_eq!(h.target, Target::Connect);
        let h = p("CONNECT [::1]:8443 HTTP/1.0\r\n\r\n").unwrap();
        assert_eq!(h.host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(h.minor_version, 0);
        assert!(p("CONNECT example.com HTTP/1.1\r\n\r\n").is_err());
        assert!(p("CONNECT example.com:0 HTTP/1.1\r\n\r\n").is_err());
        assert!(p("CONNECT example.com:99999 HTTP/1.1\r\n\r\n").is_err());
        assert!(p("CONNECT ::1:443 HTTP/1.1\r\n\r\n").is_err());
        assert!(p("CONNECT a.com:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\n").is_err());
    }

    #[test]
    fn absolute_form() {
        let h =
            p("GET http://a.test:8080/x/y?q=1#frag HTTP/1.1\r\nHost: evil\r\nAccept: */*\r\n\r\n")
                .unwrap();
        assert_eq!(h.host, Host::Name("a.test".into()));
        assert_eq!(h.port, 8080);
        assert_eq!(h.authority, "a.test:8080");
        assert_eq!(
            h.target,
            Target::Forward {
                path: "/x/y?q=1".into()
            }
        );
        let h = p("GET HTTP://a.test HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(
            (h.port, h.target),
            (80, Target::Forward { path: "/".into() })
        );
        let h = p("GET http://a.test?x HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(h.target, Target::Forward { path: "/?x".into() });
        assert!(p("GET https://a.test/ HTTP/1.1\r\n\r\n").is_err());
        assert!(p("GET /origin-form HTTP/1.1\r\n\r\n").is_err());
        assert!(p("GET http://user:pw@a.test/ HTTP/1.1\r\n\r\n").is_err());
        assert!(p("GET http:///x HTTP/1.1\r\n\r\n").is_err());
        assert!(p("GET http://a.test:/ HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn requests_inside_a_tunnel_name_their_host() {
        let t = |s: &str| parse_tunneled_head(s.as_bytes(), MAX_HEADER_LINES);
        let r = t("GET /x?y HTTP/1.1\r\nHost: A.Test\r\nAccept: */*\r\n\r\n").unwrap();
        assert_eq!(r.head.host, Host::Name("a.test".into()));
        assert_eq!((r.head.port, r.explicit_port), (80, false));
        assert_eq!(r.head.authority, "A.Test");
        assert_eq!(
            r.head.target,
            Target::Forward {
                path: "/x?y".into()
            }
        );
        let r = t("POST / HTTP/1.1\r\nHost: a.test:8080\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert_eq!(
            (r.head.port, r.explicit_port, r.head.body),
            (8080, true, Body::Length(3))
        );
        let r = t("OPTIONS * HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
        assert_eq!(r.head.target, Target::Forward { path: "*".into() });
        let r = t("GET http://a.test/p HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
        assert_eq!(r.head.target, Target::Forward { path: "/p".into() });
        for bad in [
            "GET / HTTP/1.1\r\n\r\n",                                 // no Host
            "GET / HTTP/1.0\r\n\r\n",                                 // no Host in 1.0 either
            "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", // two
            "GET / HTTP/1.1\r\nHost: a.test, b.test\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: user@a.test\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a.test:0\r\n\r\n",
            "GET http://b.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n", // URL and Host differ
            "GET http://a.test:81/ HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "OPTIONS *x HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "GET * HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "GET x HTTP/1.1\r\nHost: a.test\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a.test\r\n folded\r\n\r\n",
        ] {
            assert!(t(bad).is_err(), "{bad:?}");
        }
        // a proxy request is not a tunneled one, and the other way round
        assert!(p("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").is_err());
    }

    #[test]
    fn what_cannot_start_a_request() {
        for undecided in ["", "G", "GET", "OPTIONS", "GET /"] {
            assert!(
                !cannot_start_a_request(undecided.as_bytes()),
                "{undecided:?}"
            );
        }
        for not_http in [
            " GET /",
            "\r\nGET / HTTP/1.1",
            "SSH-2.0-OpenSSH_9.2\r\n",
            "\x16\x03\x01",
            "GE(T / HTTP/1.1",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert!(cannot_start_a_request(not_http.as_bytes()), "{not_http:?}");
        }
    }

    #[test]
    fn body_framing() {
        let h = p("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(h.body, Body::Length(5));
        let h = p("POST http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n")
            .unwrap();
        assert_eq!(h.body, Body::Length(5));
        let h = p("POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap();
        assert_eq!(h.body, Body::Chunked);
        for bad in [
            "Content-Length: 5\r\nContent-Length: 6",
            "Content-Length: -1",
            "Content-Length: 1,1",
            "Content-Length: 99999999999999999999",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: gzip, chunked",
            "Transfer-Encoding: chunked, chunked",
        ] {
            let s = format!("POST http://a.test/ HTTP/1.1\r\n{bad}\r\n\r\n");
            assert!(p(&s).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_and_injection() {
        for bad in [
            "\r\n\r\n",
            "GET\r\n\r\n",
            "GET http://a.test/  HTTP/1.1\r\n\r\n",
            "GET http://a.test/ HTTP/2.0\r\n\r\n",
            "GET http://a.test/ HTTP/1.1 x\r\n\r\n",
            "G(T http://a.test/ HTTP/1.1\r\n\r\n",
            "GET http://a.test/\x00 HTTP/1.1\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\nX: a\rInjected: 1\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\nX: a\nInjected: 1\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\nX: a\r\n folded\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\nNoColon\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\n: x\r\n\r\n",
            "GET http://a.test/ HTTP/1.1\r\nX: \x01\r\n\r\n",
            "GET http://a\r.test/ HTTP/1.1\r\n\r\n",
            "GET http://bücher.test/ HTTP/1.1\r\n\r\n",
            "GET http://127.1/ HTTP/1.1\r\n\r\n",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(parse_request_head(b"GET http://a.test/ HTTP/1.1\r\nX: \xff\r\n\r\n", 10).is_err());
        assert!(parse_request_head(b"GET http://a.test/ HTTP/1.1\r\n", 10).is_err());
    }

    #[test]
    fn bounds() {
        let mut s = String::from("GET http://a.test/ HTTP/1.1\r\n");
        for i in 0..=MAX_HEADER_LINES {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert_eq!(
            p(&s).unwrap_err(),
            HeadError::TooManyHeaders(MAX_HEADER_LINES)
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(head_end(b"A\r\n\r\nrest"), Some(5));
    }

    #[test]
    fn forwarded_head_is_origin_form_without_proxy_headers() {
        let h = p(concat!(
            "POST http://a.test:8080/p?q HTTP/1.1\r\nHost: other\r\nProxy-Authorization: Basic x\r\n",
            "Proxy-Connection: keep-alive\r\nConnection: keep-alive, X-Secret, Transfer-Encoding\r\nX-Secret: 1\r\n",
            "Keep-Alive: 5\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\n\r\n"
        ))
        .unwrap();
        let out = String::from_utf8(forward_head(&h, "/p?q", &[])).unwrap();
        assert_eq!(
            out,
            "POST /p?q HTTP/1.1\r\nHost: a.test:8080\r\nTransfer-Encoding: chunked\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        );
        let out = String::from_utf8(forward_head(
            &h,
            "http://x/",
            &[("Proxy-Authorization", "Basic y")],
        ))
        .unwrap();
        assert!(out.contains("\r\nProxy-Authorization: Basic y\r\n"));
        assert!(!out.contains("Basic x"));
    }

    #[test]
    fn responses() {
        let r = error_response(403, "Forbidden", "no");
        assert!(r.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
        assert!(r.ends_with(
            b"Content-Length: 2\r\nConnection: close\r\nProxy-Agent: nanobox\r\n\r\nno"
        ));
        assert_eq!(
            response_status(b"HTTP/1.1 200 Connection established\r\n\r\n"),
            Some(200)
        );
        assert_eq!(response_status(b"HTTP/1.0 407 Auth\r\n\r\n"), Some(407));
        assert_eq!(response_status(b"HTTP/2 200\r\n\r\n"), None);
        assert_eq!(response_status(b"HTTP/1.1 2000\r\n\r\n"), None);
    }
}
