//! What a Mac supports: sandbox-exec present and working, not already inside a sandbox, and how
//! each limit is enforced.

use std::sync::OnceLock;

use super::sys;
use crate::error::{Error, Result};
use crate::probe::{Check, CheckStatus, Probe};
use crate::seatbelt::SANDBOX_EXEC;

/// Why runs cannot start on this host: what is missing, the cause, the fix.
#[derive(Debug, Clone)]
struct Blocked {
    missing: &'static str,
    cause: String,
    fix: String,
}

impl Blocked {
    fn error(&self) -> Error {
        Error::HostUnsupported {
            missing: self.missing,
            cause: self.cause.clone(),
            fix: self.fix.clone(),
        }
    }
}

/// The profile of the probe run: allows everything, so only sandbox-exec itself is tested.
const PROBE_PROFILE: &str = "(version 1)(allow default)";

fn missing_blocked() -> Blocked {
    Blocked {
        missing: "/usr/bin/sandbox-exec",
        cause: format!("{SANDBOX_EXEC} does not exist on this Mac"),
        fix: "nanobox runs programs under the system's sandbox-exec, part of every macOS \
              install; restore it (reinstall macOS, or run on a Mac that has it)"
            .into(),
    }
}

/// The error of a host without sandbox-exec.
pub(crate) fn missing_sandbox_exec() -> Error {
    missing_blocked().error()
}

fn nested_blocked() -> Blocked {
    Blocked {
        missing: "a sandbox-exec outside any sandbox",
        cause: "this process already runs inside a Seatbelt sandbox (an App Sandbox, \
                sandbox-exec, or a tool that sandboxes its children); Seatbelt profiles do not \
                nest, so sandbox-exec cannot apply one"
            .into(),
        fix: "run the program that uses nanobox from an unsandboxed process (a terminal, \
              launchd, a CI runner), not from inside another sandbox"
            .into(),
    }
}

/// Run sandbox-exec once with a profile that allows everything.
fn check_host() -> std::result::Result<(), Blocked> {
    if !std::path::Path::new(SANDBOX_EXEC).is_file() {
        return Err(missing_blocked());
    }
    if sys::caller_is_sandboxed() {
        return Err(nested_blocked());
    }
    let out = std::process::Command::new(SANDBOX_EXEC)
        .args(["-p", PROBE_PROFILE, "/usr/bin/true"])
        .env_clear()
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            Err(Blocked {
                missing: "a working /usr/bin/sandbox-exec",
                cause: format!(
                    "`{SANDBOX_EXEC} -p '{PROBE_PROFILE}' /usr/bin/true` failed ({}): {}; inside \
                     another sandbox this is what nesting does",
                    o.status,
                    stderr.trim()
                ),
                fix: "run nanobox from an unsandboxed process; if it is one, check that \
                      sandbox-exec works on this Mac (`sandbox-exec -p '(version 1)(allow \
                      default)' /usr/bin/true`)"
                    .into(),
            })
        }
        Err(e) => Err(Blocked {
            missing: "a working /usr/bin/sandbox-exec",
            cause: format!("{SANDBOX_EXEC} could not be started: {e}"),
            fix: "check that /usr/bin/sandbox-exec is executable by this user".into(),
        }),
    }
}

/// The host check, made once per process.
fn host() -> &'static std::result::Result<(), Blocked> {
    static HOST: OnceLock<std::result::Result<(), Blocked>> = OnceLock::new();
    HOST.get_or_init(check_host)
}

/// Ok when runs can start: sandbox-exec exists and works from this process.
pub(crate) fn require_sandbox_exec() -> Result<()> {
    host().as_ref().map(|_| ()).map_err(Blocked::error)
}

fn check(name: &str, ok: bool, detail: String, required: bool, fix: Option<String>) -> Check {
    Check {
        name: name.into(),
        status: if ok {
            CheckStatus::Available
        } else {
            CheckStatus::Missing
        },
        detail,
        required,
        used: ok,
        fix: if ok { None } else { fix },
    }
}

pub(crate) fn probe() -> Probe {
    let present = std::path::Path::new(SANDBOX_EXEC).is_file();
    let nested = sys::caller_is_sandboxed();
    let works = host();
    let mut checks = vec![
        check(
            "sandbox-exec",
            present && works.is_ok(),
            match works {
                Ok(()) => format!("{SANDBOX_EXEC} runs a program under a Seatbelt profile"),
                Err(b) => b.cause.clone(),
            },
            true,
            works.as_ref().err().map(|b| b.fix.clone()),
        ),
        check(
            "nested sandbox",
            !nested,
            if nested {
                nested_blocked().cause
            } else {
                "this process is not inside a Seatbelt sandbox".into()
            },
            true,
            Some(nested_blocked().fix),
        ),
    ];
    let interval = crate::watchdog::INTERVAL.as_millis();
    let limit = |name: &str, detail: String| Check {
        name: name.into(),
        status: CheckStatus::Available,
        detail,
        required: false,
        used: false,
        fix: None,
    };
    checks.push(limit(
        "memory limit",
        format!(
            "watchdog: the process tree's physical footprint, sampled every {interval} ms; the \
             tree is killed past the limit"
        ),
    ));
    checks.push(limit(
        "process limit",
        format!("watchdog: the tree's processes, counted every {interval} ms"),
    ));
    checks.push(limit(
        "cpu-time limit",
        format!("RLIMIT_CPU per process + the watchdog's total of the tree every {interval} ms"),
    ));
    checks.push(limit("file-size limit", "RLIMIT_FSIZE".into()));
    checks.push(Check {
        name: "cpu limit".into(),
        status: CheckStatus::Missing,
        detail: "macOS has no CPU bandwidth share for a process tree: cpu_limit is refused".into(),
        required: false,
        used: false,
        fix: Some(
            "leave cpu_limit unset, or accept it unenforced with allow_degraded_limits()".into(),
        ),
    });
    let mut p = Probe::new("macos", checks);
    p.refused.push("cpu_limit".into());
    p
}
