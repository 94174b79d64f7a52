//! Parsers for option values: durations, sizes, `HOST[:SANDBOX]` mount specs and `KEY=VALUE`.
//!
//! Each returns `Err(reason)`; clap puts the option's name in front of it and exits with status 2.

use std::ffi::{OsStr, OsString};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// A duration: a number followed by `ms`, `s`, `m` or `h` (a bare number is seconds), or several
/// such parts (`1m30s`); decimals are allowed (`1.5s`). Zero is refused. The library's
/// [`nanobox::parse_duration`], which config files use too.
pub fn duration(s: &str) -> Result<Duration, String> {
    nanobox::parse_duration(s)
}

/// A number of CPU cores: a positive decimal such as `0.5` or `2`.
pub fn cores(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of cores (e.g. 0.5, 2)"))?;
    if !(v.is_finite() && (0.01..=4096.0).contains(&v)) {
        return Err(format!("{s:?} is outside 0.01 ..= 4096 cores"));
    }
    Ok(v)
}

/// A size in bytes: a number followed by `K`, `M`, `G` or `T` (binary units, case-insensitive,
/// optionally followed by `B` or `iB`); a bare number or a `B` suffix is bytes. Decimals are
/// allowed (`1.5M`) and rounded down to whole bytes. Zero is refused. The library's
/// [`nanobox::parse_size`], which config files use too.
pub fn size(s: &str) -> Result<u64, String> {
    nanobox::parse_size(s)
}

/// `NAME=N` for `--pool-limit`: a kernel pool's name (`inotify_watches`, `pending_signals`, ...;
/// `-` may stand for `_`) and its bound (a plain number, or a size for the byte pools).
pub fn pool_limit(s: &str) -> Result<(nanobox::KernelPool, u64), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| "expected NAME=N, e.g. inotify_watches=65536".to_string())?;
    let pool = nanobox::KernelPool::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = nanobox::KernelPool::ALL.iter().map(|p| p.name()).collect();
        format!("unknown pool {name:?}; the pools are {}", names.join(", "))
    })?;
    Ok((pool, size(value)?))
}

/// An `--env` value: `KEY=VALUE` sets KEY; a bare `NAME` passes the caller's value of NAME (none
/// if the caller has no such variable, as with `docker run -e NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvArg {
    /// `KEY=VALUE`.
    Set(String, String),
    /// `NAME`: the caller's value.
    Pass(String),
}

pub fn env_arg(s: &str) -> Result<EnvArg, String> {
    match s.split_once('=') {
        Some(("", _)) => Err("the variable name before '=' is empty".into()),
        Some((k, v)) => Ok(EnvArg::Set(k.to_string(), v.to_string())),
        None if s.is_empty() => Err("expected KEY=VALUE or NAME".into()),
        None => Ok(EnvArg::Pass(s.to_string())),
    }
}

/// A sandbox path given on the command line: it must be absolute.
pub fn sandbox_path(s: &OsStr) -> Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if s.is_empty() {
        return Err("the path is empty".into());
    }
    if !p.is_absolute() {
        return Err(format!(
            "{} is relative; paths inside the sandbox must start with '/'",
            p.display()
        ));
    }
    Ok(p)
}

/// A parsed `--ro`/`--rw` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// The host path, unescaped, as given (relative paths are relative to the CLI's directory).
    pub host: PathBuf,
    /// The sandbox path, if one was given after an unescaped ':'.
    pub sandbox: Option<PathBuf>,
}

impl MountSpec {
    /// Where the mount appears: the SANDBOX part, or else the host path made absolute (lexically,
    /// without following symlinks).
    pub fn target(&self) -> std::io::Result<PathBuf> {
        match &self.sandbox {
            Some(p) => Ok(p.clone()),
            None => Ok(lexical_normalize(&std::path::absolute(&self.host)?)),
        }
    }
}

/// Resolve `.` and `..` components by text alone.
fn lexical_normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Split at unescaped ':'s: `\:` is a ':' inside a part and `\\` a backslash; any other
/// backslash is kept. A leading Windows drive (`C:\...`, and on Windows also `C:/...`) stays whole.
fn split_parts(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut parts: Vec<Vec<u8>> = vec![Vec::new()];
    let mut i = 0;
    let drive_sep = |c: u8| c == b'\\' || (cfg!(windows) && c == b'/');
    if bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && drive_sep(bytes[2])
    {
        parts[0].extend_from_slice(&bytes[..2]);
        i = 2;
    }
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(&c @ (b':' | b'\\'))) => {
                parts.last_mut().expect("one part").push(c);
                i += 2;
            }
            (b':', _) => {
                parts.push(Vec::new());
                i += 1;
            }
            (c, _) => {
                parts.last_mut().expect("one part").push(c);
                i += 1;
            }
        }
    }
    parts
}

/// `HOST[:SANDBOX]` from its parts.
fn host_and_sandbox(parts: Vec<Vec<u8>>, form: &str) -> Result<MountSpec, String> {
    if parts.len() > 2 {
        return Err(format!(
            "more than one unescaped ':'; expected {form} (write a ':' inside a path as \\:)"
        ));
    }
    let mut parts = parts.into_iter();
    let host = parts.next().expect("one part");
    if host.is_empty() {
        return Err(format!("the HOST path is empty; expected {form}"));
    }
    let sandbox = match parts.next() {
        None => None,
        Some(p) if p.is_empty() => {
            return Err(format!(
                "the SANDBOX path after ':' is empty; expected {form}"
            ))
        }
        Some(p) => Some(sandbox_path(&bytes_os(p))?),
    };
    Ok(MountSpec {
        host: PathBuf::from(bytes_os(host)),
        sandbox,
    })
}

/// `HOST[:SANDBOX]`, where a ':' inside a path is written `\:` and a backslash before a ':' that
/// should stay a separator is written `\\`. Any other backslash is kept as it is, and a leading
/// Windows drive (`C:\data`) is part of HOST.
pub fn mount_spec(s: &OsStr) -> Result<MountSpec, String> {
    host_and_sandbox(split_parts(&os_bytes(s)?), "HOST[:SANDBOX]")
}

/// A `-v` value: `HOST[:SANDBOX][:ro|:rw]`, read-only unless `:rw` is given (Docker's `-v` is
/// read-write by default; here the safe choice is the default). Paths as in [`mount_spec`].
pub fn volume_spec(s: &OsStr) -> Result<(MountSpec, bool), String> {
    let mut parts = split_parts(&os_bytes(s)?);
    let mut writable = false;
    if parts.len() >= 2 {
        match parts.last().map(Vec::as_slice) {
            Some(b"rw") => writable = true,
            Some(b"ro") => {}
            Some(other) if !other.starts_with(b"/") => {
                return Err(format!(
                    "unknown mode {:?} after the last ':'; use ro or rw",
                    String::from_utf8_lossy(other)
                ))
            }
            _ => return host_and_sandbox(parts, "HOST[:SANDBOX][:ro|:rw]").map(|m| (m, false)),
        }
        parts.pop();
    }
    host_and_sandbox(parts, "HOST[:SANDBOX][:ro|:rw]").map(|m| (m, writable))
}

#[cfg(unix)]
fn os_bytes(s: &OsStr) -> Result<Vec<u8>, String> {
    use std::os::unix::ffi::OsStrExt;
    Ok(s.as_bytes().to_vec())
}
#[cfg(unix)]
fn bytes_os(b: Vec<u8>) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(b)
}
#[cfg(not(unix))]
fn os_bytes(s: &OsStr) -> Result<Vec<u8>, String> {
    s.to_str()
        .map(|s| s.as_bytes().to_vec())
        .ok_or_else(|| "the path is not valid Unicode".to_string())
}
#[cfg(not(unix))]
fn bytes_os(b: Vec<u8>) -> OsString {
    // Only ASCII ':' and '\' were removed from valid UTF-8, so it is still valid UTF-8.
    OsString::from(String::from_utf8(b).expect("still UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Sizes and durations are the library's parsers (nanobox::parse_size, parse_duration),
    // tested there (units.rs).

    #[test]
    fn env_args() {
        let set = |k: &str, v: &str| Ok(EnvArg::Set(k.into(), v.into()));
        assert_eq!(env_arg("A=1"), set("A", "1"));
        assert_eq!(env_arg("A=b=c"), set("A", "b=c"));
        assert_eq!(env_arg("A="), set("A", ""));
        assert_eq!(env_arg("HOME"), Ok(EnvArg::Pass("HOME".into())));
        assert!(env_arg("").is_err());
        assert!(env_arg("=1").is_err());
    }

    fn vol(s: &str) -> Result<(MountSpec, bool), String> {
        volume_spec(OsStr::new(s))
    }

    #[test]
    fn volume_specs_are_read_only_unless_rw() {
        let m = |h: &str, s: Option<&str>| MountSpec {
            host: h.into(),
            sandbox: s.map(PathBuf::from),
        };
        assert_eq!(vol("/a:/b"), Ok((m("/a", Some("/b")), false)));
        assert_eq!(vol("/a:/b:ro"), Ok((m("/a", Some("/b")), false)));
        assert_eq!(vol("/a:/b:rw"), Ok((m("/a", Some("/b")), true)));
        assert_eq!(vol("/a"), Ok((m("/a", None), false)));
        assert_eq!(vol("/a:rw"), Ok((m("/a", None), true)));
        assert_eq!(
            vol(r"C:\data:/data:rw"),
            Ok((m(r"C:\data", Some("/data")), true))
        );
        assert_eq!(vol(r"C:\data"), Ok((m(r"C:\data", None), false)));
        assert_eq!(vol(r"/x\:y:/d"), Ok((m("/x:y", Some("/d")), false)));
        for bad in ["/a:/b:rx", "/a:/b:rw:ro", ":/b", "/a::rw", "/a:b"] {
            assert!(vol(bad).is_err(), "{bad:?} was accepted");
        }
    }

    fn spec(s: &str) -> Result<MountSpec, String> {
        mount_spec(OsStr::new(s))
    }

    #[test]
    fn mount_specs() {
        assert_eq!(
            spec("/a/b"),
            Ok(MountSpec {
                host: "/a/b".into(),
                sandbox: None
            })
        );
        assert_eq!(
            spec("/a:/data"),
            Ok(MountSpec {
                host: "/a".into(),
                sandbox: Some("/data".into())
            })
        );
        assert_eq!(
            spec(r"/x\:y:/in\:side"),
            Ok(MountSpec {
                host: "/x:y".into(),
                sandbox: Some("/in:side".into())
            })
        );
        assert_eq!(
            spec(r"/x\\:/d"),
            Ok(MountSpec {
                host: r"/x\".into(),
                sandbox: Some("/d".into())
            })
        );
        assert_eq!(spec(r"/a\b").unwrap().host, PathBuf::from(r"/a\b"));
        assert_eq!(
            spec(r"C:\data:/data"),
            Ok(MountSpec {
                host: r"C:\data".into(),
                sandbox: Some("/data".into())
            })
        );
        for bad in ["", ":/d", "/a:", "/a:b", "/a:/b:/c"] {
            assert!(spec(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn default_target_is_the_absolute_host_path() {
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            spec("/a/./b/../c").unwrap().target().unwrap(),
            PathBuf::from("/a/c")
        );
        assert_eq!(spec("sub").unwrap().target().unwrap(), cwd.join("sub"));
        assert_eq!(
            spec("/h:/s").unwrap().target().unwrap(),
            PathBuf::from("/s")
        );
    }
}
