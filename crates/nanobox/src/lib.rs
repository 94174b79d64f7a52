//! nanobox: a lightweight, embeddable sandbox for running untrusted code.
//!
//! The package is `nanobox-sandbox` on crates.io (`cargo add nanobox-sandbox`); the library is
//! `nanobox`.
//!
//! ```
//! use nanobox::{Sandbox, Permission, MB};
//! use std::time::Duration;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder()
//!     .mount("/usr/share", "/input", Permission::ReadOnly)
//!     .memory_limit(256 * MB)
//!     .wall_time_limit(Duration::from_secs(30))
//!     .no_network()
//!     .build()?;
//! let result = sandbox.run("sh", &["-c", "echo hello"])?;
//! println!("{}", result.stdout); // hello
//! # assert_eq!(result.stdout, "hello\n");
//! # Ok(()) }
//! ```
//!
//! On Linux every run gets its own user, pid, mount, network, ipc, uts and cgroup namespaces, a fresh
//! root with the host's system directories read-only, a seccomp filter, a Landlock layer, and a
//! program that holds no capabilities and never runs as root. The main types:
//!
//! - [`Sandbox`]: a built, reusable policy; [`Sandbox::builder`] starts a [`SandboxBuilder`], and
//!   the presets [`Sandbox::agent_executor`], [`Sandbox::code_judge`] and
//!   [`Sandbox::data_analysis`] start one with a use's defaults.
//! - [`Command`] and [`Child`]: one run, shaped like `std::process`; [`RunResult`] and
//!   [`Outcome`]: what it produced and why it ended.
//! - [`Sandbox::from_config`]: the same options from a TOML policy file ([`Config`]).
//! - [`Sandbox::probe`]: what this host supports (the CLI's `nanobox doctor`).
//! - [`Error`]: what went wrong, with the fix in its message.
//!
//! The design, the security model and each platform's host requirements are in the repository's
//! `docs/` directory: <https://github.com/nanobox-sandbox/nanobox>.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod apparmor;
mod bash;
mod config;
mod error;
mod explain;
mod policy;
mod presets;
mod probe;
pub mod proxy;
mod result;
mod sandbox;
mod seatbelt;
mod units;
mod watchdog;
mod wincmd;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as backend;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as backend;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as backend;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod unsupported;
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
use unsupported as backend;

pub use apparmor::AppArmorProfile;
pub use bash::{Bash, BashOutput};
pub use config::{Config, ConfigLimits, ConfigMount, Preset};
pub use error::{Error, Result};
pub use explain::{
    Explanation, JobLimit, LimitPlan, LinuxPlan, MacOsPlan, MountPlan, SeccompPlan, WindowsPlan,
    EXPLAIN_PROXY_PORT, EXPLAIN_TMPDIR,
};
pub use policy::{
    KernelPool, Mount, Network, NetworkAllowlist, Permission, Platform, SandboxBuilder,
    SeccompPolicy, Stdin, DEFAULT_HOSTNAME, DEFAULT_OUTPUT_LIMIT, DEFAULT_PATH, DEFAULT_TMP_SIZE,
    DEFAULT_WORKDIR,
};
pub use presets::Verdict;
pub use probe::{Check, CheckStatus, Probe};
pub use proxy::{NetworkEvent, NetworkLog};
pub use result::{Denial, Enforcement, Outcome, RunResult};
pub use sandbox::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Sandbox};
pub use units::{parse_duration, parse_env_file, parse_size};

/// One kibibyte (1024 bytes).
pub const KB: u64 = 1024;
/// One mebibyte (1024 KiB).
pub const MB: u64 = 1024 * KB;
/// One gibibyte (1024 MiB).
pub const GB: u64 = 1024 * MB;

#[cfg(test)]
mod tests {
    #[test]
    fn sandbox_is_send_sync_and_sizes_are_binary() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<crate::Sandbox>();
        assert_eq!(crate::MB, 1 << 20);
        assert_eq!(crate::GB, 1 << 30);
    }
}
