//! TEMPORARY STAND-IN for the Seatbelt profile generator (`crates/nanobox/src/seatbelt/`), which
//! is written in parallel: the same names and signatures, a trivial profile. The integrator
//! replaces this file (and its `#[path]` line in lib.rs) with the real module.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::policy::{Permission, Policy, MACOS_SYSTEM_LINKS};

/// The program that applies a profile.
pub(crate) const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// What one run adds to the policy.
pub(crate) struct RunContext {
    /// The run's private temporary directory.
    pub tmpdir: PathBuf,
    /// The filtering proxy's port on loopback, when the policy has an allowlist.
    pub proxy_port: Option<u16>,
    /// A tag naming the run in the profile.
    pub tag: String,
}

/// A profile and the parameters (`-D NAME=PATH`) it refers to.
pub(crate) struct Profile {
    pub text: String,
    pub params: Vec<(String, PathBuf)>,
}

/// `path` resolved lexically with macOS's system links (`/tmp`, `/var`, `/etc` into `/private`).
pub(crate) fn canonical(path: &Path) -> crate::Result<PathBuf> {
    if !path.has_root() {
        return Err(crate::Error::RelativeSandboxPath {
            path: path.to_path_buf(),
        });
    }
    Ok(crate::policy::lexical_canonical(path, MACOS_SYSTEM_LINKS))
}

/// A trivial profile: the stand-in's, not the real generator's.
pub(crate) fn profile(policy: &Policy, run: &RunContext) -> crate::Result<Profile> {
    let mut text = format!(
        "(version 1)\n; stand-in profile ({})\n(deny default)\n",
        run.tag
    );
    let mut params = vec![("TMPDIR".to_string(), run.tmpdir.clone())];
    for (i, m) in policy.mounts.iter().enumerate() {
        let name = format!("MOUNT_{i}");
        let op = match m.permission {
            Permission::ReadOnly => "file-read*",
            _ => "file-read* file-write*",
        };
        text.push_str(&format!("(allow {op} (subpath (param \"{name}\")))\n"));
        params.push((name, m.host_canonical.clone()));
    }
    Ok(Profile { text, params })
}

/// `sandbox-exec -p PROFILE -D NAME=VALUE... PROGRAM ARGS...`.
pub(crate) fn argv(
    profile: &Profile,
    program: &OsStr,
    args: &[OsString],
) -> crate::Result<Vec<OsString>> {
    let mut v: Vec<OsString> = vec![
        SANDBOX_EXEC.into(),
        "-p".into(),
        profile.text.clone().into(),
    ];
    for (k, p) in &profile.params {
        v.push("-D".into());
        let mut kv = OsString::from(format!("{k}="));
        kv.push(p.as_os_str());
        v.push(kv);
    }
    v.push(program.to_os_string());
    v.extend(args.iter().cloned());
    Ok(v)
}
