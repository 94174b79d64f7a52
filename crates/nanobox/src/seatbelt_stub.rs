//! TEMPORARY STAND-IN, NOT THE REAL MODULE: the integrator deletes this file (and its `#[path]`
//! line in lib.rs) when the platform-neutral profile generator `crate::seatbelt` lands.
//!
//! It has only the agreed signatures, so that the macOS backend compiles. It never makes a
//! profile: [`profile`] refuses, so a build with this stand-in runs nothing (fail closed).

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(crate) const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

pub(crate) struct RunContext {
    pub tmpdir: PathBuf,
    pub proxy_port: Option<u16>,
    pub tag: String,
}

pub(crate) struct Profile {
    pub text: String,
    pub params: Vec<(String, PathBuf)>,
}

pub(crate) fn canonical(path: &Path) -> Result<PathBuf> {
    Ok(path.to_path_buf())
}

pub(crate) fn profile(_: &crate::policy::Policy, _: &RunContext) -> Result<Profile> {
    Err(Error::Unsupported {
        what: "the Seatbelt profile generator".into(),
        fix: "this build has the stand-in seatbelt_stub.rs; build with crate::seatbelt".into(),
    })
}

pub(crate) fn argv(profile: &Profile, program: &OsStr, args: &[OsString]) -> Result<Vec<OsString>> {
    let mut v: Vec<OsString> = vec![
        SANDBOX_EXEC.into(),
        "-p".into(),
        profile.text.clone().into(),
    ];
    for (k, p) in &profile.params {
        let mut d = OsString::from(format!("-D{k}="));
        d.push(p.as_os_str());
        v.push(d);
    }
    v.push("--".into());
    v.push(program.to_os_string());
    v.extend(args.iter().cloned());
    Ok(v)
}

pub(crate) mod violations {
    pub(crate) struct Violation {
        pub operation: String,
        pub target: Option<String>,
        pub process: Option<String>,
        pub pid: Option<u32>,
    }
    pub(crate) fn log_predicate(tag: &str) -> String {
        format!("eventMessage CONTAINS \"{tag}\"")
    }
    pub(crate) fn parse(_: &str, _: &str) -> Option<Violation> {
        None
    }
}
