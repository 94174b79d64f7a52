//! `Child`: a running program, its output delivered as it comes.
//!
//! At spawn the two output pipes are handed to two reader threads that forward every chunk, in
//! the order read, to one channel. Iterating the `Child` takes chunks from that channel. Because
//! the readers always drain the pipes, `wait()` never blocks on a program stuck writing to a full
//! pipe, whether or not Python reads the output; what is not consumed by iteration stays queued
//! (at most the output limit per stream) and is what `wait_with_output()` returns.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert;
use crate::errors::to_py;
use crate::result::{Outcome, RunResult};

const STREAMS: [&str; 2] = ["stdout", "stderr"];

/// `Child.stop()`'s grace period when none is given.
const DEFAULT_GRACE: Duration = Duration::from_secs(2);
/// SIGTERM and SIGRTMAX on Linux, where the wheel runs (the library checks the numbers itself
/// while the Child is not consumed).
const SIGTERM: i32 = 15;
const LAST_SIGNAL: i32 = 64;

type Chunk = (usize, Vec<u8>);

/// A program started with `Sandbox.spawn()`.
///
/// Iterate it to get the output as it is produced: `for stream, data in child:` yields
/// `("stdout" | "stderr", bytes)` in the order the chunks were read, and ends when both streams
/// are closed (the program and everything it started ended, or the output limit cut them).
/// Use it as a context manager: leaving the `with` block kills the sandbox and reaps it. Letting
/// the object be garbage-collected does the same.
#[pyclass(module = "nanobox")]
pub(crate) struct Child {
    pid: u32,
    /// `child.stdin`: a `FileIO` on the writing end of the program's stdin (`stdin=PIPE`).
    stdin: Option<Py<PyAny>>,
    /// What ran, for the `RunResult` of `wait_with_output()`.
    cmd: Py<PyAny>,
    child: Mutex<Option<nanobox::Child>>,
    rx: Mutex<Option<Receiver<Chunk>>>,
    truncated: [Arc<AtomicBool>; 2],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Child {
    pub(crate) fn start(
        py: Python<'_>,
        mut child: nanobox::Child,
        cmd: Py<PyAny>,
    ) -> PyResult<Child> {
        let stdin = match child.stdin.take() {
            Some(s) => Some(stdin_file(py, s)?),
            None => None,
        };
        let (tx, rx) = mpsc::channel::<Chunk>();
        let truncated = [
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        ];
        spawn_reader(
            0,
            child.stdout.take(),
            tx.clone(),
            Arc::clone(&truncated[0]),
        );
        spawn_reader(1, child.stderr.take(), tx, Arc::clone(&truncated[1]));
        Ok(Child {
            pid: child.id(),
            stdin,
            cmd,
            child: Mutex::new(Some(child)),
            rx: Mutex::new(Some(rx)),
            truncated,
        })
    }

    /// Close `child.stdin` (the program reads end-of-file), as `Child::wait` does in Rust and
    /// `Popen.communicate` in Python. What closing raises is not the caller's concern here.
    fn close_stdin(&self, py: Python<'_>) {
        if let Some(f) = &self.stdin {
            let _ = f.bind(py).call_method0("close");
        }
    }

    /// Poll until the program ends (or `deadline`), releasing the child's lock between polls so
    /// that `kill()` from another thread gets through, and checking for Ctrl-C.
    fn wait_until(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Option<Outcome>> {
        let mut pause = Duration::from_millis(1);
        loop {
            let r = py.detach(|| {
                let mut g = lock(&self.child);
                let Some(c) = g.as_mut() else {
                    return Err(None);
                };
                match c.try_wait() {
                    Ok(Some(_)) => c.wait().map(Some).map_err(Some),
                    Ok(None) => Ok(None),
                    Err(e) => Err(Some(e)),
                }
            });
            match r {
                Ok(Some(o)) => return Ok(Some(Outcome(o))),
                Ok(None) => {}
                Err(Some(e)) => return Err(to_py(py, e)),
                Err(None) => return Err(consumed()),
            }
            py.check_signals()?;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let sleep = match deadline {
                Some(d) => pause.min(d.saturating_duration_since(Instant::now())),
                None => pause,
            };
            py.detach(|| std::thread::sleep(sleep));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// The writing end of the program's stdin as an unbuffered binary file (`io.FileIO`, mode
/// "wb"), which owns and closes the descriptor: `write`, `flush`, `close`, `fileno`, `closed`, a
/// context manager, and a real pipe for `asyncio` (`loop.connect_write_pipe`).
#[cfg(unix)]
fn stdin_file(py: Python<'_>, stdin: nanobox::ChildStdin) -> PyResult<Py<PyAny>> {
    use std::os::fd::{IntoRawFd, OwnedFd};
    let fd = OwnedFd::from(stdin).into_raw_fd();
    match py.import("io")?.getattr("FileIO")?.call1((fd, "wb")) {
        Ok(f) => Ok(f.unbind()),
        Err(e) => {
            // FileIO takes the descriptor only once it is built: close it, or the program would
            // never read end-of-file.
            let _ = py.import("os")?.call_method1("close", (fd,));
            Err(e)
        }
    }
}

#[cfg(not(unix))]
fn stdin_file(_py: Python<'_>, _stdin: nanobox::ChildStdin) -> PyResult<Py<PyAny>> {
    Err(pyo3::exceptions::PyValueError::new_err(
        "stdin=PIPE needs a Unix host (the pipe is handed over as a file descriptor)",
    ))
}

fn consumed() -> PyErr {
    PyRuntimeError::new_err("this Child was consumed by wait_with_output()")
}

/// Forward everything read from one pipe to the channel; record whether the limit cut it.
fn spawn_reader<R: ReadTrunc + 'static>(
    i: usize,
    pipe: Option<R>,
    tx: mpsc::Sender<Chunk>,
    flag: Arc<AtomicBool>,
) {
    let Some(mut pipe) = pipe else { return };
    std::thread::Builder::new()
        .name(format!("nanobox-{}", STREAMS[i]))
        .spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send((i, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
            flag.store(pipe.truncated(), Ordering::SeqCst);
        })
        .expect("spawning an output reader thread");
}

/// An output pipe of the library, read by a reader thread.
trait ReadTrunc: Read + Send {
    fn truncated(&self) -> bool;
}
impl ReadTrunc for nanobox::ChildStdout {
    fn truncated(&self) -> bool {
        nanobox::ChildStdout::truncated(self)
    }
}
impl ReadTrunc for nanobox::ChildStderr {
    fn truncated(&self) -> bool {
        nanobox::ChildStderr::truncated(self)
    }
}

#[pymethods]
impl Child {
    /// The host pid of the sandbox's init process.
    #[getter]
    fn pid(&self) -> u32 {
        self.pid
    }

    /// With `stdin=PIPE`: the writing end of the program's stdin, an unbuffered binary file
    /// (`io.FileIO`: `write`, `flush`, `close`, `fileno`, `closed`, a context manager; its
    /// `fileno()` is a real pipe, for `asyncio`). Closing it gives the program end-of-file;
    /// `wait()`, `stop()`, `wait_with_output()` and leaving the `with` block close it. A write
    /// after the program closed its stdin or ended raises `BrokenPipeError`. `None` without
    /// `stdin=PIPE`.
    #[getter]
    fn stdin(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.stdin.as_ref().map(|f| f.clone_ref(py))
    }

    /// What ran: `[program, *args]`, or the command line of a `shell=True` run (as
    /// `subprocess.Popen.args`).
    #[getter]
    fn args(&self, py: Python<'_>) -> Py<PyAny> {
        self.cmd.clone_ref(py)
    }

    /// Block until the program has ended and return its `Outcome`; every process of the sandbox
    /// is gone then. With `timeout` (a `timedelta` or seconds), raise `TimeoutError` if it has
    /// not ended by then. The GIL is released while waiting; `kill()` from another thread and
    /// Ctrl-C get through. Closes `stdin` (`stdin=PIPE`) first, so a program reading it ends.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Outcome> {
        self.close_stdin(py);
        let deadline = match timeout {
            Some(t) if !t.is_none() => Some(Instant::now() + convert::duration(t, "timeout")?),
            _ => None,
        };
        self.wait_until(py, deadline)?.ok_or_else(|| {
            PyTimeoutError::new_err("the sandboxed program did not end within the timeout")
        })
    }

    /// The `Outcome` if the program has ended, else `None`, without blocking.
    fn try_wait(&self, py: Python<'_>) -> PyResult<Option<Outcome>> {
        let r = py.detach(|| {
            let mut g = lock(&self.child);
            g.as_mut().map(|c| c.try_wait())
        });
        match r {
            None => Err(consumed()),
            Some(Ok(o)) => Ok(o.map(Outcome)),
            Some(Err(e)) => Err(to_py(py, e)),
        }
    }

    /// Same as `try_wait()` (the name `subprocess.Popen` uses).
    fn poll(&self, py: Python<'_>) -> PyResult<Option<Outcome>> {
        self.try_wait(py)
    }

    /// Kill everything in the sandbox. The outcome becomes `Outcome('signaled', signal=9)`
    /// unless the program had already ended. Does nothing after `wait_with_output()`.
    fn kill(&self, py: Python<'_>) -> PyResult<()> {
        let r = py.detach(|| lock(&self.child).as_mut().map(|c| c.kill()));
        match r {
            Some(Err(e)) => Err(to_py(py, e)),
            _ => Ok(()),
        }
    }

    /// Send signal `sig` (an int or a `signal.Signals`) to the program: the process that runs
    /// it, not the sandbox's init nor the processes the program started. A signal that kills it
    /// ends the run as any end of the program does. Does nothing once the program has ended
    /// (also after `wait_with_output()`). `InvalidOptionError` for 0 or a number past the last
    /// signal (SIGRTMAX).
    fn signal(&self, py: Python<'_>, sig: &Bound<'_, PyAny>) -> PyResult<()> {
        if sig.is_instance_of::<pyo3::types::PyBool>() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "sig: expected an int or a signal.Signals, not a bool",
            ));
        }
        let sig: i64 = sig.extract().map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err("sig: expected an int or a signal.Signals")
        })?;
        // Out of i32's range is out of the signals' range too: the library refuses it.
        let sig = i32::try_from(sig).unwrap_or(0);
        let r = py.detach(|| lock(&self.child).as_mut().map(|c| c.signal(sig)));
        match r {
            Some(Err(e)) => Err(to_py(py, e)),
            // Consumed: the program has ended; but a bad number is still refused.
            None if !(1..=LAST_SIGNAL).contains(&sig) => Err(to_py(
                py,
                nanobox::Error::InvalidOption {
                    option: "signal",
                    reason: format!("{sig} is not a signal number (1 to {LAST_SIGNAL})"),
                },
            )),
            _ => Ok(()),
        }
    }

    /// End the run gracefully: SIGTERM to the program, up to `grace` (seconds or a
    /// `timedelta`; 0 kills at once) for it to end, then kill everything in the sandbox. Returns
    /// the `Outcome` as `wait()` does: the program's own if it ended in time (e.g. exited 0 for a
    /// program that handles SIGTERM and exits, signaled 15 for one that SIGTERM killed), signaled
    /// 9 when it had to be killed. Every process of the sandbox is gone when it returns. The GIL
    /// is released while waiting; `kill()` from another thread and Ctrl-C get through. Closes
    /// `stdin` first.
    #[pyo3(signature = (grace = None))]
    fn stop(&self, py: Python<'_>, grace: Option<&Bound<'_, PyAny>>) -> PyResult<Outcome> {
        let grace = match grace {
            Some(g) if !g.is_none() => convert::duration(g, "grace")?,
            _ => DEFAULT_GRACE,
        };
        self.close_stdin(py);
        let asked = if grace.is_zero() {
            None
        } else {
            let r = py.detach(|| lock(&self.child).as_mut().map(|c| c.signal(SIGTERM)));
            match r {
                None => return Err(consumed()),
                Some(r) => Some(r),
            }
        };
        if matches!(asked, Some(Ok(()))) {
            if let Some(o) = self.wait_until(py, Instant::now().checked_add(grace))? {
                return Ok(o);
            }
        }
        self.kill(py)?;
        self.wait_until(py, None)?
            .ok_or_else(|| PyRuntimeError::new_err("the sandbox did not end after a kill"))
    }

    /// Wait for the program to end and return a `RunResult` whose stdout and stderr hold the
    /// output not already taken by iteration. The Child cannot be waited on after this. Closes
    /// `stdin` first.
    fn wait_with_output(&self, py: Python<'_>) -> PyResult<RunResult> {
        // Wait first (polling, so that Ctrl-C and kill() get through), then collect.
        self.close_stdin(py);
        self.wait_until(py, None)?;
        let Some(child) = lock(&self.child).take() else {
            return Err(consumed());
        };
        let rx = lock(&self.rx).take();
        let truncated = &self.truncated;
        let r = py.detach(move || {
            let r = child.wait_with_output();
            let mut out: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
            if let Some(rx) = rx {
                // The readers end at end-of-file, which follows the end of the sandbox.
                for (i, data) in rx.iter() {
                    out[i].extend_from_slice(&data);
                }
            }
            r.map(|mut r| {
                let [o, e] = out;
                r.stdout = String::from_utf8_lossy(&o).into_owned();
                r.stderr = String::from_utf8_lossy(&e).into_owned();
                r.stdout_bytes = o;
                r.stderr_bytes = e;
                r.stdout_truncated = truncated[0].load(Ordering::SeqCst);
                r.stderr_truncated = truncated[1].load(Ordering::SeqCst);
                r
            })
        });
        let cmd = self.cmd.clone_ref(py);
        r.map(|r| RunResult(r, Some(cmd))).map_err(|e| to_py(py, e))
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next chunk of output as `(stream, bytes)`; blocks until there is one (releasing the
    /// GIL; Ctrl-C gets through). Stops when both streams are closed.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<(&'static str, Py<PyBytes>)>> {
        loop {
            let r = py.detach(|| match lock(&self.rx).as_ref() {
                None => Err(RecvTimeoutError::Disconnected),
                Some(rx) => rx.recv_timeout(Duration::from_millis(100)),
            });
            match r {
                Ok((i, data)) => return Ok(Some((STREAMS[i], PyBytes::new(py, &data).unbind()))),
                Err(RecvTimeoutError::Timeout) => py.check_signals()?,
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// Close `stdin`, kill the sandbox and reap it; exceptions propagate.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close_stdin(py);
        let r = py.detach(|| {
            let mut g = lock(&self.child);
            match g.as_mut() {
                Some(c) => c.kill().and_then(|_| c.wait()).map(|_| ()),
                None => Ok(()),
            }
        });
        r.map_err(|e| to_py(py, e))?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<nanobox.Child pid={}>", self.pid)
    }
}
