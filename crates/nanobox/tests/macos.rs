//! The macOS backend end to end: programs run under sandbox-exec, what the profile denies, the
//! proxy, the wall-time limit on a tree, the memory watchdog, and the user a root caller's
//! program runs as. Runs only on a Mac (CI: .github/workflows/macos.yml).

#![cfg(target_os = "macos")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nanobox::{Outcome, Sandbox, MB};

fn sandbox() -> Sandbox {
    Sandbox::builder()
        .wall_time_limit(Duration::from_secs(60))
        .build()
        .expect("a default sandbox builds on macOS")
}

/// The caller's home directory (the test's own environment, not the program's).
fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
}

/// Whether a process with this pid exists (zombies included).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks the pid.
    unsafe { libc::kill(pid, 0) == 0 }
}

#[test]
fn sh_and_python3_run_and_print() {
    let sb = sandbox();
    let r = sb
        .run("sh", &["-c", "echo hello; echo err >&2; exit 3"])
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(3), "{r:?}");
    assert_eq!(r.stdout, "hello\n");
    assert_eq!(r.stderr, "err\n");
    let r = sb.run("python3", &["-c", "print(6 * 7)"]).unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(r.stdout, "42\n");
}

#[test]
fn tmpdir_is_private_writable_and_the_working_directory() {
    let r = sandbox()
        .run(
            "sh",
            &[
                "-c",
                "echo data > \"$TMPDIR/f\" && cat \"$TMPDIR/f\" && [ \"$(pwd -P)\" = \"$TMPDIR\" ] \
                 && echo cwd-ok; echo \"$TMPDIR\"",
            ],
        )
        .unwrap();
    assert!(r.success(), "{r:?}");
    let mut lines = r.stdout.lines();
    assert_eq!(lines.next(), Some("data"));
    assert_eq!(lines.next(), Some("cwd-ok"));
    let tmpdir = PathBuf::from(lines.next().expect("TMPDIR printed"));
    assert!(
        !tmpdir.exists(),
        "the run directory is removed after the run"
    );
}

#[test]
fn a_write_outside_the_mounts_is_denied() {
    let target = home().join(format!("nanobox-write-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&target);
    let script = format!("echo escaped > '{}'", target.display());
    let r = sandbox().run("sh", &["-c", &script]).unwrap();
    assert!(!r.success(), "the write succeeded: {r:?}");
    assert!(!target.exists(), "the file was created outside the sandbox");
}

#[test]
fn a_denied_write_is_reported_with_its_path_when_asked() {
    let target = home().join(format!("nanobox-denial-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&target);
    let reporting = Sandbox::builder()
        .wall_time_limit(Duration::from_secs(30))
        .report_denials()
        .build()
        .unwrap();
    let script = format!("echo escaped > '{}'", target.display());
    let r = reporting.run("sh", &["-c", &script]).unwrap();
    assert!(!r.success(), "the write succeeded: {r:?}");
    assert_eq!(r.denials_unread, None);
    let shown = target.to_string_lossy();
    assert!(
        r.denials
            .iter()
            .any(|d| d.operation.starts_with("file-write")
                && d.target.as_deref().is_some_and(|t| t.ends_with(&*shown))),
        "no file-write denial of {shown} in {:?}",
        r.denials
    );
    // Without the option the list stays empty.
    let plain = sandbox().run("sh", &["-c", &script]).unwrap();
    assert!(plain.denials.is_empty(), "{:?}", plain.denials);
}

#[test]
fn a_read_of_the_home_directory_is_denied() {
    let secret = home().join(format!(".nanobox-secret-{}", std::process::id()));
    std::fs::write(&secret, "TOPSECRET\n").unwrap();
    let r = sandbox().run("cat", &[secret.to_str().unwrap()]).unwrap();
    let _ = std::fs::remove_file(&secret);
    assert!(!r.success(), "the read succeeded: {r:?}");
    assert!(!r.stdout.contains("TOPSECRET"));
    // ~/.ssh (when it exists) cannot be listed either.
    let ssh = home().join(".ssh");
    if ssh.exists() {
        let r = sandbox().run("ls", &[ssh.to_str().unwrap()]).unwrap();
        assert!(!r.success(), "~/.ssh was listed: {r:?}");
    }
}

#[test]
fn the_network_is_denied() {
    let code = "import socket\n\
                try:\n    socket.create_connection(('1.1.1.1', 443), timeout=5)\n    print('connected')\n\
                except OSError as e:\n    print('denied', e)\n";
    let r = sandbox().run("python3", &["-c", code]).unwrap();
    assert!(r.success(), "{r:?}");
    assert!(r.stdout.starts_with("denied"), "{r:?}");
}

/// A one-shot HTTP origin on the host's loopback: answers every request with `hello`.
fn origin() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    port
}

#[test]
fn the_proxy_lets_an_allowed_origin_through_and_nothing_else() {
    let port = origin();
    // A loopback origin passes the proxy's address rules only when exempted.
    let sb = Sandbox::builder()
        .allow_network(&["127.0.0.1"])
        .allow_address("127.0.0.1/32")
        .wall_time_limit(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let r = sb
        .run("sh", &["-c", &format!("curl -sS -x \"$http_proxy\" {url}")])
        .unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(r.stdout, "hello");
    assert!(
        r.network
            .iter()
            .any(|e| e.allowed && e.host == "127.0.0.1" && e.port == port),
        "{:?}",
        r.network
    );
    // Past the proxy, straight to the origin: denied by the profile.
    let r = sb
        .run("curl", &["-sS", "--max-time", "5", "--noproxy", "*", &url])
        .unwrap();
    assert!(!r.success(), "a direct connection went through: {r:?}");
    assert_ne!(r.stdout, "hello");
}

#[test]
fn the_wall_time_limit_kills_the_tree_and_a_child_in_its_own_session() {
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_secs(2))
        .build()
        .unwrap();
    // The child tries to leave the process group (the profile may refuse it) and sleeps.
    let code = "import os, sys, time\n\
                pid = os.fork()\n\
                if pid == 0:\n    try:\n        os.setsid()\n    except OSError:\n        pass\n    time.sleep(60)\n    os._exit(0)\n\
                print(pid, flush=True)\n\
                time.sleep(60)\n";
    let started = Instant::now();
    let r = sb.run("python3", &["-c", code]).unwrap();
    assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
    let child: i32 = r.stdout.trim().parse().expect("the child's pid");
    let until = Instant::now() + Duration::from_secs(3);
    while alive(child) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(child), "the child {child} outlived the run");
}

#[test]
fn the_memory_watchdog_ends_a_growing_program() {
    let sb = Sandbox::builder()
        .memory_limit(128 * MB)
        .wall_time_limit(Duration::from_secs(60))
        .build()
        .unwrap();
    // 10 MB of written (not just reserved) memory every 10 ms.
    let code = "import time\na = []\nwhile True:\n    a.append(b'x' * (10 * 1024 * 1024))\n    time.sleep(0.01)\n";
    let r = sb.run("python3", &["-c", code]).unwrap();
    assert_eq!(r.outcome, Outcome::MemoryLimit, "{r:?}");
    assert!(r.peak_memory > 128 * MB, "peak {}", r.peak_memory);
    assert!(
        r.limits
            .iter()
            .any(|e| e.limit == "memory" && e.mechanism.contains("watchdog")),
        "{:?}",
        r.limits
    );
}

#[test]
fn a_cpu_limit_is_refused_without_the_opt_in() {
    assert!(Sandbox::builder().cpu_limit(1.0).build().is_err());
}

#[test]
fn the_probe_says_ready() {
    let p = Sandbox::probe();
    assert_eq!(p.platform, "macos");
    assert!(p.ready, "{p}");
    assert!(p.checks.iter().any(|c| c.name == "sandbox-exec"));
}

#[test]
fn as_root_the_program_is_not_root() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the test process is not root (run it with sudo to check this)");
        return;
    }
    let r = sandbox()
        .run("sh", &["-c", "id -u; touch \"$TMPDIR/x\" && echo tmp-ok"])
        .unwrap();
    assert!(r.success(), "{r:?}");
    let mut lines = r.stdout.lines();
    let uid: u32 = lines.next().unwrap().parse().unwrap();
    assert_ne!(uid, 0, "the program ran as root");
    assert_eq!(lines.next(), Some("tmp-ok"), "its run directory is its own");
}

#[test]
fn per_run_options_a_piped_stdin_and_a_persistent_bash() {
    let sb = sandbox();
    let r = sb
        .command("sh")
        .args(["-c", "echo \"$K\"; pwd"])
        .env("K", "V")
        .current_dir("/usr/bin")
        .run()
        .unwrap();
    assert_eq!(r.stdout, "V\n/usr/bin\n", "{r:?}");
    let r = sb
        .command("sleep")
        .arg("30")
        .timeout(Duration::from_millis(500))
        .run()
        .unwrap();
    assert_eq!(r.outcome, Outcome::WallTimeLimit);
    assert_eq!(
        sb.shell("printf 'a\\nb\\n' | wc -l").unwrap().stdout.trim(),
        "2"
    );

    let mut child = sb
        .command("sh")
        .args(["-c", "read l; echo \"got $l\""])
        .stdin_piped()
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"one\n").unwrap();
    assert_eq!(child.wait_with_output().unwrap().stdout, "got one\n");

    let mut sh = sb.bash().unwrap();
    sh.run("cd /usr && export K=v").unwrap();
    assert_eq!(sh.run("pwd; echo $K").unwrap().stdout, "/usr\nv\n");
    let out = sh
        .run_with_timeout("sleep 30", Some(Duration::from_millis(500)))
        .unwrap();
    assert!(out.timed_out && out.exit_code == Some(130), "{out:?}");
    assert_eq!(sh.run("pwd").unwrap().stdout, "/usr\n");
}
