//! Running, waiting, killing and tearing down: the run's lifetime and what it leaves behind.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::time::{Duration, Instant};

use common::TempDir;
use nanobox::{Error, Outcome, Permission, Sandbox, Stdin};

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// How many host processes' command lines start with `prefix`.
fn host_processes_with(prefix: &str) -> usize {
    common::host_processes(|c| c.starts_with(prefix)).len()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

both!(stdin_bytes_and_file_arrive, {
    let sb = Sandbox::builder().stdin("from bytes\n").build().unwrap();
    assert_eq!(
        sb.run("cat", &[] as &[&str]).unwrap().stdout,
        "from bytes\n"
    );
    let d = TempDir::new();
    std::fs::write(d.join("in.txt"), "from a file\n").unwrap();
    let r = sb
        .command("cat")
        .stdin(Stdin::file(d.join("in.txt")))
        .run()
        .unwrap();
    assert_eq!(r.stdout, "from a file\n");
    // Default: empty stdin, the program reads EOF at once.
    let r = Sandbox::builder()
        .build()
        .unwrap()
        .run("cat", &[] as &[&str])
        .unwrap();
    assert_eq!((r.stdout.as_str(), r.outcome), ("", Outcome::Exited(0)));
    // The program cannot modify its stdin bytes for a later run.
    let r = sb.run("sh", &["-c", "echo x >&0; echo rc=$?"]).unwrap();
    assert!(!r.stdout.contains("rc=0"), "{r:?}");
});

both!(wall_time_limit_kills_everything_in_time, {
    let tag = format!("765.{}{}", std::process::id(), common::euid());
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_millis(800))
        .build()
        .unwrap();
    let t = Instant::now();
    let r = sb
        .run(
            "sh",
            &[
                "-c",
                &format!("setsid sleep {tag} & echo started; sleep {tag}"),
            ],
        )
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.outcome, Outcome::WallTimeLimit, "{r:?}");
    assert_eq!(r.stdout, "started\n", "output before the limit is kept");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        r.wall_time >= Duration::from_millis(790),
        "{:?}",
        r.wall_time
    );
    assert_eq!(
        host_processes_with(&format!("sleep {tag}")),
        0,
        "nothing outlives the limit"
    );
});

#[test]
fn spawn_streams_output_as_it_is_produced() {
    let sb = Sandbox::builder().build().unwrap();
    let mut child = sb
        .spawn("sh", &["-c", "echo first; sleep 2; echo second"])
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let t = Instant::now();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "first line arrived before the program ended"
    );
    assert_eq!(child.try_wait().unwrap(), None, "still running");
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "second\n");
    assert_eq!(child.wait().unwrap(), Outcome::Exited(0));
}

#[test]
fn kill_ends_the_whole_sandbox() {
    let tag = format!("543.{}", std::process::id());
    let sb = Sandbox::builder().build().unwrap();
    let mut child = sb
        .spawn("sh", &["-c", &format!("setsid sleep {tag} & sleep {tag}")])
        .unwrap();
    let init = child.id();
    // Both sleeps started (within seconds, scaled where the CPU is emulated).
    let deadline = Instant::now() + common::slow(Duration::from_secs(5));
    while host_processes_with(&format!("sleep {tag}")) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(host_processes_with(&format!("sleep {tag}")), 2);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap(), Outcome::Signaled(libc::SIGKILL));
    assert!(!alive(init));
    assert_eq!(host_processes_with(&format!("sleep {tag}")), 0);
}

#[test]
fn dropping_the_child_ends_the_sandbox() {
    let tag = format!("432.{}", std::process::id());
    let sb = Sandbox::builder().build().unwrap();
    let child = sb.spawn("sleep", &[tag.as_str()]).unwrap();
    let init = child.id();
    drop(child);
    assert!(!alive(init));
    assert_eq!(host_processes_with(&format!("sleep {tag}")), 0);
}

#[test]
fn program_killed_by_a_signal_is_reported() {
    let sb = Sandbox::builder().build().unwrap();
    let r = sb.run("sh", &["-c", "kill -SEGV $$"]).unwrap();
    assert_eq!(r.outcome, Outcome::Signaled(libc::SIGSEGV));
}

#[test]
fn when_the_program_exits_the_rest_is_killed() {
    let tag = format!("321.{}", std::process::id());
    let sb = Sandbox::builder().build().unwrap();
    let r = sb
        .run("sh", &["-c", &format!("sleep {tag} & echo bye")])
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0));
    assert_eq!(host_processes_with(&format!("sleep {tag}")), 0);
}

/// Helper for `caller_death_kills_the_sandbox`: a caller that starts a sandbox and is then killed.
#[test]
#[ignore = "helper process of caller_death_kills_the_sandbox"]
fn caller_that_gets_killed() {
    let tag = std::env::var("NANOBOX_TEST_TAG").unwrap();
    let sb = Sandbox::builder().build().unwrap();
    // Spawned from a thread that then ends: the sandbox must outlive the thread, not the process.
    let child = std::thread::spawn(move || sb.spawn("sleep", &[tag.as_str()]).unwrap())
        .join()
        .unwrap();
    println!("READY {}", child.id());
    std::thread::sleep(Duration::from_secs(60));
    drop(child);
}

#[test]
fn caller_death_kills_the_sandbox() {
    let tag = format!("654.{}", std::process::id());
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "caller_that_gets_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NANOBOX_TEST_TAG", &tag)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(helper.stdout.take().unwrap());
    let mut line = String::new();
    let init: u32 = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "helper ended early");
        if let Some((_, pid)) = line.trim().split_once("READY ") {
            break pid.parse().unwrap();
        }
    };
    // The spawning thread has ended; the sandbox is still running.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        alive(init),
        "the sandbox must not die with the thread that started it"
    );
    assert_eq!(host_processes_with(&format!("sleep {tag}")), 1);
    helper.kill().unwrap();
    helper.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(init) || host_processes_with(&format!("sleep {tag}")) > 0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        host_processes_with(&format!("sleep {tag}")),
        0,
        "the program died with its caller"
    );
}

#[test]
fn thirty_two_sandboxes_from_eight_threads() {
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_secs(60))
        .build()
        .unwrap();
    let fds_before = open_fds();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let sb = sb.clone();
                s.spawn(move || {
                    for i in 0..4 {
                        let r = sb
                            .run("sh", &["-c", &format!("echo {t}-{i}; echo $$")])
                            .unwrap();
                        // Each run has its own pid namespace: the shell is pid 2 (after the init).
                        assert_eq!(r.stdout, format!("{t}-{i}\n2\n"), "{r:?}");
                        assert_eq!(r.outcome, Outcome::Exited(0));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    assert!(
        open_fds() <= fds_before + 2,
        "no descriptor leaks: {} -> {}",
        fds_before,
        open_fds()
    );
}

#[test]
fn many_runs_leak_nothing_and_leave_no_mounts() {
    let d = TempDir::new();
    let sb = Sandbox::builder()
        .mount(d.path(), "/data", Permission::ReadWrite)
        .build()
        .unwrap();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    sb.run("true", &[] as &[&str]).unwrap();
    let fds = open_fds();
    for _ in 0..50 {
        assert_eq!(
            sb.run("true", &[] as &[&str]).unwrap().outcome,
            Outcome::Exited(0)
        );
    }
    // Other tests run concurrently in this process; a leak of one descriptor per run would add 50.
    assert!(open_fds() <= fds + 20, "{} -> {}", fds, open_fds());
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mounts_before.lines().count(),
        mounts_after.lines().count(),
        "no mounts left on the host"
    );
    let tmp_entries: Vec<_> = std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == "oldroot" || n == "newroot" || n == "masks")
        .collect();
    assert!(
        tmp_entries.is_empty(),
        "no scratch dirs on the host: {tmp_entries:?}"
    );
}

#[test]
fn both_pipes_full_do_not_deadlock() {
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = sb
        .run("python3", &["-c", "import sys\nfor i in range(64):\n  sys.stderr.write('e'*16384); sys.stdout.write('o'*16384)"])
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0));
    assert_eq!(
        (r.stdout_bytes.len(), r.stderr_bytes.len()),
        (1 << 20, 1 << 20)
    );
}

#[test]
fn output_limit_stops_the_program_and_keeps_the_head() {
    let sb = Sandbox::builder()
        .output_limit(1000)
        .wall_time_limit(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = sb.run("sh", &["-c", "echo hi >&2; yes abcdefghi"]).unwrap();
    assert_eq!(r.outcome, Outcome::OutputLimit, "{r}");
    assert!(r.stdout_truncated && !r.stderr_truncated);
    assert_eq!(r.stdout_bytes.len(), 1000);
    assert!(r.stdout.starts_with("abcdefghi\nabcdefghi\n"));
    assert_eq!(r.stderr, "hi\n");
    // The same cap in streaming mode: the reader ends at the cap and the run is stopped.
    let mut child = sb.spawn("yes", &[] as &[&str]).unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = Vec::new();
    out.read_to_end(&mut buf).unwrap();
    assert_eq!(buf.len(), 1000);
    assert!(out.truncated());
    assert_eq!(child.wait().unwrap(), Outcome::OutputLimit);
}

#[test]
fn errors_name_what_failed() {
    let sb = Sandbox::builder().build().unwrap();
    let e = sb.run("no-such-program-xyz", &[] as &[&str]).unwrap_err();
    assert!(
        matches!(&e, Error::ProgramNotFound { program, .. } if program == "no-such-program-xyz"),
        "{e}"
    );
    assert!(
        e.to_string().contains("/usr/bin/no-such-program-xyz"),
        "{e}"
    );
    let e = sb.run("/etc/passwd", &[] as &[&str]).unwrap_err();
    assert!(matches!(&e, Error::ProgramNotExecutable { .. }), "{e}");
    let e = Sandbox::builder()
        .working_dir("/nope")
        .build()
        .unwrap()
        .run("true", &[] as &[&str])
        .unwrap_err();
    assert!(
        matches!(&e, Error::Setup { step, .. } if step.contains("working directory")),
        "{e}"
    );
    let e = Sandbox::builder()
        .mount("/no/such/dir", "/x", Permission::ReadOnly)
        .build()
        .unwrap_err();
    assert!(matches!(&e, Error::MountSourceMissing { .. }), "{e}");
    assert!(e.to_string().contains("/no/such/dir"));
}

#[test]
fn working_dir_and_pwd() {
    let d = TempDir::new();
    let sb = Sandbox::builder()
        .mount(d.path(), "/work", Permission::ReadWrite)
        .working_dir("/work")
        .build()
        .unwrap();
    let r = sb.run("sh", &["-c", "pwd; echo $PWD; touch here"]).unwrap();
    assert_eq!(r.stdout, "/work\n/work\n");
    assert!(d.join("here").exists());
    let r = Sandbox::builder()
        .build()
        .unwrap()
        .run("pwd", &[] as &[&str])
        .unwrap();
    assert_eq!(r.stdout, "/tmp\n", "default working directory");
}

#[test]
fn mount_source_swapped_for_a_symlink_is_refused() {
    let d = TempDir::new();
    std::fs::create_dir(d.join("src")).unwrap();
    let sb = Sandbox::builder()
        .mount(d.join("src"), "/in", Permission::ReadOnly)
        .build()
        .unwrap();
    assert!(sb.run("true", &[] as &[&str]).unwrap().success());
    std::fs::remove_dir(d.join("src")).unwrap();
    std::os::unix::fs::symlink("/etc", d.join("src")).unwrap();
    let e = sb.run("ls", &["/in"]).unwrap_err();
    assert!(matches!(e, Error::MountSourceChanged { .. }), "{e}");
}

#[test]
fn building_from_many_threads_at_once_does_not_deadlock() {
    // Building as root clones short-lived helper processes; helpers cloned by different threads at
    // the same moment must not hold each other up.
    let d = TempDir::new();
    let (tx, rx) = std::sync::mpsc::channel();
    for _ in 0..8 {
        let (tx, path) = (tx.clone(), d.path().to_path_buf());
        std::thread::spawn(move || {
            for _ in 0..5 {
                let sb = Sandbox::builder()
                    .mount(&path, "/data", Permission::ReadOnly)
                    .build()
                    .unwrap();
                assert!(sb.run("true", &[] as &[&str]).unwrap().success());
            }
            tx.send(()).unwrap();
        });
    }
    for _ in 0..8 {
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a builder thread is stuck");
    }
}

#[test]
fn caller_enforces_the_wall_time_limit_when_the_init_cannot() {
    // Freeze the sandbox's init so that its own clock never fires: the caller's backstop (limit +
    // 0.5 s) must end the run, in wait() and in run()'s collection alike.
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_millis(300))
        .build()
        .unwrap();
    for collect in [false, true] {
        let mut child = sb.spawn("sleep", &["30"]).unwrap();
        // SAFETY: kill(2) on the init's host pid, which is alive (the run has just started).
        assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) }, 0);
        let t = Instant::now();
        let outcome = if collect {
            child.wait_with_output().unwrap().outcome
        } else {
            child.wait().unwrap()
        };
        assert_eq!(outcome, Outcome::WallTimeLimit);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
}

extern "C" fn exit_42(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(42) }
}

#[test]
fn stray_signals_to_the_init_do_not_end_the_run() {
    // The init is a copy of the caller: it must not run the caller's signal handlers (which need
    // not be async-signal-safe there), nor die of signals meant for the caller's process group.
    // This process gets a SIGUSR2 handler, as an embedding host might have; only the init is sent
    // the signal.
    // SAFETY: installs a plain function as the handler of a signal no other test uses.
    unsafe { libc::signal(libc::SIGUSR2, exit_42 as *const () as libc::sighandler_t) };
    let sb = Sandbox::builder()
        .wall_time_limit(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut child = sb.spawn("sh", &["-c", "sleep 0.5; echo survived"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    for sig in [
        libc::SIGUSR2,
        libc::SIGUSR1,
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGALRM,
    ] {
        // SAFETY: kill(2) on the init's host pid, which is alive (the program sleeps 0.5 s).
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    }
    let (out, outcome) = common::output_and_wait(&mut child);
    assert_eq!(outcome, Outcome::Exited(0));
    assert_eq!(out, "survived\n");
}
