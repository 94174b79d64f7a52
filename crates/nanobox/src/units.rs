//! The text forms of sizes, durations and environment files shared by the CLI and config files.

use std::time::Duration;

/// A decimal number split into its integer digits and its fraction digits, plus the rest (the unit).
fn split_number(s: &str) -> Result<(&str, &str, &str), String> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return Err("it does not start with a number".into());
    }
    if frac.contains('.') {
        return Err("the number has more than one '.'".into());
    }
    Ok((int, frac, unit))
}

/// `int.frac * unit`, rounded down; `None` on overflow of `u64`.
fn scale(int: &str, frac: &str, unit: u128) -> Option<u64> {
    let mut total: u128 = 0;
    for d in int.bytes() {
        total = total.checked_mul(10)?.checked_add(u128::from(d - b'0'))?;
    }
    total = total.checked_mul(unit)?;
    // Fraction digits beyond 30 cannot change the result for any unit used here.
    let mut num: u128 = 0;
    let mut den: u128 = 1;
    for d in frac.bytes().take(30) {
        num = num * 10 + u128::from(d - b'0');
        den *= 10;
    }
    total = total.checked_add(num.checked_mul(unit)? / den)?;
    u64::try_from(total).ok()
}

/// A duration as the CLI and config files write it: a number followed by `ms`, `s`, `m` or `h`
/// (`30s`, `1500ms`, `2m`, `1.5h`), or several such parts in a row, largest unit first
/// (`1m30s`); a bare number is seconds. Zero is refused. The error says why, without the value.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(nanobox::parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(nanobox::parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
/// assert!(nanobox::parse_duration("5 minutes").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    const NS: u128 = 1_000_000_000;
    let mut rest = s;
    let mut total: u64 = 0;
    // The unit of the previous part: each part's unit must be smaller.
    let mut last: Option<u128> = None;
    loop {
        let (int, frac, after) = split_number(rest)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_ns = match unit {
            "ms" => 1_000_000,
            "" | "s" => NS,
            "m" => 60 * NS,
            "h" => 3600 * NS,
            other => {
                return Err(format!(
                    "unknown unit {other:?}; use ms, s, m or h (e.g. 30s, 1500ms, 2m, 1m30s)"
                ))
            }
        };
        if last.is_some_and(|l| unit_ns >= l) || (unit.is_empty() && last.is_some()) {
            return Err(
                "the parts must go from the largest unit to the smallest (1h30m, 1m30s)".into(),
            );
        }
        if !next.is_empty() && !frac.is_empty() {
            return Err("only the last part may have a fraction (1m30.5s, not 1.5m30s)".into());
        }
        last = Some(unit_ns);
        let ns = scale(int, frac, unit_ns).ok_or("the duration is too long")?;
        total = total.checked_add(ns).ok_or("the duration is too long")?;
        if next.is_empty() {
            break;
        }
        rest = next;
    }
    if total == 0 {
        return Err("it must be longer than zero".into());
    }
    Ok(Duration::from_nanos(total))
}

/// A size in bytes as the CLI and config files write it: a number followed by `K`, `M`, `G` or
/// `T` (binary units, case-insensitive, optionally followed by `B` or `iB`); a bare number or a
/// `B` suffix is bytes. Decimals are allowed (`1.5M`) and rounded down to whole bytes. Zero is
/// refused. The error says why, without the value.
///
/// ```
/// assert_eq!(nanobox::parse_size("256M"), Ok(256 * nanobox::MB));
/// assert_eq!(nanobox::parse_size("1KiB"), Ok(1024));
/// assert!(nanobox::parse_size("12Q").is_err());
/// ```
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (int, frac, unit) = split_number(s)?;
    let lower = unit.to_ascii_lowercase();
    let prefix = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b').filter(|p| !p.is_empty()))
        .unwrap_or(&lower);
    let mult: u128 = match (prefix, lower.as_str()) {
        (_, "" | "b") => 1,
        ("k", _) => 1 << 10,
        ("m", _) => 1 << 20,
        ("g", _) => 1 << 30,
        ("t", _) => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit {unit:?}; use K, M, G or T (binary units, e.g. 512K, 256M, 1G) \
                 or no unit for bytes"
            ))
        }
    };
    let n = scale(int, frac, mult).ok_or("the size is too large")?;
    if n == 0 {
        return Err("it must be at least 1 byte".into());
    }
    Ok(n)
}

/// Parse an environment file: one `KEY=VALUE` per line, as `docker run --env-file` reads it.
///
/// - Blank lines and lines whose first non-blank character is `#` are ignored.
/// - An optional `export ` before the key is dropped (so a file `sh` can source also works).
/// - The value is everything after the first `=`, verbatim: no quotes are removed, no `$VAR`
///   or `~` is expanded, and spaces are kept; a trailing `\r` (a CRLF file) is not part of it.
/// - The key is what comes before the `=` without surrounding blanks; it must be non-empty and
///   may not contain whitespace.
///
/// Returns the pairs in file order (a later line of the same key wins where they are applied),
/// or the first malformed line: its number (from 1) and why.
///
/// ```
/// let text = "# settings\nexport MODE=fast\nGREETING=hello world\n\nQUOTED=\"kept\"\n";
/// assert_eq!(
///     nanobox::parse_env_file(text).unwrap(),
///     vec![
///         ("MODE".to_string(), "fast".to_string()),
///         ("GREETING".to_string(), "hello world".to_string()),
///         ("QUOTED".to_string(), "\"kept\"".to_string()),
///     ]
/// );
/// assert_eq!(nanobox::parse_env_file("A=1\nnot a pair\n").unwrap_err().0, 2);
/// ```
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = trimmed
            .strip_prefix("export")
            .filter(|r| r.starts_with([' ', '\t']))
            .map_or(trimmed, str::trim_start);
        let Some((key, value)) = body.split_once('=') else {
            return Err((
                n,
                "expected KEY=VALUE (no '=' found); a comment starts with '#'".into(),
            ));
        };
        let key = key.trim_end();
        if key.is_empty() {
            return Err((n, "the variable name before '=' is empty".into()));
        }
        if key.contains(char::is_whitespace) {
            return Err((n, format!("the variable name {key:?} contains whitespace")));
        }
        if key.contains('\0') || value.contains('\0') {
            return Err((n, "the line contains a NUL byte".into()));
        }
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_form() {
        let d = parse_duration;
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(d("7"), Ok(Duration::from_secs(7)));
        assert_eq!(d("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(d(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(d("1h2m3s4ms"), Ok(Duration::from_millis(3_723_004)));
        assert_eq!(d("1m30.5s"), Ok(Duration::from_millis(90_500)));
        for bad in [
            "",
            "abc",
            "s",
            "1x",
            "1.2.3s",
            "0s",
            "0",
            "0m0s",
            "-1s",
            "1 s",
            "99999999999999h",
            "30s1m",
            "1s1s",
            "1m30",
            "1.5m30s",
            "1m 30s",
        ] {
            assert!(d(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sizes_in_every_form() {
        let s = parse_size;
        assert_eq!(s("512K"), Ok(512 << 10));
        assert_eq!(s("256M"), Ok(256 << 20));
        assert_eq!(s("1G"), Ok(1 << 30));
        assert_eq!(s("1g"), Ok(1 << 30));
        assert_eq!(s("2T"), Ok(2 << 40));
        assert_eq!(s("1KiB"), Ok(1024));
        assert_eq!(s("1KB"), Ok(1024));
        assert_eq!(s("100"), Ok(100));
        assert_eq!(s("100B"), Ok(100));
        assert_eq!(s("1.5K"), Ok(1536));
        assert_eq!(s("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "12Q",
            "K",
            "0",
            "0K",
            "1.2.3M",
            "-5",
            "1 M",
            "1iB",
            "1KK",
            "16777216T",
            "18446744073709551616",
        ] {
            assert!(s(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn env_files_take_pairs_skip_comments_and_report_the_bad_line() {
        let text = "# a comment\n\n  # indented comment\nA=1\nexport B=two words\r\n\
                    C=\"quoted\" $HOME ~\nD=\nE=x=y\n  F =z\nexport=1\nexported=2\n";
        let got = parse_env_file(text).unwrap();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "\"quoted\" $HOME ~"),
            ("D", ""),
            ("E", "x=y"),
            ("F", "z"),
            ("export", "1"),
            ("exported", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(parse_env_file(""), Ok(vec![]));

        let (line, why) = parse_env_file("A=1\n# fine\nJUSTANAME\nB=2\n").unwrap_err();
        assert_eq!(line, 3);
        assert!(why.contains("KEY=VALUE"), "{why}");
        assert_eq!(parse_env_file("A=1\n=2\n").unwrap_err().0, 2);
        assert_eq!(parse_env_file("MY VAR=1\n").unwrap_err().0, 1);
        assert_eq!(parse_env_file("A=1\r\nB=2\r\nC\r\n").unwrap_err().0, 3);
        assert_eq!(parse_env_file("export \n").unwrap_err().0, 1);
    }
}
