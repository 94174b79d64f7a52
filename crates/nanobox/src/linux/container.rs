//! Inside containers: what a container runtime takes away that a sandbox needs, told apart and
//! explained.
//!
//! Three restrictions of container runtimes stop nanobox's namespaces, each in its own way:
//! - Docker's (and Podman's) default seccomp profile refuses `clone`/`unshare` with
//!   `CLONE_NEWUSER` (EPERM) and `clone3` (ENOSYS), and `mount` without `CAP_SYS_ADMIN`, which
//!   Docker's default capability set lacks;
//! - the runtime's masked paths: `/proc/kcore`, `/proc/keys`, `/proc/timer_list`, ... are covered
//!   by `/dev/null` or a tmpfs, and `/proc/sys`, `/proc/bus`, ... are read-only binds. The kernel
//!   then refuses a new proc mount in a user namespace (EPERM, `mnt_too_revealing`: the new proc
//!   would show what the covers hide), so a sandbox gets no /proc of its own;
//! - a /proc mounted read-only (some hardened runtimes): the parent cannot write a run's uid/gid
//!   maps or its `oom_score_adj` through `/proc/PID/`, and a new proc is refused as well.
//!
//! [`observe`] reads what the process can see (its seccomp mode, no_new_privs and bounding set
//! from `/proc/thread-self/status`, how `/proc` is covered from `/proc/self/mountinfo`, the marker
//! files runtimes leave); [`probe`] makes one clone with a user, mount and pid namespace whose
//! child mounts a proc with the flags and data a run uses ([`super::plan::PROC_FLAGS`],
//! [`super::plan::PROC_DATA`]); [`classify`] decides from both, pure and unit-tested on samples
//! of what such hosts show; [`check`] is what `build()` asks, [`doctor`] what `nanobox doctor` prints.

use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use crate::error::Error;

/// Files container runtimes leave in the container's root.
pub(crate) const MARKERS: &[&str] = &["/.dockerenv", "/run/.containerenv"];

/// Docker's default capability set (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
/// SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP) as a bitmask.
pub(crate) const DOCKER_CAPS: u64 = 0xa804_25fb;

const CAP_SYS_ADMIN: u32 = 21;

/// Capability names by number (linux/capability.h).
const CAP_NAMES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// Mount points under /proc that do not keep a new proc from being mounted: the kernel's
/// permanently empty directories (a mount on one hides nothing of proc's).
const HARMLESS_UNDER_PROC: &[&str] = &["/proc/sys/fs/binfmt_misc"];

/// What `/proc/thread-self/status` says about the calling thread.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct Status {
    /// `Seccomp:` 0 none, 1 strict, 2 filter.
    pub seccomp: Option<u32>,
    /// `NoNewPrivs:`.
    pub no_new_privs: Option<bool>,
    /// `CapBnd:`, the capability bounding set.
    pub cap_bnd: Option<u64>,
}

impl Status {
    pub(crate) fn parse(text: &str) -> Status {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        Status {
            seccomp: field("Seccomp:").and_then(|v| v.parse().ok()),
            no_new_privs: field("NoNewPrivs:").map(|v| v == "1"),
            cap_bnd: field("CapBnd:").and_then(|v| u64::from_str_radix(&v, 16).ok()),
        }
    }

    fn filtered(&self) -> bool {
        self.seccomp == Some(2)
    }
}

/// How the /proc this process sees is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ProcView {
    /// No proc at /proc (or no mountinfo to tell).
    Missing,
    Mounted {
        /// /proc itself is mounted read-only.
        read_only: bool,
        /// Mount points below /proc that cover part of it (masked files, read-only binds), in
        /// mountinfo's order; the kernel's permanently empty directories left out.
        covered: Vec<String>,
    },
}

/// Undo mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let digits = b
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok());
        if b[i] == b'\\' {
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read how /proc is mounted from the text of `/proc/self/mountinfo`.
pub(crate) fn proc_view(mountinfo: &str) -> ProcView {
    let mut proc_mount: Option<bool> = None;
    let mut covered = Vec::new();
    for line in mountinfo.lines() {
        let (left, right) = match line.split_once(" - ") {
            Some(p) => p,
            None => continue,
        };
        let f: Vec<&str> = left.split(' ').collect();
        let (Some(point), Some(opts)) = (f.get(4), f.get(5)) else {
            continue;
        };
        let point = unescape(point);
        let fstype = right.split(' ').next().unwrap_or("");
        if point == "/proc" {
            if fstype == "proc" {
                // A later mount at /proc covers the earlier one (and what was mounted below it).
                proc_mount = Some(opts.split(',').any(|o| o == "ro"));
                covered.clear();
            } else {
                proc_mount = None;
                covered.clear();
            }
        } else if point.starts_with("/proc/")
            && proc_mount.is_some()
            && !HARMLESS_UNDER_PROC.contains(&point.as_str())
        {
            covered.push(point);
        }
    }
    match proc_mount {
        None => ProcView::Missing,
        Some(read_only) => ProcView::Mounted { read_only, covered },
    }
}

/// Everything [`classify`] looks at besides the probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Observed {
    pub status: Status,
    pub proc: ProcView,
    /// The marker files present ([`MARKERS`]).
    pub markers: Vec<String>,
    /// A sysctl that refuses user namespaces, as the error names it ("user.max_user_namespaces
    /// is 0"), with its fix.
    pub sysctl: Option<(&'static str, &'static str)>,
    /// The highest capability number of this kernel.
    pub cap_last: u32,
}

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The sysctl that refuses user namespaces here, if one does, and its fix.
pub(crate) fn refusing_sysctl() -> Option<(&'static str, &'static str)> {
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some((
            "user.max_user_namespaces is 0",
            "sysctl -w user.max_user_namespaces=15000",
        ));
    }
    // Debian's switch spares callers with CAP_SYS_ADMIN (root).
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0")
        && !rustix::process::geteuid().is_root()
    {
        return Some((
            "kernel.unprivileged_userns_clone is 0",
            "sysctl -w kernel.unprivileged_userns_clone=1",
        ));
    }
    None
}

/// Read what this process can see.
pub(crate) fn observe() -> Observed {
    observe_with(
        std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .as_deref(),
    )
}

fn observe_with(mountinfo: Option<&str>) -> Observed {
    Observed {
        status: Status::parse(&read("/proc/thread-self/status").unwrap_or_default()),
        proc: mountinfo.map(proc_view).unwrap_or(ProcView::Missing),
        markers: MARKERS
            .iter()
            .filter(|m| std::path::Path::new(m).exists())
            .map(|m| m.to_string())
            .collect(),
        sysctl: refusing_sysctl(),
        cap_last: super::userns::cap_last(),
    }
}

/// What the probe's clone showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Probe {
    /// A user, mount and pid namespace were created and a new proc mounted in them.
    Ok,
    /// The clone failed with this errno.
    CloneFailed(i32),
    /// Making the new mount namespace's mounts private failed with this errno.
    PrivateFailed(i32),
    /// Mounting the new proc failed with this errno.
    ProcFailed(i32),
    /// The probe's process died of a signal (a filter with `SECCOMP_RET_KILL`, ...).
    Killed,
}

/// The stage bit of the probe child's exit code: set when making mounts private failed.
const STAGE_PRIVATE: i32 = 0x80;

/// Clone into a new user, mount and pid namespace and mount a proc there, as a run's init does.
pub(crate) fn probe() -> Probe {
    let flags = (libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID) as u64;
    let proc_flags = super::plan::PROC_FLAGS.bits() as libc::c_ulong;
    let data = super::plan::PROC_DATA.as_ptr();
    let mask = super::userns::block_all_signals();
    // SAFETY: the child makes only raw syscalls (mount, _exit) on data prepared before the
    // clone, with every signal blocked, and ends in _exit.
    let cloned = unsafe { super::userns::clone_pidfd(flags, None) };
    if let Ok((0, _)) = cloned {
        let none: *const libc::c_char = std::ptr::null();
        // SAFETY: child side: raw mount(2) syscalls (async-signal-safe) with static C strings,
        // then _exit with the errno of the step that failed (0 when both worked).
        unsafe {
            if libc::syscall(
                libc::SYS_mount,
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                none,
            ) != 0
            {
                libc::_exit(STAGE_PRIVATE | (super::sys::last_errno() & 0x7f));
            }
            let code = if libc::syscall(
                libc::SYS_mount,
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                proc_flags,
                data,
            ) == 0
            {
                0
            } else {
                super::sys::last_errno() & 0x7f
            };
            libc::_exit(code)
        }
    }
    super::userns::restore_signals(&mask);
    match cloned {
        Err(e) => Probe::CloneFailed(e.raw_os_error().unwrap_or(0)),
        // Nothing was shown to work without a child to wait for.
        Ok((_, None)) => Probe::ProcFailed(libc::ECHILD),
        Ok((_, Some(pidfd))) => match super::userns::wait_pidfd(&pidfd) {
            Ok((Some(0), _)) => Probe::Ok,
            Ok((Some(code), _)) if code & STAGE_PRIVATE != 0 => Probe::PrivateFailed(code & 0x7f),
            Ok((Some(code), _)) => Probe::ProcFailed(code),
            Ok((None, _)) => Probe::Killed,
            Err(e) => Probe::ProcFailed(e.raw_os_error().unwrap_or(libc::ECHILD)),
        },
    }
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Case {
    /// No container restriction seen, and everything works.
    NoContainerSignals,
    /// Signs of a container (named), but nothing a sandbox needs is refused.
    Permissive(Vec<String>),
    /// User namespaces refused by something other than a container's seccomp profile (a
    /// sysctl, AppArmor, a namespace limit): [`super::userns::diagnose_clone_error`] names it.
    NamespacesRefused(i32),
    /// A seccomp filter (a container's profile) refuses user namespaces.
    SeccompRefusesNamespaces(i32),
    /// No proc mounted at /proc.
    NoProc,
    /// /proc is mounted read-only.
    ReadOnlyProc,
    /// The kernel refuses a new proc because /proc has covered paths (masked by a runtime).
    MaskedProc { errno: i32, covered: Vec<String> },
    /// A new proc could not be mounted for another reason (a filter refusing mount, ...):
    /// the step that failed and its errno.
    ProcMountRefused { step: &'static str, errno: i32 },
}

/// The signs of a container in what was observed, one phrase each.
pub(crate) fn signs(obs: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    if obs.status.filtered() {
        out.push("a seccomp filter (Seccomp: 2)".to_string());
    }
    if obs.status.no_new_privs == Some(true) {
        out.push("no_new_privs set".to_string());
    }
    if let Some(missing) = missing_caps(obs) {
        out.push(missing);
    }
    for m in &obs.markers {
        out.push(format!("{m} present"));
    }
    if let ProcView::Mounted { covered, .. } = &obs.proc {
        if !covered.is_empty() {
            out.push(format!("{} mount(s) over parts of /proc", covered.len()));
        }
    }
    out
}

/// The bounding set's missing capabilities, as a phrase; None when it is full.
fn missing_caps(obs: &Observed) -> Option<String> {
    let bnd = obs.status.cap_bnd?;
    let last = obs.cap_last.min(63);
    let full = if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    let gone = full & !bnd;
    if gone == 0 {
        return None;
    }
    let names: Vec<String> = (0..=last)
        .filter(|c| gone & (1 << c) != 0)
        .map(|c| format!("CAP_{}", CAP_NAMES.get(c as usize).copied().unwrap_or("?")))
        .collect();
    let list = if names.len() <= 4 {
        names.join(", ")
    } else {
        // CAP_SYS_ADMIN first when it is gone: it is the one mounting needs.
        let admin = gone & (1 << CAP_SYS_ADMIN) != 0;
        let mut shown: Vec<&str> = Vec::new();
        if admin {
            shown.push("CAP_SYS_ADMIN");
        }
        shown.extend(
            names
                .iter()
                .map(String::as_str)
                .filter(|n| *n != "CAP_SYS_ADMIN")
                .take(4 - shown.len()),
        );
        format!("{} capabilities ({}, ...)", names.len(), shown.join(", "))
    };
    Some(format!(
        "a bounding set {bnd:016x}{} without {list}",
        if bnd == DOCKER_CAPS {
            " (Docker's default capabilities)"
        } else {
            ""
        }
    ))
}

/// Decide what keeps a sandbox from running here, from what was observed and the probe.
pub(crate) fn classify(obs: &Observed, probe: Probe) -> Case {
    // Refused in every mode: the parent writes each run's files through /proc/PID.
    match &obs.proc {
        ProcView::Missing => return Case::NoProc,
        ProcView::Mounted {
            read_only: true, ..
        } => return Case::ReadOnlyProc,
        ProcView::Mounted { .. } => {}
    }
    match probe {
        Probe::CloneFailed(e) => {
            // A sysctl that refuses them is the cause, whatever filter also runs.
            if obs.sysctl.is_none()
                && obs.status.filtered()
                && (e == libc::EPERM || e == libc::ENOSYS)
            {
                Case::SeccompRefusesNamespaces(e)
            } else {
                Case::NamespacesRefused(e)
            }
        }
        Probe::Ok => {
            let signs = signs(obs);
            if signs.is_empty() {
                Case::NoContainerSignals
            } else {
                Case::Permissive(signs)
            }
        }
        Probe::Killed => Case::ProcMountRefused {
            step: "the probe's mounts (its process was killed by a signal, as a seccomp filter \
                   with SECCOMP_RET_KILL refuses a call)",
            errno: 0,
        },
        Probe::PrivateFailed(errno) => Case::ProcMountRefused {
            step: "making its mounts private",
            errno,
        },
        Probe::ProcFailed(errno) => match &obs.proc {
            ProcView::Mounted { covered, .. } if errno == libc::EPERM && !covered.is_empty() => {
                Case::MaskedProc {
                    errno,
                    covered: covered.clone(),
                }
            }
            _ => Case::ProcMountRefused {
                step: "mounting its own proc",
                errno,
            },
        },
    }
}

fn os(errno: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno)
}

/// The fix for a seccomp profile that refuses what a sandbox needs (`what`).
fn profile_fix(what: &str) -> String {
    format!(
        "start the container with a seccomp profile that allows {what}: Docker `docker run \
         --security-opt seccomp=PROFILE.json` (Docker's default profile with those calls \
         allowed), Podman `podman run --security-opt seccomp=PROFILE.json`, Kubernetes \
         `securityContext.seccompProfile: {{type: Localhost, localhostProfile: PROFILE.json}}`"
    )
}

/// The opt-in's sentence, for the cases the degraded mode can run in.
pub(crate) const OPT_IN: &str =
    "or allow weaker isolation with --allow-degraded-isolation (allow_degraded_isolation)";

impl Case {
    /// Whether a sandbox can run here with full isolation.
    pub(crate) fn ok(&self) -> bool {
        matches!(self, Case::NoContainerSignals | Case::Permissive(_))
    }

    /// Whether the degraded mode (no namespaces, no /proc) can stand in, with the opt-in.
    pub(crate) fn degradable(&self) -> bool {
        !matches!(self, Case::NoProc | Case::ReadOnlyProc) && !self.ok()
    }

    /// Whether the case is the container's doing (not a host setting).
    pub(crate) fn is_container(&self) -> bool {
        !matches!(
            self,
            Case::NoContainerSignals | Case::Permissive(_) | Case::NamespacesRefused(_)
        )
    }

    pub(crate) fn missing(&self) -> &'static str {
        match self {
            Case::NoContainerSignals | Case::Permissive(_) => "nothing",
            Case::NamespacesRefused(_) | Case::SeccompRefusesNamespaces(_) => "user namespaces",
            Case::NoProc => "a /proc (proc mounted at /proc)",
            Case::ReadOnlyProc => "a read-write /proc",
            Case::MaskedProc { .. } | Case::ProcMountRefused { .. } => {
                "a new /proc in the sandbox's namespaces"
            }
        }
    }

    /// The cause, in a sentence (no trailing period).
    pub(crate) fn cause(&self, obs: &Observed) -> String {
        let markers = if obs.markers.is_empty() {
            String::new()
        } else {
            format!(", {} present", obs.markers.join(", "))
        };
        match self {
            Case::NoContainerSignals => "no container restriction seen".into(),
            Case::Permissive(s) => format!(
                "a container, seen by {}, that keeps nothing a sandbox needs from it",
                s.join(", ")
            ),
            Case::NamespacesRefused(e) => match super::userns::diagnose_clone_error(os(*e)) {
                Error::HostUnsupported { cause, .. } => cause,
                other => other.to_string(),
            },
            Case::SeccompRefusesNamespaces(e) => format!(
                "a seccomp filter (a container's profile{markers}) refuses clone with \
                 CLONE_NEWUSER ({}), and no sysctl does",
                os(*e)
            ),
            Case::NoProc => "no proc filesystem is mounted at /proc, where every run's uid/gid \
                 maps and oom_score_adj are written; no mode can run"
                .into(),
            Case::ReadOnlyProc => format!(
                "/proc is mounted read-only here{markers}, and every run's uid/gid maps and \
                 oom_score_adj are written there; no mode can run, also with \
                 --allow-degraded-isolation"
            ),
            Case::MaskedProc { errno, covered } => {
                let shown: Vec<&str> = covered.iter().take(3).map(String::as_str).collect();
                format!(
                    "the kernel refuses a new proc ({}) under the paths mounted over this /proc \
                     ({}{}){markers}",
                    os(*errno),
                    shown.join(", "),
                    if covered.len() > shown.len() {
                        format!(", {} more", covered.len() - shown.len())
                    } else {
                        String::new()
                    }
                )
            }
            Case::ProcMountRefused { step, errno } => format!(
                "{step} failed{}{}",
                if *errno == 0 {
                    String::new()
                } else {
                    format!(" ({})", os(*errno))
                },
                if obs.status.filtered() {
                    format!(" under a seccomp filter (a container's profile{markers})")
                } else {
                    "; an LSM or a container's policy refuses mounting".into()
                }
            ),
        }
    }

    /// The fix in a line, as a refusal gives it: Docker's flag ([`Case::fix_long`] has Podman's
    /// and Kubernetes', for doctor); never `--privileged`.
    pub(crate) fn fix(&self) -> String {
        let docker = |flag: &str, what: &str| {
            format!("{what} (docker run --security-opt {flag}; others: nanobox doctor)")
        };
        match self {
            Case::SeccompRefusesNamespaces(_) => docker(
                "seccomp=PROFILE.json",
                "start the container with a seccomp profile that allows user namespaces",
            ),
            Case::MaskedProc { .. } => docker(
                "systempaths=unconfined",
                "start the container with /proc unmasked",
            ),
            Case::ProcMountRefused { .. } => docker(
                "seccomp=PROFILE.json",
                "start the container with a seccomp profile that allows mount",
            ),
            Case::ReadOnlyProc => "give the container a read-write /proc (mount -o remount,rw \
                                   /proc where allowed)"
                .into(),
            _ => self.fix_long(),
        }
    }

    /// The fix with every runtime's way to apply it (no trailing period); never `--privileged`.
    pub(crate) fn fix_long(&self) -> String {
        match self {
            Case::NoContainerSignals | Case::Permissive(_) => String::new(),
            Case::NamespacesRefused(e) => match super::userns::diagnose_clone_error(os(*e)) {
                Error::HostUnsupported { fix, .. } => fix,
                other => other.to_string(),
            },
            Case::SeccompRefusesNamespaces(_) => profile_fix(
                "clone, clone3 and unshare with CLONE_NEWUSER (and the other CLONE_NEW* flags)",
            ),
            Case::NoProc => "mount proc at /proc (`mount -t proc proc /proc`; container runtimes \
                             do by default)"
                .into(),
            Case::ReadOnlyProc => "give the container a read-write /proc (the runtimes' \
                                   default): remove the read-only /proc mount or option that \
                                   made it so, or remount it with `mount -o remount,rw /proc` \
                                   where that is allowed"
                .into(),
            Case::MaskedProc { .. } => "start the container with /proc unmasked: Docker `docker \
                 run --security-opt systempaths=unconfined`, Podman `podman run --security-opt \
                 unmask=ALL`, Kubernetes `securityContext.procMount: Unmasked` (with `hostUsers: \
                 false`)"
                .into(),
            Case::ProcMountRefused { .. } => {
                profile_fix("mount, umount2, pivot_root, open_tree, move_mount and mount_setattr")
            }
        }
    }

    /// The error `build()` returns for a case that is not [`Case::ok`].
    pub(crate) fn error(&self, obs: &Observed) -> Error {
        let mut fix = self.fix();
        if self.degradable() {
            fix = format!("{fix}; {OPT_IN}");
        }
        Error::HostUnsupported {
            missing: self.missing(),
            cause: self.cause(obs),
            fix,
        }
    }

    /// What the degraded mode's first note says was lost, and why.
    pub(crate) fn lost(&self, obs: &Observed) -> String {
        match self {
            Case::MaskedProc { .. } | Case::ProcMountRefused { .. } => format!(
                "no new /proc in the sandbox's namespaces ({})",
                self.cause(obs)
            ),
            _ => format!("user namespaces unavailable ({})", self.cause(obs)),
        }
    }
}

/// Why `build()` cannot have full isolation here.
#[derive(Debug)]
pub(crate) struct Blocked {
    /// The error without the opt-in (or when the degraded mode cannot run either).
    pub error: Error,
    /// The degraded mode's note on what was lost, when it can stand in.
    pub lost: Option<String>,
    /// The `missing` of the degraded mode's own refusal.
    pub missing: &'static str,
}

/// The key of the inputs a successful probe was made with: the same process, the same view of
/// /proc and the same sysctls give the same answer.
fn inputs_key(obs: &Observed, mountinfo: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    obs.hash(&mut h);
    rustix::process::geteuid().as_raw().hash(&mut h);
    mountinfo.hash(&mut h);
    for p in [
        "/proc/sys/user/max_user_namespaces",
        "/proc/sys/kernel/unprivileged_userns_clone",
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
    ] {
        read(p).hash(&mut h);
    }
    h.finish()
}

/// The inputs of the last probe that found everything possible. A failure is never cached: a
/// namespace limit reached now may be free a moment later.
static PASSED: Mutex<Option<u64>> = Mutex::new(None);

/// What `build()` asks: can a user namespace be created, with capabilities in it, and a new
/// /proc be mounted in the sandbox's namespaces?
pub(crate) fn check() -> Result<(), Blocked> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok();
    let obs = observe_with(mountinfo.as_deref());
    let key = inputs_key(&obs, mountinfo.as_deref());
    if *PASSED.lock().unwrap_or_else(|p| p.into_inner()) == Some(key) {
        return Ok(());
    }
    let case = classify(&obs, probe());
    if case.ok() {
        // Created, but without capabilities inside under AppArmor's restriction (the probe's
        // mount would have failed then; this names the restriction when only the test sees it).
        if let Some(err) = super::apparmor::restricted_here() {
            return Err(Blocked {
                lost: Some(format!("user namespaces unavailable ({err})")),
                error: err,
                missing: "user namespaces",
            });
        }
        *PASSED.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
        return Ok(());
    }
    // AppArmor's restriction shows as a refused mount in a namespace that was created: it names
    // the restriction and its fixes instead.
    if matches!(
        case,
        Case::ProcMountRefused {
            errno: libc::EPERM | libc::EACCES,
            ..
        }
    ) {
        if let Some(err) = super::apparmor::restricted_here() {
            return Err(Blocked {
                lost: Some(format!("user namespaces unavailable ({err})")),
                error: err,
                missing: "user namespaces",
            });
        }
    }
    Err(Blocked {
        error: case.error(&obs),
        lost: case.degradable().then(|| case.lost(&obs)),
        missing: case.missing(),
    })
}

/// `nanobox doctor`'s two lines: "container restrictions" and "a new /proc in the sandbox's
/// namespaces", each as (ok, detail, fix).
pub(crate) fn doctor() -> [(bool, String, Option<String>); 2] {
    let obs = observe();
    doctor_lines(&obs, &classify(&obs, probe()))
}

/// What was observed, in one phrase.
fn observed_text(obs: &Observed) -> String {
    let seccomp = match obs.status.seccomp {
        Some(2) => "a seccomp filter (Seccomp: 2)".to_string(),
        Some(1) => "strict seccomp (Seccomp: 1)".to_string(),
        Some(_) => "no seccomp filter".to_string(),
        None => "seccomp mode unknown".to_string(),
    };
    let nnp = match obs.status.no_new_privs {
        Some(true) => "no_new_privs set",
        Some(false) => "no_new_privs not set",
        None => "no_new_privs unknown",
    };
    let caps = missing_caps(obs).unwrap_or_else(|| {
        if obs.status.cap_bnd.is_some() {
            "a full bounding set".into()
        } else {
            "bounding set unknown".into()
        }
    });
    let markers = if obs.markers.is_empty() {
        "no runtime marker file".to_string()
    } else {
        obs.markers.join(", ")
    };
    let proc_ = match &obs.proc {
        ProcView::Missing => "no proc at /proc".to_string(),
        ProcView::Mounted { read_only, covered } => format!(
            "/proc {}{}",
            if *read_only {
                "read-only"
            } else {
                "read-write"
            },
            if covered.is_empty() {
                ", nothing mounted over it".to_string()
            } else {
                format!(
                    ", {} path(s) mounted over it ({}{})",
                    covered.len(),
                    covered
                        .iter()
                        .take(4)
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    if covered.len() > 4 { ", ..." } else { "" }
                )
            }
        ),
    };
    format!("{seccomp}, {nnp}, {caps}, {markers}, {proc_}")
}

/// The doctor lines from what was observed and classified.
pub(crate) fn doctor_lines(obs: &Observed, case: &Case) -> [(bool, String, Option<String>); 2] {
    let seen = observed_text(obs);
    let restrictions = if case.is_container() {
        (
            false,
            format!("{seen}: {}", case.cause(obs)),
            Some(format!(
                "{}{}",
                case.fix_long(),
                if case.degradable() {
                    format!("; {OPT_IN}")
                } else {
                    String::new()
                }
            )),
        )
    } else {
        let verdict = match case {
            Case::NamespacesRefused(_) => {
                "user namespaces are refused by the host, not by a container restriction (the \
                 \"user namespaces\" line)"
            }
            Case::NoContainerSignals => "no container restriction",
            _ => "none of them keeps a sandbox from running",
        };
        (true, format!("{seen}: {verdict}"), None)
    };
    let new_proc = match case {
        Case::NoContainerSignals | Case::Permissive(_) => (
            true,
            format!(
                "a proc ({}, {}) was mounted in a new user, mount and pid namespace",
                "nosuid,nodev,noexec",
                super::plan::PROC_DATA.to_string_lossy()
            ),
            None,
        ),
        Case::NamespacesRefused(_) | Case::SeccompRefusesNamespaces(_) => (
            false,
            "not tested: it needs a user namespace, which could not be created".into(),
            Some(
                "make user namespaces available (the \"user namespaces\" and \"container \
                 restrictions\" lines)"
                    .into(),
            ),
        ),
        _ => (
            false,
            case.cause(obs),
            Some(format!(
                "{}{}",
                case.fix_long(),
                if case.degradable() {
                    format!("; {OPT_IN}")
                } else {
                    String::new()
                }
            )),
        ),
    };
    [restrictions, new_proc]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/self/mountinfo of a Docker container with the default masked and read-only paths
    /// (moby's `oci.DefaultSpec` lists), laid out as Docker mounts them; written from those lists,
    /// not recorded in a real container here.
    const DOCKER_MOUNTINFO: &str = "\
633 545 0:52 / / rw,relatime master:305 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
634 633 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
635 633 0:56 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
546 634 0:55 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
547 634 0:55 /fs /proc/fs ro,nosuid,nodev,noexec,relatime - proc proc rw
548 634 0:55 /irq /proc/irq ro,nosuid,nodev,noexec,relatime - proc proc rw
549 634 0:55 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
550 634 0:55 /sysrq-trigger /proc/sysrq-trigger ro,nosuid,nodev,noexec,relatime - proc proc rw
551 634 0:61 / /proc/asound ro,relatime - tmpfs tmpfs ro,inode64
552 634 0:62 / /proc/acpi ro,relatime - tmpfs tmpfs ro,inode64
553 634 0:56 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
554 634 0:56 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
555 634 0:56 /null /proc/timer_list rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755,inode64
556 634 0:63 / /proc/scsi ro,relatime - tmpfs tmpfs ro,inode64
557 635 0:64 / /sys/firmware ro,relatime - tmpfs tmpfs ro,inode64
";

    /// A plain Debian host: systemd's binfmt_misc automount under /proc.
    const HOST_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
27 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
48 22 0:41 / /proc/sys/fs/binfmt_misc rw,relatime shared:26 - autofs systemd-1 rw,fd=30
";

    const READ_ONLY_MOUNTINFO: &str = "\
27 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
48 27 0:21 / /proc ro,relatime - proc proc rw
";

    /// The status fields of root in a container with Docker's default profile and capabilities
    /// (the bounding set is Docker's 14 default capabilities; what the launcher of
    /// tests/containers.rs shows, `CapBnd: 00000000a80425fb`).
    const DOCKER_STATUS: &str = "CapBnd:\t00000000a80425fb\nNoNewPrivs:\t0\nSeccomp:\t2\n\
                                 Seccomp_filters:\t1\n";
    const HOST_STATUS: &str = "CapBnd:\t000001ffffffffff\nNoNewPrivs:\t0\nSeccomp:\t0\n";

    fn obs(status: &str, mountinfo: &str, markers: &[&str]) -> Observed {
        Observed {
            status: Status::parse(status),
            proc: proc_view(mountinfo),
            markers: markers.iter().map(|m| m.to_string()).collect(),
            sysctl: None,
            cap_last: 40,
        }
    }

    fn docker() -> Observed {
        obs(DOCKER_STATUS, DOCKER_MOUNTINFO, &["/.dockerenv"])
    }

    fn host() -> Observed {
        obs(HOST_STATUS, HOST_MOUNTINFO, &[])
    }

    #[test]
    fn status_fields_are_read() {
        let s = Status::parse(DOCKER_STATUS);
        assert_eq!(s.seccomp, Some(2));
        assert_eq!(s.no_new_privs, Some(false));
        assert_eq!(s.cap_bnd, Some(DOCKER_CAPS));
        assert_eq!(Status::parse(""), Status::default());
    }

    #[test]
    fn docker_s_masked_and_read_only_paths_are_seen_as_covering_proc() {
        let ProcView::Mounted { read_only, covered } = proc_view(DOCKER_MOUNTINFO) else {
            panic!("no /proc");
        };
        assert!(!read_only);
        for p in [
            "/proc/kcore",
            "/proc/keys",
            "/proc/acpi",
            "/proc/sys",
            "/proc/scsi",
        ] {
            assert!(covered.iter().any(|c| c == p), "{p} in {covered:?}");
        }
        assert_eq!(covered.len(), 11);
        // /sys/firmware is not under /proc.
        assert!(!covered.iter().any(|c| c.starts_with("/sys")));
    }

    #[test]
    fn a_host_s_binfmt_misc_automount_does_not_cover_proc() {
        assert_eq!(
            proc_view(HOST_MOUNTINFO),
            ProcView::Mounted {
                read_only: false,
                covered: vec![]
            }
        );
    }

    #[test]
    fn read_only_missing_and_stacked_procs_are_told_apart() {
        assert_eq!(
            proc_view(READ_ONLY_MOUNTINFO),
            ProcView::Mounted {
                read_only: true,
                covered: vec![]
            }
        );
        assert_eq!(
            proc_view("27 1 8:1 / / rw - ext4 /dev/sda1 rw\n"),
            ProcView::Missing
        );
        // A second proc mounted at /proc hides the first and what covered it.
        let stacked =
            format!("{DOCKER_MOUNTINFO}700 634 0:70 / /proc rw,relatime - proc proc rw\n");
        assert_eq!(
            proc_view(&stacked),
            ProcView::Mounted {
                read_only: false,
                covered: vec![]
            }
        );
        // Escaped mount points are unescaped.
        let spaced =
            "22 27 0:21 / /proc rw - proc proc rw\n30 22 0:5 / /proc/a\\040b rw - tmpfs t rw\n";
        assert_eq!(
            proc_view(spaced),
            ProcView::Mounted {
                read_only: false,
                covered: vec!["/proc/a b".into()]
            }
        );
    }

    #[test]
    fn a_plain_host_has_no_container_signals() {
        assert_eq!(classify(&host(), Probe::Ok), Case::NoContainerSignals);
        let lines = doctor_lines(&host(), &Case::NoContainerSignals);
        assert!(lines[0].0 && lines[1].0, "{lines:?}");
        assert!(lines[0].1.contains("no seccomp filter"), "{}", lines[0].1);
    }

    #[test]
    fn a_container_that_allows_everything_is_permissive() {
        let mut o = docker();
        o.proc = proc_view(HOST_MOUNTINFO);
        let case = classify(&o, Probe::Ok);
        let Case::Permissive(signs) = &case else {
            panic!("{case:?}");
        };
        let all = signs.join("; ");
        assert!(
            all.contains("seccomp filter") && all.contains("/.dockerenv"),
            "{all}"
        );
        assert!(all.contains("Docker's default capabilities"), "{all}");
        assert!(case.ok() && !case.is_container());
    }

    #[test]
    fn docker_s_default_profile_is_named_with_the_profile_fix() {
        for errno in [libc::EPERM, libc::ENOSYS] {
            let case = classify(&docker(), Probe::CloneFailed(errno));
            assert_eq!(case, Case::SeccompRefusesNamespaces(errno));
            let Error::HostUnsupported {
                missing,
                cause,
                fix,
            } = case.error(&docker())
            else {
                panic!()
            };
            assert_eq!(missing, "user namespaces");
            assert!(
                cause.contains("seccomp filter") && cause.contains("/.dockerenv"),
                "{cause}"
            );
            assert!(fix.contains("--security-opt seccomp=PROFILE.json"), "{fix}");
            assert!(fix.contains("--allow-degraded"), "{fix}");
            assert!(!fix.contains("privileged"), "{fix}");
            assert!(case.degradable());
        }
    }

    #[test]
    fn a_sysctl_outranks_the_seccomp_filter() {
        let mut o = docker();
        o.sysctl = Some(("user.max_user_namespaces is 0", "sysctl -w x"));
        assert_eq!(
            classify(&o, Probe::CloneFailed(libc::EPERM)),
            Case::NamespacesRefused(libc::EPERM)
        );
        // Without a filter, a refused clone is never the container's profile.
        assert_eq!(
            classify(&host(), Probe::CloneFailed(libc::EPERM)),
            Case::NamespacesRefused(libc::EPERM)
        );
        // AppArmor refuses with EACCES, a limit with ENOSPC: not the filter.
        for e in [libc::EACCES, libc::ENOSPC] {
            assert_eq!(
                classify(&docker(), Probe::CloneFailed(e)),
                Case::NamespacesRefused(e)
            );
        }
        let lines = doctor_lines(&o, &Case::NamespacesRefused(libc::EPERM));
        assert!(
            lines[0].0,
            "a host sysctl is not a container restriction: {lines:?}"
        );
        assert!(
            !lines[1].0 && lines[1].1.starts_with("not tested"),
            "{lines:?}"
        );
    }

    #[test]
    fn masked_proc_is_named_with_the_runtimes_unmask_flags() {
        let mut o = docker();
        o.status = Status::parse(HOST_STATUS);
        let case = classify(&o, Probe::ProcFailed(libc::EPERM));
        let Case::MaskedProc { covered, .. } = &case else {
            panic!("{case:?}")
        };
        assert_eq!(covered.len(), 11);
        let Error::HostUnsupported {
            missing,
            cause,
            fix,
        } = case.error(&o)
        else {
            panic!()
        };
        assert_eq!(missing, "a new /proc in the sandbox's namespaces");
        // The refusal is short: the first masked paths and Docker's flag; doctor has the rest.
        assert!(
            cause.contains("/proc/bus") && cause.contains(", 8 more"),
            "{cause}"
        );
        for flag in ["--security-opt systempaths=unconfined", "--allow-degraded"] {
            assert!(fix.contains(flag), "{flag} not in {fix}");
        }
        for flag in [
            "--security-opt systempaths=unconfined",
            "--security-opt unmask=ALL",
            "procMount: Unmasked",
        ] {
            assert!(case.fix_long().contains(flag), "{flag} not in the long fix");
        }
        assert!(!fix.contains("privileged"), "{fix}");
        assert!(case
            .lost(&o)
            .starts_with("no new /proc in the sandbox's namespaces ("));
        let lines = doctor_lines(&o, &case);
        assert!(!lines[0].0 && !lines[1].0, "{lines:?}");
        assert!(lines[1].1.contains("mounted over"), "{}", lines[1].1);
        assert!(lines[1]
            .2
            .as_deref()
            .unwrap()
            .contains("systempaths=unconfined"));
    }

    #[test]
    fn a_refused_mount_without_covered_proc_is_not_called_masked() {
        let case = classify(&host(), Probe::ProcFailed(libc::EPERM));
        assert!(
            matches!(
                case,
                Case::ProcMountRefused {
                    errno: libc::EPERM,
                    ..
                }
            ),
            "{case:?}"
        );
        // A filter that refuses mount: the first mount (make-private) already fails.
        let mut o = host();
        o.status.seccomp = Some(2);
        let case = classify(&o, Probe::PrivateFailed(libc::EPERM));
        let Case::ProcMountRefused { step, .. } = &case else {
            panic!("{case:?}")
        };
        assert!(step.contains("private"));
        let cause = case.cause(&o);
        assert!(cause.contains("seccomp filter"), "{cause}");
        let fix = case.fix();
        assert!(
            fix.contains("mount") && fix.contains("seccomp=PROFILE.json"),
            "{fix}"
        );
        assert!(case.degradable());
        // Another errno on a covered /proc is not the masking either.
        assert!(matches!(
            classify(&docker_userns_ok(), Probe::ProcFailed(libc::EINVAL)),
            Case::ProcMountRefused { .. }
        ));
    }

    #[test]
    fn a_probe_killed_by_a_filter_is_a_refused_mount_without_an_errno() {
        let case = classify(&host(), Probe::Killed);
        let cause = case.cause(&host());
        assert!(cause.contains("killed by a signal"), "{cause}");
        assert!(!cause.contains("os error"), "{cause}");
        assert!(case.degradable());
    }

    fn docker_userns_ok() -> Observed {
        let mut o = docker();
        o.status.seccomp = Some(0);
        o
    }

    #[test]
    fn a_read_only_proc_is_refused_in_every_mode() {
        let o = obs(HOST_STATUS, READ_ONLY_MOUNTINFO, &[]);
        for p in [
            Probe::Ok,
            Probe::ProcFailed(libc::EPERM),
            Probe::CloneFailed(libc::EPERM),
        ] {
            assert_eq!(classify(&o, p), Case::ReadOnlyProc);
        }
        let case = Case::ReadOnlyProc;
        assert!(!case.ok() && !case.degradable());
        let Error::HostUnsupported {
            missing,
            cause,
            fix,
        } = case.error(&o)
        else {
            panic!()
        };
        assert_eq!(missing, "a read-write /proc");
        assert!(cause.contains("read-only") && cause.contains("also with --allow-degraded"));
        assert!(cause.contains("uid/gid maps") && cause.contains("oom_score_adj"));
        assert!(
            !fix.contains("--allow-degraded") && fix.contains("remount,rw"),
            "{fix}"
        );
    }

    #[test]
    fn no_proc_is_refused_in_every_mode() {
        let o = obs(HOST_STATUS, "", &[]);
        assert_eq!(classify(&o, Probe::Ok), Case::NoProc);
        assert!(!Case::NoProc.degradable());
        assert!(Case::NoProc.fix().contains("mount -t proc"));
    }

    #[test]
    fn the_bounding_set_names_what_docker_dropped() {
        let text = missing_caps(&docker()).unwrap();
        assert!(text.contains("00000000a80425fb"), "{text}");
        assert!(text.contains("Docker's default capabilities"), "{text}");
        assert!(text.contains("SYS_ADMIN"), "{text}");
        assert_eq!(missing_caps(&host()), None);
        // One capability dropped: named alone.
        let mut o = host();
        o.status.cap_bnd = Some(0x1ff_feff_ffff);
        assert_eq!(
            missing_caps(&o).unwrap(),
            "a bounding set 000001fffeffffff without CAP_SYS_RESOURCE"
        );
    }

    #[test]
    fn no_fix_suggests_privileged_mode() {
        let o = docker();
        for case in [
            Case::SeccompRefusesNamespaces(libc::EPERM),
            Case::MaskedProc {
                errno: libc::EPERM,
                covered: vec!["/proc/keys".into()],
            },
            Case::ProcMountRefused {
                step: "x",
                errno: libc::EPERM,
            },
            Case::ReadOnlyProc,
            Case::NoProc,
        ] {
            let e = case.error(&o).to_string();
            assert!(!e.contains("privileged"), "{e}");
            let lines = doctor_lines(&o, &case);
            assert!(!lines[0].0, "{case:?}: {lines:?}");
            assert!(!format!("{lines:?}").contains("--privileged"));
        }
    }

    #[test]
    fn the_probe_mounts_a_new_proc_here_and_costs_little() {
        let obs = observe();
        if obs.status.filtered() || refusing_sysctl().is_some() {
            eprintln!("skipped: this process runs under a filter or a sysctl refuses namespaces");
            return;
        }
        let n = 50;
        let t = std::time::Instant::now();
        for _ in 0..n {
            assert_eq!(probe(), Probe::Ok);
        }
        let each = t.elapsed() / n;
        eprintln!("container::probe: {each:?} per probe (mean of {n})");
        assert!(each < std::time::Duration::from_millis(50), "{each:?}");
        assert!(check().is_ok());
        // The second check is answered from the cache.
        let t = std::time::Instant::now();
        assert!(check().is_ok());
        eprintln!("container::check, cached: {:?}", t.elapsed());
    }
}
