//! Small helpers over the Win32 calls the backend makes: wide strings, errors, handles, Wine.

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

use crate::error::Error;

/// `s` as a NUL-terminated UTF-16 string.
pub(crate) fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// The error of the call just made, for `step`.
pub(crate) fn last_error(step: impl Into<String>) -> Error {
    Error::Setup {
        step: step.into(),
        source: std::io::Error::last_os_error(),
    }
}

/// Take ownership of a handle a call returned; null and INVALID_HANDLE_VALUE are the call's
/// failure, reported for `step`.
pub(crate) fn owned(h: HANDLE, step: &str) -> crate::error::Result<OwnedHandle> {
    if h.is_null() || h == INVALID_HANDLE_VALUE {
        return Err(last_error(step));
    }
    // SAFETY: `h` is a valid handle the caller just received and owns; nothing else closes it.
    Ok(unsafe { OwnedHandle::from_raw_handle(h) })
}

/// The version of Wine this process runs under, if it does (ntdll exports `wine_get_version`).
pub(crate) fn wine_version() -> Option<String> {
    let ntdll = wide("ntdll.dll");
    // SAFETY: a NUL-terminated name; ntdll is loaded in every process, and the handle is not
    // freed (GetModuleHandleW takes no reference).
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // SAFETY: a loaded module and a NUL-terminated ASCII name.
    let f = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine's `const char *wine_get_version(void)`, a static string.
    let get: extern "C" fn() -> *const std::ffi::c_char = unsafe { std::mem::transmute(f) };
    let p = get();
    if p.is_null() {
        return Some(String::from("unknown"));
    }
    // SAFETY: a NUL-terminated static string of Wine's.
    Some(
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The error `code` (a Win32 error number a call returned) for `step`.
pub(crate) fn error_code(step: impl Into<String>, code: u32) -> Error {
    Error::Setup {
        step: step.into(),
        source: std::io::Error::from_raw_os_error(code as i32),
    }
}
