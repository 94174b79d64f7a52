//! End-to-end tests of the `nanobox` binary: each runs the built CLI as a separate process.
//!
//! They need a Linux host where user namespaces work (as root and as an unprivileged user).

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{is_root, send, slow};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nanobox");

fn nanobox() -> Command {
    let mut c = Command::new(BIN);
    c.stdin(Stdio::null());
    c
}

/// Run `nanobox ARGS` to completion.
fn run(args: &[&str]) -> Output {
    nanobox().args(args).output().expect("start nanobox")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Assert the exit status, showing the output when it differs.
#[track_caller]
fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// The one-line JSON report printed by `run --json`.
#[track_caller]
fn report(o: &Output) -> Value {
    let text = stdout(o);
    assert_eq!(
        text.matches('\n').count(),
        1,
        "expected one line of JSON, got {text:?}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "nanobox-cli-test-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).expect("create temp dir");
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn str(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn hello_prints_exactly_hello() {
    let o = run(&["run", "--", "python3", "-c", "print('hello')"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "hello\n");
}

#[test]
fn args_starting_with_dash_reach_the_program() {
    // Without `--`, everything after PROGRAM is the program's, also `--json` and `--`.
    let o = run(&[
        "run",
        "python3",
        "-c",
        "import sys; print(sys.argv[1:])",
        "-x",
        "--json",
        "--",
        "z",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "['-x', '--json', '--', 'z']\n");
    let o = run(&["run", "--", "echo", "--", "-n", "hi"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "-- -n hi\n");
}

#[test]
fn shell_metacharacters_in_arguments_reach_the_program_verbatim() {
    // firejail CVE-2020-17367/17368: a command line passed through a shell runs what it contains.
    let words = [
        "$(echo INJECTED)",
        "`echo INJECTED`",
        "; echo INJECTED",
        "a|b&c>d",
        "'\"\\",
    ];
    let mut args = vec!["run", "--", "printf", "%s\n"];
    args.extend(words);
    let o = run(&args);
    assert_code(&o, 0);
    let want: String = words.iter().map(|w| format!("{w}\n")).collect();
    assert_eq!(stdout(&o), want);
}

#[test]
fn exit_code_is_passed_through() {
    let o = run(&["run", "--", "sh", "-c", "exit 7"]);
    assert_code(&o, 7);
}

#[test]
fn death_by_signal_exits_128_plus_n() {
    let o = run(&["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_code(&o, 128 + 15);
}

#[test]
fn timeout_ends_the_run_with_124() {
    let t = Instant::now();
    let o = run(&["run", "--timeout", "1s", "--", "sleep", "30"]);
    let took = t.elapsed();
    assert_code(&o, 124);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(took >= Duration::from_millis(900), "took {took:?}");
}

#[test]
fn json_report_of_an_exited_program() {
    let o = run(&[
        "run",
        "--json",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_code(&o, 3);
    let v = report(&o);
    assert_eq!(v["status"], "exited");
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["signal"], Value::Null);
    assert_eq!(v["stdout"], "out\n");
    assert_eq!(v["stderr"], "err\n");
    assert_eq!(v["stdout_truncated"], false);
    assert_eq!(v["stderr_truncated"], false);
    let ms = v["wall_time_ms"]
        .as_f64()
        .expect("wall_time_ms is a number");
    assert!((0.0..10_000.0).contains(&ms), "wall_time_ms {ms}");
}

#[test]
fn json_report_of_a_signaled_program() {
    let o = run(&[
        "run",
        "--json",
        "--",
        "sh",
        "-c",
        "echo before; kill -TERM $$",
    ]);
    assert_code(&o, 143);
    let v = report(&o);
    assert_eq!(v["status"], "signaled");
    assert_eq!(v["exit_code"], Value::Null);
    assert_eq!(v["signal"], 15);
    assert_eq!(v["stdout"], "before\n");
}

#[test]
fn json_report_of_a_wall_time_limit() {
    let t = Instant::now();
    let o = run(&[
        "run",
        "--json",
        "--timeout",
        "300ms",
        "--",
        "sh",
        "-c",
        "echo started; sleep 30",
    ]);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_code(&o, 124);
    let v = report(&o);
    assert_eq!(v["status"], "wall_time_limit");
    assert_eq!(v["exit_code"], Value::Null);
    assert_eq!(v["signal"], Value::Null);
    assert_eq!(v["stdout"], "started\n");
    let ms = v["wall_time_ms"]
        .as_f64()
        .expect("wall_time_ms is a number");
    assert!((250.0..5_000.0).contains(&ms), "wall_time_ms {ms}");
}

#[test]
fn json_report_of_an_output_limit() {
    let o = run(&[
        "run",
        "--json",
        "--max-output",
        "1K",
        "--",
        "python3",
        "-c",
        "import sys; sys.stdout.write('x' * 1000000)",
    ]);
    assert_code(&o, 137);
    let v = report(&o);
    assert_eq!(v["status"], "output_limit");
    assert_eq!(v["exit_code"], Value::Null);
    assert_eq!(v["stdout_truncated"], true);
    assert_eq!(v["stderr_truncated"], false);
    assert_eq!(
        v["stdout"].as_str().expect("stdout is a string"),
        "x".repeat(1024)
    );
}

#[test]
fn passed_through_output_is_cut_at_max_output() {
    let o = run(&[
        "run",
        "--max-output",
        "1K",
        "--",
        "python3",
        "-c",
        "import sys; sys.stdout.write('x' * 1000000)",
    ]);
    assert_code(&o, 137);
    assert_eq!(o.stdout.len(), 1024);
}

#[test]
fn passed_through_output_has_no_default_cap() {
    // More than the 64 MiB that --json (and the library) would keep by default.
    let n = 64 * 1024 * 1024 + 4096;
    let code = format!("import sys; sys.stdout.buffer.write(b'y' * {n})");
    let o = run(&["run", "--", "python3", "-c", &code]);
    assert_code(&o, 0);
    assert_eq!(o.stdout.len(), n);
}

#[test]
fn program_not_found_exits_127_with_a_message() {
    let o = run(&["run", "--", "no-such-program-xyz"]);
    assert_code(&o, 127);
    let e = stderr(&o);
    assert!(e.starts_with("nanobox: "), "{e}");
    assert!(e.contains("no-such-program-xyz"), "{e}");
    assert!(o.stdout.is_empty());
}

#[test]
fn program_not_found_exits_127_also_with_json() {
    let o = run(&["run", "--json", "--", "/no/such/program"]);
    assert_code(&o, 127);
    assert!(stderr(&o).contains("/no/such/program"));
}

#[test]
fn non_executable_program_exits_126() {
    let dir = TempDir::new("noexec");
    std::fs::write(dir.join("script"), "#!/bin/sh\necho ran\n").unwrap();
    // 0644: readable, not executable.
    let f = dir.join("script");
    std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let spec = format!("{}:/box", dir.str());
    let o = run(&["run", "--ro", &spec, "--", "/box/script"]);
    assert_code(&o, 126);
    assert!(stderr(&o).contains("/box/script"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("ran"));
}

#[test]
fn malformed_values_exit_2_naming_the_option_and_nothing_runs() {
    let dir = TempDir::new("malformed");
    let rw = format!("{}:/out", dir.str());
    let cases: &[(&[&str], &str)] = &[
        (&["--timeout", "abc"], "--timeout"),
        (&["--timeout", "0s"], "--timeout"),
        (&["--max-output", "12Q"], "--max-output"),
        (&["--ro", "/a:/b:/c"], "--ro"),
        (&["--ro", "/tmp:relative"], "--ro"),
        (&["--rw", ""], "--rw"),
        (&["--env", "=1"], "--env"),
        (&["--workdir", "relative"], "--workdir"),
        (&["--no-such-option"], "--no-such-option"),
    ];
    for (opts, name) in cases {
        let mut args = vec!["run", "--rw", &rw];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["--", "sh", "-c", "touch /out/ran"]);
        let o = run(&args);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(name), "{opts:?}: {}", stderr(&o));
        assert!(!dir.join("ran").exists(), "{opts:?}: the program ran");
    }
}

#[test]
fn presets_take_their_directories_and_flags_override_them() {
    let sub = TempDir::new("sub");
    std::fs::write(sub.join("answer"), "42\n").unwrap();
    let mut args = vec![
        "run",
        "--preset",
        "judge",
        "--submission",
        sub.str(),
        "--json",
    ];
    if !is_root() {
        // No writable cgroup for uid 65534 here: the judge's limits need the opt-in.
        args.push("--allow-degraded");
    }
    args.extend([
        "--",
        "sh",
        "-c",
        "pwd; cat /submission/answer; touch /submission/x",
    ]);
    let o = run(&args);
    let v = report(&o);
    assert_eq!(v["stdout"], "/tmp\n42\n", "{v}");
    assert_eq!(v["status"], "exited");
    assert!(v["limits"].as_array().unwrap().len() >= 5, "{v}");
    // A flag overrides the preset's value.
    let mut args = vec![
        "run",
        "--preset",
        "judge",
        "--submission",
        sub.str(),
        "--workdir",
        "/submission",
    ];
    if !is_root() {
        args.push("--allow-degraded");
    }
    args.extend(["--", "pwd"]);
    let o = run(&args);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "/submission\n");
    // Missing or misplaced directories are malformed command lines.
    for bad in [
        &["--preset", "judge"][..],
        &["--preset", "data", "--input", "/tmp"],
        &["--workspace", "/tmp"],
        &["--preset", "agent", "--submission", "/tmp"],
        &["--preset", "nonsense"],
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(bad);
        args.extend(["--", "true"]);
        assert_code(&run(&args), 2);
    }
}

#[test]
fn limits_reach_the_json_report() {
    if !is_root() {
        eprintln!("skipped: cgroup limits need root on the test machine (no delegated cgroup)");
        return;
    }
    let o = run(&[
        "run",
        "--json",
        "--memory",
        "64M",
        "--pids",
        "64",
        "--cpus",
        "1",
        "--cpu-time",
        "5s",
        "--file-size",
        "1M",
        "--",
        "python3",
        "-c",
        "x = [bytearray(8 << 20) for i in range(100)]",
    ]);
    assert_code(&o, 137);
    let v = report(&o);
    assert_eq!(v["status"], "memory_limit");
    assert_eq!(v["exit_code"], Value::Null);
    assert!(v["peak_memory_bytes"].as_u64().unwrap() <= 64 << 20);
    assert!(v["cpu_time_ms"].as_f64().unwrap() > 0.0);
    let limits: Vec<String> = v["limits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["limit"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        limits,
        ["memory", "processes", "cpu", "cpu_time", "file_size"]
    );

    let o = run(&[
        "run",
        "--json",
        "--cpu-time",
        "1s",
        "--",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    assert_code(&o, 137);
    assert_eq!(report(&o)["status"], "cpu_time_limit");
}

#[test]
fn allow_net_reports_each_attempt_in_json() {
    let o = run(&[
        "run",
        "--json",
        "--allow-net",
        "*.allowed.test",
        "--allow-net",
        "pypi.org",
        "--",
        "sh",
        "-c",
        "env | grep -c '^HTTPS_PROXY=http://127.0.0.1:3128$'; \
              curl -sS -o /dev/null -w '%{http_code}' http://denied.test/",
    ]);
    assert_code(&o, 0);
    let v = report(&o);
    assert_eq!(v["stdout"], "1\n403");
    let net = v["network"].as_array().unwrap();
    assert_eq!(net.len(), 1, "{net:?}");
    assert_eq!(net[0]["host"], "denied.test");
    assert_eq!(net[0]["port"], 80);
    assert_eq!(net[0]["allowed"], false);
    assert_eq!(net[0]["count"], 1);
    assert_eq!(v["network_truncated"], false);
    assert_eq!(v["network_omitted"], 0);
    // A malformed pattern is a malformed command line; --no-network contradicts --allow-net.
    assert_code(&run(&["run", "--allow-net", "a b", "--", "true"]), 2);
    assert_code(
        &run(&["run", "--no-network", "--allow-net", "a.test", "--", "true"]),
        2,
    );
}

#[test]
fn limit_values_are_checked_on_the_command_line() {
    for (opt, bad) in [
        ("--cpus", "0"),
        ("--cpus", "lots"),
        ("--pids", "0"),
        ("--memory", "1X"),
        ("--cpu-time", "0s"),
    ] {
        let o = run(&["run", opt, bad, "--", "true"]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains(opt), "{}", stderr(&o));
    }
}

#[test]
fn a_killed_caller_s_cgroup_is_swept_by_doctor_clean() {
    if !is_root() {
        eprintln!("skipped: cgroup limits need root on the test machine (no delegated cgroup)");
        return;
    }
    let mut child = nanobox()
        .args(["run", "--pids", "8", "--", "sleep", "100"])
        .spawn()
        .unwrap();
    let prefix = format!("nanobox-{}-", child.id());
    let pids_root = std::path::Path::new("/sys/fs/cgroup/pids");
    let find = || -> Vec<PathBuf> {
        std::fs::read_dir(pids_root)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    if !pids_root.exists() {
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("skipped: no v1 pids hierarchy here (the v2 sweep is covered by unit tests)");
        return;
    }
    let t = Instant::now();
    while find().is_empty() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!find().is_empty(), "the run's cgroup exists while it runs");
    // SIGKILL: the CLI cannot clean up; its sandbox dies with it, its cgroup stays.
    child.kill().unwrap();
    child.wait().unwrap();
    let o = run(&["doctor", "--clean"]);
    assert!(
        stderr(&o).contains("removed stale cgroup"),
        "{}",
        stderr(&o)
    );
    let t = Instant::now();
    while !find().is_empty() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
        let _ = run(&["doctor", "--clean"]);
    }
    assert_eq!(find(), Vec::<PathBuf>::new());
}

#[test]
fn missing_mount_source_is_a_setup_error_125_naming_the_path() {
    let o = run(&["run", "--ro", "/no/such/dir-xyz:/in", "--", "true"]);
    assert_code(&o, 125);
    let e = stderr(&o);
    assert!(e.starts_with("nanobox: "), "{e}");
    assert!(e.contains("/no/such/dir-xyz"), "{e}");
}

#[test]
fn a_symlinked_mount_source_is_refused_with_125_naming_the_link_unless_followed() {
    let dir = TempDir::new("symlinked");
    std::fs::create_dir(dir.join("real")).unwrap();
    std::fs::write(dir.join("real/f"), "target\n").unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("inputs")).unwrap();
    std::os::unix::fs::symlink(dir.join("real"), dir.join("trusted")).unwrap();
    let inputs = format!("{}:/inputs", dir.join("inputs").display());
    let o = run(&["run", "--ro", &inputs, "--", "cat", "/inputs/passwd"]);
    assert_code(&o, 125);
    assert_eq!(stdout(&o), "", "nothing ran");
    let e = stderr(&o);
    assert!(e.starts_with("nanobox: "), "{e}");
    assert!(
        e.contains(&format!("{} -> /etc", dir.join("inputs").display())),
        "{e}"
    );
    assert!(e.contains("--ro-follow"), "{e}");
    let o = run(&["run", "--rw", &inputs, "--", "true"]);
    assert_code(&o, 125);

    // The explicit opt-in mounts the link's target.
    let trusted = format!("{}:/in", dir.join("trusted").display());
    let o = run(&["run", "--ro-follow", &trusted, "--", "cat", "/in/f"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "target\n");
    let o = run(&[
        "run",
        "--rw-follow",
        &trusted,
        "--",
        "sh",
        "-c",
        "echo made > /in/g",
    ]);
    assert_code(&o, 0);
    assert_eq!(
        std::fs::read_to_string(dir.join("real/g")).unwrap(),
        "made\n"
    );
}

#[test]
fn ro_mount_is_readable_and_not_writable() {
    let dir = TempDir::new("ro");
    std::fs::write(dir.join("f"), "original\n").unwrap();
    let spec = format!("{}:/in", dir.str());
    let o = run(&[
        "run",
        "--ro",
        &spec,
        "--",
        "sh",
        "-c",
        "cat /in/f; echo changed > /in/f && echo WROTE; touch /in/new && echo CREATED; true",
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("original\n"), "{out}");
    assert!(!out.contains("WROTE") && !out.contains("CREATED"), "{out}");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("f")).unwrap(),
        "original\n"
    );
    assert!(!dir.join("new").exists());
}

#[test]
fn ro_without_sandbox_path_appears_at_the_host_path() {
    let dir = TempDir::new("samepath");
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/f"), "same\n").unwrap();
    // Absolute HOST: the same path inside.
    let abs = dir.join("sub");
    let abs = abs.to_str().unwrap();
    let o = run(&["run", "--ro", abs, "--", "cat", &format!("{abs}/f")]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "same\n");
    // Relative HOST: its absolute path inside.
    let o = nanobox()
        .current_dir(dir.path())
        .args(["run", "--ro", "sub", "--", "cat", &format!("{abs}/f")])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "same\n");
}

#[test]
fn rw_mount_writes_through_to_the_host() {
    let dir = TempDir::new("rw");
    std::fs::write(dir.join("f"), "old\n").unwrap();
    let spec = format!("{}:/out", dir.str());
    let o = run(&[
        "run",
        "--rw",
        &spec,
        "--",
        "sh",
        "-c",
        "cat /out/f; echo new > /out/f; echo made > /out/g",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "old\n");
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "new\n");
    assert_eq!(std::fs::read_to_string(dir.join("g")).unwrap(), "made\n");
}

#[test]
fn escaped_colon_in_mount_paths() {
    let dir = TempDir::new("colon");
    std::fs::create_dir(dir.join("a:b")).unwrap();
    std::fs::write(dir.join("a:b/f"), "colon\n").unwrap();
    let spec = format!(r"{}/a\:b:/x\:y", dir.str());
    let o = run(&[
        "run",
        "--rw",
        &spec,
        "--",
        "sh",
        "-c",
        "cat /x:y/f; echo back > /x:y/g",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "colon\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("a:b/g")).unwrap(),
        "back\n"
    );
}

#[test]
fn env_arrives_and_the_callers_env_does_not() {
    let o = nanobox()
        .env("NANOBOX_TEST_SECRET", "s3cret-value")
        .args([
            "run",
            "--env",
            "GREETING=hi there",
            "--env",
            "EMPTY=",
            "--",
            "env",
        ])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"GREETING=hi there"), "{out}");
    assert!(lines.contains(&"EMPTY="), "{out}");
    assert!(lines.contains(&"PWD=/tmp"), "{out}");
    assert!(!out.contains("NANOBOX_TEST_SECRET"), "{out}");
    assert!(!out.contains("s3cret-value"), "{out}");
}

#[test]
fn stdin_file_is_fed_to_the_program() {
    let dir = TempDir::new("stdin");
    std::fs::write(dir.join("input"), "line one\nline two\n").unwrap();
    let input = dir.join("input");
    let o = run(&["run", "--stdin", input.to_str().unwrap(), "--", "cat"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "line one\nline two\n");
}

#[test]
fn stdin_is_empty_by_default() {
    // Even when the CLI's own stdin has data, the program reads nothing without --stdin.
    let mut child = Command::new(BIN)
        .args(["run", "--", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    let _ = w.write_all(b"not for the program\n");
    drop(w);
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "0");
}

#[test]
fn stdin_dash_feeds_the_clis_own_stdin() {
    let mut child = Command::new(BIN)
        .args(["run", "--stdin", "-", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut w = child.stdin.take().unwrap();
    w.write_all(b"piped in\n").unwrap();
    drop(w);
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "piped in\n");
}

/// A terminal on stdin is relayed through a pipe, both for `--stdin -` (the library refuses a
/// terminal descriptor) and for a FILE that is a terminal (which the library would hand over as it
/// is: the program could then drive the caller's terminal with ioctls). Drives the CLI through a pseudo-terminal made
/// by a small Python helper on the host.
#[test]
fn stdin_terminal_is_relayed() {
    const HELPER: &str = r#"
import os, subprocess, sys
m, s = os.openpty()
prog = "import os, sys; print(os.isatty(0)); sys.stdout.write(sys.stdin.readline())"
p = subprocess.Popen([sys.argv[1], "run", "--stdin", sys.argv[2], "--", "python3", "-c", prog],
                     stdin=s, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(s)
os.write(m, b"typed line\n")
out, err = p.communicate(timeout=10)
sys.stdout.write("%d|%s|%s" % (p.returncode, out.decode(), err.decode()))
"#;
    for arg in ["-", "/proc/self/fd/0"] {
        let o = Command::new("python3")
            .args(["-c", HELPER, BIN, arg])
            .output()
            .unwrap();
        assert!(o.status.success(), "helper failed: {}", stderr(&o));
        // The program reads the line, and what it reads is not a terminal.
        assert_eq!(stdout(&o), "0|False\ntyped line\n|", "--stdin {arg}");
    }
}

#[test]
fn workdir_sets_cwd_and_pwd() {
    let dir = TempDir::new("workdir");
    let spec = format!("{}:/work", dir.str());
    let o = run(&[
        "run",
        "--rw",
        &spec,
        "--workdir",
        "/work",
        "--",
        "sh",
        "-c",
        "pwd -P; echo $PWD; touch here",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "/work\n/work\n");
    assert!(dir.join("here").exists());
}

#[test]
fn hostname_option_sets_the_hostname() {
    let o = run(&[
        "run",
        "--hostname",
        "box-7",
        "--",
        "cat",
        "/proc/sys/kernel/hostname",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "box-7\n");
}

#[test]
fn no_network_is_accepted_and_only_loopback_exists() {
    let o = run(&[
        "run",
        "--no-network",
        "--",
        "python3",
        "-c",
        "import socket; print([n for _, n in socket.if_nameindex()])",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "['lo']\n");
}

#[test]
fn output_is_streamed_as_it_is_produced() {
    let mut child = Command::new(BIN)
        .args(["run", "--", "sh", "-c", "echo first; sleep 2; echo second"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        tx.send(line).unwrap();
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        rest
    });
    let first = rx
        .recv_timeout(Duration::from_millis(1500))
        .expect("the first line did not arrive while the program was running");
    assert_eq!(first, "first\n");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the CLI had already exited"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(reader.join().unwrap(), "second\n");
}

#[test]
fn stderr_is_passed_through_separately() {
    let o = run(&["run", "--", "sh", "-c", "echo to-out; echo to-err >&2"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "to-out\n");
    assert_eq!(stderr(&o), "to-err\n");
}

#[test]
fn doctor_reports_user_namespaces_and_exits_0() {
    let o = run(&["doctor"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("user namespaces"), "{}", stdout(&o));
}

#[test]
fn doctor_json_is_ready() {
    let o = run(&["doctor", "--json"]);
    assert_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("doctor --json prints JSON");
    assert_eq!(v["ready"], true);
    assert!(v["checks"].as_array().is_some_and(|c| !c.is_empty()));
}

/// An executable file `prog` in a fresh directory whose path has no symlink (the temp dir
/// canonicalized), for `doctor --apparmor-profile`.
fn apparmor_program(tag: &str) -> (TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new(tag);
    let canon = std::fs::canonicalize(dir.path()).unwrap();
    let prog = canon.join("prog");
    std::fs::write(&prog, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, prog)
}

#[test]
fn doctor_apparmor_profile_prints_the_profile_named_after_the_path() {
    let (_dir, prog) = apparmor_program("aa-text");
    let path = prog.to_str().unwrap();
    let o = run(&["doctor", "--apparmor-profile", path]);
    assert_code(&o, 0);
    let name = format!("nanobox.{}", path.trim_start_matches('/').replace('/', "."));
    let text = stdout(&o);
    let rules: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        rules,
        [
            "abi <abi/4.0>,".to_string(),
            "include <tunables/global>".to_string(),
            format!("profile {name} {path} flags=(unconfined) {{"),
            "  userns,".to_string(),
            "  # Rules of this host's own, kept when this file is replaced.".to_string(),
            format!("  include if exists <local/{name}>"),
            "}".to_string(),
        ],
        "{text}"
    );
    // The comments say how to install and load it, at the file the name gives.
    assert!(
        text.contains(&format!("sudo apparmor_parser -r /etc/apparmor.d/{name}\n")),
        "{text}"
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn doctor_apparmor_profile_json_is_one_object_with_the_same_text() {
    let (_dir, prog) = apparmor_program("aa-json");
    let path = prog.to_str().unwrap();
    let plain = run(&["doctor", "--apparmor-profile", path]);
    assert_code(&plain, 0);
    let o = run(&["doctor", "--apparmor-profile", path, "--json"]);
    assert_code(&o, 0);
    let v = report(&o);
    let name = format!("nanobox.{}", path.trim_start_matches('/').replace('/', "."));
    assert_eq!(v["program"], path);
    assert_eq!(v["name"], name.as_str());
    assert_eq!(v["file"], format!("/etc/apparmor.d/{name}").as_str());
    assert_eq!(v["text"], stdout(&plain).as_str());
}

#[test]
fn doctor_apparmor_profile_refuses_paths_it_cannot_attach_to_with_exit_2() {
    let (dir, prog) = apparmor_program("aa-refusals");
    let canon = prog.parent().unwrap().to_path_buf();
    let link = canon.join("link");
    std::os::unix::fs::symlink(&prog, &link).unwrap();
    let data = canon.join("data");
    std::fs::write(&data, "").unwrap();
    let p = |q: &Path| q.to_str().unwrap().to_string();
    let cases: Vec<(String, &str)> = vec![
        ("bin/prog".into(), "is relative"),
        (format!("{}/pr*g", p(&canon)), "glob"),
        (format!("{}/p?", p(&canon)), "glob"),
        (format!("{}/{{a,b}}", p(&canon)), "glob"),
        (format!("{}/pr og", p(&canon)), "whitespace"),
        (format!("{}/a,b", p(&canon)), "end of an AppArmor rule"),
        (format!("{}/a\"b", p(&canon)), "quoting"),
        (format!("{}/a^b", p(&canon)), "hat"),
        (format!("{}/a#b", p(&canon)), "comment"),
        (format!("{}/missing", p(&canon)), "cannot be used"),
        (p(&link), "not the program's own path"),
        (
            format!(
                "{}/../{}/prog",
                p(&canon),
                canon.file_name().unwrap().to_str().unwrap()
            ),
            "not the program's own path",
        ),
        (p(&canon), "not a regular file"),
        (p(&data), "not executable"),
    ];
    for (path, why) in cases {
        let o = run(&["doctor", "--apparmor-profile", &path]);
        assert_code(&o, 2);
        let err = stderr(&o);
        assert!(
            err.starts_with("nanobox: --apparmor-profile: ") && err.contains(why),
            "{path:?}: expected {why:?} in {err}"
        );
        assert!(stdout(&o).is_empty(), "{path:?}: {}", stdout(&o));
    }
    // The refusal names the symlink's target, the path to use.
    let o = run(&["doctor", "--apparmor-profile", &p(&link)]);
    assert!(stderr(&o).contains(&p(&prog)), "{}", stderr(&o));
    // It prints a profile and nothing else: --clean does not go with it.
    let o = run(&["doctor", "--clean", "--apparmor-profile", &p(&prog)]);
    assert_code(&o, 2);
    drop(dir);
}

#[test]
fn doctor_reports_the_apparmor_userns_restriction() {
    let o = run(&["doctor", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("doctor --json prints JSON");
    let checks = v["checks"].as_array().unwrap();
    let line = checks
        .iter()
        .find(|c| c["name"] == "AppArmor user-namespace restriction")
        .unwrap_or_else(|| panic!("no AppArmor line in {v}"));
    assert_eq!(line["required"], true);
    // This kind of host (Debian) has no such sysctl: the line says so and passes.
    if !Path::new("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").exists() {
        assert_eq!(line["status"], "available", "{line}");
        assert!(
            line["detail"]
                .as_str()
                .unwrap()
                .starts_with("not on this kernel"),
            "{line}"
        );
    }
}

#[test]
fn version_and_help() {
    let o = run(&["--version"]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        format!("nanobox {}\n", env!("CARGO_PKG_VERSION"))
    );
    let o = run(&["run", "--help"]);
    assert_code(&o, 0);
    let help = stdout(&o);
    for needle in [
        "EXAMPLES",
        "--max-output",
        "--ro-follow",
        "--rw-follow",
        "137",
        "124",
        "125",
        "126",
        "127",
    ] {
        assert!(help.contains(needle), "run --help lacks {needle}");
    }
    assert_code(&run(&[]), 2);
    assert_code(&run(&["run"]), 2);
}

#[test]
fn runs_as_an_unprivileged_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("unpriv");
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let copy = dir.join("nanobox");
    std::fs::copy(BIN, &copy).unwrap();
    std::fs::set_permissions(&copy, PermissionsExt::from_mode(0o755)).unwrap();
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args(["run", "--", "sh", "-c", "echo ok"])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "ok\n");
}

#[test]
fn refused_option_values_are_malformed_command_lines() {
    let d = TempDir::new("refused");
    let src = d.path().to_str().unwrap();
    for args in [
        vec![
            "run".to_string(),
            "--ro".into(),
            format!("{src}:/etc/x"),
            "--".into(),
            "true".into(),
        ],
        vec![
            "run".into(),
            "--ro".into(),
            format!("{src}:/a"),
            "--rw".into(),
            format!("{src}:/a"),
            "--".into(),
            "true".into(),
        ],
        vec![
            "run".into(),
            "--hostname".into(),
            "a/b".into(),
            "--".into(),
            "true".into(),
        ],
    ] {
        let o = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(String::from_utf8_lossy(&o.stderr).starts_with("nanobox: "));
    }
}

#[test]
fn without_user_namespaces_nothing_runs_and_the_cause_is_named() {
    // Inside a sandbox, nested user namespaces are off (user.max_user_namespaces=0): nanobox run
    // there stands for a host where they are disabled. It must refuse, name the setting, exit 125.
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let o = Command::new(BIN)
        .args([
            "run",
            "--ro",
            &format!("{}:/nb", bin_dir.display()),
            "--",
            "/nb/nanobox",
            "run",
            "--",
            "echo",
            "RAN",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("RAN"));
    assert!(
        err.contains("user namespaces") && err.contains("max_user_namespaces"),
        "{err}"
    );
}

#[test]
fn pool_limit_sets_a_kernel_pool_s_bound_and_a_bad_one_is_a_usage_error() {
    let o = run(&[
        "run",
        "--pool-limit",
        "inotify-instances=3",
        "--pool-limit",
        "ptys=5",
        "--",
        "sh",
        "-c",
        "cat /proc/sys/user/max_inotify_instances; grep -o 'max=[0-9]*' /proc/mounts",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "3\nmax=5\n");
    let o = run(&["run", "--pool-limit", "aio=1", "--", "true"]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("unknown pool"), "{}", stderr(&o));
    let o = run(&["run", "--pool-limit", "ptys", "--", "true"]);
    assert_code(&o, 2);
}

/// `nanobox run --config FILE ARGS` from the directory `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    nanobox()
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("start nanobox")
}

#[test]
fn a_config_file_s_mounts_and_environment_reach_the_program() {
    let dir = TempDir::new("config-run");
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/n.txt"), "42\n").unwrap();
    std::fs::create_dir(dir.join("out")).unwrap();
    std::fs::write(
        dir.join("vars.env"),
        "# comment\nexport FROM_FILE=file value\n",
    )
    .unwrap();
    let conf = dir.join("nanobox.toml");
    std::fs::write(
        &conf,
        "env_file = \"vars.env\"\nworkdir = \"/data\"\n\n[env]\nMODE = \"fast\"\n\n\
         [[mount]]\nhost = \"data\"\nsandbox = \"/data\"\n\n\
         [[mount]]\nhost = \"./out\"\nsandbox = \"/out\"\nmode = \"rw\"\n",
    )
    .unwrap();
    // From another directory: relative paths in the file are the file's directory's.
    let o = run_in(
        Path::new("/"),
        &[
            "run",
            "--config",
            conf.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "cat n.txt; echo \"$MODE|$FROM_FILE|$PWD\"; touch /data/new 2>/dev/null || echo read-only; \
             echo written > /out/f",
        ],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "42\nfast|file value|/data\nread-only\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("out/f")).unwrap(),
        "written\n"
    );
    assert!(!dir.join("data/new").exists());
}

#[test]
fn flags_override_a_config_file_s_values() {
    let dir = TempDir::new("config-override");
    for d in ["a", "b", "sub", "ws"] {
        std::fs::create_dir(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("a/which"), "file mount\n").unwrap();
    std::fs::write(dir.join("b/which"), "flag mount\n").unwrap();
    let conf = dir.join("nanobox.toml");
    std::fs::write(
        &conf,
        "hostname = \"filebox\"\nallow_net = [\"example.org\"]\n[env]\nMODE = \"file\"\nKEEP = \"kept\"\n\
         [limits]\nmemory = \"64M\"\ntimeout = \"1s\"\n[[mount]]\nhost = \"a\"\nsandbox = \"/data\"\n",
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    let show =
        "sleep 1.5; hostname; cat /data/which; echo \"$MODE $KEEP ${HTTPS_PROXY:-no proxy}\"";

    // The file alone: its timeout ends the run.
    let o = run(&["run", "--json", "--config", c, "--", "sh", "-c", show]);
    assert_code(&o, 124);
    assert_eq!(report(&o)["status"], "wall_time_limit");

    // Flags: a longer timeout, another hostname, MODE, a mount at the file mount's path (which
    // replaces it rather than clashing), and --no-network over the file's allow_net.
    let b = format!("{}:/data", dir.join("b").display());
    let o = run(&[
        "run",
        "--json",
        "--config",
        c,
        "--timeout",
        "30s",
        "--hostname",
        "flagbox",
        "--env",
        "MODE=flag",
        "--ro",
        &b,
        "--no-network",
        "--",
        "sh",
        "-c",
        show,
    ]);
    assert_code(&o, 0);
    let v = report(&o);
    assert_eq!(v["status"], "exited");
    assert_eq!(v["stdout"], "flagbox\nflag mount\nflag kept no proxy\n");

    // The file's memory limit holds unless --memory raises it.
    let hog = "x = [bytearray(8 << 20) for i in range(24)]";
    let o = run(&["run", "--json", "--config", c, "--", "python3", "-c", hog]);
    assert_code(&o, 137);
    assert_eq!(report(&o)["status"], "memory_limit");
    let o = run(&[
        "run", "--json", "--config", c, "--memory", "1G", "--", "python3", "-c", hog,
    ]);
    assert_code(&o, 0);

    // A file's preset, its directory from the command line; and --preset replacing the file's.
    let judge = dir.join("judge.toml");
    std::fs::write(&judge, "preset = \"judge\"\n").unwrap();
    let sub = dir.join("sub");
    let o = run(&[
        "run",
        "--config",
        judge.to_str().unwrap(),
        "--submission",
        sub.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "pwd; ls -d /submission",
    ]);
    assert_code(&o, 0);
    assert!(stdout(&o).starts_with("/tmp\n"), "{}", stdout(&o));
    assert!(stdout(&o).ends_with("/submission\n"), "{}", stdout(&o));
    std::fs::write(&judge, "preset = \"judge\"\nsubmission = \"sub\"\n").unwrap();
    let ws = dir.join("ws");
    let o = run(&[
        "run",
        "--config",
        judge.to_str().unwrap(),
        "--preset",
        "agent",
        "--workspace",
        ws.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "pwd; ls -d /submission 2>/dev/null || echo none",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "/workspace\nnone\n");
}

#[test]
fn an_unknown_key_in_a_config_file_is_exit_2_naming_its_line_and_nothing_runs() {
    let dir = TempDir::new("config-unknown");
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let conf = dir.join("nanobox.toml");
    std::fs::write(&conf, "hostname = \"h\"\n[limits]\nmemroy = \"64M\"\n").unwrap();
    let rw = format!("{}:/out", out.display());
    let o = run(&[
        "run",
        "--config",
        conf.to_str().unwrap(),
        "--rw",
        &rw,
        "--",
        "sh",
        "-c",
        "echo RAN; touch /out/ran",
    ]);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains(conf.to_str().unwrap()), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(
        err.contains("`memroy`") && err.contains("`memory`"),
        "{err}"
    );
    assert_eq!(stdout(&o), "");
    assert!(!out.join("ran").exists());

    // A bad value and a missing file are refused the same way.
    std::fs::write(&conf, "[limits]\n\ntimeout = \"soon\"\n").unwrap();
    let o = run(&[
        "run",
        "--config",
        conf.to_str().unwrap(),
        "--",
        "echo",
        "RAN",
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    let missing = dir.join("missing.toml");
    let o = run(&[
        "run",
        "--config",
        missing.to_str().unwrap(),
        "--",
        "echo",
        "RAN",
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("cannot read it"), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}
#[test]
fn pool_limit_flags_add_to_a_config_file_s_pools_and_win_for_the_same_pool() {
    let dir = TempDir::new("config-pools");
    let conf = dir.join("nanobox.toml");
    std::fs::write(
        &conf,
        "[limits]\npools = { inotify_instances = 3, ptys = 7 }\n",
    )
    .unwrap();
    let o = run(&[
        "run",
        "--config",
        conf.to_str().unwrap(),
        "--pool-limit",
        "ptys=5",
        "--",
        "sh",
        "-c",
        "cat /proc/sys/user/max_inotify_instances; grep -o 'max=[0-9]*' /proc/mounts",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "3\nmax=5\n");
}

/// The TOML block after `<!-- config-example -->` in docs/API.md.
fn api_md_config_example() -> String {
    let api = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/API.md"))
        .expect("docs/API.md");
    let after = api
        .split_once("<!-- config-example -->")
        .expect("the marker in docs/API.md")
        .1;
    let body = after.split_once("```toml\n").expect("a toml block").1;
    body.split_once("```")
        .expect("the block's end")
        .0
        .to_string()
}

#[test]
fn the_config_example_of_api_md_runs_as_documented() {
    let dir = TempDir::new("config-doc");
    std::fs::create_dir(dir.join("submission")).unwrap();
    std::fs::write(dir.join("submission/main.sh"), "read n; echo $((n * 2))\n").unwrap();
    std::fs::create_dir(dir.join("tests")).unwrap();
    std::fs::write(dir.join("tests/1.in"), "21\n").unwrap();
    std::fs::write(dir.join("judge.env"), "LANG=C.UTF-8\nJUDGE=1\n").unwrap();
    std::fs::write(dir.join("nanobox.toml"), api_md_config_example()).unwrap();
    let o = run_in(
        dir.path(),
        &[
            "run",
            "--json",
            "--config",
            "nanobox.toml",
            "--",
            "sh",
            "-c",
            "sh /submission/main.sh < /tests/1.in; echo \"$PWD $MODE $JUDGE\"; hostname",
        ],
    );
    assert_code(&o, 0);
    let v = report(&o);
    assert_eq!(v["stdout"], "42\n/tmp fast 1\njudge\n");
}

// --- SIGINT and SIGTERM to the command while a run is in progress ---

/// A background process that rewrites /w/beat every 50 ms: it outlives the program unless the
/// end of the run takes it down.
const HEARTBEAT: &str = "(while :; do date +%s%N > /w/beat; sleep 0.05; done) & ";

/// `nanobox ARGS` started with a directory at /w that the sandbox can write, once the program
/// has written /w/ready (and /w/beat, with HEARTBEAT).
fn started(dir: &TempDir, args: &[&str], script: &str) -> std::process::Child {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mount = format!("{}:/w", dir.str());
    let child = nanobox()
        .args(["run", "--rw", &mount])
        .args(args)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nanobox");
    let deadline = Instant::now() + slow(Duration::from_secs(30));
    let beat = !script.contains("/w/beat") || dir.join("beat").exists();
    while !(dir.join("ready").exists() && (beat || dir.join("beat").exists())) {
        assert!(Instant::now() < deadline, "the program never got ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// Wait for the command (at most `limit`), and collect its output.
fn finish(mut child: std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("nanobox did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

/// Nothing rewrites `beat` any more: no process of the sandbox is left.
fn heartbeat_stopped(beat: &Path) {
    let before = std::fs::read_to_string(beat).unwrap();
    std::thread::sleep(slow(Duration::from_millis(500)));
    assert_eq!(
        std::fs::read_to_string(beat).unwrap(),
        before,
        "a process of the sandbox outlived the command"
    );
}

#[test]
fn sigterm_is_forwarded_and_the_program_s_trap_gives_the_status() {
    let d = TempDir::new("sigterm-trap");
    let script = format!(
        "{HEARTBEAT}trap 'echo trapped > /w/marker; exit 3' TERM; echo > /w/ready; \
         while :; do sleep 0.05; done"
    );
    let child = started(&d, &[], &script);
    send(&child, libc::SIGTERM);
    let o = finish(child, slow(Duration::from_secs(20)));
    assert_code(&o, 3);
    assert_eq!(
        std::fs::read_to_string(d.join("marker")).unwrap(),
        "trapped\n"
    );
    heartbeat_stopped(&d.join("beat"));
}

#[test]
fn a_program_that_ignores_sigterm_is_killed_after_the_stop_timeout_with_143() {
    let d = TempDir::new("sigterm-ignored");
    let script = format!("{HEARTBEAT}trap '' TERM; echo > /w/ready; while :; do sleep 0.05; done");
    let child = started(&d, &["--stop-timeout", "1s"], &script);
    let t = Instant::now();
    send(&child, libc::SIGTERM);
    let o = finish(child, slow(Duration::from_secs(20)));
    let took = t.elapsed();
    assert_code(&o, 143);
    assert!(
        took >= Duration::from_secs(1),
        "killed before the stop timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(1) + slow(Duration::from_secs(3)),
        "killed late: {took:?}"
    );
    heartbeat_stopped(&d.join("beat"));
}

#[test]
fn sigint_kills_a_program_without_a_handler_and_the_status_is_130() {
    let d = TempDir::new("sigint");
    let child = started(&d, &[], "echo > /w/ready; exec sleep 60");
    send(&child, libc::SIGINT);
    let o = finish(child, slow(Duration::from_secs(20)));
    assert_code(&o, 130);
}

#[test]
fn json_reports_the_signal_that_stopped_the_run() {
    let d = TempDir::new("sigint-json");
    let child = started(
        &d,
        &["--json"],
        "echo > /w/ready; echo before; exec sleep 60",
    );
    send(&child, libc::SIGINT);
    let o = finish(child, slow(Duration::from_secs(20)));
    assert_code(&o, 130);
    let r = report(&o);
    // The program itself died of the forwarded SIGINT (it was not killed after a timeout).
    assert_eq!(r["status"], "signaled", "{r}");
    assert_eq!(r["signal"], 2, "{r}");
    assert_eq!(r["stopped_by_signal"], 2, "{r}");
    assert_eq!(r["stdout"], "before\n", "{r}");
    // Without a signal the field is there, null.
    let o = run(&["run", "--json", "--", "true"]);
    assert_code(&o, 0);
    let r = report(&o);
    assert_eq!(r.get("stopped_by_signal"), Some(&Value::Null), "{r}");
}

#[test]
fn stop_timeout_0_kills_at_once_without_forwarding() {
    let d = TempDir::new("stop-0");
    let script = format!(
        "{HEARTBEAT}trap 'echo trapped > /w/marker; exit 0' TERM; echo > /w/ready; \
         while :; do sleep 0.05; done"
    );
    let child = started(&d, &["--json", "--stop-timeout", "0"], &script);
    send(&child, libc::SIGTERM);
    let o = finish(child, slow(Duration::from_secs(20)));
    assert_code(&o, 143);
    let r = report(&o);
    assert_eq!(
        (&r["status"], &r["signal"]),
        (&"signaled".into(), &9.into()),
        "{r}"
    );
    assert_eq!(r["stopped_by_signal"], 15, "{r}");
    assert!(!d.join("marker").exists(), "the program got the signal");
    heartbeat_stopped(&d.join("beat"));
}

#[test]
fn a_second_signal_during_the_stop_timeout_kills_at_once() {
    let d = TempDir::new("second-signal");
    let script =
        format!("{HEARTBEAT}trap '' TERM INT; echo > /w/ready; while :; do sleep 0.05; done");
    let child = started(&d, &["--stop-timeout", "60s"], &script);
    let t = Instant::now();
    send(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    send(&child, libc::SIGINT);
    let o = finish(child, slow(Duration::from_secs(20)));
    assert!(t.elapsed() < Duration::from_secs(60));
    // 128 + the first signal, the one that stopped the run.
    assert_code(&o, 143);
    heartbeat_stopped(&d.join("beat"));
}

#[test]
fn stop_timeout_values_and_help() {
    for bad in ["-1s", "soon", "1x", "0x"] {
        let o = run(&["run", &format!("--stop-timeout={bad}"), "--", "true"]);
        assert_code(&o, 2);
        assert!(stderr(&o).contains("--stop-timeout"), "{}", stderr(&o));
    }
    for good in ["0", "0s", "0ms", "1500ms", "2"] {
        assert_code(&run(&["run", "--stop-timeout", good, "--", "true"]), 0);
    }
    let help = stdout(&run(&["run", "--help"]));
    for needle in ["--stop-timeout", "stopped_by_signal", "130", "143"] {
        assert!(help.contains(needle), "run --help lacks {needle}");
    }
}
