//! `SandboxBuilder`: every method of the Rust builder, chainable, plus the keyword-argument form
//! shared with the `Sandbox(...)` constructor.

use std::path::PathBuf;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping, PyTuple};

use crate::convert;
use crate::errors::{invalid_option, to_py};
use crate::sandbox::Sandbox;

/// How a host path is visible inside the sandbox.
#[pyclass(module = "nanobox", eq, eq_int, hash, frozen, from_py_object)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Permission {
    /// The program can read but never modify it.
    ReadOnly,
    /// The program can read and write it; changes reach the host.
    ReadWrite,
}

#[pymethods]
impl Permission {
    /// Alias of `Permission.ReadOnly`.
    #[classattr]
    #[allow(non_snake_case)]
    fn READ_ONLY() -> Permission {
        Permission::ReadOnly
    }
    /// Alias of `Permission.ReadWrite`.
    #[classattr]
    #[allow(non_snake_case)]
    fn READ_WRITE() -> Permission {
        Permission::ReadWrite
    }
}

impl From<Permission> for nanobox::Permission {
    fn from(p: Permission) -> Self {
        match p {
            Permission::ReadOnly => nanobox::Permission::ReadOnly,
            Permission::ReadWrite => nanobox::Permission::ReadWrite,
        }
    }
}

/// Builds a `Sandbox`. Every method changes this builder and returns it, so calls chain;
/// `build()` checks every option and returns the sandbox (or raises a `SandboxError`).
/// Obtain one with `Sandbox.builder()` or a preset (`Sandbox.code_judge(dir)`, ...).
#[pyclass(module = "nanobox")]
#[derive(Default)]
pub(crate) struct SandboxBuilder {
    pub(crate) inner: nanobox::SandboxBuilder,
}

type B<'py> = PyRefMut<'py, SandboxBuilder>;

fn with(
    mut slf: B<'_>,
    f: impl FnOnce(nanobox::SandboxBuilder) -> nanobox::SandboxBuilder,
) -> B<'_> {
    let b = std::mem::take(&mut slf.inner);
    slf.inner = f(b);
    slf
}

fn add_mount(
    b: nanobox::SandboxBuilder,
    host: PathBuf,
    sandbox: PathBuf,
    permission: Permission,
    follow_symlinks: bool,
) -> nanobox::SandboxBuilder {
    if follow_symlinks {
        b.mount_following_symlinks(host, sandbox, permission.into())
    } else {
        b.mount(host, sandbox, permission.into())
    }
}

#[pymethods]
impl SandboxBuilder {
    /// A builder with nanobox's defaults (same as `Sandbox.builder()`).
    #[new]
    fn new() -> Self {
        SandboxBuilder::default()
    }

    /// A builder with the options of the TOML config file at `path` (docs/API.md, "Config
    /// file"); every method called on it afterwards overrides the file. Raises `ConfigError`
    /// for an unreadable or malformed file, naming the line.
    #[staticmethod]
    fn from_config(py: Python<'_>, path: PathBuf) -> PyResult<SandboxBuilder> {
        nanobox::Sandbox::from_config(path)
            .map(|inner| SandboxBuilder { inner })
            .map_err(|e| to_py(py, e))
    }

    /// Make the host path `host` (file or directory) visible at the absolute path `sandbox`,
    /// read-only unless `permission` is `Permission.ReadWrite`. Repeatable. A `host` that is or
    /// passes through a symlink (other than the system's own, such as /bin -> usr/bin) makes
    /// `build()` raise `SymlinkedMountSourceError`, unless `follow_symlinks=True` (for links whose
    /// origin you know: they are followed once, at build).
    #[pyo3(signature = (host, sandbox, permission = Permission::ReadOnly, follow_symlinks = false))]
    fn mount(
        slf: B<'_>,
        host: PathBuf,
        sandbox: PathBuf,
        permission: Permission,
        follow_symlinks: bool,
    ) -> B<'_> {
        with(slf, |b| {
            add_mount(b, host, sandbox, permission, follow_symlinks)
        })
    }

    /// The program's working directory inside the sandbox (default `/tmp`); `PWD` is set to it.
    fn working_dir(slf: B<'_>, path: PathBuf) -> B<'_> {
        with(slf, |b| b.working_dir(path))
    }

    /// Set one environment variable (the environment starts as PATH, HOME, LANG, PWD).
    fn env(slf: B<'_>, key: String, value: String) -> B<'_> {
        with(slf, |b| b.env(key, value))
    }

    /// Set several environment variables from a mapping or an iterable of (key, value) pairs.
    fn envs<'py>(slf: B<'py>, vars: &Bound<'py, PyAny>) -> PyResult<B<'py>> {
        let pairs = env_pairs(vars)?;
        Ok(with(slf, |b| b.envs(pairs)))
    }

    /// What the program reads on stdin: `None` (end-of-file at once, the default), `bytes` or
    /// `str` (these bytes), or a `pathlib.Path` / `os.PathLike` (that host file, opened at each
    /// run). A `str` is data, never a path.
    fn stdin<'py>(slf: B<'py>, data: Option<&Bound<'py, PyAny>>) -> PyResult<B<'py>> {
        let s = convert::stdin(data)?;
        Ok(with(slf, |b| b.stdin(s)))
    }

    /// End the run, and everything in it, after this long (`timedelta` or seconds).
    fn wall_time_limit<'py>(slf: B<'py>, limit: &Bound<'py, PyAny>) -> PyResult<B<'py>> {
        let d = convert::duration(limit, "wall_time_limit")?;
        Ok(with(slf, |b| b.wall_time_limit(d)))
    }

    /// Cap on captured stdout and on captured stderr, each, in bytes (default 64 MiB).
    fn output_limit(slf: B<'_>, bytes: u64) -> B<'_> {
        with(slf, |b| b.output_limit(bytes))
    }

    /// Only a private loopback interface (the default; undoes `allow_network`).
    fn no_network(slf: B<'_>) -> B<'_> {
        with(slf, |b| b.no_network())
    }

    /// Allow HTTP and HTTPS to hosts matching these patterns (one string or a list) through
    /// nanobox's filtering proxy. Repeatable; patterns add up.
    fn allow_network<'py>(slf: B<'py>, patterns: &Bound<'py, PyAny>) -> PyResult<B<'py>> {
        let p = convert::strings(patterns)?;
        Ok(with(slf, |b| b.allow_network(&p)))
    }

    /// Make the proxy resolve `name` to `address` (a string or an `ipaddress` object), allowed
    /// for that name alone even where the address rules would refuse it.
    fn map_host<'py>(slf: B<'py>, name: String, address: &Bound<'py, PyAny>) -> PyResult<B<'py>> {
        let ip = parse_ip(address)?;
        Ok(with(slf, |b| b.map_host(name, ip)))
    }

    /// Exempt an address or CIDR block (`"10.1.0.0/16"`) from the proxy's address rules.
    fn allow_address(slf: B<'_>, cidr: String) -> B<'_> {
        with(slf, |b| b.allow_address(cidr))
    }

    /// Chain the filtering proxy through an upstream HTTP proxy (`http://[user:pass@]host:port`).
    fn upstream_proxy(slf: B<'_>, url: String) -> B<'_> {
        with(slf, |b| b.upstream_proxy(url))
    }

    /// The hostname inside the sandbox (default `nanobox`).
    fn hostname(slf: B<'_>, name: String) -> B<'_> {
        with(slf, |b| b.hostname(name))
    }

    /// Size bound of the private `/tmp` in bytes (default 256 MiB).
    fn tmp_size(slf: B<'_>, bytes: u64) -> B<'_> {
        with(slf, |b| b.tmp_size(bytes))
    }

    /// The syscall filter: nanobox's default, with the syscalls named in `deny` answering
    /// `EPERM` and those in `allow` let through. Replaces an earlier `seccomp` call.
    #[pyo3(signature = (deny = None, allow = None))]
    fn seccomp<'py>(
        slf: B<'py>,
        deny: Option<&Bound<'py, PyAny>>,
        allow: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<B<'py>> {
        let policy = seccomp_policy(deny, allow)?;
        Ok(with(slf, |b| b.seccomp(policy)))
    }

    /// Memory of the whole sandbox in bytes (at least 1 MiB), `/tmp` included, no swap.
    fn memory_limit(slf: B<'_>, bytes: u64) -> B<'_> {
        with(slf, |b| b.memory_limit(bytes))
    }

    /// CPU bandwidth in cores (`0.5` = half a CPU), 0.01 ..= 4096.
    fn cpu_limit(slf: B<'_>, cores: f64) -> B<'_> {
        with(slf, |b| b.cpu_limit(cores))
    }

    /// CPU time of the whole sandbox (`timedelta` or seconds).
    fn cpu_time_limit<'py>(slf: B<'py>, limit: &Bound<'py, PyAny>) -> PyResult<B<'py>> {
        let d = convert::duration(limit, "cpu_time_limit")?;
        Ok(with(slf, |b| b.cpu_time_limit(d)))
    }

    /// Live processes plus threads in the sandbox.
    fn process_limit(slf: B<'_>, n: u64) -> B<'_> {
        with(slf, |b| b.process_limit(n))
    }

    /// The largest file a process may write, in bytes.
    fn file_size_limit(slf: B<'_>, bytes: u64) -> B<'_> {
        with(slf, |b| b.file_size_limit(bytes))
    }

    /// Bound the sandbox's share of a kernel pool (`"inotify_watches"`, `"pending_signals"`, ...).
    fn kernel_pool_limit<'py>(slf: B<'py>, pool: &str, n: u64) -> PyResult<B<'py>> {
        let p = pool_named(pool)?;
        Ok(with(slf, |b| b.kernel_pool_limit(p, n)))
    }

    /// Where no cgroup is writable, enforce limits with per-process rlimits instead of refusing.
    fn allow_degraded_limits(slf: B<'_>) -> B<'_> {
        with(slf, |b| b.allow_degraded_limits())
    }

    /// List in each result's `denials` what the platform's sandbox denied (macOS; empty
    /// elsewhere).
    fn report_denials(slf: B<'_>) -> B<'_> {
        with(slf, |b| b.report_denials())
    }

    /// Where the host refuses user namespaces, run with Landlock + seccomp alone instead of
    /// failing (every result lists what is weaker in `degraded`).
    fn allow_degraded_isolation(slf: B<'_>) -> B<'_> {
        with(slf, |b| b.allow_degraded_isolation())
    }

    /// Apply keyword arguments, as the `Sandbox(...)` constructor takes them (see there).
    #[pyo3(signature = (**options))]
    fn configure<'py>(mut slf: B<'py>, options: Option<&Bound<'py, PyDict>>) -> PyResult<B<'py>> {
        let b = std::mem::take(&mut slf.inner);
        slf.inner = apply(b, options)?;
        Ok(slf)
    }

    /// Check every option and build the sandbox. The builder stays usable.
    fn build(&self, py: Python<'_>) -> PyResult<Sandbox> {
        let b = self.inner.clone();
        py.detach(|| b.build())
            .map(Sandbox::from)
            .map_err(|e| to_py(py, e))
    }

    /// What a run of `program` with `args` would do on `platform` (`"linux"`, `"macos"` or
    /// `"windows"`; default: this one), building and running nothing: a dict with the
    /// `Explanation`'s fields (`platform`, `program`, `args`, `mounts`, `working_dir`, `env`,
    /// `limits`, and `macos`, `linux` or `windows`) and `text`, the explanation for people. A
    /// policy the platform refuses raises the error `build()` raises there. The builder stays
    /// usable.
    #[pyo3(signature = (program, args = None, platform = None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        program: &Bound<'py, PyAny>,
        args: Option<&Bound<'py, PyAny>>,
        platform: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let program = convert::os_string(program)?;
        let args = convert::args(args)?;
        let platform = match platform {
            Some(p) => p
                .parse::<nanobox::Platform>()
                .map_err(|reason| invalid_option(py, "platform", reason))?,
            None => nanobox::Platform::current().unwrap_or(nanobox::Platform::Linux),
        };
        let e = self
            .inner
            .explain(platform, &program, &args)
            .map_err(|e| to_py(py, e))?;
        let s = serde_json::to_string(&e)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
        let d = py.import("json")?.call_method1("loads", (s,))?;
        d.set_item("text", e.text())?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<nanobox.{:?}>", self.inner)
    }
}

fn env_pairs(vars: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    if let Ok(m) = vars.cast::<PyMapping>() {
        return m
            .items()?
            .iter()
            .map(|kv| kv.extract::<(String, String)>())
            .collect();
    }
    vars.try_iter()?
        .map(|kv| kv?.extract::<(String, String)>())
        .collect()
}

fn parse_ip(address: &Bound<'_, PyAny>) -> PyResult<std::net::IpAddr> {
    let s = address.str()?.to_string();
    s.parse().map_err(|_| {
        invalid_option(
            address.py(),
            "map_host",
            format!("{s:?} is not an IP address"),
        )
    })
}

fn seccomp_policy(
    deny: Option<&Bound<'_, PyAny>>,
    allow: Option<&Bound<'_, PyAny>>,
) -> PyResult<nanobox::SeccompPolicy> {
    let list = |o: Option<&Bound<'_, PyAny>>| -> PyResult<Vec<String>> {
        match o {
            Some(o) if !o.is_none() => convert::strings(o),
            _ => Ok(Vec::new()),
        }
    };
    let deny = list(deny)?;
    let allow = list(allow)?;
    let d: Vec<&str> = deny.iter().map(String::as_str).collect();
    let a: Vec<&str> = allow.iter().map(String::as_str).collect();
    Ok(nanobox::SeccompPolicy::default().deny(&d).allow(&a))
}

fn truthy(v: &Bound<'_, PyAny>) -> PyResult<bool> {
    v.is_truthy()
}

/// Apply the keyword options of `Sandbox(...)` / `SandboxBuilder.configure(...)` in the order
/// given. `None` leaves an option at its default.
pub(crate) fn apply(
    mut b: nanobox::SandboxBuilder,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<nanobox::SandboxBuilder> {
    let Some(options) = options else {
        return Ok(b);
    };
    for (k, v) in options.iter() {
        let key: String = k.extract()?;
        if v.is_none() {
            continue;
        }
        b = match key.as_str() {
            "mounts" => {
                for m in v.try_iter()? {
                    let m = m?;
                    const SHAPE: &str = "mounts: each mount is a tuple \
                                         (host, sandbox[, permission[, follow_symlinks]])";
                    let t = m
                        .cast::<PyTuple>()
                        .map_err(|_| PyTypeError::new_err(SHAPE))?;
                    let (host, sandbox, perm, follow): (PathBuf, PathBuf, Permission, bool) =
                        match t.len() {
                            2 => {
                                let (h, s) = t.extract()?;
                                (h, s, Permission::ReadOnly, false)
                            }
                            3 => {
                                let (h, s, p) = t.extract()?;
                                (h, s, p, false)
                            }
                            4 => t.extract()?,
                            _ => return Err(PyTypeError::new_err(SHAPE)),
                        };
                    b = add_mount(b, host, sandbox, perm, follow);
                }
                b
            }
            "working_dir" => b.working_dir(v.extract::<PathBuf>()?),
            "env" => b.envs(env_pairs(&v)?),
            "stdin" => b.stdin(convert::stdin(Some(&v))?),
            "wall_time_limit" => b.wall_time_limit(convert::duration(&v, &key)?),
            "output_limit" => b.output_limit(v.extract()?),
            "no_network" => {
                if truthy(&v)? {
                    b.no_network()
                } else {
                    b
                }
            }
            "allow_network" => b.allow_network(&convert::strings(&v)?),
            "map_hosts" => {
                let m = v.cast::<PyMapping>().map_err(|_| {
                    PyTypeError::new_err("map_hosts: expected a mapping {name: address}")
                })?;
                for kv in m.items()?.iter() {
                    let (name, addr): (String, Bound<'_, PyAny>) = kv.extract()?;
                    b = b.map_host(name, parse_ip(&addr)?);
                }
                b
            }
            "allow_addresses" => {
                for c in convert::strings(&v)? {
                    b = b.allow_address(c);
                }
                b
            }
            "upstream_proxy" => b.upstream_proxy(v.extract::<String>()?),
            "hostname" => b.hostname(v.extract::<String>()?),
            "tmp_size" => b.tmp_size(v.extract()?),
            "seccomp_deny" | "seccomp_allow" => {
                // Both keys make one policy; handled together below.
                b
            }
            "memory_limit" => b.memory_limit(v.extract()?),
            "cpu_limit" => b.cpu_limit(v.extract()?),
            "cpu_time_limit" => b.cpu_time_limit(convert::duration(&v, &key)?),
            "process_limit" => b.process_limit(v.extract()?),
            "file_size_limit" => b.file_size_limit(v.extract()?),
            "kernel_pool_limits" => {
                let m = v.cast::<PyMapping>().map_err(|_| {
                    PyTypeError::new_err("kernel_pool_limits: expected a mapping {pool: bound}")
                })?;
                for kv in m.items()?.iter() {
                    let (name, n): (String, u64) = kv.extract()?;
                    b = b.kernel_pool_limit(pool_named(&name)?, n);
                }
                b
            }
            "allow_degraded_limits" => {
                if truthy(&v)? {
                    b.allow_degraded_limits()
                } else {
                    b
                }
            }
            "allow_degraded_isolation" => {
                if truthy(&v)? {
                    b.allow_degraded_isolation()
                } else {
                    b
                }
            }
            "report_denials" => {
                if truthy(&v)? {
                    b.report_denials()
                } else {
                    b
                }
            }
            other => {
                return Err(PyTypeError::new_err(format!(
                    "unexpected keyword argument {other:?}"
                )))
            }
        };
    }
    let deny = options.get_item("seccomp_deny")?;
    let allow = options.get_item("seccomp_allow")?;
    if deny.is_some() || allow.is_some() {
        b = b.seccomp(seccomp_policy(deny.as_ref(), allow.as_ref())?);
    }
    Ok(b)
}

/// The kernel pool called `name`, or a ValueError listing the names.
fn pool_named(name: &str) -> PyResult<nanobox::KernelPool> {
    nanobox::KernelPool::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = nanobox::KernelPool::ALL.iter().map(|p| p.name()).collect();
        pyo3::exceptions::PyValueError::new_err(format!(
            "unknown kernel pool {name:?}; the pools are {}",
            names.join(", ")
        ))
    })
}
