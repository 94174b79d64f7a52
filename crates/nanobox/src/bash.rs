//! A persistent shell: one long-lived bash in a sandbox that runs command after command, with
//! `cd`, `export`, shell variables and functions carried from one to the next, as agent runtimes
//! keep one. Built on [`crate::Command::stdin_piped`] and the public [`Child`].
//!
//! Each command is sent on bash's stdin as a line that decodes it (`printf -v VAR '%b'` of its
//! bytes as `\xHH` escapes, so no quoting of the command reaches bash's parser) and `eval`s it
//! with stdin from `/dev/null` (a command that reads stdin cannot swallow the next command),
//! then prints a marker with a fresh random nonce and the exit status on stdout, and the nonce on
//! stderr. The command's output is what came before the markers; a command that prints text
//! looking like a marker cannot know the nonce of the marker that ends it.
//!
//! A command that outlives its timeout gets SIGINT in bash's process group (bash itself traps it
//! and goes on; the command ends as at a terminal's Ctrl-C); if its markers do not follow within
//! a grace period, the whole shell is killed and the next command is refused.

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::result::Outcome;
use crate::sandbox::{Child, ChildStdin, Sandbox};

/// How long a command that got SIGINT at its timeout has to end before the shell is killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(2);
/// The bytes kept at a stream's end beyond its cap, enough for a whole marker.
const TAIL: usize = 64;
const MARK: u8 = 0x1e;

/// What one command of a [`Bash`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BashOutput {
    /// What it wrote on stdout (lossy UTF-8), up to the sandbox's output limit.
    pub stdout: String,
    /// What it wrote on stderr, up to the same limit.
    pub stderr: String,
    /// Its exit status (`$?`): 130 after the interrupt of a timeout; None when the shell ended
    /// (the command ran `exit`, or the shell was killed) before reporting one.
    pub exit_code: Option<i32>,
    /// Whether its timeout interrupted it.
    pub timed_out: bool,
    /// Whether stdout or stderr was cut at the output limit.
    pub truncated: bool,
    /// Wall-clock time from sending the command to its end.
    pub duration: Duration,
}

impl BashOutput {
    /// Exited with 0 in time.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }
}

/// One stream of the shell while a command runs.
#[derive(Default)]
struct Stream {
    buf: Vec<u8>,
    /// Where the search for the current command's marker goes on: `buf` before it holds none.
    from: usize,
    truncated: bool,
    eof: bool,
}

impl Stream {
    /// Append, keeping at most `cap` bytes of output plus a tail that may hold a marker.
    fn push(&mut self, data: &[u8], cap: usize) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > cap + TAIL {
            let tail = self.buf.len() - TAIL;
            self.buf.drain(cap..tail);
            self.truncated = true;
            // What was left unsearched is now at most the kept head's end and the tail.
            self.from = self.from.min(cap);
        }
    }

    /// The first `needle` at or after `from`; otherwise `from` moves on to where a needle cut
    /// short at the end could begin, so that each byte is searched about once.
    fn find(&mut self, needle: &[u8]) -> Option<usize> {
        let found = find(&self.buf[self.from.min(self.buf.len())..], needle).map(|p| p + self.from);
        if found.is_none() {
            self.from = self.buf.len().saturating_sub(needle.len());
        }
        found
    }

    /// Hand out the bytes before `end` and what follows `skip` more (a marker); the search
    /// starts again at the beginning of what is left, for the next command.
    fn take(&mut self, end: usize, skip: usize) -> String {
        let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + skip);
        self.from = 0;
        self.truncated = false;
        text
    }
}

#[derive(Default)]
struct State {
    out: Stream,
    err: Stream,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A long-lived bash in a sandbox: see [`Sandbox::bash`].
#[derive(Debug)]
pub struct Bash {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    timeout: Option<Duration>,
    dead: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

fn reader(mut r: impl Read + Send + 'static, shared: Arc<Shared>, err: bool, cap: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf).unwrap_or(0);
        let mut st = shared.lock();
        let s = if err { &mut st.err } else { &mut st.out };
        if n == 0 {
            s.eof = true;
        } else {
            s.push(&buf[..n], cap);
        }
        drop(st);
        shared.changed.notify_all();
        if n == 0 {
            return;
        }
    }
}

/// A nonce no command can predict: 128 bits from the standard library's per-process random keys,
/// the time and a counter.
fn nonce() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u128(t);
        h.write_u64(i);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// The line that runs `cmd` and marks its end with `nonce`.
fn script(cmd: &str, nonce: &str) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(cmd.len() * 4);
    for b in cmd.bytes() {
        let _ = write!(hex, "\\x{b:02x}");
    }
    format!(
        "builtin printf -v __nanobox_cmd '%b' '{hex}'; builtin eval \"$__nanobox_cmd\" </dev/null; \
         __nanobox_status=$?; builtin printf '\\036{nonce}-%d\\036' \"$__nanobox_status\"; \
         builtin printf '\\036{nonce}\\036' >&2\n"
    )
}

/// The position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The stdout marker `\x1eNONCE-STATUS\x1e` (`head` is its part up to the status) in `s`:
/// (start, length, status). A marker whose status has not all arrived is searched again from
/// its start.
fn out_marker(s: &mut Stream, head: &[u8]) -> Option<(usize, usize, i32)> {
    let start = s.find(head)?;
    let rest = &s.buf[start + head.len()..];
    let Some(len) = rest.iter().position(|&b| b == MARK) else {
        s.from = start;
        return None;
    };
    let status = std::str::from_utf8(&rest[..len]).ok()?.parse().ok()?;
    Some((start, head.len() + len + 1, status))
}

impl Sandbox {
    /// A persistent bash in this sandbox: [`Bash::run`] runs one command after another in the same
    /// shell, so `cd`, `export`, variables and functions persist between them, as in a terminal.
    /// The shell is one run of the sandbox: its processes, `/tmp` and limits (memory, processes,
    /// CPU time, which add up over the shell's life) are shared by every command; each command has
    /// its own timeout (default: the sandbox's `wall_time_limit`; the shell itself has none) and
    /// its own output, each stream capped at the sandbox's `output_limit`. Dropping the `Bash`
    /// ends the shell and everything in it.
    ///
    /// ```
    /// use nanobox::Sandbox;
    /// # fn main() -> nanobox::Result<()> {
    /// let sandbox = Sandbox::builder().build()?;
    /// let mut sh = sandbox.bash()?;
    /// sh.run("cd /usr && export K=v")?;
    /// let out = sh.run("pwd; echo $K")?;
    /// assert_eq!(out.stdout, "/usr\nv\n");
    /// assert_eq!(sh.run("false")?.exit_code, Some(1));
    /// # Ok(()) }
    /// ```
    ///
    /// Needs `bash` in the sandbox's `PATH`. Not available on Windows.
    pub fn bash(&self) -> Result<Bash> {
        if cfg!(windows) {
            return Err(Error::Unsupported {
                what: "a persistent bash on Windows".into(),
                fix: "run cmd.exe or powershell.exe with Sandbox::command".into(),
            });
        }
        let cap = usize::try_from(self.output_limit()).unwrap_or(usize::MAX);
        let mut child = self
            .command("bash")
            .args(["--noprofile", "--norc"])
            .stdin_piped()
            .without_wall_time_limit()
            .output_limit(u64::MAX)
            .spawn()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let out = child.stdout.take().expect("spawn gives stdout");
        let err = child.stderr.take().expect("spawn gives stderr");
        let readers = vec![
            {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name("nanobox-bash-out".into())
                    .spawn(move || reader(out, s, false, cap))
                    .map_err(|e| Error::io("starting the shell's output reader", e))?
            },
            {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name("nanobox-bash-err".into())
                    .spawn(move || reader(err, s, true, cap))
                    .map_err(|e| Error::io("starting the shell's output reader", e))?
            },
        ];
        let mut bash = Bash {
            stdin: child.stdin.take(),
            child,
            shared,
            readers,
            timeout: self.wall_time_limit(),
            dead: false,
        };
        // A handler, not "ignore": the commands bash starts get SIGINT's default action back.
        bash.send("trap : INT\n")?;
        Ok(bash)
    }
}

impl Bash {
    /// Run `cmd` (any bash input: pipes, `&&`, functions, a here-document) in the shell, with the
    /// shell's default timeout, and return its output and status.
    pub fn run(&mut self, cmd: &str) -> Result<BashOutput> {
        self.run_with_timeout(cmd, self.timeout)
    }

    /// Run `cmd` with its own timeout (None: no limit).
    pub fn run_with_timeout(&mut self, cmd: &str, timeout: Option<Duration>) -> Result<BashOutput> {
        if cmd.contains('\0') {
            return Err(Error::InvalidOption {
                option: "cmd",
                reason: "a shell command cannot contain a NUL byte".into(),
            });
        }
        if self.dead {
            return Err(self.ended());
        }
        let nonce = nonce();
        let start = Instant::now();
        self.send(&script(cmd, &nonce))?;
        let mut deadline = timeout.and_then(|t| start.checked_add(t));
        let mut timed_out = false;
        let mut killed = false;
        let out_head = format!("\u{1e}{nonce}-").into_bytes();
        let err_mark = format!("\u{1e}{nonce}\u{1e}").into_bytes();
        let (mut out, mut err) = (None, None);
        let mut st = self.shared.lock();
        loop {
            if out.is_none() {
                out = out_marker(&mut st.out, &out_head);
            }
            if err.is_none() {
                err = st.err.find(&err_mark);
            }
            let both_eof = st.out.eof && st.err.eof;
            if let (Some((s, len, status)), Some(es)) = (out, err) {
                let truncated = st.out.truncated || st.err.truncated;
                let stdout = st.out.take(s, len);
                let stderr = st.err.take(es, err_mark.len());
                return Ok(BashOutput {
                    stdout,
                    stderr,
                    exit_code: Some(status),
                    timed_out,
                    truncated,
                    duration: start.elapsed(),
                });
            }
            if both_eof || killed {
                // The shell ended: what it wrote is this command's.
                let stdout = String::from_utf8_lossy(&std::mem::take(&mut st.out.buf)).into_owned();
                let stderr = String::from_utf8_lossy(&std::mem::take(&mut st.err.buf)).into_owned();
                let truncated = st.out.truncated || st.err.truncated;
                drop(st);
                self.dead = true;
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Ok(BashOutput {
                    stdout,
                    stderr,
                    exit_code: None,
                    timed_out,
                    truncated,
                    duration: start.elapsed(),
                });
            }
            let now = Instant::now();
            match deadline {
                Some(d) if now >= d => {
                    drop(st);
                    if !timed_out {
                        timed_out = true;
                        self.child.signal_group(SIGINT)?;
                        deadline = now.checked_add(INTERRUPT_GRACE);
                    } else {
                        // The command did not end on SIGINT: the shell goes with it.
                        self.child.kill()?;
                        killed = true;
                    }
                    st = self.shared.lock();
                }
                Some(d) => {
                    st = self
                        .shared
                        .changed
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                None => {
                    st = self
                        .shared
                        .changed
                        .wait(st)
                        .unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    /// The timeout of [`Bash::run`]: initially the sandbox's `wall_time_limit`.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Whether the shell still runs (a command that ran `exit`, or a timeout that had to kill
    /// the shell, ends it).
    pub fn is_alive(&mut self) -> bool {
        !self.dead && matches!(self.child.try_wait(), Ok(None))
    }

    /// End the shell: close its stdin (bash exits at end-of-file) and wait up to `grace` before
    /// killing what is left. Returns the shell's outcome.
    pub fn close(mut self, grace: Duration) -> Result<Outcome> {
        drop(self.stdin.take());
        let deadline = Instant::now() + grace;
        loop {
            if let Some(o) = self.child.try_wait()? {
                return Ok(o);
            }
            if Instant::now() >= deadline {
                self.child.kill()?;
                return self.child.wait();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn send(&mut self, text: &str) -> Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.ended());
        };
        match stdin.write_all(text.as_bytes()).and_then(|_| stdin.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.dead = true;
                Err(self.ended())
            }
            Err(e) => Err(Error::io("writing a command to the shell", e)),
        }
    }

    fn ended(&self) -> Error {
        Error::InvalidOption {
            option: "bash",
            reason: "the shell has ended (a command ran exit, or a timeout had to kill it); \
                     start another with Sandbox::bash"
                .into(),
        }
    }
}

impl Drop for Bash {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

/// SIGINT's number, the same on every platform with signals.
const SIGINT: i32 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_carries_any_bytes_as_escapes_and_no_quote_reaches_bash() {
        let s = script("echo 'a' \"b\" $X \\ `x`\n", "N");
        let body = s.split('\'').nth(3).unwrap();
        assert!(
            body.chars()
                .all(|c| c == '\\' || c == 'x' || c.is_ascii_hexdigit()),
            "{body}"
        );
        assert!(s.ends_with('\n') && s.matches('\n').count() == 1, "{s:?}");
    }

    #[test]
    fn a_marker_is_found_only_with_its_nonce() {
        let stream = |b: &[u8]| Stream {
            buf: b.to_vec(),
            ..Stream::default()
        };
        let buf = b"out\x1eother-0\x1emore\x1eabc-17\x1erest";
        assert_eq!(out_marker(&mut stream(buf), b"\x1eabc-"), Some((16, 8, 17)));
        assert_eq!(out_marker(&mut stream(buf), b"\x1ezzz-"), None);
        let mut cut = stream(b"xx\x1eabc-1");
        assert_eq!(out_marker(&mut cut, b"\x1eabc-"), None, "incomplete");
        cut.buf.extend_from_slice(b"2\x1e");
        assert_eq!(
            out_marker(&mut cut, b"\x1eabc-"),
            Some((2, 8, 12)),
            "completed"
        );
        assert_ne!(nonce(), nonce());
        assert_eq!(nonce().len(), 32);
    }

    #[test]
    fn a_stream_keeps_its_cap_and_a_tail() {
        let mut s = Stream::default();
        s.push(&[b'a'; 100], 10);
        // Searched once without a marker: the search then goes on near the end...
        assert_eq!(out_marker(&mut s, b"\x1eN-"), None);
        s.push(b"\x1eN-0\x1e", 10);
        assert!(s.truncated);
        assert_eq!(s.buf.len(), 10 + TAIL);
        assert!(s.buf.ends_with(b"\x1eN-0\x1e"));
        // ...which the cut moved: the marker in the kept tail is found.
        assert_eq!(out_marker(&mut s, b"\x1eN-"), Some((10 + TAIL - 5, 5, 0)));
    }
}
