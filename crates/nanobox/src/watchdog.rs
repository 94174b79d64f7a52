//! The decisions of a run's watchdog, apart from how a platform samples its processes.
//!
//! Where the kernel cannot bound a whole process tree (macOS has no cgroups), a thread of the
//! caller samples the run's processes every [`INTERVAL`] and acts on what it saw: this module is
//! that logic, on plain data, so that it is tested on every platform with made-up samples. The
//! sampling itself (listing processes, reading their footprint and CPU time) is the backend's.
//!
//! # Which processes belong to a run
//!
//! The tree is kept by ancestry, seen from outside: the run's first process (the root) is a
//! member; a process whose parent is a member joins, and so does one in the root's process group
//! that started after the root did. A member is known by its pid *and* its start time, so that a
//! pid the system gave to a stranger after a member ended never makes the stranger a member (nor
//! its children). A member whose parent ended is reparented by the system (to pid 1 on macOS): it
//! stays a member, since its own (pid, start time) is unchanged.
//!
//! A process that forks and whose parent ends between two samples, and that leaves the process
//! group, is not seen: sampling has that gap by nature. The macOS profile denies `setsid` and
//! `setpgid` where Seatbelt can, so a program cannot leave the group.
//!
//! # The limits
//!
//! - Memory: the sum of the members' footprints at one sample, against the limit. A sum *at* the
//!   limit is allowed (as a cgroup's `memory.max` lets usage reach the maximum); one byte over it
//!   kills the tree.
//! - CPU time: the members' CPU time (user + system) plus the last sample of every member that has
//!   ended. It is spent, and the tree killed, when that total reaches the limit (the Linux init
//!   ends a run the same way, at `used >= limit`). CPU used by an ended member after its last
//!   sample is not counted: the total can run behind by up to one interval per ended member.
//! - Processes: the members alive at one sample, against the limit; more than the limit kills
//!   the tree. (A cgroup refuses the fork itself; a watchdog can only see that it happened.)

// Only the macOS backend runs a watchdog; the logic is built and tested everywhere.
#![cfg_attr(not(target_os = "macos"), allow(dead_code))]

use std::collections::HashMap;
use std::time::Duration;

/// How often the watchdog samples a run: often enough that a fast allocation is seen within a few
/// hundred megabytes of the limit, seldom enough that listing every process of the host costs
/// well under 1 % of one core.
pub(crate) const INTERVAL: Duration = Duration::from_millis(50);

/// One process of the host as the sampler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub pgid: u32,
    /// When it started, in any unit that orders processes and tells a pid's holders apart (the
    /// backend's choice: microseconds since the epoch on macOS).
    pub start: u64,
}

/// What one member used, at one sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Physical footprint in bytes.
    pub memory: u64,
    /// User + system CPU time of the process itself (not of its reaped children).
    pub cpu: Duration,
}

/// The limits a watchdog enforces (`None`: not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    pub memory: Option<u64>,
    pub cpu_time: Option<Duration>,
    pub processes: Option<u64>,
}

/// Why the watchdog kills a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    Memory,
    CpuTime,
    Processes,
}

/// What to do after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Continue,
    Kill(Reason),
}

#[derive(Debug, Clone, Copy)]
struct Member {
    start: u64,
    last: Usage,
}

/// A run's process tree across samples, and what it used.
#[derive(Debug)]
pub(crate) struct Tree {
    root_pid: u32,
    root_start: u64,
    members: HashMap<u32, Member>,
    /// The last CPU time sampled of every member that has ended.
    ended_cpu: Duration,
    peak_memory: u64,
    peak_processes: u64,
    limits: Limits,
}

impl Tree {
    /// A tree of the root alone: its pid and start time as the sampler reads them.
    pub(crate) fn new(root_pid: u32, root_start: u64, limits: Limits) -> Tree {
        let mut members = HashMap::new();
        members.insert(
            root_pid,
            Member {
                start: root_start,
                last: Usage::default(),
            },
        );
        Tree {
            root_pid,
            root_start,
            members,
            ended_cpu: Duration::ZERO,
            peak_memory: 0,
            peak_processes: 1,
            limits,
        }
    }

    /// Bring the membership up to date with a listing of the host's processes: members that are
    /// gone (or whose pid now names another process) leave, and processes that descend from a
    /// member (or are in the root's process group and started after it) join.
    pub(crate) fn update(&mut self, procs: &[ProcInfo]) {
        let by_pid: HashMap<u32, &ProcInfo> = procs.iter().map(|p| (p.pid, p)).collect();
        let gone: Vec<u32> = self
            .members
            .iter()
            .filter(|(pid, m)| by_pid.get(pid).is_none_or(|p| p.start != m.start))
            .map(|(pid, _)| *pid)
            .collect();
        for pid in gone {
            if let Some(m) = self.members.remove(&pid) {
                self.ended_cpu += m.last.cpu;
            }
        }
        // Until nothing more joins: a grandchild may be listed before its parent.
        loop {
            let mut joined = false;
            for p in procs {
                if self.members.contains_key(&p.pid) || p.pid == 0 {
                    continue;
                }
                let child_of_member = self
                    .members
                    .get(&p.ppid)
                    .is_some_and(|parent| p.start >= parent.start);
                // Only while the root lives: once it is gone its pid, and so the group's number,
                // may be a stranger's.
                let in_group = p.pgid == self.root_pid
                    && p.start >= self.root_start
                    && self.members.contains_key(&self.root_pid);
                if child_of_member || in_group {
                    self.members.insert(
                        p.pid,
                        Member {
                            start: p.start,
                            last: Usage::default(),
                        },
                    );
                    joined = true;
                }
            }
            if !joined {
                break;
            }
        }
        self.peak_processes = self.peak_processes.max(self.members.len() as u64);
    }

    /// The members now: (pid, start time), for sampling and for killing.
    pub(crate) fn members(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self.members.iter().map(|(p, m)| (*p, m.start)).collect();
        v.sort_unstable();
        v
    }

    /// Record a member's usage at this sample (ignored for a pid that is not a member with that
    /// start time).
    pub(crate) fn record(&mut self, pid: u32, start: u64, usage: Usage) {
        if let Some(m) = self.members.get_mut(&pid).filter(|m| m.start == start) {
            m.last = usage;
        }
    }

    /// The sum of the members' footprints at the last sample.
    pub(crate) fn memory(&self) -> u64 {
        self.members.values().map(|m| m.last.memory).sum()
    }

    /// CPU time of the tree: the members' and the ended members' last samples.
    pub(crate) fn cpu_time(&self) -> Duration {
        self.ended_cpu + self.members.values().map(|m| m.last.cpu).sum::<Duration>()
    }

    /// The highest [`Tree::memory`] of any sample so far.
    pub(crate) fn peak_memory(&self) -> u64 {
        self.peak_memory
    }

    /// The most members alive at once, at any sample so far.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn peak_processes(&self) -> u64 {
        self.peak_processes
    }

    /// Close a sample (after [`Tree::update`] and the [`Tree::record`]s): track the peak and
    /// decide. Memory first, then CPU time, then processes, when several limits are passed at once.
    pub(crate) fn decide(&mut self) -> Verdict {
        let memory = self.memory();
        self.peak_memory = self.peak_memory.max(memory);
        if self.limits.memory.is_some_and(|l| memory > l) {
            return Verdict::Kill(Reason::Memory);
        }
        if self.limits.cpu_time.is_some_and(|l| self.cpu_time() >= l) {
            return Verdict::Kill(Reason::CpuTime);
        }
        if self
            .limits
            .processes
            .is_some_and(|l| self.members.len() as u64 > l)
        {
            return Verdict::Kill(Reason::Processes);
        }
        Verdict::Continue
    }
}

/// How the caller's side ended a run, if it did (the first reason is kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Nothing ended the run but the program.
    None,
    /// The output limit.
    Output,
    /// [`crate::Child::kill`] or [`crate::Child::stop`] past its grace.
    User,
    /// The wall-time limit.
    Wall,
    /// A watchdog limit.
    Limit(Reason),
}

/// SIGKILL and SIGXCPU: the same numbers on macOS and Linux (x86 and Arm).
const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;

/// The outcome of a run from the program's own end (`own`: `Exited` or `Signaled`) and what the
/// caller's side did. A limit that ended the run is the outcome (the program's death is its
/// consequence). A run killed for its process count keeps the program's own end (normally
/// `Signaled(SIGKILL)`), as [`crate::Outcome`] has no process-limit variant; the enforcement list
/// says which limit it was. `cpu_spent`: the tree's CPU time reached the limit, which makes a
/// SIGKILL (RLIMIT_CPU's hard limit) a CPU-time outcome; SIGXCPU is RLIMIT_CPU's soft limit.
pub(crate) fn outcome(stop: Stop, own: crate::Outcome, cpu_spent: bool) -> crate::Outcome {
    use crate::Outcome;
    match stop {
        Stop::Output => Outcome::OutputLimit,
        Stop::Wall => Outcome::WallTimeLimit,
        Stop::Limit(Reason::Memory) => Outcome::MemoryLimit,
        Stop::Limit(Reason::CpuTime) => Outcome::CpuTimeLimit,
        Stop::Limit(Reason::Processes) | Stop::User => own,
        Stop::None
            if own == Outcome::Signaled(SIGXCPU)
                || (own == Outcome::Signaled(SIGKILL) && cpu_spent) =>
        {
            Outcome::CpuTimeLimit
        }
        Stop::None => own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: u32 = 500;

    fn p(pid: u32, ppid: u32, start: u64) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            // Its own group unless a test says otherwise.
            pgid: pid,
            start,
        }
    }

    fn root() -> ProcInfo {
        ProcInfo {
            pid: ROOT,
            ppid: 1,
            pgid: ROOT,
            start: 100,
        }
    }

    fn tree(limits: Limits) -> Tree {
        Tree::new(ROOT, 100, limits)
    }

    fn pids(t: &Tree) -> Vec<u32> {
        t.members().into_iter().map(|(p, _)| p).collect()
    }

    fn mem(memory: u64) -> Usage {
        Usage {
            memory,
            cpu: Duration::ZERO,
        }
    }

    fn cpu(ms: u64) -> Usage {
        Usage {
            memory: 0,
            cpu: Duration::from_millis(ms),
        }
    }

    #[test]
    fn a_child_of_a_member_joins_and_so_does_its_child_listed_first() {
        let mut t = tree(Limits::default());
        // The grandchild comes before its parent in the listing.
        t.update(&[p(700, 600, 120), root(), p(600, ROOT, 110)]);
        assert_eq!(pids(&t), vec![ROOT, 600, 700]);
    }

    #[test]
    fn a_stranger_does_not_join() {
        let mut t = tree(Limits::default());
        t.update(&[root(), p(42, 1, 50), p(43, 42, 150), p(44, 7, 200)]);
        assert_eq!(pids(&t), vec![ROOT]);
    }

    #[test]
    fn a_member_reparented_to_pid_1_stays() {
        let mut t = tree(Limits::default());
        t.update(&[root(), p(600, ROOT, 110), p(700, 600, 120)]);
        // 600 ended; its child now has pid 1 as its parent.
        t.update(&[root(), p(700, 1, 120)]);
        assert_eq!(pids(&t), vec![ROOT, 700]);
        // Its own children still join.
        t.update(&[root(), p(700, 1, 120), p(800, 700, 130)]);
        assert_eq!(pids(&t), vec![ROOT, 700, 800]);
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_not_a_member() {
        let mut t = tree(Limits::default());
        t.update(&[root(), p(600, ROOT, 110)]);
        t.record(600, 110, cpu(30));
        // 600 ended and the system gave its pid to a stranger started later, whose parent is
        // not a member; the stranger's child must not join either.
        t.update(&[root(), p(600, 1, 900), p(601, 600, 950)]);
        assert_eq!(pids(&t), vec![ROOT]);
        // A usage recorded for the stranger is not the member's.
        t.record(600, 900, cpu(5000));
        assert_eq!(t.cpu_time(), Duration::from_millis(30));
    }

    #[test]
    fn a_child_listed_with_a_start_before_its_parent_does_not_join() {
        let mut t = tree(Limits::default());
        // A stale listing: the process reads as the member's child but started before it.
        t.update(&[root(), p(600, ROOT, 90)]);
        assert_eq!(pids(&t), vec![ROOT]);
    }

    #[test]
    fn the_root_s_process_group_joins_when_it_started_after_the_root() {
        let mut t = tree(Limits::default());
        let mut orphan = p(650, 1, 150);
        orphan.pgid = ROOT;
        // Same group id, but older than the root: another holder of that number.
        let mut older = p(651, 1, 50);
        older.pgid = ROOT;
        t.update(&[root(), orphan, older]);
        assert_eq!(pids(&t), vec![ROOT, 650]);
    }

    #[test]
    fn memory_over_the_limit_kills_and_at_the_limit_continues() {
        let mut t = tree(Limits {
            memory: Some(1000),
            ..Limits::default()
        });
        t.update(&[root(), p(600, ROOT, 110)]);
        // The sum of the members counts: 600 + 400 is exactly the limit.
        t.record(ROOT, 100, mem(600));
        t.record(600, 110, mem(400));
        assert_eq!(t.decide(), Verdict::Continue);
        t.record(600, 110, mem(401));
        assert_eq!(t.decide(), Verdict::Kill(Reason::Memory));
    }

    #[test]
    fn memory_of_a_stranger_never_counts() {
        let mut t = tree(Limits {
            memory: Some(1000),
            ..Limits::default()
        });
        t.update(&[root(), p(42, 1, 50)]);
        t.record(ROOT, 100, mem(10));
        t.record(42, 50, mem(1_000_000));
        assert_eq!(t.decide(), Verdict::Continue);
        assert_eq!(t.memory(), 10);
    }

    #[test]
    fn cpu_time_includes_the_last_sample_of_ended_members() {
        let mut t = tree(Limits {
            cpu_time: Some(Duration::from_millis(1000)),
            ..Limits::default()
        });
        t.update(&[root(), p(600, ROOT, 110)]);
        t.record(ROOT, 100, cpu(100));
        t.record(600, 110, cpu(700));
        assert_eq!(t.decide(), Verdict::Continue);
        // 600 ended after using 700 ms; a new child uses 150 ms: 100 + 700 + 150 = 950.
        t.update(&[root(), p(601, ROOT, 200)]);
        t.record(601, 200, cpu(150));
        assert_eq!(t.cpu_time(), Duration::from_millis(950));
        assert_eq!(t.decide(), Verdict::Continue);
        // 50 ms more reaches the budget: spent.
        t.record(601, 200, cpu(200));
        assert_eq!(t.cpu_time(), Duration::from_millis(1000));
        assert_eq!(t.decide(), Verdict::Kill(Reason::CpuTime));
    }

    #[test]
    fn more_processes_than_the_limit_kill() {
        let mut t = tree(Limits {
            processes: Some(3),
            ..Limits::default()
        });
        t.update(&[root(), p(600, ROOT, 110), p(601, ROOT, 111)]);
        assert_eq!(t.decide(), Verdict::Continue);
        t.update(&[
            root(),
            p(600, ROOT, 110),
            p(601, ROOT, 111),
            p(602, 601, 112),
        ]);
        assert_eq!(t.decide(), Verdict::Kill(Reason::Processes));
        assert_eq!(t.peak_processes(), 4);
    }

    #[test]
    fn the_peak_is_the_highest_sample_sum_and_survives_later_drops() {
        let mut t = tree(Limits::default());
        t.update(&[root(), p(600, ROOT, 110)]);
        t.record(ROOT, 100, mem(300));
        t.record(600, 110, mem(500));
        t.decide();
        assert_eq!(t.peak_memory(), 800);
        t.update(&[root()]);
        t.record(ROOT, 100, mem(200));
        t.decide();
        assert_eq!(t.memory(), 200);
        assert_eq!(t.peak_memory(), 800);
    }

    #[test]
    fn once_the_root_is_gone_its_group_number_adopts_nobody() {
        let mut t = tree(Limits::default());
        t.update(&[root()]);
        // The root ended; a stranger started later got its pid and leads a group of that number.
        let mut stranger = p(ROOT, 1, 900);
        stranger.pgid = ROOT;
        let mut follower = p(901, 1, 910);
        follower.pgid = ROOT;
        t.update(&[stranger, follower]);
        assert!(t.members().is_empty());
    }

    #[test]
    fn outcomes_follow_the_limit_that_ended_the_run() {
        use crate::Outcome;
        let killed = Outcome::Signaled(SIGKILL);
        assert_eq!(
            outcome(Stop::Limit(Reason::Memory), killed, false),
            Outcome::MemoryLimit
        );
        assert_eq!(
            outcome(Stop::Limit(Reason::CpuTime), killed, false),
            Outcome::CpuTimeLimit
        );
        assert_eq!(
            outcome(Stop::Limit(Reason::Processes), killed, false),
            killed
        );
        assert_eq!(outcome(Stop::Wall, killed, false), Outcome::WallTimeLimit);
        assert_eq!(
            outcome(Stop::Output, Outcome::Signaled(13), false),
            Outcome::OutputLimit
        );
        assert_eq!(outcome(Stop::User, killed, true), killed);
        // RLIMIT_CPU's backstop: SIGXCPU always, SIGKILL only with the budget spent.
        assert_eq!(
            outcome(Stop::None, Outcome::Signaled(SIGXCPU), false),
            Outcome::CpuTimeLimit
        );
        assert_eq!(outcome(Stop::None, killed, true), Outcome::CpuTimeLimit);
        assert_eq!(outcome(Stop::None, killed, false), killed);
        assert_eq!(
            outcome(Stop::None, Outcome::Exited(3), true),
            Outcome::Exited(3)
        );
    }

    #[test]
    fn memory_goes_before_cpu_time_and_processes() {
        let mut t = tree(Limits {
            memory: Some(10),
            cpu_time: Some(Duration::from_millis(1)),
            processes: Some(0),
        });
        t.record(
            ROOT,
            100,
            Usage {
                memory: 11,
                cpu: Duration::from_millis(5),
            },
        );
        assert_eq!(t.decide(), Verdict::Kill(Reason::Memory));
    }
}
