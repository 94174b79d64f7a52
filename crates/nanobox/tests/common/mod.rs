//! Shared helpers for the integration tests: temp dirs, and running a test body again under an
//! unprivileged uid, so that every isolation property is checked both as root and as a user.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The uid and gid the unprivileged runs use.
pub const USER: u32 = 65534;

/// `d` scaled by how much slower than this project's CI host the machine running the tests is:
/// `NANOBOX_TEST_SLOWNESS` (a number, default 1). The VM tier sets it (its CPUs are emulated), and
/// tests whose outcome depends on a time limit scale that limit with it.
pub fn slow(d: std::time::Duration) -> std::time::Duration {
    let factor = std::env::var("NANOBOX_TEST_SLOWNESS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|f| *f >= 1.0)
        .unwrap_or(1.0);
    d.mul_f64(factor)
}

pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

pub fn is_root() -> bool {
    euid() == 0
}

/// A directory under /tmp removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "nanobox-test-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Host pids whose command line (NULs shown as spaces) satisfies `matches`.
pub fn host_processes(matches: impl Fn(&str) -> bool) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| matches(&String::from_utf8_lossy(&c).replace('\0', " ")))
                .unwrap_or(false)
        })
        .collect()
}

/// Read the child's stdout to its end, then wait for it.
pub fn output_and_wait(child: &mut nanobox::Child) -> (String, nanobox::Outcome) {
    use std::io::Read;
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (out, child.wait().unwrap())
}

/// `b` as this process can build it: uid 65534 has no writable cgroup here, so the limits of a
/// preset fall back to rlimits (`allow_degraded_limits`) where a strict build says so; root keeps
/// cgroup limits. For tests that are not about the limits.
pub fn usable(b: nanobox::SandboxBuilder) -> nanobox::SandboxBuilder {
    match b.clone().build() {
        Err(nanobox::Error::HostUnsupported { .. }) => b.allow_degraded_limits(),
        _ => b,
    }
}

/// Compile a C program with the system compiler (installed by .ci/run) into `dir`; return its path.
pub fn compile_c(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).unwrap();
    let out = Command::new("cc")
        .arg("-O0")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("the system C compiler (gcc) is installed by .ci/run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// A copy of this test binary that uid 65534 can execute.
pub fn user_copy() -> &'static Path {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("nanobox-testbin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = std::env::current_exe().unwrap();
        let dst = dir.join(exe.file_name().unwrap());
        std::fs::copy(&exe, &dst).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        extern "C" fn remove_copy() {
            let dir = std::env::temp_dir().join(format!("nanobox-testbin-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(dir);
        }
        // SAFETY: registers a plain function to run at process exit.
        unsafe { libc::atexit(remove_copy) };
        dst
    })
}

/// Run the ignored test `name` (a full path like `module::body_entry`) of the binary `exe` under
/// `wrapper` (a command that runs the rest of its arguments: `setpriv ...`, `unshare ...`), with
/// the environment variable `marker` set to 1, and assert that it ran and passed. `what` says how
/// it was run, for the failure message.
pub fn rerun_under(wrapper: &[&str], exe: &Path, name: &str, marker: &str, what: &str) {
    let out = Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir("/")
        .env(marker, "1")
        .output()
        .unwrap_or_else(|e| panic!("{} runs: {e}", wrapper[0]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} {what} failed:\n{stdout}\n{stderr}"
    );
}

/// Run the ignored test `name` (a full path like `module::body_entry`) of this binary as uid
/// 65534 with no supplementary groups, and assert that it ran and passed. When this process is not
/// root it already is unprivileged, and `name` is run in-process by the caller instead.
pub fn rerun_as_user(name: &str) {
    assert!(is_root(), "rerun_as_user needs root");
    let (uid, gid) = (format!("--reuid={USER}"), format!("--regid={USER}"));
    rerun_under(
        &["setpriv", &uid, &gid, "--clear-groups", "--"],
        user_copy(),
        name,
        "NANOBOX_TEST_AS_USER",
        &format!("as uid {USER}"),
    );
}

/// Define a property test that runs as root (in-process) and as uid 65534 (re-executed).
#[macro_export]
macro_rules! both {
    ($name:ident, $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body() $body

            #[test]
            fn as_root() {
                if !$crate::common::is_root() {
                    eprintln!("skipped: not running as root; `as_user` covers this process's uid");
                    return;
                }
                body()
            }

            $crate::user_entry!();
        }
    };
}

/// Define a property test that runs as uid 65534 only (re-executed by root through setpriv), for
/// tests that must not run as root (they would draw on this shared host's root pools).
#[macro_export]
macro_rules! as_user {
    ($name:ident, $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body() $body

            $crate::user_entry!();
        }
    };
}

/// The `as_user` test (root re-executes `body_entry` as uid 65534; uid 65534 runs `body` itself)
/// and its ignored entry point, inside a test module that defines `body`.
#[macro_export]
macro_rules! user_entry {
    () => {
        #[test]
        fn as_user() {
            if $crate::common::is_root() {
                let path = concat!(module_path!(), "::body_entry");
                let name = path.split_once("::").map(|(_, r)| r).unwrap_or(path);
                $crate::common::rerun_as_user(name);
            } else {
                body()
            }
        }

        #[test]
        #[ignore = "entry point of `as_user`, which runs it under uid 65534"]
        fn body_entry() {
            body()
        }
    };
}
