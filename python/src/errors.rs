//! The exception hierarchy: one Python class per kind of `nanobox::Error`, all under
//! `SandboxError`, each carrying the Rust message and the variant's fields as attributes.

use pyo3::exceptions::PyException;
use pyo3::prelude::*;

pyo3::create_exception!(
    nanobox,
    SandboxError,
    PyException,
    "Base class of every error nanobox raises. `str(e)` is the library's message: what failed, \
     on which path or step, and what to do about it."
);
pyo3::create_exception!(
    nanobox,
    MountError,
    SandboxError,
    "A path given to the sandbox was refused at build time (mount source or target, working \
     directory). Attribute `path`: the path concerned."
);
pyo3::create_exception!(
    nanobox,
    MountSourceMissingError,
    MountError,
    "A mount's host path does not exist."
);
pyo3::create_exception!(
    nanobox,
    SymlinkedMountSourceError,
    MountError,
    "A mount's host path is or passes through a symlink (other than the system's own links). \
     Attributes `link` (the symlink met) and `target` (what it points to). Pass the target, or \
     mount with `follow_symlinks=True` if you know where the link came from."
);
pyo3::create_exception!(
    nanobox,
    MountSourceChangedError,
    SandboxError,
    "At a run, a mount's host path no longer names the directory or file opened when the sandbox \
     was built (removed, renamed, replaced); nothing ran. Attributes `path`, `sandbox`, `reason`. \
     Build the sandbox again."
);
pyo3::create_exception!(
    nanobox,
    RelativeSandboxPathError,
    MountError,
    "A sandbox path (mount target, working directory) is not absolute."
);
pyo3::create_exception!(
    nanobox,
    InvalidSandboxPathError,
    MountError,
    "A sandbox path is malformed ('..', NUL) or nested in a mount without an existing mount \
     point. Attribute `reason`."
);
pyo3::create_exception!(
    nanobox,
    ReservedPathError,
    MountError,
    "A mount targets a path nanobox provides itself (/, /proc, /dev, /usr, /etc, ...). \
     Attribute `reason`."
);
pyo3::create_exception!(
    nanobox,
    DuplicateMountError,
    MountError,
    "Two mounts target the same sandbox path."
);
pyo3::create_exception!(
    nanobox,
    InvalidOptionError,
    SandboxError,
    "An option has a value nanobox cannot honour. Attributes `option` (the builder method or \
     keyword) and `reason`."
);
pyo3::create_exception!(
    nanobox,
    UnsupportedError,
    SandboxError,
    "nanobox has no backend for this operating system. Attributes `what`, `fix`."
);
pyo3::create_exception!(
    nanobox,
    HostUnsupportedError,
    SandboxError,
    "The host lacks a feature a run needs (user namespaces, a writable cgroup, ...); nothing ran. \
     Attributes `missing`, `cause`, `fix`."
);
pyo3::create_exception!(
    nanobox,
    SetupError,
    SandboxError,
    "A step of setting up the sandbox failed; nothing ran. Attributes `step`, `errno`."
);
pyo3::create_exception!(
    nanobox,
    ProgramNotFoundError,
    SandboxError,
    "The program was not found inside the sandbox. Attributes `program`, `searched`."
);
pyo3::create_exception!(
    nanobox,
    ProgramNotExecutableError,
    SandboxError,
    "The program exists inside the sandbox but cannot be executed. Attributes `program`, `errno`."
);
pyo3::create_exception!(
    nanobox,
    IoError,
    SandboxError,
    "An I/O error in the calling process. Attributes `context`, `errno`."
);

pyo3::create_exception!(
    nanobox,
    ConfigError,
    SandboxError,
    "A config file is unreadable or malformed (an unknown key, a bad value); nothing was built. \
     Attributes `path` (the file), `line` and `column` (from 1, or None) and `reason`."
);

/// Register every exception class in the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SandboxError", py.get_type::<SandboxError>())?;
    m.add("MountError", py.get_type::<MountError>())?;
    m.add(
        "MountSourceMissingError",
        py.get_type::<MountSourceMissingError>(),
    )?;
    m.add(
        "SymlinkedMountSourceError",
        py.get_type::<SymlinkedMountSourceError>(),
    )?;
    m.add(
        "MountSourceChangedError",
        py.get_type::<MountSourceChangedError>(),
    )?;
    m.add(
        "RelativeSandboxPathError",
        py.get_type::<RelativeSandboxPathError>(),
    )?;
    m.add(
        "InvalidSandboxPathError",
        py.get_type::<InvalidSandboxPathError>(),
    )?;
    m.add("ReservedPathError", py.get_type::<ReservedPathError>())?;
    m.add("DuplicateMountError", py.get_type::<DuplicateMountError>())?;
    m.add("InvalidOptionError", py.get_type::<InvalidOptionError>())?;
    m.add("UnsupportedError", py.get_type::<UnsupportedError>())?;
    m.add(
        "HostUnsupportedError",
        py.get_type::<HostUnsupportedError>(),
    )?;
    m.add("SetupError", py.get_type::<SetupError>())?;
    m.add(
        "ProgramNotFoundError",
        py.get_type::<ProgramNotFoundError>(),
    )?;
    m.add(
        "ProgramNotExecutableError",
        py.get_type::<ProgramNotExecutableError>(),
    )?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    Ok(())
}

/// An `InvalidOptionError` raised by the bindings themselves (a value Python gave that cannot be
/// converted), shaped like the library's.
pub(crate) fn invalid_option(py: Python<'_>, option: &str, reason: impl Into<String>) -> PyErr {
    let reason = reason.into();
    let e = InvalidOptionError::new_err(format!("invalid option {option}: {reason}"));
    set(py, &e, &[("option", option), ("reason", &reason)]);
    e
}

fn set(py: Python<'_>, e: &PyErr, attrs: &[(&str, &str)]) {
    let v = e.value(py);
    for (k, val) in attrs {
        // Setting an attribute on a fresh exception instance cannot fail in practice; if it did,
        // the exception would still carry its message.
        let _ = v.setattr(*k, *val);
    }
}

fn set_errno(py: Python<'_>, e: &PyErr, source: &std::io::Error) {
    let _ = e.value(py).setattr("errno", source.raw_os_error());
}

/// The Python exception for a library error.
pub(crate) fn to_py(py: Python<'_>, err: nanobox::Error) -> PyErr {
    use nanobox::Error as E;
    let msg = err.to_string();
    match &err {
        E::MountSourceMissing { path } => {
            let e = MountSourceMissingError::new_err(msg);
            set(py, &e, &[("path", &path.to_string_lossy())]);
            e
        }
        E::SymlinkedMountSource { path, link, target } => {
            let e = SymlinkedMountSourceError::new_err(msg);
            set(
                py,
                &e,
                &[
                    ("path", &path.to_string_lossy()),
                    ("link", &link.to_string_lossy()),
                    ("target", &target.to_string_lossy()),
                ],
            );
            e
        }
        E::MountSourceChanged {
            path,
            sandbox,
            reason,
        } => {
            let e = MountSourceChangedError::new_err(msg);
            set(
                py,
                &e,
                &[
                    ("path", &path.to_string_lossy()),
                    ("sandbox", &sandbox.to_string_lossy()),
                    ("reason", reason),
                ],
            );
            e
        }
        E::RelativeSandboxPath { path } => {
            let e = RelativeSandboxPathError::new_err(msg);
            set(py, &e, &[("path", &path.to_string_lossy())]);
            e
        }
        E::InvalidSandboxPath { path, reason } => {
            let e = InvalidSandboxPathError::new_err(msg);
            set(
                py,
                &e,
                &[("path", &path.to_string_lossy()), ("reason", reason)],
            );
            e
        }
        E::ReservedPath { path, reason } => {
            let e = ReservedPathError::new_err(msg);
            set(
                py,
                &e,
                &[("path", &path.to_string_lossy()), ("reason", reason)],
            );
            e
        }
        E::DuplicateMount { path } => {
            let e = DuplicateMountError::new_err(msg);
            set(py, &e, &[("path", &path.to_string_lossy())]);
            e
        }
        E::InvalidOption { option, reason } => {
            let e = InvalidOptionError::new_err(msg);
            set(py, &e, &[("option", option), ("reason", reason)]);
            e
        }
        E::Unsupported { what, fix } => {
            let e = UnsupportedError::new_err(msg);
            set(py, &e, &[("what", what), ("fix", fix)]);
            e
        }
        E::HostUnsupported {
            missing,
            cause,
            fix,
        } => {
            let e = HostUnsupportedError::new_err(msg);
            set(
                py,
                &e,
                &[("missing", missing), ("cause", cause), ("fix", fix)],
            );
            e
        }
        E::Setup { step, source } => {
            let e = SetupError::new_err(msg);
            set(py, &e, &[("step", step)]);
            set_errno(py, &e, source);
            e
        }
        E::ProgramNotFound { program, searched } => {
            let e = ProgramNotFoundError::new_err(msg);
            set(py, &e, &[("program", program), ("searched", searched)]);
            e
        }
        E::ProgramNotExecutable { program, source } => {
            let e = ProgramNotExecutableError::new_err(msg);
            set(py, &e, &[("program", program)]);
            set_errno(py, &e, source);
            e
        }
        E::Io { context, source } => {
            let e = IoError::new_err(msg);
            set(py, &e, &[("context", context)]);
            set_errno(py, &e, source);
            e
        }
        E::Config {
            path,
            line,
            column,
            reason,
        } => {
            let e = ConfigError::new_err(msg);
            set(
                py,
                &e,
                &[("path", &path.to_string_lossy()), ("reason", reason)],
            );
            let v = e.value(py);
            let _ = v.setattr("line", *line);
            let _ = v.setattr("column", *column);
            e
        }
        // `Error` is non-exhaustive: a variant added later is still a SandboxError.
        _ => SandboxError::new_err(msg),
    }
}
