//! A running program seen from the caller: its watchdog thread, waiting, killing, and reading its
//! output under a cap.
//!
//! The program (first `sandbox-exec`, which execs it in the same process) is the caller's child
//! and leads its own process group. One thread per run, the watchdog, owns its reaping: it sleeps
//! on a kqueue that wakes when the program exits, at most [`watchdog::INTERVAL`] at a time, and on
//! each wake-up reaps the program if it ended, enforces the wall-time limit, and samples the tree
//! ([`crate::watchdog::Tree`]). When the program has ended it kills what is left of the tree, then
//! publishes the result. A kill or a signal by pid to the program is made under the lock the
//! watchdog reaps under, so it can never reach a process that reused the pid.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::sys;
use crate::error::{Error, Result};
use crate::result::{Enforcement, Outcome, RunResult};
use crate::watchdog::{self, Reason, Stop, Tree, Verdict};

const KILL_NONE: u8 = 0;
const KILL_OUTPUT: u8 = 1;
const KILL_USER: u8 = 2;
const KILL_WALL: u8 = 3;
const KILL_MEMORY: u8 = 4;
const KILL_CPU: u8 = 5;
const KILL_PROCESSES: u8 = 6;

fn stop_of(reason: u8) -> Stop {
    match reason {
        KILL_OUTPUT => Stop::Output,
        KILL_USER => Stop::User,
        KILL_WALL => Stop::Wall,
        KILL_MEMORY => Stop::Limit(Reason::Memory),
        KILL_CPU => Stop::Limit(Reason::CpuTime),
        KILL_PROCESSES => Stop::Limit(Reason::Processes),
        _ => Stop::None,
    }
}

/// How long the end of a run waits for the rest of the tree to be gone after the program ended
/// and everything left was sent SIGKILL.
const REMNANT_WAIT: Duration = Duration::from_secs(2);

/// A finished run, as the watchdog leaves it.
#[derive(Debug, Clone, Copy)]
struct Finished {
    outcome: Outcome,
    wall: Duration,
    cpu_time: Duration,
    peak_memory: u64,
}

/// What the watchdog thread, the output readers and the [`Process`] share.
#[derive(Debug)]
pub(crate) struct Shared {
    pid: u32,
    reason: AtomicU8,
    output_limit_at: Mutex<Option<Instant>>,
    /// True once the watchdog reaped the program; held while signalling it by pid.
    reaped: Mutex<bool>,
    /// The tree's members at the last sample, (pid, start time), for a kill from another thread.
    members: Mutex<Vec<(u32, u64)>>,
    finished: Mutex<Option<std::result::Result<Finished, String>>>,
    done: Condvar,
    /// Its write end is dropped when the run has finished: the output readers' poll wakes.
    done_w: Mutex<Option<OwnedFd>>,
}

impl Shared {
    /// End the run: SIGKILL to the program's group, the program and every member, for `reason`
    /// (the first reason is kept).
    fn kill(&self, reason: u8) {
        let _ = self
            .reason
            .compare_exchange(KILL_NONE, reason, Ordering::SeqCst, Ordering::SeqCst);
        if reason == KILL_OUTPUT {
            let mut at = self
                .output_limit_at
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            at.get_or_insert_with(Instant::now);
        }
        self.kill_tree();
    }

    fn kill_tree(&self) {
        {
            let reaped = self.reaped.lock().unwrap_or_else(|p| p.into_inner());
            if !*reaped {
                // The program is not reaped: its pid, and the group number it leads, are its own.
                sys::kill_group(self.pid, libc::SIGKILL);
                let _ = sys::kill_child(self.pid, libc::SIGKILL);
            }
        }
        let members = self
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for (pid, start) in members {
            if pid != self.pid {
                sys::kill_member(pid, start, libc::SIGKILL);
            }
        }
    }

    fn is_finished(&self) -> bool {
        self.finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

/// What the watchdog thread is given.
pub(crate) struct Watch {
    pub limits: watchdog::Limits,
    pub wall_limit: Option<Duration>,
    pub cpu_time_limit: Option<Duration>,
}

/// What a run carries besides its processes.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    pub degraded: Vec<String>,
    pub enforcement: Vec<Enforcement>,
    /// The filtering proxy, stopped when the run ends.
    pub proxy: Option<crate::proxy::ProxyHandle>,
    /// The run's private temporary directory, removed when the run is dropped.
    #[allow(dead_code)] // held for its Drop
    pub tmpdir: Option<TempDir>,
    /// With `report_denials`: the run's tag and its start, to read its denials by.
    pub denials: Option<(String, std::time::SystemTime)>,
}

/// A run's private directory: TMPDIR and the default working directory. Removed (with what the
/// program left in it) when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        // remove_dir_all does not follow symlinks the program may have planted.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running program.
#[derive(Debug)]
pub(crate) struct Process {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    extras: Extras,
    network: crate::proxy::NetworkLog,
    outcome: Option<(Outcome, Finished)>,
}

/// Start the watchdog of the program `pid` (the caller's child, leader of its own group, whose
/// start time is `start`), and the output pipes.
pub(crate) fn start(
    pid: u32,
    start: u64,
    watch: Watch,
    out_r: OwnedFd,
    err_r: OwnedFd,
    output_limit: u64,
    extras: Extras,
) -> Result<(Process, OutputPipe, OutputPipe)> {
    let (done_r, done_w) = pipe()?;
    let shared = Arc::new(Shared {
        pid,
        reason: AtomicU8::new(KILL_NONE),
        output_limit_at: Mutex::new(None),
        reaped: Mutex::new(false),
        members: Mutex::new(vec![(pid, start)]),
        finished: Mutex::new(None),
        done: Condvar::new(),
        done_w: Mutex::new(Some(done_w)),
    });
    let started = Instant::now();
    let thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("nanobox-watchdog-{pid}"))
            .spawn(move || run_watchdog(&shared, start, watch, started))
    };
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            // Without its watchdog the run cannot be bounded: end it now.
            shared.kill_tree();
            let _ = reap_blocking(pid);
            return Err(Error::io("starting the run's watchdog thread", e));
        }
    };
    let done_r = Arc::new(done_r);
    let pipe = |fd| OutputPipe {
        fd: Some(fd),
        limit: output_limit,
        seen: 0,
        truncated: false,
        shared: shared.clone(),
        done_r: done_r.clone(),
    };
    let (out, err) = (pipe(out_r), pipe(err_r));
    Ok((
        Process {
            shared,
            thread: Some(thread),
            extras,
            network: Default::default(),
            outcome: None,
        },
        out,
        err,
    ))
}

/// Reap `pid`, waiting for it (used only when no watchdog runs).
fn reap_blocking(pid: u32) -> io::Result<()> {
    loop {
        match sys::try_reap(pid)? {
            Some(_) => return Ok(()),
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// The members' details now: the members themselves, their children, and the program's group,
/// until no new member appears (a grandchild is found through its parent once that joined).
fn sample(tree: &mut Tree, root: u32) -> Vec<watchdog::ProcInfo> {
    let mut seen: std::collections::HashMap<u32, watchdog::ProcInfo> = Default::default();
    let mut asked: std::collections::HashSet<u32> = Default::default();
    let mut candidates: Vec<u32> = tree.members().into_iter().map(|(p, _)| p).collect();
    candidates.extend(sys::group_pids(root));
    for _ in 0..16 {
        for pid in std::mem::take(&mut candidates) {
            if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(pid) {
                if let Some(info) = sys::proc_info(pid) {
                    e.insert(info);
                }
            }
        }
        let infos: Vec<watchdog::ProcInfo> = seen.values().copied().collect();
        tree.update(&infos);
        for (pid, _) in tree.members() {
            if asked.insert(pid) {
                candidates.extend(sys::child_pids(pid));
            }
        }
        candidates.retain(|p| !seen.contains_key(p));
        if candidates.is_empty() {
            return infos;
        }
    }
    seen.values().copied().collect()
}

/// Sample every member's usage into the tree.
fn record_usage(tree: &mut Tree) {
    for (pid, start) in tree.members() {
        if let Some(u) = sys::usage(pid) {
            tree.record(pid, start, u);
        }
    }
}

fn publish_members(shared: &Shared, tree: &Tree) {
    *shared.members.lock().unwrap_or_else(|p| p.into_inner()) = tree.members();
}

fn run_watchdog(shared: &Shared, root_start: u64, watch: Watch, started: Instant) {
    let pid = shared.pid;
    let mut tree = Tree::new(pid, root_start, watch.limits);
    let queue = sys::ExitQueue::new(pid);
    let deadline = watch.wall_limit.and_then(|l| started.checked_add(l));
    let reaped = loop {
        let now = Instant::now();
        let timeout = deadline
            .map(|d| d.saturating_duration_since(now).min(watchdog::INTERVAL))
            .unwrap_or(watchdog::INTERVAL);
        // Sample first: a program that ends at once still leaves one sample.
        sample(&mut tree, pid);
        record_usage(&mut tree);
        publish_members(shared, &tree);
        match tree.decide() {
            Verdict::Continue => {}
            Verdict::Kill(r) => shared.kill(match r {
                Reason::Memory => KILL_MEMORY,
                Reason::CpuTime => KILL_CPU,
                Reason::Processes => KILL_PROCESSES,
            }),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            shared.kill(KILL_WALL);
        }
        match reap(shared) {
            Ok(Some(r)) => break Ok(r),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        queue.wait(timeout);
        match reap(shared) {
            Ok(Some(r)) => break Ok(r),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
    };
    let wall = started.elapsed();
    // Nothing outlives the run: kill what is left of the tree, until it is gone.
    let until = Instant::now() + REMNANT_WAIT;
    loop {
        sample(&mut tree, pid);
        record_usage(&mut tree);
        publish_members(shared, &tree);
        let members = tree.members();
        // Processes left in the program's group. While no process has the program's (reaped) pid,
        // the group's number cannot have been given to another group: they are the run's, also
        // those the samples never saw (forked just before their parent ended).
        let group = sys::group_pids(pid);
        let group_is_ours = !group.is_empty() && !group.contains(&pid);
        if (members.is_empty() && !group_is_ours) || Instant::now() >= until {
            break;
        }
        if group_is_ours {
            sys::kill_group(pid, libc::SIGKILL);
        }
        for (p, s) in &members {
            sys::kill_member(*p, *s, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let result = reaped
        .map_err(|e| format!("waiting for the program: {e}"))
        .map(|(status, ru)| {
            let own = if libc::WIFSIGNALED(status) {
                Outcome::Signaled(libc::WTERMSIG(status))
            } else {
                Outcome::Exited(libc::WEXITSTATUS(status))
            };
            let tv = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec.max(0) as u64)
                    + Duration::from_micros(t.tv_usec.max(0) as u64)
            };
            let cpu_time = tree.cpu_time().max(tv(ru.ru_utime) + tv(ru.ru_stime));
            // ru_maxrss is in bytes on macOS.
            let peak_memory = tree.peak_memory().max(ru.ru_maxrss.max(0) as u64);
            let spent = watch.cpu_time_limit.is_some_and(|l| cpu_time >= l);
            let stop = stop_of(shared.reason.load(Ordering::SeqCst));
            Finished {
                outcome: watchdog::outcome(stop, own, spent),
                wall,
                cpu_time,
                peak_memory,
            }
        });
    *shared.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
    shared.done.notify_all();
    // The output readers' poll sees the end of the run.
    shared
        .done_w
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
}

/// Reap the program if it ended, under the lock that kills by pid take.
fn reap(shared: &Shared) -> io::Result<Option<(i32, libc::rusage)>> {
    let mut reaped = shared.reaped.lock().unwrap_or_else(|p| p.into_inner());
    if *reaped {
        return Err(io::Error::other("reaped twice"));
    }
    let r = sys::try_reap(shared.pid);
    if matches!(r, Ok(Some(_)) | Err(_)) {
        *reaped = true;
    }
    r
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
            let _ = t.join();
        }
        if let Some(p) = self.extras.proxy.take() {
            self.network = p.stop();
        }
        let f = f.map_err(|e| Error::io("running the program", io::Error::other(e)))?;
        self.outcome = Some((f.outcome, f));
        Ok(f.outcome)
    }

    /// Block until the program ended and every process of its tree is gone.
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

    /// `signal` to the program alone (not its group), unless it has ended.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        check_signal(signal)?;
        let reaped = self.shared.reaped.lock().unwrap_or_else(|p| p.into_inner());
        if *reaped {
            return Ok(());
        }
        match sys::kill_child(self.shared.pid, signal) {
            Ok(()) => Ok(()),
            // A zombie not reaped yet: it has ended.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(Error::io("signalling the program", e)),
        }
    }

    /// `signal` to the program's process group (it leads one of its own).
    pub fn signal_group(&mut self, signal: i32) -> Result<()> {
        check_signal(signal)?;
        let reaped = self.shared.reaped.lock().unwrap_or_else(|p| p.into_inner());
        if !*reaped {
            // A group whose leader is not reaped keeps its id.
            sys::kill_group(self.shared.pid, signal);
        }
        Ok(())
    }

    /// SIGTERM to the program, up to `grace` for the run to end, then kill it all.
    pub fn stop(&mut self, grace: Duration) -> Result<Outcome> {
        if self.outcome.is_some() || self.shared.is_finished() {
            return self.take_finished();
        }
        if !grace.is_zero() && self.signal(libc::SIGTERM).is_ok() {
            let deadline = Instant::now().checked_add(grace);
            let mut g = self
                .shared
                .finished
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            while g.is_none() {
                let left = match deadline {
                    Some(d) => d.saturating_duration_since(Instant::now()),
                    None => Duration::from_secs(3600),
                };
                if left.is_zero() {
                    break;
                }
                g = self
                    .shared
                    .done
                    .wait_timeout(g, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if g.is_some() {
                drop(g);
                return self.take_finished();
            }
        }
        self.kill()?;
        self.wait()
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
    }
}

/// Refuse what is not a signal number: 0 (which only probes) and numbers past the last one.
fn check_signal(signal: i32) -> Result<()> {
    // macOS has 31 signals (NSIG is 32) and no real-time ones.
    let max = 31;
    if (1..=max).contains(&signal) {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            option: "signal",
            reason: format!("{signal} is not a signal number (1 to {max})"),
        })
    }
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = std::io::pipe().map_err(|e| Error::io("creating a pipe", e))?;
    Ok((OwnedFd::from(r), OwnedFd::from(w)))
}

/// One of the program's output streams, cut at the output limit.
#[derive(Debug)]
pub(crate) struct OutputPipe {
    fd: Option<OwnedFd>,
    limit: u64,
    seen: u64,
    truncated: bool,
    shared: Arc<Shared>,
    done_r: Arc<OwnedFd>,
}

impl OutputPipe {
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    fn admit(&mut self, n: usize) -> usize {
        let room = self.limit.saturating_sub(self.seen);
        self.seen = self.seen.saturating_add(n as u64);
        if n as u64 > room {
            self.truncated = true;
            self.fd = None;
            self.shared.kill(KILL_OUTPUT);
            room as usize
        } else {
            n
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(fd) = &self.fd else { return Ok(0) };
        let n = loop {
            // SAFETY: read writes at most buf.len() bytes into buf.
            let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r >= 0 {
                break r as usize;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        if n == 0 {
            self.fd = None;
            return Ok(0);
        }
        Ok(self.admit(n))
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor this process owns.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Collect what is left of the output and wait: the body of `run`. Reads both pipes at once with
/// poll, keeps at most the limit of each, and stops once the run has finished (a pipe held open
/// by a process that escaped the tree cannot make it hang).
pub(crate) fn collect(
    p: &mut Process,
    out: Option<OutputPipe>,
    err: Option<OutputPipe>,
) -> Result<RunResult> {
    let done_r = out.as_ref().or(err.as_ref()).map(|s| s.done_r.clone());
    let mut streams: Vec<(Option<OutputPipe>, Vec<u8>)> =
        vec![(out, Vec::new()), (err, Vec::new())];
    for (s, _) in streams.iter_mut() {
        if let Some(fd) = s.as_ref().and_then(|s| s.fd.as_ref()) {
            set_nonblocking(fd).map_err(|e| Error::io("configuring the output pipes", e))?;
        }
    }
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let open: Vec<usize> = (0..2)
            .filter(|&i| streams[i].0.as_ref().is_some_and(|s| s.fd.is_some()))
            .collect();
        let dead = p.shared.is_finished();
        if open.is_empty() || dead || done_r.is_none() {
            for i in open {
                drain(&mut streams[i], &mut chunk)?;
            }
            break;
        }
        let done_fd = done_r.as_ref().expect("checked").as_fd();
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|&i| libc::pollfd {
                fd: streams[i]
                    .0
                    .as_ref()
                    .and_then(|s| s.fd.as_ref())
                    .expect("open")
                    .as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .chain(std::iter::once(libc::pollfd {
                fd: done_fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }))
            .collect();
        // SAFETY: poll reads and writes the pollfd array of the length given.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("polling the output pipes", e));
        }
        for (k, &i) in open.iter().enumerate() {
            if fds[k].revents != 0 {
                drain(&mut streams[i], &mut chunk)?;
            }
        }
    }
    let outcome = p.wait()?;
    let f = p.outcome.map(|(_, f)| f).expect("waited");
    let [(o, ob), (e, eb)]: [(Option<OutputPipe>, Vec<u8>); 2] =
        streams.try_into().expect("two streams");
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
    let log = std::mem::take(&mut p.network);
    r.network = log.events;
    r.network_omitted = log.omitted;
    r.cpu_time = f.cpu_time;
    r.peak_memory = f.peak_memory;
    r.accounting = "watchdog";
    if let Some((tag, start)) = &p.extras.denials {
        match super::denials::read(tag, *start) {
            Ok(d) => r.denials = d,
            Err(why) => r.denials_unread = Some(why),
        }
    }
    Ok(r)
}

/// Read everything available now from one stream (non-blocking), up to its limit.
fn drain(s: &mut (Option<OutputPipe>, Vec<u8>), chunk: &mut [u8]) -> Result<()> {
    let (Some(pipe), buf) = s else { return Ok(()) };
    loop {
        match pipe.read(chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(Error::io("reading the program's output", e)),
        }
        if pipe.fd.is_none() {
            return Ok(());
        }
    }
}
