//! The CLI's verdict for a memory bomb under the degraded memory limit (`--allow-degraded-limits`
//! without a writable cgroup: `RLIMIT_AS`): the memory limit's exit status and message, as with a
//! cgroup. Run as root and as uid 65534 in a mount namespace of their own whose cgroup mounts are
//! unmounted (the host's are untouched), where no cgroup is writable for either.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::process::Output;

use common::{assert_code, is_root, text, Who};
use serde_json::Value;

const BOMB: &str = "a = []\nwhile True:\n    a.append(' ' * 10**6)\n";

/// `nanobox ARGS` run by `who` where no cgroup is writable.
fn without_cgroups(who: Who, args: &[&str]) -> Output {
    common::without_cgroups(who)
        .arg(common::nanobox_copy())
        .args(args)
        .current_dir("/tmp")
        .output()
        .unwrap()
}

#[test]
fn a_memory_bomb_under_rlimit_as_is_reported_as_the_memory_limit() {
    if !is_root() {
        eprintln!("skipped: hiding the cgroups (a mount namespace) needs root");
        return;
    }
    for who in [Who::Root, Who::User] {
        // The strict run is refused: no cgroup here.
        let o = without_cgroups(who, &["run", "--memory", "64M", "--", "true"]);
        assert_code(&o, 125);
        let o = without_cgroups(
            who,
            &[
                "run",
                "--allow-degraded-limits",
                "--memory",
                "64M",
                "--",
                "python3",
                "-c",
                BOMB,
            ],
        );
        assert_code(&o, 137);
        let err = text(&o.stderr);
        assert!(err.contains("MemoryError"), "{who:?}: {err}");
        assert!(
            err.lines()
                .any(|l| l == "nanobox: the program was stopped by the memory limit (--memory 64M)"),
            "{who:?}: {err}"
        );
        // The report names the mechanism, and what it refused.
        let o = without_cgroups(
            who,
            &[
                "run",
                "--json",
                "--allow-degraded-limits",
                "--memory",
                "64M",
                "--",
                "python3",
                "-c",
                BOMB,
            ],
        );
        assert_code(&o, 137);
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["status"], "memory_limit", "{who:?}: {r:#}");
        let mech = r["limits"][0]["mechanism"].as_str().unwrap_or_default();
        assert!(mech.starts_with("RLIMIT_AS"), "{who:?}: {r:#}");
        let refused = r["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .any(|d| d.contains("RLIMIT_AS (67108864 bytes) refused a request of"));
        assert!(refused, "{who:?}: {r:#}");
    }
}
