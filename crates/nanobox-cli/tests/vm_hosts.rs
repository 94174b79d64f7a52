//! Host shapes that only the VM tier has (`.ci/vm-tier` boots one small VM per shape): pure
//! cgroup v2 as root and from a delegated leaf, user namespaces disabled by either sysctl, and a
//! kernel without Landlock. Each module is one shape; its tests are ignored in a plain
//! `cargo test` (this machine cannot be made into that shape without changing its own sysctls or
//! boot parameters) and run by the tier as `vm_hosts MODULE:: --ignored` inside the VM, which
//! says which shape it is in `NANOBOX_VM_VARIANT`. A test started in another shape fails at once
//! instead of passing vacuously.
//!
//! What they check is what a user on such a host sees: `nanobox doctor`'s lines (none may blame
//! the wrong cause or suggest a fix that cannot help), the refusal of a run (exit 125, the
//! missing piece and the fix named, nothing ran) and, with the opt-in, the weaker run that says
//! what is weaker.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{assert_code, assert_short_error, check, said, text, BIN};
use serde_json::Value;

const NOBODY: u32 = 65534;

/// Fail unless the VM tier started this test in `shape`.
#[track_caller]
fn require(shape: &str) {
    let v = std::env::var("NANOBOX_VM_VARIANT").unwrap_or_default();
    assert_eq!(
        v, shape,
        "this test needs the host shape {shape:?}, which .ci/vm-tier makes in a VM \
         (NANOBOX_VM_VARIANT={v:?})"
    );
}

/// `nanobox ARGS`, as this process's user or (with `Some(uid)`) as that uid without groups.
fn nanobox(uid: Option<u32>, args: &[&str]) -> Output {
    let mut c = match uid {
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={u}"))
                .arg(format!("--regid={u}"))
                .arg("--clear-groups")
                .arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.args(args)
        .stdin(Stdio::null())
        .output()
        .expect("start nanobox")
}

/// `nanobox doctor --json`: its exit status (0 ready, 1 not) and the check named `name`.
fn doctor(uid: Option<u32>) -> (i32, Value) {
    let o = nanobox(uid, &["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("doctor --json: {e}: {}", text(&o.stdout)));
    assert_eq!(
        o.status.code(),
        Some(if v["ready"] == true { 0 } else { 1 }),
        "doctor's exit status follows ready"
    );
    (o.status.code().unwrap(), v)
}

/// `nanobox run [extra] -- /bin/sh -c 'touch MARKER'` with MARKER mounted read-write: whether it
/// ran is whether MARKER exists afterwards.
fn run_touch(uid: Option<u32>, extra: &[&str], tag: &str) -> (Output, bool) {
    let dir = std::env::temp_dir().join(format!("nanobox-vm-{}-{tag}.d", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let m = dir.join("ran");
    let rw = dir.to_str().unwrap().to_string();
    let script = format!("touch {}", m.display());
    let mut args = vec!["run", "--rw", &rw];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/bin/sh", "-c", &script]);
    let o = nanobox(uid, &args);
    let ran = m.exists();
    let _ = std::fs::remove_dir_all(&dir);
    (o, ran)
}

/// The refusal every shape without full isolation gives by default (at `build()`): exit 125,
/// nothing ran, and stderr names each of `needles`.
#[track_caller]
fn assert_refused(uid: Option<u32>, tag: &str, needles: &[&str]) {
    let (o, ran) = run_touch(uid, &[], tag);
    assert_code(&o, 125);
    assert_short_error(&o, tag);
    assert!(!ran, "the program ran although the sandbox was refused");
    let err = text(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "{n:?} not in the refusal: {err}");
    }
}

/// With `--allow-degraded --json`, the program runs and the report's `degraded` names `needle`.
#[track_caller]
fn assert_runs_degraded(uid: Option<u32>, tag: &str, needle: &str) {
    let (o, ran) = run_touch(uid, &["--allow-degraded", "--json"], tag);
    assert_code(&o, 0);
    assert!(ran, "the program did not run with the opt-in");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let degraded = v["degraded"].as_array().expect("degraded is a list");
    assert!(
        degraded
            .iter()
            .any(|d| d.as_str().is_some_and(|d| d.contains(needle))),
        "{needle:?} not in degraded: {degraded:?}"
    );
}

fn memory_bomb(uid: Option<u32>) -> Value {
    let o = nanobox(
        uid,
        &[
            "run",
            "--json",
            "--memory",
            "64M",
            "--timeout",
            "120s",
            "--",
            "python3",
            "-c",
            "b = []\nwhile True: b.append(bytearray(1 << 20))",
        ],
    );
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {} {}", text(&o.stdout), text(&o.stderr)))
}

#[track_caller]
fn assert_cgroup_v2_memory_limit(r: &Value) {
    assert_eq!(r["status"], "memory_limit", "{r:#}");
    let limits = r["limits"].as_array().expect("limits");
    assert!(
        limits
            .iter()
            .any(|l| l["limit"] == "memory" && l["mechanism"] == "cgroup v2"),
        "memory not enforced by cgroup v2: {limits:?}"
    );
}

/// Pure cgroup v2 as root (`.ci/vm-tier` variant "v2-root").
mod v2_root {
    use super::*;

    #[test]
    #[ignore = "VM tier: pure cgroup v2 as root"]
    fn doctor_says_every_limit_uses_cgroup_v2() {
        require("v2-root");
        let (code, d) = doctor(None);
        assert_eq!(code, 0, "{d:#}");
        let limits = said(check(&d, "resource limits"));
        for c in ["memory", "pids", "cpu"] {
            assert!(
                limits.contains(&format!("{c}: cgroup v2")),
                "{c} not on cgroup v2: {limits}"
            );
        }
        assert_eq!(check(&d, "cgroup v1")["status"], "missing");
    }

    #[test]
    #[ignore = "VM tier: pure cgroup v2 as root"]
    fn a_memory_bomb_is_stopped_by_cgroup_v2() {
        require("v2-root");
        assert_cgroup_v2_memory_limit(&memory_bomb(None));
    }

    /// Root in a cgroup namespace whose cgroup2 mount is read-only (as many containers have it):
    /// told to get a writable cgroup, never to "run as root".
    #[test]
    #[ignore = "VM tier: pure cgroup v2 as root"]
    fn root_without_a_writable_cgroup_is_told_to_get_one() {
        require("v2-root");
        let script = format!(
            "umount -l /sys/fs/cgroup && mount -t cgroup2 -o ro cgroup2 /sys/fs/cgroup && \
             {BIN} doctor --json; echo; {BIN} run --memory 64M -- /bin/true"
        );
        let o = Command::new("unshare")
            .args(["--cgroup", "--mount", "--propagation", "private", "--"])
            .args(["/bin/sh", "-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let out = text(&o.stdout);
        let (json, _) = out.split_once("\n\n").unwrap_or((&out, ""));
        let d: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {out}"));
        let cg = said(check(&d, "cgroup v2"));
        let limits = said(check(&d, "resource limits"));
        let err = text(&o.stderr);
        for s in [&cg, &limits, &err] {
            assert!(!s.contains("run as root"), "root told to run as root: {s}");
        }
        assert!(
            err.contains("give this process a writable cgroup"),
            "the refusal does not say how to get a writable cgroup: {err}"
        );
        assert_eq!(o.status.code(), Some(125), "{out}\n{err}");
    }
}

/// uid 65534 in a leaf of a delegated subtree, as a systemd user manager lays it out
/// (`.ci/vm-tier` variant "delegated": the tests run as 65534 in
/// `user@65534.service/app.slice/tests.scope`, the subtree owned by 65534).
mod delegated {
    use super::*;

    fn own_cgroup() -> String {
        let s = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        s.trim().strip_prefix("0::").unwrap().to_string()
    }

    #[test]
    #[ignore = "VM tier: a delegated cgroup v2 subtree, as uid 65534"]
    fn doctor_names_the_parent_runs_use() {
        require("delegated");
        assert_eq!(super::euid(), NOBODY);
        let leaf = own_cgroup();
        let parent = Path::new(&leaf)
            .parent()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (code, d) = doctor(None);
        assert_eq!(code, 0, "{d:#}");
        let cg = said(check(&d, "cgroup v2"));
        assert!(
            cg.contains(&format!("its parent /sys/fs/cgroup{parent} is writable")),
            "the leaf's parent is not named: {cg}"
        );
        assert!(!cg.contains("[]"), "an empty controller list shown: {cg}");
        let limits = said(check(&d, "resource limits"));
        assert!(limits.contains("memory: cgroup v2"), "{limits}");
    }

    #[test]
    #[ignore = "VM tier: a delegated cgroup v2 subtree, as uid 65534"]
    fn a_memory_bomb_is_stopped_by_the_delegated_cgroup() {
        require("delegated");
        assert_eq!(super::euid(), NOBODY);
        assert_cgroup_v2_memory_limit(&memory_bomb(None));
    }
}

/// A systemd host (`.ci/vm-tier` variant "systemd": systemd is PID 1, the system bus runs, and
/// user@65534.service is started with its user bus). The tests run as root in a system service,
/// and run nanobox as uid 65534 from there: its cgroup belongs to the system manager, as a login
/// session's scope does, so only the user manager (asking the system manager) can move
/// processes between it and the user's own tree.
mod systemd {
    use super::*;
    use std::time::{Duration, Instant};

    use common::{send, slow};

    /// The v2 cgroup path of a process (`0::` of /proc/PID/cgroup), `None` once it is gone.
    fn cgroup_of(pid: u32) -> Option<String> {
        let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        Some(s.trim().strip_prefix("0::")?.to_string())
    }

    /// Every live process whose name is `comm`, with its parent pid.
    fn processes_named(comm: &str) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            if &stat[open + 1..close] != comm {
                continue;
            }
            let ppid = stat[close + 2..]
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            out.push((pid, ppid));
        }
        out
    }

    /// The cgroup directories named `nanobox-*.scope` anywhere in the hierarchy.
    fn scopes() -> Vec<String> {
        let out = Command::new("find")
            .args(["/sys/fs/cgroup", "-type", "d", "-name", "nanobox-*.scope"])
            .output()
            .unwrap();
        text(&out.stdout).lines().map(str::to_string).collect()
    }

    #[track_caller]
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + slow(Duration::from_secs(10));
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `nanobox run --memory 64M -- sleep 600` as uid 65534 from this service's cgroup.
    fn start_sleeper() -> std::process::Child {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(["run", "--memory", "64M", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The holder process of the nanobox process `caller`, once it is in its scope's leaf, and
    /// the scope's cgroup path.
    fn holder_of(caller: u32) -> (u32, String) {
        let mut found = None;
        eventually("no holder process of the caller's reached a scope", || {
            found = processes_named("nanobox-scope")
                .into_iter()
                .find(|(_, ppid)| *ppid == caller)
                .and_then(|(pid, _)| {
                    let cg = cgroup_of(pid)?;
                    let scope = cg.strip_suffix("/holder")?.to_string();
                    Some((pid, scope))
                });
            found.is_some()
        });
        found.unwrap()
    }

    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn doctor_names_the_scope_the_user_manager_delegated() {
        require("systemd");
        let (code, d) = doctor(Some(NOBODY));
        assert_eq!(code, 0, "{d:#}");
        assert_eq!(d["refused"], serde_json::json!([]), "{d:#}");
        let limits = said(check(&d, "resource limits"));
        for needle in [
            "memory: cgroup v2",
            "pids: cgroup v2",
            "cpu: cgroup v2",
            "(Delegate=yes)",
            "never the caller",
            "AttachProcessesToUnit",
        ] {
            assert!(limits.contains(needle), "{needle:?} not in: {limits}");
        }
    }

    /// The buses that create scopes (and start units) are the caller's, never the program's: a
    /// program in a limited run, told the bus addresses, reaches neither the user's bus nor the
    /// system bus. Both sockets exist on the host, where this test first connects to them.
    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn a_sandboxed_program_reaches_neither_the_user_bus_nor_the_system_bus() {
        require("systemd");
        let buses = ["/run/user/65534/bus", "/run/dbus/system_bus_socket"];
        for bus in buses {
            let host = std::os::unix::net::UnixStream::connect(bus);
            assert!(host.is_ok(), "the host's {bus} does not answer: {host:?}");
        }
        let script = format!(
            "import socket\nfor p in {buses:?}:\n  s = socket.socket(socket.AF_UNIX)\n  \
             try:\n    s.connect(p); print('CONNECTED', p)\n  \
             except OSError as e:\n    print('refused', p, e.errno)"
        );
        let o = nanobox(
            Some(NOBODY),
            &[
                "run",
                "--memory",
                "64M",
                "--env",
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/65534/bus",
                "--env",
                "XDG_RUNTIME_DIR=/run/user/65534",
                "--",
                "python3",
                "-c",
                &script,
            ],
        );
        let out = text(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{out} {}", text(&o.stderr));
        assert!(!out.contains("CONNECTED"), "{out}");
        assert_eq!(out.matches("refused").count(), 2, "{out}");
    }

    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn a_memory_bomb_is_stopped_in_the_delegated_scope() {
        require("systemd");
        assert_cgroup_v2_memory_limit(&memory_bomb(Some(NOBODY)));
    }

    /// The caller stays where it is; the scope holds the holder (in its leaf) and the run's
    /// cgroup with the sandbox in it; when the caller ends, everything goes.
    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn the_caller_is_never_moved_and_the_scope_goes_with_it() {
        require("systemd");
        let own = cgroup_of(std::process::id()).unwrap();
        let mut child = start_sleeper();
        let caller = child.id();
        let (holder, scope) = holder_of(caller);
        assert!(
            scope.contains("/user@65534.service/") && scope.ends_with(".scope"),
            "{scope}"
        );
        assert!(
            scope
                .rsplit('/')
                .next()
                .unwrap()
                .starts_with(&format!("nanobox-{caller}-")),
            "the scope is not named after its caller: {scope}"
        );
        // The sandbox: the sleep runs in a run cgroup of the scope.
        let mut sleeper = None;
        eventually("the sandboxed sleep did not start", || {
            sleeper = processes_named("sleep").into_iter().find(|(pid, _)| {
                cgroup_of(*pid).is_some_and(|c| c.starts_with(&format!("{scope}/nanobox-")))
            });
            sleeper.is_some()
        });
        assert_eq!(
            cgroup_of(caller).unwrap(),
            own,
            "the caller was moved out of its own cgroup"
        );
        let limit = std::fs::read_to_string(format!(
            "/sys/fs/cgroup{}/memory.max",
            cgroup_of(sleeper.unwrap().0).unwrap()
        ))
        .unwrap();
        assert_eq!(limit.trim(), (64u64 << 20).to_string());
        // The caller ends normally (SIGTERM: the CLI stops the program and exits).
        send(&child, libc::SIGTERM);
        child.wait().unwrap();
        eventually("the holder outlived its caller", || {
            cgroup_of(holder).is_none()
        });
        eventually("the scope outlived its caller", || {
            !Path::new(&format!("/sys/fs/cgroup{scope}")).exists()
        });
    }

    /// A caller killed mid-run leaves no process and no cgroup behind.
    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn a_killed_caller_leaves_nothing_behind() {
        require("systemd");
        let mut child = start_sleeper();
        let caller = child.id();
        let (_, scope) = holder_of(caller);
        eventually("the sandboxed sleep did not start", || {
            processes_named("sleep").iter().any(|(pid, _)| {
                cgroup_of(*pid).is_some_and(|c| c.starts_with(&format!("{scope}/")))
            })
        });
        send(&child, libc::SIGKILL);
        child.wait().unwrap();
        eventually("the sandbox outlived its killed caller", || {
            !processes_named("sleep").iter().any(|(pid, _)| {
                cgroup_of(*pid).is_some_and(|c| c.starts_with(&format!("{scope}/")))
            })
        });
        eventually("the scope outlived its killed caller", || {
            !scopes().iter().any(|s| s.ends_with(&scope))
        });
    }

    /// A caller in the user's own tree (a desktop application's scope, here one made by
    /// `systemd-run --user --scope`) clones the sandbox straight into its cgroup.
    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn a_caller_under_the_user_manager_clones_straight_into_the_scope() {
        require("systemd");
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["env", "XDG_RUNTIME_DIR=/run/user/65534"])
            .args([
                "systemd-run",
                "--user",
                "--scope",
                "--quiet",
                BIN,
                "doctor",
                "--json",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let d: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {} {}", text(&o.stdout), text(&o.stderr)));
        let limits = said(check(&d, "resource limits"));
        assert!(
            limits.contains("cloned straight into its cgroup")
                && limits.contains("memory: cgroup v2"),
            "{limits}"
        );
    }

    /// Where no user manager runs for the caller, the refusal is short and names it, and doctor
    /// says which limits are refused instead of plain "ready".
    #[test]
    #[ignore = "VM tier: a systemd host with a user manager for uid 65534"]
    fn without_a_user_manager_limits_are_refused_in_three_lines() {
        require("systemd");
        let uid = 65533;
        let o = nanobox(Some(uid), &["run", "--memory", "64M", "--", "true"]);
        assert_code(&o, 125);
        assert_short_error(&o, "no user manager");
        let err = text(&o.stderr);
        assert!(
            err.contains("no systemd user manager runs for uid 65533")
                && err.contains("nanobox doctor"),
            "{err}"
        );
        assert!(!err.to_lowercase().contains("falling back"), "{err}");
        let (code, d) = doctor(Some(uid));
        assert_eq!(code, 0);
        assert_eq!(
            d["refused"],
            serde_json::json!([
                "memory_limit",
                "process_limit",
                "cpu_limit",
                "cpu_time_limit"
            ]),
            "{d:#}"
        );
        let plain = text(&nanobox(Some(uid), &["doctor"]).stdout);
        assert!(
            plain.contains("ready, except") && !plain.contains("ready: runs will start"),
            "{plain}"
        );
    }
}

/// `user.max_user_namespaces=0` (`.ci/vm-tier` variant "no-userns"; tests run as root and
/// re-run nanobox as uid 65534).
mod no_userns {
    use super::*;

    #[test]
    #[ignore = "VM tier: user.max_user_namespaces=0"]
    fn doctor_blames_the_sysctl_and_nothing_else() {
        require("no-userns");
        for uid in [None, Some(NOBODY)] {
            let (code, d) = doctor(uid);
            assert_eq!(code, 1, "doctor says ready: {d:#}");
            let user = said(check(&d, "user namespaces"));
            assert!(
                user.contains("user.max_user_namespaces") && user.contains("sysctl -w"),
                "{user}"
            );
            let ns = said(check(&d, "pid, mount, network"));
            assert!(!ns.contains("CONFIG_"), "a kernel rebuild suggested: {ns}");
            assert!(ns.contains("user namespace"), "{ns}");
            let idmap = said(check(&d, "idmapped mounts"));
            assert!(!idmap.contains("5.12"), "an upgrade suggested: {idmap}");
            // A host sysctl, not a container: no container flag is suggested.
            let c = check(&d, "container restrictions");
            assert_eq!(c["status"], "available", "{c:#}");
            let c = said(c);
            assert!(c.contains("refused by the host, not by a container"), "{c}");
            let p = said(check(&d, "a new /proc in the sandbox's namespaces"));
            assert!(
                p.contains("not tested") && !p.contains("--security-opt"),
                "{p}"
            );
        }
    }

    #[test]
    #[ignore = "VM tier: user.max_user_namespaces=0"]
    fn runs_are_refused_naming_the_sysctl() {
        require("no-userns");
        for (uid, tag) in [(None, "root"), (Some(NOBODY), "nobody")] {
            assert_refused(
                uid,
                tag,
                &[
                    "user.max_user_namespaces is 0",
                    "sysctl -w user.max_user_namespaces=",
                    "--allow-degraded",
                ],
            );
        }
    }

    #[test]
    #[ignore = "VM tier: user.max_user_namespaces=0"]
    fn the_opt_in_runs_the_degraded_mode_and_says_so() {
        require("no-userns");
        for (uid, tag) in [(None, "root-d"), (Some(NOBODY), "nobody-d")] {
            assert_runs_degraded(uid, tag, "user namespace");
        }
    }
}

/// Debian's `kernel.unprivileged_userns_clone=0` (`.ci/vm-tier` variant "no-userns-clone"): only
/// unprivileged callers lose user namespaces.
mod no_userns_clone {
    use super::*;

    #[test]
    #[ignore = "VM tier: kernel.unprivileged_userns_clone=0"]
    fn an_unprivileged_caller_is_refused_naming_the_sysctl() {
        require("no-userns-clone");
        assert_refused(
            Some(NOBODY),
            "nobody",
            &[
                "kernel.unprivileged_userns_clone is 0",
                "sysctl -w kernel.unprivileged_userns_clone=1",
            ],
        );
        let (_, d) = doctor(Some(NOBODY));
        let user = said(check(&d, "user namespaces"));
        assert!(user.contains("kernel.unprivileged_userns_clone"), "{user}");
    }

    #[test]
    #[ignore = "VM tier: kernel.unprivileged_userns_clone=0"]
    fn root_is_not_affected() {
        require("no-userns-clone");
        let (o, ran) = run_touch(None, &[], "root");
        assert_code(&o, 0);
        assert!(ran);
    }
}

/// A kernel booted without Landlock in its `lsm=` list (`.ci/vm-tier` variant "no-landlock").
mod no_landlock {
    use super::*;

    #[test]
    #[ignore = "VM tier: a kernel without Landlock"]
    fn doctor_says_runs_are_refused_without_landlock() {
        require("no-landlock");
        for uid in [None, Some(NOBODY)] {
            let (code, d) = doctor(uid);
            assert_eq!(code, 1, "doctor says ready: {d:#}");
            let c = check(&d, "Landlock");
            assert_eq!(c["status"], "missing");
            assert_eq!(c["required"], true);
            let s = said(c);
            assert!(s.contains("runs are refused") && s.contains("lsm="), "{s}");
        }
    }

    #[test]
    #[ignore = "VM tier: a kernel without Landlock"]
    fn runs_are_refused_by_default() {
        require("no-landlock");
        for (uid, tag) in [(None, "root"), (Some(NOBODY), "nobody")] {
            assert_refused(uid, tag, &["Landlock", "lsm=", "--allow-degraded"]);
        }
    }

    #[test]
    #[ignore = "VM tier: a kernel without Landlock"]
    fn the_opt_in_runs_without_the_layer_and_says_so() {
        require("no-landlock");
        for (uid, tag) in [(None, "root-d"), (Some(NOBODY), "nobody-d")] {
            assert_runs_degraded(uid, tag, "no Landlock layer");
        }
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}
