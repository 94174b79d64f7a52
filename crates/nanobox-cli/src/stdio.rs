//! The program's standard streams: what it reads (`--stdin`) and passing its output through live.

use std::ffi::{OsStr, OsString};
#[cfg(unix)]
use std::io::IsTerminal;
use std::io::{self, Read, Write};
use std::path::Path;
use std::thread;

use nanobox::{Child, Outcome, Sandbox, Stdin};

/// The program's stdin for `--stdin ARG` (`None`: empty stdin).
///
/// `-` is the CLI's own stdin: a pipe or file is handed over as it is (a duplicate of fd 0); a
/// terminal, which the library refuses (the program could drive it with ioctls), is relayed through
/// a pipe by a thread. A FILE that is a terminal (e.g. `/dev/tty`) is relayed the same way.
pub fn stdin_for(arg: Option<&Path>) -> Result<Stdin, String> {
    let Some(arg) = arg else {
        return Ok(Stdin::Null);
    };
    if arg == Path::new("-") {
        return own_stdin();
    }
    if let Some(tty) = open_if_terminal(arg) {
        return relay(tty);
    }
    Ok(Stdin::file(arg))
}

#[cfg(unix)]
fn own_stdin() -> Result<Stdin, String> {
    use std::os::fd::AsFd;
    let stdin = io::stdin();
    if stdin.is_terminal() {
        return relay(stdin);
    }
    let fd = stdin
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("--stdin -: cannot use this command's stdin: {e}"))?;
    Ok(Stdin::Fd(std::sync::Arc::new(fd)))
}

#[cfg(not(unix))]
fn own_stdin() -> Result<Stdin, String> {
    let mut data = Vec::new();
    io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| format!("--stdin -: cannot read this command's stdin: {e}"))?;
    Ok(Stdin::bytes(data))
}

/// The file at `path`, opened, if it is a terminal.
#[cfg(unix)]
fn open_if_terminal(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::FileTypeExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.file_type().is_char_device() {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    f.is_terminal().then_some(f)
}

#[cfg(not(unix))]
fn open_if_terminal(_path: &Path) -> Option<std::fs::File> {
    None
}

/// A pipe whose write end a thread fills from `input`; its read end becomes the program's stdin.
/// The thread stops at end of input or when the program no longer reads (EPIPE).
#[cfg(unix)]
fn relay(mut input: impl Read + Send + 'static) -> Result<Stdin, String> {
    let (r, w) = pipe().map_err(|e| format!("--stdin: cannot create a pipe: {e}"))?;
    thread::spawn(move || {
        let mut w = std::fs::File::from(w);
        let mut buf = [0u8; 8192];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if w.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    });
    Ok(Stdin::Fd(std::sync::Arc::new(r)))
}

#[cfg(not(unix))]
fn relay(mut input: impl Read + Send + 'static) -> Result<Stdin, String> {
    let mut data = Vec::new();
    input
        .read_to_end(&mut data)
        .map_err(|e| format!("--stdin: cannot read the input: {e}"))?;
    Ok(Stdin::bytes(data))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    let (r, w) = rustix::pipe::pipe()?;
    for fd in [&r, &w] {
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
    }
    Ok((r, w))
}

/// Run `program` with its stdout and stderr copied to ours as they are produced; `wait` waits
/// for the run to end.
pub fn run_streaming(
    sandbox: &Sandbox,
    program: &OsStr,
    args: &[OsString],
    wait: impl FnOnce(&mut Child) -> nanobox::Result<Outcome>,
) -> nanobox::Result<Outcome> {
    let mut child = sandbox.spawn(program, args)?;
    let out = child
        .stdout
        .take()
        .map(|r| thread::spawn(move || pump(r, io::stdout())));
    let err = child
        .stderr
        .take()
        .map(|r| thread::spawn(move || pump(r, io::stderr())));
    let outcome = wait(&mut child);
    // Dropping the child kills whatever is left of the sandbox (after an error in `wait`), so the
    // pipes reach end-of-file and the copying threads end.
    drop(child);
    for t in [out, err].into_iter().flatten() {
        let _ = t.join();
    }
    outcome
}

/// Copy `from` to `to` chunk by chunk, flushing each. When `to` fails (e.g. our stdout is a closed
/// pipe), stop reading: the program then gets EPIPE/SIGPIPE, as in a shell pipeline.
fn pump(mut from: impl Read, mut to: impl Write) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                eprintln!("nanobox: reading the program's output: {e}");
                return;
            }
        }
    }
}
