//! The kernel's shared pools, attacked from inside: a hostile sandbox takes all it can of a pool
//! the kernel keeps per user or per host, and holds it, while a host process of the same uid and
//! a second sandbox still get their share.
//!
//! These run as uid 65534 only (re-executed by root through setpriv): as root they would draw on
//! this shared host's root pools, and an unprivileged caller is the case where the sandbox and
//! the caller share one uid. Each hostile program tries a little more than its share and no
//! more, so that a missing bound fails the test without draining the host.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::io::{BufRead, BufReader};

use nanobox::{Child, KernelPool, Outcome, Sandbox};

fn read_u64(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// An eighth of the caller's allowance: the default bound (see `KernelPool`).
fn share(allowance: u64) -> u64 {
    (allowance / 8).max(1)
}

fn soft_rlimit(r: libc::__rlimit_resource_t) -> u64 {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a valid rlimit.
    assert_eq!(unsafe { libc::getrlimit(r, &mut l) }, 0);
    l.rlim_cur
}

/// Start `code` (Python) in `sb`; it takes what it can, prints one line, then holds it.
fn hold(sb: &Sandbox, code: &str, args: &[String]) -> (Child, String) {
    let mut argv = vec!["-c".to_string(), code.to_string()];
    argv.extend_from_slice(args);
    let mut child = sb.spawn("python3", &argv).expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

fn end(mut child: Child) {
    child.kill().unwrap();
    let _ = child.wait();
}

/// "N ERRNO" from a hostile program's first line.
fn counts(line: &str) -> (u64, i32) {
    let mut it = line.split(' ');
    let n = it.next().and_then(|s| s.parse().ok());
    let e = it.next().and_then(|s| s.parse().ok());
    match (n, e) {
        (Some(n), Some(e)) => (n, e),
        _ => panic!("unexpected output {line:?}"),
    }
}

const PRELUDE: &str = r#"
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def hold(n, e):
    print(n, e, flush=True)
    time.sleep(120)
"#;

fn plain() -> Sandbox {
    Sandbox::builder().build().unwrap()
}

as_user!(inotify_instances_are_bounded_per_sandbox, {
    let allowed = read_u64("/proc/sys/fs/inotify/max_user_instances");
    let want = share(allowed);
    let code = format!(
        "{PRELUDE}
n = 0
while n < int(sys.argv[1]):
    if libc.inotify_init1(0) < 0:
        break
    n += 1
hold(n, ctypes.get_errno())
"
    );
    let limit = [(want + 8).to_string()];
    let (a, line) = hold(&plain(), &code, &limit);
    assert_eq!(
        counts(&line),
        (want, libc::EMFILE),
        "hostile sandbox: {line}"
    );
    // A second sandbox gets its whole share while the first holds its own.
    let (b, line) = hold(&plain(), &code, &limit);
    assert_eq!(
        counts(&line),
        (want, libc::EMFILE),
        "second sandbox: {line}"
    );
    // And the caller's uid on the host still gets most of its allowance.
    let mut fds = Vec::new();
    for _ in 0..allowed / 2 {
        // SAFETY: inotify_init1 takes flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "host process of the same uid: inotify_init1 failed"
        );
        fds.push(fd);
    }
    for fd in fds {
        // SAFETY: closing descriptors opened above.
        unsafe { libc::close(fd) };
    }
    end(a);
    end(b);
});

as_user!(inotify_watches_are_bounded_per_sandbox, {
    let want = share(read_u64("/proc/sys/fs/inotify/max_user_watches"));
    let code = format!(
        "{PRELUDE}
fd = libc.inotify_init1(0)
os.mkdir('/tmp/w')
n = 0
while n < int(sys.argv[1]):
    p = b'/tmp/w/%d' % n
    open(p, 'w').close()
    if libc.inotify_add_watch(fd, p, 2) < 0:
        break
    n += 1
hold(n, ctypes.get_errno())
"
    );
    let (a, line) = hold(&plain(), &code, &[(want + 100).to_string()]);
    assert_eq!(
        counts(&line),
        (want, libc::ENOSPC),
        "hostile sandbox: {line}"
    );
    // The host process of the same uid adds watches while the sandbox holds its share.
    let d = common::TempDir::new();
    // SAFETY: inotify_init1 takes flags only.
    let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
    assert!(fd >= 0);
    for i in 0..500 {
        let p = d.join(&i.to_string());
        std::fs::write(&p, "").unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path and an inotify descriptor.
        let w = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), libc::IN_MODIFY) };
        assert!(w >= 0, "host watch {i} failed");
    }
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    end(a);
});

as_user!(pending_signals_are_bounded_per_sandbox, {
    let allowed = soft_rlimit(libc::RLIMIT_SIGPENDING);
    let want = share(allowed);
    let code = format!(
        "{PRELUDE}
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
n = 0
while n < int(sys.argv[1]):
    if libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_void_p(0)) < 0:
        break
    n += 1
hold(n, ctypes.get_errno())
"
    );
    let (a, line) = hold(&plain(), &code, &[(want + 100).to_string()]);
    let (n, e) = counts(&line);
    assert!(
        n <= want && n + 2 >= want && e == libc::EAGAIN,
        "hostile sandbox queued {n} (bound {want}), errno {e}"
    );
    // A second sandbox, and the host process of the same uid, still queue signals.
    let (b, line) = hold(&plain(), &code, &[(want + 100).to_string()]);
    let (n2, _) = counts(&line);
    assert!(n2 + 2 >= want, "second sandbox queued only {n2}");
    let host = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "{PRELUDE}signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])\n\
                 ok = sum(libc.sigqueue(os.getpid(), signal.SIGRTMIN, ctypes.c_void_p(0)) == 0 \
                 for _ in range(1000))\nprint('queued' if ok == 1000 else ok)"
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&host.stdout),
        "queued\n",
        "host process: {host:?}"
    );
    end(a);
    end(b);
});

/// Create POSIX message queues of one 1 KiB message until the kernel refuses; print how many.
const MQUEUE: &str = r#"
libc.mq_open.restype = ctypes.c_int
class Attr(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_long), ("maxmsg", ctypes.c_long), ("msgsize", ctypes.c_long), ("curmsgs", ctypes.c_long), ("pad", ctypes.c_long * 4)]
a = Attr(0, 1, 1024, 0)
tag = sys.argv[2]
n = 0
while n < int(sys.argv[1]):
    name = ("/nanobox-%s-%d" % (tag, n)).encode()
    if libc.mq_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600, ctypes.byref(a)) < 0:
        break
    n += 1
"#;

as_user!(message_queue_bytes_are_bounded_per_sandbox, {
    let allowed = soft_rlimit(libc::RLIMIT_MSGQUEUE);
    let want = share(allowed);
    let attempts = (allowed / 1024 / 2).to_string();
    let code = format!(
        "{PRELUDE}{MQUEUE}e = ctypes.get_errno()\n\
         lim = [l for l in open('/proc/self/limits') if l.startswith('Max msgqueue size')][0]\n\
         print(lim.split()[3], lim.split()[4])\nhold(n, e)\n"
    );
    let mut child = plain()
        .spawn("python3", &["-c", &code, &attempts, "a"])
        .unwrap();
    let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
    let limits = lines.next().unwrap().unwrap();
    let (n, e) = counts(&lines.next().unwrap().unwrap());
    drop(lines);
    // The program's RLIMIT_MSGQUEUE, soft and hard, is the share; and it holds no more than that
    // (Landlock refuses mq_open outright: the queues' filesystem is not among its rules).
    assert_eq!(limits, format!("{want} {want}"), "RLIMIT_MSGQUEUE");
    assert!(
        n * 1024 <= want && (n > 0 || e == libc::EACCES),
        "hostile sandbox made {n} queues of 1 KiB (bound {want} bytes), errno {e}"
    );
    let a = child;
    // The host process of the same uid makes queues too (in its own IPC namespace).
    let tag = format!("host{}", std::process::id());
    let host = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "{PRELUDE}{MQUEUE}\nfor i in range(n): libc.mq_unlink((\"/nanobox-%s-%d\" % (tag, i)).encode())\nprint(n)"
            ),
            "64",
            &tag,
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&host.stdout),
        "64\n",
        "host process: {host:?}"
    );
    end(a);
});

as_user!(ptys_are_bounded_per_sandbox, {
    let allowed = read_u64("/proc/sys/kernel/pty/max") - read_u64("/proc/sys/kernel/pty/reserve");
    let want = share(allowed);
    let code = format!(
        "{PRELUDE}
n, e = 0, 0
keep = []
try:
    while n < int(sys.argv[1]):
        keep.append(os.openpty())
        n += 1
except OSError as x:
    e = x.errno
hold(n, e)
"
    );
    let (a, line) = hold(&plain(), &code, &[(want + 16).to_string()]);
    assert_eq!(
        counts(&line),
        (want, libc::ENOSPC),
        "hostile sandbox: {line}"
    );
    let (b, line) = hold(&plain(), &code, &[(want + 16).to_string()]);
    assert_eq!(
        counts(&line),
        (want, libc::ENOSPC),
        "second sandbox: {line}"
    );
    end(a);
    end(b);
});

as_user!(a_pool_bound_can_be_set_and_is_refused_above_the_host_s, {
    let sb = Sandbox::builder()
        .kernel_pool_limit(KernelPool::InotifyInstances, 3)
        .kernel_pool_limit(KernelPool::LockedMemoryBytes, 64 << 10)
        .build()
        .unwrap();
    let r = sb
        .run(
            "sh",
            &["-c", "cat /proc/sys/user/max_inotify_instances; ulimit -l"],
        )
        .unwrap();
    assert_eq!(r.stdout, "3\n64\n", "{r:?}");
    let too_many = read_u64("/proc/sys/fs/inotify/max_user_instances") + 1;
    let e = Sandbox::builder()
        .kernel_pool_limit(KernelPool::InotifyInstances, too_many)
        .build()
        .unwrap_err()
        .to_string();
    assert!(e.contains("inotify_instances"), "{e}");
});

as_user!(locked_memory_is_bounded_per_process, {
    let want = share(soft_rlimit(libc::RLIMIT_MEMLOCK));
    let code = format!(
        "{PRELUDE}
import mmap, resource
soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
m = mmap.mmap(-1, soft * 2)
buf = ctypes.c_char.from_buffer(m)
r = libc.mlock(ctypes.addressof(buf), soft * 2)
print(soft, hard, r, ctypes.get_errno())
del buf
"
    );
    let r = plain().run("python3", &["-c", &code]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    let f: Vec<u64> = r
        .stdout
        .split_whitespace()
        .map(|x| x.parse::<i64>().unwrap() as u64)
        .collect();
    assert_eq!(
        &f[..2],
        &[want, want],
        "RLIMIT_MEMLOCK soft and hard: {r:?}"
    );
    assert_eq!(
        (f[2] as i64, f[3] as i32),
        (-1, libc::ENOMEM),
        "mlock past it fails"
    );
});

#[test]
fn aio_is_refused_unless_allowed_by_name() {
    let code = "import ctypes\nl = ctypes.CDLL(None, use_errno=True)\nctx = ctypes.c_ulong(0)\n\
                r = l.syscall(206, 1, ctypes.byref(ctx))\nprint(r, ctypes.get_errno())\n\
                if r == 0: l.syscall(207, ctx)";
    let r = plain().run("python3", &["-c", code]).unwrap();
    assert_eq!(r.stdout, format!("-1 {}\n", libc::EPERM), "{r:?}");
    let sb = Sandbox::builder()
        .seccomp(nanobox::SeccompPolicy::default().allow(&["io_setup"]))
        .build()
        .unwrap();
    let r = sb.run("python3", &["-c", code]).unwrap();
    assert_eq!(r.stdout, "0 0\n", "allowed by name: {r:?}");
}

#[test]
fn socket_buffers_count_toward_the_memory_limit() {
    // The sandbox's own cgroup, not a shared pool of root's: needs a cgroup, so root here.
    if !common::is_root() {
        eprintln!("skipped: a memory limit needs a writable cgroup, which only root has here");
        return;
    }
    // 32 loopback connections whose receivers never read: each can buffer megabytes.
    let code = r#"
import socket
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(64)
keep, total, buf = [], 0, b'x' * 65536
for i in range(32):
    c = socket.create_connection(l.getsockname()); s, _ = l.accept()
    c.setblocking(False)
    keep.append((c, s))
    while total < (256 << 20):
        try:
            total += c.send(buf)
        except BlockingIOError:
            break
print(total)
"#;
    let limit = 32u64 << 20;
    let sb = Sandbox::builder().memory_limit(limit).build().unwrap();
    let r = sb.run("python3", &["-c", code]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    let total: u64 = r.stdout.trim().parse().unwrap();
    assert!(
        total > 1 << 20 && total < limit + (limit / 2),
        "bytes buffered in loopback TCP under a 32 MiB limit: {total}"
    );
    assert!(
        r.peak_memory >= total,
        "the peak ({}) counts the socket buffers ({total})",
        r.peak_memory
    );
}
