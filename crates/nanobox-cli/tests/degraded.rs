//! The degraded mode (Landlock + seccomp alone), on a host that refuses user namespaces.
//!
//! Such a host is made the way containers make it: a seccomp filter, installed by a small C
//! launcher compiled here, answers `clone3` with ENOSYS and `clone`/`unshare` with
//! `CLONE_NEWUSER` with EPERM, then executes nanobox. Each test runs nanobox through it as root
//! (the program then runs as uid 65534) and as uid 65534 itself (the program keeps that uid), and
//! plays the attacker against what the degraded mode still promises.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nanobox");

const LAUNCHER: &str = r#"
#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("launcher");
        return 99;
    }
    execv(argv[1], argv + 1);
    perror("execv");
    return 98;
}
"#;

static N: AtomicUsize = AtomicUsize::new(0);

/// A directory under /tmp that uid 65534 can use, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "nanobox-degraded-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, PermissionsExt::from_mode(0o777)).unwrap();
        TempDir(p)
    }
    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The launcher and a copy of nanobox, both executable by uid 65534.
fn tools() -> &'static (PathBuf, PathBuf) {
    static TOOLS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("nanobox-degraded-tools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
        let src = dir.join("launcher.c");
        std::fs::write(&src, LAUNCHER).unwrap();
        let launcher = dir.join("launcher");
        let cc = Command::new("cc")
            .arg("-O")
            .arg("-o")
            .arg(&launcher)
            .arg(&src)
            .output()
            .expect("the system C compiler (cc) is needed: apt-get install gcc");
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        let nb = dir.join("nanobox");
        std::fs::copy(BIN, &nb).unwrap();
        std::fs::set_permissions(&nb, PermissionsExt::from_mode(0o755)).unwrap();
        (launcher, nb)
    })
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Root,
    User,
}

/// `nanobox ARGS` on a host without user namespaces, started by `who`.
fn nanobox(who: Who, args: &[&str]) -> Command {
    let (launcher, nb) = tools();
    let mut c = match who {
        Who::Root => Command::new(launcher),
        Who::User => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(launcher);
            c
        }
    };
    c.arg(nb).args(args).current_dir("/").stdin(Stdio::null());
    c
}

fn run(who: Who, args: &[&str]) -> Output {
    nanobox(who, args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

fn both(f: impl Fn(Who)) {
    if !Path::new("/sys/kernel/security/landlock").exists()
        && std::fs::read_to_string("/sys/kernel/security/lsm")
            .is_ok_and(|l| !l.contains("landlock"))
    {
        // The degraded mode refuses to run without Landlock; the refusal is tested below.
        eprintln!("skipped: Landlock is not enabled on this kernel");
        return;
    }
    f(Who::Root);
    f(Who::User);
}

#[test]
fn without_the_opt_in_nothing_runs_and_the_cause_is_named() {
    for who in [Who::Root, Who::User] {
        let o = run(who, &["run", "--", "echo", "RAN"]);
        assert_code(&o, 125);
        assert!(!text(&o.stdout).contains("RAN"));
        let err = text(&o.stderr);
        assert!(
            err.contains("user namespaces") && err.contains("seccomp"),
            "{err}"
        );
    }
}

#[test]
fn a_degraded_run_says_so_on_stderr_and_in_json() {
    both(|who| {
        let o = run(who, &["run", "--allow-degraded", "--", "echo", "hi"]);
        assert_code(&o, 0);
        assert_eq!(text(&o.stdout), "hi\n");
        let err = text(&o.stderr);
        assert!(
            err.contains("nanobox: degraded: user namespaces unavailable"),
            "{err}"
        );
        let o = run(who, &["run", "--allow-degraded", "--json", "--", "true"]);
        assert_code(&o, 0);
        let v: Value = serde_json::from_str(&text(&o.stdout)).unwrap();
        let notes = v["degraded"].as_array().expect("a degraded list");
        assert!(notes.len() >= 4, "{notes:?}");
        assert!(notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("no pid namespace")));
    });
}

#[test]
fn landlock_alone_confines_the_filesystem() {
    both(|who| {
        let d = TempDir::new("fs");
        for sub in ["ro", "rw", "secret"] {
            std::fs::create_dir(d.join(sub)).unwrap();
            // Open to everyone: only Landlock stands in the way.
            std::fs::set_permissions(d.join(sub), PermissionsExt::from_mode(0o777)).unwrap();
        }
        std::fs::write(d.join("ro/f"), "public\n").unwrap();
        std::fs::write(d.join("secret/s"), "secret\n").unwrap();
        let escape = format!("/tmp/nanobox-degraded-escape-{}", std::process::id());
        let script = format!(
            "D={d}
            cat $D/ro/f && echo READ_RO
            echo x > $D/ro/new && echo WROTE_RO
            cat $D/secret/s && echo READ_SECRET
            echo x > $D/secret/new && echo WROTE_SECRET
            ls $D/secret && echo LISTED_SECRET
            echo x > $D/rw/new && echo WROTE_RW
            echo x > $TMPDIR/t && echo WROTE_TMP && echo TMPDIR=$TMPDIR
            echo x > {escape} && echo WROTE_HOST_TMP
            cat /proc/self/status > /dev/null && echo READ_PROC
            cat /proc/1/environ > /dev/null && echo READ_INIT_ENV
            ls /root > /dev/null && echo LISTED_ROOT_HOME
            echo x > /dev/null && echo WROTE_NULL",
            d = d.str()
        );
        let ro = format!("{}", d.join("ro").display());
        let rw = format!("{}", d.join("rw").display());
        let o = run(
            who,
            &[
                "run",
                "--allow-degraded",
                "--ro",
                &ro,
                "--rw",
                &rw,
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_code(&o, 0);
        let out = text(&o.stdout);
        for want in ["public", "READ_RO", "WROTE_RW", "WROTE_TMP", "WROTE_NULL"] {
            assert!(out.contains(want), "{who:?}: {want} missing in {out}");
        }
        for never in [
            "WROTE_RO",
            "secret\n",
            "READ_SECRET",
            "WROTE_SECRET",
            "LISTED_SECRET",
            "WROTE_HOST_TMP",
            "READ_PROC",
            "READ_INIT_ENV",
            "LISTED_ROOT_HOME",
        ] {
            assert!(!out.contains(never), "{who:?}: {never} in {out}");
        }
        assert!(!d.join("ro/new").exists() && !d.join("secret/new").exists());
        assert!(!Path::new(&escape).exists());
        assert!(d.join("rw/new").exists());
        // The stand-in for /tmp is gone with the run.
        let tmpdir = out
            .lines()
            .find_map(|l| l.strip_prefix("TMPDIR="))
            .expect("TMPDIR printed");
        assert!(!Path::new(tmpdir).exists(), "{tmpdir} left behind");
    });
}

#[test]
fn no_socket_can_be_made_but_socketpair_works() {
    both(|who| {
        let py = "import socket\n\
                  for fam in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):\n\
                  \x20   try:\n\
                  \x20       socket.socket(fam); print('SOCKET', fam)\n\
                  \x20   except OSError as e: print('refused', e.errno)\n\
                  a, b = socket.socketpair(); a.send(b'x'); print('PAIR', b.recv(1))";
        let o = run(who, &["run", "--allow-degraded", "--", "python3", "-c", py]);
        assert_code(&o, 0);
        let out = text(&o.stdout);
        assert!(!out.contains("SOCKET"), "{out}");
        assert_eq!(out.matches("refused 1").count(), 3, "{out}");
        assert!(out.contains("PAIR b'x'"), "{out}");
    });
}

#[test]
fn no_setid_file_leaves_a_degraded_run_either() {
    // Without a user namespace the program holds a real host uid (65534 for a root caller, the
    // caller's otherwise): a set-id file it left would run as that uid for any local user.
    both(|who| {
        let d = TempDir::new("setid");
        std::fs::create_dir(d.join("rw")).unwrap();
        std::fs::set_permissions(d.join("rw"), PermissionsExt::from_mode(0o777)).unwrap();
        let rw = format!("{}", d.join("rw").display());
        let script = format!(
            "cp /bin/sh {rw}/x && chmod 4755 {rw}/x; echo chmod=$?; chmod 2755 {rw}/x; echo sgid=$?; \
             install -m 6755 /bin/sh {rw}/i; echo install=$?"
        );
        let o = run(
            who,
            &[
                "run",
                "--allow-degraded",
                "--rw",
                &rw,
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_code(&o, 0);
        let out = text(&o.stdout);
        for tool in ["chmod", "sgid", "install"] {
            assert!(!out.contains(&format!("{tool}=0")), "{who:?}: {out}");
        }
        for f in ["x", "i"] {
            if let Ok(m) = std::fs::metadata(d.join("rw").join(f)) {
                assert_eq!(m.permissions().mode() & 0o6000, 0, "{who:?} {f}: {out}");
            }
        }
        assert!(d.join("rw/x").exists(), "{out}");
    });
}

#[test]
fn signals_stay_inside_the_run() {
    both(|who| {
        // A bystander with the program's uid (65534 in both cases).
        let mut bystander = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "sleep",
                "60",
            ])
            .spawn()
            .unwrap();
        let script = format!(
            "kill -9 -1; kill -9 {}; echo bystander $?; kill -9 $PPID; echo init $?; echo ALIVE",
            bystander.id()
        );
        let o = run(who, &["run", "--allow-degraded", "--", "sh", "-c", &script]);
        let alive = bystander.try_wait().unwrap().is_none();
        let _ = bystander.kill();
        let _ = bystander.wait();
        assert_code(&o, 0);
        let out = text(&o.stdout);
        assert!(
            out.contains("bystander 1") && out.contains("init 1"),
            "{out}"
        );
        assert!(out.contains("ALIVE"), "{out}");
        assert!(
            alive,
            "{who:?}: the program killed a process outside its run"
        );
    });
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{}", pid.trim())).exists()
        && !std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn nothing_outlives_the_run_also_at_the_wall_time_limit() {
    both(|who| {
        let d = TempDir::new("daemon");
        let rw = d.str().to_string();
        let script = format!("setsid sh -c 'sleep 300' & echo $! > {rw}/pid; sleep 0.2");
        let o = run(
            who,
            &[
                "run",
                "--allow-degraded",
                "--rw",
                &rw,
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_code(&o, 0);
        let pid = std::fs::read_to_string(d.join("pid")).unwrap();
        assert!(!alive(&pid), "{who:?}: daemon {pid} outlived the run");

        let script = format!("setsid sh -c 'sleep 300' & echo $! > {rw}/pid2; sleep 300");
        let t = std::time::Instant::now();
        let o = run(
            who,
            &[
                "run",
                "--allow-degraded",
                "--timeout",
                "1s",
                "--rw",
                &rw,
                "--",
                "sh",
                "-c",
                &script,
            ],
        );
        assert_code(&o, 124);
        assert!(t.elapsed().as_secs() < 20);
        let pid = std::fs::read_to_string(d.join("pid2")).unwrap();
        assert!(!alive(&pid), "{who:?}: daemon {pid} outlived the timeout");
    });
}

#[test]
fn a_mount_that_moves_a_path_is_refused() {
    let d = TempDir::new("move");
    let spec = format!("{}:/data", d.str());
    let o = run(
        Who::User,
        &["run", "--allow-degraded", "--ro", &spec, "--", "true"],
    );
    assert_code(&o, 125);
    let err = text(&o.stderr);
    assert!(
        err.contains("mount namespace") && err.contains(d.str()),
        "{err}"
    );
}
