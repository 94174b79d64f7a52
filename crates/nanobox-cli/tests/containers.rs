//! Inside containers: nanobox started the way a container runtime starts a process, by a small C
//! launcher compiled here that gives it one restriction (or several) of a container and then
//! executes it:
//!
//! - `-s docker`: the namespace and mount rules of Docker's default seccomp profile (`clone`
//!   with any `CLONE_NEW*` flag, `unshare`, `setns`, `mount`, `umount2`, `pivot_root` and the new
//!   mount API refused with EPERM, as without `CAP_SYS_ADMIN`; `clone3` with ENOSYS);
//! - `-s nomount`: a profile that allows user namespaces but refuses mounting (`mount`, `umount2`,
//!   `pivot_root`, the new mount API: EPERM);
//! - `-c`: Docker's default capability bounding set (14 capabilities; no `CAP_SYS_ADMIN`);
//! - `-p mask`: Docker's masked paths (`/dev/null` over `/proc/kcore`, `/proc/keys`,
//!   `/proc/timer_list`, ...; a read-only tmpfs over `/proc/acpi`, `/proc/scsi`, ...) and
//!   read-only paths (`/proc/sys`, `/proc/bus`, `/proc/fs`, `/proc/irq`, `/proc/sysrq-trigger`),
//!   in a mount namespace of its own;
//! - `-p ro`: /proc remounted read-only, in a mount namespace of its own;
//! - `-u 65534`: then it becomes uid/gid 65534 without groups (a container's `USER nobody`).
//!
//! The order is a runtime's: mounts, bounding set, seccomp filter (installed while still root, so
//! without no_new_privs, as runc does), uid, exec. Each test runs as root and as uid 65534.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::process::{Command, Output, Stdio};

use common::{assert_code, assert_short_error, check, said, text, TempDir, Who};
use serde_json::Value;

const LAUNCHER: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Docker's default capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
   NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP. */
#define DOCKER_CAPS 0xa80425fbULL
#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
                  CLONE_NEWNET | CLONE_NEWCGROUP)

static struct sock_filter f[96];
static int n;
static void add(struct sock_filter s) { f[n++] = s; }
/* With the syscall number in the accumulator: nr -> errno. */
static void deny(int nr, int err) {
    add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
    add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err));
}
static void deny_mounting(void) {
    int nrs[] = {__NR_mount, __NR_umount2, __NR_pivot_root, __NR_fsopen, __NR_fsconfig,
                 __NR_fsmount, __NR_fspick, __NR_open_tree, __NR_move_mount,
                 __NR_mount_setattr};
    for (unsigned i = 0; i < sizeof nrs / sizeof nrs[0]; i++) deny(nrs[i], EPERM);
}

static void die(const char *what) { perror(what); exit(99); }

static void mask(const char *path) {
    struct stat st;
    if (stat(path, &st)) return; /* not on this kernel */
    if (S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)) die(path);
    } else if (mount("/dev/null", path, NULL, MS_BIND, NULL)) {
        die(path);
    }
}

static void readonly(const char *path) {
    struct stat st;
    if (stat(path, &st)) return;
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) ||
        mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
        die(path);
}

int main(int argc, char **argv) {
    const char *sec = "none", *proc = "none";
    int caps = 0, opt;
    long uid = -1;
    while ((opt = getopt(argc, argv, "+s:p:cu:")) != -1) {
        switch (opt) {
        case 's': sec = optarg; break;
        case 'p': proc = optarg; break;
        case 'c': caps = 1; break;
        case 'u': uid = atol(optarg); break;
        default: return 2;
        }
    }
    if (optind >= argc) { fprintf(stderr, "usage: launcher [-s docker|nomount] [-p mask|ro] [-c] [-u UID] PROG...\n"); return 2; }
    if (strcmp(proc, "none")) {
        if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("mount namespace");
        if (!strcmp(proc, "mask")) {
            const char *masked[] = {"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                                    "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                                    "/sys/devices/virtual/powercap"};
            const char *ro[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                "/proc/sysrq-trigger"};
            for (unsigned i = 0; i < sizeof masked / sizeof masked[0]; i++) mask(masked[i]);
            for (unsigned i = 0; i < sizeof ro / sizeof ro[0]; i++) readonly(ro[i]);
        } else if (!strcmp(proc, "ro")) {
            if (mount(NULL, "/proc", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)) die("ro /proc");
        } else {
            return 2;
        }
    }
    if (caps) {
        FILE *fp = fopen("/proc/sys/kernel/cap_last_cap", "r");
        int last = 40;
        if (fp) { if (fscanf(fp, "%d", &last) != 1) last = 40; fclose(fp); }
        for (int c = 0; c <= last; c++)
            if (!(DOCKER_CAPS & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0)) die("capbset");
    }
    if (strcmp(sec, "none")) {
        add((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
        if (!strcmp(sec, "docker")) {
            deny(__NR_clone3, ENOSYS);
            deny(__NR_unshare, EPERM);
            deny(__NR_setns, EPERM);
            deny_mounting();
            /* clone: refused with any namespace flag */
            add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3));
            add((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])));
            add((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1));
            add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM));
        } else if (!strcmp(sec, "nomount")) {
            deny_mounting();
        } else {
            return 2;
        }
        add((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
        struct sock_fprog prog = {n, f};
        /* As root, like runc: no no_new_privs needed (CAP_SYS_ADMIN is still effective). */
        if (geteuid() != 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) die("no_new_privs");
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) die("seccomp");
    }
    if (uid >= 0) {
        if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)) die("setuid");
    }
    execvp(argv[optind], argv + optind);
    perror("execvp");
    return 98;
}
"#;

fn launcher() -> std::path::PathBuf {
    common::compile("containers-launcher", LAUNCHER)
}

/// `PROG ARGS` through the launcher with `opts`, as `who`.
fn launched(who: Who, opts: &[&str], prog: &str, args: &[&str]) -> Output {
    let mut c = Command::new(launcher());
    c.args(opts);
    if who == Who::User {
        c.args(["-u", "65534"]);
    }
    c.arg(prog)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `nanobox ARGS` through the launcher with `opts`, as `who`.
fn nanobox(who: Who, opts: &[&str], args: &[&str]) -> Output {
    launched(who, opts, common::nanobox_copy().to_str().unwrap(), args)
}

/// `nanobox doctor --json` there: its exit status (0 ready, 1 not) and the report.
fn doctor(who: Who, opts: &[&str]) -> (i32, Value) {
    let o = nanobox(who, opts, &["doctor", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json: {e}: {} {}",
            text(&o.stdout),
            text(&o.stderr)
        )
    });
    (o.status.code().unwrap(), v)
}

/// `nanobox run [extra] -- sh -c 'touch MARKER; SCRIPT'` with MARKER's directory mounted
/// read-write at its host path: whether the program ran is whether MARKER exists afterwards.
fn run_touch(who: Who, opts: &[&str], extra: &[&str], script: &str) -> (Output, bool) {
    let d = TempDir::new("containers", "run");
    let marker = d.join("ran");
    let script = format!("touch {}; {script}", marker.display());
    let mut args = vec!["run", "--rw", d.str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "/bin/sh", "-c", &script]);
    let o = nanobox(who, opts, &args);
    let ran = marker.exists();
    (o, ran)
}

/// Refused at build without the opt-in: exit 125, nothing ran, and stderr names every needle.
#[track_caller]
fn assert_refused(who: Who, opts: &[&str], extra: &[&str], needles: &[&str]) {
    let (o, ran) = run_touch(who, opts, extra, "echo RAN");
    assert_code(&o, 125);
    assert_short_error(&o, &format!("{who:?} {opts:?}"));
    assert!(
        !ran,
        "{who:?} {opts:?}: the program ran although the sandbox was refused"
    );
    assert!(!text(&o.stdout).contains("RAN"));
    let err = text(&o.stderr);
    for n in needles {
        assert!(
            err.contains(n),
            "{who:?} {opts:?}: {n:?} not in the refusal: {err}"
        );
    }
    assert!(!err.contains("--privileged"), "{err}");
}

/// With `--allow-degraded --json`: the program ran, in the degraded mode (no /proc: it cannot
/// read its own status), and the first note names `lost`.
#[track_caller]
fn assert_degraded(who: Who, opts: &[&str], lost: &str) {
    if !degraded_possible() {
        return;
    }
    let (o, ran) = run_touch(
        who,
        opts,
        &["--allow-degraded", "--json"],
        "cat /proc/self/status >/dev/null 2>&1 && echo READ_PROC; echo DONE",
    );
    assert_code(&o, 0);
    assert!(
        ran,
        "{who:?} {opts:?}: the program did not run with the opt-in"
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let out = v["stdout"].as_str().unwrap();
    assert!(out.contains("DONE") && !out.contains("READ_PROC"), "{out}");
    let notes = v["degraded"].as_array().expect("degraded is a list");
    let first = notes.first().and_then(|n| n.as_str()).unwrap_or("");
    assert!(
        first.starts_with(lost) && first.ends_with("Landlock + seccomp only"),
        "{who:?} {opts:?}: {lost:?} does not lead {notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("no pid namespace")),
        "{notes:?}"
    );
}

/// The degraded mode needs Landlock ABI 6 (Linux 6.12).
fn degraded_possible() -> bool {
    let o = Command::new(common::BIN)
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let ok = said(check(&v, "Landlock")).contains("degraded mode (no user namespaces) is possible");
    if !ok {
        eprintln!("skipped the degraded run: this kernel's Landlock has no ABI 6");
    }
    ok
}

fn both(f: impl Fn(Who)) {
    f(Who::Root);
    f(Who::User);
}

#[track_caller]
fn status_line(who: Who, opts: &[&str], field: &str) -> String {
    let o = launched(who, opts, "grep", &[field, "/proc/self/status"]);
    assert_code(&o, 0);
    text(&o.stdout).trim().to_string()
}

#[test]
fn the_launcher_installs_what_it_claims() {
    both(|who| {
        // Docker's profile: no user namespace, no mount; its bounding set (as root).
        let docker = ["-s", "docker", "-c"];
        let o = launched(who, &docker, "unshare", &["-U", "true"]);
        assert_ne!(
            o.status.code(),
            Some(0),
            "{who:?}: unshare -U ran under the filter"
        );
        assert_eq!(status_line(who, &docker, "^Seccomp:"), "Seccomp:\t2");
        assert_eq!(status_line(who, &docker, "^NoNewPrivs:"), "NoNewPrivs:\t0");
        assert_eq!(
            status_line(who, &docker, "^CapBnd:"),
            "CapBnd:\t00000000a80425fb"
        );
        // The mount filter: a user namespace works, mounting in it does not.
        let o = launched(who, &["-s", "nomount"], "unshare", &["-Ur", "true"]);
        assert_code(&o, 0);
        let o = launched(
            who,
            &["-s", "nomount"],
            "unshare",
            &["-Urm", "mount", "-t", "tmpfs", "t", "/mnt"],
        );
        assert_ne!(
            o.status.code(),
            Some(0),
            "{who:?}: mounted under the filter"
        );
        // Masked and read-only /proc, seen in mountinfo.
        let o = launched(who, &["-p", "mask"], "cat", &["/proc/self/mountinfo"]);
        assert_code(&o, 0);
        let mi = text(&o.stdout);
        assert!(
            mi.contains(" /proc/keys ") && mi.contains(" /proc/sys ro,"),
            "{mi}"
        );
        let o = launched(who, &["-p", "ro"], "cat", &["/proc/self/mountinfo"]);
        let mi = text(&o.stdout);
        assert!(
            mi.lines()
                .any(|l| l.contains(" /proc ro,") && l.contains(" - proc ")),
            "{mi}"
        );
        // The uid switch.
        let o = launched(who, &[], "id", &["-u"]);
        let uid = if who == Who::Root { "0" } else { "65534" };
        assert_eq!(text(&o.stdout).trim(), uid);
    });
}

#[test]
fn a_launcher_without_restrictions_changes_nothing() {
    both(|who| {
        let (code, d) = doctor(who, &[]);
        assert_eq!(code, 0, "{who:?}: {d:#}");
        for name in [
            "container restrictions",
            "a new /proc in the sandbox's namespaces",
        ] {
            assert_eq!(check(&d, name)["status"], "available", "{who:?}: {d:#}");
        }
        // Full isolation: the sandbox's own /proc, pid 1 its init, nothing degraded.
        let (o, ran) = run_touch(
            who,
            &[],
            &["--json"],
            "cat /proc/1/status | grep -c '^Name:'; echo PID=$$",
        );
        assert_code(&o, 0);
        assert!(ran);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["degraded"].as_array().map(Vec::len), Some(0), "{v:#}");
        let out = v["stdout"].as_str().unwrap();
        assert!(
            out.contains("PID=2\n"),
            "{who:?}: not in a pid namespace: {out}"
        );
    });
}

const DOCKER: &[&str] = &["-s", "docker", "-c", "-p", "mask"];

#[test]
fn docker_s_defaults_are_explained_by_doctor() {
    both(|who| {
        let (code, d) = doctor(who, DOCKER);
        assert_eq!(code, 1, "{who:?}: doctor says ready: {d:#}");
        let c = check(&d, "container restrictions");
        assert_eq!(c["status"], "missing");
        assert_eq!(c["required"], true);
        let s = said(c);
        for want in [
            "a seccomp filter (Seccomp: 2)",
            "Docker's default capabilities",
            "mounted over it",
            "refuses clone with CLONE_NEWUSER",
            "--security-opt seccomp=PROFILE.json",
            "--allow-degraded",
        ] {
            assert!(s.contains(want), "{who:?}: {want:?} not in {s}");
        }
        assert!(!s.contains("privileged"), "{s}");
        let user = said(check(&d, "user namespaces"));
        assert!(user.contains("seccomp filter"), "{user}");
        let p = said(check(&d, "a new /proc"));
        assert!(p.contains("not tested"), "{p}");
    });
}

#[test]
fn docker_s_defaults_refuse_the_build_and_the_opt_in_runs_degraded() {
    both(|who| {
        assert_refused(
            who,
            DOCKER,
            &[],
            &[
                "user namespaces",
                "a seccomp filter (a container's profile",
                "--security-opt seccomp=PROFILE.json",
                "--allow-degraded",
            ],
        );
        assert_degraded(who, DOCKER, "user namespaces unavailable (a seccomp filter");
    });
}

const MASKED: &[&str] = &["-p", "mask"];

/// Whether the kernel refuses a new proc in a user namespace under the launcher's masked /proc,
/// asked of `unshare --mount-proc` (util-linux's own mount, the same flags as a run's). It does
/// only when no proc mount of the mount namespace is fully visible: a host whose init left an
/// uncovered proc under its moved root (the VM tier's does, see scripts/vm-init.c) allows it,
/// and there nanobox must run with full isolation.
fn kernel_refuses_masked_proc(who: Who) -> bool {
    let o = launched(who, MASKED, "unshare", &["-Urmpf", "--mount-proc", "true"]);
    let refused = o.status.code() != Some(0);
    if !refused {
        eprintln!(
            "{who:?}: this kernel mounts a new proc under the masked /proc (another proc mount \
             of this mount namespace is fully visible): checking full isolation instead"
        );
    }
    refused
}

/// Where the kernel allows a new proc under the masks: nanobox runs with full isolation.
fn assert_full_isolation(who: Who, opts: &[&str]) {
    let (code, d) = doctor(who, opts);
    assert_eq!(code, 0, "{who:?}: {d:#}");
    assert_eq!(check(&d, "a new /proc")["status"], "available", "{d:#}");
    let (o, ran) = run_touch(who, opts, &["--json"], "echo PID=$$");
    assert_code(&o, 0);
    assert!(ran);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["degraded"].as_array().map(Vec::len), Some(0), "{v:#}");
    assert!(v["stdout"].as_str().unwrap().contains("PID=2\n"), "{v:#}");
}

#[test]
fn a_masked_proc_is_explained_by_doctor() {
    both(|who| {
        if !kernel_refuses_masked_proc(who) {
            return assert_full_isolation(who, MASKED);
        }
        let (code, d) = doctor(who, MASKED);
        assert_eq!(code, 1, "{who:?}: doctor says ready: {d:#}");
        assert_eq!(check(&d, "user namespaces")["status"], "available");
        let c = check(&d, "a new /proc in the sandbox's namespaces");
        assert_eq!(c["status"], "missing");
        let s = said(c);
        for want in [
            "the kernel refuses a new proc",
            "/proc/keys",
            "--security-opt systempaths=unconfined",
            "--security-opt unmask=ALL",
            "procMount: Unmasked",
            "--allow-degraded",
        ] {
            assert!(s.contains(want), "{who:?}: {want:?} not in {s}");
        }
        assert_eq!(check(&d, "container restrictions")["status"], "missing");
    });
}

#[test]
fn a_masked_proc_refuses_the_build_and_the_opt_in_runs_degraded() {
    both(|who| {
        if !kernel_refuses_masked_proc(who) {
            return assert_full_isolation(who, MASKED);
        }
        assert_refused(
            who,
            MASKED,
            &[],
            &[
                "a new /proc in the sandbox's namespaces",
                "mounted over this /proc",
                "systempaths=unconfined",
                "--allow-degraded",
            ],
        );
        assert_degraded(who, MASKED, "no new /proc in the sandbox's namespaces (");
    });
}

const READ_ONLY: &[&str] = &["-p", "ro"];

#[test]
fn a_read_only_proc_is_refused_in_every_mode() {
    both(|who| {
        let (code, d) = doctor(who, READ_ONLY);
        assert_eq!(code, 1, "{who:?}: {d:#}");
        for name in ["container restrictions", "a new /proc"] {
            let s = said(check(&d, name));
            assert!(s.contains("read-only") && s.contains("remount,rw"), "{s}");
            assert!(!s.contains("fix: or accept"), "{s}");
        }
        let needles = [
            "a read-write /proc",
            "uid/gid maps and oom_score_adj",
            "also with --allow-degraded",
            "remount,rw",
        ];
        assert_refused(who, READ_ONLY, &[], &needles);
        assert_refused(who, READ_ONLY, &["--allow-degraded"], &needles);
    });
}

const NO_MOUNT: &[&str] = &["-s", "nomount"];

#[test]
fn a_filter_that_refuses_mount_is_explained_and_refused() {
    both(|who| {
        let (code, d) = doctor(who, NO_MOUNT);
        assert_eq!(code, 1, "{who:?}: {d:#}");
        assert_eq!(check(&d, "user namespaces")["status"], "available");
        let s = said(check(&d, "a new /proc"));
        for want in [
            "making its mounts private",
            "seccomp filter",
            "allows mount",
            "seccomp=PROFILE.json",
        ] {
            assert!(s.contains(want), "{who:?}: {want:?} not in {s}");
        }
        // Not called a masked /proc: nothing covers it here.
        assert!(!s.contains("systempaths"), "{s}");
        assert_refused(
            who,
            NO_MOUNT,
            &[],
            &["a new /proc in the sandbox's namespaces", "seccomp filter"],
        );
        assert_degraded(who, NO_MOUNT, "no new /proc in the sandbox's namespaces (");
    });
}

/// Set in the copy of this test binary that the launcher starts: build sandboxes and print what
/// `build()` said, one line each.
const BUILD_CHILD: &str = "NANOBOX_CONTAINERS_BUILD_CHILD";

#[test]
fn the_library_s_build_refuses_and_the_opt_in_builds_a_degraded_sandbox() {
    if std::env::var_os(BUILD_CHILD).is_some() {
        let say = |tag: &str, r: nanobox::Result<nanobox::Sandbox>| match r {
            Ok(sb) => println!(
                "{tag} built: {}",
                sb.degraded()
                    .first()
                    .map(String::as_str)
                    .unwrap_or("full isolation")
            ),
            Err(nanobox::Error::HostUnsupported { missing, .. }) => {
                println!("{tag} refused: {missing}")
            }
            Err(e) => println!("{tag} error: {e}"),
        };
        say("strict", nanobox::Sandbox::builder().build());
        say(
            "opt-in",
            nanobox::Sandbox::builder()
                .allow_degraded_isolation()
                .allow_degraded_limits()
                .build(),
        );
        return;
    }
    // A copy uid 65534 may execute, of this very binary.
    let me = std::env::current_exe().unwrap();
    let exe = common::nanobox_copy().with_file_name("containers-test");
    if !exe.exists() {
        std::fs::copy(&me, &exe).unwrap();
    }
    let degraded = degraded_possible();
    both(|who| {
        let masked = kernel_refuses_masked_proc(who);
        for (opts, strict, opt_in) in [
            (
                &[][..],
                "strict built: full isolation",
                "opt-in built: full isolation",
            ),
            (
                DOCKER,
                "strict refused: user namespaces",
                "opt-in built: user namespaces unavailable (a seccomp filter",
            ),
            if masked {
                (
                    MASKED,
                    "strict refused: a new /proc in the sandbox's namespaces",
                    "opt-in built: no new /proc in the sandbox's namespaces (",
                )
            } else {
                (
                    MASKED,
                    "strict built: full isolation",
                    "opt-in built: full isolation",
                )
            },
            (
                NO_MOUNT,
                "strict refused: a new /proc in the sandbox's namespaces",
                "opt-in built: no new /proc in the sandbox's namespaces (",
            ),
            (
                READ_ONLY,
                "strict refused: a read-write /proc",
                "opt-in refused: a read-write /proc",
            ),
        ] {
            let mut c = Command::new(launcher());
            c.args(opts);
            if who == Who::User {
                c.args(["-u", "65534"]);
            }
            let o = c
                .arg(&exe)
                .args([
                    "--exact",
                    "the_library_s_build_refuses_and_the_opt_in_builds_a_degraded_sandbox",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(BUILD_CHILD, "1")
                .current_dir("/")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert_code(&o, 0);
            let out = text(&o.stdout);
            assert!(
                out.contains(strict),
                "{who:?} {opts:?}: {strict:?} not in {out}"
            );
            if degraded || !opt_in.contains("built: no") && !opt_in.contains("unavailable") {
                assert!(
                    out.contains(opt_in),
                    "{who:?} {opts:?}: {opt_in:?} not in {out}"
                );
            }
        }
    });
}
