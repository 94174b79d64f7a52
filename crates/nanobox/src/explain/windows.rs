//! The Windows plan of a policy: the Job Object limits, the restricted token and the handle list
//! a run would use, and what Windows refuses. Data only, built on every platform; the Windows
//! backend consumes it.

use crate::policy::{Network, Platform, Policy};

/// One Job Object setting.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct JobLimit {
    /// The flag or field: `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, `PerJobUserTimeLimit`, ...
    pub name: String,
    /// Its value, where it has one (`ActiveProcessLimit = 64`: `"64"`), else empty.
    pub value: String,
    /// What it does, and which policy option set it.
    pub note: String,
}

/// What a run of a policy would be given on Windows.
///
/// Built without touching the host; [`crate::SandboxBuilder::explain`] with
/// [`Platform::Windows`] returns it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct WindowsPlan {
    /// The Job Object's limit flags and fields (`JOBOBJECT_EXTENDED_LIMIT_INFORMATION`) and its
    /// CPU rate control (`JOBOBJECT_CPU_RATE_CONTROL_INFORMATION`).
    pub job_limits: Vec<JobLimit>,
    /// The restricted token the program runs with, one property a line.
    pub token: Vec<String>,
    /// The handles the program inherits (`PROC_THREAD_ATTRIBUTE_HANDLE_LIST`).
    pub handles: Vec<String>,
    /// The AppContainer and the access entries the run's directories get.
    pub container: Vec<String>,
    /// What a run of this policy would be refused for on Windows today, one reason each.
    pub refused: Vec<String>,
}

/// `PerJobUserTimeLimit`'s unit: 100 ns.
const TICKS_PER_SECOND: u128 = 10_000_000;
/// `CpuRate` is in hundredths of a percent of all processors: 10000 = all of them.
const FULL_RATE: f64 = 10_000.0;

/// The plan of `policy`, for a host with `cpus` logical processors (the CPU rate is a share of
/// all of them).
pub(crate) fn plan(policy: &Policy, cpus: u32) -> WindowsPlan {
    debug_assert_eq!(policy.platform, Platform::Windows);
    let l = &policy.limits;
    let mut job = vec![
        JobLimit {
            name: "JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE".into(),
            value: String::new(),
            note: "every process of the run ends when nanobox closes the job (also when nanobox \
                   dies)"
                .into(),
        },
        JobLimit {
            name: "JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION".into(),
            value: String::new(),
            note: "a crash ends the process instead of waiting on an error dialog".into(),
        },
    ];
    if let Some(n) = l.processes {
        job.push(JobLimit {
            name: "JOB_OBJECT_LIMIT_ACTIVE_PROCESS".into(),
            value: format!("ActiveProcessLimit = {n}"),
            note: "process_limit: live processes of the job (Windows counts processes, not \
                   threads)"
                .into(),
        });
    }
    if let Some(m) = l.memory {
        job.push(JobLimit {
            name: "JOB_OBJECT_LIMIT_JOB_MEMORY".into(),
            value: format!("JobMemoryLimit = {m}"),
            note: "memory_limit: committed memory of all the job's processes together".into(),
        });
    }
    if let Some(t) = l.cpu_time {
        job.push(JobLimit {
            name: "JOB_OBJECT_LIMIT_JOB_TIME".into(),
            value: format!("PerJobUserTimeLimit = {}", ticks(t)),
            note: "cpu_time_limit, in 100 ns units: user time of all the job's processes \
                   together"
                .into(),
        });
    }
    if let Some(cores) = l.cpu {
        job.push(JobLimit {
            name: "JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP"
                .into(),
            value: format!("CpuRate = {}", cpu_rate(cores, cpus)),
            note: format!(
                "cpu_limit {cores} cores of {cpus} logical processors (cores / processors * \
                 10000, a hard cap)"
            ),
        });
    }
    job.push(JobLimit {
        name: "JOBOBJECT_BASIC_UI_RESTRICTIONS".into(),
        value: "DESKTOP | DISPLAYSETTINGS | EXITWINDOWS | GLOBALATOMS | HANDLES | \
                READCLIPBOARD | SYSTEMPARAMETERS | WRITECLIPBOARD"
            .into(),
        note: "no other desktop, no display or system settings, no logoff, no global atoms, no \
               window handles of other processes, no clipboard"
            .into(),
    });
    let token = vec![
        "CreateRestrictedToken from the caller's own token, with DISABLE_MAX_PRIVILEGE: every \
         privilege but SeChangeNotifyPrivilege removed"
            .into(),
        "deny-only SIDs: BUILTIN\\Administrators and every group of the caller but Everyone, \
         BUILTIN\\Users, Authenticated Users, INTERACTIVE and the logon SID"
            .into(),
        "restricting SIDs: the user, Everyone, BUILTIN\\Users, Authenticated Users and the logon \
         SID (every access check passes a second time against these alone)"
            .into(),
        "integrity level: Low (S-1-16-4096): no writes to objects of medium integrity".into(),
    ];
    let handles = vec![
        "stdin".into(),
        "stdout".into(),
        "stderr".into(),
        "(PROC_THREAD_ATTRIBUTE_HANDLE_LIST: no other handle is inherited)".into(),
        "(PROC_THREAD_ATTRIBUTE_JOB_LIST: in the job from its creation; else \
         AssignProcessToJobObject before it is resumed)"
            .into(),
    ];
    let mut container = vec![
        "an AppContainer profile per run (CreateAppContainerProfile), no capabilities \
         (PROC_THREAD_ATTRIBUTE_SECURITY_CAPABILITIES): no network, loopback included"
            .to_string(),
        "an access entry for its SID on the run's directory: read-write".to_string(),
    ];
    for m in &policy.mounts {
        container.push(format!(
            "an access entry for its SID on {}: {}",
            m.host_canonical.display(),
            match m.permission {
                crate::Permission::ReadOnly => "read and execute",
                crate::Permission::ReadWrite => "read, write, execute and delete",
            }
        ));
    }
    container.push(if policy.allow_degraded_isolation {
        "where no AppContainer can be made (Wine, Windows before 8): the low-integrity token \
         alone, no network isolation (allow_degraded_isolation)"
            .to_string()
    } else {
        "where no AppContainer can be made (Wine, Windows before 8): refused".to_string()
    });
    let mut refused = Vec::new();
    if let Network::Allowlist(_) = &policy.network {
        refused.push(
            "allow_network: refused: an AppContainer has no network or all of it; it cannot be \
             limited to the filtering proxy's port"
                .to_string(),
        );
    }
    if l.file_size.is_some() && !policy.allow_degraded_limits {
        refused.push("file_size_limit: refused: Windows has no per-file size limit".into());
    }
    WindowsPlan {
        job_limits: job,
        token,
        handles,
        container,
        refused,
    }
}

/// A duration in `PerJobUserTimeLimit`'s 100 ns units.
fn ticks(d: std::time::Duration) -> u128 {
    d.as_nanos() / (1_000_000_000 / TICKS_PER_SECOND)
}

/// `CpuRate` for `cores` of `cpus` logical processors: 1 ..= 10000.
fn cpu_rate(cores: f64, cpus: u32) -> u32 {
    let rate = (cores / f64::from(cpus.max(1)) * FULL_RATE).round();
    rate.clamp(1.0, FULL_RATE) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::LexicalPaths;
    use crate::{Sandbox, MB};
    use std::time::Duration;

    fn policy(b: crate::SandboxBuilder) -> Policy {
        b.validate_for(Platform::Windows, &LexicalPaths(Platform::Windows))
            .unwrap()
    }

    fn value<'a>(p: &'a WindowsPlan, name: &str) -> Option<&'a str> {
        p.job_limits
            .iter()
            .find(|j| j.name == name)
            .map(|j| j.value.as_str())
    }

    #[test]
    fn the_limits_map_to_job_object_fields_in_their_units() {
        let p = plan(
            &policy(
                Sandbox::builder()
                    .process_limit(64)
                    .memory_limit(256 * MB)
                    .cpu_time_limit(Duration::from_millis(2500))
                    .cpu_limit(1.0),
            ),
            4,
        );
        assert_eq!(value(&p, "JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE"), Some(""));
        assert_eq!(
            value(&p, "JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION"),
            Some("")
        );
        assert_eq!(
            value(&p, "JOB_OBJECT_LIMIT_ACTIVE_PROCESS"),
            Some("ActiveProcessLimit = 64")
        );
        assert_eq!(
            value(&p, "JOB_OBJECT_LIMIT_JOB_MEMORY"),
            Some(format!("JobMemoryLimit = {}", 256 * MB).as_str())
        );
        // 2.5 s is 25,000,000 units of 100 ns.
        assert_eq!(
            value(&p, "JOB_OBJECT_LIMIT_JOB_TIME"),
            Some("PerJobUserTimeLimit = 25000000")
        );
        // One core of four is a quarter of 10000.
        assert_eq!(
            value(
                &p,
                "JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP"
            ),
            Some("CpuRate = 2500")
        );
    }

    #[test]
    fn unset_limits_add_no_field_and_the_rate_stays_in_range() {
        let p = plan(&policy(Sandbox::builder()), 8);
        assert_eq!(p.job_limits.len(), 3, "{:?}", p.job_limits);
        assert_eq!(cpu_rate(0.01, 64), 2);
        assert_eq!(cpu_rate(0.0001, 64), 1);
        assert_eq!(cpu_rate(16.0, 4), 10_000);
        assert_eq!(cpu_rate(1.0, 0), 10_000);
    }

    #[test]
    fn the_token_handles_and_refusals_are_listed() {
        let p = plan(&policy(Sandbox::builder().file_size_limit(MB)), 2);
        let token = p.token.join("\n");
        for want in [
            "DISABLE_MAX_PRIVILEGE",
            "deny-only SIDs",
            "Administrators",
            "restricting SIDs",
            "Low",
        ] {
            assert!(token.contains(want), "{want}: {token}");
        }
        assert_eq!(&p.handles[..3], ["stdin", "stdout", "stderr"]);
        assert!(p.handles[3].contains("PROC_THREAD_ATTRIBUTE_HANDLE_LIST"));
        assert!(p.refused.iter().any(|r| r.starts_with("file_size_limit")));
        assert!(
            p.container[0].contains("no capabilities"),
            "{:?}",
            p.container
        );
        assert!(
            p.container.last().unwrap().ends_with("refused"),
            "{:?}",
            p.container
        );
        let p = plan(&policy(Sandbox::builder().allow_network(&["x.test"])), 2);
        assert!(p.refused[0].starts_with("allow_network: refused"));
        // The default (no network) is the AppContainer's, not a refusal.
        let p = plan(&policy(Sandbox::builder()), 2);
        assert!(p.refused.is_empty(), "{:?}", p.refused);
    }
}
