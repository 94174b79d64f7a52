//! What a run produced.

use std::fmt;
use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Why the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The program exited by itself with this code.
    Exited(i32),
    /// The program was killed by this signal (also after [`crate::Child::kill`], with `SIGKILL`).
    Signaled(i32),
    /// The wall-clock limit fired; the program and everything it started were killed.
    WallTimeLimit,
    /// The program wrote more than the output limit to stdout or stderr; it was stopped.
    OutputLimit,
    /// The memory limit was reached and the kernel's OOM killer ended a process of the sandbox
    /// (known from the cgroup's OOM-kill counter, not guessed from `SIGKILL`); the program then
    /// died or exited non-zero. With the degraded memory limit (`RLIMIT_AS`, see
    /// [`crate::SandboxBuilder::allow_degraded_limits`]), nothing is killed: the limit refused an
    /// address-space request of a process of the sandbox (seen by a seccomp observer), and the
    /// program then died or exited non-zero.
    MemoryLimit,
    /// The CPU-time limit was spent: by the whole sandbox (the init ended the run) or by one
    /// process (`SIGXCPU` / `SIGKILL` from `RLIMIT_CPU`).
    CpuTimeLimit,
}

impl Outcome {
    /// Every name [`Outcome::status`] can return.
    pub const STATUSES: &'static [&'static str] = &[
        "exited",
        "signaled",
        "wall_time_limit",
        "output_limit",
        "memory_limit",
        "cpu_time_limit",
    ];

    /// True for `Exited(0)`.
    pub fn success(&self) -> bool {
        matches!(self, Outcome::Exited(0))
    }
    /// The exit code, if the program exited by itself.
    pub fn code(&self) -> Option<i32> {
        match self {
            Outcome::Exited(c) => Some(*c),
            _ => None,
        }
    }
    /// The signal, if the program was killed by one.
    pub fn signal(&self) -> Option<i32> {
        match self {
            Outcome::Signaled(s) => Some(*s),
            _ => None,
        }
    }
    /// The name used in JSON reports: `exited`, `signaled`, `wall_time_limit`, `output_limit`,
    /// `memory_limit`, `cpu_time_limit`.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Exited(_) => "exited",
            Outcome::Signaled(_) => "signaled",
            Outcome::WallTimeLimit => "wall_time_limit",
            Outcome::OutputLimit => "output_limit",
            Outcome::MemoryLimit => "memory_limit",
            Outcome::CpuTimeLimit => "cpu_time_limit",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited(c) => write!(f, "exited with code {c}"),
            Outcome::Signaled(s) => write!(f, "killed by signal {s}"),
            Outcome::WallTimeLimit => f.write_str("stopped by the wall-time limit"),
            Outcome::OutputLimit => f.write_str("stopped by the output limit"),
            Outcome::MemoryLimit => f.write_str("stopped by the memory limit"),
            Outcome::CpuTimeLimit => f.write_str("stopped by the CPU-time limit"),
        }
    }
}

/// The result of [`crate::Sandbox::run`].
///
/// ```
/// use nanobox::{Outcome, Sandbox};
/// # fn main() -> nanobox::Result<()> {
/// let sandbox = Sandbox::builder().build()?;
/// let r = sandbox.run("sh", &["-c", "echo out; echo err >&2; exit 3"])?;
/// assert_eq!(r.outcome, Outcome::Exited(3));
/// assert_eq!(r.exit_code(), Some(3));
/// assert!(!r.success());
/// assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("out\n", "err\n"));
/// assert_eq!(r.outcome.status(), "exited");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunResult {
    /// Captured stdout, UTF-8 with invalid bytes replaced.
    pub stdout: String,
    /// Captured stderr, UTF-8 with invalid bytes replaced.
    pub stderr: String,
    /// Captured stdout, byte for byte.
    pub stdout_bytes: Vec<u8>,
    /// Captured stderr, byte for byte.
    pub stderr_bytes: Vec<u8>,
    /// True when stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// True when stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// Why the program ended.
    pub outcome: Outcome,
    /// Wall-clock time from the program's start to the end of the run.
    pub wall_time: Duration,
    /// CPU time (user + system) used by the whole sandbox; see [`RunResult::accounting`] for
    /// where it was measured.
    pub cpu_time: Duration,
    /// Peak memory of the whole sandbox in bytes (cgroup), or of its largest process (rusage
    /// fallback); see [`RunResult::accounting`].
    pub peak_memory: u64,
    /// Where `cpu_time` and `peak_memory` come from: `"cgroup v2"`, `"cgroup v1"` (the whole
    /// sandbox, every process), `"rusage"` (the processes the sandbox's init reaped before the
    /// program ended; peak memory of the largest single process), or `"watchdog"` (macOS: the
    /// process tree sampled every 50 ms).
    pub accounting: &'static str,
    /// Which mechanism enforced each limit that was set, e.g. `memory` by `cgroup v1`.
    pub limits: Vec<Enforcement>,
    /// Every connection attempt through the network allowlist's proxy: host, port, allowed or
    /// refused (and why), bytes each way. Empty without [`crate::SandboxBuilder::allow_network`].
    pub network: Vec<crate::NetworkEvent>,
    /// Refused requests left out of [`RunResult::network`] because it already held the log's bound
    /// of distinct refused entries (10 000). 0 means the list is complete; allowed requests are
    /// never left out (repeats are one entry with a `count`).
    pub network_omitted: u64,
    /// What protected this run less than full isolation would have, one line each; empty for a
    /// fully isolated run. Only a sandbox built with an explicit opt-in (e.g.
    /// [`crate::SandboxBuilder::allow_degraded_isolation`]) can run degraded.
    pub degraded: Vec<String>,
    /// What the platform's sandbox denied the run, when it was built with
    /// [`crate::SandboxBuilder::report_denials`] (macOS; empty elsewhere).
    pub denials: Vec<Denial>,
    /// Why [`RunResult::denials`] could not be read, when it could not (the unified log did not
    /// answer); `None` when the list is what the log holds, or when denials were not asked for.
    pub denials_unread: Option<String>,
}

/// One operation the platform's sandbox denied a run (macOS: a Seatbelt denial from the
/// unified log).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Denial {
    /// The operation, e.g. `file-write-create`, `network-outbound`.
    pub operation: String,
    /// What it was denied on: a path, an address.
    pub target: Option<String>,
    /// The name of the process denied.
    pub process: Option<String>,
    /// Its host process id.
    pub pid: Option<u32>,
}

impl RunResult {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn new(
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        stdout_truncated: bool,
        stderr_truncated: bool,
        outcome: Outcome,
        wall_time: Duration,
    ) -> Self {
        RunResult {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            stdout_bytes: stdout,
            stderr_bytes: stderr,
            stdout_truncated,
            stderr_truncated,
            outcome,
            wall_time,
            cpu_time: Duration::ZERO,
            peak_memory: 0,
            accounting: "rusage",
            limits: Vec::new(),
            network: Vec::new(),
            network_omitted: 0,
            degraded: Vec::new(),
            denials: Vec::new(),
            denials_unread: None,
        }
    }

    /// True when the program exited with code 0.
    pub fn success(&self) -> bool {
        self.outcome.success()
    }

    /// The exit code, if the program exited by itself.
    pub fn exit_code(&self) -> Option<i32> {
        self.outcome.code()
    }
}

/// One limit and the mechanism that enforced it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Enforcement {
    /// `memory`, `cpu`, `cpu_time`, `processes`, `file_size`.
    pub limit: &'static str,
    /// E.g. `cgroup v2`, `cgroup v1`, `RLIMIT_AS (degraded: per process, address space)`.
    pub mechanism: String,
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} after {:.3} s ({} bytes stdout{}, {} bytes stderr{})",
            self.outcome,
            self.wall_time.as_secs_f64(),
            self.stdout_bytes.len(),
            if self.stdout_truncated {
                ", truncated"
            } else {
                ""
            },
            self.stderr_bytes.len(),
            if self.stderr_truncated {
                ", truncated"
            } else {
                ""
            },
        )
    }
}

/// Serialised as the run report of the CLI's `--json`: `status`, `exit_code`, `signal`, `stdout`,
/// `stderr`, `stdout_truncated`, `stderr_truncated`, `wall_time_ms`, `cpu_time_ms`,
/// `peak_memory_bytes`, `accounting`, `limits` (a list of `{limit, mechanism}`), `network` (a list of
/// `{host, port, allowed, pattern, address, reason, count, bytes_up, bytes_down}`, repeats as one
/// entry with a `count`), `network_truncated` (whether refused requests were left out of `network`)
/// and `network_omitted` (how many), `degraded` (a list of strings, empty for a fully isolated
/// run).
impl Serialize for RunResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RunResult", 19)?;
        st.serialize_field("status", self.outcome.status())?;
        st.serialize_field("exit_code", &self.outcome.code())?;
        st.serialize_field("signal", &self.outcome.signal())?;
        st.serialize_field("stdout", &self.stdout)?;
        st.serialize_field("stderr", &self.stderr)?;
        st.serialize_field("stdout_truncated", &self.stdout_truncated)?;
        st.serialize_field("stderr_truncated", &self.stderr_truncated)?;
        st.serialize_field("wall_time_ms", &(self.wall_time.as_secs_f64() * 1000.0))?;
        st.serialize_field("cpu_time_ms", &(self.cpu_time.as_secs_f64() * 1000.0))?;
        st.serialize_field("peak_memory_bytes", &self.peak_memory)?;
        st.serialize_field("accounting", self.accounting)?;
        st.serialize_field("limits", &self.limits)?;
        st.serialize_field("network", &self.network)?;
        st.serialize_field("network_truncated", &(self.network_omitted > 0))?;
        st.serialize_field("network_omitted", &self.network_omitted)?;
        st.serialize_field("degraded", &self.degraded)?;
        st.serialize_field("denials", &self.denials)?;
        st.serialize_field("denials_unread", &self.denials_unread)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_lists_every_outcome_s_name() {
        // The match is exhaustive: a new variant does not compile until it is listed here.
        let every = |o: Outcome| match o {
            Outcome::Exited(_)
            | Outcome::Signaled(_)
            | Outcome::WallTimeLimit
            | Outcome::OutputLimit
            | Outcome::MemoryLimit
            | Outcome::CpuTimeLimit => o.status(),
        };
        let names: Vec<&str> = [
            Outcome::Exited(0),
            Outcome::Signaled(9),
            Outcome::WallTimeLimit,
            Outcome::OutputLimit,
            Outcome::MemoryLimit,
            Outcome::CpuTimeLimit,
        ]
        .into_iter()
        .map(every)
        .collect();
        assert_eq!(names, Outcome::STATUSES);
    }

    #[test]
    fn json_report_has_contract_fields() {
        let r = RunResult::new(
            b"hi\xff".to_vec(),
            vec![],
            false,
            true,
            Outcome::Signaled(9),
            Duration::from_millis(1500),
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "signaled");
        assert_eq!(v["exit_code"], serde_json::Value::Null);
        assert_eq!(v["signal"], 9);
        assert_eq!(v["stdout"], "hi\u{fffd}");
        assert_eq!(v["stderr_truncated"], true);
        assert_eq!(v["wall_time_ms"], 1500.0);
        assert_eq!(v["cpu_time_ms"], 0.0);
        assert_eq!(v["peak_memory_bytes"], 0);
        assert_eq!(v["network_truncated"], false);
        assert_eq!(v["network_omitted"], 0);
        assert_eq!(Outcome::MemoryLimit.status(), "memory_limit");
        assert_eq!(Outcome::CpuTimeLimit.status(), "cpu_time_limit");
        assert_eq!(r.stdout_bytes, b"hi\xff");
        assert!(r.to_string().contains("killed by signal 9"));
    }
}
