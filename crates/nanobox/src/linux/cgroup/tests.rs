//! Detection, run cgroups and the sweep against fixture trees laid out like `/sys/fs/cgroup`
//! (pure v2, and the v1 + v2 hybrid), through a fixture [`CgroupFs`] that mimics the kernel's
//! mkdir/rmdir and records every write.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::*;

const V2_CONTROLLERS: &[(&str, &[(&str, &str)])] = &[
    (
        "memory",
        &[
            ("memory.max", "max\n"),
            ("memory.swap.max", "max\n"),
            ("memory.peak", "0\n"),
            ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"),
        ],
    ),
    ("cpu", &[("cpu.max", "max 100000\n")]),
    ("pids", &[("pids.max", "max\n")]),
];
const V2_CORE: &[(&str, &str)] = &[
    ("cgroup.procs", ""),
    ("cgroup.type", "domain\n"),
    ("cgroup.kill", ""),
    ("cgroup.subtree_control", "\n"),
    ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
];

/// Interface files of a new cgroup, with their initial content.
type Files = Vec<(&'static str, &'static str)>;

/// A fixture cgroup filesystem over a temporary directory.
struct Fixture {
    root: PathBuf,
    writes: Mutex<Vec<(PathBuf, String)>>,
    read_only: Mutex<HashSet<PathBuf>>,
    fail_writes: Mutex<HashSet<String>>,
    killed: Mutex<Vec<i32>>,
    procs: Mutex<HashMap<i32, u64>>,
    /// v1 mount points and the interface files (with initial content) of a new cgroup there.
    v1_templates: Mutex<Vec<(PathBuf, Files)>>,
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Fixture {
    fn new(tag: &str) -> Arc<Fixture> {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("nanobox-cgtest-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let me = std::process::id() as i32;
        Arc::new(Fixture {
            root,
            writes: Mutex::new(Vec::new()),
            read_only: Mutex::new(HashSet::new()),
            fail_writes: Mutex::new(HashSet::new()),
            killed: Mutex::new(Vec::new()),
            procs: Mutex::new(HashMap::from([(me, 4242)])),
            v1_templates: Mutex::new(Vec::new()),
        })
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    fn put(&self, rel: &str, content: &str) {
        let p = self.p(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }

    fn get(&self, rel: &str) -> String {
        std::fs::read_to_string(self.p(rel)).unwrap()
    }

    /// A v2 cgroup made directly (not through mkdir), e.g. the tree systemd made.
    fn v2_dir(&self, rel: &str, controllers: &str, subtree: &str, procs: &str) {
        for (f, c) in V2_CORE {
            self.put(&format!("{rel}/{f}"), c);
        }
        self.put(
            &format!("{rel}/cgroup.controllers"),
            &format!("{controllers}\n"),
        );
        self.put(
            &format!("{rel}/cgroup.subtree_control"),
            &format!("{subtree}\n"),
        );
        self.put(&format!("{rel}/cgroup.procs"), procs);
    }

    /// The root of a pure-v2 /sys/fs/cgroup: no cgroup.type, no limit files, holds processes.
    fn v2_root(&self, subtree: &str) {
        self.put(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        );
        self.put(
            "/sys/fs/cgroup/cgroup.subtree_control",
            &format!("{subtree}\n"),
        );
        self.put("/sys/fs/cgroup/cgroup.procs", "1\n");
        self.put("/sys/fs/cgroup/cpu.stat", "usage_usec 5\n");
    }

    fn set_read_only(&self, rel: &str) {
        let p = if Path::new(rel).starts_with(&self.root) {
            PathBuf::from(rel)
        } else {
            self.p(rel)
        };
        self.read_only.lock().unwrap().insert(p);
    }

    fn writes(&self) -> Vec<(String, String)> {
        self.writes
            .lock()
            .unwrap()
            .iter()
            .map(|(p, v)| {
                (
                    format!("/{}", p.strip_prefix(&self.root).unwrap().display()),
                    v.clone(),
                )
            })
            .collect()
    }

    fn host(self: &Arc<Self>, cgroup: &str, mountinfo: &str, euid: u32) -> Host {
        Host::detect_with(
            self.clone(),
            &Inputs {
                proc_self_cgroup: cgroup,
                mountinfo,
                root_prefix: &self.root,
                euid,
                pid: std::process::id() as i32,
            },
        )
    }

    fn remove_pid_everywhere(&self, pid: i32, dir: &Path) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                self.remove_pid_everywhere(pid, &p);
            } else if e.file_name() == "cgroup.procs" {
                let t = std::fs::read_to_string(&p).unwrap();
                let keep: String = parse::pids(&t)
                    .into_iter()
                    .filter(|&x| x != pid)
                    .map(|x| format!("{x}\n"))
                    .collect();
                std::fs::write(&p, keep).unwrap();
            }
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl CgroupFs for Fixture {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, data: &str) -> io::Result<()> {
        if !path.is_file() {
            return Err(errno(libc::ENOENT));
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if self.fail_writes.lock().unwrap().contains(&name) {
            return Err(errno(libc::EINVAL));
        }
        self.writes
            .lock()
            .unwrap()
            .push((path.to_path_buf(), data.to_string()));
        let dir = path.parent().unwrap();
        match name.as_str() {
            "cgroup.subtree_control" => {
                let c = data.strip_prefix('+').ok_or_else(|| errno(libc::EINVAL))?;
                let avail = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
                if !avail.split_whitespace().any(|a| a == c) {
                    return Err(errno(libc::ENOENT));
                }
                let mut cur = std::fs::read_to_string(path)?.trim().to_string();
                if !cur.split_whitespace().any(|a| a == c) {
                    if !cur.is_empty() {
                        cur.push(' ');
                    }
                    cur.push_str(c);
                }
                std::fs::write(path, format!("{cur}\n"))
            }
            "cgroup.procs" => {
                let mut cur = std::fs::read_to_string(path)?;
                cur.push_str(&format!("{data}\n"));
                std::fs::write(path, cur)
            }
            "cgroup.kill" => {
                let procs = dir.join("cgroup.procs");
                let t = std::fs::read_to_string(&procs)?;
                self.killed.lock().unwrap().extend(parse::pids(&t));
                std::fs::write(procs, "")
            }
            _ => std::fs::write(path, format!("{data}\n")),
        }
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)?;
        let parent = path.parent().unwrap();
        if parent.join("cgroup.subtree_control").exists() {
            let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control"))?;
            for (f, c) in V2_CORE {
                std::fs::write(path.join(f), c)?;
            }
            std::fs::write(path.join("cgroup.controllers"), &enabled)?;
            for (ctrl, files) in V2_CONTROLLERS {
                if enabled.split_whitespace().any(|e| e == *ctrl) {
                    for (f, c) in *files {
                        std::fs::write(path.join(f), c)?;
                    }
                }
            }
        } else {
            let templates = self.v1_templates.lock().unwrap();
            let (_, files) = templates
                .iter()
                .find(|(m, _)| path.starts_with(m))
                .ok_or_else(|| errno(libc::EPERM))?;
            std::fs::write(path.join("cgroup.procs"), "")?;
            for (f, c) in files {
                std::fs::write(path.join(f), c)?;
            }
        }
        Ok(())
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        if !path.is_dir() {
            return Err(errno(libc::ENOENT));
        }
        for e in std::fs::read_dir(path)?.flatten() {
            if e.path().is_dir() {
                return Err(errno(libc::EBUSY));
            }
        }
        if !std::fs::read_to_string(path.join("cgroup.procs"))
            .unwrap_or_default()
            .trim()
            .is_empty()
        {
            return Err(errno(libc::EBUSY));
        }
        std::fs::remove_dir_all(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn writable(&self, path: &Path) -> bool {
        path.exists() && !self.read_only.lock().unwrap().contains(path)
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        RealFs.list(path)
    }

    fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        RealFs.open_dir(path)
    }

    fn open_read(&self, path: &Path) -> io::Result<OwnedFd> {
        RealFs.open_read(path)
    }

    fn open_write(&self, path: &Path) -> io::Result<OwnedFd> {
        RealFs.open_write(path)
    }

    fn kill(&self, pid: i32) -> io::Result<()> {
        self.killed.lock().unwrap().push(pid);
        self.remove_pid_everywhere(pid, &self.root);
        Ok(())
    }

    fn start_time(&self, pid: i32) -> Option<u64> {
        self.procs.lock().unwrap().get(&pid).copied()
    }
}

const PURE_V2_MOUNTINFO: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HYBRID_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
4:memory:/process_api/abc
1:cpu,cpuacct:/
0::/
";

const USER_SCOPE: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/run-1.scope";

fn hybrid(tag: &str) -> Arc<Fixture> {
    let fx = Fixture::new(tag);
    let memory: Vec<(&'static str, &'static str)> = vec![
        ("memory.limit_in_bytes", "9223372036854771712\n"),
        ("memory.memsw.limit_in_bytes", "9223372036854771712\n"),
        ("memory.max_usage_in_bytes", "0\n"),
        ("memory.failcnt", "0\n"),
        (
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        ),
    ];
    let pids: Vec<(&'static str, &'static str)> = vec![("pids.max", "max\n")];
    let cpu: Vec<(&'static str, &'static str)> = vec![
        ("cpu.cfs_period_us", "100000\n"),
        ("cpu.cfs_quota_us", "-1\n"),
        ("cpuacct.usage", "0\n"),
    ];
    for (m, files) in [("memory", memory), ("pids", pids), ("cpu,cpuacct", cpu)] {
        fx.put(&format!("/sys/fs/cgroup/{m}/cgroup.procs"), "1\n");
        fx.v1_templates
            .lock()
            .unwrap()
            .push((fx.p(&format!("/sys/fs/cgroup/{m}")), files));
    }
    fx.put("/sys/fs/cgroup/memory/process_api/abc/cgroup.procs", "77\n");
    fx.put("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
    fx.put("/sys/fs/cgroup/unified/cgroup.subtree_control", "\n");
    fx.put("/sys/fs/cgroup/unified/cgroup.procs", "1\n");
    fx.put("/sys/fs/cgroup/systemd/cgroup.procs", "1\n");
    fx
}

fn all_limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        cpu: Some(0.5),
        pids: Some(16),
    }
}

fn w(path: &str, value: &str) -> (String, String) {
    (path.to_string(), value.to_string())
}

#[test]
fn cgroup_cpu_quota_and_mechanism_names() {
    assert_eq!(cpu_quota(0.5), 50_000);
    assert_eq!(cpu_quota(2.0), 200_000);
    assert_eq!(cpu_quota(0.001), 1000);
    assert_eq!(Mechanism::V2.to_string(), "cgroup v2");
    assert_eq!(Mechanism::V1.to_string(), "cgroup v1");
    assert!(Mechanism::Rlimit.to_string().contains("degraded"));
}

#[test]
fn cgroup_v2_root_enables_controllers_and_writes_exact_limits() {
    let fx = Fixture::new("v2root");
    fx.v2_root("memory");
    let host = fx.host("0::/init.scope\n", PURE_V2_MOUNTINFO, 0);
    for d in &host.decisions {
        assert_eq!(d.mechanism, Mechanism::V2, "{d:?}");
        assert!(d.reason.contains("/sys/fs/cgroup/nanobox"), "{}", d.reason);
    }
    assert_eq!(host.cpu_accounting, CpuAccounting::V2);
    assert!(fx.writes().is_empty(), "detection must not write");

    let mut run = RunCgroup::create(&host, &all_limits()).unwrap();
    let dir = format!("/sys/fs/cgroup/nanobox/{}", run.name());
    assert_eq!(
        fx.writes(),
        vec![
            // memory was already enabled at the root: only pids and cpu are added.
            w("/sys/fs/cgroup/cgroup.subtree_control", "+pids"),
            w("/sys/fs/cgroup/cgroup.subtree_control", "+cpu"),
            w("/sys/fs/cgroup/nanobox/cgroup.subtree_control", "+memory"),
            w("/sys/fs/cgroup/nanobox/cgroup.subtree_control", "+pids"),
            w("/sys/fs/cgroup/nanobox/cgroup.subtree_control", "+cpu"),
            w(&format!("{dir}/memory.max"), "67108864"),
            w(&format!("{dir}/memory.swap.max"), "0"),
            w(&format!("{dir}/cpu.max"), "50000 100000"),
            w(&format!("{dir}/pids.max"), "16"),
        ]
    );
    assert_eq!(fx.get(&format!("{dir}/memory.max")), "67108864\n");
    assert!(run.clone_into_fd().is_some());
    assert!(run.cpu_usage_is_v2());

    // The readers, on values the kernel would have written.
    fx.put(
        &format!("{dir}/cpu.stat"),
        "usage_usec 1500000\nuser_usec 1\n",
    );
    assert_eq!(run.cpu_usage(), Some(Duration::from_millis(1500)));
    let mut buf = [0u8; 128];
    let n = rustix::io::pread(run.cpu_usage_fd().unwrap(), &mut buf, 0).unwrap();
    assert_eq!(parse_cpu_usage_ns(&buf[..n], true), Some(1_500_000_000));
    assert!(!run.oom_killed());
    fx.put(
        &format!("{dir}/memory.events"),
        "low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n",
    );
    assert!(run.oom_killed());
    fx.put(&format!("{dir}/memory.peak"), "67108864\n");
    assert_eq!(run.memory_peak(), Some(64 << 20));

    // attach writes the pid (a no-op after CLONE_INTO_CGROUP, needed after a plain clone).
    run.attach(4321).unwrap();
    assert_eq!(fx.get(&format!("{dir}/cgroup.procs")), "4321\n");

    // destroy: cgroup.kill, then the directory is gone; the shared parent stays.
    run.destroy().unwrap();
    assert!(fx.writes().contains(&w(&format!("{dir}/cgroup.kill"), "1")));
    assert!(fx.killed.lock().unwrap().contains(&4321));
    assert!(!fx.p(&dir).exists());
    assert!(fx.p("/sys/fs/cgroup/nanobox").is_dir());
    assert!(run.dirs().is_empty());
}

#[test]
fn cgroup_v2_no_limits_still_makes_an_accounting_cgroup_without_limit_writes() {
    let fx = Fixture::new("v2acct");
    fx.v2_root("memory pids cpu");
    fx.v2_dir(
        "/sys/fs/cgroup/nanobox",
        "memory pids cpu",
        "memory pids cpu",
        "",
    );
    let host = fx.host("0::/init.scope\n", PURE_V2_MOUNTINFO, 0);
    let run = RunCgroup::create(&host, &Limits::default()).unwrap();
    assert!(fx.writes().is_empty(), "{:?}", fx.writes());
    let dir = run.dirs()[0].clone();
    assert!(dir.join("memory.peak").exists());
    assert_eq!(run.memory_peak(), Some(0));
    assert_eq!(run.cpu_usage(), Some(Duration::ZERO));
    drop(run);
    assert!(!dir.exists(), "drop destroys");
}

#[test]
fn cgroup_v2_delegated_user_uses_the_delegating_parent_and_writes_no_subtree_control() {
    let fx = Fixture::new("v2deleg");
    fx.v2_root("memory pids cpu");
    fx.set_read_only("/sys/fs/cgroup");
    let scope = format!("/sys/fs/cgroup{USER_SCOPE}");
    fx.v2_dir(&scope, "memory pids cpu", "memory pids cpu", "");
    fx.v2_dir(&format!("{scope}/leaf"), "memory pids cpu", "", "999\n");
    let host = fx.host(&format!("0::{USER_SCOPE}/leaf\n"), PURE_V2_MOUNTINFO, 1000);
    for d in &host.decisions {
        assert_eq!(d.mechanism, Mechanism::V2, "{d:?}");
        assert!(d.reason.contains("delegated to uid 1000"), "{}", d.reason);
    }
    assert_eq!(host.v2.as_ref().unwrap().parent, fx.p(&scope));
    assert_eq!(host.v2.as_ref().unwrap().setup_root, None);

    let run = RunCgroup::create(
        &host,
        &Limits {
            pids: Some(8),
            ..Limits::default()
        },
    )
    .unwrap();
    let dir = format!("{scope}/{}", run.name());
    assert_eq!(fx.writes(), vec![w(&format!("{dir}/pids.max"), "8")]);
    assert!(!fx.p("/sys/fs/cgroup/nanobox").exists());
}

#[test]
fn cgroup_v2_user_without_delegation_falls_back_to_rlimit_and_names_the_fix() {
    let fx = Fixture::new("v2nodeleg");
    fx.v2_root("memory pids cpu");
    fx.set_read_only("/sys/fs/cgroup");
    let scope = format!("/sys/fs/cgroup{USER_SCOPE}");
    fx.v2_dir(&scope, "memory pids cpu", "", "999\n");
    fx.set_read_only(&scope);
    let host = fx.host(&format!("0::{USER_SCOPE}\n"), PURE_V2_MOUNTINFO, 1000);
    for d in &host.decisions {
        assert_eq!(d.mechanism, Mechanism::Rlimit, "{d:?}");
        assert!(
            d.reason.contains("not delegated to uid 1000"),
            "{}",
            d.reason
        );
        // The manual fix is doctor's, once, not repeated in every controller's reason.
        assert!(!d.reason.contains("systemd-run"), "{}", d.reason);
        assert!(d.reason.contains("no cgroup v1 hierarchy"), "{}", d.reason);
    }
    let fix = Host::delegation_fix();
    assert!(
        fix.contains("systemd-run --user --scope -p Delegate=yes"),
        "{fix}"
    );
    assert!(fix.contains("cgroup.subtree_control"), "{fix}");
    assert_eq!(host.cpu_accounting, CpuAccounting::None);
    // With nothing to create, a run cgroup has no directory and the readers answer nothing.
    let run = RunCgroup::create(&host, &all_limits()).unwrap();
    assert!(run.dirs().is_empty());
    assert_eq!(run.cpu_usage(), None);
    assert!(!run.oom_killed());
    assert!(fx.writes().is_empty());
}

#[test]
fn cgroup_v2_user_whose_delegated_cgroup_holds_processes_is_told_about_the_leaf() {
    let fx = Fixture::new("v2busy");
    fx.v2_root("memory pids cpu");
    fx.set_read_only("/sys/fs/cgroup");
    let scope = format!("/sys/fs/cgroup{USER_SCOPE}");
    // Delegated (writable, controllers offered) but the caller lives in it: nothing enabled.
    fx.v2_dir(
        &scope,
        "memory pids cpu",
        "",
        &format!("{}\n", std::process::id()),
    );
    // Its parent delegates, but is not ours to write.
    let parent = scope.rsplit_once('/').unwrap().0;
    fx.v2_dir(parent, "memory pids cpu", "memory pids cpu", "");
    fx.set_read_only(parent);
    let host = fx.host(&format!("0::{USER_SCOPE}\n"), PURE_V2_MOUNTINFO, 1000);
    let d = host.decision(Controller::Memory);
    assert_eq!(d.mechanism, Mechanism::Rlimit);
    assert!(d.reason.contains("holds processes"), "{}", d.reason);
    assert!(
        d.reason.contains("does not move the caller"),
        "{}",
        d.reason
    );
    assert!(Host::delegation_fix().contains("leaf"));
    assert!(fx.writes().is_empty(), "the caller's process is not moved");
}

#[test]
fn cgroup_v2_root_in_a_cgroup_namespace_with_processes_at_the_root() {
    let fx = Fixture::new("v2ns");
    // A container's cgroup namespace: the mount root is a non-root cgroup holding processes.
    fx.v2_dir("/sys/fs/cgroup", "memory pids cpu", "", "1\n7\n");
    let host = fx.host("0::/\n", PURE_V2_MOUNTINFO, 0);
    let d = host.decision(Controller::Pids);
    assert_eq!(d.mechanism, Mechanism::Rlimit);
    assert!(d.reason.contains("no-internal-process"), "{}", d.reason);
    // Read-only cgroup2 mount (Docker's default).
    let fx = Fixture::new("v2ro");
    fx.v2_root("");
    let ro = PURE_V2_MOUNTINFO.replace("/sys/fs/cgroup rw,", "/sys/fs/cgroup ro,");
    let host = fx.host("0::/\n", &ro, 0);
    assert!(host.decision(Controller::Cpu).reason.contains("read-only"));
}

#[test]
fn cgroup_hybrid_root_uses_v1_per_controller_with_exact_files() {
    let fx = hybrid("hyb");
    let host = fx.host(HYBRID_CGROUP, HYBRID_MOUNTINFO, 0);
    for d in &host.decisions {
        assert_eq!(d.mechanism, Mechanism::V1, "{d:?}");
        assert!(
            d.reason.contains("not available on the cgroup2 mount"),
            "{}",
            d.reason
        );
    }
    assert!(host
        .decision(Controller::Memory)
        .reason
        .contains("/sys/fs/cgroup/memory/process_api/abc"));
    assert_eq!(
        host.cpu_accounting,
        CpuAccounting::V1(fx.p("/sys/fs/cgroup/cpu,cpuacct"))
    );
    assert_eq!(host.report().len(), 4);

    let mut run = RunCgroup::create(&host, &all_limits()).unwrap();
    let n = run.name().to_string();
    let mem = format!("/sys/fs/cgroup/memory/process_api/abc/{n}");
    let pids = format!("/sys/fs/cgroup/pids/{n}");
    let cpu = format!("/sys/fs/cgroup/cpu,cpuacct/{n}");
    assert_eq!(
        fx.writes(),
        vec![
            w(&format!("{mem}/memory.limit_in_bytes"), "67108864"),
            w(&format!("{mem}/memory.memsw.limit_in_bytes"), "67108864"),
            w(&format!("{pids}/pids.max"), "16"),
            w(&format!("{cpu}/cpu.cfs_period_us"), "100000"),
            w(&format!("{cpu}/cpu.cfs_quota_us"), "50000"),
        ]
    );
    // cpu and cpuacct share one hierarchy: one directory.
    assert_eq!(run.dirs(), vec![fx.p(&mem), fx.p(&pids), fx.p(&cpu)]);
    assert!(run.clone_into_fd().is_none());
    assert_eq!(run.dirs().len(), 3);
    assert!(!run.cpu_usage_is_v2());

    run.attach(555).unwrap();
    for d in [&mem, &pids, &cpu] {
        assert_eq!(fx.get(&format!("{d}/cgroup.procs")), "555\n");
    }
    fx.put(&format!("{cpu}/cpuacct.usage"), "2500000\n");
    assert_eq!(run.cpu_usage(), Some(Duration::from_micros(2500)));
    let mut buf = [0u8; 64];
    let k = rustix::io::pread(run.cpu_usage_fd().unwrap(), &mut buf, 0).unwrap();
    assert_eq!(parse_cpu_usage_ns(&buf[..k], false), Some(2_500_000));
    assert!(!run.oom_killed());
    fx.put(
        &format!("{mem}/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    assert!(run.oom_killed());
    fx.put(&format!("{mem}/memory.max_usage_in_bytes"), "67100000\n");
    assert_eq!(run.memory_peak(), Some(67_100_000));

    // No cgroup.kill in v1: SIGKILL to each pid listed, until none is.
    run.destroy().unwrap();
    assert_eq!(*fx.killed.lock().unwrap(), vec![555]);
    for d in [&mem, &pids, &cpu] {
        assert!(!fx.p(d).exists(), "{d} remains");
    }
}

#[test]
fn cgroup_v1_oom_falls_back_to_failcnt_without_the_oom_kill_line() {
    let fx = hybrid("hybold");
    let host = fx.host(HYBRID_CGROUP, HYBRID_MOUNTINFO, 0);
    let run = RunCgroup::create(&host, &Limits::default()).unwrap();
    let mem = run.dirs()[0].clone();
    std::fs::write(
        mem.join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\n",
    )
    .unwrap();
    assert!(!run.oom_killed());
    std::fs::write(mem.join("memory.failcnt"), "3\n").unwrap();
    assert!(run.oom_killed());
}

#[test]
fn cgroup_hybrid_without_limits_makes_accounting_dirs_only() {
    let fx = hybrid("hybacct");
    let host = fx.host(HYBRID_CGROUP, HYBRID_MOUNTINFO, 0);
    let run = RunCgroup::create(&host, &Limits::default()).unwrap();
    let n = run.name().to_string();
    // memory (peak, OOM) and cpuacct (CPU time); no pids directory, no write.
    assert_eq!(
        run.dirs(),
        vec![
            fx.p(&format!("/sys/fs/cgroup/memory/process_api/abc/{n}")),
            fx.p(&format!("/sys/fs/cgroup/cpu,cpuacct/{n}")),
        ]
    );
    assert!(fx.writes().is_empty());
}

#[test]
fn cgroup_hybrid_user_without_write_access_falls_back_to_rlimit() {
    let fx = hybrid("hybuser");
    for m in ["memory/process_api/abc", "pids", "cpu,cpuacct", "unified"] {
        fx.set_read_only(&format!("/sys/fs/cgroup/{m}"));
    }
    let host = fx.host(HYBRID_CGROUP, HYBRID_MOUNTINFO, 1000);
    for d in &host.decisions {
        assert_eq!(d.mechanism, Mechanism::Rlimit, "{d:?}");
        assert!(
            d.reason.contains("not writable by uid 1000"),
            "{}",
            d.reason
        );
    }
    assert_eq!(host.cpu_accounting, CpuAccounting::None);
}

#[test]
fn cgroup_run_names_are_unique_and_encode_the_owner() {
    let fx = Fixture::new("names");
    fx.v2_root("memory pids cpu");
    let host = Arc::new(fx.host("0::/\n", PURE_V2_MOUNTINFO, 0));
    let mut runs: Vec<RunCgroup> = (0..16)
        .map(|_| RunCgroup::create(&host, &Limits::default()).unwrap())
        .collect();
    // And 16 more from concurrent threads.
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let host = host.clone();
            std::thread::spawn(move || RunCgroup::create(&host, &Limits::default()).unwrap())
        })
        .collect();
    runs.extend(threads.into_iter().map(|t| t.join().unwrap()));
    let names: HashSet<String> = runs.iter().map(|r| r.name().to_string()).collect();
    assert_eq!(names.len(), 32);
    for n in &names {
        assert_eq!(
            parse_run_name(n),
            Some((std::process::id() as i32, 4242)),
            "{n}"
        );
        assert!(fx.p(&format!("/sys/fs/cgroup/nanobox/{n}")).is_dir());
    }
    drop(runs);
    assert_eq!(
        fx.list(&fx.p("/sys/fs/cgroup/nanobox"))
            .unwrap()
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with("nanobox-"))
            .count(),
        0
    );
}

#[test]
fn cgroup_sweep_removes_only_dead_or_reused_owners() {
    let fx = hybrid("sweep");
    let host = fx.host(HYBRID_CGROUP, HYBRID_MOUNTINFO, 0);
    fx.procs.lock().unwrap().insert(3000, 111); // a live other owner
    fx.procs.lock().unwrap().insert(3001, 999); // pid reused: started at 999, not 222
    let me = std::process::id();
    let names = [
        (format!("nanobox-{me}-4242-900"), false), // ours, live
        ("nanobox-3000-111-0".to_string(), false), // live other owner
        ("nanobox-3001-222-0".to_string(), true),  // reused pid
        ("nanobox-3002-333-5".to_string(), true),  // dead
        ("nanobox-garbage".to_string(), false),    // not a run cgroup name
        ("other".to_string(), false),
    ];
    for (n, _) in &names {
        for parent in host.run_parents() {
            fx.mkdir(&parent.join(n)).unwrap();
        }
    }
    // A dead owner's run still holding a process: killed, then removed.
    let mem_parent = host.v1_dir("memory").unwrap().to_path_buf();
    std::fs::write(mem_parent.join("nanobox-3002-333-5/cgroup.procs"), "4444\n").unwrap();

    let removed: HashSet<PathBuf> = sweep_stale(&host).unwrap().into_iter().collect();
    let mut expected = HashSet::new();
    for (n, stale) in &names {
        for parent in host.run_parents() {
            let d = parent.join(n);
            assert_eq!(d.exists(), !stale, "{}", d.display());
            if *stale {
                expected.insert(d);
            }
        }
    }
    assert_eq!(removed, expected);
    assert_eq!(*fx.killed.lock().unwrap(), vec![4444]);
}

#[test]
fn cgroup_failed_create_removes_what_it_made() {
    let fx = hybrid("fail");
    fx.fail_writes
        .lock()
        .unwrap()
        .insert("cpu.cfs_quota_us".into());
    let host = fx.host(HYBRID_CGROUP, HYBRID_MOUNTINFO, 0);
    let err = RunCgroup::create(&host, &all_limits())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cpu.cfs_quota_us"), "{err}");
    for parent in host.run_parents() {
        let left: Vec<_> = fx
            .list(&parent)
            .unwrap()
            .into_iter()
            .filter(|n| n.to_string_lossy().starts_with("nanobox-"))
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", parent.display());
    }
    // A bad CPU value is refused before anything is made.
    let bad = Limits {
        cpu: Some(f64::NAN),
        ..Limits::default()
    };
    assert!(RunCgroup::create(&host, &bad).is_err());
}

#[test]
fn cgroup_kill_all_without_cgroup_kill_loops_over_procs() {
    let fx = Fixture::new("killloop");
    fx.v2_root("pids");
    let host = fx.host("0::/\n", PURE_V2_MOUNTINFO, 0);
    let run = RunCgroup::create(&host, &Limits::default()).unwrap();
    let dir = run.dirs()[0].clone();
    std::fs::remove_file(dir.join("cgroup.kill")).unwrap(); // a kernel before 5.14
    std::fs::write(dir.join("cgroup.procs"), "11\n22\n").unwrap();
    run.kill_all();
    assert_eq!(*fx.killed.lock().unwrap(), vec![11, 22]);
    drop(run);
    assert!(!dir.exists());
}

// --- The systemd user manager's scope (systemd.rs), against a recording double of the manager.

/// What the double was asked, in order.
#[derive(Debug, Clone, PartialEq)]
enum Asked {
    Start(String, u32),
    Attach(String, String, u32),
}

/// A user manager that records its calls; `start_scope` makes the scope's cgroup in the
/// fixture with the holder in it (what systemd does), unless `refuse` or `lazy` is set.
struct FakeManager {
    fx: Arc<Fixture>,
    scope: String,
    asked: AskedLog,
    moved: Arc<std::sync::atomic::AtomicBool>,
    refuse: bool,
    lazy: bool,
}

impl super::systemd::UserManager for FakeManager {
    fn start_scope(&self, name: &str, pid: u32, _description: &str) -> io::Result<()> {
        self.asked
            .lock()
            .unwrap()
            .push(Asked::Start(name.into(), pid));
        if self.refuse {
            return Err(io::Error::other("org.freedesktop.DBus.Error.AccessDenied"));
        }
        if !self.lazy {
            self.fx
                .v2_dir(&self.scope, "memory pids", "", &format!("{pid}\n"));
            self.moved.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(())
    }

    fn attach(&self, unit: &str, subcgroup: &str, pid: u32) -> io::Result<()> {
        self.asked
            .lock()
            .unwrap()
            .push(Asked::Attach(unit.into(), subcgroup.into(), pid));
        Ok(())
    }

    fn describe(&self) -> String {
        "a recording double".into()
    }
}

/// The double's calls, shared with the test.
type AskedLog = Arc<std::sync::Mutex<Vec<Asked>>>;

const SCOPE_UNIT: &str = "nanobox-1-2.scope";
const SCOPE: &str = "/user.slice/user-1000.slice/user@1000.service/app.slice/nanobox-1-2.scope";

/// A pure-v2 fixture with a user manager's tree owned by uid 1000 below user-1000.slice (root's),
/// and `establish` run for a caller in `caller` (a cgroup path).
fn scope_for(
    tag: &str,
    caller: &str,
    refuse: bool,
    lazy: bool,
) -> (
    Arc<Fixture>,
    Result<super::systemd::Scope, String>,
    AskedLog,
) {
    let fx = Fixture::new(tag);
    fx.v2_root("memory pids cpu");
    fx.v2_dir(
        "/sys/fs/cgroup/user.slice/user-1000.slice",
        "memory pids cpu",
        "memory pids cpu",
        "",
    );
    fx.set_read_only("/sys/fs/cgroup/user.slice/user-1000.slice/cgroup.procs");
    fx.v2_dir(
        "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice",
        "memory pids",
        "memory pids",
        "",
    );
    fx.v2_dir(&format!("/sys/fs/cgroup{caller}"), "memory pids", "", "1\n");
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let moved = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let manager = FakeManager {
        fx: fx.clone(),
        scope: format!("/sys/fs/cgroup{SCOPE}"),
        asked: asked.clone(),
        moved: moved.clone(),
        refuse,
        lazy,
    };
    let mount = fx.p("/sys/fs/cgroup");
    let cgroup_of = move |pid: i32| {
        assert_eq!(pid, 77, "only the holder's cgroup is looked at");
        Some(if moved.load(std::sync::atomic::Ordering::SeqCst) {
            SCOPE.to_string()
        } else {
            caller.to_string()
        })
    };
    let caller = caller.to_string();
    let r = super::systemd::establish(
        Box::new(manager),
        &super::systemd::Env {
            fs: &*fx,
            mount: &mount,
            caller_cgroup: &caller,
            cgroup_of: &cgroup_of,
            timeout: Duration::from_millis(100),
        },
        SCOPE_UNIT.into(),
        77,
        None,
        "test",
    );
    (fx, r, asked)
}

#[test]
fn systemd_scope_holds_only_the_holder_in_a_leaf_and_enables_what_it_offers() {
    let session = "/user.slice/user-1000.slice/session-1.scope";
    let (fx, scope, asked) = scope_for("sdscope", session, false, false);
    let scope = scope.unwrap();
    assert_eq!(
        *asked.lock().unwrap(),
        vec![Asked::Start(SCOPE_UNIT.into(), 77)]
    );
    let base = format!("/sys/fs/cgroup{SCOPE}");
    assert_eq!(
        fx.writes(),
        vec![
            w(&format!("{base}/holder/cgroup.procs"), "77"),
            w(&format!("{base}/cgroup.subtree_control"), "+memory"),
            w(&format!("{base}/cgroup.subtree_control"), "+pids"),
        ],
        "the holder goes to its leaf, the offered controllers (not cpu) are enabled, and the \
         caller's own cgroup is never written"
    );
    // The caller's session scope and the user manager's tree meet in user-1000.slice, which is
    // root's: the init cannot be cloned there, the manager moves it.
    assert!(!scope.direct);
    assert_eq!(scope.dir, fx.p(&base));
}

#[test]
fn systemd_runs_of_a_caller_outside_the_users_tree_are_moved_by_the_manager() {
    let session = "/user.slice/user-1000.slice/session-1.scope";
    let (fx, scope, asked) = scope_for("sdattach", session, false, false);
    let scope = Arc::new(scope.unwrap());
    let mut host = fx.host(&format!("0::{SCOPE}\n"), PURE_V2_MOUNTINFO, 1000);
    assert_eq!(
        host.v2.as_ref().map(|p| p.parent.clone()),
        Some(fx.p(&format!("/sys/fs/cgroup{SCOPE}")))
    );
    host.systemd = Some(scope.clone());
    let before = fx.writes().len();
    let run = RunCgroup::create(&host, &all_limits()).unwrap();
    assert!(
        run.clone_into_fd().is_none(),
        "a caller that may not move processes there must not clone into the cgroup"
    );
    run.attach(4242).unwrap();
    let procs: Vec<_> = fx.writes()[before..]
        .iter()
        .filter(|(p, _)| p.ends_with("cgroup.procs"))
        .cloned()
        .collect();
    assert!(
        procs.is_empty(),
        "the caller wrote cgroup.procs itself: {procs:?}"
    );
    assert_eq!(
        asked.lock().unwrap().last(),
        Some(&Asked::Attach(
            SCOPE_UNIT.into(),
            format!("/{}", run.name()),
            4242
        )),
        "the manager was asked to move the init into the run's cgroup"
    );
}

#[test]
fn systemd_a_caller_in_the_users_tree_clones_straight_into_the_scope() {
    let desktop = "/user.slice/user-1000.slice/user@1000.service/app.slice/app-term.scope";
    let (_, scope, _) = scope_for("sddirect", desktop, false, false);
    assert!(
        scope.unwrap().direct,
        "app.slice is the user's: cloning there is allowed"
    );
}

#[test]
fn systemd_refusals_and_silence_are_errors_naming_the_unit() {
    let session = "/user.slice/user-1000.slice/session-1.scope";
    let (_, r, _) = scope_for("sdrefuse", session, true, false);
    let e = r.unwrap_err();
    assert!(e.contains(SCOPE_UNIT) && e.contains("AccessDenied"), "{e}");
    let (fx, r, _) = scope_for("sdlazy", session, false, true);
    let e = r.unwrap_err();
    assert!(e.contains(SCOPE_UNIT) && e.contains("did not move"), "{e}");
    assert!(fx.writes().is_empty(), "{:?}", fx.writes());
}

#[test]
fn systemd_common_ancestor_of_cgroup_paths() {
    use super::systemd::common_ancestor;
    assert_eq!(common_ancestor("/a/b/c", "/a/b/d/e"), "/a/b");
    assert_eq!(common_ancestor("/a/b", "/a/b"), "/a/b");
    assert_eq!(common_ancestor("/a", "/b"), "/");
    assert_eq!(common_ancestor("/", "/a"), "/");
    assert_eq!(common_ancestor("/ab/c", "/a/c"), "/");
}
