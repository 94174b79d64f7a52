//! nanobox: a lightweight, embeddable sandbox for running untrusted code.
//!
//! ```no_run
//! use nanobox::{Sandbox, Permission};
//! use std::time::Duration;
//! # fn main() -> nanobox::Result<()> {
//! let sandbox = Sandbox::builder()
//!     .mount("/tmp", "/input", Permission::ReadOnly)
//!     .wall_time_limit(Duration::from_secs(30))
//!     .no_network()
//!     .build()?;
//! let result = sandbox.run("python3", &["-c", "print('hello')"])?;
//! println!("{}", result.stdout); // hello
//! # Ok(()) }
//! ```
//!
//! On Linux every run gets its own user, pid, mount, network, ipc, uts and cgroup namespaces, a fresh
//! root with the host's system directories read-only, and a program that holds no capabilities and
//! never runs as root. See `docs/ARCHITECTURE.md` for how.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod apparmor;
mod error;
mod policy;
mod presets;
mod probe;
pub mod proxy;
mod result;
mod sandbox;

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as backend;

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
use unsupported as backend;

pub use apparmor::AppArmorProfile;
pub use error::{Error, Result};
pub use policy::{
    KernelPool, Mount, Network, NetworkAllowlist, Permission, SandboxBuilder, SeccompPolicy, Stdin,
    DEFAULT_HOSTNAME, DEFAULT_OUTPUT_LIMIT, DEFAULT_PATH, DEFAULT_TMP_SIZE, DEFAULT_WORKDIR,
};
pub use presets::Verdict;
pub use probe::{Check, CheckStatus, Probe};
pub use proxy::{NetworkEvent, NetworkLog};
pub use result::{Enforcement, Outcome, RunResult};
pub use sandbox::{Child, ChildStderr, ChildStdout, Command, Sandbox};

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
