//! Real programs under the default filter: what works outside works inside.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::TempDir;
use nanobox::{Outcome, Permission, Sandbox};

fn sandbox() -> Sandbox {
    Sandbox::builder()
        .wall_time_limit(Duration::from_secs(120))
        .build()
        .unwrap()
}

both!(python_multiprocessing_pool_works, {
    let r = sandbox()
        .run("python3", &["-c", "from multiprocessing import Pool\nwith Pool(4) as p: print(sum(p.map(abs, range(-100, 100))))"])
        .unwrap();
    assert_eq!(
        (r.outcome, r.stdout.as_str()),
        (Outcome::Exited(0), "10000\n"),
        "{r:?}"
    );
});

both!(stdio_reopened_by_name_works, {
    // Scripts write to /dev/stdout and /dev/stderr, which reopen the pipes through /proc/self/fd.
    let r = sandbox()
        .run(
            "sh",
            &[
                "-c",
                "echo out > /dev/stdout; echo err > /dev/stderr; echo more >> /dev/stdout",
            ],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("out\nmore\n", "err\n")
    );
});

both!(shell_pipelines_work, {
    let script = "set -o pipefail; seq 1 1000 | grep 7 | sort -r | head -3 | tr '\\n' ' '; \
                  echo $(( $(yes | head -c 100000 | wc -c) )); ls /usr/bin | wc -l | awk '{print ($1 > 100)}'";
    let host = std::process::Command::new("bash")
        .args(["-c", script])
        .output()
        .unwrap();
    let r = sandbox().run("bash", &["-c", script]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(
        r.stdout,
        String::from_utf8_lossy(&host.stdout),
        "same output inside and outside"
    );
    assert!(r.stdout.starts_with("997 987 979 100000\n"), "{r:?}");
});

both!(gcc_compiles_and_runs_inside, {
    let d = TempDir::new();
    std::fs::write(
        d.join("hello.c"),
        "#include <stdio.h>\nint main(void){ puts(\"compiled inside\"); return 3; }\n",
    )
    .unwrap();
    let sb = Sandbox::builder()
        .mount(d.path(), "/src", Permission::ReadOnly)
        .wall_time_limit(Duration::from_secs(120))
        .build()
        .unwrap();
    let r = sb
        .run(
            "sh",
            &["-c", "gcc -O2 -o /tmp/hello /src/hello.c && /tmp/hello"],
        )
        .unwrap();
    assert_eq!(
        (r.outcome, r.stdout.as_str()),
        (Outcome::Exited(3), "compiled inside\n"),
        "{r:?}"
    );
});

/// Failing test cases of a verbose `python3 -m test` run.
fn failures(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter(|l| l.starts_with("FAIL: ") || l.starts_with("ERROR: "))
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn cpython_regression_tests_pass_inside_as_outside() {
    if !std::path::Path::new("/usr/lib/python3.11/test/test_os.py").exists() {
        eprintln!(
            "skipped: Debian's libpython3.11-testsuite is not installed (.ci/run installs it)"
        );
        return;
    }
    let suites = [
        "test_os",
        "test_subprocess",
        "test_tempfile",
        "test_shutil",
        "test_threading",
        "test_json",
    ];
    let mut args = vec!["-m", "test", "-v"];
    args.extend(suites);
    // Outside: as an unprivileged user, which the sandboxed program also is.
    let mut outside = std::process::Command::new(if common::is_root() { "setpriv" } else { "env" });
    if common::is_root() {
        outside.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env"]);
    }
    let outside = outside
        .args(["HOME=/tmp", "/usr/bin/python3"])
        .args(&args)
        .current_dir("/tmp")
        .output()
        .unwrap();
    let outside = failures(&String::from_utf8_lossy(&outside.stdout));
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_secs(600))
        .build()
        .unwrap();
    let inside = sb.run("python3", &args).unwrap();
    assert!(
        !matches!(inside.outcome, Outcome::WallTimeLimit),
        "{inside}"
    );
    assert!(
        inside.stdout.contains("Total duration"),
        "the suites ran: {}",
        inside.stderr
    );
    // No exceptions: chown and set*id to an id the program does not hold answer EPERM inside
    // as outside (the kernel alone would say EINVAL for an id the user namespace does not map).
    let new: Vec<_> = failures(&inside.stdout)
        .difference(&outside)
        .cloned()
        .collect();
    assert!(new.is_empty(), "failures inside the sandbox only: {new:#?}");
}
