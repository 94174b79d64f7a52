//! Resource limits and accounting with cgroups: one cgroup per run.
//!
//! One file per concern: [`detect`] (which mechanism each controller gets on this host, and why),
//! [`v2`] and [`v1`] (what a run cgroup is made of on each), [`fs`] (every file access, behind a
//! trait so that the tests run against fixture trees), [`parse`] (the file formats; the CPU usage
//! parser may run between fork and exec).
//!
//! The life of a run cgroup: [`RunCgroup::create`] before the clone (v2: the directory fd goes to
//! `clone3(CLONE_INTO_CGROUP)`); [`RunCgroup::attach`] by the parent before it releases the child
//! (v1, and v2 where the child was cloned without `CLONE_INTO_CGROUP`); the readers after the run;
//! [`RunCgroup::destroy`] (or drop) kills what remains and removes every directory. Run cgroups
//! are named `nanobox-<owner pid>-<owner start time>-<counter>`, so that [`sweep_stale`] can tell
//! a dead (or reused) owner's leftovers from live runs.

mod detect;
mod fs;
mod parse;
pub(crate) mod systemd;
mod v1;
mod v2;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v1;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

// The API the spawn path and `doctor` will use.
#[allow(unused_imports)]
pub(crate) use detect::{Controller, CpuAccounting, Decision, Host, Inputs, Mechanism};
#[allow(unused_imports)]
pub(crate) use fs::{CgroupFs, RealFs};
pub(crate) use parse::parse_cpu_usage_ns;

use crate::error::{Error, Result};

/// The CFS period nanobox uses, in microseconds (v2 `cpu.max`, v1 `cpu.cfs_period_us`).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// Resource limits of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Limits {
    /// Bytes of memory (swap excluded: none is allowed).
    pub(crate) memory: Option<u64>,
    /// CPU bandwidth in cores (0.5 = half of one CPU).
    pub(crate) cpu: Option<f64>,
    /// Live processes plus threads.
    pub(crate) pids: Option<u64>,
}

/// The CFS quota for `cores`, in microseconds per [`CPU_PERIOD_US`] (the kernel's minimum is 1 ms).
pub(crate) fn cpu_quota(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);
static CREATED: AtomicU64 = AtomicU64::new(0);
const NAME_PREFIX: &str = "nanobox-";

/// The owner encoded in a run cgroup's name: `(pid, start time)`.
fn parse_run_name(name: &str) -> Option<(i32, u64)> {
    let mut it = name.strip_prefix(NAME_PREFIX)?.split('-');
    let pid = it.next()?.parse().ok()?;
    let start = it.next()?.parse().ok()?;
    let _counter: u64 = it.next()?.parse().ok()?;
    it.next().is_none().then_some((pid, start))
}

/// One v1 directory of a run.
#[derive(Debug)]
struct V1Dir {
    path: PathBuf,
    /// The controller names it serves ("memory", "pids", "cpu", "cpuacct").
    names: Vec<&'static str>,
    procs: Option<OwnedFd>,
}

/// The cgroup(s) of one run. Dropping it destroys them (see [`RunCgroup::destroy`]).
pub(crate) struct RunCgroup {
    fs: Arc<dyn CgroupFs>,
    name: String,
    mechanisms: [Mechanism; 3],
    /// The v2 run directory, and its fd (for `CLONE_INTO_CGROUP`).
    v2: Option<(PathBuf, Option<OwnedFd>)>,
    v1: Vec<V1Dir>,
    /// The CPU usage file, opened for reading; `true` when it is v2's `cpu.stat`.
    cpu_file: Option<(PathBuf, OwnedFd, bool)>,
    /// The systemd scope that moves the init into the v2 run cgroup, where this process may not
    /// (see [`systemd`]).
    via: Option<Arc<systemd::Scope>>,
}

impl std::fmt::Debug for RunCgroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunCgroup")
            .field("name", &self.name)
            .field("mechanisms", &self.mechanisms)
            .field("dirs", &self.dirs())
            .finish()
    }
}

fn setup_err(step: String, source: io::Error) -> Error {
    Error::Setup { step, source }
}

impl RunCgroup {
    /// Create the cgroup(s) of one run and write `limits` for the controllers a cgroup holds
    /// (the others are the caller's to enforce with rlimits; see [`RunCgroup::mechanism`]).
    /// Accounting directories are created even without limits. On error, whatever was created is
    /// removed again.
    pub(crate) fn create(host: &Host, limits: &Limits) -> Result<RunCgroup> {
        if let Some(c) = limits.cpu {
            if !(c.is_finite() && c > 0.0) {
                return Err(Error::InvalidOption {
                    option: "cpus",
                    reason: format!("{c} is not a positive number of cores"),
                });
            }
        }
        let fs = host.fs.clone();
        // Opportunistic sweep of dead owners' leftovers: on the first run of this process, then
        // every 64th (a directory listing per parent). Live runs are never touched.
        if CREATED.fetch_add(1, Ordering::Relaxed).is_multiple_of(64) {
            let _ = sweep(host, false);
        }
        let v1_needed = v1::needed(host, limits);
        let v2_parent = host.v2.as_ref().map(|p| p.parent.clone());

        if let Some(plan) = &host.v2 {
            v2::prepare_parent(&*fs, plan).map_err(|e| {
                setup_err(
                    format!(
                        "preparing the cgroup v2 parent {} for run cgroups",
                        plan.parent.display()
                    ),
                    e,
                )
            })?;
        }
        // A name none of the target directories holds yet.
        let (pid, start) = host.owner;
        let name = loop {
            let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
            let name = format!("{NAME_PREFIX}{pid}-{start}-{n}");
            let taken = v2_parent.iter().any(|p| fs.exists(&p.join(&name)))
                || v1_needed.iter().any(|(d, _)| fs.exists(&d.join(&name)));
            if !taken {
                break name;
            }
        };
        let mut run = RunCgroup {
            fs: fs.clone(),
            name,
            mechanisms: Controller::ALL.map(|c| host.mechanism(c)),
            v2: None,
            v1: Vec::new(),
            cpu_file: None,
            via: host.systemd.clone().filter(|s| !s.direct),
        };

        if let Some(plan) = &host.v2 {
            let dir = plan.parent.join(&run.name);
            let ctx = |what: &str, e| setup_err(format!("{what} {}", dir.display()), e);
            fs.mkdir(&dir)
                .map_err(|e| ctx("creating the run cgroup", e))?;
            run.v2 = Some((dir.clone(), None));
            v2::configure(&*fs, &dir, limits, &plan.controllers)
                .map_err(|e| ctx("writing the limits of the run cgroup", e))?;
            // Cloning into the cgroup is for a caller that may move processes there.
            if run.via.is_none() {
                let fd = fs
                    .open_dir(&dir)
                    .map_err(|e| ctx("opening the run cgroup", e))?;
                run.v2 = Some((dir.clone(), Some(fd)));
            }
            let stat = dir.join("cpu.stat");
            if let Ok(fd) = fs.open_read(&stat) {
                run.cpu_file = Some((stat, fd, true));
            }
        }
        for (parent, names) in v1_needed {
            let dir = parent.join(&run.name);
            let ctx = |what: &str, e| setup_err(format!("{what} {}", dir.display()), e);
            fs.mkdir(&dir)
                .map_err(|e| ctx("creating the run cgroup", e))?;
            run.v1.push(V1Dir {
                path: dir.clone(),
                names: names.clone(),
                procs: None,
            });
            v1::configure(&*fs, &dir, &names, limits)
                .map_err(|e| ctx("writing the limits of the run cgroup", e))?;
            let procs = fs
                .open_write(&dir.join("cgroup.procs"))
                .map_err(|e| ctx("opening cgroup.procs of", e))?;
            if let Some(last) = run.v1.last_mut() {
                last.procs = Some(procs);
            }
            if names.contains(&"cpuacct") && run.cpu_file.is_none() {
                let usage = dir.join("cpuacct.usage");
                let fd = fs
                    .open_read(&usage)
                    .map_err(|e| ctx("opening cpuacct.usage of", e))?;
                run.cpu_file = Some((usage, fd, false));
            }
        }
        Ok(run)
    }

    /// The run cgroup's name (the same in every hierarchy).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// How `c` is limited in this run.
    pub(crate) fn mechanism(&self, c: Controller) -> Mechanism {
        self.mechanisms[Controller::ALL
            .iter()
            .position(|&x| x == c)
            .expect("a known controller")]
    }

    /// Every directory of the run (v2 first).
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        self.v2
            .iter()
            .map(|(p, _)| p.clone())
            .chain(self.v1.iter().map(|d| d.path.clone()))
            .collect()
    }

    /// The v2 run directory, opened `O_RDONLY|O_DIRECTORY|O_CLOEXEC`, for `clone3`'s
    /// `CLONE_INTO_CGROUP` (`cgroup` field).
    pub(crate) fn clone_into_fd(&self) -> Option<BorrowedFd<'_>> {
        self.v2.as_ref()?.1.as_ref().map(|fd| fd.as_fd())
    }

    /// The CPU usage file, opened for reading (pread it at offset 0 and parse with
    /// [`parse_cpu_usage_ns`] and [`RunCgroup::cpu_usage_is_v2`]).
    pub(crate) fn cpu_usage_fd(&self) -> Option<BorrowedFd<'_>> {
        self.cpu_file.as_ref().map(|(_, fd, _)| fd.as_fd())
    }

    /// Whether [`RunCgroup::cpu_usage_fd`] is v2's `cpu.stat` (else v1's `cpuacct.usage`).
    pub(crate) fn cpu_usage_is_v2(&self) -> bool {
        self.cpu_file.as_ref().is_some_and(|(_, _, v2)| *v2)
    }

    /// Move `pid` (and its threads) into every directory of the run: each v1 directory, and the v2
    /// one (a no-op for a child placed there by `CLONE_INTO_CGROUP`). The parent calls it while
    /// the child waits to be released.
    pub(crate) fn attach(&self, pid: i32) -> io::Result<()> {
        let value = pid.to_string();
        if let (Some(scope), Some(_)) = (&self.via, &self.v2) {
            scope.attach(&self.name, pid)?;
        } else if let Some((dir, _)) = &self.v2 {
            let procs = dir.join("cgroup.procs");
            self.fs
                .write(&procs, &value)
                .map_err(|e| v2::annotate(e, &procs, &value))?;
        }
        // v1: through the `cgroup.procs` descriptors opened by `create`, one write each.
        let line = format!("{value}\n");
        for d in &self.v1 {
            let procs = d.path.join("cgroup.procs");
            match &d.procs {
                Some(fd) => match rustix::io::write(fd, line.as_bytes()) {
                    Ok(n) if n == line.len() => {}
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            format!("short write to {}", procs.display()),
                        ))
                    }
                    Err(e) => return Err(v2::annotate(e.into(), &procs, &value)),
                },
                None => self
                    .fs
                    .write(&procs, &value)
                    .map_err(|e| v2::annotate(e, &procs, &value))?,
            }
        }
        Ok(())
    }

    fn memory_dir(&self) -> Option<(&Path, bool)> {
        match self.mechanism(Controller::Memory) {
            Mechanism::V2 => self.v2.as_ref().map(|(p, _)| (p.as_path(), true)),
            Mechanism::V1 => self
                .v1
                .iter()
                .find(|d| d.names.contains(&"memory"))
                .map(|d| (d.path.as_path(), false)),
            Mechanism::Rlimit => None,
        }
    }

    /// CPU time used by every process of the run so far (v2 `cpu.stat` usage_usec, v1
    /// `cpuacct.usage`).
    pub(crate) fn cpu_usage(&self) -> Option<Duration> {
        let (path, _, v2) = self.cpu_file.as_ref()?;
        let text = self.fs.read(path).ok()?;
        parse_cpu_usage_ns(text.as_bytes(), *v2).map(Duration::from_nanos)
    }

    /// The run's peak memory in bytes: v2 `memory.peak` (Linux 5.19+; `None` before), which counts
    /// socket buffers; v1 `memory.max_usage_in_bytes` plus the peak of the TCP buffers
    /// (`memory.kmem.tcp.max_usage_in_bytes`), which v1 counts apart (the sum of two peaks: at
    /// most the true peak's double, never below it).
    pub(crate) fn memory_peak(&self) -> Option<u64> {
        let (dir, v2) = self.memory_dir()?;
        let read = |f: &str| {
            self.fs
                .read(&dir.join(f))
                .ok()
                .and_then(|t| parse::single_u64(&t))
        };
        if v2 {
            return read("memory.peak");
        }
        let tcp = read("memory.kmem.tcp.max_usage_in_bytes").unwrap_or(0);
        Some(read("memory.max_usage_in_bytes")?.saturating_add(tcp))
    }

    /// Whether the kernel's OOM killer killed a process of the run. v2: `oom_kill` of
    /// `memory.events` > 0. v1: `oom_kill` of `memory.oom_control` > 0 (Linux 4.13+); on older
    /// kernels, where that line is missing, `memory.failcnt` > 0 (the limit was hit; a hint, as the
    /// kernel may have reclaimed rather than killed).
    pub(crate) fn oom_killed(&self) -> bool {
        let Some((dir, v2)) = self.memory_dir() else {
            return false;
        };
        let read = |f: &str| self.fs.read(&dir.join(f)).unwrap_or_default();
        if v2 {
            return parse::keyed_u64(read("memory.events").as_bytes(), b"oom_kill")
                .is_some_and(|n| n > 0);
        }
        match parse::keyed_u64(read("memory.oom_control").as_bytes(), b"oom_kill") {
            Some(n) => n > 0,
            None => parse::single_u64(&read("memory.failcnt")).is_some_and(|n| n > 0),
        }
    }

    /// Kill every process of the run: v2 `cgroup.kill` where present; else SIGKILL to each pid of
    /// each directory's `cgroup.procs`, again until all are empty (bounded to 2 s).
    pub(crate) fn kill_all(&self) {
        let mut dirs = self.dirs();
        if let Some((dir, _)) = &self.v2 {
            let kill = dir.join("cgroup.kill");
            if self.fs.exists(&kill) && self.fs.write(&kill, "1").is_ok() {
                // cgroup.kill covers the v2 cgroup; v1 directories hold the same processes, so
                // the loop below finds them gone (or dying) at once.
                dirs.retain(|d| d != dir);
            }
        }
        kill_loop(&*self.fs, &dirs, Duration::from_secs(2));
    }

    /// Kill what remains and remove every directory of the run, retrying while the kernel
    /// finishes tearing processes down (`EBUSY`; up to about a second). A process that has exited
    /// but has not been reaped keeps its cgroup busy, so call this after reaping the sandbox's
    /// init. Already removed directories are fine; the first error is returned, and every
    /// directory is still attempted.
    pub(crate) fn destroy(&mut self) -> io::Result<()> {
        let dirs = self.dirs();
        if dirs.is_empty() {
            return Ok(());
        }
        self.kill_all();
        self.cpu_file = None;
        let mut first_err = None;
        for dir in &dirs {
            if let Err(e) = rmdir_retry(&*self.fs, dir, Duration::from_secs(1)) {
                first_err.get_or_insert(io::Error::new(
                    e.kind(),
                    format!("removing the run cgroup {}: {e}", dir.display()),
                ));
            }
        }
        self.v2 = None;
        self.v1.clear();
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

/// SIGKILL every pid in the `cgroup.procs` of `dirs` until they list none, or `limit` passes.
fn kill_loop(fs: &dyn CgroupFs, dirs: &[PathBuf], limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let mut any = false;
        for d in dirs {
            let Ok(text) = fs.read(&d.join("cgroup.procs")) else {
                continue;
            };
            for pid in parse::pids(&text) {
                any = true;
                let _ = fs.kill(pid);
            }
        }
        if !any || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// rmdir, retrying on EBUSY until `limit` passes; a missing directory counts as removed.
fn rmdir_retry(fs: &dyn CgroupFs, dir: &Path, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        match fs.rmdir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Remove the run cgroups of dead owners (the pid is gone, or now belongs to a process with
/// another start time), killing what they still hold. For `nanobox doctor --clean`. Returns the
/// directories removed.
///
/// An owner in another pid namespace than ours cannot be told from a dead one; such hosts
/// should not share a cgroup parent between namespaces.
pub(crate) fn sweep_stale(host: &Host) -> Result<Vec<PathBuf>> {
    sweep(host, true)
}

/// The sweep; `kill == false` (the opportunistic one at create time) removes only empty cgroups.
fn sweep(host: &Host, kill: bool) -> Result<Vec<PathBuf>> {
    let fs = &*host.fs;
    let mut removed = Vec::new();
    for parent in host.run_parents() {
        let names = match fs.list(&parent) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("listing {} for stale run cgroups", parent.display()),
                    e,
                ))
            }
        };
        for name in names {
            let Some((pid, start)) = name.to_str().and_then(parse_run_name) else {
                continue;
            };
            let alive = if (pid, start) == host.owner {
                true
            } else {
                fs.start_time(pid) == Some(start)
            };
            if alive {
                continue;
            }
            let dir = parent.join(&name);
            if kill {
                if let Some(v2) = &host.v2 {
                    if dir.starts_with(&v2.parent) && fs.exists(&dir.join("cgroup.kill")) {
                        let _ = fs.write(&dir.join("cgroup.kill"), "1");
                    }
                }
                kill_loop(fs, std::slice::from_ref(&dir), Duration::from_secs(2));
                if rmdir_retry(fs, &dir, Duration::from_secs(1)).is_ok() {
                    removed.push(dir);
                }
            } else if fs.rmdir(&dir).is_ok() {
                removed.push(dir);
            }
        }
    }
    Ok(removed)
}
