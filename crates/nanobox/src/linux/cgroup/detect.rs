//! Which cgroup mechanism each controller gets on this host, and why.
//!
//! Detection reads only: `/proc/self/cgroup`, `/proc/self/mountinfo` (both passed in as text), the
//! interface files of the candidate cgroups and whether they are writable. It creates nothing;
//! [`super::RunCgroup::create`] does the work it predicts.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::{CgroupFs, RealFs};
use super::parse::{self, CgroupLine, MountLine};

/// A resource controller nanobox limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    pub(crate) const ALL: [Controller; 3] = [Controller::Memory, Controller::Pids, Controller::Cpu];

    /// The kernel's name for it (v1 and v2 alike).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }
}

/// How a limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mechanism {
    /// A cgroup v2 run cgroup.
    V2,
    /// A per-controller cgroup v1 run cgroup.
    V1,
    /// No writable cgroup: the caller falls back to rlimits (per process, not per sandbox), which
    /// is reported as degraded.
    Rlimit,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mechanism::V2 => "cgroup v2",
            Mechanism::V1 => "cgroup v1",
            Mechanism::Rlimit => "rlimit (degraded: per process, not per sandbox)",
        })
    }
}

/// The decision for one controller, with the reason a person reads in `nanobox doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) controller: Controller,
    pub(crate) mechanism: Mechanism,
    pub(crate) reason: String,
}

/// Where CPU time is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CpuAccounting {
    /// `cpu.stat` of the v2 run cgroup (present with or without the cpu controller).
    V2,
    /// `cpuacct.usage` of a v1 run cgroup below this directory.
    V1(PathBuf),
    /// Not available (the caller can only read rusage of what it reaps).
    None,
}

/// Where v2 run cgroups are created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V2Plan {
    /// The directory run cgroups are created in.
    pub(crate) parent: PathBuf,
    /// Root mode: the cgroup2 mount's root, where nanobox enables the controllers in
    /// `cgroup.subtree_control` (and in `parent`'s, which it creates). `None`: the parent is a
    /// delegated cgroup that already enables them.
    pub(crate) setup_root: Option<PathBuf>,
    /// The controllers decided V2.
    pub(crate) controllers: Vec<Controller>,
}

/// What detection needs to know about the host, injectable so that tests run against a fixture.
#[derive(Debug, Clone)]
pub(crate) struct Inputs<'a> {
    /// The content of `/proc/self/cgroup`.
    pub(crate) proc_self_cgroup: &'a str,
    /// The content of `/proc/self/mountinfo`.
    pub(crate) mountinfo: &'a str,
    /// Prepended to every mount point ("/" on the real host, a temp dir in tests).
    pub(crate) root_prefix: &'a Path,
    /// The caller's effective uid.
    pub(crate) euid: u32,
    /// The caller's pid (names the run cgroups, is named in messages).
    pub(crate) pid: i32,
}

/// The host's cgroup setup as nanobox will use it.
pub(crate) struct Host {
    pub(crate) fs: Arc<dyn CgroupFs>,
    pub(crate) euid: u32,
    /// The caller: its pid and start time, encoded in the name of each run cgroup.
    pub(crate) owner: (i32, u64),
    /// Memory, pids, cpu, in that order.
    pub(crate) decisions: Vec<Decision>,
    pub(crate) v2: Option<V2Plan>,
    /// Writable v1 directories of the caller, by controller name ("memory", "pids", "cpu",
    /// "cpuacct"); a run creates its own directory below each it needs.
    pub(crate) v1_dirs: Vec<(&'static str, PathBuf)>,
    pub(crate) cpu_accounting: CpuAccounting,
    pub(crate) cpu_accounting_reason: String,
    /// The scope the systemd user manager delegated for this process's runs, when run cgroups
    /// are made there.
    pub(crate) systemd: Option<Arc<super::systemd::Scope>>,
    /// Why no such scope is used, when one was wanted and could not be had.
    pub(crate) systemd_why: Option<String>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("euid", &self.euid)
            .field("owner", &self.owner)
            .field("decisions", &self.decisions)
            .field("v2", &self.v2)
            .field("v1_dirs", &self.v1_dirs)
            .field("cpu_accounting", &self.cpu_accounting)
            .field("systemd", &self.systemd)
            .field("systemd_why", &self.systemd_why)
            .finish()
    }
}

/// What a non-root caller does to get a delegated cgroup v2 subtree.
pub(crate) const DELEGATION_FIX: &str =
    "start the caller in a delegated scope: `systemd-run --user --scope -p Delegate=yes -- \
     PROGRAM`; inside it, because a cgroup that holds processes cannot enable controllers for \
     children (the no-internal-process rule), move the caller into a leaf child (`mkdir $CG/leaf \
     && echo $$ > $CG/leaf/cgroup.procs`, CG being /sys/fs/cgroup plus the `0::` path of \
     /proc/self/cgroup) and enable the controllers there (`echo '+memory +pids +cpu' > \
     $CG/cgroup.subtree_control`); nanobox then creates its run cgroups in CG. The user manager \
     must itself have the controllers delegated (`systemctl show user@$(id -u).service -p \
     DelegateControllers`; otherwise add a drop-in with `Delegate=memory pids cpu`)";

fn words(text: &str) -> Vec<&str> {
    text.split_ascii_whitespace().collect()
}

fn join(prefix: &Path, abs: &str) -> PathBuf {
    prefix.join(abs.trim_start_matches('/'))
}

/// Whether systemd marked a cgroup as delegated (the `user.delegate` extended attribute, set on
/// units with `Delegate=yes` since systemd 251; `trusted.delegate` is only readable by root).
fn marked_delegated(dir: &Path) -> bool {
    let mut buf = [0u8; 8];
    ["user.delegate", "trusted.delegate"].iter().any(|name| {
        rustix::fs::getxattr(dir, *name, &mut buf[..]).is_ok_and(|n| n > 0 && buf[0] == b'1')
    })
}

/// The directory of the caller's cgroup `path` (hierarchy-relative) under mount `m`, or `None`
/// when the mount does not show it.
fn dir_under(prefix: &Path, m: &MountLine, path: &str) -> Option<PathBuf> {
    let rel = Path::new(path).strip_prefix(&m.root).ok()?;
    let mut d = join(prefix, &m.mount_point);
    if !rel.as_os_str().is_empty() {
        d.push(rel);
    }
    Some(d)
}

impl Host {
    /// Detect on the real host. A caller that is not root and has no delegated cgroup v2 of its
    /// own gets a scope from the systemd user manager where one runs (see [`super::systemd`]).
    pub(crate) fn detect() -> Host {
        let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let inputs = Inputs {
            proc_self_cgroup: &cg,
            mountinfo: &mi,
            root_prefix: Path::new("/"),
            euid: rustix::process::geteuid().as_raw(),
            pid: rustix::process::getpid().as_raw_nonzero().get(),
        };
        let mut host = Host::detect_with(Arc::new(RealFs), &inputs);
        let Some((mount, caller)) = host.wants_systemd(&inputs) else {
            return host;
        };
        match super::systemd::scope(&mount, &caller) {
            Ok(scope) => {
                let path = scope
                    .dir
                    .strip_prefix(&mount)
                    .map(|p| format!("/{}", p.display()))
                    .unwrap_or_default();
                let lines: String = cg
                    .lines()
                    .map(|l| {
                        if l.starts_with("0::") {
                            format!("0::{path}\n")
                        } else {
                            format!("{l}\n")
                        }
                    })
                    .collect();
                let mut inside = Host::detect_with(
                    Arc::new(RealFs),
                    &Inputs {
                        proc_self_cgroup: &lines,
                        ..inputs
                    },
                );
                match &inside.v2 {
                    Some(plan) if plan.parent == scope.dir => {
                        for d in &mut inside.decisions {
                            if d.mechanism == Mechanism::V2 {
                                d.reason = format!(
                                    "run cgroups below {}, a scope systemd's user manager \
                                     delegated to this process (see \"systemd user manager\")",
                                    scope.dir.display()
                                );
                            }
                        }
                        inside.owner = host.owner;
                        inside.systemd = Some(scope);
                        inside
                    }
                    _ => {
                        host.systemd_why = Some(format!(
                            "the systemd user manager delegated {}, but it offers none of \
                             memory, pids, cpu (the user manager must have them delegated: \
                             `systemctl show user@{}.service -p DelegateControllers`)",
                            scope.dir.display(),
                            inputs.euid
                        ));
                        host
                    }
                }
            }
            Err(why) => {
                host.systemd_why = Some(why);
                host
            }
        }
    }

    /// Whether to ask the systemd user manager for a scope: not root, a cgroup2 mount shows the
    /// caller's cgroup, and some controller has no v2 run cgroup parent, or the parent found is
    /// one of the user manager's own cgroups that it did not delegate (writing there would go
    /// behind the manager's back: it may turn a controller off in it at any time). Returns the
    /// mount and the caller's v2 cgroup path.
    fn wants_systemd(&self, inputs: &Inputs<'_>) -> Option<(PathBuf, String)> {
        if inputs.euid == 0 {
            return None;
        }
        let mounts = parse::cgroup_mounts(inputs.mountinfo);
        let lines = parse::cgroup_lines(inputs.proc_self_cgroup);
        let (m, _) = v2_mount(&mounts, &lines, inputs.root_prefix).ok()?;
        if m.read_only || m.root != "/" {
            return None;
        }
        let caller = lines
            .iter()
            .find(|l| l.id == 0 && l.controllers.is_empty())?
            .path
            .clone();
        let mount = join(inputs.root_prefix, &m.mount_point);
        let all_v2 = self.decisions.iter().all(|d| d.mechanism == Mechanism::V2);
        let undelegated = self.v2.as_ref().is_some_and(|p| {
            let managed = p.parent.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                c.starts_with("user@") && c.ends_with(".service")
            });
            managed && !marked_delegated(&p.parent)
        });
        (!all_v2 || undelegated).then_some((mount, caller))
    }

    /// Detect from the given inputs, reading cgroup files through `fs`.
    pub(crate) fn detect_with(fs: Arc<dyn CgroupFs>, inputs: &Inputs<'_>) -> Host {
        let mounts = parse::cgroup_mounts(inputs.mountinfo);
        let lines = parse::cgroup_lines(inputs.proc_self_cgroup);
        let prefix = inputs.root_prefix;
        let euid = inputs.euid;
        let owner = (inputs.pid, fs.start_time(inputs.pid).unwrap_or(0));
        let f: &dyn CgroupFs = &*fs;

        // v2: each controller's verdict (the parent directory, or why not).
        let v2_results: Vec<Result<(PathBuf, Option<PathBuf>), String>> = Controller::ALL
            .iter()
            .map(|&c| v2_check(f, &mounts, &lines, prefix, euid, inputs.pid, c))
            .collect();
        // One v2 parent per run: the first usable controller's; a controller delegated elsewhere
        // is not used through v2.
        let chosen = v2_results.iter().find_map(|r| r.as_ref().ok()).cloned();

        let mut decisions = Vec::new();
        let mut v2_controllers = Vec::new();
        let mut v1_dirs = Vec::new();
        for (i, &c) in Controller::ALL.iter().enumerate() {
            let v2 = match (&v2_results[i], &chosen) {
                (Ok(p), Some(ch)) if p == ch => Ok(p.0.clone()),
                (Ok(p), _) => Err(format!(
                    "{} is delegated at {}, not at {} where the other controllers are",
                    c.name(),
                    p.0.display(),
                    chosen
                        .as_ref()
                        .map(|ch| ch.0.display().to_string())
                        .unwrap_or_default()
                )),
                (Err(e), _) => Err(e.clone()),
            };
            let decision = match v2 {
                Ok(parent) => {
                    v2_controllers.push(c);
                    Decision {
                        controller: c,
                        mechanism: Mechanism::V2,
                        reason: match &chosen {
                            Some((_, Some(root))) => format!(
                                "cgroup v2: run cgroups below {} (nanobox, as root, enables {} \
                                 in {}/cgroup.subtree_control and in its own)",
                                parent.display(),
                                c.name(),
                                root.display()
                            ),
                            _ => format!(
                                "cgroup v2: run cgroups below {}, which is delegated to uid {} \
                                 and enables {} for its children",
                                parent.display(),
                                euid,
                                c.name()
                            ),
                        },
                    }
                }
                Err(v2_why) => match v1_check(f, &mounts, &lines, prefix, euid, c.name()) {
                    Ok(dir) => {
                        let reason = format!(
                            "cgroup v1: run cgroups below {} (not v2: {v2_why})",
                            dir.display()
                        );
                        v1_dirs.push((c.name(), dir));
                        Decision {
                            controller: c,
                            mechanism: Mechanism::V1,
                            reason,
                        }
                    }
                    Err(v1_why) => Decision {
                        controller: c,
                        mechanism: Mechanism::Rlimit,
                        reason: format!(
                            "no writable cgroup for {}: v2: {v2_why}; v1: {v1_why}. Only with \
                             the opt-in allow_degraded_limits() would it be {}",
                            c.name(),
                            match c {
                                Controller::Memory => {
                                    "RLIMIT_AS per process (not a whole-sandbox limit; no \
                                     peak-memory or OOM accounting)"
                                }
                                Controller::Pids => {
                                    "RLIMIT_NPROC (counts every process of the sandbox's \
                                     host uid, not only this sandbox's)"
                                }
                                Controller::Cpu => {
                                    "nothing for CPU bandwidth (no rlimit throttles; \
                                     RLIMIT_CPU only ends a process)"
                                }
                            }
                        ),
                    },
                },
            };
            decisions.push(decision);
        }

        let v2 = chosen.and_then(|(parent, setup_root)| {
            (!v2_controllers.is_empty()).then_some(V2Plan {
                parent,
                setup_root,
                controllers: v2_controllers,
            })
        });
        let (cpu_accounting, cpu_accounting_reason) = if let Some(p) = &v2 {
            (
                CpuAccounting::V2,
                format!(
                    "cpu.stat (usage_usec) of each v2 run cgroup below {}",
                    p.parent.display()
                ),
            )
        } else {
            match v1_check(f, &mounts, &lines, prefix, euid, "cpuacct") {
                Ok(dir) => {
                    let r = format!("cpuacct.usage of a v1 run cgroup below {}", dir.display());
                    v1_dirs.push(("cpuacct", dir.clone()));
                    (CpuAccounting::V1(dir), r)
                }
                Err(why) => (
                    CpuAccounting::None,
                    format!("no cgroup CPU accounting: no v2 run cgroup, and cpuacct: {why}"),
                ),
            }
        };
        Host {
            fs,
            euid,
            owner,
            decisions,
            v2,
            v1_dirs,
            cpu_accounting,
            cpu_accounting_reason,
            systemd: None,
            systemd_why: None,
        }
    }

    /// The decision for `c`.
    pub(crate) fn decision(&self, c: Controller) -> &Decision {
        self.decisions
            .iter()
            .find(|d| d.controller == c)
            .expect("one decision per controller")
    }

    /// The mechanism for `c`.
    pub(crate) fn mechanism(&self, c: Controller) -> Mechanism {
        self.decision(c).mechanism
    }

    /// One line per decision, for `nanobox doctor` / `Sandbox::probe()`. A controller without a
    /// cgroup is "refused": that is what a strict sandbox does with its limit.
    pub(crate) fn report(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .decisions
            .iter()
            .map(|d| {
                let m = match d.mechanism {
                    Mechanism::Rlimit => "refused".to_string(),
                    m => m.to_string(),
                };
                format!("{}: {m} — {}", d.controller.name(), d.reason)
            })
            .collect();
        out.push(format!(
            "cpu time accounting: {}",
            self.cpu_accounting_reason
        ));
        if let Some(scope) = &self.systemd {
            out.push(format!(
                "systemd user manager: the scope {}",
                scope.describe()
            ));
        } else if let Some(why) = &self.systemd_why {
            out.push(format!("systemd user manager: {why}"));
        }
        out
    }

    /// How a caller that is not root gets a delegated cgroup v2 subtree by hand, for `doctor`.
    pub(crate) fn delegation_fix() -> &'static str {
        DELEGATION_FIX
    }

    /// The v1 directory of the caller for a controller name, when writable.
    pub(crate) fn v1_dir(&self, name: &str) -> Option<&Path> {
        self.v1_dirs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| d.as_path())
    }

    /// Every directory that holds run cgroups (for the sweep).
    pub(crate) fn run_parents(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.v2.iter().map(|p| p.parent.clone()).collect();
        for (_, d) in &self.v1_dirs {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
}

/// The cgroup2 mount that shows the caller's cgroup (the first one), and that cgroup's directory.
fn v2_mount<'m>(
    mounts: &'m [MountLine],
    lines: &[CgroupLine],
    prefix: &Path,
) -> Result<(&'m MountLine, PathBuf), String> {
    let line = lines
        .iter()
        .find(|l| l.id == 0 && l.controllers.is_empty())
        .ok_or("/proc/self/cgroup has no `0::` (cgroup v2) line")?;
    let v2: Vec<&MountLine> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
    if v2.is_empty() {
        return Err("no cgroup2 filesystem is mounted".into());
    }
    v2.iter()
        .find_map(|m| dir_under(prefix, m, &line.path).map(|d| (*m, d)))
        .ok_or_else(|| {
            format!(
                "the caller's cgroup {} is outside every cgroup2 mount (mount root {})",
                line.path, v2[0].root
            )
        })
}

/// Whether v2 can hold `c` for our runs: `Ok((parent, setup_root))`, or why not.
fn v2_check(
    fs: &dyn CgroupFs,
    mounts: &[MountLine],
    lines: &[CgroupLine],
    prefix: &Path,
    euid: u32,
    pid: i32,
    c: Controller,
) -> Result<(PathBuf, Option<PathBuf>), String> {
    let (m, caller) = v2_mount(mounts, lines, prefix)?;
    let mount = join(prefix, &m.mount_point);
    if m.read_only {
        return Err(format!(
            "the cgroup2 filesystem at {} is mounted read-only (containers do this by default): \
             mount it read-write, e.g. with a private cgroup namespace",
            mount.display()
        ));
    }
    let name = c.name();
    let has = |dir: &Path, file: &str| {
        fs.read(&dir.join(file))
            .map(|t| words(&t).contains(&name))
            .unwrap_or(false)
    };
    let busy = |dir: &Path| {
        fs.read(&dir.join("cgroup.procs"))
            .map(|t| !t.trim().is_empty())
            .unwrap_or(false)
    };
    if euid == 0 {
        if !has(&mount, "cgroup.controllers") {
            return Err(format!(
                "the {name} controller is not available on the cgroup2 mount at {} (on a hybrid \
                 host it is bound to a v1 hierarchy; boot with systemd.unified_cgroup_hierarchy=1 \
                 for pure v2)",
                mount.display()
            ));
        }
        // The true root cgroup has no cgroup.type and is exempt from the no-internal-process
        // rule; any other cgroup that holds processes cannot enable controllers for children.
        let true_root = !fs.exists(&mount.join("cgroup.type"));
        if !has(&mount, "cgroup.subtree_control") && !true_root && busy(&mount) {
            return Err(format!(
                "{name} is not enabled in {0}/cgroup.subtree_control and cannot be: {0} is not \
                 the root cgroup and holds processes (no-internal-process rule); move them into \
                 a leaf child (`mkdir {0}/init` and write each pid of {0}/cgroup.procs to \
                 {0}/init/cgroup.procs)",
                mount.display()
            ));
        }
        let parent = mount.join("nanobox");
        if fs.exists(&parent) && !has(&parent, "cgroup.subtree_control") && busy(&parent) {
            return Err(format!(
                "{0} holds processes, so {name} cannot be enabled for its children: move them \
                 out of {0}",
                parent.display()
            ));
        }
        if !fs.writable(&mount) {
            return Err(format!("{} is not writable", mount.display()));
        }
        return Ok((parent, Some(mount)));
    }

    // Not root: the nearest cgroup from the caller's own upwards that we may write and that
    // already enables the controller for its children.
    let mut dir = caller.as_path();
    loop {
        if fs.writable(dir)
            && fs.writable(&dir.join("cgroup.procs"))
            && has(dir, "cgroup.subtree_control")
        {
            return Ok((dir.to_path_buf(), None));
        }
        match dir.parent() {
            Some(p) if p.starts_with(&mount) && dir != mount => dir = p,
            _ => break,
        }
    }
    let why = if !fs.writable(&caller) {
        format!(
            "the caller's cgroup {} is not delegated to uid {euid} (not writable)",
            caller.display()
        )
    } else if !has(&caller, "cgroup.controllers") {
        format!(
            "{name} is not delegated to the caller's cgroup {} (missing from its \
             cgroup.controllers)",
            caller.display()
        )
    } else {
        format!(
            "the caller's cgroup {0} is writable and offers {name}, but {name} is not enabled in \
             {0}/cgroup.subtree_control, and cannot be while {0} holds processes (the caller, pid \
             {pid}); nanobox does not move the caller's process",
            caller.display()
        )
    };
    Err(why)
}

/// The caller's writable v1 directory for controller `name`, or why there is none.
fn v1_check(
    fs: &dyn CgroupFs,
    mounts: &[MountLine],
    lines: &[CgroupLine],
    prefix: &Path,
    euid: u32,
    name: &str,
) -> Result<PathBuf, String> {
    let line = lines
        .iter()
        .find(|l| l.id != 0 && l.controllers.iter().any(|c| c == name))
        .ok_or_else(|| format!("no cgroup v1 hierarchy has the {name} controller"))?;
    let candidates: Vec<&MountLine> = mounts
        .iter()
        .filter(|m| m.fstype == "cgroup" && m.super_opts.iter().any(|o| o == name))
        .collect();
    if candidates.is_empty() {
        return Err(format!(
            "the v1 {name} hierarchy is not mounted in this mount namespace"
        ));
    }
    let (m, dir) = candidates
        .iter()
        .find_map(|m| dir_under(prefix, m, &line.path).map(|d| (*m, d)))
        .ok_or_else(|| {
            format!(
                "the caller's v1 {name} cgroup {} is outside the mounted part of the hierarchy",
                line.path
            )
        })?;
    if m.read_only {
        return Err(format!(
            "the v1 {name} hierarchy at {} is mounted read-only",
            m.mount_point
        ));
    }
    if !fs.exists(&dir) {
        return Err(format!("{} does not exist", dir.display()));
    }
    if !fs.writable(&dir) {
        return Err(format!(
            "the caller's v1 {name} cgroup {} is not writable by uid {euid} (run as root, or \
             have an administrator create a cgroup owned by uid {euid} and start the caller in it)",
            dir.display()
        ));
    }
    Ok(dir)
}
