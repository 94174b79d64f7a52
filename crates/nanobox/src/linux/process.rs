//! A running sandbox seen from the caller: waiting, killing, and reading its output under a cap.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

use super::child;
use super::userns::{kill_pidfd, wait_pidfd};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::result::{Enforcement, Outcome, RunResult};

/// Why the caller's side killed the sandbox (first reason wins).
const KILL_NONE: u8 = 0;
const KILL_OUTPUT: u8 = 1;
const KILL_USER: u8 = 2;
const KILL_WALL: u8 = 3;

/// The part of a run that the output readers share with the [`Process`].
#[derive(Debug)]
pub(crate) struct Shared {
    pidfd: OwnedFd,
    /// A degraded run's init is asked to end the run (SIGUSR1): killing it would orphan the
    /// program, which no pid namespace would take down with it.
    degraded: bool,
    reason: AtomicU8,
    output_limit_at: Mutex<Option<Instant>>,
}

impl Shared {
    pub(crate) fn new(pidfd: OwnedFd, degraded: bool) -> Shared {
        Shared {
            pidfd,
            degraded,
            reason: AtomicU8::new(KILL_NONE),
            output_limit_at: Mutex::new(None),
        }
    }
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
        self.end();
    }

    fn end(&self) {
        if self.degraded {
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::USR1);
        } else {
            kill_pidfd(&self.pidfd);
        }
    }
}

/// A running sandbox.
#[derive(Debug)]
pub(crate) struct Process {
    pid: u32,
    shared: Arc<Shared>,
    status_r: OwnedFd,
    /// The control socket: a byte sent is a signal the init relays to the program; closing it
    /// ends the sandbox (the init watches the other end).
    control: Option<OwnedFd>,
    wall_limit: Option<Duration>,
    started: Instant,
    backstop_fired: bool,
    finished: Option<(Outcome, Duration)>,
    extras: Extras,
    usage: Option<Usage>,
    network: crate::proxy::NetworkLog,
}

/// What a run carries besides its processes.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// What is weaker than full isolation, for the result.
    pub degraded: Vec<String>,
    /// The degraded mode's stand-in for /tmp, removed when the run is dropped.
    #[allow(dead_code)] // held for its Drop
    pub run_dir: Option<super::degraded::RunDir>,
    /// The run's cgroup: read for accounting once the init is reaped, then destroyed.
    pub cgroup: Option<super::cgroup::RunCgroup>,
    /// Which mechanism enforces each limit, for the result.
    pub enforcement: Vec<Enforcement>,
    pub cpu_time_limit: Option<Duration>,
    /// The run's filtering proxy, stopped when the run ends.
    pub proxy: Option<crate::proxy::ProxyHandle>,
    /// With a memory limit by RLIMIT_AS: the observer of its refusals, stopped when the run ends.
    pub memwatch: Option<super::memwatch::Watch>,
}

/// What a finished run used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Usage {
    pub cpu_time: Duration,
    pub peak_memory: u64,
    pub accounting: &'static str,
}

/// Everything known about how a run ended, for [`decide`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ending {
    /// The init's report: (kind, value, time since the program started).
    pub status: Option<(u32, i32, Duration)>,
    pub kill_reason: u8,
    /// When the output limit fired, since the start.
    pub output_at: Option<Duration>,
    pub wall_limit: Option<Duration>,
    /// The cgroup's OOM killer ended a process of the run.
    pub oom: bool,
    /// RLIMIT_AS (the degraded memory limit) refused a request of a process of the run.
    pub address_space_refused: bool,
    pub cpu_limit: Option<Duration>,
    pub cpu_used: Option<Duration>,
}

/// The outcome of a run: the limit that fired first, else the program's own end. Ties at the
/// same moment go memory, CPU time, wall time, output. `None` when the init ended without a
/// report and the caller did not end the run either.
pub(crate) fn decide(e: &Ending) -> Option<Outcome> {
    let mut c: Vec<(Duration, u8, Outcome)> = Vec::new();
    if let Some(t) = e.output_at {
        c.push((t, 3, Outcome::OutputLimit));
    }
    match e.status {
        Some((child::STATUS_TIMEOUT, _, el)) => {
            c.push((e.wall_limit.unwrap_or(el), 2, Outcome::WallTimeLimit))
        }
        Some((child::STATUS_CPU, _, el)) => c.push((el, 1, Outcome::CpuTimeLimit)),
        Some((kind, v, el)) => {
            let own = if kind == child::STATUS_EXITED {
                Outcome::Exited(v)
            } else {
                Outcome::Signaled(v)
            };
            // The program ended after the deadline, before the init acted on it.
            if let Some(w) = e.wall_limit.filter(|w| el > *w) {
                c.push((w, 2, Outcome::WallTimeLimit));
            }
            if (e.oom || e.address_space_refused) && own != Outcome::Exited(0) {
                c.push((el, 0, Outcome::MemoryLimit));
            }
            let spent = matches!((e.cpu_limit, e.cpu_used), (Some(l), Some(u)) if u >= l);
            if own == Outcome::Signaled(libc::SIGXCPU)
                || (own == Outcome::Signaled(libc::SIGKILL) && spent)
            {
                c.push((el, 1, Outcome::CpuTimeLimit));
            }
            // Once the output limit fired, the program's own end is a consequence of it.
            let at = if e.output_at.is_some() {
                Duration::MAX
            } else {
                el
            };
            c.push((at, 4, own));
        }
        // The OOM killer may end the init itself (tmpfs pages outlive the processes it kills).
        None if e.oom && e.kill_reason != KILL_USER => return Some(Outcome::MemoryLimit),
        None => {
            return match e.kill_reason {
                KILL_OUTPUT => Some(Outcome::OutputLimit),
                KILL_USER => Some(Outcome::Signaled(libc::SIGKILL)),
                KILL_WALL => Some(Outcome::WallTimeLimit),
                _ => None,
            }
        }
    }
    c.sort_by_key(|(t, r, _)| (*t, *r));
    c.first().map(|(_, _, o)| *o)
}

/// The caller's ends of a run's pipes.
pub(crate) struct Pipes {
    pub status_r: OwnedFd,
    pub control: OwnedFd,
    pub out_r: OwnedFd,
    pub err_r: OwnedFd,
}

pub(crate) fn start(
    pid: i32,
    shared: Arc<Shared>,
    pipes: Pipes,
    policy: &Policy,
    extras: Extras,
) -> (Process, OutputPipe, OutputPipe) {
    let Pipes {
        status_r,
        control,
        out_r,
        err_r,
    } = pipes;
    let pipe = |fd| OutputPipe {
        fd: Some(fd),
        limit: policy.output_limit,
        seen: 0,
        truncated: false,
        shared: shared.clone(),
    };
    let out = pipe(out_r);
    let err = pipe(err_r);
    (
        Process {
            pid: pid as u32,
            shared,
            status_r,
            control: Some(control),
            wall_limit: policy.wall_time_limit,
            started: Instant::now(),
            backstop_fired: false,
            finished: None,
            extras,
            usage: None,
            network: Default::default(),
        },
        out,
        err,
    )
}

/// Grace the caller gives the sandbox's own wall-clock enforcement before killing it itself.
const WALL_GRACE: Duration = Duration::from_millis(500);

impl Process {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// When the caller kills the sandbox itself if its init has not ended it by then; `None` once
    /// that kill was sent (from then on only the end of the sandbox is awaited).
    fn backstop(&self) -> Option<Instant> {
        if self.backstop_fired {
            return None;
        }
        self.wall_limit.map(|l| self.started + l + WALL_GRACE)
    }

    fn fire_backstop(&mut self) {
        self.backstop_fired = true;
        self.shared.kill(KILL_WALL);
    }

    /// Block until the sandbox's init is gone (the kernel has then killed every process in it).
    pub fn wait(&mut self) -> Result<Outcome> {
        if let Some((o, _)) = self.finished {
            return Ok(o);
        }
        loop {
            let timeout = self
                .backstop()
                .map(|b| b.saturating_duration_since(Instant::now()));
            if wait_readable(&[self.shared.pidfd.as_fd()], timeout)? {
                break;
            }
            self.fire_backstop();
        }
        self.reap()
    }

    pub fn try_wait(&mut self) -> Result<Option<Outcome>> {
        if let Some((o, _)) = self.finished {
            return Ok(Some(o));
        }
        if wait_readable(&[self.shared.pidfd.as_fd()], Some(Duration::ZERO))? {
            return self.reap().map(Some);
        }
        if self.backstop().is_some_and(|b| Instant::now() >= b) {
            self.fire_backstop();
        }
        Ok(None)
    }

    pub fn kill(&mut self) -> Result<()> {
        if self.finished.is_none() {
            self.shared.kill(KILL_USER);
        }
        Ok(())
    }

    /// Ask the init to send `signal` to the program. The init is the program's parent and does
    /// not reap it before the run ends, so the signal cannot reach a process that reused its pid.
    /// A run that has ended (its init gone) makes this a no-op.
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        self.ask(signal, 0)
    }

    /// `signal` to the program's process group: the program and what it started in its group.
    pub fn signal_group(&mut self, signal: i32) -> Result<()> {
        self.ask(signal, super::child::GROUP_SIGNAL)
    }

    fn ask(&mut self, signal: i32, group: u8) -> Result<()> {
        check_signal(signal)?;
        let Some(control) = self.control.as_ref().filter(|_| self.finished.is_none()) else {
            return Ok(());
        };
        let flags = rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL;
        loop {
            return match rustix::net::send(control, &[signal as u8 | group], flags) {
                Ok(_) => Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                // The init has ended, and with it the program.
                Err(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET) => Ok(()),
                Err(e) => Err(Error::io(
                    "asking the sandbox init to signal the program",
                    e.into(),
                )),
            };
        }
    }

    /// SIGTERM to the program, up to `grace` for the run to end, then kill it all.
    pub fn stop(&mut self, grace: Duration) -> Result<Outcome> {
        if let Some((o, _)) = self.finished {
            return Ok(o);
        }
        if !grace.is_zero() && self.signal(libc::SIGTERM).is_ok() {
            let deadline = Instant::now().checked_add(grace);
            loop {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    break;
                }
                let until = match (deadline, self.backstop()) {
                    (Some(d), Some(b)) => Some(d.min(b)),
                    (d, b) => d.or(b),
                };
                let timeout = until.map(|u| u.saturating_duration_since(now));
                if wait_readable(&[self.shared.pidfd.as_fd()], timeout)? {
                    return self.reap();
                }
                if self.backstop().is_some_and(|b| Instant::now() >= b) {
                    self.fire_backstop();
                }
            }
        }
        self.kill()?;
        self.wait()
    }

    fn wall_time(&self) -> Duration {
        self.finished
            .map(|(_, d)| d)
            .unwrap_or_else(|| self.started.elapsed())
    }

    fn reap(&mut self) -> Result<Outcome> {
        let (code, sig) = wait_pidfd(&self.shared.pidfd)
            .map_err(|e| Error::io("waiting for the sandbox init", e))?;
        let elapsed = self.started.elapsed();
        self.control = None;
        let mut msg = [0u8; child::STATUS_LEN];
        let got = read_full(&self.status_r, &mut msg);
        let status = (got == msg.len()).then(|| {
            let mut head = [0u8; child::MESSAGE_LEN];
            head.copy_from_slice(&msg[..child::MESSAGE_LEN]);
            let (kind, _, v, el) = child::decode(&head);
            (kind, v, Duration::from_nanos(el))
        });
        // Accounting: the cgroup for the whole sandbox, else what the init reaped.
        let mut oom = false;
        let usage = match self.extras.cgroup.take() {
            Some(mut cg) => {
                oom = cg.oom_killed();
                let u = Usage {
                    cpu_time: cg.cpu_usage().unwrap_or_default(),
                    peak_memory: cg.memory_peak().unwrap_or(0),
                    accounting: if cg.cpu_usage_is_v2() {
                        "cgroup v2"
                    } else {
                        "cgroup v1"
                    },
                };
                // Every process of the run is gone once its init is reaped.
                let _ = cg.destroy();
                u
            }
            None => {
                let (cpu, rss) = if status.is_some() {
                    child::decode_usage(&msg)
                } else {
                    (0, 0)
                };
                Usage {
                    cpu_time: Duration::from_nanos(cpu),
                    peak_memory: rss,
                    accounting: "rusage",
                }
            }
        };
        self.usage = Some(usage);
        if let Some(p) = self.extras.proxy.take() {
            self.network = p.stop();
        }
        // Every process of the run is gone: nothing more to observe.
        let seen = self.extras.memwatch.take().map(|w| w.finish());
        if let Some(s) = &seen {
            self.extras
                .degraded
                .extend(s.unobserved().into_iter().chain(s.note()));
        }
        let output_at = self
            .shared
            .output_limit_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|at| at.saturating_duration_since(self.started));
        let ending = Ending {
            status,
            kill_reason: self.shared.reason.load(Ordering::SeqCst),
            output_at,
            wall_limit: self.wall_limit,
            oom,
            address_space_refused: seen.is_some_and(|s| s.refusals > 0),
            cpu_limit: self.extras.cpu_time_limit,
            cpu_used: Some(usage.cpu_time),
        };
        let Some(outcome) = decide(&ending) else {
            return Err(Error::io(
                "the sandbox init ended without reporting the program's status",
                io::Error::other(format!("init exit code {code:?}, signal {sig:?}")),
            ));
        };
        let wall = status.map(|(_, _, el)| el).unwrap_or(elapsed);
        self.finished = Some((outcome, wall));
        Ok(outcome)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.finished.is_none() {
            // Closing the control socket ends the run; a degraded init then kills and reaps the
            // program's processes itself before it exits.
            self.control = None;
            if !self.shared.degraded {
                kill_pidfd(&self.shared.pidfd);
            }
            let _ = wait_pidfd(&self.shared.pidfd);
        }
    }
}

/// Refuse what is not a signal number: 0 (which only probes) and numbers past SIGRTMAX.
fn check_signal(signal: i32) -> Result<()> {
    let max = libc::SIGRTMAX();
    if (1..=max).contains(&signal) {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            option: "signal",
            reason: format!("{signal} is not a signal number (1 to {max})"),
        })
    }
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match rustix::io::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => break,
        }
    }
    got
}

/// Poll until one of `fds` is readable (true) or the timeout passes (false).
fn wait_readable(fds: &[std::os::fd::BorrowedFd<'_>], timeout: Option<Duration>) -> Result<bool> {
    let mut p: Vec<PollFd<'_>> = fds.iter().map(|f| PollFd::new(f, PollFlags::IN)).collect();
    let ts = timeout.map(|t| Timespec {
        tv_sec: t.as_secs() as i64,
        tv_nsec: t.subsec_nanos() as i64,
    });
    loop {
        match poll(&mut p, ts.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("polling the sandbox", e.into())),
        }
    }
}

/// One of the program's output streams, cut at the output limit.
#[derive(Debug)]
pub(crate) struct OutputPipe {
    fd: Option<OwnedFd>,
    limit: u64,
    seen: u64,
    truncated: bool,
    shared: Arc<Shared>,
}

impl OutputPipe {
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Account for `n` new bytes; returns how many of them are kept.
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
            match rustix::io::read(fd, &mut *buf) {
                Ok(n) => break n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        if n == 0 {
            self.fd = None;
            return Ok(0);
        }
        Ok(self.admit(n))
    }
}

/// Collect what is left of the output and wait: the body of `run`. Reads both pipes at once with
/// poll, keeps at most the limit of each, and stops as soon as the sandbox is gone (a copy of a
/// pipe's write end held elsewhere in the caller cannot make it hang).
pub(crate) fn collect(
    p: &mut Process,
    out: Option<OutputPipe>,
    err: Option<OutputPipe>,
) -> Result<RunResult> {
    let mut streams: Vec<(Option<OutputPipe>, Vec<u8>)> =
        vec![(out, Vec::new()), (err, Vec::new())];
    for (s, _) in streams.iter_mut() {
        if let Some(fd) = s.as_ref().and_then(|s| s.fd.as_ref()) {
            rustix::fs::fcntl_setfl(fd, rustix::fs::OFlags::NONBLOCK)
                .map_err(|e| Error::io("configuring the output pipes", e.into()))?;
        }
    }
    let mut chunk = vec![0u8; 64 * 1024];
    let mut dead = p.finished.is_some();
    loop {
        let open: Vec<usize> = (0..2)
            .filter(|&i| streams[i].0.as_ref().is_some_and(|s| s.fd.is_some()))
            .collect();
        if open.is_empty() || dead {
            // Drain what the dead sandbox left in the pipes, then stop.
            for i in open {
                drain(&mut streams[i], &mut chunk)?;
            }
            break;
        }
        let timeout = p
            .backstop()
            .map(|b| b.saturating_duration_since(Instant::now()));
        let ready = {
            let mut fds: Vec<PollFd<'_>> = open
                .iter()
                .map(|&i| {
                    PollFd::new(
                        streams[i]
                            .0
                            .as_ref()
                            .and_then(|s| s.fd.as_ref())
                            .expect("open"),
                        PollFlags::IN,
                    )
                })
                .collect();
            fds.push(PollFd::new(&p.shared.pidfd, PollFlags::IN));
            let ts = timeout.map(|t| Timespec {
                tv_sec: t.as_secs() as i64,
                tv_nsec: t.subsec_nanos() as i64,
            });
            match poll(&mut fds, ts.as_ref()) {
                Ok(0) => None,
                Ok(_) => Some(
                    fds.iter()
                        .map(|f| !f.revents().is_empty())
                        .collect::<Vec<_>>(),
                ),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::io("polling the output pipes", e.into())),
            }
        };
        let Some(ready) = ready else {
            p.fire_backstop();
            continue;
        };
        for (k, &i) in open.iter().enumerate() {
            if ready[k] {
                drain(&mut streams[i], &mut chunk)?;
            }
        }
        if ready[open.len()] {
            dead = true;
        }
    }
    let outcome = p.wait()?;
    let wall = p.wall_time();
    let [(o, ob), (e, eb)]: [(Option<OutputPipe>, Vec<u8>); 2] =
        streams.try_into().expect("two streams");
    let mut r = RunResult::new(
        ob,
        eb,
        o.is_some_and(|s| s.truncated),
        e.is_some_and(|s| s.truncated),
        outcome,
        wall,
    );
    r.degraded = p.extras.degraded.clone();
    r.limits = p.extras.enforcement.clone();
    let log = std::mem::take(&mut p.network);
    r.network = log.events;
    r.network_omitted = log.omitted;
    if let Some(u) = p.usage {
        r.cpu_time = u.cpu_time;
        r.peak_memory = u.peak_memory;
        r.accounting = u.accounting;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ended(kind: u32, value: i32, at: u64) -> Ending {
        Ending {
            status: Some((kind, value, ms(at))),
            ..Ending::default()
        }
    }

    #[test]
    fn the_program_s_own_end_when_no_limit_fired() {
        assert_eq!(
            decide(&ended(child::STATUS_EXITED, 3, 10)),
            Some(Outcome::Exited(3))
        );
        assert_eq!(
            decide(&ended(child::STATUS_SIGNALED, 9, 10)),
            Some(Outcome::Signaled(9))
        );
    }

    #[test]
    fn an_oom_kill_is_a_memory_limit_unless_the_program_succeeded() {
        let mut e = ended(child::STATUS_SIGNALED, libc::SIGKILL, 50);
        e.oom = true;
        assert_eq!(decide(&e), Some(Outcome::MemoryLimit));
        let mut e = ended(child::STATUS_EXITED, 1, 50);
        e.oom = true;
        assert_eq!(decide(&e), Some(Outcome::MemoryLimit));
        // A worker was OOM-killed but the program handled it.
        let mut e = ended(child::STATUS_EXITED, 0, 50);
        e.oom = true;
        assert_eq!(decide(&e), Some(Outcome::Exited(0)));
        // The init itself was OOM-killed (no report).
        let e = Ending {
            oom: true,
            ..Ending::default()
        };
        assert_eq!(decide(&e), Some(Outcome::MemoryLimit));
    }

    #[test]
    fn a_refused_address_space_request_is_a_memory_limit_unless_the_program_succeeded() {
        for (kind, v) in [
            (child::STATUS_EXITED, 1),
            (child::STATUS_SIGNALED, libc::SIGSEGV),
            (child::STATUS_SIGNALED, libc::SIGABRT),
        ] {
            let mut e = ended(kind, v, 50);
            assert_ne!(decide(&e), Some(Outcome::MemoryLimit));
            e.address_space_refused = true;
            assert_eq!(decide(&e), Some(Outcome::MemoryLimit), "{kind} {v}");
        }
        // The program handled the refusal.
        let mut e = ended(child::STATUS_EXITED, 0, 50);
        e.address_space_refused = true;
        assert_eq!(decide(&e), Some(Outcome::Exited(0)));
        // Refused, then ended by the wall-time limit: the limit that ended it.
        let mut e = ended(child::STATUS_TIMEOUT, 0, 1000);
        e.wall_limit = Some(ms(1000));
        e.address_space_refused = true;
        assert_eq!(decide(&e), Some(Outcome::WallTimeLimit));
    }

    #[test]
    fn the_wall_time_limit_wins_over_an_oom_kill_after_the_deadline() {
        // Killed by the OOM killer at 1.2 s with a 1 s wall-time limit: the wall time fired first.
        let mut e = ended(child::STATUS_SIGNALED, libc::SIGKILL, 1200);
        e.oom = true;
        e.wall_limit = Some(ms(1000));
        assert_eq!(decide(&e), Some(Outcome::WallTimeLimit));
        // Killed at 0.8 s: the memory limit fired first.
        e.status = Some((child::STATUS_SIGNALED, libc::SIGKILL, ms(800)));
        assert_eq!(decide(&e), Some(Outcome::MemoryLimit));
    }

    #[test]
    fn cpu_time_from_the_init_from_sigxcpu_and_from_a_spent_budget() {
        assert_eq!(
            decide(&ended(child::STATUS_CPU, 0, 500)),
            Some(Outcome::CpuTimeLimit)
        );
        assert_eq!(
            decide(&ended(child::STATUS_SIGNALED, libc::SIGXCPU, 1000)),
            Some(Outcome::CpuTimeLimit)
        );
        let mut e = ended(child::STATUS_SIGNALED, libc::SIGKILL, 2000);
        e.cpu_limit = Some(ms(1000));
        e.cpu_used = Some(ms(2000));
        assert_eq!(decide(&e), Some(Outcome::CpuTimeLimit));
        e.cpu_used = Some(ms(10));
        assert_eq!(decide(&e), Some(Outcome::Signaled(libc::SIGKILL)));
    }

    #[test]
    fn output_and_wall_time_go_by_which_fired_first() {
        let mut e = ended(child::STATUS_TIMEOUT, 0, 1000);
        e.wall_limit = Some(ms(1000));
        e.output_at = Some(ms(400));
        assert_eq!(decide(&e), Some(Outcome::OutputLimit));
        e.output_at = Some(ms(1100));
        assert_eq!(decide(&e), Some(Outcome::WallTimeLimit));
        // Once the output limit fired, the program's death is its consequence.
        let mut e = ended(child::STATUS_SIGNALED, libc::SIGPIPE, 30);
        e.output_at = Some(ms(40));
        assert_eq!(decide(&e), Some(Outcome::OutputLimit));
    }

    #[test]
    fn without_a_report_the_caller_s_reason_decides() {
        for (reason, want) in [
            (KILL_OUTPUT, Some(Outcome::OutputLimit)),
            (KILL_USER, Some(Outcome::Signaled(libc::SIGKILL))),
            (KILL_WALL, Some(Outcome::WallTimeLimit)),
            (KILL_NONE, None),
        ] {
            let e = Ending {
                kill_reason: reason,
                ..Ending::default()
            };
            assert_eq!(decide(&e), want);
        }
    }
}
