//! Starting the program: suspended, with the restricted token, only its three standard handles
//! inherited, inside the run's job (and AppContainer, where one is used), then resumed.

use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};

use windows_sys::Win32::Foundation::{
    SetHandleInformation, ERROR_INSUFFICIENT_BUFFER, HANDLE, HANDLE_FLAG_INHERIT,
};
use windows_sys::Win32::Security::SECURITY_CAPABILITIES;
use windows_sys::Win32::System::JobObjects::IsProcessInJob;
use windows_sys::Win32::System::Threading::{
    CreateProcessAsUserW, DeleteProcThreadAttributeList, InitializeProcThreadAttributeList,
    ResumeThread, TerminateProcess, UpdateProcThreadAttribute, CREATE_NO_WINDOW, CREATE_SUSPENDED,
    CREATE_UNICODE_ENVIRONMENT, EXTENDED_STARTUPINFO_PRESENT, LPPROC_THREAD_ATTRIBUTE_LIST,
    PROCESS_INFORMATION, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, PROC_THREAD_ATTRIBUTE_JOB_LIST,
    PROC_THREAD_ATTRIBUTE_SECURITY_CAPABILITIES, STARTF_USESTDHANDLES, STARTUPINFOEXW,
};

use super::job::Job;
use super::sys;
use crate::error::{Error, Result};

/// A `PROC_THREAD_ATTRIBUTE_LIST` in a buffer of its own, deleted when dropped. The values the
/// attributes point at must outlive it (they are read by CreateProcess).
struct AttributeList {
    buf: Vec<u64>,
}

impl AttributeList {
    fn new(count: u32) -> Result<AttributeList> {
        let mut size = 0usize;
        // SAFETY: a size query: a null list, the size it needs written to `size`.
        unsafe { InitializeProcThreadAttributeList(std::ptr::null_mut(), count, 0, &mut size) };
        let e = std::io::Error::last_os_error();
        if size == 0 || e.raw_os_error() != Some(ERROR_INSUFFICIENT_BUFFER as i32) {
            return Err(sys::last_error("sizing the process attribute list"));
        }
        let mut buf = vec![0u64; size.div_ceil(8)];
        // SAFETY: `buf` has `size` bytes, the size the query asked for.
        let ok = unsafe {
            InitializeProcThreadAttributeList(buf.as_mut_ptr().cast(), count, 0, &mut size)
        };
        if ok == 0 {
            return Err(sys::last_error("initialising the process attribute list"));
        }
        Ok(AttributeList { buf })
    }

    fn ptr(&mut self) -> LPPROC_THREAD_ATTRIBUTE_LIST {
        self.buf.as_mut_ptr().cast()
    }

    /// Set `attribute` to the `size` bytes at `value`.
    ///
    /// # Safety
    /// `value` must stay valid until the list is dropped.
    unsafe fn set(
        &mut self,
        attribute: u32,
        value: *const std::ffi::c_void,
        size: usize,
        what: &str,
    ) -> Result<()> {
        // SAFETY: an initialised list; the value is valid for the list's life (the caller's
        // contract).
        let ok = unsafe {
            UpdateProcThreadAttribute(
                self.ptr(),
                0,
                attribute as usize,
                value,
                size,
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if ok == 0 {
            return Err(sys::last_error(format!("setting the attribute {what}")));
        }
        Ok(())
    }
}

impl Drop for AttributeList {
    fn drop(&mut self) {
        // SAFETY: the list was initialised and is deleted once.
        unsafe { DeleteProcThreadAttributeList(self.ptr()) };
    }
}

/// What a launch is given.
pub(crate) struct Launch<'a> {
    pub token: HANDLE,
    pub application: &'a [u16],
    /// Mutable, as CreateProcessW may write into it.
    pub command_line: Vec<u16>,
    pub environment: &'a [u16],
    pub cwd: &'a [u16],
    pub stdin: &'a OwnedHandle,
    pub stdout: &'a OwnedHandle,
    pub stderr: &'a OwnedHandle,
    pub job: &'a Job,
    pub capabilities: Option<SECURITY_CAPABILITIES>,
}

/// The started program: running, in the job.
pub(crate) struct Started {
    pub process: OwnedHandle,
    pub pid: u32,
}

fn set_inherit(h: &OwnedHandle, on: bool) -> Result<()> {
    // SAFETY: a live handle this process owns.
    let ok = unsafe {
        SetHandleInformation(
            h.as_raw_handle(),
            HANDLE_FLAG_INHERIT,
            if on { HANDLE_FLAG_INHERIT } else { 0 },
        )
    };
    if ok == 0 {
        return Err(sys::last_error("marking a standard handle inheritable"));
    }
    Ok(())
}

fn in_job(process: HANDLE, job: &Job) -> bool {
    let mut r = 0;
    // SAFETY: live handles; the answer lands in `r`.
    let ok = unsafe { IsProcessInJob(process, job.raw(), &mut r) };
    ok != 0 && r != 0
}

pub(crate) fn launch(mut l: Launch<'_>) -> Result<Started> {
    // The three handles, once each (stdout and stderr are always two pipes; stdin may be any).
    let mut handles: Vec<HANDLE> = Vec::new();
    for h in [l.stdin, l.stdout, l.stderr] {
        if !handles.contains(&h.as_raw_handle()) {
            handles.push(h.as_raw_handle());
        }
    }
    let job_list: [HANDLE; 1] = [l.job.raw()];
    let caps = l.capabilities;
    let mut attrs = AttributeList::new(2 + u32::from(caps.is_some()))?;
    // SAFETY: `handles`, `job_list` and `caps` live until after CreateProcessAsUserW below,
    // and `attrs` is dropped before them (declared after).
    unsafe {
        attrs.set(
            PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
            handles.as_ptr().cast(),
            handles.len() * std::mem::size_of::<HANDLE>(),
            "PROC_THREAD_ATTRIBUTE_HANDLE_LIST",
        )?;
    }
    // The job list (Windows 10) puts the process in the job at creation; where the host does not
    // take it, AssignProcessToJobObject does before the program's first instruction runs.
    // SAFETY: as above.
    let job_attr = unsafe {
        attrs.set(
            PROC_THREAD_ATTRIBUTE_JOB_LIST,
            job_list.as_ptr().cast(),
            std::mem::size_of::<HANDLE>(),
            "PROC_THREAD_ATTRIBUTE_JOB_LIST",
        )
    }
    .is_ok();
    if let Some(c) = caps.as_ref() {
        // SAFETY: as above.
        unsafe {
            attrs.set(
                PROC_THREAD_ATTRIBUTE_SECURITY_CAPABILITIES,
                (c as *const SECURITY_CAPABILITIES).cast(),
                std::mem::size_of::<SECURITY_CAPABILITIES>(),
                "PROC_THREAD_ATTRIBUTE_SECURITY_CAPABILITIES",
            )?;
        }
    }
    let mut si = STARTUPINFOEXW::default();
    si.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = l.stdin.as_raw_handle();
    si.StartupInfo.hStdOutput = l.stdout.as_raw_handle();
    si.StartupInfo.hStdError = l.stderr.as_raw_handle();
    si.lpAttributeList = attrs.ptr();
    let mut pi = PROCESS_INFORMATION::default();
    // Inheritable only for the call: the handle list is what the program gets.
    for h in [l.stdin, l.stdout, l.stderr] {
        set_inherit(h, true)?;
    }
    // SAFETY: every pointer is valid for the call: NUL-terminated wide strings, a mutable
    // command line, a double-NUL-terminated environment block, the attribute list and the
    // values it points at, and `pi` for the answer.
    let ok = unsafe {
        CreateProcessAsUserW(
            l.token,
            l.application.as_ptr(),
            l.command_line.as_mut_ptr(),
            std::ptr::null(),
            std::ptr::null(),
            1,
            CREATE_SUSPENDED
                | CREATE_UNICODE_ENVIRONMENT
                | EXTENDED_STARTUPINFO_PRESENT
                | CREATE_NO_WINDOW,
            l.environment.as_ptr().cast(),
            l.cwd.as_ptr(),
            &si.StartupInfo,
            &mut pi,
        )
    };
    let created = std::io::Error::last_os_error();
    for h in [l.stdin, l.stdout, l.stderr] {
        let _ = set_inherit(h, false);
    }
    drop(attrs);
    if ok == 0 {
        return Err(Error::Setup {
            step: "starting the program (CreateProcessAsUserW with the restricted token)".into(),
            source: created,
        });
    }
    // SAFETY: CreateProcessAsUserW returned these two new handles, owned here.
    let (process, thread) = unsafe {
        (
            OwnedHandle::from_raw_handle(pi.hProcess),
            OwnedHandle::from_raw_handle(pi.hThread),
        )
    };
    let kill = |e: Error| {
        // SAFETY: a live process handle with PROCESS_TERMINATE; the program never ran.
        unsafe { TerminateProcess(process.as_raw_handle(), 1) };
        e
    };
    if !(job_attr && in_job(process.as_raw_handle(), l.job)) {
        l.job.assign(process.as_raw_handle()).map_err(kill)?;
    }
    // Never resumed outside the job.
    if !in_job(process.as_raw_handle(), l.job) {
        return Err(kill(Error::Setup {
            step: "checking the program is in the run's job".into(),
            source: std::io::Error::other("IsProcessInJob says it is not"),
        }));
    }
    // SAFETY: the suspended main thread's handle.
    if unsafe { ResumeThread(thread.as_raw_handle()) } == u32::MAX {
        return Err(kill(sys::last_error("resuming the program")));
    }
    Ok(Started {
        process,
        pid: pi.dwProcessId,
    })
}
