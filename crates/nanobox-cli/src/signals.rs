//! SIGINT and SIGTERM to the CLI while a run is in progress.
//!
//! From just before the sandbox is spawned, the two signals no longer end this process:
//! signal-hook's handlers write one byte to a socket per signal (all they do; async-signal-safe),
//! and the loop that waits for the run polls those sockets together with a pidfd of the sandbox's
//! init. The first signal is forwarded to the program, once ([`nanobox::Child::signal`]); if the
//! program has not ended after the stop timeout (`--stop-timeout`, default 2 s), or a second
//! signal comes first, the sandbox is killed. The command returns only after every process of
//! the sandbox is gone. Its exit status is the program's own when it ended by itself in the grace
//! period (130 for a program that SIGINT killed, its own exit code when it handled the signal),
//! and 128 + the signal the command received when the sandbox had to be killed, as a shell
//! reports a command that signal ended.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::thread;
use std::time::Duration;

use nanobox::{Child, Outcome, RunResult, Sandbox};

/// How long the program has after the forwarded signal, unless `--stop-timeout` says otherwise.
pub(crate) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// `--stop-timeout`: a DURATION, or zero (`0`, `0s`, `0ms`, ...) for a kill at once.
pub(crate) fn stop_timeout(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let number = ["ms", "s", "m", "h"]
        .iter()
        .find_map(|u| t.strip_suffix(u))
        .unwrap_or(t);
    let zero = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.parse::<f64>() == Ok(0.0);
    if zero {
        return Ok(Duration::ZERO);
    }
    crate::parse::duration(s)
}

/// The signal handling of one run: started before the spawn, consulted for the exit status and
/// the report afterwards.
pub(crate) struct Stopper {
    grace: Duration,
    #[cfg(target_os = "linux")]
    watch: Option<linux::Watch>,
    /// The first SIGINT or SIGTERM the command received during the run.
    received: Option<i32>,
    /// The sandbox was killed because of it (the grace period passed, or a second signal).
    killed: bool,
}

impl Stopper {
    /// Take over SIGINT and SIGTERM for the run. Where that fails the signals keep their default
    /// action (ending the command ends the sandbox too), and a warning says so.
    pub(crate) fn start(grace: Option<Duration>) -> Stopper {
        Stopper {
            grace: grace.unwrap_or(DEFAULT_STOP_TIMEOUT),
            #[cfg(target_os = "linux")]
            watch: match linux::Watch::install() {
                Ok(w) => Some(w),
                Err(e) => {
                    eprintln!("nanobox: SIGINT and SIGTERM will not be forwarded: {e}");
                    None
                }
            },
            received: None,
            killed: false,
        }
    }

    /// Run `program` with its output captured (the `--json` run).
    pub(crate) fn capture(
        &mut self,
        sandbox: &Sandbox,
        program: &OsStr,
        args: &[OsString],
    ) -> nanobox::Result<RunResult> {
        let mut child = sandbox.spawn(program, args)?;
        // Read both streams while waiting (the library caps each at the output limit).
        let out = child.stdout.take().map(|r| thread::spawn(move || slurp(r)));
        let err = child.stderr.take().map(|r| thread::spawn(move || slurp(r)));
        // The streams end once the sandbox is gone; after an error in the wait, dropping the
        // child kills what is left of it.
        let result = match self.wait(&mut child) {
            Ok(_) => child.wait_with_output(),
            Err(e) => {
                drop(child);
                Err(e)
            }
        };
        let join = |t: Option<thread::JoinHandle<(Vec<u8>, bool)>>| {
            t.and_then(|t| t.join().ok()).unwrap_or_default()
        };
        let ((ob, ot), (eb, et)) = (join(out), join(err));
        let mut r = result?;
        r.stdout = String::from_utf8_lossy(&ob).into_owned();
        r.stderr = String::from_utf8_lossy(&eb).into_owned();
        r.stdout_bytes = ob;
        r.stderr_bytes = eb;
        r.stdout_truncated = ot;
        r.stderr_truncated = et;
        Ok(r)
    }

    /// Run `program` with its output passed through.
    pub(crate) fn stream(
        &mut self,
        sandbox: &Sandbox,
        program: &OsStr,
        args: &[OsString],
    ) -> nanobox::Result<Outcome> {
        crate::stdio::run_streaming(sandbox, program, args, |c| self.wait(c))
    }

    /// The command's exit status for `outcome` (what `exit_status` gives, unless the sandbox had
    /// to be killed because of a signal the command received).
    pub(crate) fn exit_status(&self, outcome: Outcome) -> u8 {
        match self.received {
            // Killed by us (SIGKILL, 9) and not by something else first.
            Some(sig) if self.killed && outcome == Outcome::Signaled(9) => {
                u8::try_from(128 + sig).unwrap_or(255)
            }
            _ => crate::exit_status(outcome),
        }
    }

    /// The `--json` report: the run's, plus `stopped_by_signal`.
    pub(crate) fn report(&self, result: &RunResult) -> serde_json::Result<String> {
        #[derive(serde::Serialize)]
        struct Report<'a> {
            #[serde(flatten)]
            result: &'a RunResult,
            stopped_by_signal: Option<i32>,
        }
        serde_json::to_string(&Report {
            result,
            stopped_by_signal: self.received,
        })
    }

    /// Wait for the run to end, forwarding the first signal and killing the sandbox when the
    /// grace period has passed or a second signal comes.
    #[cfg(target_os = "linux")]
    fn wait(&mut self, child: &mut Child) -> nanobox::Result<Outcome> {
        match &self.watch {
            Some(w) => w.wait(child, self.grace, &mut self.received, &mut self.killed),
            None => child.wait(),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn wait(&mut self, child: &mut Child) -> nanobox::Result<Outcome> {
        let _ = (self.grace, &mut self.received, &mut self.killed);
        child.wait()
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(w) = &self.watch {
            w.restore_default();
        }
    }
}

/// Everything from one output stream, and whether the output limit cut it.
fn slurp<R: Read + Truncated>(mut r: R) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("nanobox: reading the program's output: {e}");
                break;
            }
        }
    }
    let cut = r.truncated();
    (buf, cut)
}

trait Truncated {
    fn truncated(&self) -> bool;
}
impl Truncated for nanobox::ChildStdout {
    fn truncated(&self) -> bool {
        nanobox::ChildStdout::truncated(self)
    }
}
impl Truncated for nanobox::ChildStderr {
    fn truncated(&self) -> bool {
        nanobox::ChildStderr::truncated(self)
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, Read};
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use nanobox::{Child, Outcome};
    use rustix::event::{poll, PollFd, PollFlags, Timespec};

    /// How often the wait also asks the library whether the run ended (which lets the library's
    /// own backstop for a stuck sandbox fire).
    const CHECK: Duration = Duration::from_secs(1);

    /// SIGINT and SIGTERM, each with the socket its handler writes to.
    pub(super) struct Watch {
        signals: [(libc::c_int, UnixStream); 2],
        /// Set when the run is over: the signals then end the command as by default.
        over: Arc<AtomicBool>,
    }

    impl Watch {
        pub(super) fn install() -> io::Result<Watch> {
            let over = Arc::new(AtomicBool::new(false));
            let socket = |sig| -> io::Result<(libc::c_int, UnixStream)> {
                let (r, w) = UnixStream::pair()?;
                r.set_nonblocking(true)?;
                // The default action, but only once the run is over; during the run, one byte
                // on the socket per signal.
                signal_hook::flag::register_conditional_default(sig, Arc::clone(&over))?;
                signal_hook::low_level::pipe::register(sig, w)?;
                Ok((sig, r))
            };
            let signals = [socket(libc::SIGINT)?, socket(libc::SIGTERM)?];
            Ok(Watch { signals, over })
        }

        /// From now on SIGINT and SIGTERM end the command again, as their default action does.
        pub(super) fn restore_default(&self) {
            self.over.store(true, Ordering::SeqCst);
        }

        /// Wait for the run to end. The first signal is recorded in `received` and forwarded to
        /// the program, which then has `grace` to end; when it has not, or at a second signal
        /// (or at once with a zero grace), the sandbox is killed and `killed` set.
        pub(super) fn wait(
            &self,
            child: &mut Child,
            grace: Duration,
            received: &mut Option<i32>,
            killed: &mut bool,
        ) -> nanobox::Result<Outcome> {
            // The init is our child, not reaped before `wait`/`try_wait` has seen the run end:
            // its pid cannot name another process meanwhile.
            let pidfd = rustix::process::Pid::from_raw(child.id() as i32).and_then(|p| {
                rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
            });
            let Some(pidfd) = pidfd else {
                return child.wait();
            };
            let mut kill = |child: &mut Child| {
                *killed = true;
                child.kill()?;
                child.wait()
            };
            let mut deadline: Option<Instant> = None;
            loop {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return kill(child);
                }
                let timeout = deadline
                    .map(|d| d.saturating_duration_since(now).min(CHECK))
                    .unwrap_or(CHECK);
                let ts = Timespec {
                    tv_sec: timeout.as_secs() as i64,
                    tv_nsec: timeout.subsec_nanos() as i64,
                };
                let mut fds = [
                    PollFd::new(&pidfd, PollFlags::IN),
                    PollFd::new(&self.signals[0].1, PollFlags::IN),
                    PollFd::new(&self.signals[1].1, PollFlags::IN),
                ];
                let ready = match poll(&mut fds, Some(&ts)) {
                    Ok(n) => n,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        return Err(nanobox::Error::Io {
                            context: "waiting for the run and for signals".into(),
                            source: e.into(),
                        })
                    }
                };
                if !fds[0].revents().is_empty() {
                    return child.wait();
                }
                if ready == 0 {
                    if let Some(o) = child.try_wait()? {
                        return Ok(o);
                    }
                    continue;
                }
                for (sig, sock) in &self.signals {
                    if !drain(sock) {
                        continue;
                    }
                    if received.is_none() {
                        *received = Some(*sig);
                        if !grace.is_zero() && child.signal(*sig).is_ok() {
                            deadline = Instant::now().checked_add(grace);
                            continue;
                        }
                    }
                    return kill(child);
                }
            }
        }
    }

    /// Read what the handler wrote; whether there was anything (a signal came).
    fn drain(mut sock: &UnixStream) -> bool {
        let mut buf = [0u8; 64];
        let mut got = false;
        loop {
            match sock.read(&mut buf) {
                Ok(0) => return got,
                Ok(_) => got = true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return got,
            }
        }
    }
}
