//! Isolation properties, each written as the attack it prevents, as root and as uid 65534.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::TempDir;
use nanobox::{Outcome, Permission, RunResult, Sandbox};

fn sh(sb: &Sandbox, script: &str) -> RunResult {
    sb.run("sh", &["-c", script]).expect("run sh")
}

fn py(sb: &Sandbox, code: &str) -> RunResult {
    sb.run("python3", &["-c", code]).expect("run python3")
}

fn plain() -> Sandbox {
    Sandbox::builder().build().expect("build")
}

/// Host pids whose command line contains `needle`.
fn host_processes_with(needle: &str) -> Vec<u32> {
    common::host_processes(|c| c.contains(needle))
}

both!(python_and_sh_work, {
    let sb = plain();
    let r = py(&sb, "print('hello')");
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(r.stdout, "hello\n");
    let r = sh(&sb, "echo $((6*7)); echo err >&2; exit 3");
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.outcome),
        ("42\n", "err\n", Outcome::Exited(3))
    );
});

both!(read_etc_shadow_fails, {
    // The host's secrets: shadow and friends are masked (empty and unreadable), whoever we are.
    let r = sh(
        &plain(),
        "cat /etc/shadow; echo rc=$?; cat /etc/gshadow 2>/dev/null | wc -c",
    );
    assert!(!r.stdout.contains("root:"), "{r:?}");
    assert!(r.stdout.contains("rc=1"), "{r:?}");
    // ... while ordinary /etc files are there.
    let r = sh(&plain(), "grep -c '^root:' /etc/passwd");
    assert_eq!(r.stdout.trim(), "1");
});

both!(write_into_read_only_mount_fails, {
    let d = TempDir::new();
    std::fs::write(d.join("data.txt"), "original").unwrap();
    let sb = Sandbox::builder()
        .mount(d.path(), "/input", Permission::ReadOnly)
        .build()
        .unwrap();
    let r = sh(&sb, "cat /input/data.txt; echo evil > /input/data.txt; echo rc=$?; touch /input/new; echo rc=$?; rm /input/data.txt; echo rc=$?");
    assert!(r.stdout.starts_with("original"), "{r:?}");
    assert_eq!(r.stdout.matches("rc=").count(), 3, "{r:?}");
    assert!(!r.stdout.contains("rc=0"), "every write failed: {r:?}");
    assert_eq!(
        r.stderr.matches("Read-only file system").count(),
        3,
        "{r:?}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("data.txt")).unwrap(),
        "original"
    );
    assert!(!d.join("new").exists());
});

both!(write_to_usr_and_root_fails, {
    let r = sh(
        &plain(),
        "touch /usr/evil; echo rc=$?; touch /evil; echo rc=$?; mkdir /etc/evil; echo rc=$?",
    );
    assert_eq!(r.stdout.matches("rc=1").count(), 3, "{r:?}");
    assert!(!std::path::Path::new("/usr/evil").exists());
});

both!(read_write_mount_writes_through_owned_by_caller, {
    let d = TempDir::new();
    let sb = Sandbox::builder()
        .mount(d.path(), "/out", Permission::ReadWrite)
        .build()
        .unwrap();
    let r = sh(&sb, "echo result > /out/r.txt && mkdir /out/sub && echo ok");
    assert_eq!(r.stdout, "ok\n", "{r:?}");
    assert_eq!(
        std::fs::read_to_string(d.join("r.txt")).unwrap(),
        "result\n"
    );
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(d.join("r.txt")).unwrap();
    assert_eq!(
        md.uid(),
        common::euid(),
        "created files belong to the caller on the host"
    );
    assert_eq!(
        std::fs::metadata(d.join("sub")).unwrap().uid(),
        common::euid()
    );
});

both!(see_host_processes_fails, {
    // One process listing /proc: it sees itself (2), neither the init nor anything of the host.
    let r = py(
        &plain(),
        "import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))",
    );
    assert_eq!(r.stdout, "[2]\n", "{r:?}");
    let me = std::process::id();
    let r = sh(&plain(), &format!("kill -0 {me}; echo rc=$?"));
    assert!(
        !r.stdout.contains("rc=0") || me <= 2,
        "the caller's pid {me} is not reachable: {r:?}"
    );
});

both!(kill_all_host_processes_fails, {
    let mut victim = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let r = py(&plain(), "import os, signal\ntry:\n  os.kill(-1, signal.SIGKILL)\nexcept Exception as e:\n  print(e)\nprint('survived')");
    let _ = r;
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the host process survives kill(-1, SIGKILL)"
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
});

both!(reach_host_loopback_listener_fails, {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    let r = py(&plain(), &format!(
        "import socket\ns=socket.socket()\ns.settimeout(2)\ntry:\n  s.connect(('127.0.0.1',{port})); print('CONNECTED')\nexcept Exception as e:\n  print('refused', e)"
    ));
    assert!(r.stdout.starts_with("refused"), "{r:?}");
    assert!(
        l.accept().is_err(),
        "no connection reached the host listener"
    );
    // Loopback inside works: the program can talk to itself.
    let r = py(&plain(), "import socket\nl=socket.socket(); l.bind(('127.0.0.1',0)); l.listen()\nc=socket.create_connection(l.getsockname()); print('self ok')");
    assert_eq!(r.stdout, "self ok\n", "{r:?}");
    let r = sh(
        &plain(),
        "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '",
    );
    assert_eq!(r.stdout, "lo\n", "only loopback: {r:?}");
});

both!(reach_host_abstract_unix_socket_fails, {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("nanobox-test-{}-{}", std::process::id(), common::euid());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let l = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    l.set_nonblocking(true).unwrap();
    let r = py(&plain(), &format!(
        "import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n  s.connect('\\0{name}'); print('CONNECTED')\nexcept Exception as e:\n  print('refused', e)"
    ));
    assert!(r.stdout.starts_with("refused"), "{r:?}");
    assert!(l.accept().is_err());
});

both!(read_inherited_fd_fails, {
    let d = TempDir::new();
    std::fs::write(d.join("secret"), "TOPSECRET").unwrap();
    let path = std::ffi::CString::new(d.join("secret").to_str().unwrap()).unwrap();
    // SAFETY: plain open(2) without O_CLOEXEC, as a careless caller would.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let r = py(&plain(), &format!(
        "import os\nprint(sorted(os.listdir('/proc/self/fd')))\ntry:\n  print(os.read({fd}, 100))\nexcept Exception as e:\n  print('closed', e)"
    ));
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    assert!(!r.stdout.contains("TOPSECRET"), "{r:?}");
    assert!(r.stdout.contains("closed"), "{r:?}");
    assert!(
        r.stdout.starts_with("['0', '1', '2', '3']"),
        "only stdio (+ the listing's own fd): {r:?}"
    );
});

both!(read_caller_secret_env_fails, {
    std::env::set_var("NANOBOX_TEST_SECRET", "hunter2");
    let sb = Sandbox::builder().env("GIVEN", "yes").build().unwrap();
    let r = sh(
        &sb,
        "env | sort; cat /proc/1/environ; echo rc=$?; cat /proc/*/environ 2>/dev/null",
    );
    assert!(
        !r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"),
        "{r:?}"
    );
    let names: Vec<&str> = r
        .stdout
        .lines()
        .take_while(|l| !l.starts_with("rc="))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(
        names.contains(&"GIVEN")
            && names.contains(&"PATH")
            && names.contains(&"HOME")
            && names.contains(&"LANG")
            && names.contains(&"PWD"),
        "{names:?}"
    );
    for n in &names {
        assert!(
            ["GIVEN", "PATH", "HOME", "LANG", "PWD", "SHLVL", "_"].contains(n),
            "unexpected variable {n}"
        );
    }
    assert!(
        r.stdout.contains("rc=1"),
        "/proc/1/environ (the init, a copy of the caller) is unreadable: {r:?}"
    );
});

both!(the_init_shows_nothing_of_the_caller, {
    // The init is a fork of this process: its argv, comm and status are the caller's (a caller
    // started as `my-app --db-password=...` would show that). The program walks every /proc
    // entry it can see and dumps every file of each; none may carry the caller's name or argv.
    let me = std::env::current_exe().unwrap();
    let exe_name = me.file_name().unwrap().to_str().unwrap().to_string();
    let thread = std::thread::current().name().unwrap_or("main").to_string();
    let code = r#"
import os
seen = []
for p in sorted(os.listdir('/proc')):
    if not p.isdigit():
        continue
    seen.append(p)
    for root, dirs, files in os.walk('/proc/' + p):
        if '/task/' in root or '/fd' in root or '/map_files' in root or '/ns' in root:
            continue
        for f in files:
            try:
                with open(os.path.join(root, f), 'rb') as h:
                    print(h.read(1 << 16).decode('latin-1'))
            except OSError:
                pass
print('PIDS', ' '.join(seen))
for f in ['cmdline', 'comm', 'status', 'stat', 'environ', 'maps', 'cgroup', 'wchan', 'sched']:
    try:
        open('/proc/1/' + f, 'rb').read()
        print('READ', f)
    except OSError as e:
        print('HIDDEN', f, e.errno)
print('CHILD', os.popen('cat /proc/1/cmdline 2>&1; ls /proc | grep -c "^[0-9]"').read())
"#;
    let r = py(&plain(), code);
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    let out = r.stdout.replace('\0', " ");
    // 15 characters is what comm keeps of a name.
    let short: String = exe_name.chars().take(15).collect();
    let thread_short: String = thread.chars().take(15).collect();
    for needle in [exe_name.as_str(), short.as_str(), thread_short.as_str()] {
        assert!(
            !out.contains(needle),
            "the caller's name {needle:?} is visible in the sandbox's /proc"
        );
    }
    assert!(out.contains("PIDS 2\n"), "only the program itself: {out}");
    for f in [
        "cmdline", "comm", "status", "stat", "environ", "maps", "cgroup", "wchan", "sched",
    ] {
        assert!(
            out.contains(&format!("HIDDEN {f} {}", libc::ENOENT)),
            "/proc/1/{f} does not exist for the program: {out}"
        );
    }
    // The program's own children see each other, and still not the init.
    assert!(
        out.contains("No such file or directory") && out.contains("CHILD"),
        "{out}"
    );
});

both!(init_process_is_not_reachable, {
    // runc CVE-2019-5736 class: the init is a copy of the caller; its exe, memory and root must
    // stay out of reach.
    let r = sh(&plain(), "for f in exe mem environ root/etc/shadow; do cat /proc/1/$f >/dev/null 2>&1; echo \"$f=$?\"; done; ls -l /proc/1/exe 2>&1");
    for f in ["exe=1", "mem=1", "environ=1", "root/etc/shadow=1"] {
        assert!(r.stdout.contains(f), "{f}: {r:?}");
    }
});

both!(tiocsti_into_controlling_tty_fails, {
    // No controlling terminal: a new session, /dev/tty cannot be opened, stdio are pipes.
    let code = "import os, fcntl, termios\n\
        print('sid_is_pid', os.getsid(0) == os.getpid())\n\
        print('tty_nr', open('/proc/self/stat').read().rsplit(')',1)[1].split()[4])\n\
        try:\n  fd = os.open('/dev/tty', os.O_RDWR); fcntl.ioctl(fd, termios.TIOCSTI, b'x'); print('INJECTED')\n\
        except OSError as e:\n  print('devtty', e.errno)\n\
        for fd in (0, 1, 2):\n  try:\n    fcntl.ioctl(fd, termios.TIOCSTI, b'x'); print('INJECTED')\n  except OSError as e:\n    print('std', e.errno)";
    let r = py(&plain(), code);
    assert!(r.stdout.contains("sid_is_pid True"), "{r:?}");
    assert!(r.stdout.contains("tty_nr 0"), "{r:?}");
    assert!(!r.stdout.contains("INJECTED"), "{r:?}");
    assert!(r.stdout.contains("devtty 6"), "ENXIO on /dev/tty: {r:?}");
});

#[test]
fn a_terminal_is_refused_as_stdin() {
    let mut master: libc::c_int = -1;
    let mut slave: libc::c_int = -1;
    // SAFETY: openpty fills two descriptors; the other pointers may be NULL.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: both descriptors were just opened and are owned here.
    let (m, s) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::os::fd::OwnedFd::from_raw_fd(master),
            std::os::fd::OwnedFd::from_raw_fd(slave),
        )
    };
    let sb = Sandbox::builder()
        .stdin(nanobox::Stdin::Fd(std::sync::Arc::new(s)))
        .build()
        .unwrap();
    let e = sb.run("true", &[] as &[&str]).unwrap_err();
    assert!(
        matches!(
            e,
            nanobox::Error::InvalidOption {
                option: "stdin",
                ..
            }
        ),
        "{e}"
    );
    drop(m);
}

both!(daemonized_grandchild_does_not_survive, {
    let tag = format!("{}.{}", 900 + common::euid() % 97, std::process::id());
    let sb = Sandbox::builder().build().unwrap();
    // Double fork + setsid: the classic daemon escape from a process tree.
    let r = sh(&sb, &format!("setsid sh -c 'sleep {tag} & sleep {tag} &' </dev/null >/dev/null 2>&1 & sleep 0.3; echo started"));
    assert_eq!(r.stdout, "started\n", "{r:?}");
    assert!(
        host_processes_with(&format!("sleep {tag}")).is_empty(),
        "daemon outlived the run"
    );
});

both!(mount_syscall_fails, {
    let code = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n\
        r = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None); print('mount', r, ctypes.get_errno())\n\
        r = libc.umount2(b'/proc', 2); print('umount', r, ctypes.get_errno())\n\
        r = libc.unshare(0x10000000); print('unshare', r, ctypes.get_errno())";
    let r = py(&plain(), code);
    assert!(r.stdout.contains("mount -1 1"), "EPERM: {r:?}");
    assert!(r.stdout.contains("umount -1 1"), "{r:?}");
    assert!(
        r.stdout.lines().any(|l| l.starts_with("unshare -1")),
        "no nested user namespace: {r:?}"
    );
});

both!(acting_as_host_root_fails, {
    let sb = Sandbox::builder().build().unwrap();
    let mut child = sb.spawn("sh", &["-c", "id -u; grep -E '^(Cap|NoNewPrivs)' /proc/self/status; echo x > /proc/sys/kernel/core_pattern; echo rc=$?; sleep 1"]).unwrap();
    // Find the program on the host: the child of the sandbox's init.
    let init = child.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    let prog = loop {
        let kids = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))
            .unwrap_or_default();
        if let Some(p) = kids.split_whitespace().next() {
            break p.to_string();
        }
        assert!(Instant::now() < deadline, "no program process found");
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = std::fs::read_to_string(format!("/proc/{prog}/status")).unwrap();
    let uids: Vec<u32> = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    let gids: Vec<u32> = status
        .lines()
        .find(|l| l.starts_with("Gid:"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        uids.iter().all(|&u| u != 0),
        "host uids of the program: {uids:?}"
    );
    assert!(
        gids.iter().all(|&g| g != 0),
        "host gids of the program: {gids:?}"
    );
    if common::is_root() {
        assert!(uids.iter().all(|&u| u == 65534), "{uids:?}");
    }
    let (out, outcome) = common::output_and_wait(&mut child);
    assert_eq!(outcome, Outcome::Exited(0));
    assert!(
        out.starts_with("1000\n"),
        "uid inside is 1000, never 0: {out}"
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{set}:\t0000000000000000")),
            "{set} empty: {out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(
        out.contains("rc=") && !out.contains("rc=0"),
        "core_pattern not writable: {out}"
    );
});

both!(root_dev_and_hostname_are_minimal, {
    let r = sh(&plain(), "ls /; echo --; ls /dev; echo --; hostname; ls /sys 2>&1 | head -1; ls /dev/vda /dev/sda /dev/mem 2>/dev/null | wc -l");
    let parts: Vec<&str> = r.stdout.split("--\n").collect();
    let root: Vec<&str> = parts[0].split_whitespace().collect();
    for d in ["bin", "dev", "etc", "lib", "proc", "tmp", "usr"] {
        assert!(root.contains(&d), "{d} in {root:?}");
    }
    for d in ["root", "home", "var", "sys", "boot", "work"] {
        assert!(!root.contains(&d), "host {d} is not reachable: {root:?}");
    }
    let dev: Vec<&str> = parts[1].split_whitespace().collect();
    for d in [
        "null", "zero", "full", "random", "urandom", "tty", "shm", "pts", "ptmx", "fd",
    ] {
        assert!(dev.contains(&d), "{d} in /dev {dev:?}");
    }
    assert!(dev.len() <= 16, "minimal /dev: {dev:?}");
    let rest: Vec<&str> = parts[2].lines().collect();
    assert_eq!(rest[0], "nanobox");
    assert_eq!(rest.last().unwrap().trim(), "0", "no disks or /dev/mem");
    let sb = Sandbox::builder().hostname("judge-7").build().unwrap();
    assert_eq!(sh(&sb, "hostname").stdout, "judge-7\n");
});

both!(etc_shows_the_sandbox_not_the_host, {
    // The host's name and identity are in /etc/hostname, /etc/hosts and /etc/machine-id: the
    // sandbox has its own, whatever the host has there, and the rest of /etc shows through.
    let sb = Sandbox::builder().hostname("box-17").build().unwrap();
    let script = "cat /etc/hostname; hostname; cat /etc/machine-id; \
                  python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'; \
                  cat /etc/hosts; echo ==; grep -c '^root:' /etc/passwd";
    let a = sh(&sb, script);
    let b = sh(&sb, script);
    assert_eq!(a.outcome, Outcome::Exited(0), "{a:?}");
    let lines: Vec<&str> = a.stdout.lines().collect();
    assert_eq!(lines[0..2], ["box-17", "box-17"], "{a:?}");
    let id = lines[2];
    assert!(
        id.len() == 32
            && id
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "a machine-id: {id:?}"
    );
    assert_eq!(
        lines[3], "127.0.1.1",
        "the sandbox's own name resolves: {a:?}"
    );
    let host_id = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
    assert_ne!(id, host_id.trim(), "not the host's machine-id");
    let b_id = b.stdout.lines().nth(2).unwrap();
    assert_ne!(id, b_id, "a new machine-id for each run");
    let host_name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let (hosts, passwd) = a.stdout.split_once("==\n").unwrap();
    if host_name != "box-17" && !host_name.is_empty() {
        assert!(
            !hosts.split_whitespace().any(|w| w == host_name),
            "the host's name shows in /etc/hosts: {hosts}"
        );
    }
    assert_eq!(passwd.trim(), "1", "the host's other files show through");
});

both!(the_sandbox_s_etc_files_cannot_be_changed, {
    let r = sh(
        &plain(),
        "for f in hostname hosts machine-id passwd; do echo x > /etc/$f; echo $f=$?; done; \
         rm -f /etc/machine-id; echo rm=$?; touch /etc/new; echo new=$?; cat /etc/hostname",
    );
    for f in ["hostname", "hosts", "machine-id", "passwd", "rm", "new"] {
        assert!(!r.stdout.contains(&format!("{f}=0")), "{f}: {r:?}");
    }
    assert_eq!(
        r.stderr.matches("Read-only file system").count(),
        6,
        "{r:?}"
    );
    assert!(r.stdout.ends_with("nanobox\n"), "{r:?}");
});

both!(tmp_is_private_bounded_and_executable, {
    let sb = Sandbox::builder()
        .tmp_size(8 * nanobox::MB)
        .build()
        .unwrap();
    let marker = format!("/tmp/nanobox-marker-{}", std::process::id());
    let r = sh(&sb, &format!("touch {marker}; printf '#!/bin/sh\\necho ran\\n' > /tmp/x.sh; chmod +x /tmp/x.sh; /tmp/x.sh; head -c 16M /dev/zero > /tmp/big; echo rc=$?; df -k /tmp | tail -1"));
    assert!(r.stdout.starts_with("ran\n"), "{r:?}");
    assert!(r.stdout.contains("rc=1"), "the size bound holds: {r:?}");
    assert!(
        !std::path::Path::new(&marker).exists(),
        "the sandbox's /tmp is not the host's"
    );
    // A second run starts with a fresh /tmp.
    assert_eq!(sh(&sb, "ls /tmp | wc -l").stdout.trim(), "0");
});

both!(ipc_namespace_hides_host_segments, {
    // SAFETY: creating and removing a private SysV segment on the host.
    let id = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o666) };
    assert!(id >= 0);
    let r = sh(&plain(), "tail -n +2 /proc/sysvipc/shm | wc -l");
    // SAFETY: removing the segment created above.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    assert_eq!(r.stdout.trim(), "0", "{r:?}");
});

both!(signal_dispositions_and_mask_are_reset, {
    // The test harness (like Rust programs and Python) ignores SIGPIPE; the program must not.
    let r = sh(&plain(), "grep -E '^Sig(Ign|Blk)' /proc/self/status");
    assert!(r.stdout.contains("SigBlk:\t0000000000000000"), "{r:?}");
    assert!(r.stdout.contains("SigIgn:\t0000000000000000"), "{r:?}");
});

#[test]
fn setuid_root_binary_gives_no_privilege() {
    if !common::is_root() {
        eprintln!("skipped: only root can create the setuid-root binary this test mounts");
        return;
    }
    let d = TempDir::new();
    common::compile_c(
        d.path(),
        "suid",
        "#include <stdio.h>\n#include <unistd.h>\nint main(void){ int r = setuid(0); printf(\"euid=%d setuid0=%d\\n\", (int)geteuid(), r); return 0; }\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    // On the host it really is setuid root: run as nobody, it gets euid 0.
    let host = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(d.join("suid"))
        .output()
        .unwrap();
    let dir_ok = std::fs::metadata(d.path())
        .map(|m| m.permissions().mode() & 0o001 != 0)
        .unwrap_or(false);
    if dir_ok {
        assert_eq!(
            String::from_utf8_lossy(&host.stdout),
            "euid=0 setuid0=0\n",
            "the fixture is setuid root"
        );
    }
    for perm in [Permission::ReadOnly, Permission::ReadWrite] {
        let sb = Sandbox::builder()
            .mount(d.path(), "/t", perm)
            .build()
            .unwrap();
        let r = sb.run("/t/suid", &[] as &[&str]).unwrap();
        assert_eq!(r.stdout, "euid=1000 setuid0=-1\n", "{perm:?}: {r:?}");
    }
}
