//! A run's denials, read from the unified log once the run has ended
//! ([`crate::SandboxBuilder::report_denials`]). The selection and the parsing are the
//! platform-neutral [`crate::seatbelt::violations`]; this is only the `log show` call.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::result::Denial;
use crate::seatbelt::violations;

/// `log` by its absolute path, never looked up in PATH.
const LOG: &str = "/usr/bin/log";

/// The unified log takes a moment to hold what the kernel reported: the run's last denials are
/// read after this much.
const SETTLE: Duration = Duration::from_millis(300);

/// The denials logged with `tag` since `start` (a second earlier, for the log's resolution).
pub(crate) fn read(tag: &str, start: SystemTime) -> Result<Vec<Denial>, String> {
    std::thread::sleep(SETTLE);
    let since = start
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(start)
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let out = Command::new(LOG)
        .args(["show", "--style", "ndjson", "--predicate"])
        .arg(violations::log_predicate(tag))
        .arg("--start")
        .arg(local_time(since as libc::time_t)?)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("running {LOG} show: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{LOG} show failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| violations::parse(line, tag))
        .map(|v| Denial {
            operation: v.operation,
            target: v.target,
            process: v.process,
            pid: v.pid,
        })
        .collect())
}

/// `t` as `log show --start` reads it: `YYYY-MM-DD HH:MM:SS` in local time.
fn local_time(t: libc::time_t) -> Result<String, String> {
    // SAFETY: an all-zero tm is a valid value for localtime_r to overwrite.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals for the duration of the call.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return Err("localtime_r failed".into());
    }
    Ok(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    ))
}
