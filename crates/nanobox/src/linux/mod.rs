//! The Linux backend: namespaces, a fresh root, no privileges.
//!
//! One file per concern: [`plan`] (what the root looks like), [`sys`] (the setup syscalls),
//! [`child`] (the code between clone and exec), [`userns`] (ids and the clone), [`process`] (the
//! running sandbox seen from the caller), [`probe`] (what the host supports), [`apparmor`]
//! (Ubuntu's restriction of unprivileged user namespaces, told apart from other failures),
//! [`container`] (what a container runtime refuses: namespaces, a new /proc).

mod apparmor;
mod cgroup;
mod child;
mod container;
mod degraded;
mod landlock;
mod limits;
mod memwatch;
mod plan;
mod pools;
mod probe;
mod process;
pub(crate) mod seccomp;
mod sys;
mod userns;

use std::ffi::{c_char, CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Result};
use crate::policy::{Mount, Policy, Stdin};

pub(crate) use probe::probe;

/// Remove run cgroups whose owner is gone.
pub(crate) fn clean_stale() -> Result<Vec<std::path::PathBuf>> {
    cgroup::sweep_stale(&cgroup::Host::detect())
}
pub(crate) use process::{collect, OutputPipe, Process};

/// What a built sandbox keeps for its runs: the plan and every string, made once.
pub(crate) struct Prepared {
    plan: Vec<plan::Op>,
    /// Each user mount's source, opened at build (in the order of `policy.mounts`).
    held: Vec<HeldSource>,
    mode: plan::MountMode,
    maps: userns::IdMaps,
    /// Root callers: maps 0 to the sandbox's host uid, for the user's mounts.
    idmap_userns: Option<OwnedFd>,
    /// Root callers on filesystems that support it: hides the program's ids, for /etc.
    etc_userns: Option<OwnedFd>,
    cap_last: u32,
    filters: seccomp::Filters,
    landlock: Option<landlock::Layer>,
    /// Set when the host has no user namespaces and the policy allowed the degraded mode.
    degraded: Option<degraded::Degraded>,
    limits: limits::LimitsPlan,
    /// With a memory limit by RLIMIT_AS: how its refusals are observed.
    memwatch: Option<memwatch::Plan>,
    ncpu: u64,
    /// The degraded mode's and the degraded limits' weaknesses.
    notes: Vec<String>,
    /// With a network allowlist: the filtering proxy each run serves.
    proxy: Option<crate::proxy::ProxyConfig>,
    workdir: CString,
    env: Vec<CString>,
    path_dirs: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("steps", &self.plan.len())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

pub(crate) fn prepare(policy: &Policy) -> Result<Prepared> {
    // The syscall filter has tables for x86_64 and aarch64 only: a build for another
    // architecture runs nothing.
    seccomp::Arch::native()?;
    // Full isolation needs a user namespace with capabilities in it and a new /proc in the
    // sandbox's namespaces; without either, the degraded mode stands in only with the opt-in.
    if let Err(blocked) = container::check() {
        return match (&blocked.lost, policy.allow_degraded_isolation) {
            (Some(lost), true) => prepare_degraded(policy, lost, blocked.missing),
            _ => Err(blocked.error),
        };
    }
    let root = rustix::process::geteuid().is_root();
    // Root prepares idmapped trees in the parent (only the initial user namespace may idmap);
    // an unprivileged caller's init binds the host paths itself.
    let mode = if root {
        plan::MountMode::Prepared
    } else {
        plan::MountMode::InChild
    };
    let idmap_userns = if root && !policy.mounts.is_empty() {
        Some(userns::idmap_userns(userns::ROOT_HOST_ID).map_err(userns::diagnose_clone_error)?)
    } else {
        None
    };
    // The safe /etc: as root, an idmapped /etc lets the kernel enforce "world-readable only" with
    // no walk of /etc; where that cannot be had (not root, or a filesystem without idmapped
    // mounts), walk /etc now and cover what "other" may not read.
    // The idmapped /etc is the lower layer of the sandbox's /etc overlay, and overlayfs takes
    // idmapped layers from Linux 5.19 on; before that, the walked and masked /etc.
    let etc_userns = if root && kernel_at_least(5, 19) {
        userns::etc_userns(userns::ROOT_HOST_ID)
            .ok()
            .filter(|ns| prepare_tree(Path::new("/etc"), plan_ro(), ns).is_ok())
    } else {
        None
    };
    let etc = match etc_userns {
        Some(_) => plan::EtcMode::Prepared {
            slot: policy.mounts.len(),
        },
        None => plan::EtcMode::Masked,
    };
    let ids = seccomp::ProgramIds {
        uid: userns::SANDBOX_ID,
        gid: userns::SANDBOX_ID,
    };
    let filters =
        seccomp::filters(&policy.seccomp, Some(ids)).map_err(|reason| Error::InvalidOption {
            option: "seccomp",
            reason,
        })?;
    let held = hold_sources(policy)?;
    let layout = plan::HostLayout::read(etc == plan::EtcMode::Masked);
    let ids: Vec<sys::HostId> = held.iter().map(|h| h.id).collect();
    let pools = pools::plan(&policy.pools, &pools::host_allowance())?;
    let plan = plan::build(policy, &layout, mode, etc, &ids, &pools);
    let landlock = landlock::Layer::prepare(policy, &layout.dirs)?;
    // Without Landlock the namespaces would stand alone: weaker than a run here is anywhere
    // else, so only with the opt-in, and then said in every result.
    let no_landlock = landlock.is_none();
    if no_landlock && !policy.allow_degraded_isolation {
        return Err(landlock::missing_error());
    }
    let workdir = userns::cstr_of("working_dir", policy.working_dir.as_os_str().as_bytes())?;
    let (env, path_dirs) = env_strings(policy)?;
    let mut prep = Prepared {
        plan,
        held,
        mode,
        maps: userns::IdMaps::for_caller(),
        idmap_userns,
        etc_userns,
        cap_last: userns::cap_last(),
        filters,
        landlock,
        degraded: None,
        notes: Vec::new(),
        proxy: crate::proxy::config_for(policy)?,
        limits: limits::plan(policy)?,
        memwatch: None,
        ncpu: limits::online_cpus(),
        workdir,
        env,
        path_dirs,
    };
    if no_landlock {
        prep.notes.push(landlock::MISSING_NOTE.into());
    }
    prep.memwatch = memwatch::plan(&mut prep.limits);
    let limit_notes = prep.limits.notes();
    prep.notes.extend(limit_notes);
    prep.limits.rlimits.extend(pools.rlimits);
    Ok(prep)
}

/// Whether the running kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) >= (major, minor)
}

/// A mount source opened once, when the sandbox was built: the file every run mounts. Holding it
/// keeps its inode allocated, so its (st_dev, st_ino) names it alone for as long as it is held.
struct HeldSource {
    fd: OwnedFd,
    id: sys::HostId,
}

/// Open every mount source without following a symlink (`host_canonical` has none) and keep it.
fn hold_sources(policy: &Policy) -> Result<Vec<HeldSource>> {
    policy
        .mounts
        .iter()
        .map(|m| {
            let step = || {
                format!(
                    "opening the mount source {} ({}) without following symlinks",
                    m.host.display(),
                    m.host_canonical.display()
                )
            };
            let fd = sys::open_no_symlinks(&m.host_canonical).map_err(|e| Error::Setup {
                step: step(),
                source: e,
            })?;
            let st = rustix::fs::fstat(&fd).map_err(|e| Error::Setup {
                step: step(),
                source: e.into(),
            })?;
            // O_PATH|O_NOFOLLOW opens a trailing symlink itself: one that took the place of the
            // source since it was checked is not held.
            if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                return Err(Error::Setup {
                    step: step(),
                    source: io::Error::from_raw_os_error(libc::ELOOP),
                });
            }
            Ok(HeldSource {
                fd,
                id: (st.st_dev, st.st_ino),
            })
        })
        .collect()
}

/// A mount source's path that names another file than the one held.
const REPLACED: &str = "it now names something else (the directory or file held was removed, \
                        renamed, or replaced by another one or by a symlink)";

/// What reopening a mount source's path without symlinks says about it, when that means the path
/// no longer names the held file.
fn change_reason(errno: i32) -> Option<&'static str> {
    Some(match errno {
        libc::ESTALE => REPLACED,
        libc::ENOENT => "it no longer exists (removed or renamed)",
        libc::ELOOP => "it, or a directory on the way to it, is now a symlink",
        libc::ENOTDIR => "a directory on the way to it is no longer a directory",
        _ => return None,
    })
}

fn source_changed(m: &Mount, reason: &str) -> Error {
    Error::MountSourceChanged {
        path: m.host.clone(),
        sandbox: m.sandbox.clone(),
        reason: reason.into(),
    }
}

/// Check in the caller that a mount's path still names its held source.
fn check_held(m: &Mount, held: &HeldSource) -> Result<()> {
    let now = sys::open_no_symlinks(&m.host_canonical)
        .and_then(|fd| sys::file_id(fd.as_fd()).map_err(io::Error::from));
    match now {
        Ok(id) if id == held.id => Ok(()),
        Ok(_) => Err(source_changed(m, REPLACED)),
        Err(e) => match e.raw_os_error().and_then(change_reason) {
            Some(reason) => Err(source_changed(m, reason)),
            None => Err(Error::Setup {
                step: format!(
                    "opening the mount source {} again (no symlink may be followed)",
                    m.host.display()
                ),
                source: e,
            }),
        },
    }
}

/// Receive the proxy's listener that the init sent over `sock`.
fn recv_listener(sock: &OwnedFd) -> io::Result<std::net::TcpListener> {
    match sys::recv_fd(sock, &mut [0u8; 1])? {
        (_, Some(fd)) => Ok(std::net::TcpListener::from(fd)),
        (_, None) => Err(io::Error::other("the sandbox init sent no listener")),
    }
}

/// The environment's strings and the PATH directories the program is looked up in.
fn env_strings(policy: &Policy) -> Result<(Vec<CString>, Vec<Vec<u8>>)> {
    let mut env = Vec::with_capacity(policy.env.len());
    let mut path_dirs = Vec::new();
    for (k, v) in &policy.env {
        env.push(userns::cstr_of("env", format!("{k}={v}").as_bytes())?);
        if k == "PATH" {
            path_dirs = v
                .split(':')
                .map(|d| {
                    if d.is_empty() {
                        ".".as_bytes().to_vec()
                    } else {
                        d.as_bytes().to_vec()
                    }
                })
                .collect();
        }
    }
    Ok((env, path_dirs))
}

/// A sandbox for a host without user namespaces or without a new /proc for them, with the
/// caller's explicit consent; `lost` says what is missing and why.
fn prepare_degraded(policy: &Policy, lost: &str, missing: &'static str) -> Result<Prepared> {
    let layout = plan::HostLayout::read(false);
    let deg = degraded::prepare(policy, lost, missing, &layout.dirs)?;
    let filters =
        seccomp::filters(&degraded::seccomp_policy(&policy.seccomp), None).map_err(|reason| {
            Error::InvalidOption {
                option: "seccomp",
                reason,
            }
        })?;
    let (env, path_dirs) = env_strings(policy)?;
    let mut prep = Prepared {
        plan: Vec::new(),
        held: hold_sources(policy)?,
        mode: plan::MountMode::InChild,
        maps: userns::IdMaps::for_caller(),
        idmap_userns: None,
        etc_userns: None,
        cap_last: userns::cap_last(),
        filters,
        landlock: None,
        notes: deg.notes.clone(),
        proxy: None,
        degraded: Some(deg),
        limits: limits::plan(policy)?,
        memwatch: None,
        ncpu: limits::online_cpus(),
        workdir: userns::cstr_of("working_dir", policy.working_dir.as_os_str().as_bytes())?,
        env,
        path_dirs,
    };
    prep.memwatch = memwatch::plan(&mut prep.limits);
    let limit_notes = prep.limits.notes();
    prep.notes.extend(limit_notes);
    // The rlimit-bounded pools hold without namespaces too; the others are the host's here.
    let pools = pools::plan(&policy.pools, &pools::host_allowance())?;
    prep.limits.rlimits.extend(pools.rlimits);
    Ok(prep)
}

impl Prepared {
    /// What is weaker than full isolation in every run of this sandbox (empty when nothing is).
    pub(crate) fn degraded_notes(&self) -> &[String] {
        &self.notes
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("creating a pipe", e.into()))
}

/// The descriptor the program reads as stdin, and for [`Stdin::Piped`] the caller's writing end.
fn stdin_fd(stdin: &Stdin) -> Result<(OwnedFd, Option<OwnedFd>)> {
    if let Stdin::Piped = stdin {
        let (r, w) = pipe()?;
        return Ok((r, Some(w)));
    }
    let fd = match stdin {
        Stdin::Null => {
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::io("opening /dev/null for stdin", e.into()))
        }
        Stdin::Bytes(data) => {
            let ctx = |e: rustix::io::Errno| Error::io("preparing stdin bytes", e.into());
            let fd = rustix::fs::memfd_create(
                "nanobox-stdin",
                rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
            )
            .map_err(ctx)?;
            let mut f = std::fs::File::from(fd);
            f.write_all(data)
                .map_err(|e| Error::io("preparing stdin bytes", e))?;
            let fd = OwnedFd::from(f);
            rustix::fs::fcntl_add_seals(
                &fd,
                rustix::fs::SealFlags::WRITE
                    | rustix::fs::SealFlags::GROW
                    | rustix::fs::SealFlags::SHRINK
                    | rustix::fs::SealFlags::SEAL,
            )
            .map_err(ctx)?;
            rustix::fs::seek(&fd, rustix::fs::SeekFrom::Start(0)).map_err(ctx)?;
            Ok(fd)
        }
        Stdin::File(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| Error::io(format!("opening stdin file {}", p.display()), e))?;
            if rustix::termios::isatty(&f) {
                return Err(Error::InvalidOption {
                    option: "stdin",
                    reason: format!(
                        "{} is a terminal; the program could drive it with ioctls. Pass a pipe \
                         or a regular file instead",
                        p.display()
                    ),
                });
            }
            Ok(OwnedFd::from(f))
        }
        Stdin::Fd(fd) => {
            if rustix::termios::isatty(fd) {
                return Err(Error::InvalidOption {
                    option: "stdin",
                    reason: "the descriptor is a terminal; the program could drive it with \
                             ioctls. Pass a pipe or a file instead"
                        .into(),
                });
            }
            fd.try_clone()
                .map_err(|e| Error::io("duplicating the stdin descriptor", e))
        }
        Stdin::Piped => unreachable!("handled above"),
    }?;
    Ok((fd, None))
}

fn plan_ro() -> u64 {
    sys::ATTR_RDONLY | sys::ATTR_NOSUID | sys::ATTR_NODEV
}

/// A detached, idmapped copy of the mount tree at the host path `path` (no symlink followed),
/// with the mount attributes `attr`.
fn prepare_tree(path: &Path, attr: u64, userns_fd: &OwnedFd) -> io::Result<OwnedFd> {
    idmapped_tree(&sys::open_no_symlinks(path)?, attr, userns_fd)
}

/// A detached, idmapped copy of the mount tree at the open descriptor `fd`.
fn idmapped_tree(fd: &OwnedFd, attr: u64, userns_fd: &OwnedFd) -> io::Result<OwnedFd> {
    let tree = rustix::mount::open_tree(
        fd,
        c"",
        rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
            | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
            | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH
            | rustix::mount::OpenTreeFlags::AT_RECURSIVE,
    )?;
    sys::mount_setattr(
        tree.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        attr | sys::ATTR_IDMAP,
        userns_fd.as_raw_fd(),
    )
    .map_err(io::Error::from_raw_os_error)?;
    Ok(tree)
}

/// The trees a root caller's run attaches: the user's mounts (idmapped so that root's files are the
/// sandbox user's), then /etc (idmapped so that no file is), in the slots the plan expects.
fn prepare_mounts(policy: &Policy, prep: &Prepared) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::with_capacity(policy.mounts.len() + 1);
    if let Some(ns) = &prep.idmap_userns {
        for (m, held) in policy.mounts.iter().zip(&prep.held) {
            // The tree is cloned from the descriptor held since build(), once the path is known
            // to name it still (not a directory that took its place, nor a deleted one).
            check_held(m, held)?;
            let tree =
                idmapped_tree(&held.fd, plan::user_mount_attr(m.permission), ns).map_err(|e| {
                    Error::Setup {
                        step: format!(
                        "preparing the mount of {} at {} (idmapped so that the sandbox user, host \
                         uid {}, can use the caller's files; the filesystem must support idmapped \
                         mounts: ext4, xfs, btrfs, tmpfs on Linux 6.3+, ...)",
                        m.host.display(),
                        m.sandbox.display(),
                        userns::ROOT_HOST_ID
                    ),
                        source: e,
                    }
                })?;
            out.push(tree);
        }
    }
    if let Some(ns) = &prep.etc_userns {
        out.push(
            prepare_tree(Path::new("/etc"), plan_ro(), ns).map_err(|e| Error::Setup {
                step: "preparing the idmapped /etc".into(),
                source: e,
            })?,
        );
    }
    Ok(out)
}

/// Start a run: clone into fresh namespaces, write the id maps, release the init, and wait until
/// the program has been executed (or report why it could not be).
pub(crate) fn spawn(
    policy: &Policy,
    prep: &Prepared,
    program: &OsStr,
    args: &[OsString],
    stdin: &Stdin,
    own_env: bool,
) -> Result<(Process, OutputPipe, OutputPipe, Option<std::io::PipeWriter>)> {
    let prog = program.as_bytes();
    // A run with an environment or working directory of its own (Command::env, current_dir):
    // its environment, PATH and working directory from its policy instead of the prepared ones.
    let call_env = own_env.then(|| env_strings(policy)).transpose()?;
    let call_workdir = own_env
        .then(|| userns::cstr_of("working_dir", policy.working_dir.as_os_str().as_bytes()))
        .transpose()?;
    let path_dirs = call_env.as_ref().map_or(&prep.path_dirs, |(_, d)| d);
    if prog.is_empty() {
        return Err(Error::InvalidOption {
            option: "program",
            reason: "the program name is empty".into(),
        });
    }
    let exec_paths: Vec<CString> = if prog.contains(&b'/') {
        vec![userns::cstr_of("program", prog)?]
    } else {
        path_dirs
            .iter()
            .map(|d| {
                let mut p = d.clone();
                p.push(b'/');
                p.extend_from_slice(prog);
                userns::cstr_of("program", &p)
            })
            .collect::<Result<_>>()?
    };
    let mut argv_c = Vec::with_capacity(args.len() + 1);
    argv_c.push(userns::cstr_of("program", prog)?);
    for a in args {
        argv_c.push(userns::cstr_of("args", a.as_bytes())?);
    }
    let mut argv: Vec<*const c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());
    // The degraded mode's stand-in for /tmp, and the strings that name it.
    let run_dir = match &prep.degraded {
        Some(d) => Some(degraded::RunDir::create(
            &d.run_base,
            d.root_caller.then_some(userns::ROOT_HOST_ID),
        )?),
        None => None,
    };
    let (run_env, run_workdir) = match &run_dir {
        Some(dir) => (
            dir.env(&policy.env)?,
            Some(dir.cstring(&policy.working_dir.to_string_lossy())?),
        ),
        None => (Vec::new(), None),
    };
    let env_src = if run_dir.is_some() {
        &run_env
    } else {
        call_env.as_ref().map_or(&prep.env, |(e, _)| e)
    };
    let mut envp: Vec<*const c_char> = env_src.iter().map(|c| c.as_ptr()).collect();
    envp.push(std::ptr::null());

    let (stdin, stdin_w) = stdin_fd(stdin)?;
    let (go_r, go_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    // The caller's end asks the init to signal the program (one byte each); its closing ends the
    // run. A socket, so that asking an init that is already gone is EPIPE, never a SIGPIPE.
    let (control, control_init) = rustix::net::socketpair(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| Error::io("creating the sandbox's control socket", e.into()))?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    // Programs reopen their stdio by name (`echo > /dev/stderr` goes through /proc/self/fd/2):
    // the pipes belong to the caller's uid, which the sandbox user is not, so open them to all.
    // Only processes that may already reach our descriptors can use the names at all.
    for w in [&out_w, &err_w] {
        rustix::fs::fchmod(w, Mode::from_raw_mode(0o666))
            .map_err(|e| Error::io("opening the output pipes to the sandbox user", e.into()))?;
    }
    // The degraded mode mounts nothing: the program reaches the host paths themselves, and its
    // Landlock rules hold the files opened at build(); a path that names another file now fails.
    if prep.degraded.is_some() {
        for (m, held) in policy.mounts.iter().zip(&prep.held) {
            check_held(m, held)?;
        }
    }
    let prepared_mounts = match prep.mode {
        plan::MountMode::Prepared => prepare_mounts(policy, prep)?,
        plan::MountMode::InChild => Vec::new(),
    };
    let prepared_fds: Vec<RawFd> = prepared_mounts.iter().map(|f| f.as_raw_fd()).collect();
    let ruleset = match (&prep.degraded, &run_dir) {
        (Some(d), Some(dir)) => Some(d.layer.ruleset_with(Some(&dir.path))?),
        _ => prep.landlock.as_ref().map(|l| l.ruleset()).transpose()?,
    };
    // The run's cgroup, made before the clone; the init is attached before it is released.
    let cgroup = match &prep.limits.host {
        Some(h) => Some(cgroup::RunCgroup::create(h, &prep.limits.cg)?),
        None => None,
    };
    let cpu_fd = cgroup
        .as_ref()
        .and_then(|c| c.cpu_usage_fd())
        .map(|f| f.as_raw_fd());
    // With an allowlist, the init hands over the proxy's listener on this socket pair.
    let proxy_pair = match &prep.proxy {
        Some(_) => Some(
            rustix::net::socketpair(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::SEQPACKET,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )
            .map_err(|e| Error::io("creating the proxy hand-off socket", e.into()))?,
        ),
        None => None,
    };
    let memwatch_pair = prep
        .memwatch
        .as_ref()
        .map(|_| memwatch::pair())
        .transpose()?;
    let init_scope = match &prep.degraded {
        Some(_) => Some(landlock::scope_only_ruleset()?),
        None => None,
    };
    let mut keep: Vec<RawFd> = [
        &go_r,
        &report_w,
        &status_w,
        &control_init,
        &stdin,
        &out_w,
        &err_w,
    ]
    .iter()
    .map(|f| f.as_raw_fd())
    .chain(prepared_fds.iter().copied())
    .chain(ruleset.as_ref().map(|f| f.as_raw_fd()))
    .chain(init_scope.as_ref().map(|f| f.as_raw_fd()))
    .chain(cpu_fd)
    .chain(proxy_pair.as_ref().map(|(_, c)| c.as_raw_fd()))
    .chain(memwatch_pair.as_ref().map(|(_, c)| c.as_raw_fd()))
    .collect();
    keep.sort_unstable();

    let args = child::ChildArgs {
        plan: &prep.plan,
        prepared_fds: &prepared_fds,
        keep: &keep,
        go_r: go_r.as_raw_fd(),
        report_w: report_w.as_raw_fd(),
        status_w: status_w.as_raw_fd(),
        control: control_init.as_raw_fd(),
        stdin: stdin.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        drop_groups: !prep.maps.deny_setgroups,
        uid: if prep.degraded.is_some() {
            userns::ROOT_HOST_ID
        } else {
            userns::SANDBOX_ID
        },
        gid: if prep.degraded.is_some() {
            userns::ROOT_HOST_ID
        } else {
            userns::SANDBOX_ID
        },
        wall_limit_ns: policy
            .wall_time_limit
            .map(|d| d.as_nanos().min(u64::MAX as u128) as u64)
            .unwrap_or(0),
        workdir: run_workdir
            .as_deref()
            .or(call_workdir.as_deref())
            .unwrap_or(&prep.workdir),
        exec_paths: &exec_paths,
        argv: &argv,
        envp: &envp,
        cap_last: prep.cap_last,
        filters: &prep.filters,
        landlock_fd: landlock::raw(&ruleset),
        landlock_local: prep.landlock.as_ref().map(|l| l.local()).unwrap_or(&[]),
        degraded: prep.degraded.is_some(),
        init_scope_fd: landlock::raw(&init_scope),
        cpu_fd: cpu_fd.unwrap_or(-1),
        cpu_v2: cgroup.as_ref().is_some_and(|c| c.cpu_usage_is_v2()),
        cpu_limit_ns: if cpu_fd.is_some() {
            prep.limits.cpu_time_ns
        } else {
            0
        },
        ncpu: prep.ncpu,
        rlimits: &prep.limits.rlimits,
        affinity: prep.limits.affinity.as_ref(),
        proxy_sock: proxy_pair
            .as_ref()
            .map(|(_, c)| c.as_raw_fd())
            .unwrap_or(-1),
        proxy_port: crate::policy::PROXY_PORT,
        memwatch: prep
            .memwatch
            .zip(memwatch_pair.as_ref())
            .map(|(m, (_, c))| m.child_side(c.as_raw_fd())),
    };

    // Block every signal in this thread across the clone, so that none is delivered to the child
    // before it has set them all to "ignore" (it would run the caller's handler there).
    let mask = userns::block_all_signals();
    let flags = if prep.degraded.is_some() {
        0
    } else {
        userns::NS_FLAGS
    };
    let into = cgroup
        .as_ref()
        .and_then(|c| c.clone_into_fd())
        .map(|f| f.as_raw_fd());
    // SAFETY: the child runs only `init_main`, which makes async-signal-safe calls on the data
    // prepared above and ends in execve or _exit.
    let cloned = unsafe { userns::clone_pidfd(flags, into) };
    if !matches!(cloned, Ok((0, _))) {
        userns::restore_signals(&mask);
    }
    let (pid, pidfd) = match cloned {
        Ok((0, _)) => child::init_main(&args),
        Ok((pid, Some(fd))) => (pid, fd),
        Ok((_, None)) => unreachable!("clone3 returned a pid without a pidfd"),
        Err(e) => return Err(userns::diagnose_clone_error(e)),
    };
    drop((
        go_r,
        report_w,
        status_w,
        control_init,
        stdin,
        out_w,
        err_w,
        prepared_mounts,
        ruleset,
        init_scope,
    ));
    let proxy_sock = proxy_pair.map(|(parent, _child)| parent);

    let abort = |err: Error| {
        userns::kill_pidfd(&pidfd);
        let _ = userns::wait_pidfd(&pidfd);
        err
    };
    // The observer's thread waits for the program's listener from now on (the program waits on
    // its first brk for it to answer).
    let memwatch = match (&prep.memwatch, memwatch_pair) {
        (Some(plan), Some((sock, _child))) => Some(memwatch::start(sock, plan).map_err(|e| {
            abort(Error::Setup {
                step: "starting the memory limit's observer".into(),
                source: e,
            })
        })?),
        _ => None,
    };
    // The sandbox is the OOM killer's first choice, whatever protection the caller has; written by
    // a parent with CAP_SYS_RESOURCE it is also a floor the program cannot lower.
    if let Err(e) = std::fs::write(format!("/proc/{pid}/oom_score_adj"), "1000") {
        return Err(abort(Error::Setup {
            step: "making the sandbox the first OOM victim (/proc/PID/oom_score_adj)".into(),
            source: e,
        }));
    }
    if let Some(cg) = &cgroup {
        if let Err(e) = cg.attach(pid) {
            return Err(abort(Error::Setup {
                step: format!("moving the sandbox into its cgroup {}", cg.name()),
                source: e,
            }));
        }
    }
    if prep.degraded.is_some() {
        // No user namespace, no maps.
    } else if let Err(e) = prep.maps.write(pid) {
        let failure = apparmor::Failure::Maps(e.raw_os_error().unwrap_or(0));
        return Err(abort(
            apparmor::explain_after_clone(pid, failure).unwrap_or_else(|| Error::Setup {
                step: format!(
                    "writing the uid/gid maps of the sandbox ({})",
                    prep.maps.uid_map.trim()
                ),
                source: e,
            }),
        ));
    }
    if let Err(e) = rustix::io::write(&go_w, &[1]) {
        return Err(abort(Error::io("releasing the sandbox init", e.into())));
    }
    drop(go_w);

    // The report pipe reaches EOF when the program has been executed; a message means it was not.
    let mut msg = [0u8; child::MESSAGE_LEN];
    let mut got = 0;
    while got < msg.len() {
        match rustix::io::read(&report_r, &mut msg[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                return Err(abort(Error::io(
                    "reading the sandbox setup report",
                    e.into(),
                )))
            }
        }
    }
    if got == msg.len() {
        let (kind, step, errno, _) = child::decode(&msg);
        // A setup step refused inside namespaces that were created: AppArmor's restriction?
        if kind != child::REPORT_EXEC && prep.degraded.is_none() {
            if let Some(err) = apparmor::explain_after_clone(pid, apparmor::Failure::Child(errno)) {
                return Err(abort(err));
            }
        }
        let source = io::Error::from_raw_os_error(errno);
        let err = match kind {
            child::REPORT_PLAN => {
                let op = prep.plan.get(step as usize);
                // A user mount whose path no longer names the source held since build().
                let changed = match op {
                    Some(plan::Op::BindHost { held: Some(h), .. }) => policy
                        .mounts
                        .get(h.mount)
                        .zip(change_reason(errno))
                        .map(|(m, reason)| source_changed(m, reason)),
                    _ => None,
                };
                changed.unwrap_or_else(|| Error::Setup {
                    step: op
                        .map(|op| op.describe())
                        .unwrap_or_else(|| format!("step {step}")),
                    source,
                })
            }
            child::REPORT_STEP => Error::Setup {
                step: child::Step::from_u32(step)
                    .map(|s| s.describe().to_string())
                    .unwrap_or_else(|| format!("step {step}")),
                source,
            },
            _ if errno == libc::ENOENT || errno == libc::ENOTDIR => Error::ProgramNotFound {
                program: program.to_string_lossy().into_owned(),
                searched: exec_paths
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            _ => Error::ProgramNotExecutable {
                program: program.to_string_lossy().into_owned(),
                source,
            },
        };
        return Err(abort(err));
    }
    if got != 0 {
        return Err(abort(Error::io(
            "reading the sandbox setup report",
            io::Error::new(io::ErrorKind::UnexpectedEof, "short report"),
        )));
    }
    // The program runs: its proxy listener is waiting on the hand-off socket.
    let proxy = match (&prep.proxy, &proxy_sock) {
        (Some(cfg), Some(sock)) => {
            let listener = recv_listener(sock).map_err(|e| {
                abort(Error::Setup {
                    step: "receiving the network proxy's listener from the sandbox".into(),
                    source: e,
                })
            })?;
            Some(
                crate::proxy::ProxyServer::start(listener, cfg.clone()).map_err(|e| {
                    abort(Error::Setup {
                        step: "starting the network proxy".into(),
                        source: e,
                    })
                })?,
            )
        }
        _ => None,
    };
    let shared = Arc::new(process::Shared::new(pidfd, prep.degraded.is_some()));
    let (process, out, err) = process::start(
        pid,
        shared,
        process::Pipes {
            status_r,
            control,
            out_r,
            err_r,
        },
        policy,
        process::Extras {
            degraded: prep.degraded_notes().to_vec(),
            run_dir,
            cgroup,
            enforcement: prep.limits.enforcement.clone(),
            cpu_time_limit: policy.limits.cpu_time,
            proxy,
            memwatch,
        },
    );
    Ok((process, out, err, stdin_w.map(std::io::PipeWriter::from)))
}
