//! Which mechanism enforces each resource limit, decided once when a sandbox is built.
//!
//! Best first: a cgroup (v2, else v1; see [`super::cgroup`]) for memory, processes, CPU bandwidth
//! and the whole sandbox's CPU time; rlimits only where no cgroup is writable, and only with
//! `allow_degraded_limits()` (a strict sandbox refuses, naming why and the fix). The file-size
//! limit is `RLIMIT_FSIZE` everywhere: it is per write by nature, so nothing is weaker about it.

use rustix::process::Resource;

use super::cgroup::{self, Controller, CpuAccounting, Host, Mechanism};
use crate::error::{Error, Result};
use crate::policy::Policy;
use crate::result::Enforcement;

/// How a sandbox's runs enforce its limits.
pub(crate) struct LimitsPlan {
    /// The cgroup setup runs use; `None` when no limit needs a cgroup.
    pub host: Option<Host>,
    /// What each run's cgroup is given.
    pub cg: cgroup::Limits,
    /// Set by the program before execve: (resource, soft, hard).
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// The whole sandbox's CPU-time budget, enforced by the init from the cgroup's usage (0: none).
    pub cpu_time_ns: u64,
    /// For every result.
    pub enforcement: Vec<Enforcement>,
    /// Degraded CPU limit: the CPUs the program is pinned to (sched_setaffinity).
    pub affinity: Option<libc::cpu_set_t>,
}

impl std::fmt::Debug for LimitsPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitsPlan")
            .field("cg", &self.cg)
            .field("enforcement", &self.enforcement)
            .finish_non_exhaustive()
    }
}

fn mechanism_name(m: Mechanism) -> &'static str {
    match m {
        Mechanism::V2 => "cgroup v2",
        Mechanism::V1 => "cgroup v1",
        Mechanism::Rlimit => "rlimit",
    }
}

/// How to get a cgroup for the run limits: one fix, then where the others are (`nanobox doctor`
/// also names the opt-in per-process rlimits, which are weaker and so never the first advice).
/// Root is never told to run as root: as root, a missing cgroup means a read-only or foreign
/// cgroup mount (a container's).
pub(crate) fn no_cgroup_fix(root: bool) -> &'static str {
    if root {
        "give this process a writable cgroup (cgroup2 mounted read-write; in a container a \
         private cgroup namespace)\nsee `nanobox doctor` (other ways, and the opt-in \
         per-process rlimits: allow_degraded_limits(), CLI --allow-degraded-limits)"
    } else {
        "run it in a login session (systemd's user manager delegates a scope), or as \
         root\nsee `nanobox doctor` (other ways, and the opt-in per-process rlimits: \
         allow_degraded_limits(), CLI --allow-degraded-limits)"
    }
}

/// A limit the host's cgroups cannot enforce: the short form (what, why, one fix, `nanobox
/// doctor`), at most three lines; `doctor` prints the decision's whole reasoning.
fn refuse(what: &'static str, controller: &str, host: Option<&Host>) -> Error {
    let euid = rustix::process::geteuid();
    let systemd = host
        .and_then(|h| h.systemd_why.as_deref())
        .map(|why| format!(", and no systemd scope: {why}"))
        .unwrap_or_default();
    Error::HostUnsupported {
        missing: what,
        cause: format!(
            "uid {} may write no cgroup that {controller}{systemd}",
            euid.as_raw()
        ),
        fix: no_cgroup_fix(euid.is_root()).into(),
    }
}

/// Decide, for `policy`, how each limit is enforced on this host.
pub(crate) fn plan(policy: &Policy) -> Result<LimitsPlan> {
    let l = &policy.limits;
    let wants_cgroup =
        l.memory.is_some() || l.cpu.is_some() || l.processes.is_some() || l.cpu_time.is_some();
    let host = wants_cgroup.then(Host::detect);
    plan_with(policy, host)
}

/// [`plan`] against a given cgroup setup (tests pass fixtures).
pub(crate) fn plan_with(policy: &Policy, host: Option<Host>) -> Result<LimitsPlan> {
    let l = &policy.limits;
    let degraded = policy.allow_degraded_limits;
    let mut cg = cgroup::Limits::default();
    let mut rlimits = Vec::new();
    let mut enforcement = Vec::new();
    let mut affinity = None;
    // The cgroup mechanism for a controller when the host gives one; with the opt-in, `None`
    // (the caller falls back); else a refusal naming what is missing.
    let cgroup_for = |c: Controller, missing: &'static str| -> Result<Option<&'static str>> {
        let d = host
            .as_ref()
            .expect("detected when a limit is set")
            .decision(c);
        match d.mechanism {
            Mechanism::V2 | Mechanism::V1 => Ok(Some(mechanism_name(d.mechanism))),
            Mechanism::Rlimit if degraded => Ok(None),
            Mechanism::Rlimit => Err(refuse(
                missing,
                &format!("has the {} controller", c.name()),
                host.as_ref(),
            )),
        }
    };
    let mut note =
        |limit: &'static str, mechanism: String| enforcement.push(Enforcement { limit, mechanism });
    if let Some(m) = l.memory {
        match cgroup_for(
            Controller::Memory,
            "a writable cgroup with the memory controller",
        )? {
            Some(name) => {
                cg.memory = Some(m);
                note("memory", name.into());
            }
            None => {
                rlimits.push((Resource::As, m, m));
                note(
                    "memory",
                    "RLIMIT_AS (degraded: address space of each process; /tmp not counted)".into(),
                );
            }
        }
    }
    if let Some(n) = l.processes {
        // The sandbox's init is in the cgroup too; it is not the program's to count.
        match cgroup_for(
            Controller::Pids,
            "a writable cgroup with the pids controller",
        )? {
            Some(name) => {
                cg.pids = Some(n + 1);
                note("processes", name.into());
            }
            None => {
                rlimits.push((Resource::Nproc, n + 1, n + 1));
                note(
                    "processes",
                    "RLIMIT_NPROC (degraded: counts the sandbox user's processes in its user \
                     namespace)"
                        .into(),
                );
            }
        }
    }
    if let Some(c) = l.cpu {
        match cgroup_for(Controller::Cpu, "a writable cgroup with the cpu controller")? {
            Some(name) => {
                cg.cpu = Some(c);
                note("cpu", name.into());
            }
            None => {
                let n = c.ceil() as usize;
                affinity = Some(pin_to(n));
                note(
                    "cpu",
                    format!(
                        "CPU affinity (degraded: pinned to {n} whole CPU(s), not a bandwidth share)"
                    ),
                );
            }
        }
    }
    let mut uses_cgroup = cg.memory.is_some() || cg.pids.is_some() || cg.cpu.is_some();
    let mut cpu_time_ns = 0;
    if let Some(t) = l.cpu_time {
        let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
        let h = host.as_ref().expect("detected when a limit is set");
        match &h.cpu_accounting {
            CpuAccounting::V2 | CpuAccounting::V1(_) => {
                // The init ends the run on the cgroup's exact usage. RLIMIT_CPU is only the
                // backstop, a second later: the kernel checks it against tick-sampled process
                // time, which under contention runs ahead of the real usage (a 1 s rlimit fired
                // at 867 ms of measured CPU), so at the limit itself it would end runs early.
                rlimits.push((Resource::Cpu, secs + 1, secs + 2));
                cpu_time_ns = t.as_nanos().min(u128::from(u64::MAX)) as u64;
                uses_cgroup = true;
                note(
                    "cpu_time",
                    format!(
                        "{} CPU usage of the whole sandbox, read by its init; RLIMIT_CPU for each \
                         process",
                        if h.cpu_accounting == CpuAccounting::V2 {
                            "cgroup v2"
                        } else {
                            "cgroup v1"
                        }
                    ),
                );
            }
            CpuAccounting::None if degraded => {
                rlimits.push((Resource::Cpu, secs, secs + 1));
                note(
                    "cpu_time",
                    "RLIMIT_CPU (degraded: each process alone, whole seconds of tick-sampled \
                     time)"
                        .into(),
                )
            }
            CpuAccounting::None => {
                return Err(refuse(
                    "a cgroup that accounts the sandbox's CPU time",
                    "accounts CPU time (cgroup v2, or v1 cpuacct)",
                    Some(h),
                ))
            }
        }
    }
    if let Some(f) = l.file_size {
        rlimits.push((Resource::Fsize, f, f));
        note("file_size", "RLIMIT_FSIZE".into());
    }
    Ok(LimitsPlan {
        host: if uses_cgroup { host } else { None },
        cg,
        rlimits,
        cpu_time_ns,
        enforcement,
        affinity,
    })
}

/// A CPU set of the first `n` CPUs this process may run on.
fn pin_to(n: usize) -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain data; zero is the empty set.
    let mut mine: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut out: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: sched_getaffinity fills a cpu_set_t of the size given.
    let ok = unsafe {
        libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut mine) == 0
    };
    let mut taken = 0;
    for cpu in 0..libc::CPU_SETSIZE as usize {
        // SAFETY: CPU_ISSET/CPU_SET index within CPU_SETSIZE.
        let allowed = !ok || unsafe { libc::CPU_ISSET(cpu, &mine) };
        if allowed && taken < n.max(1) {
            // SAFETY: as above.
            unsafe { libc::CPU_SET(cpu, &mut out) };
            taken += 1;
        }
    }
    out
}

impl LimitsPlan {
    /// One line per limit enforced only by an rlimit, for the result's `degraded` list.
    pub(crate) fn notes(&self) -> Vec<String> {
        self.enforcement
            .iter()
            .filter(|e| e.mechanism.contains("degraded"))
            .map(|e| format!("{} limit: {}", e.limit, e.mechanism))
            .collect()
    }
}

/// Online CPUs.
pub(crate) fn online_cpus() -> u64 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1)
}
