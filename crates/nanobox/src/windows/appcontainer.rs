//! The run's AppContainer: a profile with no capabilities, so the program in it has no network
//! (loopback included) and reaches only files whose access lists name the container's SID or
//! ALL APPLICATION PACKAGES (the system directories).
//!
//! The profile functions are looked up in userenv.dll when first used, never imported: a
//! Windows without them (before 8), or Wine (whose userenv has none), would otherwise not even
//! load a program linked to nanobox.

use std::sync::OnceLock;

use windows_sys::core::{HRESULT, PCWSTR, PWSTR};
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{FreeSid, PSID, SECURITY_CAPABILITIES, SID_AND_ATTRIBUTES};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use super::sys;
use crate::error::{Error, Result};

type CreateProfile = unsafe extern "system" fn(
    PCWSTR,
    PCWSTR,
    PCWSTR,
    *const SID_AND_ATTRIBUTES,
    u32,
    *mut PSID,
) -> HRESULT;
type DeleteProfile = unsafe extern "system" fn(PCWSTR) -> HRESULT;
type DeriveSid = unsafe extern "system" fn(PCWSTR, *mut PSID) -> HRESULT;

/// userenv's profile functions, or why they are missing.
struct Api {
    create: CreateProfile,
    delete: DeleteProfile,
    derive: DeriveSid,
}

fn api() -> std::result::Result<&'static Api, &'static str> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(|| {
        let name = sys::wide("userenv.dll");
        // SAFETY: a NUL-terminated name, loaded from System32 only; never freed (the functions
        // are used for the life of the process).
        let module = unsafe {
            LoadLibraryExW(
                name.as_ptr(),
                std::ptr::null_mut(),
                LOAD_LIBRARY_SEARCH_SYSTEM32,
            )
        };
        if module.is_null() {
            return Err(format!(
                "userenv.dll cannot be loaded: {}",
                std::io::Error::last_os_error()
            ));
        }
        let find = |f: &std::ffi::CStr| {
            // SAFETY: a loaded module and a NUL-terminated name.
            unsafe { GetProcAddress(module, f.as_ptr().cast()) }.ok_or_else(|| {
                let why = if sys::wine_version().is_some() {
                    "Wine's userenv.dll has no AppContainer functions"
                } else {
                    "this Windows has no AppContainers (Windows 8 or later has them)"
                };
                format!("userenv.dll does not export {}: {why}", f.to_string_lossy())
            })
        };
        let (c, d, s) = (
            find(c"CreateAppContainerProfile")?,
            find(c"DeleteAppContainerProfile")?,
            find(c"DeriveAppContainerSidFromAppContainerName")?,
        );
        // SAFETY: the exports have exactly these signatures (userenv.h), as windows-sys
        // declares them.
        Ok(unsafe {
            Api {
                create: std::mem::transmute::<unsafe extern "system" fn() -> isize, CreateProfile>(
                    c,
                ),
                delete: std::mem::transmute::<unsafe extern "system" fn() -> isize, DeleteProfile>(
                    d,
                ),
                derive: std::mem::transmute::<unsafe extern "system" fn() -> isize, DeriveSid>(s),
            }
        })
    })
    .as_ref()
    .map_err(String::as_str)
}

/// `HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS)`.
const ALREADY_EXISTS: HRESULT = 0x8007_00B7_u32 as HRESULT;
/// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`, a profile that does not exist.
const NOT_FOUND: HRESULT = 0x8007_0002_u32 as HRESULT;

fn hresult(step: String, hr: HRESULT) -> Error {
    // The low word of a Win32-facility HRESULT is the Win32 error.
    let code = if (hr as u32) >> 16 == 0x8007 {
        (hr as u32 & 0xffff) as i32
    } else {
        hr
    };
    Error::Setup {
        step,
        source: std::io::Error::from_raw_os_error(code),
    }
}

/// One AppContainer profile, deleted when dropped.
pub(crate) struct AppContainer {
    name: String,
    sid: PSID,
    sid_string: String,
}

// SAFETY: the SID is memory owned by this value, only read.
unsafe impl Send for AppContainer {}
// SAFETY: as above.
unsafe impl Sync for AppContainer {}

impl std::fmt::Debug for AppContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContainer")
            .field("name", &self.name)
            .field("sid", &self.sid_string)
            .finish()
    }
}

impl AppContainer {
    /// Why no AppContainer can be made on this host, if none can.
    pub(crate) fn unavailable() -> Option<String> {
        api().err().map(str::to_owned)
    }

    /// A profile named `name` with no capabilities; one of that name a killed caller left is
    /// taken over.
    pub(crate) fn create(name: &str) -> Result<AppContainer> {
        let api = api().map_err(|why| Error::HostUnsupported {
            missing: "AppContainers",
            cause: why.to_string(),
            fix: "see nanobox doctor".into(),
        })?;
        let w = sys::wide(name);
        let display = sys::wide(format!("nanobox run {name}"));
        let mut sid: PSID = std::ptr::null_mut();
        // SAFETY: NUL-terminated strings, no capabilities, and an out-pointer for the SID.
        let hr = unsafe {
            (api.create)(
                w.as_ptr(),
                display.as_ptr(),
                display.as_ptr(),
                std::ptr::null(),
                0,
                &mut sid,
            )
        };
        if hr == ALREADY_EXISTS {
            // SAFETY: as above.
            let hr = unsafe { (api.derive)(w.as_ptr(), &mut sid) };
            if hr < 0 {
                return Err(hresult(format!("finding the AppContainer {name}"), hr));
            }
        } else if hr < 0 {
            return Err(hresult(format!("creating the AppContainer {name}"), hr));
        }
        let mut text: PWSTR = std::ptr::null_mut();
        // SAFETY: a valid SID; the string is allocated by the call and freed below.
        let ok = unsafe { ConvertSidToStringSidW(sid, &mut text) };
        if ok == 0 {
            let e = sys::last_error(format!("naming the SID of the AppContainer {name}"));
            // SAFETY: the SID the profile call allocated, freed once.
            unsafe { FreeSid(sid) };
            return Err(e);
        }
        // SAFETY: a NUL-terminated string the call allocated.
        let sid_string = unsafe {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            LocalFree(text.cast());
            s
        };
        Ok(AppContainer {
            name: name.to_string(),
            sid,
            sid_string,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn sid_string(&self) -> &str {
        &self.sid_string
    }

    /// The launch attribute: this container, no capabilities. It points at `self`'s SID.
    pub(crate) fn capabilities(&self) -> SECURITY_CAPABILITIES {
        SECURITY_CAPABILITIES {
            AppContainerSid: self.sid,
            Capabilities: std::ptr::null_mut(),
            CapabilityCount: 0,
            Reserved: 0,
        }
    }

    /// Delete the profile `name` (a stale one); one that does not exist is no error.
    pub(crate) fn delete(name: &str) -> Result<()> {
        let Ok(api) = api() else { return Ok(()) };
        let w = sys::wide(name);
        // SAFETY: a NUL-terminated name.
        let hr = unsafe { (api.delete)(w.as_ptr()) };
        if hr < 0 && hr != NOT_FOUND {
            return Err(hresult(format!("deleting the AppContainer {name}"), hr));
        }
        Ok(())
    }
}

impl Drop for AppContainer {
    fn drop(&mut self) {
        let _ = AppContainer::delete(&self.name);
        // SAFETY: the SID the profile call allocated, freed once.
        unsafe { FreeSid(self.sid) };
    }
}
