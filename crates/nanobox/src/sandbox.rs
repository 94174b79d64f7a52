//! The sandbox handle, the per-run command and the running child: the `std::process` shape.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::backend;
use crate::error::Result;
use crate::policy::{CallOptions, Policy, SandboxBuilder, Stdin};
use crate::probe::Probe;
use crate::result::{Outcome, RunResult};

/// A built sandbox policy: immutable, cheap to clone, `Send + Sync`, and reusable for any number of
/// runs, from any number of threads at once. Each run gets fresh namespaces, a fresh root and a fresh
/// `/tmp`; nothing carries over from one run to the next.
///
/// ```
/// use nanobox::Sandbox;
/// # fn main() -> nanobox::Result<()> {
/// let sandbox = Sandbox::builder().build()?;
/// let result = sandbox.run("sh", &["-c", "echo hello; id -u"])?;
/// assert!(result.success());
/// let mut lines = result.stdout.lines();
/// assert_eq!(lines.next(), Some("hello"));
/// assert_ne!(lines.next(), Some("0"), "never root inside");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    policy: Policy,
    prepared: backend::Prepared,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Start building a sandbox.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    pub(crate) fn from_policy(policy: Policy) -> Result<Sandbox> {
        let prepared = backend::prepare(&policy)?;
        Ok(Sandbox {
            inner: Arc::new(Inner { policy, prepared }),
        })
    }

    /// What is weaker than full isolation in every run of this sandbox, one line each: empty
    /// unless it was built with [`SandboxBuilder::allow_degraded_isolation`] on a host that
    /// needs it. Runs repeat the list in [`RunResult::degraded`].
    pub fn degraded(&self) -> &[String] {
        self.inner.prepared.degraded_notes()
    }

    /// Remove what runs whose owner process is gone left behind (a caller killed with SIGKILL
    /// cannot clean up): on Linux their cgroups (runs also sweep now and then), on Windows the
    /// access entries and labels they added and their AppContainer profiles. Returns the
    /// directories removed (Linux) or restored (Windows). Live runs, of this process or another,
    /// are left alone.
    pub fn clean_stale() -> Result<Vec<std::path::PathBuf>> {
        backend::clean_stale()
    }

    /// What this host supports, and what a run will use. Never fails: missing pieces are reported.
    pub fn probe() -> Probe {
        backend::probe()
    }

    /// The AppArmor profile that lets `program` (the program that runs sandboxes: your binary,
    /// or the interpreter that loads nanobox) create user namespaces with capabilities inside
    /// them on a host where `kernel.apparmor_restrict_unprivileged_userns=1` (Ubuntu 23.10 and
    /// later; [`Error::HostUnsupported`](crate::Error::HostUnsupported) names it when a run meets
    /// it). Only text is made: installing and loading it is the host administrator's (the text
    /// says how). `program` must be the absolute path of an existing executable with no symlink,
    /// `..` or `//` in it and only letters, digits and `/ . _ - +`; anything else is an
    /// [`Error::InvalidOption`](crate::Error::InvalidOption). CLI:
    /// `nanobox doctor --apparmor-profile PATH`.
    pub fn apparmor_profile(
        program: impl AsRef<std::path::Path>,
    ) -> Result<crate::AppArmorProfile> {
        crate::apparmor::profile_for(program.as_ref())
    }

    /// Run `program` with `args` to completion and capture its output.
    ///
    /// `program` is looked up in the sandbox's `PATH` unless it contains a `/`.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        program: impl AsRef<OsStr>,
        args: &[S],
    ) -> Result<RunResult> {
        self.command(program).args(args).run()
    }

    /// Start `program` and return at once; read its output as it is produced from
    /// [`Child::stdout`] and [`Child::stderr`].
    pub fn spawn<S: AsRef<OsStr>>(&self, program: impl AsRef<OsStr>, args: &[S]) -> Result<Child> {
        self.command(program).args(args).spawn()
    }

    pub(crate) fn wall_time_limit(&self) -> Option<Duration> {
        self.inner.policy.wall_time_limit
    }

    pub(crate) fn output_limit(&self) -> u64 {
        self.inner.policy.output_limit
    }

    /// A command to run in this sandbox, for per-run arguments and options (timeout,
    /// environment, working directory, stdin, output cap).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command<'_> {
        Command {
            sandbox: self,
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            stdin: None,
            call: CallOptions::default(),
        }
    }

    /// Run a shell command line, `/bin/sh -c CMD`, to completion: pipes, redirections and `&&`
    /// as in a terminal, in the same sandbox and with the same [`RunResult`] as [`Sandbox::run`].
    ///
    /// ```
    /// use nanobox::Sandbox;
    /// # fn main() -> nanobox::Result<()> {
    /// let sandbox = Sandbox::builder().build()?;
    /// let r = sandbox.shell("printf 'a\\nb\\n' | wc -l")?;
    /// assert_eq!(r.stdout.trim(), "2");
    /// # Ok(()) }
    /// ```
    ///
    /// Only the shell parses `cmd`; nanobox passes it as one argument. On Windows there is no
    /// `/bin/sh`: this returns [`crate::Error::Unsupported`] there (run `cmd.exe` or
    /// `powershell.exe` with [`Sandbox::command`] instead).
    pub fn shell(&self, cmd: &str) -> Result<RunResult> {
        self.shell_command(cmd)?.run()
    }

    /// A [`Command`] for `/bin/sh -c CMD`, for per-run options (`sandbox.shell_command("make
    /// test")?.timeout(..).run()`).
    pub fn shell_command(&self, cmd: &str) -> Result<Command<'_>> {
        if cfg!(windows) {
            return Err(crate::Error::Unsupported {
                what: "a shell command line on Windows (there is no /bin/sh)".into(),
                fix: "run cmd.exe or powershell.exe with Sandbox::command".into(),
            });
        }
        Ok(self.command(SHELL).args(["-c", cmd]))
    }
}

/// The shell [`Sandbox::shell`] runs.
pub(crate) const SHELL: &str = "/bin/sh";

/// One run of a program in a [`Sandbox`], shaped like `std::process::Command`.
///
/// ```
/// use nanobox::Sandbox;
/// # fn main() -> nanobox::Result<()> {
/// let sandbox = Sandbox::builder().build()?;
/// let result = sandbox
///     .command("tr")
///     .args(["a-z", "A-Z"])
///     .stdin(b"shout\n".to_vec())
///     .run()?;
/// assert_eq!(result.stdout, "SHOUT\n");
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use]
pub struct Command<'a> {
    sandbox: &'a Sandbox,
    program: OsString,
    args: Vec<OsString>,
    stdin: Option<Stdin>,
    call: CallOptions,
}

impl Command<'_> {
    /// Add one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }
    /// Add several arguments.
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }
    /// Stdin for this run only, instead of the sandbox's: bytes, a host file
    /// ([`Stdin::file`]), or [`Stdin::Piped`] (as [`Command::stdin_piped`]).
    pub fn stdin(mut self, stdin: impl Into<Stdin>) -> Self {
        self.stdin = Some(stdin.into());
        self
    }

    /// Give the program a pipe for stdin, written through [`Child::stdin`] (`Stdio::piped()`):
    /// for a REPL, prompts, or a stream. Closing (dropping) the [`ChildStdin`] gives the program
    /// end-of-file; [`Child::wait`] and [`Child::wait_with_output`] close it first, as
    /// `std::process` does, and [`Command::run`] at once.
    pub fn stdin_piped(self) -> Self {
        self.stdin(Stdin::Piped)
    }

    /// End this run after `limit` of wall-clock time ([`crate::Outcome::WallTimeLimit`]),
    /// instead of the sandbox's [`crate::SandboxBuilder::wall_time_limit`]: tighter or looser.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.call.timeout = Some(limit);
        self
    }

    /// Set an environment variable for this run, over the sandbox's environment.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.call.env.push((key.into(), Some(value.into())));
        self
    }

    /// Set several environment variables for this run.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Remove a variable of the sandbox's environment for this run.
    pub fn env_remove(mut self, key: impl Into<String>) -> Self {
        self.call.env.push((key.into(), None));
        self
    }

    /// Start this run's environment empty (`PATH` too: name the program by its path), then
    /// add what [`Command::env`] sets after this call.
    pub fn env_clear(mut self) -> Self {
        self.call.env_clear = true;
        self.call.env.clear();
        self
    }

    /// The program's working directory for this run, a path inside the sandbox (`PWD` is set
    /// to it). A directory the program cannot enter makes the run fail to start.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.call.current_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// No wall-clock limit for this run (a persistent shell's, whose commands have their own).
    pub(crate) fn without_wall_time_limit(mut self) -> Self {
        self.call.no_wall_limit = true;
        self
    }

    /// Cap captured stdout and stderr, each, at `bytes` for this run, instead of the
    /// sandbox's [`crate::SandboxBuilder::output_limit`].
    pub fn output_limit(mut self, bytes: u64) -> Self {
        self.call.output_limit = Some(bytes);
        self
    }

    /// Start the program.
    pub fn spawn(&self) -> Result<Child> {
        let inner = &self.sandbox.inner;
        let call_policy;
        let policy = if self.call.is_empty() {
            &inner.policy
        } else {
            call_policy = inner.policy.for_call(&self.call)?;
            &call_policy
        };
        let stdin = self.stdin.as_ref().unwrap_or(&inner.policy.stdin);
        let (process, out, err, input) = backend::spawn(
            policy,
            &inner.prepared,
            &self.program,
            &self.args,
            stdin,
            self.call.changes_env_or_dir(),
        )?;
        Ok(Child {
            stdin: input.map(ChildStdin),
            stdout: Some(ChildStdout(out)),
            stderr: Some(ChildStderr(err)),
            process,
        })
    }

    /// Run the program to completion and capture its output (each stream up to the output limit).
    pub fn run(&self) -> Result<RunResult> {
        self.spawn()?.wait_with_output()
    }
}

/// A running sandboxed program, shaped like `std::process::Child`.
///
/// Dropping a `Child` kills the sandbox: nothing it started outlives the handle.
///
/// ```
/// use nanobox::{Outcome, Sandbox};
/// use std::io::{BufRead, BufReader};
/// # fn main() -> nanobox::Result<()> {
/// let sandbox = Sandbox::builder().build()?;
/// let mut child = sandbox.spawn("sh", &["-c", "echo ready; exec sleep 60"])?;
/// // Output arrives as it is written, not when the program ends.
/// let mut stdout = BufReader::new(child.stdout.take().unwrap());
/// let mut line = String::new();
/// stdout.read_line(&mut line).unwrap();
/// assert_eq!(line, "ready\n");
/// child.kill()?;
/// assert_eq!(child.wait()?, Outcome::Signaled(9));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Child {
    /// The writing end of the program's stdin, when the run was started with
    /// [`Command::stdin_piped`]; closed by [`Child::wait`] and [`Child::wait_with_output`].
    pub stdin: Option<ChildStdin>,
    /// The program's stdout, as it is produced (taken by [`Child::wait_with_output`] if left here).
    pub stdout: Option<ChildStdout>,
    /// The program's stderr, as it is produced.
    pub stderr: Option<ChildStderr>,
    pub(crate) process: backend::Process,
}

impl Child {
    /// The host process id of the sandbox's init process.
    pub fn id(&self) -> u32 {
        self.process.id()
    }

    /// Wait for the program to end. Every process of the sandbox is gone when this returns.
    ///
    /// Read stdout and stderr while waiting (or take them and drop them): a program blocked on a
    /// full pipe does not end.
    pub fn wait(&mut self) -> Result<Outcome> {
        drop(self.stdin.take());
        self.process.wait()
    }

    /// The outcome if the program has ended, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<Outcome>> {
        self.process.try_wait()
    }

    /// Kill the program and everything in its sandbox. The outcome becomes `Signaled(SIGKILL)`
    /// unless the program had already ended.
    pub fn kill(&mut self) -> Result<()> {
        self.process.kill()
    }

    /// Send `signal` (a number such as `libc::SIGTERM`) to the program: the process that runs
    /// the program, not the sandbox's init nor the other processes the program started (they see
    /// it only if the program passes it on, as a shell does not).
    ///
    /// The sandbox's init delivers it: it is the program's parent and reaps it only as the run
    /// ends, so the signal can never reach another process that reused the pid. A signal that
    /// ends the program ends the run as any end of the program does ([`Outcome::Signaled`] unless
    /// it handles the signal). When the program has already ended this does nothing and returns
    /// `Ok`. 0 and numbers past the system's last signal (SIGRTMAX) are refused with
    /// [`Error::InvalidOption`](crate::Error::InvalidOption).
    ///
    /// ```
    /// use nanobox::{Outcome, Sandbox};
    /// # fn main() -> nanobox::Result<()> {
    /// let sandbox = Sandbox::builder().build()?;
    /// let mut child = sandbox.spawn("sleep", &["60"])?;
    /// child.signal(libc::SIGTERM)?;
    /// assert_eq!(child.wait()?, Outcome::Signaled(libc::SIGTERM));
    /// child.signal(libc::SIGTERM)?; // ended: nothing to do
    /// assert!(child.signal(0).is_err());
    /// # Ok(()) }
    /// ```
    pub fn signal(&mut self, signal: i32) -> Result<()> {
        self.process.signal(signal)
    }

    /// Send `signal` to the program's process group: the program and every process it started
    /// that did not leave the group (a shell's foreground commands, a pipeline), as a terminal's
    /// Ctrl-C does. Processes that started a session or group of their own do not get it. The
    /// same rules as [`Child::signal`] otherwise. On Windows, which has no process groups, 9 and
    /// 15 end the whole run.
    pub fn signal_group(&mut self, signal: i32) -> Result<()> {
        self.process.signal_group(signal)
    }

    /// End the run gracefully: SIGTERM to the program (as [`Child::signal`]), up to `grace` for
    /// it to end, then [`Child::kill`]. Returns the outcome: the program's own when it ended in
    /// time (`Exited(0)` for a program that handles SIGTERM and exits, `Signaled(15)` for one
    /// that SIGTERM killed), `Signaled(9)` when it had to be killed. A zero `grace` kills at
    /// once. As with [`Child::wait`], every process of the sandbox is gone when this returns, and
    /// a program blocked writing to a full stdout or stderr pipe that nobody reads cannot end in
    /// time. After the run ended, returns its outcome.
    pub fn stop(&mut self, grace: std::time::Duration) -> Result<Outcome> {
        self.process.stop(grace)
    }

    /// Wait for the program to end, collecting what is left of its stdout and stderr.
    pub fn wait_with_output(mut self) -> Result<RunResult> {
        drop(self.stdin.take());
        let out = self.stdout.take().map(|s| s.0);
        let err = self.stderr.take().map(|s| s.0);
        backend::collect(&mut self.process, out, err)
    }
}

/// The program's stdin, when it was started with [`Command::stdin_piped`]: what is written
/// here the program reads, and it reads end-of-file once this is dropped. A write after the
/// program closed its stdin or ended fails with [`io::ErrorKind::BrokenPipe`] (never a
/// SIGPIPE); a write blocks while the pipe is full and the program does not read.
#[derive(Debug)]
pub struct ChildStdin(io::PipeWriter);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for ChildStdin {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}
#[cfg(unix)]
impl std::os::fd::AsRawFd for ChildStdin {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}
#[cfg(unix)]
impl From<ChildStdin> for std::os::fd::OwnedFd {
    fn from(s: ChildStdin) -> Self {
        s.0.into()
    }
}

/// The program's stdout. Reads return end-of-file once the output limit is reached (the run is
/// then stopped with [`Outcome::OutputLimit`]).
#[derive(Debug)]
pub struct ChildStdout(backend::OutputPipe);
/// The program's stderr. Same rules as [`ChildStdout`].
#[derive(Debug)]
pub struct ChildStderr(backend::OutputPipe);

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}
impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl ChildStdout {
    /// True once the output limit cut this stream.
    pub fn truncated(&self) -> bool {
        self.0.truncated()
    }
}
impl ChildStderr {
    /// True once the output limit cut this stream.
    pub fn truncated(&self) -> bool {
        self.0.truncated()
    }
}
