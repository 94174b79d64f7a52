//! `nanobox run --explain [--platform ...]`: what a run would do, printed, with nothing run.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::process::{Command, Output, Stdio};

use common::{assert_code, text, TempDir, BIN};
use serde_json::Value;

fn nanobox(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .current_dir("/tmp")
        .output()
        .expect("start nanobox")
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", text(&o.stdout)))
}

#[test]
fn explain_for_macos_prints_the_profile_and_argv_and_runs_nothing() {
    let d = TempDir::new("explain", "macos");
    let marker = d.join("ran");
    let script = format!("touch {}", marker.display());
    let o = nanobox(&[
        "run",
        "--explain",
        "--platform",
        "macos",
        "--preset",
        "judge",
        "--submission",
        "/Users/nobody/not-here",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_code(&o, 0);
    let out = text(&o.stdout);
    assert!(out.contains("nanobox run on macOS"), "{out}");
    assert!(out.contains("Seatbelt profile:"), "{out}");
    assert!(out.contains("/usr/bin/sandbox-exec"), "{out}");
    assert!(
        out.contains("/Users/nobody/not-here -> /Users/nobody/not-here read-only"),
        "{out}"
    );
    assert!(
        out.contains("NANOBOX_SUBMISSION=/Users/nobody/not-here"),
        "{out}"
    );
    assert!(!marker.exists(), "--explain ran the program");

    let o = nanobox(&[
        "run",
        "--explain",
        "--platform",
        "macos",
        "--json",
        "--",
        "echo",
        "hi",
    ]);
    assert_code(&o, 0);
    let v = json(&o);
    assert_eq!(v["platform"], "macos");
    assert_eq!(v["program"], "echo");
    assert_eq!(v["args"][0], "hi");
    assert!(v["macos"]["profile"]
        .as_str()
        .is_some_and(|p| !p.is_empty()));
    let argv = v["macos"]["argv"].as_array().unwrap();
    assert_eq!(argv[0], "/usr/bin/sandbox-exec");
    assert_eq!(argv[argv.len() - 2..], ["echo", "hi"]);
}

#[test]
fn explain_for_linux_shows_the_mount_plan_seccomp_and_limits() {
    let d = TempDir::new("explain", "linux");
    let o = nanobox(&[
        "run",
        "--explain",
        "--platform",
        "linux",
        "--ro",
        &format!("{}:/data", d.str()),
        "--memory",
        "64M",
        "--json",
        "--",
        "ls",
        "/data",
    ]);
    assert_code(&o, 0);
    let v = json(&o);
    assert_eq!(v["platform"], "linux");
    assert_eq!(v["mounts"][0]["sandbox"], "/data");
    assert_eq!(v["mounts"][0]["permission"], "ReadOnly");
    assert!(v["linux"]["namespaces"].as_array().unwrap().len() >= 7);
    assert!(v["linux"]["seccomp"]["rules"].is_array());
    let limits = v["limits"].as_array().unwrap();
    let mem = limits
        .iter()
        .find(|l| l["limit"] == "memory_limit")
        .unwrap();
    assert_eq!(mem["value"], "64M");
    // Without --platform, the host's.
    let o = nanobox(&["run", "--explain", "--", "true"]);
    assert_code(&o, 0);
    assert!(
        text(&o.stdout).starts_with("nanobox run on Linux: true"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("seccomp:"));
}

#[test]
fn explain_for_windows_shows_the_job_object() {
    let o = nanobox(&[
        "run",
        "--explain",
        "--platform",
        "windows",
        "--pids",
        "8",
        "--",
        "cmd",
    ]);
    assert_code(&o, 0);
    let out = text(&o.stdout);
    assert!(
        out.contains("JOB_OBJECT_LIMIT_ACTIVE_PROCESS (ActiveProcessLimit = 8)"),
        "{out}"
    );
    assert!(out.contains("PROC_THREAD_ATTRIBUTE_HANDLE_LIST"), "{out}");
}

#[test]
fn a_policy_the_platform_refuses_is_the_usual_error() {
    // macOS cannot show a host path elsewhere: a refused option, exit status 2.
    let o = nanobox(&[
        "run",
        "--explain",
        "--platform",
        "macos",
        "--ro",
        "/Users/me/data:/data",
        "--",
        "ls",
    ]);
    assert_code(&o, 2);
    let err = text(&o.stderr);
    assert!(err.contains("its own path"), "{err}");
    let o = nanobox(&[
        "run",
        "--explain",
        "--platform",
        "macos",
        "--json",
        "--ro",
        "/Users/me/data:/data",
        "--",
        "ls",
    ]);
    assert_code(&o, 2);
    assert_eq!(json(&o)["kind"], "invalid_sandbox_path");
    // For this host the mount source is checked for real: a missing one is a setup error.
    let o = nanobox(&[
        "run",
        "--explain",
        "--ro",
        "/definitely/not/here:/data",
        "--",
        "ls",
    ]);
    assert_code(&o, 125);
    // --platform needs --explain, and a name it knows.
    assert_code(&nanobox(&["run", "--platform", "macos", "--", "true"]), 2);
    assert_code(
        &nanobox(&["run", "--explain", "--platform", "beos", "--", "true"]),
        2,
    );
}
