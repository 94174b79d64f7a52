//! AppArmor's restriction of unprivileged user namespaces (Ubuntu 23.10 and later, on by default
//! in 24.04: `kernel.apparmor_restrict_unprivileged_userns=1`).
//!
//! Under it, a process that is unconfined and lacks `CAP_SYS_ADMIN` may still create a user
//! namespace, but the kernel confines the new namespace's process with the `unprivileged_userns`
//! profile, which denies every capability. The clone succeeds; the sandbox's setup then fails
//! with EPERM or EACCES (our init's first privileged step, or a map write by a process that is
//! itself confined so). Without the `unprivileged_userns` profile loaded, the clone itself is
//! refused with EACCES; a confined caller whose profile lacks `userns` is refused the same way.
//!
//! The rest of the backend reports a failure here through [`explain`] or [`explain_after_clone`];
//! what they read is an [`Host`] and, when a namespace exists, the label of its process. The
//! decision is [`classify`], pure and tested on recorded samples of what such a host returns
//! (a Debian kernel has no such restriction to reproduce it on).

use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

const RESTRICT: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns";
const COMPLAIN: &str = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns_complain";
const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
/// The profile Ubuntu's kernel confines unprivileged user namespaces with.
const UNPRIVILEGED_USERNS: &str = "unprivileged_userns";
const CAP_SYS_ADMIN: u32 = 21;

/// An AppArmor label as `/proc/PID/attr/current` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Label {
    /// `unconfined`: no profile.
    Unconfined,
    /// A profile, or a stack of them (`a//&b`), and its mode (`enforce`, `complain`, `kill`,
    /// `unconfined`, ...) when the text gives one.
    Profile { name: String, mode: Option<String> },
}

impl Label {
    pub(crate) fn parse(text: &str) -> Option<Label> {
        let t = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if t.is_empty() {
            return None;
        }
        if t == "unconfined" {
            return Some(Label::Unconfined);
        }
        if let Some((name, mode)) = t.strip_suffix(')').and_then(|rest| rest.rsplit_once(" (")) {
            return Some(Label::Profile {
                name: name.to_string(),
                mode: Some(mode.to_string()),
            });
        }
        Some(Label::Profile {
            name: t.to_string(),
            mode: None,
        })
    }

    /// Whether a profile of the label (one of a stack; a policy namespace prefix `:ns:` aside) is
    /// `unprivileged_userns`.
    fn is_unprivileged_userns(&self) -> bool {
        match self {
            Label::Unconfined => false,
            Label::Profile { name, .. } => name
                .split("//&")
                .any(|p| p.trim_start_matches('&').rsplit(':').next() == Some(UNPRIVILEGED_USERNS)),
        }
    }

    /// Whether the label's rules are enforced (not complain mode, not an unconfined-mode profile).
    fn enforced(&self) -> bool {
        match self {
            Label::Unconfined => false,
            Label::Profile { mode, .. } => {
                matches!(mode.as_deref(), None | Some("enforce") | Some("kill"))
            }
        }
    }
}

/// What the host shows about the restriction and about the calling thread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Host {
    /// `kernel.apparmor_restrict_unprivileged_userns`; `None` where the file does not exist
    /// (a kernel without Ubuntu's patches: Debian, upstream, WSL2).
    pub restrict: Option<String>,
    /// `kernel.apparmor_restrict_unprivileged_userns_complain` (1: the restriction only logs).
    pub complain: Option<String>,
    /// `/sys/module/apparmor/parameters/enabled`: `Y` or `N`.
    pub enabled: Option<String>,
    /// The calling thread's label (`/proc/thread-self/attr/apparmor/current`, or
    /// `attr/current` on kernels before the per-LSM directory).
    pub label: Option<String>,
    /// The calling thread's effective capabilities (`CapEff` of `/proc/thread-self/status`):
    /// the restriction spares a creator with `CAP_SYS_ADMIN`.
    pub cap_eff: Option<u64>,
}

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The label of the process (or thread) whose /proc directory is `proc_dir`.
fn label_of(proc_dir: &str) -> Option<String> {
    read(&format!("{proc_dir}/attr/apparmor/current"))
        .or_else(|| read(&format!("{proc_dir}/attr/current")))
        .filter(|s| !s.is_empty())
}

/// `CapEff` from the text of a /proc status file.
fn cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

impl Host {
    pub(crate) fn read() -> Host {
        Host {
            restrict: read(RESTRICT),
            complain: read(COMPLAIN),
            enabled: read(ENABLED),
            label: label_of("/proc/thread-self"),
            cap_eff: read("/proc/thread-self/status").and_then(|s| cap_eff(&s)),
        }
    }

    fn restricting(&self) -> bool {
        self.restrict.as_deref() == Some("1")
            && self.complain.as_deref() != Some("1")
            && self.enabled.as_deref() != Some("N")
    }

    fn sys_admin(&self) -> bool {
        self.cap_eff.is_some_and(|c| c & (1 << CAP_SYS_ADMIN) != 0)
    }
}

/// Where the sandbox's namespaces failed, with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The clone itself.
    Clone(i32),
    /// The clone worked; writing the uid/gid maps (or setgroups) failed.
    Maps(i32),
    /// The clone and the maps worked; a setup step in the sandbox's init failed.
    Child(i32),
    /// `nanobox doctor`'s and the degraded check's test: a capability inside a new user
    /// namespace was refused.
    Test(i32),
}

impl Failure {
    fn errno(self) -> i32 {
        match self {
            Failure::Clone(e) | Failure::Maps(e) | Failure::Child(e) | Failure::Test(e) => e,
        }
    }
    fn stage(self) -> &'static str {
        match self {
            Failure::Clone(_) => "creating the sandbox's user namespace",
            Failure::Maps(_) => "writing the sandbox's uid/gid maps",
            Failure::Child(_) => "the sandbox's setup in its namespaces",
            Failure::Test(_) => "using a capability inside a new user namespace",
        }
    }
}

/// What made the verdict "restricted".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Evidence {
    /// The new namespace's process ran under `unprivileged_userns` (its label, as read).
    NamespaceLabel(String),
    /// This process is unconfined and lacks `CAP_SYS_ADMIN`, under the enforced restriction.
    Unconfined,
    /// This process itself already runs under `unprivileged_userns` (its label, as read).
    Inherited(String),
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not AppArmor's restriction, as far as the host shows: the caller's own diagnosis stands.
    Other,
    /// The namespaces exist, without capabilities inside them.
    Restricted(Evidence),
    /// The clone was refused: with `None`, this process is unconfined and the
    /// `unprivileged_userns` profile is not loaded; with a name, this process's profile does not
    /// allow user namespaces.
    Refused(Option<String>),
}

/// Decide whether `failure` is AppArmor's restriction, from what the host shows and, when the
/// namespace was created, the label its process had (`ns_label`, the text read).
pub(crate) fn classify(host: &Host, failure: Failure, ns_label: Option<&str>) -> Verdict {
    let errno = failure.errno();
    if errno != libc::EPERM && errno != libc::EACCES {
        return Verdict::Other;
    }
    // The namespace's own label is the direct evidence, either way.
    if let Some(ns) = ns_label.and_then(Label::parse) {
        return if ns.is_unprivileged_userns() && ns.enforced() {
            Verdict::Restricted(Evidence::NamespaceLabel(
                ns_label.unwrap_or("").trim().into(),
            ))
        } else {
            Verdict::Other
        };
    }
    if !host.restricting() || host.sys_admin() {
        return Verdict::Other;
    }
    let Some(own) = host.label.as_deref().and_then(Label::parse) else {
        return Verdict::Other;
    };
    match failure {
        // AppArmor refuses a namespace with EACCES; EPERM is another layer (seccomp, a chroot).
        Failure::Clone(e) if e == libc::EACCES => match &own {
            Label::Unconfined => Verdict::Refused(None),
            Label::Profile { name, .. } if own.enforced() => Verdict::Refused(Some(name.clone())),
            Label::Profile { .. } => Verdict::Other,
        },
        Failure::Clone(_) => Verdict::Other,
        Failure::Maps(_) | Failure::Child(_) | Failure::Test(_) => match &own {
            Label::Unconfined => Verdict::Restricted(Evidence::Unconfined),
            p if p.is_unprivileged_userns() && p.enforced() => {
                Verdict::Restricted(Evidence::Inherited(host.label.clone().unwrap_or_default()))
            }
            // A profile that let the namespace be created: its own rules decide the rest.
            Label::Profile { .. } => Verdict::Other,
        },
    }
}

/// The program a fix should name: this process's executable, when a profile can be written for
/// its path.
fn this_program() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .filter(|p| crate::apparmor::profile_for(p).is_ok())
}

/// The two fixes, with the program's path and its profile's file when known.
fn fixes(program: Option<&Path>) -> String {
    let profile = match program.and_then(|p| crate::apparmor::profile_for(p).ok()) {
        Some(prof) => format!(
            "`nanobox doctor --apparmor-profile {}` prints it",
            prof.program.display()
        ),
        None => "`nanobox doctor --apparmor-profile /path/to/program` prints it".into(),
    };
    format!(
        "an AppArmor profile for this program ({profile}), or for the whole host `sudo sysctl -w \
         kernel.apparmor_restrict_unprivileged_userns=0`"
    )
}

const NAMED: &str =
    "AppArmor restricts user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)";

/// The error for a verdict other than [`Verdict::Other`].
pub(crate) fn error_for(
    verdict: &Verdict,
    failure: Failure,
    program: Option<&Path>,
) -> Option<Error> {
    let os = io::Error::from_raw_os_error(failure.errno());
    match verdict {
        Verdict::Other => None,
        Verdict::Restricted(evidence) => {
            // Only a namespace inherited from a parent changes the fix: the parent needs it.
            let inherited = match evidence {
                Evidence::Inherited(l) => format!(
                    "; this process already runs as {l:?}, so the program that started it needs \
                     the profile"
                ),
                Evidence::NamespaceLabel(_) | Evidence::Unconfined => String::new(),
            };
            Some(Error::HostUnsupported {
                missing: "user namespaces with capabilities",
                cause: format!("{NAMED}, so {} failed ({os}){inherited}", failure.stage()),
                fix: fixes(program),
            })
        }
        Verdict::Refused(None) => Some(Error::HostUnsupported {
            missing: "user namespaces",
            cause: format!(
                "{NAMED}, and it refused to create one ({os}): the unprivileged_userns profile \
                 is not loaded"
            ),
            fix: fixes(program),
        }),
        Verdict::Refused(Some(profile)) => Some(Error::HostUnsupported {
            missing: "user namespaces",
            cause: format!(
                "{NAMED}, and it refused to create one ({os}): this process runs under the \
                 AppArmor profile {profile:?}, which does not allow user namespaces"
            ),
            fix: format!(
                "add the rule `userns,` to that profile (e.g. in /etc/apparmor.d/local/{profile}) \
                 and reload it with `sudo apparmor_parser -r`"
            ),
        }),
    }
}

/// Explain `failure` if it is AppArmor's restriction (reads the host; no namespace to look at).
pub(crate) fn explain(failure: Failure) -> Option<Error> {
    let host = Host::read();
    error_for(
        &classify(&host, failure, None),
        failure,
        this_program().as_deref(),
    )
}

/// Explain a failure after the clone of `pid` (alive, or a zombie not yet waited for: its label
/// stays readable until it is reaped).
pub(crate) fn explain_after_clone(pid: libc::pid_t, failure: Failure) -> Option<Error> {
    let errno = failure.errno();
    if errno != libc::EPERM && errno != libc::EACCES {
        return None;
    }
    let host = Host::read();
    let ns = label_of(&format!("/proc/{pid}"));
    error_for(
        &classify(&host, failure, ns.as_deref()),
        failure,
        this_program().as_deref(),
    )
}

/// What a live test of one user namespace showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Live {
    /// The clone failed with this errno.
    CloneFailed(i32),
    /// A namespace was created: its process's label, and the errno of the capability it used
    /// there (0: it worked).
    Created {
        ns_label: Option<String>,
        cap_errno: i32,
    },
}

/// Create a user namespace whose process uses one capability there (`unshare(CLONE_NEWUTS)`
/// needs CAP_SYS_ADMIN in it), read that process's label, and reap it.
pub(crate) fn live_test() -> Live {
    let mask = super::userns::block_all_signals();
    // SAFETY: the child only calls unshare and _exit, both async-signal-safe, with every signal
    // blocked.
    let cloned = unsafe { super::userns::clone_pidfd(libc::CLONE_NEWUSER as u64, None) };
    if let Ok((0, _)) = cloned {
        // SAFETY: child side: one raw syscall, then _exit with its errno (0 when it worked).
        unsafe {
            let code = if libc::unshare(libc::CLONE_NEWUTS) == 0 {
                0
            } else {
                super::sys::last_errno() & 0xff
            };
            libc::_exit(code)
        }
    }
    super::userns::restore_signals(&mask);
    match cloned {
        Err(e) => Live::CloneFailed(e.raw_os_error().unwrap_or(0)),
        Ok((pid, pidfd)) => {
            // Read before the reap: the label stays with the zombie.
            let ns_label = label_of(&format!("/proc/{pid}"));
            let status = pidfd.as_ref().map(super::userns::wait_pidfd);
            let cap_errno = match status {
                Some(Ok((Some(code), _))) => code,
                _ => libc::ECHILD,
            };
            Live::Created {
                ns_label,
                cap_errno,
            }
        }
    }
}

/// For the degraded mode's check: the restriction's error when it applies to this process
/// (then user namespaces are as good as unavailable). Tests only where the sysctl is 1.
pub(crate) fn restricted_here() -> Option<Error> {
    let host = Host::read();
    if !host.restricting() {
        return None;
    }
    match live_test() {
        Live::Created {
            ns_label,
            cap_errno,
        } if cap_errno != 0 => {
            let failure = Failure::Test(cap_errno);
            error_for(
                &classify(&host, failure, ns_label.as_deref()),
                failure,
                this_program().as_deref(),
            )
        }
        _ => None,
    }
}

/// `nanobox doctor`'s line for this host and process, tested live where the sysctl is 1:
/// (ok, required, detail, fix).
pub(crate) fn doctor() -> (bool, bool, String, Option<String>) {
    let host = Host::read();
    let live = (host.restrict.as_deref() == Some("1")).then(live_test);
    let program = std::env::current_exe().ok();
    doctor_line(&host, live.as_ref(), program.as_deref())
}

/// `nanobox doctor`'s line from what was read: (ok, required, detail, fix).
pub(crate) fn doctor_line(
    host: &Host,
    live: Option<&Live>,
    program: Option<&Path>,
) -> (bool, bool, String, Option<String>) {
    let label = host
        .label
        .as_deref()
        .map(|l| format!("AppArmor label {l:?}"))
        .unwrap_or_else(|| "no AppArmor label readable".into());
    match host.restrict.as_deref() {
        None => {
            return (
                true,
                true,
                "not on this kernel (it has no kernel.apparmor_restrict_unprivileged_userns; \
                 Ubuntu's kernels add it)"
                    .into(),
                None,
            )
        }
        Some("1") => {}
        Some(v) => {
            return (
                true,
                true,
                format!("off (kernel.apparmor_restrict_unprivileged_userns={v})"),
                None,
            )
        }
    }
    if host.complain.as_deref() == Some("1") {
        return (
            true,
            true,
            "on in complain mode (kernel.apparmor_restrict_unprivileged_userns_complain=1): \
             logged, not enforced"
                .into(),
            None,
        );
    }
    if host.enabled.as_deref() == Some("N") {
        return (
            true,
            true,
            "kernel.apparmor_restrict_unprivileged_userns=1, but AppArmor is disabled".into(),
            None,
        );
    }
    if host.sys_admin() {
        return (
            true,
            true,
            format!(
                "on (kernel.apparmor_restrict_unprivileged_userns=1), but this process holds \
                 CAP_SYS_ADMIN, which the restriction spares; a caller without it needs a \
                 profile for its program (`nanobox doctor --apparmor-profile PATH`) or the \
                 sysctl at 0 ({label})"
            ),
            None,
        );
    }
    match live {
        Some(Live::Created { cap_errno: 0, .. }) => (
            true,
            true,
            format!(
                "on (kernel.apparmor_restrict_unprivileged_userns=1); this process ({label}) may \
                 create user namespaces with capabilities inside them (tested)"
            ),
            None,
        ),
        Some(Live::Created {
            ns_label,
            cap_errno,
        }) => {
            let failure = Failure::Test(*cap_errno);
            match error_for(
                &classify(host, failure, ns_label.as_deref()),
                failure,
                program,
            ) {
                Some(Error::HostUnsupported { cause, fix, .. }) => (
                    false,
                    true,
                    format!("on, and it applies to this process ({label}): {cause}"),
                    Some(fix),
                ),
                _ => (
                    false,
                    true,
                    format!(
                        "on; a capability inside a new user namespace was refused ({}), and \
                         what this host shows does not put it down to AppArmor ({label}{})",
                        io::Error::from_raw_os_error(*cap_errno),
                        ns_label
                            .as_deref()
                            .map(|l| format!(", the namespace's label {l:?}"))
                            .unwrap_or_default()
                    ),
                    None,
                ),
            }
        }
        Some(Live::CloneFailed(e)) => {
            let failure = Failure::Clone(*e);
            match error_for(&classify(host, failure, None), failure, program) {
                Some(Error::HostUnsupported { cause, fix, .. }) => {
                    (false, true, format!("on: {cause}"), Some(fix))
                }
                _ => (
                    false,
                    false,
                    format!(
                        "on; not tested: creating a user namespace failed ({}), see the user \
                         namespaces line ({label})",
                        io::Error::from_raw_os_error(*e)
                    ),
                    None,
                ),
            }
        }
        None => (false, false, format!("on; not tested ({label})"), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Recorded samples of what an Ubuntu 24.04 host returns. None of these was measured on the
    // machine these tests run on (a Debian kernel has no such restriction); each comes from
    // where the comment says.

    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` on Ubuntu 24.04 as installed:
    /// the apparmor package's /usr/lib/sysctl.d/10-apparmor.conf sets it to 1.
    const UBUNTU_RESTRICT_ON: &str = "1\n";
    /// The same after `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`.
    const UBUNTU_RESTRICT_OFF: &str = "0\n";
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns_complain` by default (the
    /// sysctl comes with the restriction; 1 turns its denials into log lines).
    const UBUNTU_COMPLAIN_OFF: &str = "0\n";
    const UBUNTU_COMPLAIN_ON: &str = "1\n";
    /// `/sys/module/apparmor/parameters/enabled` where AppArmor runs.
    const APPARMOR_ENABLED: &str = "Y\n";
    /// `/proc/self/attr/current` of a login shell or a service without a profile: AppArmor
    /// prints "unconfined" and a newline.
    const LABEL_UNCONFINED: &str = "unconfined\n";
    /// `/proc/PID/attr/current` of a process that created (or was cloned into) a user namespace
    /// while unconfined: the kernel moved it to the unprivileged_userns profile (public
    /// reproductions: `unshare -U sleep 30 &` then reading the sleeper's attr/current).
    const LABEL_NS_RESTRICTED: &str = "unprivileged_userns (enforce)\n";
    /// The same with the unprivileged_userns profile switched to complain mode by the admin.
    const LABEL_NS_COMPLAIN: &str = "unprivileged_userns (complain)\n";
    /// A program under one of Ubuntu's userns profiles (/etc/apparmor.d/chrome:
    /// `profile chrome /opt/google/chrome/chrome flags=(unconfined) { userns, ... }`).
    const LABEL_USERNS_PROFILE: &str = "chrome (unconfined)\n";
    /// A program under an enforcing profile; whether it allows `userns` is in its rules.
    const LABEL_CONFINED: &str = "/usr/sbin/cupsd (enforce)\n";
    /// `CapEff` lines of /proc/self/status: an unprivileged user's, and root's on a 6.8 kernel
    /// (cap_last_cap 40).
    const STATUS_UNPRIVILEGED: &str = "Name:\tpython3\nCapInh:\t0000000000000000\n\
                                       CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n";
    const STATUS_ROOT: &str =
        "Name:\tpython3\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n";
    // The errnos: a capability AppArmor denies fails with EPERM (the kernel log says
    // `apparmor="DENIED" operation="capable" profile="unprivileged_userns" ... capname="setpcap"`
    // for our init's first step, PR_SET_SECUREBITS); an open AppArmor denies fails with EACCES
    // (bubblewrap's "setting up uid map: Permission denied", logged as operation="open"
    // profile="unprivileged_userns" error=-13); a refused creation fails with EACCES
    // (`operation="userns_create" info="Userns create restricted - failed to find
    // unprivileged_userns profile" error=-13`).

    fn ubuntu(label: &str, status: &str) -> Host {
        Host {
            restrict: Some(UBUNTU_RESTRICT_ON.trim().into()),
            complain: Some(UBUNTU_COMPLAIN_OFF.trim().into()),
            enabled: Some(APPARMOR_ENABLED.trim().into()),
            label: Some(label.trim().into()),
            cap_eff: cap_eff(status),
        }
    }

    /// A Debian 12 host (this machine's kind): no sysctl, AppArmor enabled, unconfined.
    fn debian() -> Host {
        Host {
            restrict: None,
            complain: None,
            ..ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED)
        }
    }

    #[test]
    fn labels_parse_as_apparmor_prints_them() {
        assert_eq!(Label::parse(LABEL_UNCONFINED), Some(Label::Unconfined));
        let ns = Label::parse(LABEL_NS_RESTRICTED).unwrap();
        assert!(ns.is_unprivileged_userns() && ns.enforced());
        let c = Label::parse(LABEL_NS_COMPLAIN).unwrap();
        assert!(c.is_unprivileged_userns() && !c.enforced());
        let p = Label::parse(LABEL_CONFINED).unwrap();
        assert_eq!(
            p,
            Label::Profile {
                name: "/usr/sbin/cupsd".into(),
                mode: Some("enforce".into())
            }
        );
        assert!(!p.is_unprivileged_userns() && p.enforced());
        assert!(!Label::parse(LABEL_USERNS_PROFILE).unwrap().enforced());
        // A program started inside a restricted namespace stacks the profile under its own.
        let stacked = Label::parse("/usr/bin/foo//&unprivileged_userns (enforce)").unwrap();
        assert!(stacked.is_unprivileged_userns());
        assert!(Label::parse(":lxd-c1:unprivileged_userns (enforce)")
            .unwrap()
            .is_unprivileged_userns());
        assert!(!Label::parse("unprivileged_userns_helper (enforce)")
            .unwrap()
            .is_unprivileged_userns());
        assert_eq!(Label::parse("\n"), None);
    }

    #[test]
    fn cap_eff_is_read_from_the_status_text() {
        assert_eq!(cap_eff(STATUS_UNPRIVILEGED), Some(0));
        assert!(ubuntu(LABEL_UNCONFINED, STATUS_ROOT).sys_admin());
        assert!(!ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED).sys_admin());
    }

    #[test]
    fn ubuntu_2404_unconfined_and_unprivileged_is_the_restriction() {
        let host = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        // The sandbox's init reported EPERM from its first step; its label was read.
        assert_eq!(
            classify(
                &host,
                Failure::Child(libc::EPERM),
                Some(LABEL_NS_RESTRICTED)
            ),
            Verdict::Restricted(Evidence::NamespaceLabel(
                "unprivileged_userns (enforce)".into()
            ))
        );
        // No label readable from the namespace: the host's own state decides.
        for f in [
            Failure::Child(libc::EPERM),
            Failure::Maps(libc::EPERM),
            Failure::Maps(libc::EACCES),
            Failure::Test(libc::EPERM),
        ] {
            assert_eq!(
                classify(&host, f, None),
                Verdict::Restricted(Evidence::Unconfined),
                "{f:?}"
            );
        }
        // Without the unprivileged_userns profile loaded, the clone is refused.
        assert_eq!(
            classify(&host, Failure::Clone(libc::EACCES), None),
            Verdict::Refused(None)
        );
    }

    #[test]
    fn the_namespace_label_outweighs_the_host_state() {
        let host = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        // The namespace was not moved into the profile: something else refused the step.
        assert_eq!(
            classify(&host, Failure::Child(libc::EPERM), Some(LABEL_UNCONFINED)),
            Verdict::Other
        );
        // The admin put unprivileged_userns in complain mode: it denies nothing.
        assert_eq!(
            classify(&host, Failure::Child(libc::EPERM), Some(LABEL_NS_COMPLAIN)),
            Verdict::Other
        );
        // And a namespace seen under the profile is the restriction even where the sysctl
        // could not be read.
        assert!(matches!(
            classify(
                &debian(),
                Failure::Child(libc::EACCES),
                Some(LABEL_NS_RESTRICTED)
            ),
            Verdict::Restricted(_)
        ));
    }

    #[test]
    fn negative_samples_are_not_the_restriction() {
        let e = Failure::Child(libc::EPERM);
        // Debian: no sysctl at all.
        assert_eq!(classify(&debian(), e, None), Verdict::Other);
        assert_eq!(
            classify(&debian(), Failure::Clone(libc::EACCES), None),
            Verdict::Other
        );
        // Ubuntu with the sysctl at 0.
        let mut off = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        off.restrict = Some(UBUNTU_RESTRICT_OFF.trim().into());
        assert_eq!(classify(&off, e, None), Verdict::Other);
        // Complain mode: logged only.
        let mut complain = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        complain.complain = Some(UBUNTU_COMPLAIN_ON.trim().into());
        assert_eq!(classify(&complain, e, None), Verdict::Other);
        // A caller with CAP_SYS_ADMIN is spared.
        assert_eq!(
            classify(&ubuntu(LABEL_UNCONFINED, STATUS_ROOT), e, None),
            Verdict::Other
        );
        // Confined by a profile that allowed the namespace (the clone worked).
        assert_eq!(
            classify(&ubuntu(LABEL_USERNS_PROFILE, STATUS_UNPRIVILEGED), e, None),
            Verdict::Other
        );
        assert_eq!(
            classify(&ubuntu(LABEL_CONFINED, STATUS_UNPRIVILEGED), e, None),
            Verdict::Other
        );
        // Other errnos are never put down to AppArmor.
        let host = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        assert_eq!(
            classify(&host, Failure::Child(libc::ENOENT), None),
            Verdict::Other
        );
        assert_eq!(
            classify(
                &host,
                Failure::Child(libc::ENOSPC),
                Some(LABEL_NS_RESTRICTED)
            ),
            Verdict::Other
        );
        // A refused clone with EPERM is a seccomp filter or a chroot, not AppArmor.
        assert_eq!(
            classify(&host, Failure::Clone(libc::EPERM), None),
            Verdict::Other
        );
        // No label readable (AppArmor not the active LSM): no claim.
        let mut unlabeled = host.clone();
        unlabeled.label = None;
        assert_eq!(classify(&unlabeled, e, None), Verdict::Other);
    }

    #[test]
    fn a_confined_caller_refused_a_namespace_is_told_to_allow_userns_in_its_profile() {
        let host = ubuntu(LABEL_CONFINED, STATUS_UNPRIVILEGED);
        let v = classify(&host, Failure::Clone(libc::EACCES), None);
        assert_eq!(v, Verdict::Refused(Some("/usr/sbin/cupsd".into())));
        let Some(Error::HostUnsupported { fix, .. }) =
            error_for(&v, Failure::Clone(libc::EACCES), None)
        else {
            panic!("no error");
        };
        assert!(
            fix.contains("userns,") && fix.contains("/usr/sbin/cupsd"),
            "{fix}"
        );
        // A profile in complain mode refuses nothing.
        let lax = ubuntu("/usr/sbin/cupsd (complain)", STATUS_UNPRIVILEGED);
        assert_eq!(
            classify(&lax, Failure::Clone(libc::EACCES), None),
            Verdict::Other
        );
    }

    #[test]
    fn a_process_already_under_the_profile_is_named() {
        let host = ubuntu(LABEL_NS_RESTRICTED, STATUS_UNPRIVILEGED);
        assert_eq!(
            classify(&host, Failure::Maps(libc::EPERM), None),
            Verdict::Restricted(Evidence::Inherited("unprivileged_userns (enforce)".into()))
        );
    }

    #[test]
    fn the_error_names_the_restriction_and_both_fixes() {
        let v = Verdict::Restricted(Evidence::Unconfined);
        let prog = std::env::current_exe().unwrap();
        let with = crate::apparmor::profile_for(&prog).ok();
        let Some(err) = error_for(&v, Failure::Child(libc::EPERM), Some(&prog)) else {
            panic!("no error");
        };
        let text = err.to_string();
        assert!(
            text.contains(
                "AppArmor restricts user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns=1)"
            ),
            "{text}"
        );
        assert!(text.lines().count() <= 3, "{text}");
        assert!(text.contains("Operation not permitted"), "{text}");
        assert!(
            text.contains("sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"),
            "{text}"
        );
        match with {
            // The fix names this program and where its profile goes.
            Some(_) => assert!(
                text.contains(&format!(
                    "nanobox doctor --apparmor-profile {}",
                    prog.display()
                )),
                "{text}"
            ),
            None => assert!(
                text.contains("nanobox doctor --apparmor-profile /path/to/program"),
                "{text}"
            ),
        }
        // Without a usable path, a placeholder.
        let Some(Error::HostUnsupported { fix, .. }) = error_for(
            &v,
            Failure::Child(libc::EPERM),
            Some(Path::new("/has space/p")),
        ) else {
            panic!("no error");
        };
        assert!(fix.contains("--apparmor-profile /path/to/program"), "{fix}");
        // Three short lines, as every refusal (the CLI adds "nanobox: " in front); the program's
        // own path comes on top of this.
        let Some(err) = error_for(&v, Failure::Child(libc::EPERM), None) else {
            panic!("no error");
        };
        let text = err.to_string();
        assert!(
            text.lines().count() <= 3 && text.len() + 9 <= 480 - 40,
            "{}: {text}",
            text.len()
        );
        assert!(error_for(&Verdict::Other, Failure::Child(libc::EPERM), None).is_none());
    }

    #[test]
    fn doctor_says_whether_the_restriction_is_on_and_applies() {
        // Debian: not on this kernel.
        let (ok, _, detail, fix) = doctor_line(&debian(), None, None);
        assert!(
            ok && detail.starts_with("not on this kernel") && fix.is_none(),
            "{detail}"
        );
        // Ubuntu, unconfined, the live test denied: FAIL with both fixes.
        let host = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        let live = Live::Created {
            ns_label: Some(LABEL_NS_RESTRICTED.trim().into()),
            cap_errno: libc::EPERM,
        };
        let (ok, required, detail, fix) = doctor_line(&host, Some(&live), None);
        assert!(!ok && required, "{detail}");
        assert!(detail.contains("applies to this process") && detail.contains("unconfined"));
        let fix = fix.unwrap();
        assert!(
            fix.contains("--apparmor-profile") && fix.contains("sysctl -w"),
            "{fix}"
        );
        // A profile that allows user namespaces: ok, and says so.
        let host = ubuntu(LABEL_USERNS_PROFILE, STATUS_UNPRIVILEGED);
        let live = Live::Created {
            ns_label: Some("chrome (unconfined)".into()),
            cap_errno: 0,
        };
        let (ok, _, detail, _) = doctor_line(&host, Some(&live), None);
        assert!(
            ok && detail.contains("chrome") && detail.contains("(tested)"),
            "{detail}"
        );
        // The sysctl at 0, complain mode, CAP_SYS_ADMIN: ok without a test.
        let mut off = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        off.restrict = Some("0".into());
        assert!(doctor_line(&off, None, None).2.starts_with("off"));
        let mut complain = ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED);
        complain.complain = Some("1".into());
        assert!(doctor_line(&complain, None, None)
            .2
            .contains("complain mode"));
        let root = doctor_line(&ubuntu(LABEL_UNCONFINED, STATUS_ROOT), None, None);
        assert!(root.0 && root.2.contains("CAP_SYS_ADMIN"), "{}", root.2);
        // The unprivileged_userns profile missing: the clone is refused, FAIL.
        let (ok, required, detail, _) = doctor_line(
            &ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED),
            Some(&Live::CloneFailed(libc::EACCES)),
            None,
        );
        assert!(!ok && required && detail.contains("not loaded"), "{detail}");
        // A clone refused for another reason: not tested here, not a second failure.
        let (ok, required, detail, _) = doctor_line(
            &ubuntu(LABEL_UNCONFINED, STATUS_UNPRIVILEGED),
            Some(&Live::CloneFailed(libc::ENOSPC)),
            None,
        );
        assert!(
            !ok && !required && detail.contains("not tested"),
            "{detail}"
        );
    }

    #[test]
    fn the_live_test_uses_a_capability_in_a_new_namespace_here() {
        // This host has no restriction: the capability works, and the namespace's label is
        // whatever this host's LSMs say (none readable without AppArmor).
        match live_test() {
            Live::Created { cap_errno, .. } => assert_eq!(cap_errno, 0),
            Live::CloneFailed(e) => panic!("user namespaces are expected here: errno {e}"),
        }
    }
}
