//! The program's token: a restricted copy of the caller's, at low integrity.
//!
//! `CreateRestrictedToken` with `DISABLE_MAX_PRIVILEGE` removes every privilege but
//! SeChangeNotifyPrivilege; BUILTIN\Administrators and every group of the caller but the few a
//! program needs to start (Everyone, BUILTIN\Users, Authenticated Users, INTERACTIVE, the logon
//! session's SID) become deny-only; the restricting SIDs (the user, Everyone, BUILTIN\Users,
//! Authenticated Users, the logon SID) make every access check pass a second time against those
//! alone. The token's integrity level is then Low (S-1-16-4096): no write to an object of medium
//! integrity (nearly every file and registry key of the user), whatever its access list says.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, HANDLE};
use windows_sys::Win32::Security::{
    CreateRestrictedToken, CreateWellKnownSid, EqualSid, GetLengthSid, GetTokenInformation,
    SetTokenInformation, TokenGroups, TokenIntegrityLevel, TokenUser, WinAuthenticatedUserSid,
    WinBuiltinAdministratorsSid, WinBuiltinUsersSid, WinInteractiveSid, WinLowLabelSid,
    WinWorldSid, DISABLE_MAX_PRIVILEGE, PSID, SECURITY_MAX_SID_SIZE, SID_AND_ATTRIBUTES,
    TOKEN_ADJUST_DEFAULT, TOKEN_ASSIGN_PRIMARY, TOKEN_DUPLICATE, TOKEN_GROUPS,
    TOKEN_MANDATORY_LABEL, TOKEN_QUERY, TOKEN_USER, WELL_KNOWN_SID_TYPE,
};
use windows_sys::Win32::System::SystemServices::{SE_GROUP_INTEGRITY, SE_GROUP_LOGON_ID};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::sys;
use crate::error::Result;

/// A SID in a buffer of its own (4-byte aligned, as SIDs are read).
struct Sid(Vec<u32>);

impl Sid {
    fn ptr(&self) -> PSID {
        self.0.as_ptr() as PSID
    }

    fn well_known(kind: WELL_KNOWN_SID_TYPE, what: &str) -> Result<Sid> {
        let mut buf = vec![0u32; SECURITY_MAX_SID_SIZE as usize / 4 + 1];
        let mut size = (buf.len() * 4) as u32;
        // SAFETY: `buf` holds `size` bytes, at least SECURITY_MAX_SID_SIZE.
        let ok = unsafe {
            CreateWellKnownSid(
                kind,
                std::ptr::null_mut(),
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        if ok == 0 {
            return Err(sys::last_error(format!("making the SID of {what}")));
        }
        Ok(Sid(buf))
    }

    /// A copy of the SID at `p` (valid for the call).
    fn copy(p: PSID) -> Sid {
        // SAFETY: `p` points at a valid SID (the caller's contract); GetLengthSid reads it.
        let len = unsafe { GetLengthSid(p) } as usize;
        let mut buf = vec![0u32; len.div_ceil(4)];
        // SAFETY: `p` has `len` readable bytes; `buf` has room for them.
        unsafe { std::ptr::copy_nonoverlapping(p as *const u8, buf.as_mut_ptr().cast(), len) };
        Sid(buf)
    }

    fn equals(&self, p: PSID) -> bool {
        // SAFETY: both point at valid SIDs.
        unsafe { EqualSid(self.ptr(), p) != 0 }
    }
}

/// One token information class of `token`, in a buffer of u64s (aligned for any of them).
fn info(token: HANDLE, class: i32, what: &str) -> Result<Vec<u64>> {
    let mut size = 0u32;
    // SAFETY: a size query: no buffer, its needed size written to `size`.
    unsafe { GetTokenInformation(token, class, std::ptr::null_mut(), 0, &mut size) };
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER as i32) || size == 0 {
        return Err(sys::last_error(format!(
            "reading the caller's token ({what})"
        )));
    }
    let mut buf = vec![0u64; (size as usize).div_ceil(8)];
    // SAFETY: `buf` holds at least `size` bytes.
    let ok = unsafe { GetTokenInformation(token, class, buf.as_mut_ptr().cast(), size, &mut size) };
    if ok == 0 {
        return Err(sys::last_error(format!(
            "reading the caller's token ({what})"
        )));
    }
    Ok(buf)
}

/// The program's token, and what was done to make it.
pub(crate) struct Restricted {
    pub token: OwnedHandle,
    /// The deny-only groups, as counts by kind, for results and doctor.
    pub denied_groups: usize,
}

/// A restricted, low-integrity copy of the caller's own token (a primary token, so
/// CreateProcessAsUserW takes it without SeAssignPrimaryTokenPrivilege).
pub(crate) fn restricted() -> Result<Restricted> {
    let mut own: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; the token handle lands in `own`.
    let ok = unsafe {
        OpenProcessToken(
            GetCurrentProcess(),
            TOKEN_DUPLICATE | TOKEN_QUERY | TOKEN_ASSIGN_PRIMARY | TOKEN_ADJUST_DEFAULT,
            &mut own,
        )
    };
    if ok == 0 {
        return Err(sys::last_error("opening the caller's token"));
    }
    let own = sys::owned(own, "opening the caller's token")?;
    let user_buf = info(own.as_raw_handle(), TokenUser, "its user")?;
    // SAFETY: TokenUser fills a TOKEN_USER at the start of the buffer.
    let user = Sid::copy(unsafe { (*(user_buf.as_ptr() as *const TOKEN_USER)).User.Sid });
    let groups_buf = info(own.as_raw_handle(), TokenGroups, "its groups")?;
    // SAFETY: TokenGroups fills a TOKEN_GROUPS with GroupCount entries in the buffer.
    let groups: &[SID_AND_ATTRIBUTES] = unsafe {
        let g = &*(groups_buf.as_ptr() as *const TOKEN_GROUPS);
        std::slice::from_raw_parts(g.Groups.as_ptr(), g.GroupCount as usize)
    };
    let keep = [
        Sid::well_known(WinWorldSid, "Everyone")?,
        Sid::well_known(WinBuiltinUsersSid, "BUILTIN\\Users")?,
        Sid::well_known(WinAuthenticatedUserSid, "Authenticated Users")?,
        Sid::well_known(WinInteractiveSid, "INTERACTIVE")?,
    ];
    let admins = Sid::well_known(WinBuiltinAdministratorsSid, "BUILTIN\\Administrators")?;
    let mut logon: Option<Sid> = None;
    let mut deny: Vec<Sid> = vec![Sid::copy(admins.ptr())];
    for g in groups {
        let attrs = g.Attributes as i32;
        if attrs & SE_GROUP_INTEGRITY != 0 {
            continue;
        }
        if attrs & SE_GROUP_LOGON_ID == SE_GROUP_LOGON_ID {
            logon = Some(Sid::copy(g.Sid));
            continue;
        }
        if keep.iter().any(|k| k.equals(g.Sid)) || admins.equals(g.Sid) {
            continue;
        }
        deny.push(Sid::copy(g.Sid));
    }
    let mut restrict: Vec<Sid> = vec![user];
    restrict.extend(keep.iter().take(3).map(|k| Sid::copy(k.ptr())));
    restrict.extend(logon);
    let entries = |v: &[Sid]| -> Vec<SID_AND_ATTRIBUTES> {
        v.iter()
            .map(|s| SID_AND_ATTRIBUTES {
                Sid: s.ptr(),
                Attributes: 0,
            })
            .collect()
    };
    let deny_e = entries(&deny);
    let restrict_e = entries(&restrict);
    let mut new: HANDLE = std::ptr::null_mut();
    // SAFETY: the arrays hold the counts given and point at SIDs alive for the call.
    let ok = unsafe {
        CreateRestrictedToken(
            own.as_raw_handle(),
            DISABLE_MAX_PRIVILEGE,
            deny_e.len() as u32,
            deny_e.as_ptr(),
            0,
            std::ptr::null(),
            restrict_e.len() as u32,
            restrict_e.as_ptr(),
            &mut new,
        )
    };
    if ok == 0 {
        return Err(sys::last_error("making the program's restricted token"));
    }
    // SAFETY: CreateRestrictedToken returned a new token handle this code owns.
    let token = unsafe { OwnedHandle::from_raw_handle(new) };
    let low = Sid::well_known(WinLowLabelSid, "the low integrity level")?;
    let label = TOKEN_MANDATORY_LABEL {
        Label: SID_AND_ATTRIBUTES {
            Sid: low.ptr(),
            Attributes: SE_GROUP_INTEGRITY as u32,
        },
    };
    // SAFETY: `label` points at a low-integrity SID alive for the call; the size counts the
    // struct and the SID after it, as the call expects.
    let ok = unsafe {
        SetTokenInformation(
            token.as_raw_handle(),
            TokenIntegrityLevel,
            (&label as *const TOKEN_MANDATORY_LABEL).cast(),
            (std::mem::size_of::<TOKEN_MANDATORY_LABEL>() as u32) + GetLengthSid(low.ptr()),
        )
    };
    if ok == 0 {
        return Err(sys::last_error(
            "lowering the program's token to low integrity",
        ));
    }
    Ok(Restricted {
        token,
        denied_groups: deny.len(),
    })
}
