//! The Windows backend: the program runs with a restricted, low-integrity token ([`token`]) in a
//! Job Object of its own ([`job`]) that bounds and ends its whole process tree, inside an
//! AppContainer with no capabilities ([`appcontainer`]: no network, and files only where the run
//! was granted access, [`acl`]), started suspended with only its three standard handles
//! ([`launch`]), and watched by one thread of the caller ([`process`]).
//!
//! What Windows cannot do in this model is refused at `build()`: another path for a mount (a
//! mount is its host path), a per-host network allowlist, a per-file size limit. Where no
//! AppContainer can be made (Wine, old Windows), the default, no network, is refused unless the
//! caller accepts a run without network isolation with `allow_degraded_isolation()`.

mod acl;
mod appcontainer;
mod job;
mod launch;
mod probe;
mod process;
mod sys;
mod token;

use std::ffi::{OsStr, OsString};
use std::os::windows::io::OwnedHandle;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::policy::{Network, Permission, Policy, Stdin};
use crate::result::Enforcement;
use crate::wincmd;

pub(crate) use probe::probe;
pub(crate) use process::{collect, OutputPipe, Process};

/// Runs of this process so far: part of each run's names.
static RUNS: AtomicU64 = AtomicU64::new(0);

/// Where each run records the access entries it adds, for [`clean_stale`].
fn record_dir() -> PathBuf {
    std::env::temp_dir().join("nanobox-grants")
}

/// How a run is isolated from the network and the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// An AppContainer with no capabilities: no network; files where granted.
    AppContainer,
    /// The low-integrity token alone (accepted with allow_degraded_isolation).
    LowIntegrity,
}

/// What a built sandbox keeps for its runs.
#[derive(Debug)]
pub(crate) struct Prepared {
    notes: Vec<String>,
    enforcement: Vec<Enforcement>,
    job: job::Settings,
    isolation: Isolation,
    windows_dir: PathBuf,
}

impl Prepared {
    pub(crate) fn degraded_notes(&self) -> &[String] {
        &self.notes
    }
}

/// Undo the access entries and labels, and delete the AppContainer profiles, of runs whose
/// caller died before it could.
pub(crate) fn clean_stale() -> Result<Vec<PathBuf>> {
    let (paths, profiles) = acl::clean_stale(&record_dir())?;
    for p in profiles {
        appcontainer::AppContainer::delete(&p)?;
    }
    Ok(paths)
}

/// The job's limits and how each policy limit is enforced, or why it is refused.
fn plan_limits(
    policy: &Policy,
    cpus: u32,
) -> Result<(job::Settings, Vec<Enforcement>, Vec<String>)> {
    let l = &policy.limits;
    let mut s = job::Settings::default();
    let mut e = Vec::new();
    let mut notes = Vec::new();
    let mut note = |limit: &'static str, mechanism: &str| {
        e.push(Enforcement {
            limit,
            mechanism: mechanism.to_string(),
        })
    };
    if let Some(m) = l.memory {
        s.memory = Some(m);
        note(
            "memory",
            "Job Object JobMemoryLimit (committed memory of the tree)",
        );
    }
    if let Some(n) = l.processes {
        s.processes = Some(u32::try_from(n).unwrap_or(u32::MAX));
        note("processes", "Job Object ActiveProcessLimit");
    }
    if let Some(t) = l.cpu_time {
        let ticks = t.as_nanos() / 100;
        s.cpu_time_ticks = Some(i64::try_from(ticks).unwrap_or(i64::MAX));
        note(
            "cpu_time",
            "Job Object PerJobUserTimeLimit + the job's accounted user and kernel time",
        );
    }
    if let Some(c) = l.cpu {
        let rate = (c / f64::from(cpus.max(1)) * 10_000.0)
            .round()
            .clamp(1.0, 10_000.0) as u32;
        match probe::cpu_rate_supported() {
            Ok(()) => {
                s.cpu_rate = Some(rate);
                note("cpu", "Job Object CPU rate control, hard cap");
            }
            Err(why) if policy.allow_degraded_limits => {
                notes.push(format!(
                    "cpu limit: not enforced ({why}; asked for {c} CPU(s); allowed by \
                     allow_degraded_limits)"
                ));
                note("cpu", "none (degraded: the host refuses a CPU rate cap)");
            }
            Err(why) => {
                return Err(Error::HostUnsupported {
                    missing: "a CPU rate cap on Job Objects",
                    cause: why,
                    fix: "leave cpu_limit unset, or accept it unenforced with \
                          allow_degraded_limits() (CLI --allow-degraded-limits); see nanobox \
                          doctor"
                        .into(),
                })
            }
        }
    }
    if let Some(f) = l.file_size {
        if !policy.allow_degraded_limits {
            return Err(Error::HostUnsupported {
                missing: "a per-file size limit",
                cause: format!(
                    "Windows has no per-file size limit; file_size_limit({f}) cannot be enforced"
                ),
                fix: "leave file_size_limit unset (bound writes with a read-only mount), or \
                      accept it unenforced with allow_degraded_limits() (CLI \
                      --allow-degraded-limits)"
                    .into(),
            });
        }
        notes.push(format!(
            "file size limit: not enforced on Windows (asked for {f} bytes; allowed by \
             allow_degraded_limits)"
        ));
        note(
            "file_size",
            "none (degraded: Windows has no per-file size limit)",
        );
    }
    // Wine takes these limits and enforces none of them (measured on Wine 8.0: a job's memory
    // and process limits, its CPU time and the processes' own times are all unenforced or read
    // zero): never a run that only looks bounded.
    if let Some(v) = sys::wine_version() {
        let asked: Vec<&str> = [
            (l.memory.is_some(), "memory"),
            (l.processes.is_some(), "processes"),
            (l.cpu_time.is_some(), "cpu_time"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        if !asked.is_empty() {
            if !policy.allow_degraded_limits {
                return Err(Error::HostUnsupported {
                    missing: "enforced Job Object limits",
                    cause: format!(
                        "Wine {v} accepts memory, process and CPU-time limits on a job and \
                         enforces none of them (asked for: {})",
                        asked.join(", ")
                    ),
                    fix: "run on Windows, or accept them unenforced with \
                          allow_degraded_limits() (CLI --allow-degraded-limits)"
                        .into(),
                });
            }
            notes.push(format!(
                "{} limit(s): not enforced (Wine {v} does not enforce Job Object limits; allowed \
                 by allow_degraded_limits)",
                asked.join(", ")
            ));
            for e in e.iter_mut().filter(|e| asked.contains(&e.limit)) {
                e.mechanism = format!("none (degraded: Wine does not enforce {})", e.mechanism);
            }
        }
    }
    Ok((s, e, notes))
}

/// What a run without an AppContainer loses, for `degraded`.
const NO_APPCONTAINER: &str = "no network isolation and no file isolation beyond low integrity \
     (no AppContainer: {why}; allowed by allow_degraded_isolation): the program can reach the \
     network and read every file the user can, ~/.ssh and the browser profiles included; it can \
     write only where the low integrity level may (the run's directory, read-write mounts, \
     %USERPROFILE%\\AppData\\LocalLow)";

fn plan_isolation(policy: &Policy) -> Result<(Isolation, Option<String>)> {
    if let Network::Allowlist(_) = policy.network {
        return Err(Error::HostUnsupported {
            missing: "a per-host network allowlist on Windows",
            cause: "an AppContainer has either no network or all of it (internetClient); it \
                    cannot be limited to the filtering proxy's loopback port"
                .into(),
            fix: "use no_network() on Windows, or run the allowlisted program on Linux or macOS"
                .into(),
        });
    }
    match appcontainer::AppContainer::unavailable() {
        None => Ok((Isolation::AppContainer, None)),
        Some(why) if policy.allow_degraded_isolation => Ok((
            Isolation::LowIntegrity,
            Some(NO_APPCONTAINER.replace("{why}", &why)),
        )),
        Some(why) => Err(Error::HostUnsupported {
            missing: "AppContainers (the network isolation of no_network)",
            cause: why,
            fix: "run on Windows 10 or later, or accept a run without network isolation with \
                  allow_degraded_isolation() (CLI --allow-degraded-isolation); see nanobox doctor"
                .into(),
        }),
    }
}

pub(crate) fn prepare(policy: &Policy) -> Result<Prepared> {
    let (job, enforcement, mut notes) = plan_limits(policy, probe::cpus())?;
    let (isolation, note) = plan_isolation(policy)?;
    notes.extend(note);
    // The token can be made on this host (it is made again for every run).
    token::restricted()?;
    Ok(Prepared {
        notes,
        enforcement,
        job,
        isolation,
        windows_dir: probe::windows_dir()?,
    })
}

/// The directories of the program's PATH.
fn path_dirs(policy: &Policy, windows_dir: &Path) -> Vec<PathBuf> {
    match policy
        .env
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("PATH"))
    {
        Some((_, v)) if v != crate::policy::DEFAULT_PATH => std::env::split_paths(v).collect(),
        _ => system_path(windows_dir),
    }
}

/// The system's own PATH: System32, the Windows directory, WMI and PowerShell.
fn system_path(windows_dir: &Path) -> Vec<PathBuf> {
    vec![
        windows_dir.join("System32"),
        windows_dir.to_path_buf(),
        windows_dir.join("System32\\Wbem"),
        windows_dir.join("System32\\WindowsPowerShell\\v1.0"),
    ]
}

/// The extensions tried for a program named without one.
const PATHEXT: &[&str] = &[".com", ".exe", ".bat", ".cmd"];

/// `program` as CreateProcess is to run it: a path (from `cwd` when relative), or the first
/// file of that name (with the extensions of [`PATHEXT`] when it has none) in the PATH.
fn resolve_program(program: &OsStr, cwd: &Path, dirs: &[PathBuf]) -> Result<PathBuf> {
    let name = program.to_string_lossy().into_owned();
    if name.is_empty() {
        return Err(Error::InvalidOption {
            option: "program",
            reason: "the program name is empty".into(),
        });
    }
    let candidates = |p: PathBuf| -> Vec<PathBuf> {
        let mut v = vec![p.clone()];
        if p.extension().is_none() {
            v.extend(PATHEXT.iter().map(|e| {
                let mut s = p.clone().into_os_string();
                s.push(e);
                PathBuf::from(s)
            }));
        }
        v
    };
    let is_path = name.contains(['\\', '/', ':']);
    let searched: Vec<PathBuf> = if is_path {
        vec![cwd.join(&name)]
    } else {
        dirs.iter().map(|d| d.join(&name)).collect()
    };
    for base in &searched {
        for c in candidates(base.clone()) {
            if std::fs::metadata(&c).is_ok_and(|m| m.is_file()) {
                return Ok(c);
            }
        }
    }
    Err(Error::ProgramNotFound {
        program: name,
        searched: searched
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The program's environment: the system variables a Windows program needs, then the policy's
/// (which win, compared case-insensitively), with the Linux defaults translated: the default
/// PATH becomes the system's, the default HOME (`/tmp`) the run's directory; TEMP and TMP are
/// the run's directory.
fn program_env(policy: &Policy, windows_dir: &Path, tmpdir: &Path) -> Vec<(String, String)> {
    let win = windows_dir.display().to_string();
    let tmp = tmpdir.display().to_string();
    let sys_path = std::env::join_paths(system_path(windows_dir))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut env: Vec<(String, String)> = vec![
        ("SystemRoot".into(), win.clone()),
        ("windir".into(), win.clone()),
        ("SystemDrive".into(), win.chars().take(2).collect()),
        ("ComSpec".into(), format!("{win}\\System32\\cmd.exe")),
        ("PATHEXT".into(), ".COM;.EXE;.BAT;.CMD".into()),
        ("OS".into(), "Windows_NT".into()),
        ("PATH".into(), sys_path),
        ("TEMP".into(), tmp.clone()),
        ("TMP".into(), tmp.clone()),
        ("USERPROFILE".into(), tmp.clone()),
    ];
    for k in ["NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE"] {
        if let Ok(v) = std::env::var(k) {
            env.push((k.into(), v));
        }
    }
    for (k, v) in &policy.env {
        let v = match k.as_str() {
            "PATH" if v == crate::policy::DEFAULT_PATH => continue,
            "HOME" if v == "/tmp" => tmp.clone(),
            "TMPDIR" | "PWD" => continue,
            _ => v.clone(),
        };
        env.retain(|(e, _)| !e.eq_ignore_ascii_case(k));
        env.push((k.clone(), v));
    }
    env
}

/// The run's private directory, made new (never an existing one).
fn make_tmpdir(tag: &str) -> Result<process::TempDir> {
    let base = std::env::temp_dir();
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = base.join(format!(
            "{tag}-{:08x}",
            nanos ^ attempt.wrapping_mul(0x9e37_79b9)
        ));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(process::TempDir(path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Setup {
                    step: format!("creating the run directory {}", path.display()),
                    source: e,
                })
            }
        }
    }
    Err(Error::Setup {
        step: format!("creating a run directory in {}", base.display()),
        source: std::io::Error::other("no free name"),
    })
}

/// The handle the program reads as stdin, the thread feeding it bytes, if any, and for
/// [`Stdin::Piped`] the caller's writing end.
type StdinParts = (
    OwnedHandle,
    Option<std::thread::JoinHandle<()>>,
    Option<std::io::PipeWriter>,
);

fn stdin_handle(stdin: &Stdin) -> Result<StdinParts> {
    if let Stdin::Piped = stdin {
        let (r, w) = std::io::pipe().map_err(|e| Error::io("creating the stdin pipe", e))?;
        return Ok((OwnedHandle::from(r), None, Some(w)));
    }
    let (h, t) = match stdin {
        Stdin::Null => {
            let f =
                std::fs::File::open("NUL").map_err(|e| Error::io("opening NUL for stdin", e))?;
            (OwnedHandle::from(f), None)
        }
        Stdin::Bytes(data) => {
            let (r, mut w) =
                std::io::pipe().map_err(|e| Error::io("creating the stdin pipe", e))?;
            let data = data.clone();
            let t = std::thread::Builder::new()
                .name("nanobox-stdin".into())
                .spawn(move || {
                    use std::io::Write;
                    // A program that stops reading closes its end: the write fails, and ends.
                    let _ = w.write_all(&data);
                })
                .map_err(|e| Error::io("starting the stdin writer", e))?;
            (OwnedHandle::from(r), Some(t))
        }
        Stdin::File(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| Error::io(format!("opening stdin file {}", p.display()), e))?;
            (OwnedHandle::from(f), None)
        }
        Stdin::Piped => unreachable!("handled above"),
    };
    Ok((h, t, None))
}

/// The access entries a run needs: its directory and every mount, for the AppContainer's SID;
/// or, under the low-integrity token alone, the low label on what the program may write.
fn grant(
    policy: &Policy,
    isolation: Isolation,
    container: Option<&appcontainer::AppContainer>,
    tmpdir: &Path,
) -> Result<acl::Grants> {
    let mut g = acl::Grants::new(&record_dir())?;
    match (isolation, container) {
        (Isolation::AppContainer, Some(c)) => {
            g.note_profile(c.name())?;
            g.grant(c.sid_string(), tmpdir, acl::Access::ReadWrite)?;
            for m in &policy.mounts {
                let access = match m.permission {
                    Permission::ReadOnly => acl::Access::Read,
                    Permission::ReadWrite => acl::Access::ReadWrite,
                };
                g.grant(c.sid_string(), &m.host_canonical, access)?;
            }
        }
        _ => {
            g.label_low(tmpdir)?;
            for m in &policy.mounts {
                if m.permission == Permission::ReadWrite {
                    g.label_low(&m.host_canonical)?;
                }
            }
        }
    }
    Ok(g)
}

pub(crate) fn spawn(
    policy: &Policy,
    prep: &Prepared,
    program: &OsStr,
    args: &[OsString],
    stdin: &Stdin,
    _own_env: bool,
) -> Result<(Process, OutputPipe, OutputPipe, Option<std::io::PipeWriter>)> {
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let tag = format!("nanobox-{}-{n}", std::process::id());
    let tmpdir = make_tmpdir(&tag)?;
    let cwd = if policy.working_dir_explicit {
        policy.working_dir.clone()
    } else {
        tmpdir.0.clone()
    };
    let dirs = path_dirs(policy, &prep.windows_dir);
    let exe = resolve_program(program, &cwd, &dirs)?;
    let text = |s: &OsStr, what: &str| -> Result<String> {
        s.to_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidOption {
                option: "args",
                reason: format!(
                    "{what} is not valid Unicode; Windows command lines are UTF-16 text"
                ),
            })
    };
    let exe_s = text(exe.as_os_str(), "the program's path")?;
    let args_s = args
        .iter()
        .enumerate()
        .map(|(i, a)| text(a, &format!("argument {i}")))
        .collect::<Result<Vec<_>>>()?;
    let comspec = prep
        .windows_dir
        .join("System32\\cmd.exe")
        .display()
        .to_string();
    let (app, cmdline) =
        wincmd::command_line(&exe_s, &args_s, wincmd::program_kind(&exe_s), &comspec)?;
    let env = program_env(policy, &prep.windows_dir, &tmpdir.0);
    let block = wincmd::environment_block(&env)?;
    let container = match prep.isolation {
        Isolation::AppContainer => Some(appcontainer::AppContainer::create(&tag)?),
        Isolation::LowIntegrity => None,
    };
    let grants = grant(policy, prep.isolation, container.as_ref(), &tmpdir.0)?;
    let token = token::restricted()?;
    let job = job::Job::new(&prep.job)?;
    let (stdin_h, stdin_writer, stdin_w) = stdin_handle(stdin)?;
    let pipe = || std::io::pipe().map_err(|e| Error::io("creating an output pipe", e));
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (out_w, err_w) = (OwnedHandle::from(out_w), OwnedHandle::from(err_w));
    let app_w: Vec<u16> = sys::wide(&app);
    let cwd_w = sys::wide(&cwd);
    let started = Instant::now();
    let result = launch::launch(launch::Launch {
        token: std::os::windows::io::AsRawHandle::as_raw_handle(&token.token),
        application: &app_w,
        command_line: sys::wide(&cmdline),
        environment: &block,
        cwd: &cwd_w,
        stdin: &stdin_h,
        stdout: &out_w,
        stderr: &err_w,
        job: &job,
        capabilities: container.as_ref().map(|c| c.capabilities()),
    });
    // The caller's copies of the program's ends: the output reaches end-of-file when the job's
    // processes have closed theirs.
    drop((stdin_h, out_w, err_w));
    let started_proc = result.map_err(|e| match (&e, container.is_some()) {
        (Error::Setup { source, .. }, true) if source.raw_os_error() == Some(5) => Error::Setup {
            step: format!(
                "starting {} in an AppContainer: it may read only system directories and \
                     the run's mounts; mount the program's directory read-only, or install it \
                     for all users",
                exe.display()
            ),
            source: std::io::Error::from_raw_os_error(5),
        },
        _ => e,
    })?;
    process::start(
        started_proc.process,
        started_proc.pid,
        job,
        process::Watch {
            wall_limit: policy.wall_time_limit,
            cpu_time_limit: policy.limits.cpu_time,
            memory_limit: policy.limits.memory,
        },
        OwnedHandle::from(out_r),
        OwnedHandle::from(err_r),
        policy.output_limit,
        started,
        process::Extras {
            degraded: prep.notes.clone(),
            enforcement: prep.enforcement.clone(),
            grants: Some(grants),
            container,
            tmpdir: Some(tmpdir),
            stdin_writer,
        },
    )
    .map(|(p, o, e)| (p, o, e, stdin_w))
}
#[cfg(test)]
mod tests;
