//! The backend for the operating systems nanobox does not support (all but Linux, macOS and
//! Windows): everything compiles, and `build()` refuses with [`Error::Unsupported`].

use std::ffi::{OsStr, OsString};
use std::io;

use crate::error::{Error, Result};
use crate::policy::{Policy, Stdin};
use crate::probe::Probe;
use crate::result::{Outcome, RunResult};

fn unsupported() -> Error {
    Error::Unsupported {
        what: format!("sandboxing on {}", std::env::consts::OS),
        fix: "nanobox isolates programs on Linux, macOS and Windows".into(),
    }
}

#[derive(Debug)]
pub(crate) struct Prepared;

impl Prepared {
    pub(crate) fn degraded_notes(&self) -> &[String] {
        &[]
    }
}
#[derive(Debug)]
pub(crate) struct Process;
#[derive(Debug)]
pub(crate) struct OutputPipe;

pub(crate) fn prepare(_: &Policy) -> Result<Prepared> {
    Err(unsupported())
}

pub(crate) fn spawn(
    _: &Policy,
    _: &Prepared,
    _: &OsStr,
    _: &[OsString],
    _: &Stdin,
    _: bool,
) -> Result<(Process, OutputPipe, OutputPipe, Option<std::io::PipeWriter>)> {
    Err(unsupported())
}

pub(crate) fn collect(
    _: &mut Process,
    _: Option<OutputPipe>,
    _: Option<OutputPipe>,
) -> Result<RunResult> {
    Err(unsupported())
}

pub(crate) fn clean_stale() -> Result<Vec<std::path::PathBuf>> {
    Ok(Vec::new())
}

pub(crate) fn probe() -> Probe {
    Probe::new(
        std::env::consts::OS,
        vec![crate::probe::Check {
            name: "sandbox backend".into(),
            status: crate::probe::CheckStatus::Missing,
            detail: format!("nanobox has no backend for {} yet", std::env::consts::OS),
            required: true,
            used: false,
            fix: Some("run nanobox on Linux, macOS or Windows".into()),
        }],
    )
}

impl Process {
    pub fn id(&self) -> u32 {
        0
    }
    pub fn wait(&mut self) -> Result<Outcome> {
        Err(unsupported())
    }
    pub fn try_wait(&mut self) -> Result<Option<Outcome>> {
        Err(unsupported())
    }
    pub fn kill(&mut self) -> Result<()> {
        Err(unsupported())
    }
    pub fn signal(&mut self, _: i32) -> Result<()> {
        Err(unsupported())
    }
    pub fn signal_group(&mut self, _: i32) -> Result<()> {
        Err(unsupported())
    }
    pub fn stop(&mut self, _: std::time::Duration) -> Result<Outcome> {
        Err(unsupported())
    }
}

impl OutputPipe {
    pub fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
    pub fn truncated(&self) -> bool {
        false
    }
}
