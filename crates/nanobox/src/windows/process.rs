//! A running program seen from the caller: the waiter thread, killing, and reading output under
//! the cap.
//!
//! One thread per run waits on the program's process handle (at most [`SLICE`] at a time),
//! reads the job's completion port, enforces the wall-clock limit and the tree's CPU time, and
//! when the program has ended, terminates the job (nothing of the run outlives the program, as
//! on Linux, where the sandbox's pid namespace ends with it) and publishes the result. Process
//! handles cannot be reused while open, so a kill never reaches another process.

use std::io::{self, Read};
use std::os::windows::io::{AsRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{FILETIME, WAIT_OBJECT_0};
use windows_sys::Win32::System::SystemServices::{
    JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS, JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT,
    JOB_OBJECT_MSG_END_OF_JOB_TIME, JOB_OBJECT_MSG_EXIT_PROCESS, JOB_OBJECT_MSG_JOB_MEMORY_LIMIT,
    JOB_OBJECT_MSG_NEW_PROCESS, JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT,
};
use windows_sys::Win32::System::Threading::{
    GetExitCodeProcess, GetProcessTimes, TerminateProcess, WaitForSingleObject,
};

use super::job::Job;
use crate::error::{Error, Result};
use crate::result::{Enforcement, Outcome, RunResult};

/// How long the waiter sleeps at most between checks.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

const KILL_NONE: u8 = 0;
const KILL_OUTPUT: u8 = 1;
const KILL_USER: u8 = 2;
const KILL_WALL: u8 = 3;
const KILL_CPU: u8 = 4;

/// The exit code nanobox gives the job's processes when it ends them.
const TERMINATED: u32 = 0xC000_013A; // STATUS_CONTROL_C_EXIT

/// SIGKILL, for [`Outcome::Signaled`] after a kill (the number the API documents everywhere).
const SIGKILL: i32 = 9;

/// How long the output readers may take after the run ended before they are cancelled.
const READER_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
struct Finished {
    outcome: Outcome,
    wall: Duration,
    cpu_time: Duration,
    peak_memory: u64,
}

/// The job's messages, as counted by the waiter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seen {
    pub new_processes: u32,
    pub exited_processes: u32,
    pub abnormal_exits: u32,
    pub memory_limit: bool,
    pub process_limit: bool,
    pub job_time: bool,
}

impl Seen {
    pub(crate) fn add(&mut self, kind: u32) {
        match kind {
            JOB_OBJECT_MSG_NEW_PROCESS => self.new_processes += 1,
            JOB_OBJECT_MSG_EXIT_PROCESS => self.exited_processes += 1,
            JOB_OBJECT_MSG_ABNORMAL_EXIT_PROCESS => {
                self.exited_processes += 1;
                self.abnormal_exits += 1;
            }
            JOB_OBJECT_MSG_JOB_MEMORY_LIMIT | JOB_OBJECT_MSG_PROCESS_MEMORY_LIMIT => {
                self.memory_limit = true
            }
            JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT => self.process_limit = true,
            JOB_OBJECT_MSG_END_OF_JOB_TIME => self.job_time = true,
            _ => {}
        }
    }
}

/// The outcome from the program's exit code, the caller's reason to end it, the job's messages,
/// and whether the CPU time or the memory peak reached their limits.
pub(crate) fn outcome(
    code: u32,
    reason: u8,
    seen: &Seen,
    cpu_spent: bool,
    mem_full: bool,
) -> Outcome {
    let own = Outcome::Exited(code as i32);
    match reason {
        KILL_OUTPUT => Outcome::OutputLimit,
        KILL_WALL => Outcome::WallTimeLimit,
        KILL_CPU => Outcome::CpuTimeLimit,
        KILL_USER => Outcome::Signaled(SIGKILL),
        _ if seen.job_time || cpu_spent => Outcome::CpuTimeLimit,
        // A refused commit makes the program fail; it may also handle it and exit 0.
        _ if (seen.memory_limit || mem_full) && code != 0 => Outcome::MemoryLimit,
        _ => own,
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pid: u32,
    process: OwnedHandle,
    job: Job,
    reason: AtomicU8,
    finished: Mutex<Option<std::result::Result<Finished, String>>>,
    done: Condvar,
    ended: AtomicBool,
}

// SAFETY: the process handle is a kernel handle usable from any thread.
unsafe impl Send for Shared {}
// SAFETY: as above; the calls made on it are thread-safe.
unsafe impl Sync for Shared {}

impl Shared {
    fn kill(&self, reason: u8) {
        let _ = self
            .reason
            .compare_exchange(KILL_NONE, reason, Ordering::SeqCst, Ordering::SeqCst);
        self.job.terminate(TERMINATED);
    }

    fn is_finished(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }
}

/// What the waiter is given.
pub(crate) struct Watch {
    pub wall_limit: Option<Duration>,
    pub cpu_time_limit: Option<Duration>,
    pub memory_limit: Option<u64>,
}

/// What a run holds besides its processes, released when it ends.
#[derive(Default)]
pub(crate) struct Extras {
    pub degraded: Vec<String>,
    pub enforcement: Vec<Enforcement>,
    /// The access entries and labels of the run, removed when the run is dropped.
    pub grants: Option<super::acl::Grants>,
    /// The run's AppContainer profile, deleted when the run is dropped (after the grants).
    #[allow(dead_code)] // held for its Drop
    pub container: Option<super::appcontainer::AppContainer>,
    /// The run's private directory, removed when the run is dropped (after the grants).
    pub tmpdir: Option<TempDir>,
    /// The thread writing stdin bytes, if any (it ends when the program closes its end).
    pub stdin_writer: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extras")
            .field("degraded", &self.degraded)
            .field("tmpdir", &self.tmpdir)
            .finish_non_exhaustive()
    }
}

/// A run's private directory, removed with what the program left in it when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
pub(crate) struct Process {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<Seen>>,
    extras: Extras,
    outcome: Option<(Outcome, Finished)>,
    /// The job's messages, once the waiter ended (tests read them).
    seen: Option<Seen>,
}

fn filetime(t: FILETIME) -> Duration {
    let ticks = (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    Duration::from_nanos(ticks.saturating_mul(100))
}

/// User plus kernel time of one process.
fn process_cpu(h: &OwnedHandle) -> Duration {
    let z = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut c, mut e, mut k, mut u) = (z, z, z, z);
    // SAFETY: a live process handle; four FILETIMEs to fill.
    let ok = unsafe { GetProcessTimes(h.as_raw_handle(), &mut c, &mut e, &mut k, &mut u) };
    if ok == 0 {
        return Duration::ZERO;
    }
    filetime(k) + filetime(u)
}

#[allow(clippy::too_many_arguments)] // one call site, each argument a different part of the run
pub(crate) fn start(
    process: OwnedHandle,
    pid: u32,
    job: Job,
    watch: Watch,
    out: OwnedHandle,
    err: OwnedHandle,
    output_limit: u64,
    started: Instant,
    extras: Extras,
) -> Result<(Process, OutputPipe, OutputPipe)> {
    let shared = Arc::new(Shared {
        pid,
        process,
        job,
        reason: AtomicU8::new(KILL_NONE),
        finished: Mutex::new(None),
        done: Condvar::new(),
        ended: AtomicBool::new(false),
    });
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("nanobox-waiter-{pid}"))
            .spawn(move || run_waiter(&shared, watch, started))
    };
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            // Unwatched, the run could not be bounded: end it now.
            shared.kill(KILL_USER);
            return Err(Error::io("starting the run's waiter thread", e));
        }
    };
    let pipe = |h: OwnedHandle| OutputPipe {
        file: Some(std::fs::File::from(h)),
        limit: output_limit,
        seen: 0,
        truncated: false,
        shared: shared.clone(),
    };
    let (o, e) = (pipe(out), pipe(err));
    Ok((
        Process {
            shared,
            thread: Some(thread),
            extras,
            outcome: None,
            seen: None,
        },
        o,
        e,
    ))
}

fn run_waiter(shared: &Shared, watch: Watch, started: Instant) -> Seen {
    let mut seen = Seen::default();
    let deadline = watch.wall_limit.and_then(|l| started.checked_add(l));
    let h = shared.process.as_raw_handle();
    loop {
        while let Some(m) = shared.job.message(Duration::ZERO) {
            seen.add(m.kind);
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            shared.kill(KILL_WALL);
        }
        if let Some(limit) = watch.cpu_time_limit {
            let spent = shared
                .job
                .accounting()
                .cpu_time
                .max(process_cpu(&shared.process));
            if spent >= limit {
                shared.kill(KILL_CPU);
            }
        }
        let slice = deadline
            .map(|d| d.saturating_duration_since(now).min(SLICE))
            .unwrap_or(SLICE);
        // SAFETY: a live process handle, waited on for at most `slice`.
        let w = unsafe { WaitForSingleObject(h, slice.as_millis().max(1) as u32) };
        if w == WAIT_OBJECT_0 {
            break;
        }
    }
    let wall = started.elapsed();
    let mut code = 0u32;
    // SAFETY: a live, ended process handle; the code lands in `code`.
    let got = unsafe { GetExitCodeProcess(h, &mut code) } != 0;
    // The program ended: so does the rest of its tree.
    shared.job.terminate(TERMINATED);
    // Wait (bounded) until the job holds no process, reading the last messages.
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        while let Some(m) = shared.job.message(Duration::from_millis(10)) {
            seen.add(m.kind);
        }
        if shared.job.accounting().active_processes == 0 || Instant::now() >= until {
            break;
        }
    }
    let acct = shared.job.accounting();
    let cpu_time = acct.cpu_time.max(process_cpu(&shared.process));
    let result = if got {
        let reason = shared.reason.load(Ordering::SeqCst);
        let spent = watch.cpu_time_limit.is_some_and(|l| cpu_time >= l);
        let full = watch.memory_limit.is_some_and(|m| acct.peak_memory >= m);
        Ok(Finished {
            outcome: outcome(code, reason, &seen, spent, full),
            wall,
            cpu_time,
            peak_memory: acct.peak_memory,
        })
    } else {
        Err(format!(
            "reading the program's exit code: {}",
            io::Error::last_os_error()
        ))
    };
    *shared.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    shared.ended.store(true, Ordering::SeqCst);
    shared.done.notify_all();
    seen
}

impl Process {
    pub fn id(&self) -> u32 {
        self.shared.pid
    }

    fn take_finished(&mut self) -> Result<Outcome> {
        if let Some((o, _)) = self.outcome {
            return Ok(o);
        }
        let f = self
            .shared
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .expect("finished");
        if let Some(t) = self.thread.take() {
            self.seen = t.join().ok();
        }
        if let Some(t) = self.extras.stdin_writer.take() {
            let _ = t.join();
        }
        let f = f.map_err(|e| Error::io("running the program", io::Error::other(e)))?;
        self.outcome = Some((f.outcome, f));
        Ok(f.outcome)
    }

    /// Block until the program ended and every process of its job is gone.
    pub fn wait(&mut self) -> Result<Outcome> {
        if self.outcome.is_none() {
            let mut g = self
                .shared
                .finished
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            while g.is_none() {
                g = self.shared.done.wait(g).unwrap_or_else(|p| p.into_inner());
            }
        }
        self.take_finished()
    }

    pub fn try_wait(&mut self) -> Result<Option<Outcome>> {
        if self.outcome.is_none() && !self.shared.is_finished() {
            return Ok(None);
        }
        self.take_finished().map(Some)
    }

    pub fn kill(&mut self) -> Result<()> {
        if !self.shared.is_finished() {
            self.shared.kill(KILL_USER);
        }
        Ok(())
    }

    /// Windows has no signals. SIGKILL (9) and SIGTERM (15) end the program's process itself
    /// (TerminateProcess; the outcome is `Signaled` with that number); every other number is
    /// refused.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        if signal != 9 && signal != 15 {
            return Err(Error::InvalidOption {
                option: "signal",
                reason: format!(
                    "Windows has no signals; only 9 (SIGKILL) and 15 (SIGTERM), which end the \
                     program, are accepted, not {signal}"
                ),
            });
        }
        if self.shared.is_finished() {
            return Ok(());
        }
        // SAFETY: a live process handle (it stays valid, and names this process, while open).
        unsafe { TerminateProcess(self.shared.process.as_raw_handle(), 128 + signal as u32) };
        Ok(())
    }

    /// Windows has no process groups: 9 and 15 end the whole job, as `kill` does.
    pub fn signal_group(&mut self, signal: i32) -> Result<()> {
        self.signal(signal)?;
        self.kill()
    }

    /// Windows cannot ask a program without a console to end: `stop` kills at once.
    pub fn stop(&mut self, _grace: Duration) -> Result<Outcome> {
        if self.outcome.is_some() || self.shared.is_finished() {
            return self.take_finished();
        }
        self.kill()?;
        self.wait()
    }

    /// The job's messages the waiter counted (after the run ended).
    #[cfg(test)]
    pub(crate) fn seen(&self) -> Option<Seen> {
        self.seen
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.outcome.is_none() {
            if !self.shared.is_finished() {
                self.shared.kill(KILL_USER);
            }
            let _ = self.wait();
        }
        // The grants go before the directory they label.
        if let Some(g) = self.extras.grants.take() {
            let _ = g.release();
        }
    }
}

/// One of the program's output streams, cut at the output limit.
#[derive(Debug)]
pub(crate) struct OutputPipe {
    file: Option<std::fs::File>,
    limit: u64,
    seen: u64,
    truncated: bool,
    shared: Arc<Shared>,
}

impl OutputPipe {
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(f) = self.file.as_mut() else {
            return Ok(0);
        };
        let n = match f.read(buf) {
            Ok(n) => n,
            // The write ends are all closed.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            self.file = None;
            return Ok(0);
        }
        let room = self.limit.saturating_sub(self.seen);
        self.seen = self.seen.saturating_add(n as u64);
        if n as u64 > room {
            self.truncated = true;
            self.file = None;
            self.shared.kill(KILL_OUTPUT);
            return Ok(room as usize);
        }
        Ok(n)
    }
}

/// A thread reading one stream, and what it gives back: the stream and its bytes.
type Reader = std::thread::JoinHandle<(Option<OutputPipe>, Vec<u8>)>;

/// Read one stream to its end (or its cap) on a thread of its own.
fn reader(pipe: Option<OutputPipe>) -> io::Result<Option<Reader>> {
    let Some(mut pipe) = pipe else {
        return Ok(None);
    };
    std::thread::Builder::new()
        .name("nanobox-output".into())
        .spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            (Some(pipe), buf)
        })
        .map(Some)
}

/// Wait for a reader; one still blocked [`READER_GRACE`] after the run ended (a handle the
/// program passed out of the job keeps its pipe open) has its read cancelled.
fn join_reader(t: Option<Reader>) -> (Option<OutputPipe>, Vec<u8>) {
    let Some(t) = t else {
        return (None, Vec::new());
    };
    let until = Instant::now() + READER_GRACE;
    while !t.is_finished() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
    if !t.is_finished() {
        // SAFETY: the reader thread's handle, alive while `t` is; cancelling its synchronous
        // read makes it return an error, which ends its loop.
        unsafe {
            windows_sys::Win32::System::IO::CancelSynchronousIo(t.as_raw_handle());
        }
    }
    t.join().unwrap_or((None, Vec::new()))
}

/// Collect the rest of the output and wait: the body of `run`.
pub(crate) fn collect(
    p: &mut Process,
    out: Option<OutputPipe>,
    err: Option<OutputPipe>,
) -> Result<RunResult> {
    let ctx = |e| Error::io("starting the output readers", e);
    let to = reader(out).map_err(ctx)?;
    let te = reader(err).map_err(ctx)?;
    let outcome = p.wait()?;
    let (o, ob) = join_reader(to);
    let (e, eb) = join_reader(te);
    let f = p.outcome.map(|(_, f)| f).expect("waited");
    let mut r = RunResult::new(
        ob,
        eb,
        o.is_some_and(|s| s.truncated),
        e.is_some_and(|s| s.truncated),
        outcome,
        f.wall,
    );
    r.degraded = p.extras.degraded.clone();
    r.limits = p.extras.enforcement.clone();
    r.cpu_time = f.cpu_time;
    r.peak_memory = f.peak_memory;
    r.accounting = "job object";
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_the_caller_decide_the_outcome_before_the_exit_code() {
        let none = Seen::default();
        assert_eq!(
            outcome(3, KILL_NONE, &none, false, false),
            Outcome::Exited(3)
        );
        assert_eq!(
            outcome(1, KILL_WALL, &none, false, false),
            Outcome::WallTimeLimit
        );
        assert_eq!(
            outcome(1, KILL_OUTPUT, &none, false, false),
            Outcome::OutputLimit
        );
        assert_eq!(
            outcome(1, KILL_USER, &none, false, false),
            Outcome::Signaled(9)
        );
        assert_eq!(
            outcome(1, KILL_NONE, &none, true, false),
            Outcome::CpuTimeLimit
        );
        let mut mem = Seen::default();
        mem.add(JOB_OBJECT_MSG_JOB_MEMORY_LIMIT);
        assert_eq!(
            outcome(1, KILL_NONE, &mem, false, false),
            Outcome::MemoryLimit
        );
        // A program that handled the refused allocation and succeeded keeps its success.
        assert_eq!(
            outcome(0, KILL_NONE, &mem, false, false),
            Outcome::Exited(0)
        );
        assert_eq!(
            outcome(5, KILL_NONE, &none, false, true),
            Outcome::MemoryLimit
        );
        let mut t = Seen::default();
        t.add(JOB_OBJECT_MSG_END_OF_JOB_TIME);
        assert_eq!(
            outcome(1, KILL_NONE, &t, false, false),
            Outcome::CpuTimeLimit
        );
    }
}
