//! The run's Job Object: every process of the run is in it, its limits bound them all together,
//! and closing it (or nanobox dying) ends them all.

use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::time::Duration;

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectAssociateCompletionPortInformation,
    JobObjectBasicAccountingInformation, JobObjectBasicUIRestrictions,
    JobObjectCpuRateControlInformation, JobObjectExtendedLimitInformation,
    QueryInformationJobObject, SetInformationJobObject, TerminateJobObject,
    JOBOBJECT_ASSOCIATE_COMPLETION_PORT, JOBOBJECT_BASIC_ACCOUNTING_INFORMATION,
    JOBOBJECT_BASIC_UI_RESTRICTIONS, JOBOBJECT_CPU_RATE_CONTROL_INFORMATION,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JOB_OBJECT_CPU_RATE_CONTROL_ENABLE,
    JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP, JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
    JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_JOB_TIME, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE, JOB_OBJECT_UILIMIT_DESKTOP,
    JOB_OBJECT_UILIMIT_DISPLAYSETTINGS, JOB_OBJECT_UILIMIT_EXITWINDOWS,
    JOB_OBJECT_UILIMIT_GLOBALATOMS, JOB_OBJECT_UILIMIT_HANDLES, JOB_OBJECT_UILIMIT_READCLIPBOARD,
    JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS, JOB_OBJECT_UILIMIT_WRITECLIPBOARD,
};
use windows_sys::Win32::System::IO::{
    CreateIoCompletionPort, GetQueuedCompletionStatus, OVERLAPPED,
};

use super::sys;
use crate::error::{Error, Result};

/// The job's limits, from the policy (see [`crate::explain`]'s Windows plan for their units).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settings {
    pub processes: Option<u32>,
    pub memory: Option<u64>,
    /// PerJobUserTimeLimit, in 100 ns units.
    pub cpu_time_ticks: Option<i64>,
    /// CpuRate, 1..=10000.
    pub cpu_rate: Option<u32>,
}

/// A message of the job's completion port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message {
    /// `JOB_OBJECT_MSG_*`.
    pub kind: u32,
    /// The process id it concerns, where it concerns one.
    pub pid: usize,
}

/// What the job accounted for its processes.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Accounting {
    /// User and kernel time of every process the job held, ended ones included.
    pub cpu_time: Duration,
    pub active_processes: u32,
    pub total_processes: u32,
    /// The peak of the job's committed memory.
    pub peak_memory: u64,
}

#[derive(Debug)]
pub(crate) struct Job {
    handle: OwnedHandle,
    port: OwnedHandle,
}

// SAFETY: the handles are kernel object handles, usable from any thread.
unsafe impl Send for Job {}
// SAFETY: as above; every call on them is thread-safe.
unsafe impl Sync for Job {}

/// Set one information class of a job.
fn set<T>(job: HANDLE, class: i32, info: &T, what: &str) -> Result<()> {
    // SAFETY: `info` points at a live T of the size given, the layout `class` expects.
    let ok = unsafe {
        SetInformationJobObject(
            job,
            class,
            (info as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if ok == 0 {
        return Err(sys::last_error(format!("setting the job's {what}")));
    }
    Ok(())
}

impl Job {
    /// A job with `s`'s limits, the flags every run gets, the UI restrictions and a completion
    /// port. `JOB_OBJECT_LIMIT_BREAKAWAY_OK` and `SILENT_BREAKAWAY_OK` are never set: no process
    /// of the run can leave the job.
    pub(crate) fn new(s: &Settings) -> Result<Job> {
        // SAFETY: no security attributes and no name: an anonymous job, handle not inheritable.
        let handle = sys::owned(
            unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) },
            "creating the run's job object",
        )?;
        let h = handle.as_raw_handle();
        let mut ext = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        let basic = &mut ext.BasicLimitInformation;
        basic.LimitFlags =
            JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
        if let Some(n) = s.processes {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_ACTIVE_PROCESS;
            basic.ActiveProcessLimit = n;
        }
        if let Some(t) = s.cpu_time_ticks {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_JOB_TIME;
            basic.PerJobUserTimeLimit = t;
        }
        if let Some(m) = s.memory {
            ext.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_JOB_MEMORY;
            ext.JobMemoryLimit = usize::try_from(m).unwrap_or(usize::MAX);
        }
        set(h, JobObjectExtendedLimitInformation, &ext, "limits")?;
        let ui = JOBOBJECT_BASIC_UI_RESTRICTIONS {
            UIRestrictionsClass: JOB_OBJECT_UILIMIT_DESKTOP
                | JOB_OBJECT_UILIMIT_DISPLAYSETTINGS
                | JOB_OBJECT_UILIMIT_EXITWINDOWS
                | JOB_OBJECT_UILIMIT_GLOBALATOMS
                | JOB_OBJECT_UILIMIT_HANDLES
                | JOB_OBJECT_UILIMIT_READCLIPBOARD
                | JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS
                | JOB_OBJECT_UILIMIT_WRITECLIPBOARD,
        };
        set(h, JobObjectBasicUIRestrictions, &ui, "UI restrictions")?;
        if let Some(rate) = s.cpu_rate {
            let mut cpu = JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
                ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE
                    | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
                ..Default::default()
            };
            cpu.Anonymous.CpuRate = rate;
            set(h, JobObjectCpuRateControlInformation, &cpu, "CPU rate cap").map_err(
                |e| match e {
                    Error::Setup { source, .. } => Error::HostUnsupported {
                        missing: "a CPU rate cap on Job Objects",
                        cause: format!("SetInformationJobObject refused the CPU rate: {source}"),
                        fix: "leave cpu_limit unset (cpu_time_limit and wall_time_limit are \
                              enforced); see nanobox doctor"
                            .into(),
                    },
                    other => other,
                },
            )?;
        }
        // SAFETY: a new completion port, associated with no file, for one thread.
        let port = sys::owned(
            unsafe { CreateIoCompletionPort(INVALID_HANDLE_VALUE, std::ptr::null_mut(), 0, 1) },
            "creating the job's completion port",
        )?;
        let assoc = JOBOBJECT_ASSOCIATE_COMPLETION_PORT {
            CompletionKey: h,
            CompletionPort: port.as_raw_handle(),
        };
        set(
            h,
            JobObjectAssociateCompletionPortInformation,
            &assoc,
            "completion port",
        )?;
        Ok(Job { handle, port })
    }

    pub(crate) fn raw(&self) -> HANDLE {
        self.handle.as_raw_handle()
    }

    /// Put a (suspended) process into the job.
    pub(crate) fn assign(&self, process: HANDLE) -> Result<()> {
        // SAFETY: both handles are live; the process handle has PROCESS_SET_QUOTA and
        // PROCESS_TERMINATE (it is the creator's full-access handle).
        if unsafe { AssignProcessToJobObject(self.raw(), process) } == 0 {
            return Err(sys::last_error("putting the program into the run's job"));
        }
        Ok(())
    }

    /// End every process of the job with `code`.
    pub(crate) fn terminate(&self, code: u32) {
        // SAFETY: a live job handle with JOB_OBJECT_TERMINATE (the creator's handle).
        unsafe { TerminateJobObject(self.raw(), code) };
    }

    /// The next message of the completion port, waiting up to `timeout`.
    pub(crate) fn message(&self, timeout: Duration) -> Option<Message> {
        let mut kind = 0u32;
        let mut key = 0usize;
        let mut pid: *mut OVERLAPPED = std::ptr::null_mut();
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
        // SAFETY: a live completion port; the out-pointers point at locals. For job messages
        // the "overlapped" pointer carries the process id, it is never dereferenced.
        let ok = unsafe {
            GetQueuedCompletionStatus(self.port.as_raw_handle(), &mut kind, &mut key, &mut pid, ms)
        };
        if ok == 0 {
            // A timeout, or a failed dequeue: nothing to report; the caller polls again.
            return None;
        }
        Some(Message {
            kind,
            pid: pid as usize,
        })
    }

    /// What the job accounted so far (zeros where the host does not account, as Wine).
    pub(crate) fn accounting(&self) -> Accounting {
        let mut basic = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
        let mut ext = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
        let mut a = Accounting::default();
        // SAFETY: the buffers are live structs of the size given, the layouts the classes use.
        let ok = unsafe {
            QueryInformationJobObject(
                self.raw(),
                JobObjectBasicAccountingInformation,
                (&mut basic as *mut JOBOBJECT_BASIC_ACCOUNTING_INFORMATION).cast(),
                std::mem::size_of_val(&basic) as u32,
                std::ptr::null_mut(),
            )
        };
        if ok != 0 {
            let ticks = (basic.TotalUserTime.max(0) + basic.TotalKernelTime.max(0)) as u64;
            a.cpu_time = Duration::from_nanos(ticks.saturating_mul(100));
            a.active_processes = basic.ActiveProcesses;
            a.total_processes = basic.TotalProcesses;
        }
        // SAFETY: as above.
        let ok = unsafe {
            QueryInformationJobObject(
                self.raw(),
                JobObjectExtendedLimitInformation,
                (&mut ext as *mut JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of_val(&ext) as u32,
                std::ptr::null_mut(),
            )
        };
        if ok != 0 {
            a.peak_memory = ext.PeakJobMemoryUsed as u64;
        }
        a
    }
}
