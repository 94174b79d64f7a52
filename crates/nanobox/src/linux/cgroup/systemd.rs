//! Run cgroups for a caller without a delegated cgroup, from the systemd user manager.
//!
//! Where a user manager runs (every login of a systemd distribution), nanobox asks it over D-Bus
//! for a transient scope with `Delegate=yes`, as `systemd-run --user --scope -p Delegate=yes`
//! would, and creates its run cgroups inside that scope.
//!
//! Which process goes into the scope: never the caller. `systemd-run --scope` moves its caller,
//! which for an embedding application would move the whole application (and its memory
//! accounting) into a unit it did not ask for. Instead the scope is made for one small helper
//! process of the caller's (the "holder"), which does nothing but keep the scope alive for the
//! caller's lifetime:
//!
//! - it is a `clone(CLONE_VM)` child: it shares the caller's address space (nothing is copied, no
//!   memory of the caller's stays pinned), runs on a stack of its own with every signal blocked,
//!   closes every descriptor but the read end of a pipe, and makes raw system calls only;
//! - the caller holds the pipe's write end (close-on-exec); when the caller's process ends (or
//!   execs), the holder reads EOF and exits, the scope is empty, and systemd removes it together
//!   with whatever run cgroups a killed caller left in it.
//!
//! Inside the scope the holder sits in a leaf (`holder`), so that the scope may enable the
//! controllers for its children (the no-internal-process rule), and each run gets a sibling cgroup.
//! A run's init is cloned straight into its cgroup (`CLONE_INTO_CGROUP`) where the kernel allows the
//! caller to move processes there (the caller's own cgroup and the scope share an ancestor the
//! caller may write: a desktop application under the same user manager). Otherwise (a login session's
//! scope, which belongs to the system manager) the user manager moves the init, asked with
//! `AttachProcessesToUnit`, while the init waits to be released; the user manager asks the system
//! manager in turn where it may not move the process itself. Either way the init is in its cgroup,
//! with the limits written, before it runs anything of the program's.
//!
//! The D-Bus calls are behind [`UserManager`], so that the sequence is tested without a bus.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fs::CgroupFs;
use super::parse;

/// The cgroup, inside the scope, that holds the holder.
pub(crate) const HOLDER_LEAF: &str = "holder";

/// The calls nanobox makes to a systemd user manager.
pub(crate) trait UserManager: Send + Sync {
    /// `StartTransientUnit(name, "fail", [PIDs=[pid], Delegate=true, Description=...], [])`.
    fn start_scope(&self, name: &str, pid: u32, description: &str) -> io::Result<()>;
    /// `AttachProcessesToUnit(unit, subcgroup, [pid])`.
    fn attach(&self, unit: &str, subcgroup: &str, pid: u32) -> io::Result<()>;
    /// How nanobox reached the manager, for `doctor` ("the user bus at ...").
    fn describe(&self) -> String;
}

/// A scope delegated to this process by the user manager.
pub(crate) struct Scope {
    /// The unit's name, `nanobox-<pid>-<start time>.scope`.
    pub(crate) unit: String,
    /// Its cgroup directory.
    pub(crate) dir: PathBuf,
    /// Whether this process may clone straight into the scope's cgroups; else each run's init is
    /// moved there by the user manager.
    pub(crate) direct: bool,
    /// The holder's pid.
    pub(crate) holder: i32,
    manager: Mutex<Box<dyn UserManager>>,
    /// The write end of the holder's pipe: the holder lives as long as this process holds it.
    _lifeline: Option<OwnedFd>,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("unit", &self.unit)
            .field("dir", &self.dir)
            .field("direct", &self.direct)
            .field("holder", &self.holder)
            .finish()
    }
}

impl Scope {
    /// Ask the user manager to move `pid` into the run cgroup `run` (a child of the scope).
    pub(crate) fn attach(&self, run: &str, pid: i32) -> io::Result<()> {
        let m = self.manager.lock().unwrap_or_else(|p| p.into_inner());
        m.attach(&self.unit, &format!("/{run}"), pid as u32)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "asking the systemd user manager to move the sandbox into {}/{run}: {e}",
                        self.unit
                    ),
                )
            })
    }

    /// How the scope was obtained, for `doctor`.
    pub(crate) fn describe(&self) -> String {
        let m = self.manager.lock().unwrap_or_else(|p| p.into_inner());
        format!(
            "{} (Delegate=yes), asked of the systemd user manager over {}; it holds one helper \
             process of this caller's (pid {}), never the caller; each run's init is {}",
            self.unit,
            m.describe(),
            self.holder,
            if self.direct {
                "cloned straight into its cgroup"
            } else {
                "moved into its cgroup by the user manager (AttachProcessesToUnit), as this \
                 caller's own cgroup belongs to another manager"
            }
        )
    }
}

/// What [`establish`] needs from the host, injectable for tests.
pub(crate) struct Env<'a> {
    pub(crate) fs: &'a dyn CgroupFs,
    /// Where the cgroup2 hierarchy's root is mounted.
    pub(crate) mount: &'a Path,
    /// The caller's v2 cgroup path (the `0::` line of /proc/self/cgroup).
    pub(crate) caller_cgroup: &'a str,
    /// The v2 cgroup path of a process (the `0::` line of /proc/PID/cgroup).
    pub(crate) cgroup_of: &'a dyn Fn(i32) -> Option<String>,
    /// How long the manager may take to start the scope.
    pub(crate) timeout: Duration,
}

/// Make the scope: start it for `holder`, wait until the holder is in it, move the holder into
/// its leaf, enable the controllers the scope offers for its children.
pub(crate) fn establish(
    manager: Box<dyn UserManager>,
    env: &Env<'_>,
    unit: String,
    holder: i32,
    lifeline: Option<OwnedFd>,
    description: &str,
) -> Result<Scope, String> {
    manager
        .start_scope(&unit, holder as u32, description)
        .map_err(|e| format!("the systemd user manager refused the scope {unit}: {e}"))?;
    let deadline = Instant::now() + env.timeout;
    let path = loop {
        match (env.cgroup_of)(holder) {
            Some(p) if p.rsplit('/').next() == Some(unit.as_str()) => break p,
            _ if Instant::now() >= deadline => {
                return Err(format!(
                    "the systemd user manager accepted the scope {unit} but did not move its \
                     process there within {:?}",
                    env.timeout
                ))
            }
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let dir = env.mount.join(path.trim_start_matches('/'));
    let fs = env.fs;
    let err = |what: &str, e: io::Error| format!("{what} {}: {e}", dir.display());
    if !fs.writable(&dir) || !fs.writable(&dir.join("cgroup.procs")) {
        return Err(format!(
            "the scope {} is not delegated to this user (not writable)",
            dir.display()
        ));
    }
    let leaf = dir.join(HOLDER_LEAF);
    fs.mkdir(&leaf)
        .map_err(|e| err("creating the holder's leaf in", e))?;
    fs.write(&leaf.join("cgroup.procs"), &holder.to_string())
        .map_err(|e| err("moving the holder into its leaf in", e))?;
    let offered = fs
        .read(&dir.join("cgroup.controllers"))
        .map_err(|e| err("reading the controllers of", e))?;
    for c in ["memory", "pids", "cpu"] {
        if offered.split_ascii_whitespace().any(|o| o == c) {
            fs.write(&dir.join("cgroup.subtree_control"), &format!("+{c}"))
                .map_err(|e| err(&format!("enabling {c} for the children of"), e))?;
        }
    }
    let common = common_ancestor(env.caller_cgroup, &path);
    let direct = fs.writable(
        &env.mount
            .join(common.trim_start_matches('/'))
            .join("cgroup.procs"),
    );
    Ok(Scope {
        unit,
        dir,
        direct,
        holder,
        manager: Mutex::new(manager),
        _lifeline: lifeline,
    })
}

/// The longest common ancestor of two cgroup paths ("/" at least).
pub(crate) fn common_ancestor(a: &str, b: &str) -> String {
    let mut out = String::new();
    for (x, y) in a.split('/').zip(b.split('/')).skip(1) {
        if x != y || x.is_empty() {
            break;
        }
        out.push('/');
        out.push_str(x);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The v2 cgroup path of a live process.
pub(crate) fn cgroup_of(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse::cgroup_lines(&text)
        .into_iter()
        .find(|l| l.id == 0 && l.controllers.is_empty())
        .map(|l| l.path)
}

/// The process-wide scope: made once per process (keyed by pid, so that a forked child makes its
/// own), with the reason when none could be had.
type Cached = (i32, Result<Arc<Scope>, String>);
static SCOPE: Mutex<Option<Cached>> = Mutex::new(None);

/// This process's delegated scope, made on first use. `mount` is the cgroup2 mount's root and
/// `caller_cgroup` this process's v2 cgroup path.
pub(crate) fn scope(mount: &Path, caller_cgroup: &str) -> Result<Arc<Scope>, String> {
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    let mut slot = SCOPE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((p, r)) = slot.as_ref() {
        if *p == pid {
            return r.clone();
        }
    }
    let r = make_scope(mount, caller_cgroup, pid).map(Arc::new);
    *slot = Some((pid, r.clone()));
    r
}

fn make_scope(mount: &Path, caller_cgroup: &str, pid: i32) -> Result<Scope, String> {
    let manager = bus::connect()?;
    let start = super::fs::RealFs.start_time(pid).unwrap_or(0);
    let unit = format!("nanobox-{pid}-{start}.scope");
    let (holder, lifeline) = holder::spawn().map_err(|e| format!("starting the helper: {e}"))?;
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let r = establish(
        Box::new(manager),
        &Env {
            fs: &super::fs::RealFs,
            mount,
            caller_cgroup,
            cgroup_of: &cgroup_of,
            timeout: Duration::from_secs(10),
        },
        unit,
        holder,
        Some(lifeline),
        &format!("nanobox sandboxes of {exe} (pid {pid})"),
    );
    // On failure, dropping the lifeline ends the holder; reap it so that no zombie stays.
    if r.is_err() {
        holder::reap(holder);
    }
    r
}

/// The holder process.
mod holder {
    use super::*;

    const STACK: usize = 64 * 1024;

    /// Start the holder: its pid and the write end of its pipe.
    pub(super) fn spawn() -> io::Result<(i32, OwnedFd)> {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        // SAFETY: a fresh private anonymous mapping; it is never unmapped (the holder may run on
        // it for the caller's whole lifetime; 64 KiB once per process).
        let stack = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                STACK,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::PRIVATE | rustix::mm::MapFlags::STACK,
            )
        }?;
        let mask = crate::linux::userns::block_all_signals();
        // SAFETY: the child runs `holder_main` on the new stack (the top of the mapping: stacks
        // grow down on x86_64 and aarch64), sharing our address space (CLONE_VM) but not our
        // descriptors, signal handlers or thread-local state it never touches: it makes raw
        // system calls only, on its own stack, with every signal blocked (inherited from this
        // thread's mask). Exit signal 0: nothing is sent to the caller when it ends.
        let pid = unsafe {
            libc::clone(
                holder_main,
                stack.cast::<u8>().add(STACK).cast(),
                libc::CLONE_VM,
                r.as_raw_fd() as usize as *mut libc::c_void,
            )
        };
        let e = io::Error::last_os_error();
        crate::linux::userns::restore_signals(&mask);
        drop(r);
        if pid <= 0 {
            return Err(e);
        }
        Ok((pid, w))
    }

    /// The holder: close every descriptor but the pipe, leave the caller's working directory,
    /// wait for EOF, exit.
    extern "C" fn holder_main(arg: *mut libc::c_void) -> libc::c_int {
        let fd = arg as usize as RawFd;
        // SAFETY: raw system calls on integers and a static path; close_range's arguments are
        // valid (ranges below and above the pipe), so it sets no errno.
        unsafe {
            if fd > 0 {
                libc::syscall(libc::SYS_close_range, 0u32, (fd - 1) as u32, 0u32);
            }
            libc::syscall(libc::SYS_close_range, (fd + 1) as u32, u32::MAX, 0u32);
        }
        let _ = rustix::process::chdir(c"/");
        let _ = rustix::thread::set_name(c"nanobox-scope");
        // SAFETY: `fd` is the pipe's read end, open in this process until it exits.
        let pipe = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let mut byte = [0u8; 1];
        loop {
            match rustix::io::read(pipe, &mut byte) {
                Err(rustix::io::Errno::INTR) => continue,
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
        0
    }

    /// Reap a holder whose lifeline was dropped (it exits on EOF).
    pub(super) fn reap(pid: i32) {
        // SAFETY: waitpid on our own child; __WALL because it sends no exit signal.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::__WALL) };
    }
}

/// The real user manager, over D-Bus (zbus's blocking API on async-io: zbus's tokio mode would
/// turn on tokio's process driver, whose signal pipe would stay open in the caller for good).
mod bus {
    use super::*;
    use zbus::zvariant::Value;

    pub(super) struct Bus {
        conn: zbus::blocking::Connection,
        how: String,
    }

    const DEST: &str = "org.freedesktop.systemd1";
    const PATH: &str = "/org/freedesktop/systemd1";
    const IFACE: &str = "org.freedesktop.systemd1.Manager";

    /// The user bus (the user manager's private socket would need no bus daemon, but it speaks
    /// D-Bus with sender fields that zbus 5 refuses).
    pub(super) fn connect() -> Result<Bus, String> {
        let uid = rustix::process::geteuid().as_raw();
        let runtime_dir = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(format!("/run/user/{uid}")));
        let private = runtime_dir.join("systemd/private");
        let address = std::env::var("DBUS_SESSION_BUS_ADDRESS")
            .unwrap_or_else(|_| format!("unix:path={}", runtime_dir.join("bus").display()));
        let bus = runtime_dir.join("bus");
        if address.ends_with("/bus") && !bus.exists() {
            return Err(if private.exists() {
                format!(
                    "a systemd user manager runs for uid {uid}, but there is no user bus \
                     ({} is missing: install dbus-user-session)",
                    bus.display()
                )
            } else {
                format!(
                    "no systemd user manager runs for uid {uid} ({} does not exist)",
                    bus.display()
                )
            });
        }
        zbus::blocking::connection::Builder::address(address.as_str())
            .and_then(|b| b.method_timeout(Duration::from_secs(10)).build())
            .map(|conn| Bus {
                conn,
                how: format!("the user bus {address}"),
            })
            .map_err(|e| format!("the user bus {address} could not be reached: {e}"))
    }

    impl Bus {
        fn call<B>(&self, method: &str, body: &B) -> io::Result<()>
        where
            B: serde::Serialize + zbus::zvariant::DynamicType,
        {
            self.conn
                .call_method(Some(DEST), PATH, Some(IFACE), method, body)
                .map(drop)
                .map_err(|e| match e {
                    zbus::Error::MethodError(name, text, _) => io::Error::other(format!(
                        "{}{}",
                        name.as_str(),
                        text.map(|t| format!(": {t}")).unwrap_or_default()
                    )),
                    e => io::Error::other(e.to_string()),
                })
        }
    }

    impl UserManager for Bus {
        fn start_scope(&self, name: &str, pid: u32, description: &str) -> io::Result<()> {
            let props: Vec<(&str, Value<'_>)> = vec![
                ("PIDs", Value::from(vec![pid])),
                ("Delegate", Value::from(true)),
                ("Description", Value::from(description)),
            ];
            let aux: Vec<(&str, Vec<(&str, Value<'_>)>)> = Vec::new();
            self.call("StartTransientUnit", &(name, "fail", props, aux))
        }

        fn attach(&self, unit: &str, subcgroup: &str, pid: u32) -> io::Result<()> {
            self.call("AttachProcessesToUnit", &(unit, subcgroup, vec![pid]))
        }

        fn describe(&self) -> String {
            self.how.clone()
        }
    }
}
