//! What a Windows host supports: Job Objects, the restricted low-integrity token, AppContainers,
//! the CPU rate cap, and whether this is Wine.

use std::sync::OnceLock;

use windows_sys::Win32::System::SystemInformation::{
    GetSystemInfo, GetSystemWindowsDirectoryW, SYSTEM_INFO,
};

use super::{appcontainer, job, sys, token};
use crate::error::{Error, Result};
use crate::probe::{Check, CheckStatus, Probe};

/// Logical processors of this host.
pub(crate) fn cpus() -> u32 {
    let mut si = SYSTEM_INFO::default();
    // SAFETY: GetSystemInfo fills the struct given.
    unsafe { GetSystemInfo(&mut si) };
    si.dwNumberOfProcessors.max(1)
}

/// The Windows directory (`C:\Windows`), from the system, not the environment.
pub(crate) fn windows_dir() -> Result<std::path::PathBuf> {
    let mut buf = vec![0u16; 520];
    // SAFETY: `buf` holds the number of units given.
    let n = unsafe { GetSystemWindowsDirectoryW(buf.as_mut_ptr(), buf.len() as u32) } as usize;
    if n == 0 || n >= buf.len() {
        return Err(sys::last_error("reading the Windows directory"));
    }
    use std::os::windows::ffi::OsStringExt;
    Ok(std::ffi::OsString::from_wide(&buf[..n]).into())
}

/// Whether a job takes a CPU rate cap here (Wine refuses it with error 87), asked once.
pub(crate) fn cpu_rate_supported() -> std::result::Result<(), String> {
    static ANSWER: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    ANSWER
        .get_or_init(|| {
            let s = job::Settings {
                cpu_rate: Some(5_000),
                ..Default::default()
            };
            match job::Job::new(&s) {
                Ok(_) => Ok(()),
                Err(Error::HostUnsupported { cause, .. }) => Err(cause),
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
}

fn check(
    name: &str,
    r: std::result::Result<String, String>,
    required: bool,
    fix: Option<&str>,
) -> Check {
    let ok = r.is_ok();
    Check {
        name: name.into(),
        status: if ok {
            CheckStatus::Available
        } else {
            CheckStatus::Missing
        },
        detail: match r {
            Ok(d) | Err(d) => d,
        },
        required,
        used: ok,
        fix: if ok { None } else { fix.map(str::to_owned) },
    }
}

pub(crate) fn probe() -> Probe {
    let mut checks = Vec::new();
    if let Some(v) = sys::wine_version() {
        checks.push(Check {
            name: "Wine".into(),
            status: CheckStatus::Available,
            detail: format!(
                "running under Wine {v}: it accepts but does not enforce memory, process and \
                 UI limits, token restrictions and integrity levels, and accounts nothing"
            ),
            required: false,
            used: false,
            fix: None,
        });
    }
    checks.push(check(
        "job objects",
        job::Job::new(&job::Settings::default())
            .map(|_| "a job with kill-on-close and UI restrictions, and its completion port".into())
            .map_err(|e| e.to_string()),
        true,
        Some("nanobox needs Job Objects (every Windows since XP has them)"),
    ));
    checks.push(check(
        "restricted low-integrity token",
        token::restricted()
            .map(|t| {
                format!(
                    "no privileges, {} group(s) deny-only, restricting SIDs, low integrity",
                    t.denied_groups
                )
            })
            .map_err(|e| e.to_string()),
        true,
        Some("run nanobox as a normal user or administrator (its token must be restrictable)"),
    ));
    checks.push(check(
        "AppContainer (network isolation)",
        match appcontainer::AppContainer::unavailable() {
            None => Ok(
                "a profile without capabilities per run: no network, files where granted".into(),
            ),
            Some(why) => Err(why),
        },
        true,
        Some(
            "Windows 10 or later has AppContainers; without them only allow_degraded_isolation() \
             (CLI --allow-degraded-isolation) runs, with no network isolation",
        ),
    ));
    checks.push(check(
        "enforced job limits",
        match sys::wine_version() {
            None => Ok("memory, process and CPU-time limits of the job are the kernel's".into()),
            Some(v) => Err(format!(
                "Wine {v} accepts memory, process and CPU-time limits and enforces none"
            )),
        },
        false,
        Some("memory_limit, process_limit and cpu_time_limit are refused; run on Windows, or use allow_degraded_limits()"),
    ));
    checks.push(check(
        "CPU rate cap",
        cpu_rate_supported().map(|()| "JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP".into()),
        false,
        Some("cpu_limit is refused; leave it unset or use allow_degraded_limits()"),
    ));
    Probe::new("windows", checks)
}
