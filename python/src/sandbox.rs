//! `Sandbox`: the built policy, its runs, the presets and the host-level functions.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::builder::{apply, SandboxBuilder};
use crate::child::Child;
use crate::convert;
use crate::errors::{invalid_option, to_py};
use crate::result::{self, RunResult};

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

/// The per-run keyword options of `run`, `run_async`, `spawn` and `shell`, as given.
#[derive(Default, Clone, Copy)]
struct RunOptions<'a, 'py> {
    stdin: Option<&'a Bound<'py, PyAny>>,
    timeout: Option<&'a Bound<'py, PyAny>>,
    env: Option<&'a Bound<'py, PyAny>>,
    cwd: Option<&'a Bound<'py, PyAny>>,
    output_limit: Option<&'a Bound<'py, PyAny>>,
    shell: bool,
}

/// `Some(obj)` unless it is absent or `None`.
fn given<'a, 'py>(obj: Option<&'a Bound<'py, PyAny>>) -> Option<&'a Bound<'py, PyAny>> {
    obj.filter(|o| !o.is_none())
}

/// Program, arguments, stdin and per-run options of one run, converted while holding the GIL.
struct Invocation {
    program: OsString,
    args: Vec<OsString>,
    /// The command line of `shell=True` (run as `/bin/sh -c LINE`).
    shell: Option<String>,
    stdin: Option<nanobox::Stdin>,
    timeout: Option<Duration>,
    env: Vec<(String, Option<String>)>,
    cwd: Option<PathBuf>,
    output_limit: Option<u64>,
}

impl Invocation {
    fn new(
        program: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        o: RunOptions<'_, '_>,
    ) -> PyResult<Self> {
        let py = program.py();
        let (program, args, shell) = if o.shell {
            if given(args).is_some() {
                return Err(PyValueError::new_err(
                    "shell=True runs `program` as a command line (/bin/sh -c program): \
                     args must be None; put the arguments in the command line",
                ));
            }
            let line: String = program.extract().map_err(|_| {
                PyTypeError::new_err("shell=True: program must be a str, the command line")
            })?;
            (OsString::new(), Vec::new(), Some(line))
        } else {
            (convert::os_string(program)?, convert::args(args)?, None)
        };
        // `None` keeps the sandbox's own stdin.
        let stdin = match given(o.stdin) {
            Some(s) if convert::is_pipe(s) => {
                if cfg!(not(unix)) {
                    return Err(PyValueError::new_err(
                        "stdin=PIPE needs a Unix host (the pipe is handed over as a file descriptor)",
                    ));
                }
                Some(nanobox::Stdin::Piped)
            }
            Some(s) => Some(convert::stdin(Some(s))?),
            None => None,
        };
        let timeout = match given(o.timeout) {
            Some(t) => {
                let d = convert::duration(t, "timeout")?;
                if d.is_zero() {
                    return Err(invalid_option(py, "timeout", "must be longer than zero"));
                }
                Some(d)
            }
            None => None,
        };
        let output_limit = match given(o.output_limit) {
            Some(n) => {
                if n.is_instance_of::<pyo3::types::PyBool>() {
                    return Err(PyTypeError::new_err(
                        "output_limit: expected a number of bytes, not a bool",
                    ));
                }
                let n: u64 = n.extract()?;
                if n == 0 {
                    return Err(invalid_option(
                        py,
                        "output_limit",
                        "must be at least 1 byte",
                    ));
                }
                Some(n)
            }
            None => None,
        };
        Ok(Invocation {
            program,
            args,
            shell,
            stdin,
            timeout,
            env: match given(o.env) {
                Some(e) => convert::env_changes(e)?,
                None => Vec::new(),
            },
            cwd: given(o.cwd).map(|d| d.extract::<PathBuf>()).transpose()?,
            output_limit,
        })
    }

    /// `run()` cannot hand anyone the writing end of a pipe.
    fn refuse_pipe(&self, method: &str) -> PyResult<()> {
        if matches!(self.stdin, Some(nanobox::Stdin::Piped)) {
            return Err(PyValueError::new_err(format!(
                "stdin=PIPE is for spawn(): {method}() returns when the program has ended, so \
                 nobody could write to the pipe; pass the input as bytes or str, or use \
                 spawn(..., stdin=PIPE) and write to child.stdin"
            )));
        }
        Ok(())
    }

    /// What ran, for `RunResult.args` and `CalledProcessError.cmd`: the command line of
    /// `shell=True`, else the list `[program, *args]`.
    fn cmd(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match &self.shell {
            Some(line) => line.into_pyobject(py)?.into_any().unbind(),
            None => {
                let all: Vec<&OsString> =
                    std::iter::once(&self.program).chain(&self.args).collect();
                PyList::new(py, all)?.into_any().unbind()
            }
        })
    }

    fn command<'a>(&self, sandbox: &'a nanobox::Sandbox) -> nanobox::Result<nanobox::Command<'a>> {
        let mut c = match &self.shell {
            Some(line) => sandbox.shell_command(line)?,
            None => sandbox.command(&self.program).args(&self.args),
        };
        if let Some(s) = &self.stdin {
            c = c.stdin(s.clone());
        }
        if let Some(t) = self.timeout {
            c = c.timeout(t);
        }
        if let Some(d) = &self.cwd {
            c = c.current_dir(d);
        }
        for (k, v) in &self.env {
            c = match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        if let Some(n) = self.output_limit {
            c = c.output_limit(n);
        }
        Ok(c)
    }

    /// Run to completion with the GIL released; with `check`, raise `CalledProcessError` for a
    /// non-zero returncode.
    fn run(
        self,
        py: Python<'_>,
        sandbox: &nanobox::Sandbox,
        check: bool,
    ) -> PyResult<Py<RunResult>> {
        self.refuse_pipe("run")?;
        let cmd = self.cmd(py)?;
        let sandbox = sandbox.clone();
        let r = py
            .detach(move || self.command(&sandbox)?.run())
            .map_err(|e| to_py(py, e))?;
        let r = Bound::new(py, RunResult(r, Some(cmd)))?;
        if check {
            result::check(&r)?;
        }
        Ok(r.unbind())
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
    /// the sandbox's stdin for this run (`PIPE` is refused with `ValueError`: use `spawn`).
    /// Per-run options, each over the sandbox's own for this run only: `timeout` (seconds or a
    /// `timedelta`, > 0: the wall-time limit, tighter or looser), `env` (a mapping; a `str`
    /// value sets the variable, `None` removes it), `cwd` (the working directory, a sandbox
    /// path; PWD is set to it), `output_limit` (bytes, each of stdout and stderr). `shell=True`
    /// runs `program` as a command line, `/bin/sh -c program` (`args` must then be None).
    /// `check=True` raises `CalledProcessError` when `returncode` is not 0. The GIL is released
    /// while the program runs.
    #[pyo3(signature = (program, args = None, stdin = None, *, timeout = None, env = None,
                        cwd = None, output_limit = None, shell = false, check = false))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        env: Option<&Bound<'_, PyAny>>,
        cwd: Option<&Bound<'_, PyAny>>,
        output_limit: Option<&Bound<'_, PyAny>>,
        shell: bool,
        check: bool,
    ) -> PyResult<Py<RunResult>> {
        let o = RunOptions {
            stdin,
            timeout,
            env,
            cwd,
            output_limit,
            shell,
        };
        Invocation::new(program, args, o)?.run(py, &self.inner, check)
    }

    /// A persistent bash in this sandbox (`Bash`): `run(cmd)` runs one command after another
    /// in the same shell, so `cd`, `export`, variables and background processes persist; each
    /// command has its own timeout (default: the sandbox's `wall_time_limit`) and output. Use it
    /// as a context manager; leaving the block ends the shell and everything in it.
    fn bash(&self, py: Python<'_>) -> PyResult<crate::bash::Bash> {
        let sandbox = self.inner.clone();
        py.detach(move || sandbox.bash())
            .map(crate::bash::Bash::new)
            .map_err(|e| to_py(py, e))
    }

    /// Run the command line `cmd` as `/bin/sh -c cmd` to completion: `run(cmd, shell=True,
    /// ...)`, with the same options.
    #[pyo3(signature = (cmd, stdin = None, *, timeout = None, env = None, cwd = None,
                        output_limit = None, check = false))]
    #[allow(clippy::too_many_arguments)]
    fn shell(
        &self,
        py: Python<'_>,
        cmd: &Bound<'_, PyAny>,
        stdin: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        env: Option<&Bound<'_, PyAny>>,
        cwd: Option<&Bound<'_, PyAny>>,
        output_limit: Option<&Bound<'_, PyAny>>,
        check: bool,
    ) -> PyResult<Py<RunResult>> {
        let o = RunOptions {
            stdin,
            timeout,
            env,
            cwd,
            output_limit,
            shell: true,
        };
        Invocation::new(cmd, None, o)?.run(py, &self.inner, check)
    }

    /// `await sandbox.run_async(program, args, stdin, **options)`: `run()` with the same
    /// arguments in the running asyncio loop's default executor (a thread; the GIL is released
    /// while the program runs). Call it from a coroutine; it returns an awaitable resolving to a
    /// `RunResult`.
    #[pyo3(signature = (program, args = None, stdin = None, *, timeout = None, env = None,
                        cwd = None, output_limit = None, shell = false, check = false))]
    #[allow(clippy::too_many_arguments)]
    fn run_async<'py>(
        slf: &Bound<'py, Self>,
        program: &Bound<'py, PyAny>,
        args: Option<&Bound<'py, PyAny>>,
        stdin: Option<&Bound<'py, PyAny>>,
        timeout: Option<&Bound<'py, PyAny>>,
        env: Option<&Bound<'py, PyAny>>,
        cwd: Option<&Bound<'py, PyAny>>,
        output_limit: Option<&Bound<'py, PyAny>>,
        shell: bool,
        check: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let o = RunOptions {
            stdin,
            timeout,
            env,
            cwd,
            output_limit,
            shell,
        };
        // Convert now, so that bad arguments raise here rather than on await.
        Invocation::new(program, args, o)?.refuse_pipe("run_async")?;
        let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("timeout", timeout)?;
        kwargs.set_item("env", env)?;
        kwargs.set_item("cwd", cwd)?;
        kwargs.set_item("output_limit", output_limit)?;
        kwargs.set_item("shell", shell)?;
        kwargs.set_item("check", check)?;
        let run = py
            .import("functools")?
            .getattr("partial")?
            .call((slf.getattr("run")?, program, args, stdin), Some(&kwargs))?;
        event_loop.call_method1("run_in_executor", (py.None(), run))
    }

    /// Start `program` and return a `Child` at once (after the program has been executed: a
    /// setup failure raises here). See `Child` for reading its output as it comes. `stdin=PIPE`
    /// gives the program a pipe that `child.stdin` writes to; the other arguments are those of
    /// `run()` (but `check`).
    #[pyo3(signature = (program, args = None, stdin = None, *, timeout = None, env = None,
                        cwd = None, output_limit = None, shell = false))]
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        &self,
        py: Python<'_>,
        program: &Bound<'_, PyAny>,
        args: Option<&Bound<'_, PyAny>>,
        stdin: Option<&Bound<'_, PyAny>>,
        timeout: Option<&Bound<'_, PyAny>>,
        env: Option<&Bound<'_, PyAny>>,
        cwd: Option<&Bound<'_, PyAny>>,
        output_limit: Option<&Bound<'_, PyAny>>,
        shell: bool,
    ) -> PyResult<Child> {
        let o = RunOptions {
            stdin,
            timeout,
            env,
            cwd,
            output_limit,
            shell,
        };
        let inv = Invocation::new(program, args, o)?;
        let cmd = inv.cmd(py)?;
        let sandbox = self.inner.clone();
        let child = py
            .detach(move || inv.command(&sandbox)?.spawn())
            .map_err(|e| to_py(py, e))?;
        Child::start(py, child, cmd)
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
