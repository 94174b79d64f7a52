//! [`SandboxBuilder::explain`]: what a run of a policy would do on a platform, computed on any
//! platform without building or running anything.

mod windows;

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::time::Duration;

use crate::error::Result;
use crate::policy::{
    LexicalPaths, Network, Permission, Platform, Policy, RealPaths, SandboxBuilder,
    DEFAULT_WORKDIR, PROXY_PORT,
};

pub use windows::{JobLimit, WindowsPlan};

/// What [`MacOsPlan::tmpdir`] is: a placeholder for the run's private temporary directory, which
/// each run creates anew.
pub const EXPLAIN_TMPDIR: &str = "/private/var/folders/XX/T/nanobox-RUN";
/// What [`MacOsPlan::proxy_port`] is: a placeholder for the filtering proxy's port, which is
/// chosen per run.
pub const EXPLAIN_PROXY_PORT: u16 = 49152;
/// The tag the explained macOS profile is made with.
const EXPLAIN_TAG: &str = "nanobox-explain";

/// One mount as a platform would place it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MountPlan {
    /// The host path as given.
    pub host: String,
    /// The host path resolved (for a foreign platform lexically, with its system links).
    pub host_canonical: String,
    /// Where the program sees it.
    pub sandbox: String,
    /// Read-only or read-write.
    pub permission: Permission,
    /// Whether it is a directory (a foreign platform's mounts are explained as directories).
    pub is_dir: bool,
}

/// One resource limit and what enforces it there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LimitPlan {
    /// The builder option: `memory_limit`, `cpu_limit`, `cpu_time_limit`, `process_limit`,
    /// `file_size_limit`, `wall_time_limit`, `output_limit`.
    pub limit: String,
    /// Its value as set.
    pub value: String,
    /// What enforces it on that platform.
    pub mechanism: String,
}

/// The macOS part of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct MacOsPlan {
    /// The exact Seatbelt (SBPL) profile.
    pub profile: String,
    /// The profile's parameters (`-D NAME=VALUE`), in order.
    pub params: Vec<(String, String)>,
    /// The profile with each parameter's path in its place: for reading only (what runs is
    /// [`MacOsPlan::profile`] with [`MacOsPlan::params`]).
    pub expanded: String,
    /// The `sandbox-exec` argument vector that runs the program (its first element the path of
    /// `sandbox-exec`).
    pub argv: Vec<String>,
    /// The run's private temporary directory: the placeholder [`EXPLAIN_TMPDIR`].
    pub tmpdir: String,
    /// The filtering proxy's port with an allowlist: the placeholder [`EXPLAIN_PROXY_PORT`]
    /// (chosen per run).
    pub proxy_port: Option<u16>,
}

/// The syscall filter of a Linux run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SeccompPlan {
    /// The default filter's allowed syscalls (Docker's allow-list), where this build knows them
    /// (a Linux build; elsewhere empty, see `note`).
    pub default_allowed: Vec<String>,
    /// The syscalls the default filter answers `EPERM`, where this build knows them.
    pub default_denied: Vec<String>,
    /// Syscalls the policy refuses too ([`crate::SeccompPolicy::deny`]).
    pub deny: Vec<String>,
    /// Syscalls the policy allows that the default refuses ([`crate::SeccompPolicy::allow`]).
    pub allow: Vec<String>,
    /// The rules that do not depend on the policy, one a line.
    pub rules: Vec<String>,
    /// Set when the lists are not part of this build.
    pub note: Option<String>,
}

/// The Linux part of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct LinuxPlan {
    /// What nanobox provides itself, one line each: the system directories read-only, `/etc`,
    /// `/tmp`, `/proc`, `/dev`.
    pub system: Vec<String>,
    /// The namespaces of every run.
    pub namespaces: Vec<String>,
    /// The hostname inside.
    pub hostname: String,
    /// The network.
    pub network: String,
    /// The syscall filter.
    pub seccomp: SeccompPlan,
    /// Explaining on a Linux host: what the host's probe says about resource limits.
    pub host_limits: Option<String>,
    /// What is weaker with `allow_degraded_isolation` where the host needs it.
    pub degraded: Option<String>,
}

/// What a run of a policy would do on one platform: from [`SandboxBuilder::explain`].
///
/// `Display` prints [`Explanation::text`]; `serde` gives the CLI's `nanobox run --explain --json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Explanation {
    /// The platform explained.
    pub platform: Platform,
    /// The program as given.
    pub program: String,
    /// Its arguments as given.
    pub args: Vec<String>,
    /// The mounts as that platform places them.
    pub mounts: Vec<MountPlan>,
    /// The program's working directory (macOS without one set: the run's private temporary
    /// directory, the placeholder [`EXPLAIN_TMPDIR`]).
    pub working_dir: String,
    /// The program's whole environment, in order.
    pub env: Vec<(String, String)>,
    /// The resource limits set and what enforces each.
    pub limits: Vec<LimitPlan>,
    /// For [`Platform::MacOs`].
    pub macos: Option<MacOsPlan>,
    /// For [`Platform::Linux`].
    pub linux: Option<LinuxPlan>,
    /// For [`Platform::Windows`].
    pub windows: Option<WindowsPlan>,
}

impl Explanation {
    /// For macOS, the exact Seatbelt profile.
    pub fn profile(&self) -> Option<&str> {
        self.macos.as_ref().map(|m| m.profile.as_str())
    }

    /// For macOS, the `sandbox-exec` argument vector.
    pub fn argv(&self) -> Option<&[String]> {
        self.macos.as_ref().map(|m| m.argv.as_slice())
    }

    /// The explanation as text for people (what `Display` prints).
    pub fn text(&self) -> String {
        let mut t = String::new();
        let _ = self.write_text(&mut t);
        t
    }

    fn write_text(&self, t: &mut String) -> std::fmt::Result {
        writeln!(
            t,
            "nanobox run on {}: {}",
            self.platform.display_name(),
            quote(std::iter::once(&self.program).chain(&self.args))
        )?;
        writeln!(t, "\nmounts:")?;
        if self.mounts.is_empty() {
            writeln!(t, "  (none)")?;
        }
        for m in &self.mounts {
            let p = match m.permission {
                Permission::ReadWrite => "read-write",
                _ => "read-only",
            };
            let resolved = if m.host_canonical != m.host {
                format!(" ({})", m.host_canonical)
            } else {
                String::new()
            };
            writeln!(t, "  {}{resolved} -> {} {p}", m.host, m.sandbox)?;
        }
        if let Some(l) = &self.linux {
            for s in &l.system {
                writeln!(t, "  {s}")?;
            }
        }
        writeln!(t, "\nworking directory: {}", self.working_dir)?;
        writeln!(t, "environment:")?;
        for (k, v) in &self.env {
            writeln!(t, "  {k}={v}")?;
        }
        writeln!(t, "\nlimits:")?;
        for l in &self.limits {
            writeln!(t, "  {} {}: {}", l.limit, l.value, l.mechanism)?;
        }
        if let Some(l) = &self.linux {
            if let Some(h) = &l.host_limits {
                writeln!(t, "  this host: {h}")?;
            }
            writeln!(t, "\nnamespaces: {}", l.namespaces.join(", "))?;
            writeln!(t, "hostname: {}", l.hostname)?;
            writeln!(t, "network: {}", l.network)?;
            writeln!(t, "\nseccomp:")?;
            for r in &l.seccomp.rules {
                writeln!(t, "  {r}")?;
            }
            if !l.seccomp.deny.is_empty() {
                writeln!(t, "  also refused (EPERM): {}", l.seccomp.deny.join(" "))?;
            }
            if !l.seccomp.allow.is_empty() {
                writeln!(t, "  also allowed: {}", l.seccomp.allow.join(" "))?;
            }
            if let Some(n) = &l.seccomp.note {
                writeln!(t, "  {n}")?;
            } else {
                writeln!(
                    t,
                    "  allowed ({}): {}",
                    l.seccomp.default_allowed.len(),
                    l.seccomp.default_allowed.join(" ")
                )?;
                writeln!(
                    t,
                    "  refused with EPERM ({}): {}",
                    l.seccomp.default_denied.len(),
                    l.seccomp.default_denied.join(" ")
                )?;
            }
            if let Some(d) = &l.degraded {
                writeln!(t, "\n{d}")?;
            }
        }
        if let Some(m) = &self.macos {
            writeln!(
                t,
                "\nthe run's temporary directory: {} (a placeholder: each run makes its own)",
                m.tmpdir
            )?;
            if let Some(p) = m.proxy_port {
                writeln!(
                    t,
                    "the filtering proxy's port: {p} (a placeholder: chosen per run)"
                )?;
            }
            writeln!(t, "\nsandbox-exec argument vector:")?;
            for a in &m.argv {
                if a.contains('\n') {
                    writeln!(t, "  <the profile below>")?;
                } else {
                    writeln!(t, "  {a}")?;
                }
            }
            writeln!(t, "\nSeatbelt profile:")?;
            t.push_str(&m.profile);
            if !m.profile.ends_with('\n') {
                t.push('\n');
            }
        }
        if let Some(w) = &self.windows {
            writeln!(t, "\njob object:")?;
            for j in &w.job_limits {
                if j.value.is_empty() {
                    writeln!(t, "  {}: {}", j.name, j.note)?;
                } else {
                    writeln!(t, "  {} ({}): {}", j.name, j.value, j.note)?;
                }
            }
            writeln!(t, "token:")?;
            for l in &w.token {
                writeln!(t, "  {l}")?;
            }
            writeln!(t, "inherited handles: {}", w.handles.join(", "))?;
            writeln!(t, "AppContainer:")?;
            for l in &w.container {
                writeln!(t, "  {l}")?;
            }
            if !w.refused.is_empty() {
                writeln!(t, "refused on Windows:")?;
                for r in &w.refused {
                    writeln!(t, "  {r}")?;
                }
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

/// Words joined by spaces, each quoted for a POSIX shell where it needs it.
fn quote<'a>(words: impl Iterator<Item = &'a String>) -> String {
    words
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn lossy(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

impl SandboxBuilder {
    /// What a run of `program` with `args` under this policy would do on `platform`, computed on
    /// any operating system without building or running anything: for macOS the exact Seatbelt
    /// profile and `sandbox-exec` argument vector, for Linux the mount plan, namespaces, seccomp
    /// policy and limit mechanisms, for Windows the Job Object limits, the token and the
    /// inherited handles. The builder is left as it was (it is cloned).
    ///
    /// The policy is validated for `platform` as `build()` would there, and a policy that
    /// platform refuses is the same error (a mount at another path than its host path, on
    /// macOS). For the platform this runs on the mount sources are checked on the file system,
    /// as `build()` checks them; for another platform no host path is looked at: each mount
    /// source is taken to be an existing directory, resolved by name with that platform's system
    /// links (`/tmp` is `/private/tmp` on macOS). The macOS run's temporary directory is the
    /// placeholder [`EXPLAIN_TMPDIR`], and the proxy's port (chosen per run) the placeholder
    /// [`EXPLAIN_PROXY_PORT`]. CLI: `nanobox run --explain [--platform macos|linux|windows]`.
    ///
    /// ```
    /// use nanobox::{Permission, Platform, Sandbox};
    /// # fn main() -> nanobox::Result<()> {
    /// // A policy for a Mac, reviewed anywhere; the directory need not exist here.
    /// let judge = Sandbox::code_judge("/Users/me/sub");
    /// let e = judge.explain(Platform::MacOs, "python3", &["main.py"])?;
    /// assert_eq!(e.mounts[0].sandbox, "/Users/me/sub"); // at its own path on macOS
    /// assert_eq!(e.argv().unwrap()[0], "/usr/bin/sandbox-exec");
    /// println!("{}", e.profile().unwrap());
    /// // The same builder explained for Linux shows the fixed path; on a Linux host the mount
    /// // source is checked for real, as build() checks it.
    /// let e = judge.explain(Platform::Linux, "python3", &["main.py"]);
    /// if Platform::current() == Some(Platform::Linux) {
    ///     assert_eq!(e.unwrap_err().kind(), "mount_source_missing");
    /// } else {
    ///     assert_eq!(e?.mounts[0].sandbox, "/submission");
    /// }
    /// // macOS cannot show a host path elsewhere: refused, as build() would there.
    /// let remap = Sandbox::builder().mount("/Users/me/data", "/data", Permission::ReadOnly);
    /// assert!(remap.explain(Platform::MacOs, "ls", &["/data"]).is_err());
    /// # Ok(()) }
    /// ```
    pub fn explain<S: AsRef<OsStr>>(
        &self,
        platform: Platform,
        program: impl AsRef<OsStr>,
        args: &[S],
    ) -> Result<Explanation> {
        let program = program.as_ref().to_os_string();
        let args: Vec<OsString> = args.iter().map(|a| a.as_ref().to_os_string()).collect();
        let policy = if Some(platform) == Platform::current() {
            self.clone().validate_for(platform, &RealPaths)?
        } else {
            self.clone()
                .validate_for(platform, &LexicalPaths(platform))?
        };
        explain_policy(&policy, &program, &args)
    }
}

/// The explanation of a validated policy.
pub(crate) fn explain_policy(
    policy: &Policy,
    program: &OsStr,
    args: &[OsString],
) -> Result<Explanation> {
    let platform = policy.platform;
    let mounts = policy
        .mounts
        .iter()
        .map(|m| MountPlan {
            host: m.host.to_string_lossy().into_owned(),
            host_canonical: m.host_canonical.to_string_lossy().into_owned(),
            sandbox: m.sandbox.to_string_lossy().into_owned(),
            permission: m.permission,
            is_dir: m.is_dir,
        })
        .collect();
    let mut working_dir = policy.working_dir.to_string_lossy().into_owned();
    let mut env = policy.env.clone();
    let proxy = matches!(policy.network, Network::Allowlist(_));
    let (mut macos, mut linux, mut windows) = (None, None, None);
    match platform {
        Platform::MacOs => {
            let run = crate::seatbelt::RunContext {
                tmpdir: EXPLAIN_TMPDIR.into(),
                proxy_port: proxy.then_some(EXPLAIN_PROXY_PORT),
                tag: EXPLAIN_TAG.into(),
            };
            let profile = crate::seatbelt::profile(policy, &run)?;
            let argv = crate::seatbelt::argv(&profile, program, args)?;
            if !policy.working_dir_explicit {
                working_dir = EXPLAIN_TMPDIR.into();
            }
            let local = format!("127.0.0.1:{PROXY_PORT}");
            let run_local = format!("127.0.0.1:{EXPLAIN_PROXY_PORT}");
            for (k, v) in &mut env {
                if k == "PWD" {
                    v.clone_from(&working_dir);
                } else if k == "HOME" && v == DEFAULT_WORKDIR {
                    *v = EXPLAIN_TMPDIR.into();
                } else if proxy {
                    *v = v.replace(&local, &run_local);
                }
            }
            let expanded = profile.expanded()?;
            macos = Some(MacOsPlan {
                expanded,
                params: profile
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string_lossy().into_owned()))
                    .collect(),
                profile: profile.text,
                argv: argv.iter().map(|a| lossy(a)).collect(),
                tmpdir: EXPLAIN_TMPDIR.into(),
                proxy_port: run.proxy_port,
            });
        }
        Platform::Linux => {
            let plan = linux_plan(policy);
            check_seccomp_names(&plan.seccomp)?;
            linux = Some(plan);
        }
        Platform::Windows => {
            let cpus = if Platform::current() == Some(Platform::Windows) {
                std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
            } else {
                1
            };
            windows = Some(windows::plan(policy, cpus));
        }
    }
    Ok(Explanation {
        platform,
        program: lossy(program),
        args: args.iter().map(|a| lossy(a)).collect(),
        mounts,
        working_dir,
        env,
        limits: limits(policy),
        macos,
        linux,
        windows,
    })
}

/// A size the way the CLI takes it: 256M where it divides evenly.
fn size(n: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n} bytes")
}

fn duration(d: Duration) -> String {
    format!("{d:?}")
}

/// The limits set, with what enforces each on the policy's platform.
fn limits(p: &Policy) -> Vec<LimitPlan> {
    let l = &p.limits;
    let degraded = p.allow_degraded_limits;
    let linux = |cgroup: &str, rlimit: Option<&str>| match (degraded, rlimit) {
        (true, Some(r)) => format!("{cgroup} where delegated, else {r} (allow_degraded_limits)"),
        _ => format!("{cgroup} where delegated, else refused at build()"),
    };
    let mut out = Vec::new();
    let mut add = |limit: &str, value: String, mechanism: String| {
        out.push(LimitPlan {
            limit: limit.into(),
            value,
            mechanism,
        })
    };
    let win = "see the Windows plan below";
    if let Some(m) = l.memory {
        add(
            "memory_limit",
            size(m),
            match p.platform {
                Platform::Linux => linux(
                    "cgroup v2 memory.max with memory.swap.max 0 (v1: memory.limit_in_bytes)",
                    Some("RLIMIT_AS per process"),
                ),
                Platform::MacOs => "the macOS backend's watchdog, over the run's processes".into(),
                Platform::Windows => format!("JOB_OBJECT_LIMIT_JOB_MEMORY; {win}"),
            },
        );
    }
    if let Some(c) = l.cpu {
        add(
            "cpu_limit",
            format!("{c} cores"),
            match p.platform {
                Platform::Linux => linux(
                    "cgroup cpu.max over 100 ms periods",
                    Some("pinning to whole CPUs"),
                ),
                Platform::MacOs => "the macOS backend's watchdog, over the run's processes".into(),
                Platform::Windows => format!("Job Object CPU rate control, hard cap; {win}"),
            },
        );
    }
    if let Some(t) = l.cpu_time {
        add(
            "cpu_time_limit",
            duration(t),
            match p.platform {
                Platform::Linux => linux(
                    "the cgroup's CPU usage, read by the sandbox's init, plus RLIMIT_CPU per \
                     process",
                    Some("RLIMIT_CPU per process alone"),
                ),
                Platform::MacOs => "RLIMIT_CPU per process and the macOS backend's watchdog for \
                                    the whole run"
                    .into(),
                Platform::Windows => format!("PerJobUserTimeLimit; {win}"),
            },
        );
    }
    if let Some(n) = l.processes {
        add(
            "process_limit",
            n.to_string(),
            match p.platform {
                Platform::Linux => linux("cgroup pids.max", Some("RLIMIT_NPROC")),
                Platform::MacOs => "the macOS backend's watchdog, over the run's processes".into(),
                Platform::Windows => format!("JOB_OBJECT_LIMIT_ACTIVE_PROCESS; {win}"),
            },
        );
    }
    if let Some(f) = l.file_size {
        add(
            "file_size_limit",
            size(f),
            match p.platform {
                Platform::Windows => format!("refused; {win}"),
                _ => "RLIMIT_FSIZE".into(),
            },
        );
    }
    if let Some(w) = p.wall_time_limit {
        add(
            "wall_time_limit",
            duration(w),
            "nanobox's timer in the calling process ends the run and everything it started".into(),
        );
    }
    add(
        "output_limit",
        if p.output_limit == u64::MAX {
            "none".into()
        } else {
            size(p.output_limit)
        },
        "nanobox stops the run when stdout or stderr passes it".into(),
    );
    out
}

/// The Linux plan of a policy validated for Linux.
fn linux_plan(p: &Policy) -> LinuxPlan {
    let mut system: Vec<String> = [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
    ]
    .iter()
    .map(|d| format!("{d} -> {d} read-only (the host's, where it has it)"))
    .collect();
    system.push(
        "/etc -> /etc read-only (the host's, every file that is not world-readable masked; \
         nanobox's own passwd, group, hosts, hostname)"
            .into(),
    );
    system.push(format!(
        "/tmp: a private tmpfs of {}, executable, counted in the memory limit",
        size(p.tmp_size)
    ));
    system.push("/proc: the sandbox's own (its pid namespace's processes only)".into());
    system.push(
        "/dev: minimal (null, zero, full, random, urandom, tty, a private /dev/shm and /dev/pts, \
         fd, stdin, stdout, stderr)"
            .into(),
    );
    let network = match &p.network {
        Network::Allowlist(a) => format!(
            "only a private loopback; HTTP and HTTPS to {} through nanobox's filtering proxy at \
             127.0.0.1:{PROXY_PORT}",
            a.patterns.join(", ")
        ),
        _ => "none: only a private loopback interface".into(),
    };
    let rules = vec![
        "by number: the allowed list passes, the refused list answers EPERM, any other syscall \
         ENOSYS"
            .into(),
        "by argument: ioctl TIOCSTI/TIOCLINUX, sockets other than unix/inet/inet6/netlink-route, \
         clone with namespace flags, set-id mode bits and chown/set*id to ids the program does \
         not hold answer EPERM"
            .into(),
        "other syscall ABIs (i386 and x32 on x86_64, AArch32 on aarch64) answer ENOSYS; nothing \
         is killed"
            .into(),
    ];
    let (default_allowed, default_denied, note) = seccomp_lists();
    let host_limits = if Platform::current() == Some(Platform::Linux) {
        let probe = crate::backend::probe();
        probe
            .checks
            .iter()
            .find(|c| c.name == "resource limits")
            .map(|c| c.detail.clone())
    } else {
        None
    };
    LinuxPlan {
        system,
        namespaces: ["user", "pid", "mount", "network", "ipc", "uts", "cgroup"]
            .map(String::from)
            .to_vec(),
        hostname: p.hostname.clone(),
        network,
        seccomp: SeccompPlan {
            default_allowed,
            default_denied,
            deny: p.seccomp.deny.iter().cloned().collect(),
            allow: p.seccomp.allow.iter().cloned().collect(),
            rules,
            note,
        },
        host_limits,
        degraded: p.allow_degraded_isolation.then(|| {
            "allow_degraded_isolation: where the host refuses user namespaces, runs go ahead with \
             Landlock and seccomp alone (every result lists what is missing)"
                .to_string()
        }),
    }
}

/// The names of `deny` and `allow` that the filter would refuse at `build()` (where this build
/// has the lists).
fn check_seccomp_names(s: &SeccompPlan) -> Result<()> {
    if s.note.is_some() {
        return Ok(());
    }
    let known = |n: &String| s.default_allowed.contains(n) || s.default_denied.contains(n);
    let bad = |reason: String| {
        Err(crate::Error::InvalidOption {
            option: "seccomp",
            reason,
        })
    };
    if let Some(n) = s.deny.iter().find(|n| !known(n)) {
        return bad(format!("deny: {n:?} is not a syscall nanobox knows"));
    }
    if let Some(n) = s.allow.iter().find(|n| !s.default_denied.contains(n)) {
        return bad(format!(
            "allow: {n:?} is not refused by the default filter, so there is nothing to allow"
        ));
    }
    Ok(())
}

/// The default filter's lists: a Linux build has them, another build says where to look.
#[cfg(target_os = "linux")]
fn seccomp_lists() -> (Vec<String>, Vec<String>, Option<String>) {
    let v = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
    (
        v(crate::linux::seccomp::ALLOWED),
        v(crate::linux::seccomp::DENIED),
        None,
    )
}

#[cfg(not(target_os = "linux"))]
fn seccomp_lists() -> (Vec<String>, Vec<String>, Option<String>) {
    (
        Vec::new(),
        Vec::new(),
        Some(
            "the default filter's syscall lists are part of Linux builds only: explain on Linux \
             to see them (names in deny/allow are checked there too)"
                .into(),
        ),
    )
}

#[cfg(test)]
mod tests;
