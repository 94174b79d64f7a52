//! `Bash`: a persistent shell in a sandbox (`Sandbox.bash()`), over `nanobox::Bash`.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::convert;
use crate::errors::to_py;
use crate::result::Outcome;

/// The default grace of `close()`.
const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// What one command of a `Bash` did.
#[pyclass(module = "nanobox", frozen, get_all)]
pub(crate) struct BashOutput {
    /// What it wrote on stdout (lossy UTF-8), up to the sandbox's output limit.
    stdout: String,
    /// What it wrote on stderr, up to the same limit.
    stderr: String,
    /// Its `$?` (130 after a timeout's interrupt); None when the shell ended before reporting
    /// one (the command ran `exit`, or a timeout had to kill the shell).
    exit_code: Option<i32>,
    /// Whether its timeout interrupted it.
    timed_out: bool,
    /// Whether stdout or stderr was cut at the output limit.
    truncated: bool,
    /// Seconds from sending the command to its end.
    duration: f64,
}

#[pymethods]
impl BashOutput {
    /// As `subprocess`: `exit_code`, or -9 when the shell ended without one.
    #[getter]
    fn returncode(&self) -> i32 {
        self.exit_code.unwrap_or(-9)
    }
    /// Exited 0 in time.
    #[getter]
    fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
    fn __repr__(&self) -> String {
        format!(
            "BashOutput(exit_code={:?}, timed_out={}, stdout={:?}, stderr={:?})",
            self.exit_code, self.timed_out, self.stdout, self.stderr
        )
    }
}

/// A long-lived bash in a sandbox: `run(cmd)` runs one command after another in the same
/// shell, so `cd`, `export`, variables, functions and background processes persist. A context
/// manager: leaving the block ends the shell and everything in it.
#[pyclass(module = "nanobox")]
pub(crate) struct Bash {
    inner: Mutex<Option<nanobox::Bash>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn closed() -> PyErr {
    PyRuntimeError::new_err("this Bash was closed")
}

impl Bash {
    pub(crate) fn new(b: nanobox::Bash) -> Bash {
        Bash {
            inner: Mutex::new(Some(b)),
        }
    }
}

#[pymethods]
impl Bash {
    /// Run `cmd` (any bash input) in the shell and return its `BashOutput`. `timeout` (seconds
    /// or a `timedelta`) replaces the shell's default (`set_timeout`; initially the sandbox's
    /// `wall_time_limit`) for this command; past it the command gets SIGINT as at Ctrl-C and the
    /// shell goes on, or, if it does not end within 2 s, the shell is killed. The GIL is released
    /// while the command runs.
    #[pyo3(signature = (cmd, timeout = None))]
    fn run(
        &self,
        py: Python<'_>,
        cmd: &str,
        timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<BashOutput> {
        let timeout = match timeout {
            Some(t) if !t.is_none() => Some(convert::duration(t, "timeout")?),
            _ => None,
        };
        let r = py.detach(|| {
            let mut g = lock(&self.inner);
            let b = g.as_mut().ok_or_else(closed)?;
            let r = match timeout {
                Some(t) => b.run_with_timeout(cmd, Some(t)),
                None => b.run(cmd),
            };
            Ok::<_, PyErr>(r)
        })?;
        let o = r.map_err(|e| to_py(py, e))?;
        Ok(BashOutput {
            stdout: o.stdout,
            stderr: o.stderr,
            exit_code: o.exit_code,
            timed_out: o.timed_out,
            truncated: o.truncated,
            duration: o.duration.as_secs_f64(),
        })
    }

    /// The default timeout of `run` (seconds or a `timedelta`; None: no limit).
    fn set_timeout(&self, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let t = match timeout {
            Some(t) if !t.is_none() => Some(convert::duration(t, "timeout")?),
            _ => None,
        };
        lock(&self.inner)
            .as_mut()
            .ok_or_else(closed)?
            .set_timeout(t);
        Ok(())
    }

    /// Whether the shell still runs.
    #[getter]
    fn alive(&self) -> bool {
        lock(&self.inner).as_mut().is_some_and(|b| b.is_alive())
    }

    /// End the shell: end-of-file on its stdin, up to `grace` (default 2 s) for it to exit,
    /// then kill what is left. Returns the shell's `Outcome`.
    #[pyo3(signature = (grace = None))]
    fn close(&self, py: Python<'_>, grace: Option<&Bound<'_, PyAny>>) -> PyResult<Outcome> {
        let grace = match grace {
            Some(g) if !g.is_none() => convert::duration(g, "grace")?,
            _ => DEFAULT_GRACE,
        };
        let b = lock(&self.inner).take().ok_or_else(closed)?;
        py.detach(|| b.close(grace))
            .map(Outcome)
            .map_err(|e| to_py(py, e))
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Kill the shell and everything in it.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        let b = lock(&self.inner).take();
        py.detach(move || drop(b));
        false
    }
}
