//! The access entries and labels one run adds to exactly its own directories, removed when it
//! ends, and recorded on disk first so that [`clean_stale`] removes those a killed caller left.
//!
//! Under an AppContainer, the container's SID gets an allow entry (inherited by files and
//! subdirectories) on the run's directory and each mount: read and execute for a read-only
//! mount; read, write, execute and delete for a read-write one (never WRITE_DAC or
//! WRITE_OWNER). Under the low-integrity token alone, each directory the program may write gets
//! the Low mandatory label (no-write-up, inherited), and the label it had is put back after.
//!
//! A record is a text file `<pid>-<n>.grants` in the record directory, one entry per line, its
//! fields separated by tabs:
//!
//! ```text
//! owner   <pid>   <creation time of the owner process, FILETIME as a number>
//! profile <AppContainer profile name>
//! grant   <SID>   R|W     <path>
//! label   <path>  <the label's SDDL before, or "none">
//! ```
//!
//! Each line is written and flushed before the change it records is made.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use windows_sys::Win32::Foundation::{
    CloseHandle, LocalFree, ERROR_INVALID_PARAMETER, FILETIME, STILL_ACTIVE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, ConvertStringSidToSidW,
    GetNamedSecurityInfoW, SetEntriesInAclW, SetNamedSecurityInfoW, EXPLICIT_ACCESS_W,
    GRANT_ACCESS, REVOKE_ACCESS, SDDL_REVISION_1, SE_FILE_OBJECT, TRUSTEE_IS_SID,
    TRUSTEE_IS_UNKNOWN, TRUSTEE_W,
};
use windows_sys::Win32::Security::{
    GetSecurityDescriptorSacl, InitializeAcl, ACL, ACL_REVISION, CONTAINER_INHERIT_ACE,
    DACL_SECURITY_INFORMATION, LABEL_SECURITY_INFORMATION, OBJECT_INHERIT_ACE,
    PSECURITY_DESCRIPTOR, PSID,
};
use windows_sys::Win32::Storage::FileSystem::{
    DELETE, FILE_GENERIC_EXECUTE, FILE_GENERIC_READ, FILE_GENERIC_WRITE,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetExitCodeProcess, GetProcessTimes, OpenProcess,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::sys;
use crate::error::{Error, Result};

/// What the program may do in a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

impl Access {
    /// The access mask of the entry.
    pub(crate) fn mask(self) -> u32 {
        match self {
            Access::Read => FILE_GENERIC_READ | FILE_GENERIC_EXECUTE,
            Access::ReadWrite => {
                FILE_GENERIC_READ | FILE_GENERIC_WRITE | FILE_GENERIC_EXECUTE | DELETE
            }
        }
    }
}

/// The Low label, no-write-up, inherited by files and subdirectories.
const LOW_LABEL: &str = "S:(ML;OICI;NW;;;LW)";

/// One line of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    Owner {
        pid: u32,
        created: u64,
    },
    Profile(String),
    Grant {
        sid: String,
        access: Access,
        path: PathBuf,
    },
    Label {
        path: PathBuf,
        before: Option<String>,
    },
}

impl Entry {
    pub(crate) fn line(&self) -> Result<String> {
        let field = |s: &str| -> Result<String> {
            if s.contains(['\t', '\n', '\r']) || s.is_empty() {
                return Err(Error::InvalidOption {
                    option: "mount",
                    reason: format!("{s:?} is empty or contains a tab or a line break, which nanobox cannot record"),
                });
            }
            Ok(s.to_string())
        };
        let path = |p: &Path| -> Result<String> {
            field(p.to_str().ok_or_else(|| Error::InvalidOption {
                option: "mount",
                reason: format!("{} is not valid Unicode", p.display()),
            })?)
        };
        Ok(match self {
            Entry::Owner { pid, created } => format!("owner\t{pid}\t{created}"),
            Entry::Profile(n) => format!("profile\t{}", field(n)?),
            Entry::Grant {
                sid,
                access,
                path: p,
            } => format!(
                "grant\t{}\t{}\t{}",
                field(sid)?,
                if *access == Access::Read { "R" } else { "W" },
                path(p)?
            ),
            Entry::Label { path: p, before } => format!(
                "label\t{}\t{}",
                path(p)?,
                field(before.as_deref().unwrap_or("none"))?
            ),
        })
    }

    pub(crate) fn parse(line: &str) -> Option<Entry> {
        let f: Vec<&str> = line.split('\t').collect();
        Some(match f.as_slice() {
            ["owner", pid, created] => Entry::Owner {
                pid: pid.parse().ok()?,
                created: created.parse().ok()?,
            },
            ["profile", n] if !n.is_empty() => Entry::Profile(n.to_string()),
            ["grant", sid, a, p] if !sid.is_empty() && !p.is_empty() => Entry::Grant {
                sid: sid.to_string(),
                access: match *a {
                    "R" => Access::Read,
                    "W" => Access::ReadWrite,
                    _ => return None,
                },
                path: PathBuf::from(p),
            },
            ["label", p, before] if !p.is_empty() => Entry::Label {
                path: PathBuf::from(p),
                before: (*before != "none").then(|| before.to_string()),
            },
            _ => return None,
        })
    }
}

/// A whole record: its entries, the owner first; None if any line is malformed.
pub(crate) fn parse_record(text: &str) -> Option<Vec<Entry>> {
    let entries: Option<Vec<Entry>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(Entry::parse)
        .collect();
    let entries = entries?;
    matches!(entries.first(), Some(Entry::Owner { .. })).then_some(entries)
}

fn filetime(t: FILETIME) -> u64 {
    (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
}

/// The creation time of the process `h`.
fn created(h: windows_sys::Win32::Foundation::HANDLE) -> Option<u64> {
    let z = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut c, mut e, mut k, mut u) = (z, z, z, z);
    // SAFETY: a process handle with query access; four FILETIMEs to fill.
    (unsafe { GetProcessTimes(h, &mut c, &mut e, &mut k, &mut u) } != 0).then(|| filetime(c))
}

/// Whether the process `pid` created at `created_at` still runs. Unknown is alive: a record is
/// only undone when its owner is surely gone.
fn alive(pid: u32, created_at: u64) -> bool {
    // SAFETY: OpenProcess returns a new handle or null.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if h.is_null() {
        let e = std::io::Error::last_os_error();
        return e.raw_os_error() != Some(ERROR_INVALID_PARAMETER as i32);
    }
    let started = created(h);
    let mut code = 0u32;
    // SAFETY: a live handle; the code lands in `code`.
    let exit = (unsafe { GetExitCodeProcess(h, &mut code) } != 0).then_some(code);
    // SAFETY: the handle OpenProcess returned, closed once.
    unsafe { CloseHandle(h) };
    judged_alive(created_at, started, exit)
}

/// The verdict of [`alive`] from what could be read of the process that now has the owner's
/// pid: its creation time and exit code, each None when it could not be read. Only a process
/// that surely is another one (another creation time) or surely has ended is dead.
fn judged_alive(owner_created: u64, started: Option<u64>, exit: Option<u32>) -> bool {
    if started.is_some_and(|t| t != owner_created) {
        return false;
    }
    exit.is_none_or(|code| code == STILL_ACTIVE as u32)
}

fn path_w(p: &Path) -> Vec<u16> {
    sys::wide(p.as_os_str())
}

/// Add (`GRANT_ACCESS`) or remove (`REVOKE_ACCESS`) the entries of `sid` on `path`.
fn set_entry(sid: &str, path: &Path, access: Access, mode: i32) -> Result<()> {
    let what = |v: &str| format!("{v} the access entry of {sid} on {}", path.display());
    let verb = if mode == GRANT_ACCESS {
        "adding"
    } else {
        "removing"
    };
    let sid_w = sys::wide(sid);
    let mut psid: PSID = std::ptr::null_mut();
    // SAFETY: a NUL-terminated string; the SID is allocated by the call, freed below.
    if unsafe { ConvertStringSidToSidW(sid_w.as_ptr(), &mut psid) } == 0 {
        return Err(sys::last_error(what(verb)));
    }
    let p = path_w(path);
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path; the DACL points into `sd`, freed below.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            p.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    let result = if rc != 0 {
        Err(sys::error_code(what(verb), rc))
    } else {
        let ea = EXPLICIT_ACCESS_W {
            grfAccessPermissions: access.mask(),
            grfAccessMode: mode,
            grfInheritance: OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE,
            Trustee: TRUSTEE_W {
                pMultipleTrustee: std::ptr::null_mut(),
                MultipleTrusteeOperation: 0,
                TrusteeForm: TRUSTEE_IS_SID,
                TrusteeType: TRUSTEE_IS_UNKNOWN,
                ptstrName: psid.cast(),
            },
        };
        let mut new: *mut ACL = std::ptr::null_mut();
        // SAFETY: one entry; the old DACL is valid (inside `sd`); the new one is allocated by
        // the call and freed below.
        let rc = unsafe { SetEntriesInAclW(1, &ea, dacl, &mut new) };
        let r = if rc != 0 {
            Err(sys::error_code(what(verb), rc))
        } else {
            // SAFETY: a NUL-terminated path and a valid DACL.
            let rc = unsafe {
                SetNamedSecurityInfoW(
                    p.as_ptr(),
                    SE_FILE_OBJECT,
                    DACL_SECURITY_INFORMATION,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    new,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                Err(sys::error_code(what(verb), rc))
            } else {
                Ok(())
            }
        };
        // SAFETY: allocated by SetEntriesInAclW (or null), freed once.
        unsafe { LocalFree(new.cast()) };
        r
    };
    // SAFETY: allocated by the calls above (or null), freed once.
    unsafe {
        LocalFree(sd);
        LocalFree(psid);
    }
    result
}

/// The mandatory label of `path` as SDDL (`S:(ML;...)`), None when it has none.
fn label_of(path: &Path) -> Result<Option<String>> {
    let step = || format!("reading the integrity label of {}", path.display());
    let p = path_w(path);
    let mut sacl: *mut ACL = std::ptr::null_mut();
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path; `sd` is allocated by the call, freed below.
    let rc = unsafe {
        GetNamedSecurityInfoW(
            p.as_ptr(),
            SE_FILE_OBJECT,
            LABEL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut sacl,
            &mut sd,
        )
    };
    if rc != 0 {
        return Err(sys::error_code(step(), rc));
    }
    let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: a valid descriptor; the string is allocated by the call, freed below.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd,
            SDDL_REVISION_1,
            LABEL_SECURITY_INFORMATION,
            &mut text,
            std::ptr::null_mut(),
        )
    };
    let r = if ok == 0 {
        Err(sys::last_error(step()))
    } else {
        // SAFETY: a NUL-terminated string the call allocated.
        let s = unsafe {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
        };
        Ok((s.contains("(ML;")).then_some(s))
    };
    // SAFETY: allocated by the calls above (or null), freed once.
    unsafe {
        LocalFree(text.cast());
        LocalFree(sd);
    }
    r
}

/// Give `path` the label of `sddl`, or none (an empty label list) for None.
fn set_label(path: &Path, sddl: Option<&str>) -> Result<()> {
    let step = || format!("setting the integrity label of {}", path.display());
    let p = path_w(path);
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    let mut empty = [0u32; 8];
    let sacl: *mut ACL = match sddl {
        Some(s) => {
            let w = sys::wide(s);
            // SAFETY: a NUL-terminated SDDL string; `sd` is allocated by the call, freed below.
            let ok = unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    w.as_ptr(),
                    SDDL_REVISION_1,
                    &mut sd,
                    std::ptr::null_mut(),
                )
            };
            if ok == 0 {
                return Err(sys::last_error(step()));
            }
            let (mut present, mut defaulted) = (0, 0);
            let mut sacl: *mut ACL = std::ptr::null_mut();
            // SAFETY: a valid descriptor; the SACL points into it.
            unsafe { GetSecurityDescriptorSacl(sd, &mut present, &mut sacl, &mut defaulted) };
            sacl
        }
        None => {
            let acl = empty.as_mut_ptr().cast::<ACL>();
            // SAFETY: `empty` has 32 bytes, room for an ACL header and no entries.
            if unsafe { InitializeAcl(acl, std::mem::size_of_val(&empty) as u32, ACL_REVISION) }
                == 0
            {
                return Err(sys::last_error(step()));
            }
            acl
        }
    };
    // SAFETY: a NUL-terminated path and a valid label list.
    let rc = unsafe {
        SetNamedSecurityInfoW(
            p.as_ptr(),
            SE_FILE_OBJECT,
            LABEL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null(),
            sacl,
        )
    };
    // SAFETY: allocated by the conversion (or null), freed once.
    unsafe { LocalFree(sd) };
    if rc != 0 {
        return Err(sys::error_code(step(), rc));
    }
    Ok(())
}

/// Undo one entry; a path that is gone is no error.
fn undo(e: &Entry) -> Result<()> {
    let r = match e {
        Entry::Grant { sid, access, path } if path.exists() => {
            set_entry(sid, path, *access, REVOKE_ACCESS)
        }
        Entry::Label { path, before } if path.exists() => set_label(path, before.as_deref()),
        _ => Ok(()),
    };
    r
}

static RECORDS: AtomicU64 = AtomicU64::new(0);

/// The entries one run added, undone when released or dropped.
#[derive(Debug)]
pub(crate) struct Grants {
    file: Option<std::fs::File>,
    path: PathBuf,
    done: Vec<Entry>,
}

impl Grants {
    pub(crate) fn new(record_dir: &Path) -> Result<Grants> {
        std::fs::create_dir_all(record_dir)
            .map_err(|e| Error::io(format!("creating {}", record_dir.display()), e))?;
        // Without its own creation time, a record could not tell this process from a later one
        // with its pid, and another caller's clean_stale would undo this run's entries.
        // SAFETY: the pseudo-handle of this process.
        let created = created(unsafe { GetCurrentProcess() }).ok_or_else(|| {
            Error::io(
                "reading this process's creation time for the access record",
                std::io::Error::last_os_error(),
            )
        })?;
        // A dead owner with this pid may have left records under the next names: those are
        // clean_stale's to undo, never overwritten; the next free name is taken.
        let (path, file) = loop {
            let n = RECORDS.fetch_add(1, Ordering::Relaxed);
            let path = record_dir.join(format!("{}-{n}.grants", std::process::id()));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("creating the record {}", path.display()),
                        e,
                    ))
                }
            }
        };
        let mut g = Grants {
            file: Some(file),
            path,
            done: Vec::new(),
        };
        g.record(&Entry::Owner {
            pid: std::process::id(),
            created,
        })?;
        Ok(g)
    }

    fn record(&mut self, e: &Entry) -> Result<()> {
        let line = e.line()?;
        let f = self.file.as_mut().expect("open until released");
        writeln!(f, "{line}")
            .and_then(|()| f.sync_data())
            .map_err(|err| Error::io(format!("writing the record {}", self.path.display()), err))
    }

    pub(crate) fn note_profile(&mut self, name: &str) -> Result<()> {
        self.record(&Entry::Profile(name.to_string()))
    }

    pub(crate) fn grant(&mut self, sid: &str, path: &Path, access: Access) -> Result<()> {
        let e = Entry::Grant {
            sid: sid.to_string(),
            access,
            path: path.to_path_buf(),
        };
        self.record(&e)?;
        set_entry(sid, path, access, GRANT_ACCESS)?;
        self.done.push(e);
        Ok(())
    }

    pub(crate) fn label_low(&mut self, path: &Path) -> Result<()> {
        if sys::wine_version().is_some() {
            // Wine enforces no integrity level, so a low-integrity program needs no label to
            // write; and it refuses to read a file's label (measured on Wine 8.0: access
            // denied), so the earlier one could not be put back.
            return Ok(());
        }
        let before = label_of(path)?;
        let e = Entry::Label {
            path: path.to_path_buf(),
            before,
        };
        self.record(&e)?;
        set_label(path, Some(LOW_LABEL))?;
        self.done.push(e);
        Ok(())
    }

    /// Undo everything, newest first, then delete the record (kept if something failed).
    pub(crate) fn release(mut self) -> Result<()> {
        self.undo_all()
    }

    fn undo_all(&mut self) -> Result<()> {
        let mut first = None;
        for e in std::mem::take(&mut self.done).iter().rev() {
            if let Err(err) = undo(e) {
                first.get_or_insert(err);
            }
        }
        self.file = None;
        match first {
            None => {
                let _ = std::fs::remove_file(&self.path);
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}

impl Drop for Grants {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = self.undo_all();
        }
    }
}

/// Undo the records in `record_dir` whose owner is gone; returns the paths restored and the
/// AppContainer profiles they name (for the caller to delete).
pub(crate) fn clean_stale(record_dir: &Path) -> Result<(Vec<PathBuf>, Vec<String>)> {
    let mut paths = Vec::new();
    let mut profiles = Vec::new();
    let Ok(dir) = std::fs::read_dir(record_dir) else {
        return Ok((paths, profiles));
    };
    let mut malformed = Vec::new();
    for f in dir.flatten() {
        let p = f.path();
        if p.extension().is_none_or(|e| e != "grants") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let Some(entries) = parse_record(&text) else {
            malformed.push(p.display().to_string());
            continue;
        };
        let Entry::Owner { pid, created } = entries[0] else {
            continue;
        };
        if alive(pid, created) {
            continue;
        }
        let mut ok = true;
        for e in entries.iter().rev() {
            match e {
                Entry::Profile(n) => profiles.push(n.clone()),
                Entry::Grant { path, .. } | Entry::Label { path, .. } => {
                    if undo(e).is_ok() {
                        // What was restored: a path that is gone had nothing to restore, and
                        // a path with both a grant and a label is named once.
                        if path.exists() && !paths.contains(path) {
                            paths.push(path.clone());
                        }
                    } else {
                        ok = false;
                    }
                }
                Entry::Owner { .. } => {}
            }
        }
        if ok {
            let _ = std::fs::remove_file(&p);
        }
    }
    if !malformed.is_empty() {
        return Err(Error::Setup {
            step: format!("reading the access records {}", malformed.join(", ")),
            source: std::io::Error::other("malformed; left in place"),
        });
    }
    Ok((paths, profiles))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nanobox-acl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The DACL of `p` as SDDL.
    fn dacl(p: &Path) -> String {
        let w = path_w(p);
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        let mut d: *mut ACL = std::ptr::null_mut();
        // SAFETY: as in set_entry.
        let rc = unsafe {
            GetNamedSecurityInfoW(
                w.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut d,
                std::ptr::null_mut(),
                &mut sd,
            )
        };
        assert_eq!(rc, 0);
        let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
        // SAFETY: a valid descriptor.
        let ok = unsafe {
            ConvertSecurityDescriptorToStringSecurityDescriptorW(
                sd,
                SDDL_REVISION_1,
                DACL_SECURITY_INFORMATION,
                &mut text,
                std::ptr::null_mut(),
            )
        };
        assert_ne!(ok, 0);
        // SAFETY: a NUL-terminated string the call allocated.
        let s = unsafe {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
        };
        // SAFETY: allocated above, freed once.
        unsafe {
            LocalFree(text.cast());
            LocalFree(sd);
        }
        s
    }

    /// A SID no account has, for the entries.
    const SID: &str = "S-1-15-2-1-2-3-4-5-6-7";

    #[test]
    fn records_round_trip_and_refuse_what_they_cannot_hold() {
        let entries = vec![
            Entry::Owner {
                pid: 42,
                created: 133_000_000_000,
            },
            Entry::Profile("nanobox-42-0".into()),
            Entry::Grant {
                sid: SID.into(),
                access: Access::ReadWrite,
                path: "C:\\a b\\c".into(),
            },
            Entry::Label {
                path: "C:\\d".into(),
                before: None,
            },
            Entry::Label {
                path: "C:\\e".into(),
                before: Some("S:(ML;OICI;NW;;;ME)".into()),
            },
        ];
        let text: String = entries.iter().map(|e| e.line().unwrap() + "\n").collect();
        assert_eq!(parse_record(&text).unwrap(), entries);
        assert!(
            parse_record("grant\tS-1\tR\tC:\\x\n").is_none(),
            "no owner first"
        );
        assert!(parse_record("owner\t1\t2\ngrant\tS-1\tX\tC:\\x\n").is_none());
        let bad = Entry::Grant {
            sid: SID.into(),
            access: Access::Read,
            path: "C:\\a\tb".into(),
        };
        assert!(bad.line().is_err());
        assert_eq!(
            Access::Read.mask() & (FILE_GENERIC_WRITE & !FILE_GENERIC_READ),
            0
        );
        assert_ne!(Access::ReadWrite.mask() & DELETE, 0);
    }

    #[test]
    fn only_a_process_that_is_surely_another_or_ended_is_dead() {
        let active = STILL_ACTIVE as u32;
        assert!(judged_alive(7, Some(7), Some(active)));
        assert!(
            !judged_alive(7, Some(8), Some(active)),
            "another process with the pid"
        );
        assert!(!judged_alive(7, Some(7), Some(0)), "ended");
        assert!(
            judged_alive(7, None, Some(active)),
            "creation time unreadable: alive"
        );
        assert!(
            judged_alive(7, Some(7), None),
            "exit code unreadable: alive"
        );
        assert!(judged_alive(7, None, None));
        assert!(
            !judged_alive(7, Some(8), None),
            "another process, whatever its state"
        );
    }

    #[test]
    fn a_record_left_under_the_next_name_is_kept_and_skipped() {
        let d = scratch("taken");
        let records = d.join("records");
        std::fs::create_dir(&records).unwrap();
        // A dead owner with this pid left records under the names the next runs would take
        // (other tests may take some of them first: every one is taken here).
        let next = RECORDS.load(Ordering::Relaxed);
        let left = "owner\t4294967295\t1\n";
        let taken: Vec<_> = (next..next + 64)
            .map(|n| records.join(format!("{}-{n}.grants", std::process::id())))
            .collect();
        for p in &taken {
            std::fs::write(p, left).unwrap();
        }
        let g = Grants::new(&records).unwrap();
        assert!(
            !taken.contains(&g.path),
            "{} was overwritten",
            g.path.display()
        );
        for p in &taken {
            assert_eq!(std::fs::read_to_string(p).unwrap(), left, "{}", p.display());
        }
        g.release().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_grant_is_undone_exactly_and_its_record_removed() {
        let d = scratch("grant");
        let records = d.join("records");
        let target = d.join("target");
        std::fs::create_dir(&target).unwrap();
        let before = dacl(&target);
        let mut g = Grants::new(&records).unwrap();
        g.grant(SID, &target, Access::ReadWrite).unwrap();
        let during = dacl(&target);
        if sys::wine_version().is_some() && during == before {
            // Measured on Wine 8.0: SetNamedSecurityInfoW succeeds and the directory's DACL
            // reads back unchanged (Wine keeps no access lists on these files). Real Windows
            // checks the entry below.
            g.release().unwrap();
            let _ = std::fs::remove_dir_all(&d);
            return;
        }
        assert!(during.contains(SID), "{during}");
        let record = std::fs::read_dir(&records)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        assert!(std::fs::read_to_string(&record)
            .unwrap()
            .contains("grant\t"));
        g.release().unwrap();
        assert_eq!(dacl(&target), before);
        assert!(!record.exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn clean_stale_undoes_a_dead_owner_s_record_and_leaves_a_live_one() {
        let d = scratch("stale");
        let records = d.join("records");
        std::fs::create_dir(&records).unwrap();
        let target = d.join("target");
        std::fs::create_dir(&target).unwrap();
        let before = dacl(&target);
        // An owner that has exited: a child that ran and was waited for.
        let mut c = std::process::Command::new("cmd")
            .args(["/c", "exit 0"])
            .spawn()
            .unwrap();
        let pid = c.id();
        use std::os::windows::io::AsRawHandle;
        let created_at = created(c.as_raw_handle()).unwrap();
        c.wait().unwrap();
        set_entry(SID, &target, Access::Read, GRANT_ACCESS).unwrap();
        let dead = [
            Entry::Owner {
                pid,
                created: created_at,
            },
            Entry::Profile("nanobox-stale-0".into()),
            Entry::Grant {
                sid: SID.into(),
                access: Access::Read,
                path: target.clone(),
            },
        ];
        let text: String = dead.iter().map(|e| e.line().unwrap() + "\n").collect();
        std::fs::write(records.join("1-0.grants"), text).unwrap();
        // A live owner: this process.
        let live = Grants::new(&records).unwrap();
        let (paths, profiles) = clean_stale(&records).unwrap();
        assert_eq!(paths, std::slice::from_ref(&target));
        assert_eq!(profiles, ["nanobox-stale-0"]);
        assert_eq!(dacl(&target), before);
        assert!(!records.join("1-0.grants").exists());
        assert!(live.path.exists(), "a live owner's record is kept");
        drop(live);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_low_label_is_set_and_the_earlier_one_put_back() {
        let d = scratch("label");
        let records = d.join("records");
        let target = d.join("target");
        std::fs::create_dir(&target).unwrap();
        if sys::wine_version().is_some() {
            // Measured on Wine 8.0: reading a file's label is refused (access denied), and Wine
            // enforces no integrity level: label_low leaves files alone there (see it).
            assert!(label_of(&target).is_err());
            let mut g = Grants::new(&records).unwrap();
            g.label_low(&target).unwrap();
            g.release().unwrap();
            let _ = std::fs::remove_dir_all(&d);
            return;
        }
        let before = label_of(&target).unwrap();
        let mut g = Grants::new(&records).unwrap();
        g.label_low(&target).unwrap();
        let during = label_of(&target).unwrap();
        assert!(during.as_deref().unwrap_or("").contains("LW"), "{during:?}");
        g.release().unwrap();
        assert_eq!(label_of(&target).unwrap(), before);
        let _ = std::fs::remove_dir_all(&d);
    }
}
