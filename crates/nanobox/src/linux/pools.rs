//! The kernel's shared pools: what a program can draw on that the kernel counts per user, or for
//! the whole host, rather than per sandbox; and the bound each one gets in every sandbox.
//!
//! Three kinds, bounded three ways:
//! - **per user, across user namespaces** (inotify instances and watches, fanotify groups and
//!   marks, namespaces): the kernel charges the sandbox's own user namespace and every ancestor,
//!   up to the host's per-user limit. The init writes a lower limit into `/proc/sys/user/` of its
//!   own namespace, which only it (holding `CAP_SYS_RESOURCE` there) may change.
//! - **per user, through an rlimit** (pending signals, POSIX message-queue bytes, locked memory):
//!   the program's soft and hard rlimits, which it cannot raise.
//! - **per host**: the sandbox's devpts instance gets `max=`; AIO's host-wide `aio-max-nr` cannot
//!   be split, so `io_setup` is refused by the syscall filter (allowed by name, see
//!   [`crate::SeccompPolicy::allow`]).
//!
//! The default bound is an eighth ([`SHARE`]) of what the host allows the caller: up to eight
//! sandboxes of one caller hold their whole share at once, and the caller keeps the rest.

use std::collections::BTreeMap;

use rustix::process::Resource;

use crate::error::{Error, Result};
use crate::policy::KernelPool;

/// The default bound of each pool is the caller's allowance divided by this.
pub(crate) const SHARE: u64 = 8;

/// What a program gets of each pool, and how the run enforces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolPlan {
    /// Limits the init writes for its own user namespace: (file in /proc/sys/user, value).
    pub userns: Vec<(&'static str, u64)>,
    /// The program's rlimits: (resource, soft, hard).
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// `max=` of the sandbox's devpts instance.
    pub ptys: u64,
    /// Every pool's bound as decided (what the three fields above enforce), in `KernelPool::ALL` order.
    pub bounds: Vec<(KernelPool, u64)>,
}

/// The namespace limits of the sandbox's user namespace: none may be made inside (the syscall
/// filter refuses it too; this holds should a filter be loosened). Mount namespaces are not
/// among them: the init's own binds after this point clone mount trees, which counts as one (and
/// making a mount namespace needs `CAP_SYS_ADMIN`, which the program never has).
const NAMESPACES: &[&str] = &[
    "max_cgroup_namespaces",
    "max_ipc_namespaces",
    "max_net_namespaces",
    "max_pid_namespaces",
    "max_time_namespaces",
    "max_user_namespaces",
    "max_uts_namespaces",
];

/// Per-user limits that are only ever bounded here, never configured: fanotify is refused by
/// the syscall filter (`fanotify_init`), so its share matters only where a policy allows it.
const FANOTIFY: &[(&str, &str)] = &[
    (
        "max_fanotify_groups",
        "/proc/sys/fs/fanotify/max_user_groups",
    ),
    ("max_fanotify_marks", "/proc/sys/fs/fanotify/max_user_marks"),
];

/// What the host allows the caller's user of each pool (`u64::MAX`: no limit).
pub(crate) type Allowance = BTreeMap<KernelPool, u64>;

/// Read the caller's allowance of each pool: the lower of the host's per-user sysctl and the
/// caller's own user namespace's limit, or the caller's soft rlimit.
pub(crate) fn host_allowance() -> Allowance {
    let mut a = Allowance::new();
    let both = |fs: &str, user: &str| match (read_u64(fs), read_u64(user)) {
        (Some(x), Some(y)) => x.min(y),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => u64::MAX,
    };
    a.insert(
        KernelPool::InotifyInstances,
        both(
            "/proc/sys/fs/inotify/max_user_instances",
            "/proc/sys/user/max_inotify_instances",
        ),
    );
    a.insert(
        KernelPool::InotifyWatches,
        both(
            "/proc/sys/fs/inotify/max_user_watches",
            "/proc/sys/user/max_inotify_watches",
        ),
    );
    let soft = |r: Resource| rustix::process::getrlimit(r).current.unwrap_or(u64::MAX);
    a.insert(KernelPool::PendingSignals, soft(Resource::Sigpending));
    a.insert(KernelPool::MessageQueueBytes, soft(Resource::Msgqueue));
    a.insert(KernelPool::LockedMemoryBytes, soft(Resource::Memlock));
    let ptys = match (
        read_u64("/proc/sys/kernel/pty/max"),
        read_u64("/proc/sys/kernel/pty/reserve"),
    ) {
        (Some(max), Some(reserve)) => max.saturating_sub(reserve),
        (Some(max), None) => max,
        _ => u64::MAX,
    };
    a.insert(KernelPool::Ptys, ptys);
    a
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Where the host gives no number, the bound is that of a common default host's allowance.
fn fallback(pool: KernelPool) -> u64 {
    match pool {
        KernelPool::InotifyInstances => 128,
        KernelPool::InotifyWatches => 65_536,
        KernelPool::PendingSignals => 65_536,
        KernelPool::MessageQueueBytes => 819_200,
        KernelPool::LockedMemoryBytes => 8 << 20,
        KernelPool::Ptys => 3072,
    }
}

/// The bound of each pool: `set` where the policy names one, else the default share of
/// `allowance`. A bound above the allowance is refused: the host would not honour it.
pub(crate) fn plan(set: &BTreeMap<KernelPool, u64>, allowance: &Allowance) -> Result<PoolPlan> {
    let mut bounds = Vec::new();
    for pool in KernelPool::ALL {
        let allowed = allowance.get(&pool).copied().unwrap_or(u64::MAX);
        let bound = match set.get(&pool) {
            Some(&n) if allowed != u64::MAX && n > allowed => {
                return Err(Error::InvalidOption {
                    option: "kernel_pool_limit",
                    reason: format!(
                        "{} = {n} is above what this host allows the caller ({allowed}); raise \
                         the host's limit first",
                        pool.name()
                    ),
                })
            }
            Some(&n) => n,
            None if allowed == u64::MAX => (fallback(pool) / SHARE).max(1),
            None => (allowed / SHARE).max(1),
        };
        bounds.push((pool, bound));
    }
    let of = |p: KernelPool| bounds.iter().find(|(q, _)| *q == p).map(|(_, n)| *n);
    let int = |n: u64| n.min(i32::MAX as u64);
    let mut userns: Vec<(&'static str, u64)> = NAMESPACES.iter().map(|&n| (n, 0)).collect();
    userns.push((
        "max_inotify_instances",
        int(of(KernelPool::InotifyInstances).unwrap_or(0)),
    ));
    userns.push((
        "max_inotify_watches",
        int(of(KernelPool::InotifyWatches).unwrap_or(0)),
    ));
    for (user, fs) in FANOTIFY {
        let share = read_u64(fs).map_or(16, |n| (n / SHARE).max(1));
        userns.push((user, int(share)));
    }
    let rl = |p: KernelPool, r: Resource| {
        let n = of(p).unwrap_or(0);
        (r, n, n)
    };
    Ok(PoolPlan {
        userns,
        rlimits: vec![
            rl(KernelPool::PendingSignals, Resource::Sigpending),
            rl(KernelPool::MessageQueueBytes, Resource::Msgqueue),
            rl(KernelPool::LockedMemoryBytes, Resource::Memlock),
        ],
        ptys: of(KernelPool::Ptys).unwrap_or(1),
        bounds,
    })
}

#[cfg(test)]
impl PoolPlan {
    /// The plan for a host with common default limits (for the mount plan's tests).
    pub(crate) fn for_tests() -> PoolPlan {
        let a: Allowance = KernelPool::ALL.iter().map(|&p| (p, fallback(p))).collect();
        plan(&BTreeMap::new(), &a).expect("defaults are within the allowance")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowance() -> Allowance {
        [
            (KernelPool::InotifyInstances, 128),
            (KernelPool::InotifyWatches, 192_536),
            (KernelPool::PendingSignals, 96_364),
            (KernelPool::MessageQueueBytes, 819_200),
            (KernelPool::LockedMemoryBytes, 8 << 20),
            (KernelPool::Ptys, 3072),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn every_pool_defaults_to_an_eighth_of_the_caller_s_allowance() {
        let p = plan(&BTreeMap::new(), &allowance()).unwrap();
        let bound = |pool| p.bounds.iter().find(|(q, _)| *q == pool).unwrap().1;
        assert_eq!(bound(KernelPool::InotifyInstances), 16);
        assert_eq!(bound(KernelPool::InotifyWatches), 24_067);
        assert_eq!(bound(KernelPool::PendingSignals), 12_045);
        assert_eq!(bound(KernelPool::MessageQueueBytes), 102_400);
        assert_eq!(bound(KernelPool::LockedMemoryBytes), 1 << 20);
        assert_eq!(bound(KernelPool::Ptys), 384);
        assert_eq!(p.ptys, 384);
        assert!(p.userns.contains(&("max_inotify_instances", 16)));
        assert!(p.userns.contains(&("max_inotify_watches", 24_067)));
        assert!(p.rlimits.contains(&(Resource::Sigpending, 12_045, 12_045)));
        assert!(p.rlimits.contains(&(Resource::Msgqueue, 102_400, 102_400)));
        assert!(p.rlimits.contains(&(Resource::Memlock, 1 << 20, 1 << 20)));
        for ns in NAMESPACES {
            assert!(p.userns.contains(&(ns, 0)), "{ns} is 0");
        }
    }

    #[test]
    fn a_set_bound_replaces_the_share_and_one_above_the_allowance_is_refused() {
        let set = [(KernelPool::InotifyWatches, 100_000)]
            .into_iter()
            .collect();
        let p = plan(&set, &allowance()).unwrap();
        assert!(p.userns.contains(&("max_inotify_watches", 100_000)));
        let set = [(KernelPool::PendingSignals, 0)].into_iter().collect();
        let p = plan(&set, &allowance()).unwrap();
        assert!(p.rlimits.contains(&(Resource::Sigpending, 0, 0)));
        let set = [(KernelPool::InotifyInstances, 129)].into_iter().collect();
        let e = plan(&set, &allowance()).unwrap_err().to_string();
        assert!(
            e.contains("inotify_instances = 129") && e.contains("128"),
            "{e}"
        );
    }

    #[test]
    fn an_unlimited_or_unknown_allowance_still_gets_a_bound() {
        let mut a = allowance();
        a.insert(KernelPool::LockedMemoryBytes, u64::MAX);
        a.remove(&KernelPool::Ptys);
        let p = plan(&BTreeMap::new(), &a).unwrap();
        assert!(p.rlimits.contains(&(Resource::Memlock, 1 << 20, 1 << 20)));
        assert_eq!(p.ptys, 384);
    }

    #[test]
    fn pool_names_round_trip() {
        for p in KernelPool::ALL {
            assert_eq!(KernelPool::from_name(p.name()), Some(p));
            assert_eq!(KernelPool::from_name(&p.name().replace('_', "-")), Some(p));
        }
        assert_eq!(KernelPool::from_name("aio"), None);
    }
}
