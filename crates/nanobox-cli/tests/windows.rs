//! `nanobox.exe` on Windows: run under Wine in CI (`.ci/run`), and on Windows
//! (`.github/workflows/windows.yml`). The long-running program is this test binary itself
//! (`child_sleep`, selected by `NANOBOX_CLI_CHILD`), its directory mounted read-only.
#![cfg(windows)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nanobox");

fn under_wine() -> bool {
    // Wine's ntdll exports wine_get_version; its registry names the Wine version too.
    std::env::var_os("WINEPREFIX").is_some()
        || Command::new("reg")
            .args(["query", "HKCU\\Software\\Wine"])
            .output()
            .is_ok_and(|o| o.status.success())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn nanobox(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("nanobox.exe runs")
}

/// The options every run here takes: no AppContainer under Wine (it has none).
fn isolation() -> Vec<&'static str> {
    if under_wine() {
        vec!["--allow-degraded-isolation"]
    } else {
        vec![]
    }
}

fn me() -> (PathBuf, String) {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().display().to_string();
    (exe, dir)
}

#[test]
fn child_sleep() {
    if let Ok(ms) = std::env::var("NANOBOX_CLI_CHILD") {
        println!("sleeping");
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
        println!("woke");
        std::process::exit(0);
    }
}

#[test]
fn run_prints_the_program_s_output() {
    let mut a = isolation();
    a.splice(0..0, ["run"]);
    a.extend(["--timeout", "2s", "--", "cmd", "/c", "echo hello"]);
    let o = nanobox(&a);
    assert_eq!(text(&o.stdout), "hello\r\n", "{}", text(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
}

#[test]
fn a_program_past_the_wall_clock_limit_ends_with_124() {
    let (exe, dir) = me();
    let exe = exe.display().to_string();
    let mut a = vec!["run"];
    a.extend(isolation());
    a.extend([
        "--ro",
        &dir,
        "--env",
        "NANOBOX_CLI_CHILD=30000",
        "--timeout",
        "1s",
        "--",
        &exe,
        "child_sleep",
        "--exact",
        "--nocapture",
    ]);
    let t = Instant::now();
    let o = nanobox(&a);
    assert_eq!(o.status.code(), Some(124), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("sleeping"), "{}", text(&o.stdout));
    assert!(!text(&o.stdout).contains("woke"), "{}", text(&o.stdout));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn json_names_the_job_object_limits() {
    let mut a = vec!["run", "--json"];
    a.extend(isolation());
    a.extend(["--memory", "256M", "--pids", "16"]);
    if under_wine() {
        // Wine takes the limits and enforces none: refused without the opt-in.
        let mut refused = a.clone();
        refused.extend(["--", "cmd", "/c", "echo hi"]);
        let o = nanobox(&refused);
        assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("enforces none"),
            "{}",
            text(&o.stderr)
        );
        a.push("--allow-degraded-limits");
    }
    a.extend(["--", "cmd", "/c", "echo hi"]);
    let o = nanobox(&a);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["stdout"], "hi\r\n", "{v}");
    assert_eq!(v["status"], "exited", "{v}");
    let limits = v["limits"].to_string();
    assert!(limits.contains("JobMemoryLimit"), "{limits}");
    assert!(limits.contains("ActiveProcessLimit"), "{limits}");
    assert_eq!(v["accounting"], "job object", "{v}");
    if under_wine() {
        assert!(v["degraded"].to_string().contains("not enforced"), "{v}");
    }
}

#[test]
fn what_windows_cannot_do_is_refused_with_125() {
    // A per-file size limit does not exist on Windows.
    let mut a = vec!["run"];
    a.extend(isolation());
    a.extend(["--file-size", "1M", "--", "cmd", "/c", "echo no"]);
    let o = nanobox(&a);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("per-file size limit"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
    if under_wine() {
        // No AppContainer: the default (no network) is refused without the opt-in.
        let o = nanobox(&["run", "--", "cmd", "/c", "echo no"]);
        assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("AppContainer"),
            "{}",
            text(&o.stderr)
        );
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn doctor_lists_the_windows_checks() {
    let o = nanobox(&["doctor", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let names = v["checks"].to_string();
    for want in [
        "job objects",
        "restricted low-integrity token",
        "AppContainer",
    ] {
        assert!(names.contains(want), "{want}: {names}");
    }
}
