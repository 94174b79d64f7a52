//! The platform-neutral policy: what a sandbox may see and do, and the builder that checks it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::{GB, MB};

/// How a host path is visible inside the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum Permission {
    /// The program can read but never modify it.
    ReadOnly,
    /// The program can read and write it; changes reach the host.
    ReadWrite,
}

/// One host path made visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host path as given to the builder.
    pub host: PathBuf,
    /// The host path resolved when the sandbox was built: absolute, without `.`, `..` or any
    /// symlink. Without [`Mount::follow_symlinks`] it is the path named, where only the
    /// operating system's own links (merged-/usr `/bin`, `/lib`, ...; `/var/run`) were replaced by
    /// their targets.
    pub host_canonical: PathBuf,
    /// Where it appears inside the sandbox (absolute, normalised).
    pub sandbox: PathBuf,
    /// Read-only or read-write.
    pub permission: Permission,
    /// Whether the host path is a directory (else a file).
    pub is_dir: bool,
    /// Added with [`SandboxBuilder::mount_following_symlinks`]: symlinks in the host path were
    /// followed when the sandbox was built, instead of being refused.
    pub follow_symlinks: bool,
}

/// What the program reads on its standard input.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Stdin {
    /// Nothing: the program reads end-of-file at once (the default).
    #[default]
    Null,
    /// These bytes, then end-of-file.
    Bytes(Arc<[u8]>),
    /// The contents of this host file, opened by the caller when the run starts.
    File(PathBuf),
    /// This open file descriptor (a pipe or a file; a terminal is refused, since the program could
    /// then drive the caller's terminal with ioctls).
    #[cfg(unix)]
    Fd(Arc<std::os::fd::OwnedFd>),
    /// A pipe the caller writes to through [`crate::Child::stdin`], as `Stdio::piped()`: the
    /// program reads what is written and end-of-file once the caller closes (drops) its end.
    /// [`crate::Command::run`] closes it at once, so the program reads end-of-file.
    Piped,
}

impl Stdin {
    /// Feed these bytes.
    pub fn bytes(data: impl Into<Vec<u8>>) -> Self {
        Stdin::Bytes(Arc::from(data.into()))
    }
    /// Feed this host file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Stdin::File(path.into())
    }
}

impl From<&str> for Stdin {
    fn from(s: &str) -> Self {
        Stdin::bytes(s.as_bytes())
    }
}
impl From<String> for Stdin {
    fn from(s: String) -> Self {
        Stdin::bytes(s.into_bytes())
    }
}
impl From<Vec<u8>> for Stdin {
    fn from(v: Vec<u8>) -> Self {
        Stdin::bytes(v)
    }
}
impl From<&[u8]> for Stdin {
    fn from(v: &[u8]) -> Self {
        Stdin::bytes(v)
    }
}

/// Network access of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Network {
    /// Only a private loopback interface (the default).
    #[default]
    None,
    /// Still only loopback, plus HTTP and HTTPS to the allowed hosts through nanobox's filtering
    /// proxy (see [`SandboxBuilder::allow_network`]).
    Allowlist(NetworkAllowlist),
}

/// What [`Network::Allowlist`] lets through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkAllowlist {
    /// Host patterns: `host`, `*.domain`, `host:port`, an IP literal, or `*`.
    pub patterns: Vec<String>,
    /// Names the proxy resolves to a fixed address (like `curl --resolve`); that address is
    /// allowed for that name even where the address rules would refuse it.
    pub hosts: Vec<(String, std::net::IpAddr)>,
    /// Addresses or CIDR blocks exempt from the address rules (e.g. `10.1.0.0/16`).
    pub addresses: Vec<String>,
    /// An upstream HTTP proxy to chain through (`http://[user:pass@]host:port`); `None` takes
    /// the caller's `HTTPS_PROXY`/`https_proxy` (then `HTTP_PROXY`/`http_proxy`) at `build()`.
    pub upstream: Option<String>,
}

/// The port the filtering proxy listens on inside the sandbox (on its own loopback).
pub const PROXY_PORT: u16 = 3128;

/// The syscall filter of a sandbox: nanobox's default filter, tightened or loosened by name.
///
/// ```
/// use nanobox::{Sandbox, SeccompPolicy};
/// let policy = SeccompPolicy::default().deny(&["socket"]).allow(&["ptrace"]);
/// # let _ = policy;
/// ```
///
/// `deny` makes syscalls return `EPERM` (any syscall the filter knows); `allow` lets through
/// syscalls the default filter refuses outright. Argument checks stay whatever is allowed by name:
/// `ioctl` TIOCSTI, `clone` with namespace flags and foreign socket families remain refused.
/// Syscalls outside Docker's allow-list (e.g. `clone3`) cannot be allowed. A name the filter does
/// not know, or named both ways, makes `build()` fail. The names are the same on every
/// architecture; one that the host's architecture has no syscall for (`open` or `fork` on
/// aarch64, whose programs use `openat` and `clone`) is accepted and changes nothing there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeccompPolicy {
    pub(crate) deny: std::collections::BTreeSet<String>,
    pub(crate) allow: std::collections::BTreeSet<String>,
}

impl SeccompPolicy {
    /// Refuse these syscalls too (with `EPERM`).
    #[must_use]
    pub fn deny(mut self, names: &[&str]) -> Self {
        self.deny.extend(names.iter().map(|n| n.to_string()));
        self
    }
    /// Allow these syscalls that the default filter refuses.
    #[must_use]
    pub fn allow(mut self, names: &[&str]) -> Self {
        self.allow.extend(names.iter().map(|n| n.to_string()));
        self
    }
}

/// A pool the kernel keeps per user (or for the whole host) rather than per sandbox, which a
/// program could otherwise drain for every other process of its user. Each is bounded per
/// sandbox by default; [`SandboxBuilder::kernel_pool_limit`] sets another bound.
///
/// The default bound is an eighth of what the host allows the caller's user: up to eight
/// sandboxes of one caller can hold their whole share at once and the caller keeps the rest.
/// [platform-linux.md, "Shared kernel pools"](https://github.com/nanobox-sandbox/nanobox/blob/main/docs/platform-linux.md#shared-kernel-pools) lists every pool, how each is bounded, and
/// what cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KernelPool {
    /// inotify instances (`inotify_init`); the host's per-user `fs.inotify.max_user_instances`.
    InotifyInstances,
    /// inotify watches (`inotify_add_watch`); the host's `fs.inotify.max_user_watches`.
    InotifyWatches,
    /// Queued signals (`sigqueue`, real-time signals, POSIX timers); `RLIMIT_SIGPENDING`.
    PendingSignals,
    /// Bytes of POSIX message queues (`mq_open`); `RLIMIT_MSGQUEUE`.
    MessageQueueBytes,
    /// Bytes of locked memory per process (`mlock`, `SHM_LOCK`); `RLIMIT_MEMLOCK`.
    LockedMemoryBytes,
    /// Pseudo-terminals (`/dev/ptmx`); the host's `kernel.pty.max` less `kernel.pty.reserve`.
    Ptys,
}

impl KernelPool {
    /// Every pool, in a fixed order.
    pub const ALL: [KernelPool; 6] = [
        KernelPool::InotifyInstances,
        KernelPool::InotifyWatches,
        KernelPool::PendingSignals,
        KernelPool::MessageQueueBytes,
        KernelPool::LockedMemoryBytes,
        KernelPool::Ptys,
    ];

    /// The pool's name in the CLI (`--pool-limit NAME=N`), JSON and Python.
    pub fn name(self) -> &'static str {
        match self {
            KernelPool::InotifyInstances => "inotify_instances",
            KernelPool::InotifyWatches => "inotify_watches",
            KernelPool::PendingSignals => "pending_signals",
            KernelPool::MessageQueueBytes => "mqueue_bytes",
            KernelPool::LockedMemoryBytes => "locked_memory_bytes",
            KernelPool::Ptys => "ptys",
        }
    }

    /// The pool named `name` (see [`KernelPool::name`]); `-` may stand for `_`.
    pub fn from_name(name: &str) -> Option<KernelPool> {
        let n = name.replace('-', "_");
        KernelPool::ALL.into_iter().find(|p| p.name() == n)
    }
}

/// Default cap on captured stdout and on captured stderr, each.
pub const DEFAULT_OUTPUT_LIMIT: u64 = 64 * MB;
/// Default size bound of the private /tmp.
pub const DEFAULT_TMP_SIZE: u64 = 256 * MB;
/// Default hostname inside the sandbox.
pub const DEFAULT_HOSTNAME: &str = "nanobox";
/// Default PATH inside the sandbox.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
/// Default working directory inside the sandbox.
pub const DEFAULT_WORKDIR: &str = "/tmp";

/// Sandbox paths nanobox provides itself; a mount may not target them or anything below them.
pub(crate) const RESERVED: &[(&str, &str)] = &[
    ("/proc", "the sandbox's own /proc"),
    ("/dev", "a minimal /dev"),
    ("/usr", "the host's system files, read-only"),
    ("/bin", "the host's system files, read-only"),
    ("/sbin", "the host's system files, read-only"),
    ("/lib", "the host's system files, read-only"),
    ("/lib32", "the host's system files, read-only"),
    ("/lib64", "the host's system files, read-only"),
    ("/libx32", "the host's system files, read-only"),
    ("/etc", "a safe read-only /etc"),
];

/// macOS paths a read-write mount may not be, lie in or contain: the operating system's own
/// files and configuration. (`/` is refused for any permission: it would be the whole disk.)
/// Read-only mounts of them are accepted; the profile lets every run read the system anyway.
pub(crate) const MACOS_RESERVED_RW: &[(&str, &str)] = &[
    ("/System", "the operating system"),
    ("/usr", "the system's programs and libraries"),
    ("/bin", "the system's programs"),
    ("/sbin", "the system's programs"),
    ("/Library", "the system-wide configuration and software"),
    ("/private/etc", "the system configuration"),
    ("/private/var/db", "the system databases"),
];

/// The operating systems nanobox validates and explains policies for.
///
/// [`SandboxBuilder::build`] validates for the platform it runs on;
/// [`SandboxBuilder::explain`] takes any of them.
///
/// ```
/// use nanobox::Platform;
/// assert_eq!("macos".parse::<Platform>(), Ok(Platform::MacOs));
/// assert_eq!(Platform::Windows.name(), "windows");
/// # #[cfg(target_os = "linux")]
/// assert_eq!(Platform::current(), Some(Platform::Linux));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Platform {
    /// Linux: namespaces, cgroups, seccomp and Landlock.
    Linux,
    /// macOS: `sandbox-exec` with a generated Seatbelt profile.
    MacOs,
    /// Windows: a Job Object and a restricted token (planned).
    Windows,
}

impl Platform {
    /// Every platform, in a fixed order.
    pub const ALL: [Platform; 3] = [Platform::Linux, Platform::MacOs, Platform::Windows];

    /// The platform this build runs on, or `None` on an operating system nanobox has no
    /// backend or plan for.
    pub fn current() -> Option<Platform> {
        if cfg!(target_os = "linux") {
            Some(Platform::Linux)
        } else if cfg!(target_os = "macos") {
            Some(Platform::MacOs)
        } else if cfg!(windows) {
            Some(Platform::Windows)
        } else {
            None
        }
    }

    /// The platform `build()` validates for: this one, with Linux's rules on any other system.
    pub(crate) fn host() -> Platform {
        Platform::current().unwrap_or(Platform::Linux)
    }

    /// The name the CLI's `--platform` and the JSON use: `linux`, `macos`, `windows`.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::MacOs => "macos",
            Platform::Windows => "windows",
        }
    }

    /// The name in prose: `Linux`, `macOS`, `Windows`.
    pub(crate) fn display_name(self) -> &'static str {
        match self {
            Platform::Linux => "Linux",
            Platform::MacOs => "macOS",
            Platform::Windows => "Windows",
        }
    }

    /// Why a mount cannot appear at another path there.
    fn no_remap_reason(self) -> &'static str {
        match self {
            Platform::MacOs => {
                "a Seatbelt profile only allows or denies paths, and showing a directory \
                 elsewhere would need a mount, which needs root"
            }
            _ => "a restricted token only allows or denies paths; nothing there moves them",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    /// `linux`, `macos` (also `darwin`, `mac`) or `windows` (also `win`), any case.
    fn from_str(s: &str) -> std::result::Result<Platform, String> {
        match s.to_ascii_lowercase().as_str() {
            "linux" => Ok(Platform::Linux),
            "macos" | "darwin" | "mac" | "osx" => Ok(Platform::MacOs),
            "windows" | "win" => Ok(Platform::Windows),
            _ => Err(format!(
                "unknown platform {s:?}: expected linux, macos or windows"
            )),
        }
    }
}

/// A preset's directory: where it appears depends on the platform (see [`Role::path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Role {
    Workspace,
    Submission,
    Input,
    Output,
}

impl Role {
    /// The fixed sandbox path on Linux (elsewhere the directory is at its own host path).
    pub(crate) fn path(self) -> &'static str {
        match self {
            Role::Workspace => "/workspace",
            Role::Submission => "/submission",
            Role::Input => "/input",
            Role::Output => "/output",
        }
    }

    /// The variable that names where it is, on every platform.
    pub(crate) fn var(self) -> &'static str {
        match self {
            Role::Workspace => "NANOBOX_WORKSPACE",
            Role::Submission => "NANOBOX_SUBMISSION",
            Role::Input => "NANOBOX_INPUT",
            Role::Output => "NANOBOX_OUTPUT",
        }
    }
}

/// Where a builder's mount goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A sandbox path given by the caller.
    Path(PathBuf),
    /// A preset's directory.
    Role(Role),
}

/// One mount as the builder holds it, resolved at validation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BuilderMount {
    host: PathBuf,
    target: Target,
    permission: Permission,
    /// Whether symlinks in the host path may be followed.
    follow_symlinks: bool,
}

/// The working directory as the builder holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum WorkDir {
    Path(PathBuf),
    /// The sandbox path of a preset's directory.
    Role(Role),
}

/// What validation needs to know about host paths.
pub(crate) trait PathResolver {
    /// A mount source's [`Mount::host_canonical`] and whether it is a directory; without
    /// `follow_symlinks` a symlink on the way (but the system's own) is refused.
    fn resolve(&self, host: &Path, follow_symlinks: bool) -> Result<(PathBuf, bool)>;
    /// Whether `path` is an existing directory (`is_dir`) or file, and no symlink: where a mount
    /// nested in another mount's host directory lands.
    fn is_mountpoint(&self, path: &Path, is_dir: bool) -> bool;
}

/// The host's file system: what `build()` uses.
pub(crate) struct RealPaths;

impl PathResolver for RealPaths {
    fn resolve(&self, host: &Path, follow_symlinks: bool) -> Result<(PathBuf, bool)> {
        resolve_mount_source(host, follow_symlinks).map(|(p, m)| (p, m.is_dir()))
    }

    fn is_mountpoint(&self, path: &Path, is_dir: bool) -> bool {
        std::fs::symlink_metadata(path)
            .map(|md| md.is_dir() == is_dir && !md.file_type().is_symlink())
            .unwrap_or(false)
    }
}

/// A stand-in for a foreign platform's file system, which looks at no host path: every path is
/// an existing directory, resolved lexically (`.` and `..`, a relative path from the caller's
/// working directory) with that platform's system links replaced (macOS: `/tmp`, `/var` and
/// `/etc` into `/private`; Linux: the merged-/usr links).
pub(crate) struct LexicalPaths(pub Platform);

impl PathResolver for LexicalPaths {
    fn resolve(&self, host: &Path, _follow_symlinks: bool) -> Result<(PathBuf, bool)> {
        if host.as_os_str().is_empty() {
            return Err(Error::MountSourceMissing {
                path: host.to_path_buf(),
            });
        }
        let absolute = if host.has_root() {
            host.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| {
                    Error::io(
                        format!(
                            "reading the working directory to resolve the relative mount \
                             source {}",
                            host.display()
                        ),
                        e,
                    )
                })?
                .join(host)
        };
        let canonical = match self.0 {
            Platform::MacOs => crate::seatbelt::canonical(&absolute)?,
            Platform::Linux => lexical_canonical(&absolute, LINUX_SYSTEM_LINKS),
            Platform::Windows => lexical_canonical(&absolute, &[]),
        };
        Ok((canonical, true))
    }

    fn is_mountpoint(&self, _path: &Path, _is_dir: bool) -> bool {
        true
    }
}

/// `path` with `.` and `..` resolved by name and the links of `table` replaced by their
/// targets, looking at no file.
pub(crate) fn lexical_canonical(path: &Path, table: &[SystemLink]) -> PathBuf {
    let mut out = PathBuf::from("/");
    let mut todo = parts(path);
    todo.reverse();
    let mut replaced = 0;
    while let Some(part) = todo.pop() {
        match part {
            Part::Prefix(_) | Part::Root => out = PathBuf::from("/"),
            Part::Up => {
                out.pop();
            }
            Part::Name(n) => {
                out.push(n);
                if replaced < 8 {
                    if let Some((_, targets)) = table.iter().find(|(l, _)| Path::new(l) == out) {
                        replaced += 1;
                        out.pop();
                        let t = targets
                            .iter()
                            .find(|t| t.starts_with('/'))
                            .unwrap_or(&targets[0]);
                        todo.extend(parts(Path::new(t)).into_iter().rev());
                    }
                }
            }
        }
    }
    out
}

/// Linux: `/` and the paths nanobox provides itself are refused as mount targets.
fn check_linux_reserved(target: &Path) -> Result<()> {
    if target == Path::new("/") {
        return Err(Error::ReservedPath {
            path: target.to_path_buf(),
            reason: "the sandbox's own root",
        });
    }
    if let Some((_, reason)) = RESERVED
        .iter()
        .find(|(p, _)| target.starts_with(Path::new(p)))
    {
        return Err(Error::ReservedPath {
            path: target.to_path_buf(),
            reason,
        });
    }
    Ok(())
}

/// macOS: `/` is refused, and read-write mounts of the system's files ([`MACOS_RESERVED_RW`]).
fn check_macos_reserved(path: &Path, permission: Permission) -> Result<()> {
    let refuse = |reason: String| {
        Err(Error::InvalidSandboxPath {
            path: path.to_path_buf(),
            reason,
        })
    };
    if path == Path::new("/") {
        return refuse(
            "on macOS a mount is its host path, and / would give the program the whole disk; \
             mount the directories it needs"
                .into(),
        );
    }
    if permission == Permission::ReadWrite {
        if let Some((p, what)) = MACOS_RESERVED_RW
            .iter()
            .find(|(p, _)| path.starts_with(p) || Path::new(p).starts_with(path))
        {
            return refuse(format!(
                "on macOS a mount is its host path, and a read-write mount there would let the \
                 program modify {p} ({what}); mount it read-only, or mount a directory of your own"
            ));
        }
    }
    Ok(())
}

/// The validated policy a [`crate::Sandbox`] runs with. Immutable once built.
#[derive(Debug, Clone)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct Policy {
    /// The platform the policy was validated for.
    pub platform: Platform,
    pub mounts: Vec<Mount>,
    /// The working directory: as set, or [`DEFAULT_WORKDIR`] when not set.
    pub working_dir: PathBuf,
    /// Whether the working directory was set (by `working_dir` or a preset). Where it was not,
    /// the macOS backend uses the run's private temporary directory instead of `working_dir`
    /// (and `PWD`, which names `working_dir`; and `HOME` where it is the default `/tmp`), as
    /// [`crate::SandboxBuilder::explain`] shows it.
    pub working_dir_explicit: bool,
    /// The program's whole environment, in order.
    pub env: Vec<(String, String)>,
    pub stdin: Stdin,
    pub wall_time_limit: Option<Duration>,
    pub output_limit: u64,
    pub hostname: String,
    pub tmp_size: u64,
    #[allow(dead_code)] // one variant today; the allowlist proxy reads it
    pub network: Network,
    pub seccomp: SeccompPolicy,
    /// Run with Landlock + seccomp alone where user namespaces are unavailable.
    pub allow_degraded_isolation: bool,
    pub limits: ResourceLimits,
    /// Accept rlimits where no cgroup can enforce a limit.
    pub allow_degraded_limits: bool,
    /// Bounds set for kernel pools (the others keep their default share).
    pub pools: BTreeMap<KernelPool, u64>,
    /// List the operations the platform's sandbox denied in each result (macOS).
    #[cfg_attr(not(target_os = "macos"), allow(dead_code))]
    pub report_denials: bool,
}

fn check_output_limit(bytes: u64) -> Result<u64> {
    if bytes == 0 {
        return Err(Error::InvalidOption {
            option: "output_limit",
            reason: "must be at least 1 byte".into(),
        });
    }
    Ok(bytes)
}

/// A wall-clock limit, of the builder (`wall_time_limit`) or of one run (`timeout`).
fn check_wall_limit(option: &'static str, d: Duration) -> Result<Duration> {
    if d.is_zero() {
        return Err(Error::InvalidOption {
            option,
            reason: "must be longer than zero".into(),
        });
    }
    Ok(d)
}

fn check_env_name(k: &str) -> Result<()> {
    if k.is_empty() || k.contains('=') || k.contains('\0') {
        return Err(Error::InvalidOption {
            option: "env",
            reason: format!("variable name {k:?} is empty or contains '=' or NUL"),
        });
    }
    Ok(())
}

fn check_env_value(k: &str, v: &str) -> Result<()> {
    if v.contains('\0') {
        return Err(Error::InvalidOption {
            option: "env",
            reason: format!("the value of {k} contains a NUL byte"),
        });
    }
    Ok(())
}

/// What one run changes of its sandbox's policy ([`crate::Command`]'s options). Only what
/// cannot weaken the sandbox can be changed per run: the wall-clock limit, the environment, the
/// working directory, stdin and the output cap. Mounts, network, resource limits, the syscall
/// filter and every opt-in stay the sandbox's.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallOptions {
    pub timeout: Option<Duration>,
    pub env_clear: bool,
    /// In order: a value sets the variable, None removes it.
    pub env: Vec<(String, Option<String>)>,
    pub current_dir: Option<PathBuf>,
    pub output_limit: Option<u64>,
    /// No wall-clock limit for this run (a persistent shell, whose commands have their own).
    pub no_wall_limit: bool,
}

impl CallOptions {
    /// Whether the run's environment or working directory differ from the sandbox's.
    pub(crate) fn changes_env_or_dir(&self) -> bool {
        self.env_clear || !self.env.is_empty() || self.current_dir.is_some()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.timeout.is_none()
            && !self.env_clear
            && self.env.is_empty()
            && self.current_dir.is_none()
            && self.output_limit.is_none()
            && !self.no_wall_limit
    }
}

impl Policy {
    /// This policy with one run's changes, validated as the builder validates its own options.
    pub(crate) fn for_call(&self, call: &CallOptions) -> Result<Policy> {
        let mut p = self.clone();
        if call.no_wall_limit {
            p.wall_time_limit = None;
        }
        if let Some(t) = call.timeout {
            p.wall_time_limit = Some(check_wall_limit("timeout", t)?);
        }
        if let Some(n) = call.output_limit {
            p.output_limit = check_output_limit(n)?;
        }
        let mut env: Vec<(String, String)> = if call.env_clear {
            Vec::new()
        } else {
            std::mem::take(&mut p.env)
        };
        let set = |env: &mut Vec<(String, String)>, k: &str, v: Option<&str>| {
            let at = env.iter().position(|(name, _)| name == k);
            match (at, v) {
                (Some(i), Some(v)) => env[i].1 = v.to_string(),
                (None, Some(v)) => env.push((k.to_string(), v.to_string())),
                (Some(i), None) => {
                    env.remove(i);
                }
                (None, None) => {}
            }
        };
        if let Some(d) = &call.current_dir {
            let d = normalize_sandbox_path(d)?;
            set(&mut env, "PWD", Some(&d.to_string_lossy()));
            p.working_dir = d;
            p.working_dir_explicit = true;
        }
        for (k, v) in &call.env {
            check_env_name(k)?;
            if let Some(v) = v {
                check_env_value(k, v)?;
            }
            set(&mut env, k, v.as_deref());
        }
        p.env = env;
        Ok(p)
    }
}

/// The resource limits a policy asks for (none by default).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) struct ResourceLimits {
    pub memory: Option<u64>,
    pub cpu: Option<f64>,
    pub cpu_time: Option<Duration>,
    pub processes: Option<u64>,
    pub file_size: Option<u64>,
}

/// Builds a [`crate::Sandbox`]. Every option that is accepted is enforced; [`SandboxBuilder::build`]
/// refuses what cannot be.
///
/// ```
/// use nanobox::{Outcome, Permission, Sandbox, MB};
/// use std::time::Duration;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("nanobox-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join("data.txt"), "42\n")?;
/// let sandbox = Sandbox::builder()
///     .mount(&dir, "/input", Permission::ReadOnly)
///     .memory_limit(64 * MB)
///     .wall_time_limit(Duration::from_secs(1))
///     .no_network()
///     .build()?;
/// assert_eq!(sandbox.run("cat", &["/input/data.txt"])?.stdout, "42\n");
/// // Read-only means read-only.
/// assert!(!sandbox.run("touch", &["/input/new"])?.success());
/// // The wall-time limit ends the run and everything it started.
/// let slow = sandbox.run("sleep", &["10"])?;
/// assert_eq!(slow.outcome, Outcome::WallTimeLimit);
/// // What cannot be honoured is refused at build time, not ignored.
/// assert!(Sandbox::builder().mount("relative", "/x", Permission::ReadOnly).build().is_err());
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct SandboxBuilder {
    mounts: Vec<BuilderMount>,
    working_dir: Option<WorkDir>,
    env: BTreeMap<String, String>,
    /// Variables whose value is a preset directory's sandbox path, known once the platform is.
    role_env: BTreeMap<String, Role>,
    stdin: Stdin,
    wall_time_limit: Option<Duration>,
    output_limit: u64,
    hostname: String,
    tmp_size: u64,
    network: Network,
    seccomp: SeccompPolicy,
    allow_degraded_isolation: bool,
    limits: ResourceLimits,
    allow_degraded_limits: bool,
    pools: BTreeMap<KernelPool, u64>,
    report_denials: bool,
    /// `tmp_size` was asked for (not only a preset's value).
    tmp_size_set: bool,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            mounts: Vec::new(),
            working_dir: None,
            env: BTreeMap::new(),
            role_env: BTreeMap::new(),
            stdin: Stdin::Null,
            wall_time_limit: None,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            hostname: DEFAULT_HOSTNAME.to_string(),
            tmp_size: DEFAULT_TMP_SIZE,
            network: Network::None,
            seccomp: SeccompPolicy::default(),
            allow_degraded_isolation: false,
            limits: ResourceLimits::default(),
            allow_degraded_limits: false,
            pools: BTreeMap::new(),
            report_denials: false,
            tmp_size_set: false,
        }
    }
}

impl SandboxBuilder {
    /// Make the host path `host` visible at `sandbox` (an absolute path inside the sandbox).
    ///
    /// The mount is exactly the path named: a relative `host` is taken from the caller's working
    /// directory, and if `host` is or passes through a symlink, `build()` fails with
    /// [`Error::SymlinkedMountSource`], naming the link and its target (a link that an earlier run,
    /// an archive or another user planted would otherwise redirect the mount anywhere). Only the
    /// operating system's own links are passed through: on Linux the merged-/usr links (`/bin`,
    /// `/sbin`, `/lib`, `/lib32`, `/lib64`, `/libx32`), `/var/run` and `/var/lock`; on macOS
    /// `/tmp`, `/var` and `/etc`; each only where it is owned by root and points where the system
    /// puts it. To follow links you trust, use [`SandboxBuilder::mount_following_symlinks`].
    ///
    /// The directory (or file) is opened when the sandbox is built, and every run mounts that one;
    /// a run fails with [`Error::MountSourceChanged`] if the path no longer names it.
    pub fn mount(
        mut self,
        host: impl AsRef<Path>,
        sandbox: impl AsRef<Path>,
        permission: Permission,
    ) -> Self {
        self.mounts.push(BuilderMount {
            host: host.as_ref().to_path_buf(),
            target: Target::Path(sandbox.as_ref().to_path_buf()),
            permission,
            follow_symlinks: false,
        });
        self
    }

    /// [`SandboxBuilder::mount`], but symlinks in `host` are followed, once, when the sandbox is
    /// built: the mount is whatever the path resolves to then. Only for links whose origin you
    /// know (not ones in a directory an earlier run, an archive or another user could write).
    pub fn mount_following_symlinks(
        mut self,
        host: impl AsRef<Path>,
        sandbox: impl AsRef<Path>,
        permission: Permission,
    ) -> Self {
        self.mounts.push(BuilderMount {
            host: host.as_ref().to_path_buf(),
            target: Target::Path(sandbox.as_ref().to_path_buf()),
            permission,
            follow_symlinks: true,
        });
        self
    }

    /// The program's working directory inside the sandbox (default `/tmp` on Linux; on macOS the
    /// run's private temporary directory). `PWD` is set to it.
    pub fn working_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.working_dir = Some(WorkDir::Path(dir.as_ref().to_path_buf()));
        self
    }

    /// A preset's directory: at `role`'s fixed path on Linux, at its own host path elsewhere.
    pub(crate) fn mount_role(
        mut self,
        host: impl AsRef<Path>,
        role: Role,
        permission: Permission,
    ) -> Self {
        self.mounts.push(BuilderMount {
            host: host.as_ref().to_path_buf(),
            target: Target::Role(role),
            permission,
            follow_symlinks: false,
        });
        self
    }

    /// The working directory is the sandbox path of `role`'s mount.
    pub(crate) fn working_dir_role(mut self, role: Role) -> Self {
        self.working_dir = Some(WorkDir::Role(role));
        self
    }

    /// The variable `key` names the sandbox path of `role`'s mount (a later `env` replaces it).
    pub(crate) fn env_role(mut self, key: impl Into<String>, role: Role) -> Self {
        let key = key.into();
        self.env.remove(&key);
        self.role_env.insert(key, role);
        self
    }

    /// Set one environment variable. The environment starts minimal (`PATH`, `HOME`, `LANG`):
    /// nothing of the caller's environment reaches the program.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.role_env.remove(&key);
        self.env.insert(key, value.into());
        self
    }

    /// Set several environment variables.
    pub fn envs<K: Into<String>, V: Into<String>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// What the program reads on stdin (default: nothing).
    pub fn stdin(mut self, stdin: impl Into<Stdin>) -> Self {
        self.stdin = stdin.into();
        self
    }

    /// End the run, and every process in it, after this much wall-clock time
    /// ([`crate::Outcome::WallTimeLimit`]). Default: no limit.
    pub fn wall_time_limit(mut self, limit: Duration) -> Self {
        self.wall_time_limit = Some(limit);
        self
    }

    /// Cap on captured stdout and on captured stderr, each, in bytes (default 64 MiB). Past the cap
    /// the run is stopped ([`crate::Outcome::OutputLimit`]) and what came before it is kept.
    pub fn output_limit(mut self, bytes: u64) -> Self {
        self.output_limit = bytes;
        self
    }

    /// Memory for the whole sandbox, in bytes: every process in it, and the pages of its `/tmp` and
    /// `/dev/shm`, with no swap. Past it the kernel's OOM killer ends a process of the sandbox;
    /// the result is [`crate::Outcome::MemoryLimit`] (decided from the cgroup's OOM-kill counter)
    /// unless the program still exited with 0. At least 1 MiB. Needs a cgroup (v2 or v1); see
    /// [`SandboxBuilder::allow_degraded_limits`] for hosts without one.
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.limits.memory = Some(bytes);
        self
    }

    /// CPU bandwidth for the whole sandbox, in cores (`0.5` = half of one CPU, `2.0` = two),
    /// enforced by the cgroup CPU controller over 100 ms periods. Without a cgroup `build()`
    /// refuses it; with `allow_degraded_limits` the program is pinned to the first whole CPUs
    /// instead (`0.5` becomes one CPU).
    pub fn cpu_limit(mut self, cores: f64) -> Self {
        self.limits.cpu = Some(cores);
        self
    }

    /// CPU time (user + system) for the whole sandbox: all its processes together, so that
    /// forking workers does not multiply the budget. The sandbox's init reads the cgroup's usage
    /// and ends the run when it is spent ([`crate::Outcome::CpuTimeLimit`]); `RLIMIT_CPU` also
    /// stops each single process (`SIGXCPU`, then `SIGKILL` a second later).
    pub fn cpu_time_limit(mut self, limit: Duration) -> Self {
        self.limits.cpu_time = Some(limit);
        self
    }

    /// Live processes plus threads in the sandbox (the sandbox's own init not counted): `fork`
    /// and `clone` fail with `EAGAIN` past it. Needs a cgroup (see `allow_degraded_limits`).
    pub fn process_limit(mut self, n: u64) -> Self {
        self.limits.processes = Some(n);
        self
    }

    /// The largest file a program may write, in bytes (`RLIMIT_FSIZE`): a write past it fails
    /// with `EFBIG` (the process gets `SIGXFSZ`, which kills it unless it handles the signal).
    pub fn file_size_limit(mut self, bytes: u64) -> Self {
        self.limits.file_size = Some(bytes);
        self
    }

    /// Where no cgroup is writable (an unprivileged user without a delegated cgroup), enforce
    /// the memory, process and CPU-time limits with per-process rlimits (`RLIMIT_AS`,
    /// `RLIMIT_NPROC`, `RLIMIT_CPU`) instead of refusing to build. Weaker: `RLIMIT_AS` counts
    /// address space, not memory, per process, and not `/tmp`; the CPU-time limit then applies to
    /// each process alone; a CPU limit pins the program to whole CPUs. Every result says which
    /// mechanism enforced each limit
    /// ([`crate::RunResult::limits`]). Under `RLIMIT_AS` a program fails its own way (Python's
    /// `MemoryError`, a null pointer); a run that fails after the limit refused one of its
    /// requests is [`crate::Outcome::MemoryLimit`] (a seccomp observer in the caller sees the
    /// refusals, on Linux 5.5+; `limits` says so). Without this, such a host gets
    /// `HostUnsupported`.
    pub fn allow_degraded_limits(mut self) -> Self {
        self.allow_degraded_limits = true;
        self
    }

    /// List in each [`crate::RunResult::denials`] the operations the platform's sandbox denied
    /// the run, with their paths. On macOS the denials come from the unified log (every deny
    /// rule of a run's profile carries the run's tag, and `log show` is read for that tag once
    /// the run has ended: about 0.3 s more per run). On Linux a denial is the error a system
    /// call returns to the program (`EACCES`, `EPERM`), which nothing logs: the list stays
    /// empty there.
    pub fn report_denials(mut self) -> Self {
        self.report_denials = true;
        self
    }

    /// Bound the sandbox's share of a kernel pool at `n` (instead of the default eighth of the
    /// caller's allowance); see [`KernelPool`]. A bound above what the host allows the caller
    /// makes `build()` fail; `0` refuses the pool to the program.
    pub fn kernel_pool_limit(mut self, pool: KernelPool, n: u64) -> Self {
        self.pools.insert(pool, n);
        self
    }

    /// No network: only a private loopback interface (the default).
    pub fn no_network(mut self) -> Self {
        self.network = Network::None;
        self
    }

    fn allowlist(&mut self) -> &mut NetworkAllowlist {
        if !matches!(self.network, Network::Allowlist(_)) {
            self.network = Network::Allowlist(NetworkAllowlist::default());
        }
        match &mut self.network {
            Network::Allowlist(a) => a,
            Network::None => unreachable!("set above"),
        }
    }

    /// Allow HTTP and HTTPS to hosts matching `patterns` (repeatable; patterns add up). The
    /// sandbox keeps its own network namespace with only loopback; nanobox serves a filtering
    /// proxy on its `127.0.0.1:3128` from the calling process and sets `HTTP_PROXY`,
    /// `HTTPS_PROXY` and the other variables clients read. Patterns: `example.com` exactly;
    /// `*.example.com` any subdomain at any depth, not `example.com` itself; case-insensitive,
    /// trailing dot ignored, IDNs compared in punycode; ports 80 and 443 unless the pattern names
    /// one (`host:8443`); an IP literal only if listed; `*` alone any host. Whatever the name,
    /// the proxy refuses to connect to this host's own addresses (any address the caller's network
    /// namespace delivers locally, checked at each request) and to every block of the IANA
    /// special-purpose registries that is not globally reachable (loopback, private, link-local and
    /// cloud metadata, CGNAT, documentation, benchmarking, ...; see [`crate::proxy::classify`])
    /// unless allowed with [`SandboxBuilder::allow_address`] or [`SandboxBuilder::map_host`]. A
    /// tunnel carries TLS, or one HTTP request for its own host. Every request is in
    /// [`crate::RunResult::network`]. An invalid pattern makes `build()` fail.
    pub fn allow_network<S: AsRef<str>>(mut self, patterns: &[S]) -> Self {
        let a = self.allowlist();
        a.patterns
            .extend(patterns.iter().map(|p| p.as_ref().to_string()));
        self
    }

    /// Make the proxy resolve `name` to `addr` (like `curl --resolve`), and allow `addr` for that
    /// name alone, also where the address rules would refuse it. The name must still match an
    /// `allow_network` pattern. For reaching a local service, and for tests.
    pub fn map_host(mut self, name: impl Into<String>, addr: std::net::IpAddr) -> Self {
        let a = self.allowlist();
        a.hosts.push((name.into(), addr));
        self
    }

    /// Exempt an address or CIDR block (`10.1.2.3`, `10.1.0.0/16`, `fd00::/8`) from the proxy's
    /// address rules, for hosts allowed by pattern.
    pub fn allow_address(mut self, cidr: impl Into<String>) -> Self {
        let a = self.allowlist();
        a.addresses.push(cidr.into());
        self
    }

    /// Chain the filtering proxy through an upstream HTTP proxy (`http://[user:pass@]host:port`).
    /// Default: the caller's `HTTPS_PROXY` (or `https_proxy`, `HTTP_PROXY`, `http_proxy`) when set.
    pub fn upstream_proxy(mut self, url: impl Into<String>) -> Self {
        let a = self.allowlist();
        a.upstream = Some(url.into());
        self
    }

    /// The hostname inside the sandbox (default `nanobox`).
    pub fn hostname(mut self, name: impl Into<String>) -> Self {
        self.hostname = name.into();
        self
    }

    /// Size bound of the private `/tmp` tmpfs in bytes (default 256 MiB). Linux only: macOS and
    /// Windows refuse it at `build()` (a run's directory there is on the host's disk).
    pub fn tmp_size(mut self, bytes: u64) -> Self {
        self.tmp_size = bytes;
        self.tmp_size_set = true;
        self
    }

    /// A preset's `/tmp` size: applied on Linux, and no request elsewhere (where the presets
    /// still build).
    pub(crate) fn preset_tmp_size(mut self, bytes: u64) -> Self {
        self.tmp_size = bytes;
        self
    }

    /// The syscall filter (default: [`SeccompPolicy::default()`], nanobox's default filter).
    pub fn seccomp(mut self, policy: SeccompPolicy) -> Self {
        self.seccomp = policy;
        self
    }

    /// Where the host refuses user namespaces (a container's seccomp profile,
    /// `user.max_user_namespaces=0`, AppArmor), or a new /proc in them (a container's masked
    /// /proc, a filter that refuses `mount`), run anyway with Landlock + seccomp alone instead
    /// of failing at `build()`. A read-only /proc is refused all the same. Weaker, and said so: every result lists what is missing in
    /// [`crate::RunResult::degraded`]. Needs Landlock ABI 6 (Linux 6.12); mounts must keep their
    /// host path; the hostname cannot be set. On a kernel without Landlock (but with user
    /// namespaces) it lets runs go ahead with the namespaces alone, and `degraded` says "no
    /// Landlock layer". On a host with both this changes nothing.
    /// See [platform-linux.md](https://github.com/nanobox-sandbox/nanobox/blob/main/docs/platform-linux.md),
    /// "Degraded mode", "Inside containers" and "The Landlock layer".
    pub fn allow_degraded_isolation(mut self) -> Self {
        self.allow_degraded_isolation = true;
        self
    }

    /// Check every option and prepare the sandbox.
    pub fn build(self) -> Result<crate::Sandbox> {
        let policy = self.validate()?;
        crate::Sandbox::from_policy(policy)
    }

    /// The policy for this host's platform, its mount sources resolved on the real file system.
    pub(crate) fn validate(self) -> Result<Policy> {
        self.validate_for(Platform::host(), &RealPaths)
    }

    /// The policy as `platform` would run it, with `resolver` answering what the mount sources
    /// are (the real file system for the host; [`LexicalPaths`] when explaining another
    /// platform, which looks at no host path).
    pub(crate) fn validate_for(
        self,
        platform: Platform,
        resolver: &dyn PathResolver,
    ) -> Result<Policy> {
        let mut mounts: Vec<Mount> = Vec::new();
        // The sandbox path each preset directory got.
        let mut roles: BTreeMap<Role, PathBuf> = BTreeMap::new();
        for bm in self.mounts {
            let BuilderMount {
                host,
                target,
                permission,
                follow_symlinks,
            } = bm;
            let given = match &target {
                Target::Path(p) => Some(normalize_sandbox_path(p)?),
                Target::Role(r) if platform == Platform::Linux => Some(PathBuf::from(r.path())),
                Target::Role(_) => None,
            };
            if platform == Platform::Linux {
                let target = given.as_deref().unwrap_or(Path::new("/"));
                check_linux_reserved(target)?;
                if mounts.iter().any(|m| m.sandbox == target) {
                    return Err(Error::DuplicateMount {
                        path: target.to_path_buf(),
                    });
                }
            }
            let (host_canonical, is_dir) = resolver.resolve(&host, follow_symlinks)?;
            let sandbox = match (platform, given) {
                (Platform::Linux, Some(t)) => t,
                (_, None) => host_canonical.clone(),
                (_, Some(t)) => {
                    let shown = match platform {
                        Platform::MacOs => crate::seatbelt::canonical(&t)?,
                        _ => t.clone(),
                    };
                    if shown != host_canonical {
                        return Err(Error::InvalidSandboxPath {
                            path: t,
                            reason: format!(
                                "{} cannot show the host path {} (resolved: {}) at another path: {}. \
                                 Mount it at its own path ({} -> {}; CLI: --ro/--rw HOST without \
                                 :SANDBOX); the presets do this there",
                                platform.display_name(),
                                host.display(),
                                host_canonical.display(),
                                platform.no_remap_reason(),
                                host_canonical.display(),
                                host_canonical.display()
                            ),
                        });
                    }
                    shown
                }
            };
            if platform == Platform::MacOs {
                check_macos_reserved(&sandbox, permission)?;
            }
            if platform != Platform::Linux && mounts.iter().any(|m| m.sandbox == sandbox) {
                return Err(Error::DuplicateMount { path: sandbox });
            }
            if let Target::Role(r) = target {
                roles.insert(r, sandbox.clone());
            }
            mounts.push(Mount {
                host,
                host_canonical,
                sandbox,
                permission,
                is_dir,
                follow_symlinks,
            });
        }
        // Parents before children, so that a nested mount lands on top of its parent.
        mounts.sort_by_key(|m| m.sandbox.components().count());
        // A mount nested inside another user mount needs its mountpoint to exist in that mount's
        // host directory: nanobox never creates files on the host to make room for a mount. (On
        // macOS and Windows a mount is its own host path, so nothing needs to be made.)
        if platform == Platform::Linux {
            for (i, m) in mounts.iter().enumerate() {
                if let Some(parent) = mounts[..i]
                    .iter()
                    .rev()
                    .find(|p| m.sandbox.starts_with(&p.sandbox))
                {
                    let rel = m
                        .sandbox
                        .strip_prefix(&parent.sandbox)
                        .unwrap_or(Path::new(""));
                    let host_point = parent.host_canonical.join(rel);
                    if !resolver.is_mountpoint(&host_point, m.is_dir) {
                        return Err(Error::InvalidSandboxPath {
                            path: m.sandbox.clone(),
                            reason: format!(
                                "it lies inside the mount of {} and {} is not an existing {} \
                                 there; nanobox does not create mountpoints on the host",
                                parent.host.display(),
                                host_point.display(),
                                if m.is_dir { "directory" } else { "file" }
                            ),
                        });
                    }
                }
            }
        }

        let (working_dir, working_dir_explicit) = match self.working_dir {
            Some(WorkDir::Path(d)) => (normalize_sandbox_path(&d)?, true),
            Some(WorkDir::Role(r)) => match roles.get(&r) {
                Some(p) => (p.clone(), true),
                None => (PathBuf::from(r.path()), true),
            },
            None => (PathBuf::from(DEFAULT_WORKDIR), false),
        };

        let mut env_map: BTreeMap<String, String> = BTreeMap::new();
        env_map.insert("PATH".into(), DEFAULT_PATH.into());
        env_map.insert("HOME".into(), "/tmp".into());
        env_map.insert("LANG".into(), "C.UTF-8".into());
        for (k, r) in &self.role_env {
            let path = roles
                .get(r)
                .cloned()
                .unwrap_or_else(|| PathBuf::from(r.path()));
            env_map.insert(k.clone(), path.to_string_lossy().into_owned());
        }
        for (k, v) in self.env {
            check_env_name(&k)?;
            check_env_value(&k, &v)?;
            env_map.insert(k, v);
        }
        env_map.insert("PWD".into(), working_dir.to_string_lossy().into_owned());
        let mut network = self.network;
        if let Network::Allowlist(a) = &mut network {
            crate::proxy::AllowList::parse(&a.patterns).map_err(|reason| Error::InvalidOption {
                option: "allow_network",
                reason,
            })?;
            for c in &a.addresses {
                crate::proxy::Cidr::parse(c).map_err(|reason| Error::InvalidOption {
                    option: "allow_address",
                    reason,
                })?;
            }
            if a.upstream.is_none() {
                a.upstream = upstream_from_env(|k| std::env::var(k).ok());
            }
            if let Some(u) = &a.upstream {
                crate::proxy::Upstream::parse(u).map_err(|reason| Error::InvalidOption {
                    option: "upstream_proxy",
                    reason,
                })?;
            }
            // What common clients read (curl, pip, requests, urllib, npm, git, Go, reqwest, Node
            // with NODE_USE_ENV_PROXY); these win over the same names set with `env`.
            let url = format!("http://127.0.0.1:{PROXY_PORT}");
            for k in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "http_proxy",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
                "npm_config_proxy",
                "npm_config_https_proxy",
            ] {
                env_map.insert(k.into(), url.clone());
            }
            for k in ["NO_PROXY", "no_proxy"] {
                env_map.insert(k.into(), "localhost,127.0.0.1,::1".into());
            }
            env_map.insert("NODE_USE_ENV_PROXY".into(), "1".into());
        }
        let env = env_map.into_iter().collect();

        // What only Linux's namespaces and filters provide is refused elsewhere, never ignored.
        if platform != Platform::Linux {
            let cannot = |option: &'static str, what: &str| {
                Err(Error::InvalidOption {
                    option,
                    reason: format!(
                        "{} has no {what}; leave it unset there",
                        platform.display_name()
                    ),
                })
            };
            if self.hostname != DEFAULT_HOSTNAME {
                return cannot("hostname", "host name of a run's own (no UTS namespace)");
            }
            if self.tmp_size_set {
                return cannot(
                    "tmp_size",
                    "size-bounded private /tmp (the run's directory is on the host's disk; \
                     file_size_limit bounds each file)",
                );
            }
            if self.seccomp != SeccompPolicy::default() {
                return cannot(
                    "seccomp",
                    "seccomp filter (the profile decides what is allowed)",
                );
            }
            if !self.pools.is_empty() {
                return cannot("kernel_pool_limit", "per-sandbox kernel pool bounds");
            }
        }

        if self.hostname.is_empty()
            || self.hostname.len() > 64
            || self.hostname.contains('\0')
            || self.hostname.contains('/')
        {
            return Err(Error::InvalidOption {
                option: "hostname",
                reason: format!(
                    "{:?} must be 1 to 64 bytes without NUL or '/'",
                    self.hostname
                ),
            });
        }
        check_output_limit(self.output_limit)?;
        if let Some(d) = self.wall_time_limit {
            check_wall_limit("wall_time_limit", d)?;
        }
        if self.tmp_size < 64 * 1024 || self.tmp_size > 64 * GB {
            return Err(Error::InvalidOption {
                option: "tmp_size",
                reason: format!("{} bytes is outside 64 KiB ..= 64 GiB", self.tmp_size),
            });
        }
        let l = &self.limits;
        let bad =
            |option: &'static str, reason: String| Err(Error::InvalidOption { option, reason });
        if l.memory.is_some_and(|m| m < MB) {
            return bad("memory_limit", "must be at least 1 MiB".into());
        }
        if let Some(c) = l.cpu {
            if !(c.is_finite() && (0.01..=4096.0).contains(&c)) {
                return bad(
                    "cpu_limit",
                    format!("{c} is not a number of cores in 0.01 ..= 4096"),
                );
            }
        }
        if l.cpu_time.is_some_and(|d| d.is_zero()) {
            return bad("cpu_time_limit", "must be longer than zero".into());
        }
        if l.processes.is_some_and(|n| n == 0 || n > 4_000_000) {
            return bad("process_limit", "must be 1 ..= 4000000".into());
        }
        if l.file_size == Some(0) {
            return bad("file_size_limit", "must be at least 1 byte".into());
        }
        if let Some(both) = self.seccomp.deny.intersection(&self.seccomp.allow).next() {
            return Err(Error::InvalidOption {
                option: "seccomp",
                reason: format!("{both:?} is both denied and allowed"),
            });
        }
        Ok(Policy {
            platform,
            mounts,
            working_dir,
            working_dir_explicit,
            env,
            stdin: self.stdin,
            wall_time_limit: self.wall_time_limit,
            output_limit: self.output_limit,
            hostname: self.hostname,
            tmp_size: self.tmp_size,
            network,
            seccomp: self.seccomp,
            allow_degraded_isolation: self.allow_degraded_isolation,
            limits: self.limits,
            allow_degraded_limits: self.allow_degraded_limits,
            pools: self.pools,
            report_denials: self.report_denials,
        })
    }
}

/// The upstream proxy the caller's environment names: `HTTPS_PROXY`, then `https_proxy`,
/// `HTTP_PROXY`, `http_proxy`; empty values do not count.
fn upstream_from_env(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
        .iter()
        .find_map(|k| var(k).filter(|v| !v.is_empty()))
}

/// A symlink of the operating system's own layout: its path, and the targets the system gives it.
pub(crate) type SystemLink = (&'static str, &'static [&'static str]);

/// Linux: the merged-/usr links and the /var compatibility links.
#[cfg_attr(not(any(all(unix, not(target_os = "macos")), test)), allow(dead_code))]
pub(crate) const LINUX_SYSTEM_LINKS: &[SystemLink] = &[
    ("/bin", &["usr/bin", "/usr/bin"]),
    ("/sbin", &["usr/sbin", "/usr/sbin"]),
    ("/lib", &["usr/lib", "/usr/lib"]),
    ("/lib32", &["usr/lib32", "/usr/lib32"]),
    ("/lib64", &["usr/lib64", "/usr/lib64"]),
    ("/libx32", &["usr/libx32", "/usr/libx32"]),
    ("/var/run", &["/run", "../run"]),
    ("/var/lock", &["/run/lock", "../run/lock"]),
];

/// macOS: the firmlinks-era links into /private.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) const MACOS_SYSTEM_LINKS: &[SystemLink] = &[
    ("/tmp", &["private/tmp", "/private/tmp"]),
    ("/var", &["private/var", "/private/var"]),
    ("/etc", &["private/etc", "/private/etc"]),
];

/// The links a mount source may pass through on this platform.
#[cfg(target_os = "macos")]
const SYSTEM_LINKS: &[SystemLink] = MACOS_SYSTEM_LINKS;
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_LINKS: &[SystemLink] = LINUX_SYSTEM_LINKS;
#[cfg(not(unix))]
const SYSTEM_LINKS: &[SystemLink] = &[];

/// Whether the symlink at `link`, owned by `owner` and pointing to `target`, is the system's own
/// link of `table`: the path, the owner (root) and the target must all be the system's.
pub(crate) fn is_system_link(
    table: &[SystemLink],
    link: &Path,
    target: &Path,
    owner: Option<u32>,
) -> bool {
    owner == Some(0)
        && table.iter().any(|(path, targets)| {
            Path::new(path) == link && targets.iter().any(|t| Path::new(t) == target)
        })
}

/// Why [`walk_no_symlinks`] stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// A component could not be inspected (missing, not a directory, no permission).
    Io(std::io::Error),
    /// A component is a symlink that is not one of the system's.
    Link { link: PathBuf, target: PathBuf },
}

/// One component of a path still to walk, owned.
enum Part {
    Prefix(OsString),
    Root,
    Up,
    Name(OsString),
}

fn parts(p: &Path) -> Vec<Part> {
    p.components()
        .filter_map(|c| match c {
            Component::Prefix(x) => Some(Part::Prefix(x.as_os_str().to_owned())),
            Component::RootDir => Some(Part::Root),
            Component::CurDir => None,
            Component::ParentDir => Some(Part::Up),
            Component::Normal(n) => Some(Part::Name(n.to_owned())),
        })
        .collect()
}

/// Resolve the absolute `path` component by component without following any symlink but the
/// system's own links of `table`, which are replaced by their targets (walked in turn). `..`
/// drops the last component: sound, since what was resolved so far contains no symlink. The
/// result is absolute and contains no `.`, `..` or symlink.
pub(crate) fn walk_no_symlinks(path: &Path, table: &[SystemLink]) -> Result<PathBuf, WalkError> {
    let mut out = PathBuf::new();
    let mut todo = parts(path);
    todo.reverse();
    // The resolved prefix is a directory (else nothing may follow it).
    let mut is_dir = true;
    // System links replaced so far; the table has no chains, so a few is plenty.
    let mut replaced = 0;
    let not_dir = |p: &Path| {
        WalkError::Io(std::io::Error::other(format!(
            "{} is not a directory",
            p.display()
        )))
    };
    while let Some(part) = todo.pop() {
        match part {
            Part::Prefix(x) => {
                out = PathBuf::from(x);
                is_dir = true;
            }
            Part::Root => {
                let prefix: PathBuf = out
                    .components()
                    .take_while(|c| matches!(c, Component::Prefix(_)))
                    .collect();
                out = prefix;
                out.push(std::path::MAIN_SEPARATOR_STR);
                is_dir = true;
            }
            Part::Up => {
                if !is_dir {
                    return Err(not_dir(&out));
                }
                out.pop();
            }
            Part::Name(n) => {
                if !is_dir {
                    return Err(not_dir(&out));
                }
                out.push(n);
                let meta = std::fs::symlink_metadata(&out).map_err(WalkError::Io)?;
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(&out).map_err(WalkError::Io)?;
                    if replaced < 8 && is_system_link(table, &out, &target, owner(&meta)) {
                        replaced += 1;
                        out.pop();
                        todo.extend(parts(&target).into_iter().rev());
                        continue;
                    }
                    return Err(WalkError::Link { link: out, target });
                }
                is_dir = meta.is_dir();
            }
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn owner(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    Some(meta.uid())
}

#[cfg(not(unix))]
fn owner(_: &std::fs::Metadata) -> Option<u32> {
    None
}

/// A mount's host path resolved for [`Mount::host_canonical`], and what it is. Without
/// `follow_symlinks`, a symlink on the way is refused (but the system's own); with it, every
/// symlink is followed (the path is canonicalised).
fn resolve_mount_source(
    host: &Path,
    follow_symlinks: bool,
) -> Result<(PathBuf, std::fs::Metadata)> {
    let missing = || Error::MountSourceMissing {
        path: host.to_path_buf(),
    };
    let inspect = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing()
        } else {
            Error::io(format!("cannot inspect mount source {}", host.display()), e)
        }
    };
    if host.as_os_str().is_empty() {
        return Err(missing());
    }
    if follow_symlinks {
        let meta = std::fs::metadata(host).map_err(inspect)?;
        let canonical = std::fs::canonicalize(host)
            .map_err(|e| Error::io(format!("cannot resolve mount source {}", host.display()), e))?;
        return Ok((canonical, meta));
    }
    // getcwd's answer contains no symlink; the walk checks it anyway.
    let absolute = if host.is_absolute() {
        host.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|e| {
            Error::io(
                format!(
                    "reading the working directory to resolve the relative mount source {}",
                    host.display()
                ),
                e,
            )
        })?;
        cwd.join(host)
    };
    let resolved = walk_no_symlinks(&absolute, SYSTEM_LINKS).map_err(|w| match w {
        WalkError::Io(e) => inspect(e),
        WalkError::Link { link, target } => Error::SymlinkedMountSource {
            path: host.to_path_buf(),
            link,
            target,
        },
    })?;
    let meta = std::fs::symlink_metadata(&resolved).map_err(inspect)?;
    Ok((resolved, meta))
}

/// An absolute sandbox path with `.` and duplicate slashes removed; `..` is refused.
///
/// A path that starts with `/` is a Linux or macOS path of the sandbox on any host (a policy for
/// another platform is explained on any host); on Windows a path of the sandbox is also a drive
/// path (`C:\\...`), the host path a mount is at.
pub(crate) fn normalize_sandbox_path(p: &Path) -> Result<PathBuf> {
    #[cfg(not(unix))]
    if p.as_os_str().as_encoded_bytes().first() == Some(&b'/') {
        return normalize_slash_path(p);
    }
    if !p.is_absolute() {
        return Err(Error::RelativeSandboxPath {
            path: p.to_path_buf(),
        });
    }
    let raw: OsString = p.as_os_str().to_owned();
    if raw.as_encoded_bytes().contains(&0) {
        return Err(Error::InvalidSandboxPath {
            path: p.to_path_buf(),
            reason: "it contains a NUL byte".into(),
        });
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                return Err(Error::InvalidSandboxPath {
                    path: p.to_path_buf(),
                    reason: "it contains a '..' component".into(),
                })
            }
            // On Windows a path of the sandbox is a host path (a mount is at its own path):
            // a drive, `C:\`. UNC shares and device paths are refused.
            #[cfg(windows)]
            Component::Prefix(x) => match x.kind() {
                std::path::Prefix::Disk(d) | std::path::Prefix::VerbatimDisk(d) => {
                    out = PathBuf::from(format!("{}:\\", char::from(d)));
                }
                _ => {
                    return Err(Error::InvalidSandboxPath {
                        path: p.to_path_buf(),
                        reason: "it is a UNC share or a device path; nanobox isolates drive \
                                 paths (C:\\...) only"
                            .into(),
                    })
                }
            },
            #[cfg(not(windows))]
            Component::Prefix(_) => {
                return Err(Error::InvalidSandboxPath {
                    path: p.to_path_buf(),
                    reason: "it has a drive prefix".into(),
                })
            }
        }
    }
    Ok(out)
}

/// A `/`-path of the sandbox on a host whose paths are not (Windows): split at `/` only (a
/// backslash is a character of a Linux or macOS name).
#[cfg(not(unix))]
fn normalize_slash_path(p: &Path) -> Result<PathBuf> {
    let invalid = |reason: &str| Error::InvalidSandboxPath {
        path: p.to_path_buf(),
        reason: reason.into(),
    };
    let s = p
        .to_str()
        .ok_or_else(|| invalid("it is not valid Unicode"))?;
    if s.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    let mut out = String::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("it contains a '..' component")),
            name => {
                out.push('/');
                out.push_str(name);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_proxy_comes_from_the_callers_environment_in_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(upstream_from_env(env(&[])), None);
        assert_eq!(
            upstream_from_env(env(&[
                ("http_proxy", "http://a:1"),
                ("HTTPS_PROXY", "http://b:2")
            ])),
            Some("http://b:2".into())
        );
        assert_eq!(
            upstream_from_env(env(&[("HTTPS_PROXY", ""), ("http_proxy", "http://a:1")])),
            Some("http://a:1".into())
        );
        // An explicit upstream wins; the proxy variables the program gets point at nanobox's.
        let p = SandboxBuilder::default()
            .allow_network(&["x.test"])
            .upstream_proxy("http://up.test:3128")
            .validate()
            .unwrap();
        let Network::Allowlist(a) = &p.network else {
            panic!("allowlist expected")
        };
        assert_eq!(a.upstream.as_deref(), Some("http://up.test:3128"));
        assert!(p.env.contains(&(
            "HTTPS_PROXY".into(),
            format!("http://127.0.0.1:{PROXY_PORT}")
        )));
    }

    #[test]
    fn normalizes_and_refuses_dotdot() {
        assert_eq!(
            normalize_sandbox_path(Path::new("/a//b/./c/")).unwrap(),
            PathBuf::from("/a/b/c")
        );
        assert!(matches!(
            normalize_sandbox_path(Path::new("/a/../etc")),
            Err(Error::InvalidSandboxPath { .. })
        ));
        assert!(matches!(
            normalize_sandbox_path(Path::new("data")),
            Err(Error::RelativeSandboxPath { .. })
        ));
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the expectations are Linux and macOS sandbox paths, which a policy for Windows (the host platform here) does not have: a Windows mount is at its host path"
    )]
    fn each_validation_error_names_its_path() {
        let dir = std::env::temp_dir();
        let e = SandboxBuilder::default()
            .mount("/definitely/not/here", "/in", Permission::ReadOnly)
            .validate()
            .unwrap_err();
        assert!(
            matches!(&e, Error::MountSourceMissing { path } if path == Path::new("/definitely/not/here"))
        );
        assert!(e.to_string().contains("/definitely/not/here"));

        let e = SandboxBuilder::default()
            .mount(&dir, "in", Permission::ReadOnly)
            .validate()
            .unwrap_err();
        assert!(matches!(&e, Error::RelativeSandboxPath { path } if path == Path::new("in")));

        for reserved in ["/", "/proc", "/etc/passwd", "/usr/lib", "/dev", "/lib64"] {
            let e = SandboxBuilder::default()
                .mount(&dir, reserved, Permission::ReadOnly)
                .validate()
                .unwrap_err();
            assert!(
                matches!(&e, Error::ReservedPath { path, .. } if path == Path::new(reserved)),
                "{reserved}: {e}"
            );
            assert!(e.to_string().contains(reserved));
        }

        let e = SandboxBuilder::default()
            .mount(&dir, "/data", Permission::ReadOnly)
            .mount(&dir, "/data/", Permission::ReadWrite)
            .validate()
            .unwrap_err();
        assert!(matches!(&e, Error::DuplicateMount { path } if path == Path::new("/data")));
        assert!(e.to_string().contains("/data"));
    }

    #[test]
    fn both_system_link_tables_accept_only_root_owned_links_to_their_targets() {
        let ok = |t: &[SystemLink], l: &str, to: &str, uid: u32| {
            is_system_link(t, Path::new(l), Path::new(to), Some(uid))
        };
        for (link, to) in [
            ("/bin", "usr/bin"),
            ("/bin", "/usr/bin"),
            ("/sbin", "usr/sbin"),
            ("/lib", "usr/lib"),
            ("/lib", "/usr/lib/"),
            ("/lib32", "usr/lib32"),
            ("/lib64", "usr/lib64"),
            ("/libx32", "/usr/libx32"),
            ("/var/run", "/run"),
            ("/var/run", "../run"),
            ("/var/lock", "/run/lock"),
            ("/var/lock", "../run/lock"),
        ] {
            assert!(ok(LINUX_SYSTEM_LINKS, link, to, 0), "{link} -> {to}");
            assert!(
                !ok(LINUX_SYSTEM_LINKS, link, to, 1000),
                "{link} owned by a user"
            );
            assert!(
                !ok(MACOS_SYSTEM_LINKS, link, to, 0),
                "{link} is not macOS's"
            );
        }
        for (link, to) in [
            ("/tmp", "private/tmp"),
            ("/tmp", "/private/tmp"),
            ("/var", "private/var"),
            ("/etc", "/private/etc"),
        ] {
            assert!(ok(MACOS_SYSTEM_LINKS, link, to, 0), "{link} -> {to}");
            assert!(
                !ok(MACOS_SYSTEM_LINKS, link, to, 501),
                "{link} owned by a user"
            );
            assert!(
                !ok(LINUX_SYSTEM_LINKS, link, to, 0),
                "{link} is not Linux's"
            );
        }
        // The right link pointing elsewhere, a look-alike path, or an unknown owner is refused.
        assert!(!ok(LINUX_SYSTEM_LINKS, "/bin", "/etc", 0));
        assert!(!ok(LINUX_SYSTEM_LINKS, "/lib", "usr/lib/../../etc", 0));
        assert!(!ok(LINUX_SYSTEM_LINKS, "/var/run", "/etc", 0));
        assert!(!ok(LINUX_SYSTEM_LINKS, "/usr/bin", "usr/bin", 0));
        assert!(!ok(LINUX_SYSTEM_LINKS, "/tmp/bin", "usr/bin", 0));
        assert!(!ok(MACOS_SYSTEM_LINKS, "/etc", "private/etc/../..", 0));
        assert!(!is_system_link(
            LINUX_SYSTEM_LINKS,
            Path::new("/bin"),
            Path::new("usr/bin"),
            None
        ));
    }

    #[cfg(unix)]
    /// A fresh directory for one test, removed at the end by the caller.
    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nb-walk-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::fs::write(d.join("real/file"), "x").unwrap();
        d
    }

    #[cfg(unix)]
    fn link_of(r: Result<PathBuf, WalkError>) -> (PathBuf, PathBuf) {
        match r {
            Err(WalkError::Link { link, target }) => (link, target),
            other => panic!("a refused symlink expected: {other:?}"),
        }
    }

    // Symlinks are made with the Unix call.
    #[cfg(unix)]
    #[test]
    fn the_walk_refuses_every_symlink_on_the_way() {
        use std::os::unix::fs::symlink;
        let d = scratch("refuse");
        symlink("/etc", d.join("abs")).unwrap();
        symlink("real", d.join("rel")).unwrap();
        symlink("real/file", d.join("tofile")).unwrap();
        symlink("loop2", d.join("loop1")).unwrap();
        symlink("loop1", d.join("loop2")).unwrap();
        symlink(d.join("real/sub"), d.join("real/up")).unwrap();
        let w = |p: &str| walk_no_symlinks(&d.join(p), LINUX_SYSTEM_LINKS);

        // Plain paths, `.` and `..` resolve lexically over what is known to be symlink-free.
        assert_eq!(w("real/./sub").unwrap(), d.join("real/sub"));
        assert_eq!(w("real/sub/..").unwrap(), d.join("real"));
        assert_eq!(w("real/sub/../../real/file").unwrap(), d.join("real/file"));
        assert!(matches!(w("real/file/.."), Err(WalkError::Io(_))));
        assert!(matches!(w("real/file/x"), Err(WalkError::Io(_))));
        assert!(
            matches!(w("real/missing"), Err(WalkError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound)
        );

        assert_eq!(link_of(w("abs")), (d.join("abs"), PathBuf::from("/etc")));
        assert_eq!(
            link_of(w("abs/ssl")),
            (d.join("abs"), PathBuf::from("/etc"))
        );
        assert_eq!(link_of(w("rel")), (d.join("rel"), PathBuf::from("real")));
        assert_eq!(
            link_of(w("rel/sub")),
            (d.join("rel"), PathBuf::from("real"))
        );
        assert_eq!(
            link_of(w("tofile")),
            (d.join("tofile"), PathBuf::from("real/file"))
        );
        assert_eq!(link_of(w("abs/..")), (d.join("abs"), PathBuf::from("/etc")));
        assert_eq!(
            link_of(w("loop1")),
            (d.join("loop1"), PathBuf::from("loop2"))
        );
        assert_eq!(link_of(w("real/up/..")).0, d.join("real/up"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    // Symlinks are made with the Unix call.
    #[cfg(unix)]
    #[test]
    fn the_walk_replaces_only_root_owned_table_links() {
        use std::os::unix::fs::symlink;
        let d = scratch("table");
        symlink("real", d.join("sys")).unwrap();
        let link = d.join("sys");
        let link_s: &'static str = Box::leak(link.to_string_lossy().into_owned().into_boxed_str());
        let table: &[SystemLink] = &[(link_s, &["real"])];
        let r = walk_no_symlinks(&d.join("sys/sub/../file"), table);
        if creates_root_owned_files() {
            // Owned by root (this process), pointing where the table says: replaced and walked on.
            assert_eq!(r.unwrap(), d.join("real/file"));
        } else {
            assert_eq!(link_of(r).0, link);
        }
        // The same link with a target the table does not name is refused, whoever owns it.
        let other: &[SystemLink] = &[(link_s, &["/real"])];
        assert_eq!(link_of(walk_no_symlinks(&d.join("sys"), other)).0, link);
        std::fs::remove_dir_all(&d).unwrap();

        // This host's own links (merged /usr: /lib -> usr/lib) pass.
        let lib = Path::new("/lib");
        if std::fs::symlink_metadata(lib).is_ok_and(|m| m.file_type().is_symlink()) {
            // `..` after a replaced link leaves its target, as the kernel does.
            let r = walk_no_symlinks(Path::new("/lib/../bin"), LINUX_SYSTEM_LINKS).unwrap();
            assert_eq!(r, Path::new("/usr/bin"));
        }
    }

    // Symlinks are made with the Unix call.
    #[cfg(unix)]
    fn creates_root_owned_files() -> bool {
        use std::os::unix::fs::MetadataExt;
        let probe = std::env::temp_dir().join(format!("nb-walk-uid-{}", std::process::id()));
        std::fs::write(&probe, "").unwrap();
        let root = std::fs::metadata(&probe).unwrap().uid() == 0;
        std::fs::remove_file(&probe).unwrap();
        root
    }

    // Symlinks are made with the Unix call.
    #[cfg(unix)]
    #[test]
    fn a_symlinked_mount_source_is_refused_unless_followed_explicitly() {
        use std::os::unix::fs::symlink;
        let d = scratch("validate");
        symlink(d.join("real"), d.join("link")).unwrap();
        let e = SandboxBuilder::default()
            .mount(d.join("link/sub"), "/in", Permission::ReadOnly)
            .validate()
            .unwrap_err();
        match &e {
            Error::SymlinkedMountSource { path, link, target } => {
                assert_eq!(path, &d.join("link/sub"));
                assert_eq!(link, &d.join("link"));
                assert_eq!(target, &d.join("real"));
            }
            other => panic!("{other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains(&*d.join("link").to_string_lossy()), "{msg}");
        assert!(msg.contains("mount_following_symlinks"), "{msg}");

        let p = SandboxBuilder::default()
            .mount_following_symlinks(d.join("link/sub"), "/in", Permission::ReadOnly)
            .mount(d.join("real"), "/plain", Permission::ReadOnly)
            .validate()
            .unwrap();
        let m = p
            .mounts
            .iter()
            .find(|m| m.sandbox == Path::new("/in"))
            .unwrap();
        assert!(m.follow_symlinks && m.is_dir);
        assert_eq!(
            m.host_canonical,
            std::fs::canonicalize(d.join("real/sub")).unwrap()
        );
        let m = p
            .mounts
            .iter()
            .find(|m| m.sandbox == Path::new("/plain"))
            .unwrap();
        assert!(!m.follow_symlinks);
        assert_eq!(m.host_canonical, d.join("real"));

        // A missing path stays MountSourceMissing, also behind a dangling link when followed.
        symlink(d.join("gone"), d.join("dangling")).unwrap();
        let e = SandboxBuilder::default()
            .mount_following_symlinks(d.join("dangling"), "/in", Permission::ReadOnly)
            .validate()
            .unwrap_err();
        assert!(matches!(e, Error::MountSourceMissing { .. }), "{e:?}");
        assert!(matches!(
            SandboxBuilder::default()
                .mount("", "/in", Permission::ReadOnly)
                .validate(),
            Err(Error::MountSourceMissing { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn env_starts_minimal_and_sets_pwd() {
        std::env::set_var("NANOBOX_POLICY_TEST_SECRET", "x");
        let p = SandboxBuilder::default()
            .working_dir("/work")
            .env("A", "1")
            .validate()
            .unwrap();
        let keys: Vec<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["A", "HOME", "LANG", "PATH", "PWD"]);
        assert!(p.env.contains(&("PWD".into(), "/work".into())));
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(SandboxBuilder::default()
            .env("A=B", "1")
            .validate()
            .is_err());
        assert!(SandboxBuilder::default().hostname("").validate().is_err());
        assert!(SandboxBuilder::default()
            .output_limit(0)
            .validate()
            .is_err());
        assert!(SandboxBuilder::default()
            .wall_time_limit(Duration::ZERO)
            .validate()
            .is_err());
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the expectations are Linux and macOS sandbox paths, which a policy for Windows (the host platform here) does not have: a Windows mount is at its host path"
    )]
    fn nested_mount_needs_existing_mountpoint_in_parent() {
        let base = std::env::temp_dir().join(format!("nb-policy-{}", std::process::id()));
        std::fs::create_dir_all(base.join("sub")).unwrap();
        let ok = SandboxBuilder::default()
            .mount(&base, "/data", Permission::ReadOnly)
            .mount(&base, "/data/sub", Permission::ReadOnly)
            .validate();
        assert!(ok.is_ok());
        let bad = SandboxBuilder::default()
            .mount(&base, "/data", Permission::ReadOnly)
            .mount(&base, "/data/missing", Permission::ReadOnly)
            .validate();
        assert!(matches!(bad, Err(Error::InvalidSandboxPath { .. })));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
