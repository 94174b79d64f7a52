//! Helpers the CLI's tests share (degraded.rs, containers.rs, vm_hosts.rs, cli_contract.rs): scratch directories uid
//! 65534 can use, C launchers compiled at test time, a copy of nanobox uid 65534 may execute, and
//! the checks on what came out.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_nanobox");

static N: AtomicUsize = AtomicUsize::new(0);

/// A directory under /tmp that uid 65534 can use, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str, tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "nanobox-{prefix}-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, PermissionsExt::from_mode(0o777)).unwrap();
        TempDir(p)
    }
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    pub fn str(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory of this test process's tools, readable and executable by uid 65534.
fn tools_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nanobox-tools-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(0o755)).unwrap();
        dir
    })
}

/// Compile the C program `source` as `name` (once per test process).
pub fn compile(name: &str, source: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let exe = tools_dir().join(name);
    if exe.exists() {
        return exe;
    }
    let src = tools_dir().join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let cc = Command::new("cc")
        .arg("-O")
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("the system C compiler (cc) is needed: apt-get install gcc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    exe
}

/// A copy of nanobox that uid 65534 may execute (the target directory may be closed to it).
pub fn nanobox_copy() -> &'static Path {
    static NB: OnceLock<PathBuf> = OnceLock::new();
    NB.get_or_init(|| {
        let nb = tools_dir().join("nanobox");
        std::fs::copy(BIN, &nb).unwrap();
        std::fs::set_permissions(&nb, PermissionsExt::from_mode(0o755)).unwrap();
        nb
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Root,
    User,
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `d` scaled by `NANOBOX_TEST_SLOWNESS`, as the library tests' `common::slow` does (the slow VM
/// tier sets it).
pub fn slow(d: Duration) -> Duration {
    let factor = std::env::var("NANOBOX_TEST_SLOWNESS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|f| *f >= 1.0)
        .unwrap_or(1.0);
    d.mul_f64(factor)
}

/// Send `sig` to `child` (the nanobox command this test started).
pub fn send(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on the pid of our own unreaped child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// Wait (at most 30 s, scaled) until `path` exists: a program in a sandbox has got that far.
#[track_caller]
pub fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + slow(Duration::from_secs(30));
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what}: no {path:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the user reads when nothing runs: at most three lines (what failed, why, one fix) and
/// short enough to be read; `nanobox doctor` has the long form.
#[track_caller]
pub fn assert_short_error(o: &Output, what: &str) {
    let e = text(&o.stderr);
    assert!(!e.is_empty(), "{what}: no message");
    assert!(
        e.lines().count() <= 3,
        "{what}: more than three lines:\n{e}"
    );
    assert!(e.len() <= 480, "{what}: {} characters:\n{e}", e.len());
}

/// Whether the kernel may run Landlock (the degraded mode refuses to run without it): false only
/// when securityfs says it does not.
pub fn landlock_enabled() -> bool {
    Path::new("/sys/kernel/security/landlock").exists()
        || !std::fs::read_to_string("/sys/kernel/security/lsm")
            .is_ok_and(|l| !l.contains("landlock"))
}

/// The doctor check whose name starts with `name`.
#[track_caller]
pub fn check<'a>(doctor: &'a Value, name: &str) -> &'a Value {
    doctor["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no doctor check {name:?} in {doctor:#}"))
}

/// A check's detail and fix as one string.
pub fn said(c: &Value) -> String {
    format!(
        "{} fix: {}",
        c["detail"].as_str().unwrap_or(""),
        c["fix"].as_str().unwrap_or("")
    )
}

/// A command that runs its arguments as `who` where no cgroup is writable: in a mount namespace
/// of its own whose cgroup mounts are unmounted (the host's are untouched). Needs root.
pub fn without_cgroups(who: Who) -> Command {
    let unmount = "awk '{ split($0, a, \" - \"); split(a[2], b, \" \"); \
                   if (b[1] == \"cgroup\" || b[1] == \"cgroup2\") print $5 }' /proc/self/mountinfo \
                   | sort -r | while read -r m; do umount -l \"$m\" || exit 1; done";
    let exec = match who {
        Who::Root => "exec \"$@\"",
        Who::User => "exec setpriv --reuid=65534 --regid=65534 --clear-groups -- \"$@\"",
    };
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(format!("{unmount} && {exec}"))
        .arg("sh");
    c
}
