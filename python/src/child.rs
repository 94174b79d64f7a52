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
    child: Mutex<Option<nanobox::Child>>,
    rx: Mutex<Option<Receiver<Chunk>>>,
    truncated: [Arc<AtomicBool>; 2],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Child {
    pub(crate) fn start(mut child: nanobox::Child) -> Child {
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
        Child {
            pid: child.id(),
            child: Mutex::new(Some(child)),
            rx: Mutex::new(Some(rx)),
            truncated,
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

    /// Block until the program has ended and return its `Outcome`; every process of the sandbox
    /// is gone then. With `timeout` (a `timedelta` or seconds), raise `TimeoutError` if it has
    /// not ended by then. The GIL is released while waiting; `kill()` from another thread and
    /// Ctrl-C get through.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<&Bound<'_, PyAny>>) -> PyResult<Outcome> {
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

    /// Wait for the program to end and return a `RunResult` whose stdout and stderr hold the
    /// output not already taken by iteration. The Child cannot be waited on after this.
    fn wait_with_output(&self, py: Python<'_>) -> PyResult<RunResult> {
        // Wait first (polling, so that Ctrl-C and kill() get through), then collect.
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
        r.map(RunResult).map_err(|e| to_py(py, e))
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

    /// Kill the sandbox and reap it; exceptions propagate.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
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
