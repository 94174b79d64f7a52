//! Conversions of Python values into the library's types: durations, stdin, program arguments.

use std::ffi::OsString;
#[cfg(unix)]
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyString};

use crate::errors::invalid_option;

/// A duration given as a `datetime.timedelta` or as seconds (`int` or `float`).
pub(crate) fn duration(obj: &Bound<'_, PyAny>, option: &str) -> PyResult<Duration> {
    let py = obj.py();
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{option}: expected a datetime.timedelta or a number of seconds, not a bool"
        )));
    }
    let secs: f64 = if obj.hasattr("total_seconds")? {
        obj.call_method0("total_seconds")?.extract()?
    } else {
        obj.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "{option}: expected a datetime.timedelta or a number of seconds, got {}",
                type_name(obj)
            ))
        })?
    };
    Duration::try_from_secs_f64(secs).map_err(|_| {
        invalid_option(
            py,
            option,
            format!("{secs} s is not a duration (negative, not finite or too large)"),
        )
    })
}

/// What the program reads: `None` (nothing), `bytes`/`bytearray` or `str` (these bytes, a `str`
/// encoded as UTF-8), or an `os.PathLike` (that host file).
pub(crate) fn stdin(obj: Option<&Bound<'_, PyAny>>) -> PyResult<nanobox::Stdin> {
    let Some(obj) = obj else {
        return Ok(nanobox::Stdin::Null);
    };
    if obj.is_none() {
        return Ok(nanobox::Stdin::Null);
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(nanobox::Stdin::bytes(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(nanobox::Stdin::bytes(b.to_vec()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(nanobox::Stdin::bytes(s.to_cow()?.as_bytes()));
    }
    if obj.hasattr("__fspath__")? {
        let p: PathBuf = obj.extract()?;
        return Ok(nanobox::Stdin::file(p));
    }
    Err(PyTypeError::new_err(format!(
        "stdin: expected None, bytes, bytearray, str or an os.PathLike (a host file), got {}",
        type_name(obj)
    )))
}

/// One program name or argument: `str`, `bytes` or `os.PathLike`.
pub(crate) fn os_string(obj: &Bound<'_, PyAny>) -> PyResult<OsString> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        // Bytes are the operating system's own encoding on Unix; Windows arguments are text,
        // so there bytes must be UTF-8.
        #[cfg(unix)]
        return Ok(OsString::from_vec(b.as_bytes().to_vec()));
        #[cfg(not(unix))]
        return std::str::from_utf8(b.as_bytes())
            .map(OsString::from)
            .map_err(|_| PyTypeError::new_err("a bytes argument must be UTF-8 on Windows"));
    }
    obj.extract::<PathBuf>()
        .map(PathBuf::into_os_string)
        .map_err(|_| {
            PyTypeError::new_err(format!(
                "expected str, bytes or os.PathLike, got {}",
                type_name(obj)
            ))
        })
}

/// The argument list: any iterable of `str`/`bytes`/`os.PathLike`, but not a lone string (whose
/// characters would become arguments).
pub(crate) fn args(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<OsString>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    if obj.is_none() {
        return Ok(Vec::new());
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyBytes>() {
        return Err(PyTypeError::new_err(
            "args must be a list of arguments, not a single string: write [\"-c\", \"...\"]",
        ));
    }
    obj.try_iter()?
        .map(|a| os_string(&a?))
        .collect::<PyResult<Vec<_>>>()
}

/// One string or an iterable of strings.
pub(crate) fn strings(obj: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(vec![s.to_cow()?.into_owned()]);
    }
    obj.try_iter()?
        .map(|a| a?.extract::<String>())
        .collect::<PyResult<Vec<_>>>()
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// `nanobox.PIPE`: the value of `subprocess.PIPE`, so either may be passed as `stdin`.
pub(crate) const PIPE: i64 = -1;

/// True for `stdin=PIPE` (`-1`, as `subprocess.PIPE`; a `bool` is not it).
pub(crate) fn is_pipe(obj: &Bound<'_, PyAny>) -> bool {
    !obj.is_instance_of::<PyBool>() && obj.extract::<i64>().is_ok_and(|n| n == PIPE)
}

/// A run's `env`: a mapping of name to a `str` value (set for this run) or `None` (removed from
/// the sandbox's environment for this run), in the mapping's order.
pub(crate) fn env_changes(obj: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Option<String>)>> {
    if !obj.hasattr("items")? {
        return Err(PyTypeError::new_err(format!(
            "env: expected a mapping of str to str or None, got {}",
            type_name(obj)
        )));
    }
    obj.call_method0("items")?
        .try_iter()?
        .map(|item| {
            let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item?.extract()?;
            let k: String = k.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "env: a variable's name must be a str, got {}",
                    type_name(&k)
                ))
            })?;
            if v.is_none() {
                return Ok((k, None));
            }
            let v: String = v.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "env[{k:?}]: expected a str (or None to remove it), got {}",
                    type_name(&v)
                ))
            })?;
            Ok((k, Some(v)))
        })
        .collect()
}
