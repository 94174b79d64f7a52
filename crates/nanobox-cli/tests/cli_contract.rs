//! The command line as a new user meets it: the help is the whole contract (checked against what
//! the code really produces), `--json` never leaves a script parsing prose, Docker-style short
//! flags, the split degraded opt-ins, and generated completions and manual page.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{assert_code, assert_short_error, is_root, send, text, wait_for, TempDir, BIN};
use serde_json::Value;

fn nanobox(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .current_dir("/tmp")
        .output()
        .expect("start nanobox")
}

/// A run the memory limit ends (200 MiB asked for under 32 MiB), and one the CPU-time limit ends.
const MEMORY_KILL: &[&str] = &[
    "run",
    "--memory",
    "32M",
    "--",
    "python3",
    "-c",
    "x = bytearray(200 << 20)",
];
const CPU_TIME_KILL: &[&str] = &[
    "run",
    "--cpu-time",
    "1s",
    "--",
    "sh",
    "-c",
    "while :; do :; done",
];

fn temp(tag: &str) -> TempDir {
    TempDir::new("contract", tag)
}

/// Every object key anywhere in `v`.
fn keys(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", text(&o.stdout)))
}

/// The section of `run --help` that starts with `heading`, up to the next unindented heading.
fn section<'a>(help: &'a str, heading: &str) -> &'a str {
    let start = help
        .find(&format!("\n{heading}"))
        .unwrap_or_else(|| panic!("no {heading} section"))
        + 1;
    let body = &help[start..];
    let mut offset = 0;
    for (i, line) in body.split_inclusive('\n').enumerate() {
        if i > 0 && line.starts_with(|c: char| c.is_ascii_uppercase()) {
            return &body[..offset];
        }
        offset += line.len();
    }
    body
}

#[test]
fn run_help_names_every_status_field_and_exit_status_the_code_produces() {
    if !is_root() {
        eprintln!("skipped: the memory and CPU-time runs need a writable cgroup (root here)");
        return;
    }
    let help = text(&nanobox(&["run", "--help"]).stdout);
    let output = section(&help, "OUTPUT:");
    let exit = section(&help, "EXIT STATUS");

    // Every status the library can report, and the setup error's.
    for status in nanobox::Outcome::STATUSES.iter().chain(&["setup_error"]) {
        assert!(
            output.contains(&format!("\"{status}\"")),
            "run --help's OUTPUT does not name the status {status:?}"
        );
    }

    // Every field of real reports: a run with limits and a refused request through the proxy
    // (so that the limits and network entries have their fields), and a setup error.
    let dir = temp("fields");
    let full = nanobox(&[
        "run",
        "--json",
        "--memory",
        "64M",
        "--pids",
        "32",
        "--allow-net",
        "allowed.test",
        "--",
        "sh",
        "-c",
        "curl -s -o /dev/null http://refused.test/; true",
    ]);
    assert_code(&full, 0);
    let setup = nanobox(&["run", "--json", "--ro", "/no/such/dir", "--", "true"]);
    assert_code(&setup, 125);
    let mut fields = BTreeSet::new();
    keys(&json(&full), &mut fields);
    keys(&json(&setup), &mut fields);
    for must in [
        "network",
        "limits",
        "mechanism",
        "bytes_up",
        "kind",
        "message",
    ] {
        assert!(
            fields.contains(must),
            "the sample reports lack {must}: {fields:?}"
        );
    }
    for field in &fields {
        let named = output.contains(&format!("\"{field}\""))
            || output
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|w| w == field);
        assert!(
            named,
            "run --help's OUTPUT does not describe the field {field:?}"
        );
    }
    drop(dir);

    // Every exit status the command gives for its own reasons, produced for real.
    let produced: &[(&str, &[&str])] = &[
        ("124", &["run", "--timeout", "200ms", "--", "sleep", "5"]),
        ("137", MEMORY_KILL),
        ("137", CPU_TIME_KILL),
        (
            "137",
            &[
                "run",
                "--max-output",
                "10",
                "--",
                "sh",
                "-c",
                "yes | head -c 100000",
            ],
        ),
        ("125", &["run", "--ro", "/no/such/dir", "--", "true"]),
        ("126", &["run", "--", "/etc/hostname"]),
        ("127", &["run", "--", "no-such-program-xyz"]),
        ("2", &["run", "--memory", "lots", "--", "true"]),
    ];
    for (code, args) in produced {
        let o = nanobox(args);
        assert_eq!(
            o.status.code().map(|c| c.to_string()).as_deref(),
            Some(*code),
            "{args:?}: {}",
            text(&o.stderr)
        );
        assert!(
            exit.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code} "))),
            "run --help's EXIT STATUS does not list {code} ({args:?})"
        );
    }
    // A program killed by a signal: 128+N, which the help lists as such.
    let killed = nanobox(&["run", "--", "sh", "-c", "kill -TERM $$"]);
    assert_code(&killed, 128 + 15);
    assert!(exit.contains("128+N"), "{exit}");
}

#[test]
fn with_json_a_setup_failure_is_one_json_object_and_stderr_keeps_the_text() {
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--ro", "/no/such/dir"], 125, "mount_source_missing"),
        (&["--ro", "/tmp:/proc"], 2, "reserved_path"),
        (&["--preset", "agent"], 2, "invalid_option"),
    ];
    for (opts, code, kind) in cases {
        let mut args = vec!["run", "--json"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["--", "true"]);
        let o = nanobox(&args);
        assert_code(&o, *code);
        let stdout = text(&o.stdout);
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        let r = json(&o);
        assert_eq!(r["status"], "setup_error", "{r}");
        assert_eq!(r["kind"], *kind, "{r}");
        assert!(r["exit_code"].is_null() && r["signal"].is_null(), "{r}");
        let message = r["message"].as_str().unwrap();
        assert_eq!(
            text(&o.stderr).trim_end(),
            format!("nanobox: {message}"),
            "stderr has the same text"
        );
    }
    // A program that cannot be started is a setup error too, with its own exit status.
    let o = nanobox(&["run", "--json", "--", "no-such-program-xyz"]);
    assert_code(&o, 127);
    assert_eq!(json(&o)["kind"], "program_not_found");
}

#[test]
fn a_memory_or_cpu_time_kill_says_which_limit_ended_the_run() {
    if !is_root() {
        eprintln!("skipped: the limits need a writable cgroup (root here)");
        return;
    }
    let o = nanobox(MEMORY_KILL);
    assert_code(&o, 137);
    let last = text(&o.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        last,
        "nanobox: the program was stopped by the memory limit (--memory 32M)"
    );
    let o = nanobox(CPU_TIME_KILL);
    assert_code(&o, 137);
    assert_eq!(
        text(&o.stderr).trim_end(),
        "nanobox: the program was stopped by the CPU-time limit (--cpu-time 1s)"
    );
    // A preset's limit is named as the preset's.
    let sub = temp("judge");
    let o = nanobox(&[
        "run",
        "--preset",
        "judge",
        "--submission",
        sub.str(),
        "--cpu-time",
        "1s",
        "--",
        "python3",
        "-c",
        "x = bytearray(400 << 20)",
    ]);
    assert_code(&o, 137);
    assert!(
        text(&o.stderr).contains("stopped by the memory limit (the judge preset's)"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn short_flags_work_as_docker_users_expect_and_volumes_are_read_only_by_default() {
    let dir = temp("volume");
    std::fs::write(dir.0.as_path().join("in.txt"), "data\n").unwrap();
    let ro = format!("{}:/v", dir.str());
    let rw = format!("{}:/v:rw", dir.str());

    // -v without a mode: readable, not writable.
    let o = nanobox(&[
        "run",
        "-v",
        &ro,
        "--",
        "sh",
        "-c",
        "cat /v/in.txt; touch /v/new",
    ]);
    assert_eq!(text(&o.stdout), "data\n");
    assert_ne!(
        o.status.code(),
        Some(0),
        "the write went through a read-only -v"
    );
    assert!(!dir.0.as_path().join("new").exists());
    // :ro says the same explicitly; :rw writes through to the host.
    let o = nanobox(&["run", "-v", &format!("{ro}:ro"), "--", "touch", "/v/new"]);
    assert_ne!(o.status.code(), Some(0));
    let o = nanobox(&["run", "-v", &rw, "--", "sh", "-c", "echo out > /v/new"]);
    assert_code(&o, 0);
    assert_eq!(
        std::fs::read_to_string(dir.0.as_path().join("new")).unwrap(),
        "out\n"
    );
    // A mode that is neither is refused, and nothing runs.
    let o = nanobox(&["run", "-v", &format!("{ro}:rx"), "--", "touch", "/v/bad"]);
    assert_code(&o, 2);
    assert!(!dir.0.as_path().join("bad").exists());

    // -e KEY=VALUE sets, -e NAME passes this command's value (and nothing when it has none),
    // -w sets the working directory, -i passes stdin through.
    let mut c = Command::new(BIN);
    c.args([
        "run",
        "-e",
        "SET=1",
        "-e",
        "PASSED",
        "-e",
        "NOT_SET_ANYWHERE",
        "-w",
        "/v",
        "-v",
        &ro,
        "-i",
        "--",
        "sh",
        "-c",
        "echo \"$SET|$PASSED|${NOT_SET_ANYWHERE-unset}|$PWD\"; cat",
    ])
    .env("PASSED", "from caller")
    .env_remove("NOT_SET_ANYWHERE")
    .current_dir("/tmp")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 0);
    assert_eq!(text(&o.stdout), "1|from caller|unset|/v\ntyped\n");
    // Without -e NAME the caller's variable stays outside.
    let o = Command::new(BIN)
        .args(["run", "--", "sh", "-c", "echo ${PASSED-absent}"])
        .env("PASSED", "from caller")
        .output()
        .unwrap();
    assert_eq!(text(&o.stdout), "absent\n");
}

#[test]
fn durations_take_compound_forms() {
    let o = nanobox(&["run", "--json", "--timeout", "1m30s", "--", "true"]);
    assert_code(&o, 0);
    let o = nanobox(&["run", "--timeout", "200ms", "--", "sleep", "5"]);
    assert_code(&o, 124);
    assert!(text(&o.stderr).contains("200ms"), "{}", text(&o.stderr));
    for bad in ["30s1m", "1m30", "1m 30s"] {
        let o = nanobox(&["run", "--timeout", bad, "--", "true"]);
        assert_code(&o, 2);
        assert!(text(&o.stderr).contains("--timeout"), "{bad}");
    }
}

#[test]
fn a_relative_program_on_the_host_gets_the_way_to_mount_it() {
    let dir = temp("relprog");
    std::fs::copy("/bin/true", dir.0.as_path().join("a.out")).unwrap();
    let o = Command::new(BIN)
        .args(["run", "--", "./a.out"])
        .current_dir(dir.0.as_path())
        .output()
        .unwrap();
    assert_code(&o, 127);
    let e = text(&o.stderr);
    assert!(
        e.contains("--ro .:/w --workdir /w -- /w/a.out"),
        "no mount hint: {e}"
    );
    assert!(e.lines().count() <= 3, "{e}");
    // And the hint works.
    let o = Command::new(BIN)
        .args(["run", "--ro", ".:/w", "--workdir", "/w", "--", "/w/a.out"])
        .current_dir(dir.0.as_path())
        .output()
        .unwrap();
    assert_code(&o, 0);
    // A program that is not on the host either gets no such hint.
    let o = Command::new(BIN)
        .args(["run", "--", "./missing"])
        .current_dir(dir.0.as_path())
        .output()
        .unwrap();
    assert_code(&o, 127);
    assert!(!text(&o.stderr).contains("--ro ."), "{}", text(&o.stderr));
}

/// As uid 65534, which has no writable cgroup on this host: the two opt-ins are separate.
#[test]
fn degraded_limits_and_degraded_isolation_are_separate_opt_ins() {
    if !is_root() {
        eprintln!("skipped: needs root to run the CLI as uid 65534 through setpriv");
        return;
    }
    let as_nobody = |extra: &[&str]| {
        let mut args = vec![
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "run",
            "--json",
            "--memory",
            "64M",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "true"]);
        Command::new("setpriv")
            .args(&args)
            .current_dir("/tmp")
            .output()
            .unwrap()
    };
    let plain = as_nobody(&[]);
    if plain.status.code() == Some(0) {
        eprintln!("skipped: uid 65534 has a writable cgroup here, so no limit is degraded");
        return;
    }
    assert_code(&plain, 125);
    // The isolation opt-in does not allow weaker limits.
    let iso = as_nobody(&["--allow-degraded-isolation"]);
    assert_code(&iso, 125);
    assert_eq!(json(&iso)["kind"], "host_unsupported");
    // The limits opt-in does, and the report says how the limit was enforced.
    let lim = as_nobody(&["--allow-degraded-limits"]);
    assert_code(&lim, 0);
    let r = json(&lim);
    let mech = r["limits"][0]["mechanism"].as_str().unwrap_or_default();
    assert!(mech.contains("RLIMIT"), "{r}");
    // The old flag is both.
    assert_code(&as_nobody(&["--allow-degraded"]), 0);
}

#[test]
fn completions_and_the_manual_page_are_generated_from_the_options() {
    for shell in ["bash", "zsh", "fish"] {
        let o = nanobox(&["completions", shell]);
        assert_code(&o, 0);
        let script = text(&o.stdout);
        for word in ["memory", "allow-degraded-limits", "volume", "doctor"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let o = nanobox(&["completions", "powershell"]);
    assert_code(&o, 2);

    let o = nanobox(&["man"]);
    assert_code(&o, 0);
    let page = text(&o.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH nanobox 1"),
        "not roff"
    );
    for part in [
        "NANOBOX RUN",
        "NANOBOX DOCTOR",
        "EXIT STATUS",
        "\\-\\-memory",
        "setup_error",
    ] {
        assert!(page.contains(part), "the manual page lacks {part}");
    }
    // It is a page man can render.
    if Path::new("/usr/bin/man").exists() {
        let f = std::env::temp_dir().join(format!("nanobox-{}.1", std::process::id()));
        std::fs::write(&f, &page).unwrap();
        let shown = Command::new("man")
            .arg("-l")
            .arg(&f)
            .env("MANPAGER", "cat")
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&f);
        assert_code(&shown, 0);
        assert!(text(&shown.stdout).contains("NANOBOX RUN"));
    }
}

#[test]
fn every_refusal_is_at_most_three_short_lines() {
    let dir = temp("short");
    let link = dir.0.as_path().join("link");
    std::os::unix::fs::symlink("/etc", &link).unwrap();
    let link_spec = link.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &["--ro", link_spec],
        &["--ro", "/no/such/dir"],
        &["--ro", "/tmp:/etc"],
        &["--ro", "/tmp:/a", "--ro", "/usr:/a"],
        &["--allow-net", "bad..pattern"],
        &["--preset", "judge"],
        &["--workspace", "/tmp"],
    ];
    for extra in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "true"]);
        let o = nanobox(&args);
        assert_ne!(o.status.code(), Some(0), "{extra:?} ran");
        assert_short_error(&o, &format!("{extra:?}"));
    }
    for program in ["no-such-program-xyz", "/etc/hostname"] {
        let o = nanobox(&["run", "--", program]);
        assert_short_error(&o, program);
    }
    // Limits an unprivileged user without a delegated cgroup cannot have (this host's uid 65534).
    if is_root() {
        for limit in [
            &["--memory", "64M"][..],
            &["--pids", "10"],
            &["--cpus", "0.5"],
            &["--cpu-time", "1s"],
        ] {
            let mut args = vec![
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                BIN,
                "run",
            ];
            args.extend_from_slice(limit);
            args.extend_from_slice(&["--", "true"]);
            let o = Command::new("setpriv")
                .args(&args)
                .current_dir("/tmp")
                .output()
                .unwrap();
            if o.status.code() == Some(0) {
                continue; // a writable cgroup here: nothing refused
            }
            assert_code(&o, 125);
            assert_short_error(&o, &format!("{limit:?} as uid 65534"));
            let e = text(&o.stderr);
            assert!(
                !e.contains("Falling back"),
                "claims a fallback that did not happen: {e}"
            );
            assert!(
                e.contains("--allow-degraded-limits") && e.contains("nanobox doctor"),
                "{e}"
            );
            // Why no delegated scope could be had either (no user manager runs here).
            assert!(e.contains("systemd user manager"), "{e}");
            // doctor agrees: runs start, this limit is refused, and it says so in its verdict.
            let d = Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    BIN,
                    "doctor",
                ])
                .current_dir("/tmp")
                .output()
                .unwrap();
            let d = text(&d.stdout);
            let verdict = d.lines().last().unwrap_or_default();
            let option = match limit[0] {
                "--memory" => "memory_limit",
                "--pids" => "process_limit",
                "--cpus" => "cpu_limit",
                _ => "cpu_time_limit",
            };
            assert!(
                verdict.starts_with("ready, except") && verdict.contains(option),
                "doctor's verdict does not name the refused {option}: {verdict}"
            );
        }
    }
}

#[test]
fn env_file_sets_its_variables_and_env_flags_override_them() {
    let dir = temp("envfile");
    let file = dir.join("vars.env");
    std::fs::write(
        &file,
        "# settings\nA=1\nexport B=two words\n\nC=\"kept quotes\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = nanobox(&[
        "run",
        "--env-file",
        f,
        "-e",
        "A=flag",
        "--",
        "sh",
        "-c",
        "echo \"$A|$B|$C\"",
    ]);
    assert_code(&o, 0);
    assert_eq!(text(&o.stdout), "flag|two words|\"kept quotes\"\n");
    // A malformed line is a malformed command line naming the file and the line; nothing runs.
    std::fs::write(&file, "A=1\nnot a pair\n").unwrap();
    let o = nanobox(&["run", "--env-file", f, "--", "sh", "-c", "echo RAN"]);
    assert_code(&o, 2);
    assert!(!text(&o.stdout).contains("RAN"));
    let e = text(&o.stderr);
    assert!(e.contains("--env-file") && e.contains("line 2"), "{e}");
    let o = nanobox(&["run", "--env-file", "/no/such/file", "--", "true"]);
    assert_code(&o, 2);
}

#[test]
fn a_refused_config_file_is_a_setup_error_of_kind_config_with_json() {
    let dir = temp("config");
    let file = dir.join("nanobox.toml");
    std::fs::write(&file, "workdir = \"/tmp\"\nmemroy = \"1G\"\n").unwrap();
    let o = nanobox(&[
        "run",
        "--json",
        "--config",
        file.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_code(&o, 2);
    let r = json(&o);
    assert_eq!(
        (r["status"].as_str(), r["kind"].as_str()),
        (Some("setup_error"), Some("config"))
    );
    assert!(r["message"].as_str().unwrap().contains("line 2"), "{r}");
    assert_short_error(&o, "config");
}

/// The file's `stop_timeout` replaces the 2 s default: a program that ignores SIGTERM is still
/// running 3 s after the command got one, and a second signal ends it at once.
#[test]
fn a_config_file_s_stop_timeout_is_the_grace_period() {
    let dir = temp("stop");
    let file = dir.join("nanobox.toml");
    std::fs::write(&file, "stop_timeout = \"60s\"\n").unwrap();
    let beat = dir.join("beat");
    let mut child = Command::new(BIN)
        .args([
            "run",
            "--config",
            file.to_str().unwrap(),
            "--rw",
            &format!("{}:/w", dir.str()),
            "--",
            "sh",
            "-c",
            "trap '' TERM; while :; do date +%s%N > /w/beat; sleep 0.1; done",
        ])
        .stdin(Stdio::null())
        .current_dir("/tmp")
        .spawn()
        .unwrap();
    wait_for(&beat, "the program never started");
    send(&child, libc::SIGTERM);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "killed before the file's 60 s grace"
    );
    let before = std::fs::read_to_string(&beat).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_ne!(
        std::fs::read_to_string(&beat).unwrap(),
        before,
        "the program stopped running"
    );
    send(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15));
}
