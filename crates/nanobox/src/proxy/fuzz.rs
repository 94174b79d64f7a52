//! Entry points for the fuzz targets in `crates/nanobox/fuzz/` (not a stable API).

use super::head::{forward_head, head_end, parse_request_head, MAX_HEADER_LINES, MAX_HEAD_BYTES};
use super::{AllowList, Cidr, Upstream};

/// Parses `data` as a request head the way the server does; on success builds the forwarded head.
pub fn head(data: &[u8]) {
    let data = &data[..data.len().min(MAX_HEAD_BYTES)];
    if let Some(end) = head_end(data) {
        if let Ok(req) = parse_request_head(&data[..end], MAX_HEADER_LINES) {
            let out = forward_head(&req, "/", &[]);
            assert!(out.ends_with(b"\r\n\r\n"));
        }
    }
}

/// Splits `data` into a pattern list (first line) and hosts to match (the other lines).
pub fn pattern(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let patterns: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let _ = Cidr::parse(patterns[0]);
    let _ = Upstream::parse(patterns[0]);
    if let Ok(list) = AllowList::parse(&patterns) {
        for host in lines {
            for port in [80, 443, 8443] {
                if let Some(p) = list.allows(host, port) {
                    assert!(list.patterns().contains(&p));
                }
            }
        }
    }
}
