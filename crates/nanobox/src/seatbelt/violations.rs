//! A run's denials, read back from the unified log.
//!
//! Every deny of a profile carries `(with message "<tag>")`; the system appends that message to
//! the denial it logs, after the denial's own text:
//!
//! ```text
//! Sandbox: python3(1234) deny(1) file-write-create /Users/me/notes.txt
//! nanobox-1234-7
//! ```
//!
//! [`log_predicate`] selects the lines of one run (`log show --predicate ...` or `log stream
//! --predicate ...`); [`parse`] reads one line of `--style ndjson` output (one JSON object a
//! line, the message in `eventMessage`), the one style this module reads: it keeps each event on
//! one line, with the tag, which the default and `compact` styles split over several.

use super::valid_tag;

/// One denial of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) struct Violation {
    /// The operation denied (`file-write-create`, `network-outbound`, `mach-lookup`, ...).
    pub operation: String,
    /// What it was denied on (a path, an address, a service name), where the log names one.
    pub target: Option<String>,
    /// The process's name as the log gives it.
    pub process: Option<String>,
    /// The process's id.
    pub pid: Option<u32>,
}

/// The `log show`/`log stream` predicate that selects this run's denials: sandbox messages that
/// contain the tag ([`parse`] then keeps only those that end with it). A malformed tag (never
/// one a profile was written with) selects nothing.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn log_predicate(tag: &str) -> String {
    if !valid_tag(tag) {
        return "FALSEPREDICATE".into();
    }
    // The tag is [A-Za-z0-9._-] only: nothing in it can end the quoted string.
    format!(r#"(eventMessage CONTAINS "Sandbox: ") AND (eventMessage CONTAINS "{tag}")"#)
}

/// One line of `log show --style ndjson` (or `log stream --style ndjson`): `Some` only for a
/// sandbox denial whose message ends with `tag`.
///
/// The tag must be the message's last word: a path in a denial can contain any text, but the
/// system puts the profile's message after it, so a path cannot make another run's denial (or a
/// denial of a process outside nanobox) look like this run's.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn parse(line: &str, tag: &str) -> Option<Violation> {
    if !valid_tag(tag) {
        return None;
    }
    let message = json::top_level_string(line.trim(), "eventMessage")?;
    let message = message.trim_end();
    let before_tag = message.strip_suffix(tag)?;
    if !(before_tag.is_empty() || before_tag.ends_with(char::is_whitespace)) {
        return None;
    }
    let denial = before_tag.trim_end();
    // The denial: `Sandbox: NAME(PID) deny(N) OPERATION [TARGET]`; NAME may hold spaces and
    // parentheses, so the pid is the last parenthesis before ` deny`.
    let start = denial.find("Sandbox: ")?;
    let rest = &denial[start + "Sandbox: ".len()..];
    let deny_at = rest
        .find(") deny(")
        .map(|i| i + 1)
        .or_else(|| rest.find(") deny ").map(|i| i + 1))?;
    let who = &rest[..deny_at];
    let after = rest[deny_at..].strip_prefix(" deny")?;
    let after = match after.strip_prefix('(') {
        Some(a) => {
            let close = a.find(')')?;
            if !a[..close].bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            &a[close + 1..]
        }
        None => after,
    };
    let after = after.trim_start();
    let (operation, target) = match after.split_once(char::is_whitespace) {
        Some((op, t)) => (op, Some(t.trim())),
        None => (after, None),
    };
    if operation.is_empty()
        || !operation
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'*'))
    {
        return None;
    }
    let (process, pid) = match who.strip_suffix(')').and_then(|w| w.rsplit_once('(')) {
        Some((name, pid)) => (Some(name.to_string()), pid.parse().ok()),
        None => (Some(who.to_string()), None),
    };
    Some(Violation {
        operation: operation.to_string(),
        target: target.filter(|t| !t.is_empty()).map(str::to_string),
        process: process.filter(|p| !p.is_empty()),
        pid,
    })
}

/// Just enough JSON to read one string member of a top-level object (the log's ndjson lines are
/// flat objects; nested values are skipped whole).
mod json {
    struct Reader<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Reader<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\r' | b'\n') {
                self.i += 1;
            }
        }
        fn eat(&mut self, b: u8) -> Option<()> {
            self.ws();
            (self.s.get(self.i) == Some(&b)).then(|| self.i += 1)
        }
        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.s.get(self.i).copied()
        }
        fn hex4(&mut self) -> Option<u32> {
            let h = self.s.get(self.i..self.i + 4)?;
            self.i += 4;
            u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
        }
        /// A string, its escapes decoded.
        fn string(&mut self) -> Option<String> {
            self.eat(b'"')?;
            let mut out: Vec<u8> = Vec::new();
            loop {
                let b = *self.s.get(self.i)?;
                self.i += 1;
                match b {
                    b'"' => return String::from_utf8(out).ok(),
                    b'\\' => {
                        let e = *self.s.get(self.i)?;
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let code = if (0xD800..0xDC00).contains(&hi) {
                                    if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                        return None;
                                    }
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    if !(0xDC00..0xE000).contains(&lo) {
                                        return None;
                                    }
                                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                                } else {
                                    hi
                                };
                                char::from_u32(code)?
                            }
                            _ => return None,
                        };
                        let mut buf = [0; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    0..=0x1f => return None,
                    _ => out.push(b),
                }
            }
        }
        /// Any value, skipped.
        fn skip(&mut self, depth: usize) -> Option<()> {
            if depth > 64 {
                return None;
            }
            match self.peek()? {
                b'"' => self.string().map(drop),
                b'{' => {
                    self.i += 1;
                    if self.eat(b'}').is_some() {
                        return Some(());
                    }
                    loop {
                        self.string()?;
                        self.eat(b':')?;
                        self.skip(depth + 1)?;
                        if self.eat(b',').is_none() {
                            return self.eat(b'}');
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    if self.eat(b']').is_some() {
                        return Some(());
                    }
                    loop {
                        self.skip(depth + 1)?;
                        if self.eat(b',').is_none() {
                            return self.eat(b']');
                        }
                    }
                }
                _ => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(self.s[self.i], b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E')
                    {
                        self.i += 1;
                    }
                    (self.i > start).then_some(())
                }
            }
        }
    }

    /// The string member `key` of the object `line`; `None` when the line is not such an object
    /// or the member is missing or not a string.
    pub(super) fn top_level_string(line: &str, key: &str) -> Option<String> {
        let mut r = Reader {
            s: line.as_bytes(),
            i: 0,
        };
        r.eat(b'{')?;
        let mut found = None;
        if r.eat(b'}').is_none() {
            loop {
                let k = r.string()?;
                r.eat(b':')?;
                if k == key && r.peek() == Some(b'"') {
                    found = Some(r.string()?);
                } else {
                    r.skip(0)?;
                }
                if r.eat(b',').is_none() {
                    r.eat(b'}')?;
                    break;
                }
            }
        }
        r.ws();
        (r.i == r.s.len()).then_some(found).flatten()
    }
}
