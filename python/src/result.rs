//! `RunResult`, `Outcome`, `NetworkEvent`, `Enforcement`: what a run produced.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// Why the program ended: `status` is `"exited"`, `"signaled"`, `"wall_time_limit"`,
/// `"cpu_time_limit"`, `"memory_limit"` or `"output_limit"`. Compares equal to another
/// `Outcome` with the same values and to its `status` string.
#[pyclass(module = "nanobox", frozen)]
#[derive(Clone)]
pub(crate) struct Outcome(pub(crate) nanobox::Outcome);

#[pymethods]
impl Outcome {
    /// The status name, as in `RunResult.outcome` and the JSON report.
    #[getter]
    fn status(&self) -> &'static str {
        self.0.status()
    }
    /// The exit code when the program exited by itself, else `None`.
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.0.code()
    }
    /// The signal number when the program was killed by a signal, else `None`.
    #[getter]
    fn signal(&self) -> Option<i32> {
        self.0.signal()
    }
    /// As `subprocess`: the exit code, `-N` after signal N, `-9` when a limit ended the run.
    #[getter]
    fn returncode(&self) -> i32 {
        returncode(self.0)
    }
    /// True when the program exited with code 0.
    #[getter]
    fn success(&self) -> bool {
        self.0.success()
    }
    /// The judge verdict for this outcome (see `RunResult.verdict`).
    #[getter]
    fn verdict(&self) -> &'static str {
        verdict(self.0)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        if let Ok(o) = other.cast::<Outcome>() {
            return o.get().0 == self.0;
        }
        if let Ok(s) = other.cast::<PyString>() {
            return s.to_cow().is_ok_and(|s| s == self.0.status());
        }
        false
    }
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.0.status().hash(&mut h);
        h.finish()
    }
    fn __str__(&self) -> String {
        self.0.to_string()
    }
    fn __repr__(&self) -> String {
        match self.0 {
            nanobox::Outcome::Exited(c) => format!("Outcome('exited', exit_code={c})"),
            nanobox::Outcome::Signaled(s) => format!("Outcome('signaled', signal={s})"),
            o => format!("Outcome({:?})", o.status()),
        }
    }
}

pub(crate) fn verdict(o: nanobox::Outcome) -> &'static str {
    nanobox::Verdict::of(o).as_str()
}

/// One request that reached the network allowlist's proxy.
#[pyclass(module = "nanobox", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct NetworkEvent {
    /// The requested host (normalized: punycode, lowercase; IPv6 in brackets).
    host: String,
    /// The requested port.
    port: u16,
    /// Whether the allowlist and the address rules let it through.
    allowed: bool,
    /// The pattern that matched, if any.
    pattern: Option<String>,
    /// The checked address connected to (`ip:port`), once connected.
    address: Option<String>,
    /// Why it was refused or failed, if it was.
    reason: Option<String>,
    /// How many requests this entry stands for (repeats are one entry).
    count: u64,
    /// Bytes relayed from the program.
    bytes_up: u64,
    /// Bytes relayed to the program.
    bytes_down: u64,
}

#[pymethods]
impl NetworkEvent {
    fn __repr__(&self) -> String {
        format!(
            "NetworkEvent(host={:?}, port={}, allowed={}, pattern={:?}, address={:?}, reason={:?}, count={}, bytes_up={}, bytes_down={})",
            self.host, self.port, if self.allowed { "True" } else { "False" },
            self.pattern, self.address, self.reason, self.count, self.bytes_up, self.bytes_down
        )
    }
}

impl From<&nanobox::NetworkEvent> for NetworkEvent {
    fn from(e: &nanobox::NetworkEvent) -> Self {
        NetworkEvent {
            host: e.host.clone(),
            port: e.port,
            allowed: e.allowed,
            pattern: e.pattern.clone(),
            address: e.address.clone(),
            reason: e.reason.clone(),
            count: e.count,
            bytes_up: e.bytes_up,
            bytes_down: e.bytes_down,
        }
    }
}

/// One limit that was set and the mechanism that enforced it (e.g. `memory` by `cgroup v1`).
#[pyclass(module = "nanobox", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Enforcement {
    /// `memory`, `cpu`, `cpu_time`, `processes` or `file_size`.
    limit: String,
    /// E.g. `cgroup v2`, `cgroup v1`, `RLIMIT_AS (degraded: per process, address space)`.
    mechanism: String,
}

#[pymethods]
impl Enforcement {
    fn __repr__(&self) -> String {
        format!(
            "Enforcement(limit={:?}, mechanism={:?})",
            self.limit, self.mechanism
        )
    }
}

/// SIGKILL, the signal the sandbox ends a run with when a limit fires.
const SIGKILL: i32 = 9;

/// `subprocess`'s returncode for an outcome: the exit code of a program that exited, `-N` for a
/// program killed by signal N, and `-9` (`-SIGKILL`) for a run a limit ended (wall time, CPU
/// time, memory, output), which the sandbox or the kernel ends with SIGKILL.
pub(crate) fn returncode(o: nanobox::Outcome) -> i32 {
    match o {
        nanobox::Outcome::Exited(c) => c,
        nanobox::Outcome::Signaled(s) => -s,
        _ => -SIGKILL,
    }
}

/// Raise `nanobox.CalledProcessError` for a result whose returncode is not 0.
pub(crate) fn check(result: &Bound<'_, RunResult>) -> PyResult<()> {
    let py = result.py();
    let r = result.get();
    let code = returncode(r.0.outcome);
    if code == 0 {
        return Ok(());
    }
    let cls = py
        .import("nanobox._errors")?
        .getattr("CalledProcessError")?;
    let e = cls.call1((code, r.args(py), &r.0.stdout, &r.0.stderr, result))?;
    Err(PyErr::from_value(e))
}

/// The result of a run: output, why it ended, time and memory used, network requests; and what
/// ran (`args`), when known.
#[pyclass(module = "nanobox", frozen)]
pub(crate) struct RunResult(pub(crate) nanobox::RunResult, pub(crate) Option<Py<PyAny>>);

#[pymethods]
impl RunResult {
    /// Captured stdout, UTF-8 with invalid bytes replaced.
    #[getter]
    fn stdout(&self) -> &str {
        &self.0.stdout
    }
    /// Captured stderr, UTF-8 with invalid bytes replaced.
    #[getter]
    fn stderr(&self) -> &str {
        &self.0.stderr
    }
    /// Captured stdout, byte for byte.
    #[getter]
    fn stdout_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.stdout_bytes)
    }
    /// Captured stderr, byte for byte.
    #[getter]
    fn stderr_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.stderr_bytes)
    }
    /// True when stdout was cut at the output limit.
    #[getter]
    fn stdout_truncated(&self) -> bool {
        self.0.stdout_truncated
    }
    /// True when stderr was cut at the output limit.
    #[getter]
    fn stderr_truncated(&self) -> bool {
        self.0.stderr_truncated
    }
    /// Why the program ended, as a string: `"exited"`, `"signaled"`, `"wall_time_limit"`,
    /// `"cpu_time_limit"`, `"memory_limit"`, `"output_limit"`.
    #[getter]
    fn outcome(&self) -> &'static str {
        self.0.outcome.status()
    }
    /// The exit code when the program exited by itself, else `None`.
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.0.exit_code()
    }
    /// As `subprocess.CompletedProcess.returncode`: the exit code of a program that exited,
    /// `-N` for one killed by signal N, `-9` (`-SIGKILL`) when a limit ended the run (see
    /// `outcome` for which).
    #[getter]
    fn returncode(&self) -> i32 {
        returncode(self.0.outcome)
    }
    /// What ran, as `subprocess.CompletedProcess.args`: `[program, *args]`, or the command line
    /// of a `shell=True` run; `None` when not known.
    #[getter]
    fn args(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.1.as_ref().map(|a| a.clone_ref(py))
    }
    /// Raise `CalledProcessError` (a `subprocess.CalledProcessError`) when `returncode` is not 0.
    fn check_returncode(slf: &Bound<'_, Self>) -> PyResult<()> {
        check(slf)
    }
    /// The signal number when the program was killed by a signal, else `None`.
    #[getter]
    fn signal(&self) -> Option<i32> {
        self.0.outcome.signal()
    }
    /// True when the program exited with code 0.
    #[getter]
    fn success(&self) -> bool {
        self.0.success()
    }
    /// A judge's verdict: `"accepted"` (exit 0), `"runtime_error"` (non-zero exit or signal),
    /// `"time_limit"` (CPU or wall time), `"memory_limit"`, `"output_limit"`.
    #[getter]
    fn verdict(&self) -> &'static str {
        verdict(self.0.outcome)
    }
    /// The outcome as an `Outcome` object (status, exit_code, signal).
    #[getter]
    fn outcome_detail(&self) -> Outcome {
        Outcome(self.0.outcome)
    }
    /// Wall-clock time from the program's start to its end (`datetime.timedelta`).
    #[getter]
    fn wall_time(&self) -> Duration {
        self.0.wall_time
    }
    /// CPU time (user + system) of the whole sandbox (`datetime.timedelta`).
    #[getter]
    fn cpu_time(&self) -> Duration {
        self.0.cpu_time
    }
    /// Peak memory in bytes (see `accounting`).
    #[getter]
    fn peak_memory(&self) -> u64 {
        self.0.peak_memory
    }
    /// Where cpu_time and peak_memory come from: `"cgroup v2"`, `"cgroup v1"` or `"rusage"`.
    #[getter]
    fn accounting(&self) -> &'static str {
        self.0.accounting
    }
    /// Which mechanism enforced each limit that was set.
    #[getter]
    fn limits(&self) -> Vec<Enforcement> {
        self.0
            .limits
            .iter()
            .map(|e| Enforcement {
                limit: e.limit.to_string(),
                mechanism: e.mechanism.clone(),
            })
            .collect()
    }
    /// Every request through the network allowlist's proxy (empty without `allow_network`).
    #[getter]
    fn network(&self) -> Vec<NetworkEvent> {
        self.0.network.iter().map(NetworkEvent::from).collect()
    }
    /// Refused requests left out of `network` (past the log's bound); 0 when it is complete.
    #[getter]
    fn network_omitted(&self) -> u64 {
        self.0.network_omitted
    }
    /// What protected this run less than full isolation, one line each; empty normally.
    #[getter]
    fn degraded(&self) -> Vec<String> {
        self.0.degraded.clone()
    }
    /// What the platform's sandbox denied the run (built with `report_denials`; macOS): a list
    /// of `{"operation", "target", "process", "pid"}`; empty elsewhere.
    #[getter]
    fn denials<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, pyo3::types::PyDict>>> {
        self.0
            .denials
            .iter()
            .map(|d| {
                let o = pyo3::types::PyDict::new(py);
                o.set_item("operation", &d.operation)?;
                o.set_item("target", &d.target)?;
                o.set_item("process", &d.process)?;
                o.set_item("pid", d.pid)?;
                Ok(o)
            })
            .collect()
    }
    /// Why `denials` could not be read, when it could not; else None.
    #[getter]
    fn denials_unread(&self) -> Option<String> {
        self.0.denials_unread.clone()
    }
    /// The JSON report of the CLI's `--json` (status, exit_code, signal, stdout, stderr, ...).
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.0)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }
    /// The JSON report as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = self.to_json()?;
        py.import("json")?.call_method1("loads", (s,))
    }
    fn __repr__(&self) -> String {
        format!("<RunResult: {}>", self.0)
    }
}
