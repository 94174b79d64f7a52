//! Signals to the sandboxed program: `Child::signal` and the graceful `Child::stop`.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::TempDir;
use nanobox::{Child, Error, Outcome, Permission, Sandbox};

/// A wall-time limit, so that a signal that never arrives fails a test instead of hanging it.
fn limited() -> nanobox::SandboxBuilder {
    Sandbox::builder().wall_time_limit(common::slow(Duration::from_secs(30)))
}

/// A directory the sandbox user can write, mounted read-write at /w.
fn sandbox_with_w() -> (TempDir, Sandbox) {
    let d = TempDir::new();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let sb = limited()
        .mount(d.path(), "/w", Permission::ReadWrite)
        .build()
        .unwrap();
    (d, sb)
}

/// Read the program's stdout up to the line `want` (the program is ready then).
fn read_until(out: &mut impl BufRead, want: &str) {
    let mut line = String::new();
    loop {
        line.clear();
        assert_ne!(out.read_line(&mut line).unwrap(), 0, "EOF before {want:?}");
        if line.trim_end() == want {
            return;
        }
    }
}

fn stdout_of(child: &mut Child) -> BufReader<nanobox::ChildStdout> {
    BufReader::new(child.stdout.take().unwrap())
}

/// A background process of the sandbox that rewrites `beat` every 50 ms: it outlives the
/// program unless the run's end takes it down.
const HEARTBEAT: &str = "(while :; do date +%s%N > /w/beat; sleep 0.05; done) & ";

/// Assert that nothing rewrites `beat` any more (every process of the sandbox is gone).
fn heartbeat_stopped(beat: &Path) {
    let before = std::fs::read_to_string(beat).unwrap();
    std::thread::sleep(common::slow(Duration::from_millis(500)));
    assert_eq!(
        std::fs::read_to_string(beat).unwrap(),
        before,
        "a process of the sandbox outlived the run"
    );
}

fn wait_for_file(p: &Path) {
    let deadline = Instant::now() + common::slow(Duration::from_secs(20));
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

both!(signal_reaches_the_program_itself, {
    let sb = limited().build().unwrap();
    // The shell is the program process (a compound command: no exec); its trap runs only if the
    // signal reaches it, not the init.
    let mut child = sb
        .spawn(
            "sh",
            &[
                "-c",
                "trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.05; done",
            ],
        )
        .unwrap();
    let mut out = stdout_of(&mut child);
    read_until(&mut out, "ready");
    child.signal(libc::SIGUSR1).unwrap();
    read_until(&mut out, "got-usr1");
    assert_eq!(child.wait().unwrap(), Outcome::Exited(7));
});

both!(a_signal_that_kills_the_program_is_its_outcome, {
    let sb = limited().build().unwrap();
    let mut child = sb
        .spawn("sh", &["-c", "echo ready; exec sleep 60"])
        .unwrap();
    read_until(&mut stdout_of(&mut child), "ready");
    child.signal(libc::SIGINT).unwrap();
    assert_eq!(child.wait().unwrap(), Outcome::Signaled(libc::SIGINT));
});

both!(
    stop_lets_a_program_that_handles_term_exit_within_the_grace,
    {
        let (d, sb) = sandbox_with_w();
        let grace = common::slow(Duration::from_secs(10));
        let script = format!(
            "{HEARTBEAT}trap 'echo stopping > /w/trapped; exit 0' TERM; echo ready; \
         while :; do sleep 0.05; done"
        );
        let mut child = sb.spawn("sh", &["-c", &script]).unwrap();
        read_until(&mut stdout_of(&mut child), "ready");
        wait_for_file(&d.join("beat"));
        let t = Instant::now();
        assert_eq!(child.stop(grace).unwrap(), Outcome::Exited(0));
        assert!(t.elapsed() < grace, "ended by its trap, not the kill");
        assert_eq!(
            std::fs::read_to_string(d.join("trapped")).unwrap(),
            "stopping\n"
        );
        // The program's background process went with the run.
        heartbeat_stopped(&d.join("beat"));
        // Stopping again, or waiting, gives the same outcome.
        assert_eq!(child.stop(grace).unwrap(), Outcome::Exited(0));
        assert_eq!(child.wait().unwrap(), Outcome::Exited(0));
    }
);

both!(stop_reports_a_program_that_term_killed, {
    let sb = limited().build().unwrap();
    let mut child = sb
        .spawn("sh", &["-c", "echo ready; exec sleep 60"])
        .unwrap();
    read_until(&mut stdout_of(&mut child), "ready");
    let grace = common::slow(Duration::from_secs(10));
    let t = Instant::now();
    assert_eq!(child.stop(grace).unwrap(), Outcome::Signaled(libc::SIGTERM));
    assert!(t.elapsed() < grace);
});

both!(
    stop_kills_everything_after_the_grace_when_term_is_ignored,
    {
        let (d, sb) = sandbox_with_w();
        let script = format!(
        "{HEARTBEAT}trap '' TERM; echo ready; while :; do date +%s%N > /w/own; sleep 0.05; done"
    );
        let mut child = sb.spawn("sh", &["-c", &script]).unwrap();
        read_until(&mut stdout_of(&mut child), "ready");
        wait_for_file(&d.join("beat"));
        let grace = Duration::from_secs(1);
        let t = Instant::now();
        assert_eq!(child.stop(grace).unwrap(), Outcome::Signaled(libc::SIGKILL));
        let took = t.elapsed();
        assert!(
            took >= grace,
            "killed before the grace period ended: {took:?}"
        );
        assert!(
            took < grace + common::slow(Duration::from_secs(3)),
            "the kill came late: {took:?}"
        );
        heartbeat_stopped(&d.join("beat"));
        heartbeat_stopped(&d.join("own"));
    }
);

both!(a_zero_grace_kills_at_once, {
    let sb = limited().build().unwrap();
    let mut child = sb
        .spawn(
            "sh",
            &[
                "-c",
                "trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done",
            ],
        )
        .unwrap();
    read_until(&mut stdout_of(&mut child), "ready");
    assert_eq!(
        child.stop(Duration::ZERO).unwrap(),
        Outcome::Signaled(libc::SIGKILL)
    );
});

both!(signals_to_an_ended_program_do_nothing, {
    let sb = limited().build().unwrap();
    let mut child = sb.spawn("sh", &["-c", "exit 3"]).unwrap();
    // Ended but not yet waited for: the init is gone (a zombie) before we ask.
    let deadline = Instant::now() + common::slow(Duration::from_secs(20));
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        if stat
            .rsplit(')')
            .next()
            .unwrap()
            .trim_start()
            .starts_with('Z')
        {
            break;
        }
        assert!(Instant::now() < deadline, "the run never ended");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.signal(libc::SIGTERM).unwrap();
    child.signal(libc::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap(), Outcome::Exited(3));
    // And after the wait.
    child.signal(libc::SIGTERM).unwrap();
    assert_eq!(
        child.stop(Duration::from_secs(1)).unwrap(),
        Outcome::Exited(3)
    );
});

both!(numbers_that_are_no_signal_are_refused, {
    let sb = limited().build().unwrap();
    let mut child = sb
        .spawn("sh", &["-c", "echo ready; exec sleep 60"])
        .unwrap();
    read_until(&mut stdout_of(&mut child), "ready");
    for bad in [
        0,
        -1,
        -15,
        libc::SIGRTMAX() + 1,
        256,
        256 + libc::SIGTERM,
        i32::MAX,
    ] {
        match child.signal(bad) {
            Err(Error::InvalidOption { option, .. }) => assert_eq!(option, "signal"),
            other => panic!("signal({bad}) gave {other:?}"),
        }
    }
    // Nothing reached the program (256 + 15 must not wrap to SIGTERM).
    assert_eq!(child.try_wait().unwrap(), None);
    child.signal(libc::SIGRTMAX()).unwrap();
    assert_eq!(child.wait().unwrap(), Outcome::Signaled(libc::SIGRTMAX()));
});
