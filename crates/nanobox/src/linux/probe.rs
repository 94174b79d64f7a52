//! What this Linux host supports, checked for real where a check is cheap.

use std::path::Path;

use super::userns::{self, clone_pidfd, wait_pidfd};
use crate::probe::{Check, CheckStatus, Probe};

fn read(p: &str) -> Option<String> {
    std::fs::read_to_string(p)
        .ok()
        .map(|s| s.trim().to_string())
}

fn check(
    name: &str,
    ok: bool,
    detail: String,
    required: bool,
    used: bool,
    fix: Option<String>,
) -> Check {
    Check {
        name: name.into(),
        status: if ok {
            CheckStatus::Available
        } else {
            CheckStatus::Missing
        },
        detail,
        required,
        used: used && ok,
        fix: if ok { None } else { fix },
    }
}

/// The detail and fix of the "pid, mount, network, ipc, uts, cgroup namespaces" line: these are
/// created together with a user namespace, so when that one fails they are not tested, and the
/// fix is the user namespace's, not a kernel rebuild.
fn namespaces_verdict(user_ok: bool, err: Option<&std::io::Error>) -> (String, Option<String>) {
    match (user_ok, err) {
        (_, None) => ("all created together with a user namespace".into(), None),
        (false, Some(e)) => (
            format!(
                "not tested: they are created together with a user namespace, which failed ({e})"
            ),
            Some("make user namespaces available (the \"user namespaces\" line above)".into()),
        ),
        (true, Some(e)) => (
            format!("creating them failed although a user namespace alone works: {e}"),
            Some(if e.raw_os_error() == Some(libc::EINVAL) {
                "run on a kernel built with CONFIG_{PID,NET,IPC,UTS,CGROUP}_NS".into()
            } else {
                format!(
                    "{} (a container's seccomp profile or an LSM may refuse these flags)",
                    userns::diagnose_clone_error(std::io::Error::from_raw_os_error(
                        e.raw_os_error().unwrap_or(0)
                    ))
                )
            }),
        ),
    }
}

/// What the "cgroup v2" line says about the cgroup this process sits in (`dir`) and, when that is a
/// leaf of a delegated subtree (the usual shape: the caller moved itself into a leaf, because a
/// cgroup with processes cannot enable controllers for children), about its parent, where runs
/// then go.
fn delegation_text(
    dir: &str,
    writable: bool,
    subtree: &str,
    parent: Option<(String, bool, String)>,
) -> String {
    match parent {
        Some((p, true, psub)) if subtree.is_empty() && !psub.is_empty() => format!(
            "; this process sits in {dir}, a leaf that enables no controllers for children; its \
             parent {p} is writable by this process and enables [{psub}] for its children"
        ),
        _ => format!(
            "; this process sits in {dir}, which it {} (controllers it enables for its children: \
             [{subtree}])",
            if writable {
                "may create child cgroups in"
            } else {
                "may not write to"
            }
        ),
    }
}

/// Try a clone with `flags` whose child exits at once.
fn try_clone(flags: u64) -> Result<(), std::io::Error> {
    // SAFETY: the child only calls _exit.
    match unsafe { clone_pidfd(flags, None) }? {
        // SAFETY: in the child: _exit is async-signal-safe and ends it at once.
        (0, _) => unsafe { libc::_exit(0) },
        (_, Some(fd)) => {
            let _ = wait_pidfd(&fd);
            Ok(())
        }
        (_, None) => Ok(()),
    }
}

/// Whether a syscall exists (anything but ENOSYS for deliberately invalid arguments).
fn syscall_exists(nr: libc::c_long) -> bool {
    // SAFETY: every argument is invalid (fd -1, NULL pointers): the kernel rejects the call without
    // touching memory; only ENOSYS tells that it does not know the syscall.
    let r = unsafe { libc::syscall(nr, -1, 0, 0, 0, 0) };
    r != -1 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

pub(crate) fn probe() -> Probe {
    let root = rustix::process::geteuid().is_root();
    let mut checks = Vec::new();
    let (ok, detail, fix) = super::seccomp::Arch::doctor();
    checks.push(check("CPU architecture", ok, detail, true, true, fix));

    let userns_detail = format!(
        "user.max_user_namespaces={}{}{}",
        read("/proc/sys/user/max_user_namespaces").unwrap_or_else(|| "?".into()),
        read("/proc/sys/kernel/unprivileged_userns_clone")
            .map(|v| format!(", kernel.unprivileged_userns_clone={v}"))
            .unwrap_or_default(),
        read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .map(|v| format!(", kernel.apparmor_restrict_unprivileged_userns={v}"))
            .unwrap_or_default(),
    );
    let user = try_clone(libc::CLONE_NEWUSER as u64);
    let fix = user.as_ref().err().map(|e| {
        userns::diagnose_clone_error(std::io::Error::from_raw_os_error(
            e.raw_os_error().unwrap_or(0),
        ))
        .to_string()
    });
    checks.push(check(
        "user namespaces",
        user.is_ok(),
        match &user {
            Ok(()) => format!("a user namespace was created ({userns_detail})"),
            Err(e) => format!("creating a user namespace failed: {e} ({userns_detail})"),
        },
        true,
        true,
        fix,
    ));
    let all = try_clone(userns::NS_FLAGS);
    let (detail, fix) = namespaces_verdict(user.is_ok(), all.as_ref().err());
    checks.push(check(
        "pid, mount, network, ipc, uts, cgroup namespaces",
        all.is_ok(),
        detail,
        true,
        true,
        fix,
    ));
    let (ok, required, detail, fix) = super::apparmor::doctor();
    checks.push(check(
        "AppArmor user-namespace restriction",
        ok,
        detail,
        required,
        false,
        fix,
    ));
    let [restrictions, new_proc] = super::container::doctor();
    for (name, (ok, detail, fix)) in [
        ("container restrictions", restrictions),
        ("a new /proc in the sandbox's namespaces", new_proc),
    ] {
        checks.push(check(name, ok, detail, true, true, fix));
    }
    let newmount = syscall_exists(libc::SYS_open_tree)
        && syscall_exists(libc::SYS_move_mount)
        && syscall_exists(libc::SYS_mount_setattr)
        && syscall_exists(libc::SYS_openat2);
    checks.push(check(
        "mount API (openat2, open_tree, move_mount, mount_setattr)",
        newmount,
        if newmount {
            "present".into()
        } else {
            "missing: Linux 5.12 or newer is needed".into()
        },
        true,
        true,
        Some("upgrade to Linux 5.12 or newer".into()),
    ));
    // The sandbox's /etc is an overlay (nanobox's own files over the host's). A kernel that
    // builds overlayfs as a module lists it only once the module is loaded.
    let listed = std::fs::read_to_string("/proc/filesystems")
        .map(|f| {
            f.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false);
    let module = Path::new("/lib/modules")
        .join(rustix::system::uname().release().to_string_lossy().as_ref())
        .join("kernel/fs/overlayfs")
        .is_dir();
    checks.push(check(
        "overlayfs (the sandbox's own /etc files over the host's)",
        listed || module,
        if listed {
            "present".into()
        } else if module {
            "a module of this kernel, loaded at the first mount".into()
        } else {
            "overlay is neither in /proc/filesystems nor a module of this kernel".into()
        },
        true,
        true,
        Some("use a kernel with CONFIG_OVERLAY_FS (built in or as a module)".into()),
    ));
    checks.push(check(
        "clone3 with pidfd",
        syscall_exists(libc::SYS_clone3) && syscall_exists(libc::SYS_pidfd_send_signal),
        "the sandbox is started, waited for and killed through a pidfd (no pid reuse races)".into(),
        true,
        true,
        Some("upgrade to Linux 5.3 or newer".into()),
    ));
    if root {
        let idmap_ns = userns::idmap_userns(userns::ROOT_HOST_ID);
        let ns_failed = idmap_ns.is_err();
        let idmap = idmap_ns.and_then(|ns| {
            let tree = rustix::mount::open_tree(
                rustix::fs::CWD,
                "/tmp",
                rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
                    | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )?;
            use std::os::fd::AsRawFd;
            super::sys::mount_setattr(
                tree.as_raw_fd(),
                c"",
                libc::AT_EMPTY_PATH,
                super::sys::ATTR_IDMAP,
                ns.as_raw_fd(),
            )
            .map_err(std::io::Error::from_raw_os_error)
        });
        checks.push(check(
            "idmapped mounts",
            idmap.is_ok(),
            match &idmap {
                Ok(()) => format!(
                    "running as root: programs run as host uid {0}; mounts are idmapped so that root's files appear as theirs, and /etc so that only what \"other\" may read is readable (tested on /tmp)",
                    userns::ROOT_HOST_ID
                ),
                Err(e) if ns_failed => format!(
                    "not tested: the user namespace an idmapped mount needs could not be created: {e}"
                ),
                Err(e) => format!("an idmapped mount of /tmp failed: {e}"),
            },
            false,
            true,
            Some(if ns_failed {
                "make user namespaces available (the \"user namespaces\" line above)".into()
            } else {
                "use Linux 5.12+ and a filesystem with idmapped-mount support for mount sources (ext4, xfs, btrfs; tmpfs from 6.3)".into()
            }),
        ));
    } else {
        checks.push(check(
            "idmapped mounts",
            true,
            "not needed: nanobox runs unprivileged, the caller's own uid is mapped to the sandbox user".into(),
            false,
            false,
            None,
        ));
    }

    // cgroups: reported for the limits work; no limits are applied by this version.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let v2: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(" - cgroup2 "))
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    let v2_controllers = v2
        .first()
        .and_then(|m| read(&format!("{m}/cgroup.controllers")))
        .unwrap_or_default();
    // Delegation: may this process create a child cgroup where it sits (root, or a subtree handed
    // over, e.g. by systemd's Delegate=yes)?
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        });
    let delegation = match (v2.first(), &own) {
        (Some(m), Some(path)) => {
            let dir = format!("{m}{}", if path == "/" { "" } else { path.as_str() });
            let writable = rustix::fs::access(dir.as_str(), rustix::fs::Access::WRITE_OK).is_ok();
            let subtree = read(&format!("{dir}/cgroup.subtree_control")).unwrap_or_default();
            let parent = Path::new(&dir).parent().filter(|_| path != "/").map(|p| {
                let w = rustix::fs::access(p, rustix::fs::Access::WRITE_OK).is_ok();
                let sub =
                    read(&format!("{}/cgroup.subtree_control", p.display())).unwrap_or_default();
                (p.display().to_string(), w, sub)
            });
            delegation_text(&dir, writable, &subtree, parent)
        }
        _ => String::new(),
    };
    checks.push(check(
        "cgroup v2",
        !v2.is_empty(),
        if v2.is_empty() {
            "no cgroup2 mount".into()
        } else {
            format!(
                "mounted at {} with controllers [{}]{delegation} (which controllers runs use: \"resource limits\" below)",
                v2.join(", "),
                v2_controllers
            )
        },
        false,
        false,
        Some("mount cgroup2 at /sys/fs/cgroup (systemd.unified_cgroup_hierarchy=1)".into()),
    ));
    let v1: Vec<&str> = ["memory", "pids", "cpu", "cpuacct"]
        .into_iter()
        .filter(|c| Path::new("/sys/fs/cgroup").join(c).join("tasks").exists())
        .collect();
    checks.push(check(
        "cgroup v1",
        !v1.is_empty(),
        if v1.is_empty() {
            "no v1 hierarchy for memory, pids, cpu or cpuacct".into()
        } else {
            format!(
                "controllers [{}] (which controllers runs use: \"resource limits\" below)",
                v1.join(", ")
            )
        },
        false,
        false,
        None,
    ));
    let seccomp = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false);
    checks.push(check(
        "seccomp",
        seccomp,
        if seccomp {
            "every program runs under the default filter (Docker-derived allow-list, ENOSYS for \
             unknown syscalls, EPERM for dangerous ones, no kills)"
                .into()
        } else {
            "not built into this kernel".into()
        },
        true,
        true,
        Some("use a kernel with CONFIG_SECCOMP_FILTER".into()),
    ));
    let ll = super::landlock::kernel_abi();
    checks.push(check(
        "Landlock",
        ll > 0,
        if ll > 0 {
            format!(
                "ABI version {ll}: every run also enforces a Landlock ruleset (rights of ABI {}) as \
                 a second filesystem layer{}",
                ll.min(super::landlock::MAX_ABI),
                if ll >= super::degraded::NEEDED_ABI {
                    "; the opt-in degraded mode (no user namespaces) is possible here"
                } else {
                    "; the opt-in degraded mode needs ABI 6 and is not possible here"
                }
            )
        } else {
            format!(
                "unavailable{}: runs are refused, since the namespaces would stand alone; with \
                 the opt-in --allow-degraded-isolation (allow_degraded_isolation) they run without this \
                 layer and every result says so; the degraded mode (no user namespaces) is not \
                 possible",
                super::landlock::active_lsms()
                    .map(|l| format!(" (active LSMs: {l})"))
                    .unwrap_or_default()
            )
        },
        true,
        ll > 0,
        Some("boot with lsm=...,landlock (Linux 5.13+; 6.12+ for the degraded mode)".into()),
    ));
    let cg = super::cgroup::Host::detect();
    let usable = |c| cg.mechanism(c) != super::cgroup::Mechanism::Rlimit;
    use super::cgroup::Controller::{Cpu, Memory, Pids};
    checks.push(check(
        "resource limits",
        usable(Memory) && usable(Pids) && usable(Cpu),
        cg.report().join("; "),
        false,
        false,
        Some(format!(
            "{} (with rlimits, CPU bandwidth limits are refused)",
            super::limits::no_cgroup_fix(root)
        )),
    ));
    let tiocsti = read("/proc/sys/dev/tty/legacy_tiocsti");
    checks.push(check(
        "no controlling terminal",
        true,
        format!(
            "every program starts a new session, so TIOCSTI injection into the caller's terminal fails{}",
            tiocsti
                .map(|v| format!(" (dev.tty.legacy_tiocsti={v}{})", if v == "1" { ": live on this host" } else { "" }))
                .unwrap_or_default()
        ),
        true,
        true,
        None,
    ));
    Probe::new("linux", checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(errno: i32) -> std::io::Error {
        std::io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn namespaces_blocked_with_the_user_namespace_are_not_blamed_on_the_kernel() {
        // user.max_user_namespaces=0: both clones fail with ENOSPC
        let (detail, fix) = namespaces_verdict(false, Some(&e(libc::ENOSPC)));
        assert!(detail.starts_with("not tested"), "{detail}");
        let fix = fix.unwrap();
        assert!(fix.contains("user namespaces"), "{fix}");
        assert!(!fix.contains("CONFIG_"), "{fix}");
        // a user namespace works, the others are unknown to the kernel
        let (_, fix) = namespaces_verdict(true, Some(&e(libc::EINVAL)));
        assert!(fix.unwrap().contains("CONFIG_{PID,NET,IPC,UTS,CGROUP}_NS"));
        // a user namespace works, a filter refuses the others
        let (detail, fix) = namespaces_verdict(true, Some(&e(libc::EPERM)));
        assert!(
            detail.contains("although a user namespace alone works"),
            "{detail}"
        );
        let fix = fix.unwrap();
        assert!(!fix.contains("CONFIG_") && fix.contains("seccomp"), "{fix}");
        assert_eq!(namespaces_verdict(true, None).1, None);
    }

    #[test]
    fn root_is_never_told_to_run_as_root() {
        let fix = super::super::limits::no_cgroup_fix(true);
        assert!(!fix.contains("run as root"), "{fix}");
        assert!(
            fix.contains("read-write") && fix.contains("cgroup namespace"),
            "{fix}"
        );
        assert!(super::super::limits::no_cgroup_fix(false).contains("run as root"));
    }

    #[test]
    fn a_leaf_of_a_delegated_subtree_names_the_parent_runs_use() {
        let leaf = delegation_text(
            "/sys/fs/cgroup/u/leaf",
            true,
            "",
            Some(("/sys/fs/cgroup/u".into(), true, "cpu memory pids".into())),
        );
        assert!(!leaf.contains("[]"), "{leaf}");
        assert!(
            leaf.contains("parent /sys/fs/cgroup/u is writable")
                && leaf.contains("[cpu memory pids]"),
            "{leaf}"
        );
        // not delegated: the cgroup itself, and nothing claimed for the parent
        let plain = delegation_text(
            "/sys/fs/cgroup/user.slice",
            false,
            "",
            Some(("/sys/fs/cgroup".into(), false, "cpu memory".into())),
        );
        assert!(
            plain.contains("may not write to") && !plain.contains("parent"),
            "{plain}"
        );
    }
}
