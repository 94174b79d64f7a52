//! The one error type of the library.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while building or running a sandbox.
///
/// Every message says what failed, on which path or step, and what to do about it.
///
/// `Debug` shows the kind and that message, so that `fn main() -> Result<(), Box<dyn Error>>`
/// prints the helpful text rather than the fields:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let err = nanobox::Sandbox::builder()
///     .mount("/no/such/dir", "/input", nanobox::Permission::ReadOnly)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.kind(), "mount_source_missing");
/// assert!(format!("{err:?}").starts_with("MountSourceMissing: mount source /no/such/dir does not exist"));
/// # Ok(()) }
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A mount's host path does not exist.
    #[error("mount source {path} does not exist on the host: create it or correct the path")]
    MountSourceMissing {
        /// The host path as given.
        path: PathBuf,
    },
    /// A mount's host path is, or passes through, a symlink (other than the operating system's
    /// own links); nothing was built.
    #[error("mount source {path} passes through the symlink {link} -> {target}: nanobox mounts exactly the path named. Pass the link's target (a path without symlinks) instead, or, if you know where the link came from, mount it with mount_following_symlinks (CLI: --ro-follow/--rw-follow)")]
    SymlinkedMountSource {
        /// The host path as given.
        path: PathBuf,
        /// The symlink met on the way (absolute).
        link: PathBuf,
        /// What the symlink points to, as stored in the link.
        target: PathBuf,
    },
    /// At a run, a mount's host path no longer names the directory (or file) that was opened when
    /// the sandbox was built; nothing was run.
    #[error("mount source {path} (at {sandbox} in the sandbox) no longer names the directory or file held since the sandbox was built: {reason}. Nothing was run; build the sandbox again to mount what the path names now")]
    MountSourceChanged {
        /// The host path as given.
        path: PathBuf,
        /// Where it was to appear in the sandbox.
        sandbox: PathBuf,
        /// What the path is now (removed, renamed, replaced, a symlink).
        reason: String,
    },
    /// A sandbox path (mount target, working directory) is not absolute.
    #[error("sandbox path {path} is relative: paths inside the sandbox must start with '/'")]
    RelativeSandboxPath {
        /// The path as given.
        path: PathBuf,
    },
    /// A sandbox path is malformed ('..' components, NUL bytes, ...).
    #[error("sandbox path {path} is not allowed: {reason}")]
    InvalidSandboxPath {
        /// The path as given.
        path: PathBuf,
        /// Why it was refused.
        reason: String,
    },
    /// A mount targets a path that nanobox provides itself (/, /proc, /dev, /usr, /etc, ...).
    #[error("sandbox path {path} is reserved: nanobox provides it itself ({reason}); mount at another path, e.g. under /mnt or /data")]
    ReservedPath {
        /// The reserved path that was targeted.
        path: PathBuf,
        /// What nanobox puts there.
        reason: &'static str,
    },
    /// Two mounts target the same sandbox path.
    #[error("two mounts target the same sandbox path {path}: keep one of them")]
    DuplicateMount {
        /// The sandbox path targeted twice.
        path: PathBuf,
    },
    /// An option has a value nanobox cannot honour.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The builder method or CLI option.
        option: &'static str,
        /// Why the value was refused.
        reason: String,
    },
    /// nanobox has no backend for this operating system yet.
    #[error("{what} is not supported on this platform: {fix}")]
    Unsupported {
        /// What is missing.
        what: String,
        /// What to do instead.
        fix: String,
    },
    /// The host lacks an isolation feature a run needs; nothing was run.
    #[error("this host cannot provide {missing}: {cause}\nfix: {fix}")]
    HostUnsupported {
        /// The missing feature.
        missing: &'static str,
        /// What the kernel said, and the setting that explains it.
        cause: String,
        /// How to enable it.
        fix: String,
    },
    /// A step of building the sandbox failed; nothing was run.
    #[error("sandbox setup failed at {step}: {source}")]
    Setup {
        /// The step, with its paths.
        step: String,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// The program was not found inside the sandbox.
    #[error("program {program:?} was not found in the sandbox (looked in: {searched}); mount the directory that holds it or give its path inside the sandbox")]
    ProgramNotFound {
        /// The program as given.
        program: String,
        /// The places searched.
        searched: String,
    },
    /// The program exists inside the sandbox but cannot be executed.
    #[error("program {program:?} cannot be executed in the sandbox: {source}")]
    ProgramNotExecutable {
        /// The program as given.
        program: String,
        /// The error from execve.
        #[source]
        source: io::Error,
    },
    /// A config file (or config text) is malformed: an unknown key, a value of the wrong type
    /// or form, a missing file; nothing was built. The message names the file, the line and
    /// column, and for an unknown key the keys allowed there.
    #[error("{}", config_message(path, *line, *column, reason))]
    Config {
        /// The file (empty for text given with [`crate::SandboxBuilder::from_config_str`]).
        path: PathBuf,
        /// The line the problem is on (from 1), where it has one.
        line: Option<usize>,
        /// The column on that line (from 1, in characters), where known.
        column: Option<usize>,
        /// What is wrong, and what is allowed.
        reason: String,
    },
    /// An I/O error in the calling process.
    #[error("{context}: {source}")]
    Io {
        /// What nanobox was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The kind of error, in snake case: `"mount_source_missing"`, `"host_unsupported"`, ... (the
    /// CLI's JSON report and the Python exception classes use the same kinds).
    pub fn kind(&self) -> &'static str {
        self.names().1
    }

    /// The variant's name and its kind.
    fn names(&self) -> (&'static str, &'static str) {
        match self {
            Error::MountSourceMissing { .. } => ("MountSourceMissing", "mount_source_missing"),
            Error::SymlinkedMountSource { .. } => {
                ("SymlinkedMountSource", "symlinked_mount_source")
            }
            Error::MountSourceChanged { .. } => ("MountSourceChanged", "mount_source_changed"),
            Error::RelativeSandboxPath { .. } => ("RelativeSandboxPath", "relative_sandbox_path"),
            Error::InvalidSandboxPath { .. } => ("InvalidSandboxPath", "invalid_sandbox_path"),
            Error::ReservedPath { .. } => ("ReservedPath", "reserved_path"),
            Error::DuplicateMount { .. } => ("DuplicateMount", "duplicate_mount"),
            Error::InvalidOption { .. } => ("InvalidOption", "invalid_option"),
            Error::Unsupported { .. } => ("Unsupported", "unsupported"),
            Error::HostUnsupported { .. } => ("HostUnsupported", "host_unsupported"),
            Error::Setup { .. } => ("Setup", "setup"),
            Error::ProgramNotFound { .. } => ("ProgramNotFound", "program_not_found"),
            Error::ProgramNotExecutable { .. } => {
                ("ProgramNotExecutable", "program_not_executable")
            }
            Error::Config { .. } => ("Config", "config"),
            Error::Io { .. } => ("Io", "io"),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `config file PATH, line L, column C: REASON`, leaving out what is unknown.
fn config_message(
    path: &std::path::Path,
    line: Option<usize>,
    column: Option<usize>,
    reason: &str,
) -> String {
    let mut s = if path.as_os_str().is_empty() {
        "config text".to_string()
    } else {
        format!("config file {}", path.display())
    };
    if let Some(l) = line {
        s.push_str(&format!(", line {l}"));
        if let Some(c) = column {
            s.push_str(&format!(", column {c}"));
        }
    }
    s.push_str(": ");
    s.push_str(reason);
    s
}

/// The kind and the message (the message already carries any underlying error): what a user
/// reads when `main` returns the error.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.names().0, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_the_kind_and_the_message_and_display_the_message() {
        let e = Error::MountSourceMissing {
            path: "/data/input".into(),
        };
        let display = e.to_string();
        assert_eq!(
            display,
            "mount source /data/input does not exist on the host: create it or correct the path"
        );
        assert_eq!(format!("{e:?}"), format!("MountSourceMissing: {display}"));
        assert_eq!(format!("{e:#?}"), format!("MountSourceMissing: {display}"));
        assert!(!format!("{e:?}").contains("path:"), "no field dump");

        let e = Error::Setup {
            step: "mount /proc".into(),
            source: io::Error::other("refused by the kernel"),
        };
        assert_eq!(e.kind(), "setup");
        let debug = format!("{e:?}");
        assert!(debug.starts_with("Setup: sandbox setup failed at mount /proc: "));
        assert_eq!(
            debug,
            "Setup: sandbox setup failed at mount /proc: refused by the kernel"
        );
    }

    #[test]
    fn a_boxed_error_from_main_prints_the_message() {
        // What `fn main() -> Result<(), Box<dyn Error>>` prints: "Error: " and the Debug form.
        let boxed: Box<dyn std::error::Error> = Box::new(Error::DuplicateMount {
            path: "/input".into(),
        });
        assert_eq!(
            format!("Error: {boxed:?}"),
            "Error: DuplicateMount: two mounts target the same sandbox path /input: keep one of them"
        );
    }
}
