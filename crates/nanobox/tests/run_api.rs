//! The per-run API: options of one `Command` (timeout, environment, working directory, stdin,
//! output cap), shell command lines, and a piped stdin the caller writes to while the program runs.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use nanobox::{Error, Outcome, Sandbox, Stdin};

/// A wall-time limit, so that a program that never gets end-of-file fails a test instead of
/// hanging it.
fn limited() -> Sandbox {
    Sandbox::builder()
        .wall_time_limit(common::slow(Duration::from_secs(30)))
        .env("FROM_SANDBOX", "s")
        .build()
        .unwrap()
}

#[test]
fn a_tighter_timeout_ends_the_run_and_the_sandbox_keeps_its_own() {
    let sb = limited();
    let t = Instant::now();
    let r = sb
        .command("sleep")
        .arg("20")
        .timeout(Duration::from_millis(500))
        .run()
        .unwrap();
    assert_eq!(r.outcome, Outcome::WallTimeLimit);
    assert!(
        t.elapsed() < common::slow(Duration::from_secs(10)),
        "{:?}",
        t.elapsed()
    );
    // The next run without the option has the sandbox's 30 s limit.
    let r = sb.run("sh", &["-c", "sleep 1; echo slept"]).unwrap();
    assert_eq!(
        (r.outcome, r.stdout.as_str()),
        (Outcome::Exited(0), "slept\n")
    );
}

#[test]
fn a_looser_timeout_lets_a_run_outlast_the_sandbox_s() {
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_millis(300))
        .build()
        .unwrap();
    assert_eq!(
        sb.run("sleep", &["2"]).unwrap().outcome,
        Outcome::WallTimeLimit,
        "the control: the sandbox's own limit ends it"
    );
    let r = sb
        .command("sleep")
        .arg("2")
        .timeout(common::slow(Duration::from_secs(30)))
        .run()
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0));
}

#[test]
fn a_zero_timeout_and_a_zero_output_limit_are_refused() {
    let sb = limited();
    for r in [
        sb.command("true").timeout(Duration::ZERO).run(),
        sb.command("true").output_limit(0).run(),
    ] {
        assert!(matches!(r, Err(Error::InvalidOption { .. })), "{r:?}");
    }
}

#[test]
fn environment_additions_replacements_and_removals_are_for_one_run() {
    let sb = limited();
    let r = sb
        .command("sh")
        .args(["-c", "echo \"$K|$FROM_SANDBOX|${HOME-unset}\""])
        .env("K", "V")
        .env("FROM_SANDBOX", "replaced")
        .env_remove("HOME")
        .run()
        .unwrap();
    assert_eq!(r.stdout, "V|replaced|unset\n");
    // The sandbox is unchanged for the next run.
    let r = sb
        .run("sh", &["-c", "echo \"${K-unset}|$FROM_SANDBOX|$HOME\""])
        .unwrap();
    assert_eq!(r.stdout, "unset|s|/tmp\n");
}

#[test]
fn env_clear_leaves_only_what_the_run_sets() {
    let sb = limited();
    let r = sb
        .command("/usr/bin/env")
        .env_clear()
        .env("ONLY", "1")
        .run()
        .unwrap();
    assert_eq!(r.stdout, "ONLY=1\n", "{}", r.stderr);
    // Without PATH a bare program name is not found.
    let r = sb.command("env").env_clear().run();
    assert!(matches!(r, Err(Error::ProgramNotFound { .. })), "{r:?}");
}

#[test]
fn a_bad_variable_name_or_value_is_refused() {
    let sb = limited();
    for r in [
        sb.command("true").env("A=B", "1").run(),
        sb.command("true").env("", "1").run(),
        sb.command("true").env("A", "x\0y").run(),
        sb.command("true").env_remove("A=B").run(),
    ] {
        assert!(
            matches!(r, Err(Error::InvalidOption { option: "env", .. })),
            "{r:?}"
        );
    }
}

#[test]
fn the_working_directory_is_for_one_run_and_pwd_follows_it() {
    let sb = limited();
    let r = sb
        .command("sh")
        .args(["-c", "pwd; echo $PWD"])
        .current_dir("/usr/bin")
        .run()
        .unwrap();
    assert_eq!(r.stdout, "/usr/bin\n/usr/bin\n");
    let r = sb.run("sh", &["-c", "pwd; echo $PWD"]).unwrap();
    assert_eq!(r.stdout, "/tmp\n/tmp\n");
    // A relative program path is found from the run's directory.
    let r = sb.command("./true").current_dir("/usr/bin").run().unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0));
}

#[test]
fn a_working_directory_that_is_relative_escapes_or_is_missing_is_refused() {
    let sb = limited();
    let relative = sb.command("true").current_dir("tmp").run();
    assert!(
        matches!(relative, Err(Error::RelativeSandboxPath { .. })),
        "{relative:?}"
    );
    let dotdot = sb.command("true").current_dir("/tmp/../etc").run();
    assert!(
        matches!(dotdot, Err(Error::InvalidSandboxPath { .. })),
        "{dotdot:?}"
    );
    let missing = sb.command("true").current_dir("/no/such/dir").run();
    assert!(missing.is_err(), "{missing:?}");
}

#[test]
fn a_tighter_output_limit_cuts_one_run() {
    let sb = limited();
    let r = sb
        .command("sh")
        .args(["-c", "head -c 100000 /dev/zero | tr '\\0' x"])
        .output_limit(1000)
        .run()
        .unwrap();
    assert_eq!(r.outcome, Outcome::OutputLimit);
    assert!(r.stdout.len() <= 1000, "{}", r.stdout.len());
    let r = sb
        .run("sh", &["-c", "head -c 100000 /dev/zero | tr '\\0' x"])
        .unwrap();
    assert_eq!((r.outcome, r.stdout.len()), (Outcome::Exited(0), 100000));
}

#[test]
fn a_shell_command_line_runs_under_bin_sh() {
    let sb = limited();
    let r = sb
        .shell("printf 'a\\nb\\nc\\n' | wc -l && echo $0")
        .unwrap();
    assert_eq!(r.stdout, "3\n/bin/sh\n");
    let r = sb.shell("exit 7").unwrap();
    assert_eq!(r.outcome, Outcome::Exited(7));
    // The command line is one argument: nanobox never splits or quotes it.
    let r = sb.shell("set -- 'a b' c; echo $#").unwrap();
    assert_eq!(r.stdout, "2\n");
    let r = sb
        .shell_command("echo \"$K\"; sleep 20")
        .unwrap()
        .env("K", "v")
        .timeout(Duration::from_millis(500))
        .run()
        .unwrap();
    assert_eq!(
        (r.outcome, r.stdout.as_str()),
        (Outcome::WallTimeLimit, "v\n")
    );
}

#[test]
fn a_piped_stdin_drives_a_read_loop_line_by_line() {
    let sb = limited();
    let mut child = sb
        .command("sh")
        .args(["-c", "while read l; do echo \"got $l\"; done; echo eof"])
        .stdin_piped()
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().expect("a piped stdin");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // Each answer is read before the next line is written: the program runs interactively.
    for word in ["one", "two", "three"] {
        writeln!(stdin, "{word}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, format!("got {word}\n"));
    }
    drop(stdin);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "eof\n", "closing stdin gives the program end-of-file");
    assert_eq!(child.wait().unwrap(), Outcome::Exited(0));
}

#[test]
fn a_piped_stdin_drives_a_python_repl() {
    let sb = limited();
    let mut child = sb
        .command("python3")
        .args(["-i", "-q", "-u"])
        .stdin_piped()
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"x = 6\nprint(x * 7)\n").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "42\n", "the REPL answered while it runs");
    stdin
        .write_all(b"import sys; print('done', file=sys.stderr)\n")
        .unwrap();
    drop(stdin);
    child.stdout = Some(out.into_inner());
    let r = child.wait_with_output().unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{}", r.stderr);
    assert!(r.stderr.contains("done"), "{}", r.stderr);
}

#[test]
fn run_and_wait_close_a_piped_stdin_first() {
    let sb = limited();
    let t = Instant::now();
    let r = sb.command("cat").stdin_piped().run().unwrap();
    assert_eq!((r.outcome, r.stdout.as_str()), (Outcome::Exited(0), ""));
    let mut child = sb.command("cat").stdin_piped().spawn().unwrap();
    assert!(child.stdin.is_some());
    assert_eq!(child.wait().unwrap(), Outcome::Exited(0));
    // Stdin::Piped on the builder: every spawn gets a pipe, every run reads end-of-file.
    let piped = Sandbox::builder()
        .wall_time_limit(common::slow(Duration::from_secs(30)))
        .stdin(Stdin::Piped)
        .build()
        .unwrap();
    assert_eq!(
        piped.run("cat", &[] as &[&str]).unwrap().outcome,
        Outcome::Exited(0)
    );
    assert!(
        t.elapsed() < common::slow(Duration::from_secs(20)),
        "a run hung on its stdin"
    );
}

// The writing end is the caller's alone: neither the program nor anything it starts holds it,
// so closing it gives end-of-file even to a program whose children still run.
both!(the_writing_end_never_reaches_a_sandbox, {
    let sb = limited();
    let mut a = sb
        .command("sh")
        .args(["-c", "sleep 60 & cat; echo eof-a"])
        .stdin_piped()
        .spawn()
        .unwrap();
    // Another run started while a's writing end is open: its init must not keep that end either.
    let mut b = sb
        .command("sh")
        .args(["-c", "cat; echo eof-b"])
        .stdin_piped()
        .spawn()
        .unwrap();
    let mut fds = sb
        .command("sh")
        .args(["-c", "ls /proc/self/fd"])
        .spawn()
        .unwrap();
    let (listing, _) = common::output_and_wait(&mut fds);
    let listed: Vec<&str> = listing.split_whitespace().collect();
    assert_eq!(
        listed,
        ["0", "1", "2", "3"],
        "descriptors a run holds: {listing}"
    );
    drop(a.stdin.take());
    let mut out = BufReader::new(a.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "eof-a\n");
    a.kill().unwrap();
    drop(b.stdin.take());
    let r = b.wait_with_output().unwrap();
    assert_eq!(r.stdout, "eof-b\n");
});

#[test]
fn writing_after_the_program_ended_is_an_error_not_a_signal() {
    let sb = limited();
    let mut child = sb.command("true").stdin_piped().spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Drain the output so that the run ends, then wait for the outcome with the pipe still open.
    let mut out = child.stdout.take().unwrap();
    std::io::Read::read_to_end(&mut out, &mut Vec::new()).unwrap();
    let deadline = Instant::now() + common::slow(Duration::from_secs(10));
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    let e = stdin.write_all(&[b'x'; 100_000]).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
}

#[test]
fn a_persistent_bash_keeps_directory_variables_functions_and_processes() {
    let sb = limited();
    let mut sh = sb.bash().unwrap();
    sh.run("cd /usr && export K=v && f() { echo \"f:$1\"; }")
        .unwrap();
    let out = sh.run("pwd; echo $K; f x").unwrap();
    assert_eq!(out.stdout, "/usr\nv\nf:x\n");
    let out = sh.run("sleep 300 & echo $! > /tmp/pid").unwrap();
    assert!(out.success(), "{out:?}");
    let out = sh.run("kill -0 $(cat /tmp/pid) && echo running").unwrap();
    assert_eq!(out.stdout, "running\n", "{out:?}");
    // Output and status of each command are its own.
    let out = sh
        .run("echo to-err >&2; printf 'no newline'; false")
        .unwrap();
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str(), out.exit_code),
        ("no newline", "to-err\n", Some(1))
    );
    let out = sh
        .run("cat <<'END'\nline 1\n$K stays literal\nEND")
        .unwrap();
    assert_eq!(out.stdout, "line 1\n$K stays literal\n");
    assert!(sh.is_alive());
    assert_eq!(
        sh.close(Duration::from_secs(5)).unwrap(),
        Outcome::Exited(0)
    );
}

both!(
    a_persistent_bash_survives_commands_that_fake_its_marker_or_read_stdin,
    {
        let sb = limited();
        let mut sh = sb.bash().unwrap();
        // Text shaped like the end marker, with a made-up nonce, is the command's output.
        let out = sh
        .run("printf '\\036%s-0\\036' 0123456789abcdef0123456789abcdef; printf '\\036x\\036' >&2; echo after; exit_code_is=5; (exit 5)")
        .unwrap();
        assert_eq!(out.exit_code, Some(5), "{out:?}");
        assert!(out.stdout.ends_with("after\n"), "{out:?}");
        assert!(out.stderr.contains('x'), "{out:?}");
        // A command that reads stdin gets end-of-file, not the next command.
        let out = sh.run("cat; read line; echo \"read:$?\"").unwrap();
        assert_eq!(out.stdout, "read:1\n");
        assert_eq!(sh.run("echo next").unwrap().stdout, "next\n");
        // Quotes, backslashes and $ in a command are bash's to parse, once.
        let out = sh
            .run(r#"printf '%s|' "a b" 'c\d' "$((1+2))" \$HOME"#)
            .unwrap();
        assert_eq!(out.stdout, "a b|c\\d|3|$HOME|");
        assert!(sh.run("echo a\0b").is_err());
    }
);

#[test]
fn a_timeout_interrupts_the_command_and_keeps_the_shell() {
    let sb = limited();
    let mut sh = sb.bash().unwrap();
    sh.run("cd /usr/bin").unwrap();
    let t = Instant::now();
    let out = sh
        .run_with_timeout(
            "echo started; sleep 30 | cat",
            Some(Duration::from_millis(500)),
        )
        .unwrap();
    assert!(out.timed_out, "{out:?}");
    assert_eq!(out.exit_code, Some(130), "{out:?}");
    assert_eq!(out.stdout, "started\n");
    assert!(
        t.elapsed() < common::slow(Duration::from_secs(10)),
        "{:?}",
        t.elapsed()
    );
    // The shell and its state are still there.
    assert_eq!(sh.run("pwd").unwrap().stdout, "/usr/bin\n");
}

#[test]
fn a_command_that_ignores_the_interrupt_or_exits_ends_the_shell() {
    let sb = limited();
    let mut sh = sb.bash().unwrap();
    let t = Instant::now();
    let out = sh
        .run_with_timeout("trap '' INT; sleep 30", Some(Duration::from_millis(300)))
        .unwrap();
    assert!(out.timed_out && out.exit_code.is_none(), "{out:?}");
    assert!(
        t.elapsed() < common::slow(Duration::from_secs(10)),
        "{:?}",
        t.elapsed()
    );
    assert!(!sh.is_alive());
    assert!(
        sh.run("true").is_err(),
        "a killed shell refuses the next command"
    );

    let mut sh = sb.bash().unwrap();
    let out = sh.run("echo bye; exit 3").unwrap();
    assert_eq!((out.stdout.as_str(), out.exit_code), ("bye\n", None));
    assert!(!sh.is_alive());
    assert!(sh.run("true").is_err());
}

#[test]
fn a_persistent_bash_has_no_overall_wall_limit_but_each_command_has_the_sandbox_s() {
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_millis(700))
        .build()
        .unwrap();
    let mut sh = sb.bash().unwrap();
    for _ in 0..3 {
        let out = sh.run("sleep 0.4; echo ok").unwrap();
        assert_eq!(out.stdout, "ok\n", "{out:?}");
    }
    let out = sh.run("sleep 30").unwrap();
    assert!(out.timed_out, "{out:?}");
    assert!(sh.is_alive());
}

both!(signal_group_reaches_the_program_s_foreground_commands, {
    let sb = limited();
    let mut child = sb
        .command("sh")
        .args([
            "-c",
            "trap 'echo trapped' TERM; echo ready; sleep 60; echo after",
        ])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // The control: to the shell alone, the signal waits behind its foreground sleep.
    child.signal(libc::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "the shell ended on its own signal"
    );
    // To the group, the sleep ends too and the shell goes on.
    let t = Instant::now();
    child.signal_group(libc::SIGTERM).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    // The shell's trap ran once or twice (for the first SIGTERM when the second interrupted
    // its wait); either way the sleep ended early and the shell went on.
    assert!(
        rest == "trapped\nafter\n" || rest == "trapped\ntrapped\nafter\n",
        "{rest:?}"
    );
    assert_eq!(child.wait().unwrap(), Outcome::Exited(0));
    assert!(t.elapsed() < common::slow(Duration::from_secs(10)));
});

/// An example program of this crate, built beside this test binary by `cargo test` (which
/// builds the examples of the package under test); None where only this test was built
/// (`cargo test --test run_api`).
fn example(name: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent()?.parent()?.join("examples").join(name);
    p.exists().then_some(p)
}

#[test]
fn the_humaneval_example_gives_each_verdict() {
    let Some(exe) = example("humaneval") else {
        eprintln!("skipped: the examples are not built (cargo test --test run_api builds none)");
        return;
    };
    let out = std::process::Command::new(exe).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "add      PASS [\"pass\", \"pass\"]\n\
         reverse  PASS [\"pass\", \"pass\"]\n\
         fib      FAIL [\"timeout\"]\n\
         max      FAIL [\"wrong answer\"]\n\
         pass@1 = 2/4\n"
    );
}

#[test]
fn the_agent_tool_example_keeps_its_shell_between_calls() {
    let Some(exe) = example("agent_tool") else {
        eprintln!("skipped: the examples are not built (cargo test --test run_api builds none)");
        return;
    };
    let ws = common::TempDir::new();
    std::fs::set_permissions(
        ws.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut child = std::process::Command::new(exe)
        .arg(ws.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"cd /tmp && export K=v\necho \"$K\" > /workspace/out; pwd\nexit 4\npwd\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[1].contains("\"exit_code\":0") && lines[1].contains("\"stdout\":\"/tmp\\n\""),
        "{lines:?}"
    );
    assert!(lines[2].contains("\"exit_code\":null"), "{lines:?}");
    assert!(
        lines[3].contains("\"stdout\":\"/workspace\\n\""),
        "a fresh shell: {lines:?}"
    );
    assert_eq!(
        std::fs::read_to_string(ws.path().join("out")).unwrap(),
        "v\n"
    );
}
