//! The macOS backend: the program runs under `/usr/bin/sandbox-exec` with a Seatbelt profile made
//! for the run ([`crate::seatbelt`]), in its own process group, watched by a thread of the caller.
//!
//! One file per concern: [`sys`] (the macOS calls), [`process`] (the running program, its
//! watchdog and its output), [`probe`] (what the host supports). The caller itself is never
//! sandboxed: `sandbox_init` is never called here, only sandbox-exec is run. Nothing runs without
//! a working sandbox-exec.

mod denials;
mod probe;
mod process;
mod sys;

use std::ffi::{OsStr, OsString};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::policy::{Policy, Stdin};
use crate::result::Enforcement;
use crate::seatbelt;
use crate::watchdog;

pub(crate) use probe::probe;
pub(crate) use process::{collect, OutputPipe, Process};

/// Runs of this process so far: the second half of each run's tag.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// What a built sandbox keeps for its runs.
#[derive(Debug)]
pub(crate) struct Prepared {
    notes: Vec<String>,
    enforcement: Vec<Enforcement>,
    watch: watchdog::Limits,
    rlimits: Vec<sys::Rlimit>,
    proxy: Option<crate::proxy::ProxyConfig>,
    /// As root: the user and group the program runs as.
    run_as: Option<(u32, u32)>,
    /// Where each run's private directory is made (canonical).
    tmp_base: PathBuf,
}

impl Prepared {
    pub(crate) fn degraded_notes(&self) -> &[String] {
        &self.notes
    }
}

/// Nothing of a run is left on disk but its private directory, removed when the run ends.
pub(crate) fn clean_stale() -> Result<Vec<PathBuf>> {
    Ok(Vec::new())
}

/// How each limit is enforced on macOS, and what is refused.
struct LimitsPlan {
    enforcement: Vec<Enforcement>,
    watch: watchdog::Limits,
    rlimits: Vec<sys::Rlimit>,
    notes: Vec<String>,
}

/// The watchdog's mechanism, as results name it.
fn sampled() -> String {
    format!(
        "watchdog, sampled every {} ms",
        watchdog::INTERVAL.as_millis()
    )
}

fn plan_limits(policy: &Policy) -> Result<LimitsPlan> {
    let l = &policy.limits;
    let mut p = LimitsPlan {
        enforcement: Vec::new(),
        watch: watchdog::Limits::default(),
        rlimits: vec![(libc::RLIMIT_CORE, 0, 0)],
        notes: Vec::new(),
    };
    let mut note = |limit: &'static str, mechanism: String| {
        p.enforcement.push(Enforcement { limit, mechanism })
    };
    if let Some(m) = l.memory {
        p.watch.memory = Some(m);
        note(
            "memory",
            format!("{} (physical footprint of the process tree)", sampled()),
        );
    }
    if let Some(n) = l.processes {
        p.watch.processes = Some(n);
        note(
            "processes",
            format!("{} (the tree is killed past it)", sampled()),
        );
    }
    if let Some(c) = l.cpu {
        if !policy.allow_degraded_limits {
            return Err(Error::HostUnsupported {
                missing: "a CPU bandwidth limit",
                cause: format!(
                    "macOS has no per-process-tree CPU share (cgroups are Linux's); cpu_limit({c}) \
                     cannot be enforced"
                ),
                fix: "leave cpu_limit unset (cpu_time_limit and wall_time_limit are enforced), \
                      or accept it unenforced with allow_degraded_limits() (CLI \
                      --allow-degraded-limits)"
                    .into(),
            });
        }
        p.notes.push(format!(
            "cpu limit: not enforced on macOS (asked for {c} CPU(s); allowed by \
             allow_degraded_limits)"
        ));
        note("cpu", "none (degraded: not enforced on macOS)".into());
    }
    if let Some(t) = l.cpu_time {
        // The watchdog ends the run on the tree's total; RLIMIT_CPU bounds each process a
        // second later, should the watchdog be late.
        let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
        p.watch.cpu_time = Some(t);
        p.rlimits.push((libc::RLIMIT_CPU, secs + 1, secs + 2));
        note(
            "cpu_time",
            format!("RLIMIT_CPU per process + {} total", sampled()),
        );
    }
    if let Some(f) = l.file_size {
        p.rlimits.push((libc::RLIMIT_FSIZE, f, f));
        note("file_size", "RLIMIT_FSIZE".into());
    }
    Ok(p)
}

/// Whether every "other" may search `dir` (the unprivileged user must reach its run directory).
fn world_searchable(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

pub(crate) fn prepare(policy: &Policy) -> Result<Prepared> {
    probe::require_sandbox_exec()?;
    let limits = plan_limits(policy)?;
    let run_as = sys::is_root().then(sys::nobody);
    let mut tmp_base = seatbelt::canonical(&std::env::temp_dir())?;
    // Root's TMPDIR may be a directory only root can enter: the program's user could not reach
    // its own directory in it.
    if run_as.is_some() && !world_searchable(&tmp_base) {
        tmp_base = PathBuf::from("/private/tmp");
    }
    Ok(Prepared {
        notes: limits.notes,
        enforcement: limits.enforcement,
        watch: limits.watch,
        rlimits: limits.rlimits,
        proxy: crate::proxy::config_for(policy)?,
        run_as,
        tmp_base,
    })
}

/// A sandbox path on the host: under a mount's sandbox path, the mount's host path; else itself.
fn host_path(policy: &Policy, p: &Path) -> PathBuf {
    policy
        .mounts
        .iter()
        .rev()
        .find_map(|m| {
            p.strip_prefix(&m.sandbox)
                .ok()
                .map(|rest| m.host_canonical.join(rest))
        })
        .unwrap_or_else(|| p.to_path_buf())
}

/// The run's private directory, mode 0700 (the program's user's, as root).
fn make_tmpdir(prep: &Prepared, tag: &str) -> Result<process::TempDir> {
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = prep.tmp_base.join(format!(
            "{tag}-{:08x}",
            nanos ^ attempt.wrapping_mul(0x9e37_79b9)
        ));
        // mkdir never follows a symlink in the last component: a name someone planted fails.
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => {
                let dir = process::TempDir(path);
                if let Some((uid, gid)) = prep.run_as {
                    std::os::unix::fs::chown(&dir.0, Some(uid), Some(gid)).map_err(|e| {
                        Error::Setup {
                            step: format!(
                                "giving the run directory {} to uid {uid}",
                                dir.0.display()
                            ),
                            source: e,
                        }
                    })?;
                }
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(Error::Setup {
                    step: format!("creating the run directory {}", path.display()),
                    source: e,
                })
            }
        }
    }
    Err(Error::Setup {
        step: format!("creating a run directory in {}", prep.tmp_base.display()),
        source: last.unwrap_or_else(|| std::io::Error::other("no free name")),
    })
}

/// `program` as sandbox-exec is to execute it: with a `/`, the path (mapped to the host, from
/// the working directory `cwd` when relative);
/// otherwise the first executable file of that name in the policy's PATH.
fn resolve_program(policy: &Policy, program: &OsStr, cwd: &Path) -> Result<PathBuf> {
    let bytes = program.as_bytes();
    let name = program.to_string_lossy().into_owned();
    if bytes.is_empty() {
        return Err(Error::InvalidOption {
            option: "program",
            reason: "the program name is empty".into(),
        });
    }
    let is_exec = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if bytes.contains(&b'/') {
        // A relative path is the program's, from its working directory.
        let p = cwd.join(host_path(policy, Path::new(program)));
        return match std::fs::metadata(&p) {
            Ok(_) if is_exec(&p) => Ok(p),
            Ok(_) => Err(Error::ProgramNotExecutable {
                program: name,
                source: std::io::Error::from_raw_os_error(libc::EACCES),
            }),
            Err(_) => Err(Error::ProgramNotFound {
                program: name,
                searched: p.display().to_string(),
            }),
        };
    }
    let path = policy
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(crate::policy::DEFAULT_PATH);
    let dirs: Vec<PathBuf> = path
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| host_path(policy, Path::new(d)))
        .collect();
    dirs.iter()
        .map(|d| d.join(program))
        .find(|p| is_exec(p))
        .ok_or_else(|| Error::ProgramNotFound {
            program: name,
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The descriptor the program reads as stdin, and for [`Stdin::Piped`] the caller's writing end.
fn stdin_fd(
    stdin: &Stdin,
    tmp_base: &Path,
) -> Result<(std::process::Stdio, Option<std::io::PipeWriter>)> {
    if let Stdin::Piped = stdin {
        let (r, w) = std::io::pipe().map_err(|e| Error::io("creating the stdin pipe", e))?;
        return Ok((std::process::Stdio::from(r), Some(w)));
    }
    use std::io::{Seek, Write};
    let refuse_tty = |f: &dyn std::os::fd::AsRawFd, what: String| {
        // SAFETY: isatty only inspects the descriptor.
        if unsafe { libc::isatty(f.as_raw_fd()) } == 1 {
            Err(Error::InvalidOption {
                option: "stdin",
                reason: format!(
                    "{what} is a terminal; the program could drive it with ioctls. Pass a pipe \
                     or a regular file instead"
                ),
            })
        } else {
            Ok(())
        }
    };
    let stdio = match stdin {
        Stdin::Null => std::process::Stdio::null(),
        Stdin::Bytes(data) => {
            // An unlinked file: the program reads the bytes and end-of-file, never blocks the
            // caller, and nothing is left on disk.
            let ctx = |e| Error::io("preparing stdin bytes", e);
            static STDIN_FILES: AtomicU64 = AtomicU64::new(0);
            let n = STDIN_FILES.fetch_add(1, Ordering::Relaxed);
            let path = tmp_base.join(format!("nanobox-stdin-{}-{n}", std::process::id()));
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode_0600()
                .open(&path)
                .map_err(ctx)?;
            let _ = std::fs::remove_file(&path);
            f.write_all(data).map_err(ctx)?;
            f.rewind().map_err(ctx)?;
            std::process::Stdio::from(f)
        }
        Stdin::File(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| Error::io(format!("opening stdin file {}", p.display()), e))?;
            refuse_tty(&f, p.display().to_string())?;
            std::process::Stdio::from(f)
        }
        Stdin::Fd(fd) => {
            refuse_tty(fd.as_ref(), "the descriptor".into())?;
            let fd: OwnedFd = fd
                .try_clone()
                .map_err(|e| Error::io("duplicating the stdin descriptor", e))?;
            std::process::Stdio::from(fd)
        }
        Stdin::Piped => unreachable!("handled above"),
    };
    Ok((stdio, None))
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}
impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// The program's environment: the policy's, with TMPDIR (and HOME where it is the Linux default
/// `/tmp`) the run's directory, PWD its working directory, and the proxy variables naming the
/// proxy's real port.
fn program_env(
    policy: &Policy,
    tmpdir: &Path,
    cwd: &Path,
    proxy_port: Option<u16>,
) -> Vec<(OsString, OsString)> {
    let placeholder = format!("http://127.0.0.1:{}", crate::policy::PROXY_PORT);
    let mut env: Vec<(OsString, OsString)> = policy
        .env
        .iter()
        .filter(|(k, _)| k != "TMPDIR" && k != "PWD")
        .map(|(k, v)| {
            let v: OsString = match (k.as_str(), proxy_port) {
                ("HOME", _) if v == "/tmp" => tmpdir.as_os_str().to_os_string(),
                (_, Some(port)) if *v == placeholder => format!("http://127.0.0.1:{port}").into(),
                _ => v.into(),
            };
            (OsString::from(k), v)
        })
        .collect();
    env.push(("TMPDIR".into(), tmpdir.as_os_str().to_os_string()));
    env.push(("PWD".into(), cwd.as_os_str().to_os_string()));
    env
}

pub(crate) fn spawn(
    policy: &Policy,
    prep: &Prepared,
    program: &OsStr,
    args: &[OsString],
    stdin: &Stdin,
    _own_env: bool,
) -> Result<(Process, OutputPipe, OutputPipe, Option<std::io::PipeWriter>)> {
    // Never unsandboxed: the probe is repeated (it is cached) for every run.
    probe::require_sandbox_exec()?;
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("nanobox-{}-{n}", std::process::id());
    let started = std::time::SystemTime::now();
    let tmpdir = make_tmpdir(prep, &tag)?;
    // The default working directory is the run's own directory; one set explicitly is a path of
    // the host or of a mount.
    let cwd = if !policy.working_dir_explicit {
        tmpdir.0.clone()
    } else {
        host_path(policy, &policy.working_dir)
    };
    let exe = resolve_program(policy, program, &cwd)?;
    // With an allowlist, the proxy listens before the program starts, on a port of the host's
    // loopback that the profile lets the program reach (and no other).
    let proxy = match &prep.proxy {
        Some(cfg) => {
            let step = |what: &str| format!("starting the network proxy ({what})");
            let listener =
                std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Setup {
                    step: step("binding 127.0.0.1:0"),
                    source: e,
                })?;
            let port = listener
                .local_addr()
                .map(|a| a.port())
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| Error::Setup {
                    step: step("reading the listener's port"),
                    source: std::io::Error::other("no port"),
                })?;
            let handle = crate::proxy::ProxyServer::start(listener, cfg.clone()).map_err(|e| {
                Error::Setup {
                    step: step("its thread"),
                    source: e,
                }
            })?;
            Some((handle, port))
        }
        None => None,
    };
    let proxy_port = proxy.as_ref().map(|(_, p)| *p);
    let run = seatbelt::RunContext {
        tmpdir: tmpdir.0.clone(),
        proxy_port,
        tag: tag.clone(),
    };
    let profile = seatbelt::profile(policy, &run)?;
    let argv = seatbelt::argv(&profile, exe.as_os_str(), args)?;
    // The first word is always sandbox-exec by its absolute path, never looked up in PATH.
    if argv.first().map(|a| a.as_os_str()) != Some(OsStr::new(seatbelt::SANDBOX_EXEC)) {
        return Err(Error::Setup {
            step: "building the sandbox-exec command line".into(),
            source: std::io::Error::other("it does not start with /usr/bin/sandbox-exec"),
        });
    }
    let (stdin, stdin_w) = stdin_fd(stdin, &prep.tmp_base)?;
    let (out_r, out_w) = process::pipe()?;
    let (err_r, err_w) = process::pipe()?;
    let mut cmd = std::process::Command::new(seatbelt::SANDBOX_EXEC);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(program_env(policy, &tmpdir.0, &cwd, proxy_port))
        .current_dir(&cwd)
        .stdin(stdin)
        .stdout(std::process::Stdio::from(out_w))
        .stderr(std::process::Stdio::from(err_w))
        // Its own group: the whole tree can be signalled at once.
        .process_group(0);
    if let Some((uid, gid)) = prep.run_as {
        // Started by root, the program runs as `nobody`. std sets the group, then, because the
        // real uid is 0 and no supplementary groups were given, calls setgroups(0, NULL) before
        // setuid (library/std/src/sys/process/unix/unix.rs, `do_exec`): no root group is kept.
        cmd.uid(uid).gid(gid);
    }
    let rlimits = prep.rlimits.clone();
    let fd_end = sys::fd_table_end();
    // SAFETY: the closure runs in the forked child before exec and makes only async-signal-safe
    // calls (setrlimit, fcntl) on data copied before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || sys::before_exec(&rlimits, fd_end));
    }
    let child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && !Path::new(seatbelt::SANDBOX_EXEC).exists() {
            probe::missing_sandbox_exec()
        } else {
            Error::Setup {
                step: format!(
                    "starting {} in {} for {}",
                    seatbelt::SANDBOX_EXEC,
                    cwd.display(),
                    exe.display()
                ),
                source: e,
            }
        }
    })?;
    // The command (and with it the caller's copies of the pipes' write ends) goes now: the
    // output reaches end-of-file when the program's tree has closed them.
    drop(cmd);
    let pid = child.id();
    // The watchdog reaps the child itself (std's Child neither waits nor kills when dropped).
    drop(child);
    // Not reaped yet, so the pid is the program's; its start time tells it from later holders.
    let start = sys::proc_info(pid).map(|i| i.start).unwrap_or(0);
    let (handle, _) = proxy.unzip();
    process::start(
        pid,
        start,
        process::Watch {
            limits: prep.watch,
            wall_limit: policy.wall_time_limit,
            cpu_time_limit: policy.limits.cpu_time,
        },
        out_r,
        err_r,
        policy.output_limit,
        process::Extras {
            degraded: prep.notes.clone(),
            enforcement: prep.enforcement.clone(),
            proxy: handle,
            tmpdir: Some(tmpdir),
            denials: policy.report_denials.then_some((tag, started)),
        },
    )
    .map(|(p, o, e)| (p, o, e, stdin_w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SandboxBuilder;

    fn policy(b: SandboxBuilder) -> Policy {
        b.validate().expect("a valid policy")
    }

    fn get<'a>(env: &'a [(OsString, OsString)], k: &str) -> Option<&'a OsStr> {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_os_str())
    }

    #[test]
    fn the_environment_names_the_run_directory_and_the_proxy_s_real_port() {
        let p = policy(SandboxBuilder::default().allow_network(&["example.com"]));
        let tmp = Path::new("/private/tmp/nanobox-run");
        let env = program_env(&p, tmp, Path::new("/private/tmp/nanobox-run"), Some(41234));
        assert_eq!(get(&env, "TMPDIR"), Some(tmp.as_os_str()));
        assert_eq!(
            get(&env, "HOME"),
            Some(tmp.as_os_str()),
            "the default /tmp HOME"
        );
        assert_eq!(get(&env, "PWD"), Some(tmp.as_os_str()));
        assert_eq!(
            get(&env, "HTTPS_PROXY"),
            Some(OsStr::new("http://127.0.0.1:41234"))
        );
        assert_eq!(
            get(&env, "http_proxy"),
            Some(OsStr::new("http://127.0.0.1:41234"))
        );
        assert_eq!(env.iter().filter(|(k, _)| k == "TMPDIR").count(), 1);
        // A HOME the caller set is kept.
        let p = policy(SandboxBuilder::default().env("HOME", "/Users/x"));
        let env = program_env(&p, tmp, tmp, None);
        assert_eq!(get(&env, "HOME"), Some(OsStr::new("/Users/x")));
    }

    #[test]
    fn limits_name_their_mechanism_and_a_cpu_share_is_refused_without_the_opt_in() {
        let p = policy(
            SandboxBuilder::default()
                .memory_limit(64 << 20)
                .process_limit(10)
                .cpu_time_limit(std::time::Duration::from_millis(1500))
                .file_size_limit(1 << 20),
        );
        let plan = plan_limits(&p).unwrap();
        let mech = |l: &str| {
            plan.enforcement
                .iter()
                .find(|e| e.limit == l)
                .map(|e| e.mechanism.clone())
                .unwrap_or_default()
        };
        assert!(mech("memory").starts_with("watchdog, sampled every 50 ms"));
        assert!(mech("processes").starts_with("watchdog"));
        assert!(mech("cpu_time").starts_with("RLIMIT_CPU per process + watchdog"));
        assert_eq!(mech("file_size"), "RLIMIT_FSIZE");
        assert_eq!(plan.watch.memory, Some(64 << 20));
        // RLIMIT_CPU rounds 1.5 s up to 2 and bounds each process a second later.
        assert!(plan.rlimits.contains(&(libc::RLIMIT_CPU, 3, 4)));
        assert!(plan
            .rlimits
            .contains(&(libc::RLIMIT_FSIZE, 1 << 20, 1 << 20)));
        let p = policy(SandboxBuilder::default().cpu_limit(1.0));
        assert!(matches!(
            plan_limits(&p),
            Err(Error::HostUnsupported { .. })
        ));
        let p = policy(
            SandboxBuilder::default()
                .cpu_limit(1.0)
                .allow_degraded_limits(),
        );
        let plan = plan_limits(&p).unwrap();
        assert!(plan.notes.iter().any(|n| n.contains("not enforced")));
    }

    #[test]
    fn a_sandbox_path_under_a_mount_is_the_mount_s_host_path() {
        // A host directory without symlinks on its way.
        let p = policy(SandboxBuilder::default().mount(
            "/usr/share",
            "/data",
            crate::policy::Permission::ReadOnly,
        ));
        let host = p.mounts[0].host_canonical.clone();
        assert_eq!(host_path(&p, Path::new("/data/x/y")), host.join("x/y"));
        assert_eq!(
            host_path(&p, Path::new("/database")),
            Path::new("/database")
        );
    }
}
