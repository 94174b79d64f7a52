//! `nanobox._nanobox`: the Python bindings of nanobox (PyO3). The `nanobox` Python package
//! re-exports everything defined here; see python/nanobox/_nanobox.pyi for the typed surface and
//! docs/API.md, "Python", for the contract.
//!
//! Every run releases the GIL (`Python::detach`) while the sandbox runs, so Python threads run
//! sandboxes in parallel; `nanobox::Sandbox` is `Send + Sync` and cheap to clone, which is what
//! makes that possible without locks.

#![deny(clippy::undocumented_unsafe_blocks)]

mod bash;
mod builder;
mod child;
mod convert;
mod errors;
mod result;
mod sandbox;

use std::ffi::OsString;

use pyo3::prelude::*;

/// The `nanobox` command (`nanobox run ...`, `nanobox doctor`): runs the command line `argv`
/// (its first item is the program's name) exactly as the Rust binary does, and returns the exit
/// status. The package's console script `nanobox` calls it (nanobox/_cli.py).
#[pyfunction]
fn _cli_main(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    py.detach(|| nanobox_cli::main_from(argv))
}

#[pymodule]
fn _nanobox(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<sandbox::Sandbox>()?;
    m.add_class::<builder::SandboxBuilder>()?;
    m.add_class::<builder::Permission>()?;
    m.add_class::<result::RunResult>()?;
    m.add_class::<result::Outcome>()?;
    m.add_class::<result::NetworkEvent>()?;
    m.add_class::<result::Enforcement>()?;
    m.add_class::<child::Child>()?;
    m.add_class::<bash::Bash>()?;
    m.add_class::<bash::BashOutput>()?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(_cli_main, m)?)?;
    // `stdin=PIPE` for `spawn`: -1, the value of `subprocess.PIPE`, which is accepted as well.
    m.add("PIPE", convert::PIPE)?;
    m.add("KB", nanobox::KB)?;
    m.add("MB", nanobox::MB)?;
    m.add("GB", nanobox::GB)?;
    m.add("DEFAULT_OUTPUT_LIMIT", nanobox::DEFAULT_OUTPUT_LIMIT)?;
    m.add("DEFAULT_TMP_SIZE", nanobox::DEFAULT_TMP_SIZE)?;
    m.add("DEFAULT_HOSTNAME", nanobox::DEFAULT_HOSTNAME)?;
    m.add("DEFAULT_PATH", nanobox::DEFAULT_PATH)?;
    m.add("DEFAULT_WORKDIR", nanobox::DEFAULT_WORKDIR)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
