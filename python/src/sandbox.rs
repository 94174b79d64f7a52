//! `Sandbox`: the built policy, its runs, the presets and the host-level functions.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::builder::{apply, SandboxBuilder};
use crate::child::Child;
use crate::convert;
use crate::errors::to_py;
use crate::result::RunResult;

/// A built sandbox: an immutable policy, reusable for any number of runs from any number of
/// threads. Build one with keyword arguments, `Sandbox(memory_limit=128 * MB, ...)`, or with
/// `Sandbox.builder()....build()`, or from a preset (`Sandbox.code_judge(dir).build()`).
///
/// Runs release the GIL: Python threads running sandboxes run in parallel.
#[pyclass(module = "nanobox", frozen)]
pub(crate) struct Sandbox {
    inner: nanobox::Sandbox,
}

impl From<nanobox::Sandbox> for Sandbox {
    fn from(inner: nanobox::Sandbox) -> Self {
        Sandbox { inner }
    }
}

/// Program, arguments and stdin of one run, converted while holding the GIL.
struct Invocation {
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    stdin: Option<nanobox::Stdin>,
}

impl Invocation {
    fn new(
        program: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Ok(Invocation {
            program: convert::os_string(program)?,
            args: convert::args(args)?,
            // `None` keeps the sandbox's own stdin.
            stdin: match stdin {
                Some(s) if !s.is_none() => Some(convert::stdin(Some(s))?),
                _ => None,
            },
        })
    }

    fn command<'a>(&self, sandbox: &'a nanobox::Sandbox) -> nanobox::Command<'a> {
        let c = sandbox.command(&self.program).args(&self.args);
        match &self.stdin {
            Some(s) => c.stdin(s.clone()),
            None => c,
        }
    }
}

#[pymethods]
impl Sandbox {
    /// Build a sandbox from keyword arguments (all optional; `None` means the default):
    /// `mounts` (list of `(host, sandbox)` or `(host, sandbox, Permission)` tuples), `working_dir`,
    /// `env` (mapping), `stdin`, `wall_time_limit` (`timedelta` or seconds), `output_limit`,
    /// `no_network` (bool), `allow_network` (pattern or list), `map_hosts` (mapping name ->
    /// address), `allow_addresses` (list of CIDRs), `upstream_proxy`, `hostname`, `tmp_size`,
    /// `seccomp_deny`, `seccomp_allow` (lists of syscall names), `memory_limit`, `cpu_limit`,
    /// `cpu_time_limit`, `process_limit`, `file_size_limit`, `kernel_pool_limits` (mapping pool
    /// name -> bound, e.g. `{"inotify_watches": 65536}`), `allow_degraded_limits`, `report_denials`,
    /// `allow_degraded_isolation` (bools). Raises a `SandboxError` subclass when an option is
    /// refused.
    #[new]
    #[pyo3(signature = (**options))]
    fn new(py: Python<'_>, options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let b = apply(nanobox::Sandbox::builder(), options)?;
        py.detach(|| b.build())
            .map(Sandbox::from)
            .map_err(|e| to_py(py, e))
    }

    /// A builder with nanobox's defaults.
    #[staticmethod]
    fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Build a sandbox from the TOML config file at `path` (docs/API.md, "Config file"; the
    /// same files `nanobox run --config` reads). Relative host paths in it are relative to the
    /// file's directory. Raises `ConfigError` for an unreadable or malformed file (naming the
    /// line), and what `build()` raises for options it refuses. To override some of the file's
    /// options first, use `SandboxBuilder.from_config(path)`.
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<Sandbox> {
        py.detach(|| nanobox::Sandbox::from_config(path)?.build())
            .map(Sandbox::from)
            .map_err(|e| to_py(py, e))
    }

    /// Preset for an AI agent's commands: `workspace` read-write at /workspace (also the working
    /// directory and HOME), no network, 4 GiB memory, 512 processes, 30 min wall time.
    /// Returns a builder.
    #[staticmethod]
    fn agent_executor(workspace: PathBuf) -> SandboxBuilder {
        SandboxBuilder {
            inner: nanobox::Sandbox::agent_executor(workspace),
        }
    }

    /// Preset for judging a submission: `submission` read-only at /submission, /tmp (256 MiB)
    /// as working directory, no network, 256 MiB memory, one CPU, 10 s CPU time, 30 s wall time,
    /// 64 processes, 64 MiB files, 16 MiB output. Returns a builder.
    #[staticmethod]
    fn code_judge(submission: PathBuf) -> SandboxBuilder {
        SandboxBuilder {
            inner: nanobox::Sandbox::code_judge(submission),
        }
    }

    /// Preset for a data script: `input` read-only at /input, `output` read-write at /output
    /// (the working directory), no network, 16 GiB memory, 1024 processes, 4 GiB /tmp.
    /// Returns a builder.
    #[staticmethod]
    fn data_analysis(input: PathBuf, output: PathBuf) -> SandboxBuilder {
        SandboxBuilder {
            inner: nanobox::Sandbox::data_analysis(input, output),
        }
    }

    /// Run `program` with `args` to completion and return a `RunResult`. `program` is looked up
    /// in the sandbox's PATH unless it contains a '/'. `stdin` (bytes, str or a path) replaces
    /// the sandbox's stdin for this run. The GIL is released while the program runs.
    #[pyo3(signature = (program, args = None, stdin = None))]
    fn run(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<RunResult> {
        let inv = Invocation::new(program, args, stdin)?;
        let sandbox = self.inner.clone();
        py.detach(move || inv.command(&sandbox).run())
            .map(RunResult)
            .map_err(|e| to_py(py, e))
    }

    /// `await sandbox.run_async(program, args, stdin)`: `run()` in the running asyncio loop's
    /// default executor (a thread; the GIL is released while the program runs). Call it from a
    /// coroutine; it returns an awaitable resolving to a `RunResult`.
    #[pyo3(signature = (program, args = None, stdin = None))]
    fn run_async<'py>(
        slf: &Bound<'py, Self>,
        program: &Bound<'py, PyAny>,
        args: Option<&Bound<'py, PyAny>>,
        stdin: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        // Convert now, so that bad arguments raise here rather than on await.
        Invocation::new(program, args, stdin)?;
        let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
        let run = slf.getattr("run")?;
        event_loop.call_method1("run_in_executor", (py.None(), run, program, args, stdin))
    }

    /// Start `program` and return a `Child` at once (after the program has been executed: a
    /// setup failure raises here). See `Child` for reading its output as it comes.
    #[pyo3(signature = (program, args = None, stdin = None))]
    fn spawn(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Child> {
        let inv = Invocation::new(program, args, stdin)?;
        let sandbox = self.inner.clone();
        py.detach(move || inv.command(&sandbox).spawn())
            .map(Child::start)
            .map_err(|e| to_py(py, e))
    }

    /// What is weaker than full isolation in every run, one line each; empty unless the
    /// degraded mode is in use.
    #[getter]
    fn degraded(&self) -> Vec<String> {
        self.inner.degraded().to_vec()
    }

    /// What this host supports and what a run will use: a dict with `platform` (str), `ready`
    /// (bool: runs can start here) and `checks`, a list of dicts with `name`, `status`
    /// (`"available"` or `"missing"`), `detail`, `required`, `used` and `fix` (str or None).
    #[staticmethod]
    fn probe(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let p = py.detach(nanobox::Sandbox::probe);
        let s = serde_json::to_string(&p)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        py.import("json")?.call_method1("loads", (s,))
    }

    /// Remove the cgroups of runs whose owner process is gone; returns the directories removed
    /// (a list of `pathlib.Path`).
    #[staticmethod]
    fn clean_stale(py: Python<'_>) -> PyResult<Vec<PathBuf>> {
        py.detach(nanobox::Sandbox::clean_stale)
            .map_err(|e| to_py(py, e))
    }

    fn __repr__(&self) -> String {
        format!("<nanobox.{:?}>", self.inner)
    }
}
