//! The macOS profile generator: a policy and one run's context in, a Seatbelt (SBPL) profile and
//! the `sandbox-exec` command line out.
//!
//! Platform-neutral on purpose: nothing here calls macOS, so the generator is built and tested on
//! every host (the golden profiles and the TinyScheme structural check in `tests.rs` run on
//! Linux). The macOS backend runs what [`argv`] returns; `explain()` shows what [`profile`]
//! returns.
//!
//! The shape of a profile, and why each rule is there: docs/platform-macos.md, "The profile". In short:
//! `(deny default)`, then what programs need to start (fork, exec, the system libraries and
//! frameworks read-only, a few devices, sysctls and one lookup service), the run's temporary
//! directory and the policy's mounts, the filtering proxy's loopback port when the policy has an
//! allowlist, and nothing else. Every path reaches the profile as a parameter (`(param "NAME")`,
//! given to `sandbox-exec` as `-DNAME=path`), never as text inside it, so no path can change the
//! profile's structure; the few literal strings (the run's tag, sysctl and service names) go
//! through [`quote`].

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::policy::{Network, Permission, Policy};

pub(crate) mod violations;

#[cfg(test)]
mod tests;

/// The one program that applies a profile; always run by this absolute path.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) const SANDBOX_EXEC: &str = "/usr/bin/sandbox-exec";

/// What one run adds to a policy's profile (known when the run starts).
#[derive(Debug, Clone)]
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) struct RunContext {
    /// The run's private temporary directory, canonical (e.g.
    /// `/private/var/folders/../T/nanobox-...`): `TMPDIR`, the `/tmp` equivalent and the default
    /// working directory. Read and write.
    pub tmpdir: PathBuf,
    /// Loopback port of the caller-side filtering proxy when the policy has an allowlist; `None`
    /// otherwise. An allowlist without a port is an error (fail closed); a port without an
    /// allowlist is ignored (no network rule is written).
    pub proxy_port: Option<u16>,
    /// The run's tag (e.g. `nanobox-1234-7`), carried by every deny's `(with message ...)` so that
    /// the run's denials can be picked out of the unified log. `[A-Za-z0-9._-]`, 1 to 64
    /// characters.
    pub tag: String,
}

/// A generated profile: its text and the parameters it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) struct Profile {
    /// The SBPL text (given to `sandbox-exec -p`). Contains no path.
    pub text: String,
    /// `NAME -> path`, each passed as `-DNAME=path`; every `(param "NAME")` of the text is here,
    /// and every name here is used by the text.
    pub params: Vec<(String, PathBuf)>,
}

impl Profile {
    /// The text with every `(param "NAME")` replaced by its path, quoted: for showing a profile
    /// (`explain()`), never for running one (the run passes the paths as parameters). Fails on a
    /// path that is not UTF-8 or holds a control character.
    #[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
    pub(crate) fn expanded(&self) -> Result<String> {
        let mut text = self.text.clone();
        for (name, path) in &self.params {
            let shown = path.to_str().ok_or_else(|| {
                bad_path(
                    path,
                    "it is not UTF-8 and cannot be shown in a profile's text",
                )
            })?;
            text = text.replace(&format!("(param {})", quote(name)?), &quote(shown)?);
        }
        Ok(text)
    }
}

/// The links macOS itself puts at the top of the file system, and their targets.
const FIXED_LINKS: &[(&str, &str)] = &[("tmp", "tmp"), ("var", "var"), ("etc", "etc")];

fn bad_path(path: &Path, reason: impl Into<String>) -> Error {
    Error::InvalidSandboxPath {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Lexical canonicalisation by macOS's own fixed links: `/tmp` -> `/private/tmp`, `/var` ->
/// `/private/var`, `/etc` -> `/private/etc` (and their subpaths); strips a trailing slash, `.`
/// and duplicate `/`; refuses `..`, NUL bytes and relative paths. Never touches the file system.
///
/// Seatbelt matches paths after the kernel has resolved them, so a rule for `/tmp/x` would never
/// match: the canonical form is what a profile must name.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn canonical(path: &Path) -> Result<PathBuf> {
    if path.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(bad_path(path, "it contains a NUL byte"));
    }
    if !path.has_root() {
        return Err(bad_path(path, "it is not absolute"));
    }
    let mut names: Vec<&OsStr> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => names.push(n),
            Component::ParentDir => return Err(bad_path(path, "it contains a '..' component")),
            Component::Prefix(_) => return Err(bad_path(path, "it has a drive prefix")),
        }
    }
    let mut out = PathBuf::from("/");
    if let Some(first) = names.first() {
        if let Some((_, target)) = FIXED_LINKS.iter().find(|(l, _)| OsStr::new(l) == *first) {
            out.push("private");
            out.push(target);
            names.remove(0);
        }
    }
    for n in names {
        out.push(n);
    }
    Ok(out)
}

/// The one quoting function for the few literal strings left in a profile: escapes `\` then
/// `"`, wraps the result in double quotes; refuses NUL and every other control character (a
/// newline or escape sequence has no business in a sysctl name, a service name or a tag).
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn quote(s: &str) -> Result<String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Error::InvalidOption {
            option: "seatbelt profile string",
            reason: format!("{s:?} contains the control character {c:?}"),
        });
    }
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    Ok(format!("\"{escaped}\""))
}

/// Whether `tag` is a run tag a profile accepts: `[A-Za-z0-9._-]`, 1 to 64 characters.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn valid_tag(tag: &str) -> bool {
    (1..=64).contains(&tag.len())
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// How a fixed system path is reached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read everything below it (`file-read*` on the subpath).
    Read,
    /// Read everything below it and map it as code (`file-map-executable`): libraries and
    /// frameworks.
    ReadExec,
}

/// The system paths every program may read: parameter name, path, access, why.
const SYSTEM_PATHS: &[(&str, &str, Access, &str)] = &[
    (
        "SYS_USR_LIB",
        "/usr/lib",
        Access::ReadExec,
        "libSystem, dyld and the other system libraries every program links",
    ),
    (
        "SYS_USR_BIN",
        "/usr/bin",
        Access::Read,
        "the system's programs (env, sh and the language shims)",
    ),
    (
        "SYS_BIN",
        "/bin",
        Access::Read,
        "sh, bash, ls, cat and the other base programs",
    ),
    (
        "SYS_USR_SBIN",
        "/usr/sbin",
        Access::Read,
        "the rest of the default PATH",
    ),
    (
        "SYS_SBIN",
        "/sbin",
        Access::Read,
        "the rest of the default PATH",
    ),
    (
        "SYS_USR_SHARE",
        "/usr/share",
        Access::Read,
        "terminfo, zoneinfo, locale and other read-only data",
    ),
    (
        "SYS_LIBRARY",
        "/System/Library",
        Access::Read,
        "framework resources and SystemVersion.plist (read by runtimes to learn the OS version)",
    ),
    (
        "SYS_FRAMEWORKS",
        "/System/Library/Frameworks",
        Access::ReadExec,
        "public frameworks (CoreFoundation, Security) that runtimes load",
    ),
    (
        "SYS_PRIVATE_FRAMEWORKS",
        "/System/Library/PrivateFrameworks",
        Access::ReadExec,
        "private frameworks the public ones load",
    ),
    (
        "SYS_DYLD",
        "/System/Library/dyld",
        Access::ReadExec,
        "the dyld shared cache of macOS 11 and 12",
    ),
    (
        "SYS_APPLE_LIBRARY",
        "/Library/Apple/System/Library",
        Access::ReadExec,
        "system frameworks installed outside /System",
    ),
    (
        "SYS_PREBOOT_CRYPTEXES",
        "/System/Volumes/Preboot/Cryptexes",
        Access::ReadExec,
        "the dyld shared cache since macOS 13 (no program starts without it)",
    ),
    (
        "SYS_CRYPTEXES",
        "/System/Cryptexes",
        Access::ReadExec,
        "the same cryptexes by their firmlinked path",
    ),
    (
        "SYS_DYLD_DB",
        "/private/var/db/dyld",
        Access::ReadExec,
        "the dyld shared cache before macOS 13",
    ),
    (
        "SYS_TIMEZONE_DB",
        "/private/var/db/timezone",
        Access::Read,
        "the zone files /etc/localtime points to",
    ),
    (
        "SYS_SELECT",
        "/private/var/select",
        Access::Read,
        "the system's choice of shell, which the sh program reads to start it",
    ),
    (
        "SYS_XCODE_SELECT_LINK",
        "/private/var/db/xcode_select_link",
        Access::Read,
        "the developer directory the python3, git and cc shims of the system run from",
    ),
    (
        "SYS_COMMAND_LINE_TOOLS",
        "/Library/Developer/CommandLineTools",
        Access::ReadExec,
        "the system's python3, git and compilers behind those shims",
    ),
    (
        "SYS_ETC",
        "/private/etc",
        Access::Read,
        "hosts, ssl/cert.pem, shells' startup files; root-only files stay root-only",
    ),
];

/// The system's own links at the top of the file system: their metadata (so `readlink` and
/// `realpath` of `/tmp/...`, `/var/...`, `/etc/...` work), nothing below them (the targets have
/// their own rules).
const SYSTEM_LINKS: &[(&str, &str)] = &[
    ("SYS_LINK_TMP", "/tmp"),
    ("SYS_LINK_VAR", "/var"),
    ("SYS_LINK_ETC", "/etc"),
];

/// The devices: parameter name, path, operations, why.
const DEVICES: &[(&str, &str, &str, &str)] = &[
    (
        "DEV_NULL",
        "/dev/null",
        "file-read* file-write-data file-ioctl",
        "the usual sink and empty source; ioctl so that isatty() answers ENOTTY, not EPERM",
    ),
    (
        "DEV_ZERO",
        "/dev/zero",
        "file-read* file-write-data file-ioctl",
        "zero bytes (dd, mmap of anonymous memory by old code)",
    ),
    ("DEV_RANDOM", "/dev/random", "file-read*", "random bytes"),
    (
        "DEV_URANDOM",
        "/dev/urandom",
        "file-read*",
        "random bytes (what runtimes seed from)",
    ),
    (
        "DEV_TTY",
        "/dev/tty",
        "file-read-data file-write-data",
        "the controlling terminal, if the run has one; no ioctl (no TIOCSTI, no terminal modes)",
    ),
    (
        "DEV_DTRACEHELPER",
        "/dev/dtracehelper",
        "file-read* file-write-data file-ioctl",
        "dyld registers a program's DTrace probes here at every start",
    ),
    (
        "DEV_PTMX",
        "/dev/ptmx",
        "file-read* file-write-data file-ioctl",
        "openpty(): a new pseudo-terminal pair of the run's own",
    ),
];

/// The sysctls runtimes read at start (CPU count and features, page size, OS version, `uname`).
/// Process listings (`kern.proc.*`) are not among them: `ps` shows nothing inside.
const SYSCTL_NAMES: &[&str] = &[
    "hw.activecpu",
    "hw.byteorder",
    "hw.cachelinesize",
    "hw.cachelinesize_compat",
    "hw.cpufamily",
    "hw.cpusubtype",
    "hw.cputype",
    "hw.l1dcachesize",
    "hw.l1icachesize",
    "hw.l2cachesize",
    "hw.l3cachesize",
    "hw.logicalcpu",
    "hw.logicalcpu_max",
    "hw.machine",
    "hw.memsize",
    "hw.model",
    "hw.ncpu",
    "hw.nperflevels",
    "hw.pagesize",
    "hw.pagesize_compat",
    "hw.physicalcpu",
    "hw.physicalcpu_max",
    "hw.tbfrequency",
    "hw.vectorunit",
    "kern.argmax",
    "kern.hostname",
    "kern.maxfiles",
    "kern.maxfilesperproc",
    "kern.maxproc",
    "kern.ngroups",
    "kern.osproductversion",
    "kern.osrelease",
    "kern.ostype",
    "kern.osvariant_status",
    "kern.osversion",
    "kern.secure_kernel",
    "kern.tcsm_available",
    "kern.tcsm_enable",
    "kern.usrstack64",
    "kern.version",
    "machdep.cpu.brand_string",
    "machdep.ptrauth_enabled",
    "security.mac.lockdown_mode_state",
    "sysctl.proc_cputype",
    "sysctl.proc_translated",
    "vm.loadavg",
];

/// Sysctl name prefixes: CPU feature flags and performance levels (numeric libraries pick their
/// kernels by them).
const SYSCTL_PREFIXES: &[&str] = &["hw.optional.", "hw.perflevel", "machdep.cpu."];

/// The one lookup service: user and group lookups (`getpwuid`, `getgrgid`), which libc, Python's
/// `pwd` and `os.path.expanduser`, and Node's `os.userInfo` use. DNS (mDNSResponder) is
/// deliberately absent: names are resolved by the filtering proxy, and a resolver would be a
/// channel out of a run without network.
const MACH_SERVICES: &[&str] = &["com.apple.system.opendirectoryd.libinfo"];

/// One grant of the run's own: the temporary directory or a mount.
struct Grant {
    param: String,
    path: PathBuf,
    write: bool,
    is_dir: bool,
    what: String,
}

/// A profile being written: its text and the parameters declared so far.
struct Writer {
    text: String,
    params: Vec<(String, PathBuf)>,
    tag: String,
}

impl Writer {
    fn line(&mut self, s: &str) {
        self.text.push_str(s);
        self.text.push('\n');
    }
    fn comment(&mut self, s: &str) {
        let _ = writeln!(self.text, "; {s}");
    }
    /// Declare `NAME -> path` (once) and return `(param "NAME")`.
    fn param(&mut self, name: &str, path: &Path) -> Result<String> {
        match self.params.iter().find(|(n, _)| n == name) {
            Some((_, p)) if p != path => {
                return Err(Error::InvalidOption {
                    option: "seatbelt profile parameter",
                    reason: format!("{name} named both {} and {}", p.display(), path.display()),
                })
            }
            Some(_) => {}
            None => self.params.push((name.to_string(), path.to_path_buf())),
        }
        Ok(format!("(param {})", quote(name)?))
    }
    /// `(with message "<tag>")`, for every deny.
    fn message(&self) -> Result<String> {
        Ok(format!("(with message {})", quote(&self.tag)?))
    }
}

/// Every directory above `path` but `/`, outermost first.
fn ancestors(path: &Path) -> impl Iterator<Item = PathBuf> + '_ {
    path.ancestors()
        .skip(1)
        .filter(|p| *p != Path::new("/") && !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// The profile for `policy` in the run `run`.
///
/// Fails (and never widens access) when: the tag is malformed; the policy has an allowlist and
/// the run no proxy port; the temporary directory or a mount is `/`, relative or has `..`; a
/// mount's sandbox path is not its host path (macOS cannot show a host path elsewhere).
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn profile(policy: &Policy, run: &RunContext) -> Result<Profile> {
    if !valid_tag(&run.tag) {
        return Err(Error::InvalidOption {
            option: "seatbelt run tag",
            reason: format!("{:?} is not 1 to 64 characters of [A-Za-z0-9._-]", run.tag),
        });
    }
    let proxy_port = match (&policy.network, run.proxy_port) {
        (Network::Allowlist(_), Some(p)) => Some(p),
        (Network::Allowlist(_), None) => {
            return Err(Error::InvalidOption {
                option: "allow_network",
                reason: "the policy has a network allowlist but the run has no filtering proxy \
                         port; no profile is written without it (the run would otherwise get no \
                         network at all, or more than the allowlist)"
                    .into(),
            })
        }
        // Without an allowlist there is no network rule at all, whatever port was given.
        _ => None,
    };

    let mut grants = Vec::new();
    let tmpdir = canonical(&run.tmpdir)?;
    if tmpdir == Path::new("/") {
        return Err(Error::ReservedPath {
            path: tmpdir,
            reason: "the whole file system cannot be a run's temporary directory",
        });
    }
    grants.push(Grant {
        param: "TMPDIR".into(),
        path: tmpdir,
        write: true,
        is_dir: true,
        what: "the run's temporary directory (TMPDIR, /tmp, the default working directory)".into(),
    });
    for (i, m) in policy.mounts.iter().enumerate() {
        let path = canonical(&m.sandbox)?;
        if path != m.host_canonical {
            return Err(bad_path(
                &m.sandbox,
                format!(
                    "on macOS a mount appears at its own host path, and this one's host path is {}",
                    m.host_canonical.display()
                ),
            ));
        }
        if path == Path::new("/") {
            return Err(Error::ReservedPath {
                path,
                reason: "the sandbox's own root",
            });
        }
        let write = m.permission == Permission::ReadWrite;
        grants.push(Grant {
            param: format!("MOUNT_{i}"),
            path,
            write,
            is_dir: m.is_dir,
            what: format!(
                "mount {i}: {} {}",
                if m.is_dir { "directory" } else { "file" },
                if write { "read-write" } else { "read-only" }
            ),
        });
    }
    // Outer paths first: Seatbelt lets the later of two matching rules decide, so a read-only
    // mount inside a read-write one (or inside the temporary directory) comes after it.
    grants.sort_by_key(|g| g.path.components().count());

    let mut w = Writer {
        text: String::new(),
        params: Vec::new(),
        tag: run.tag.clone(),
    };
    let msg = w.message()?;

    w.comment("nanobox: generated profile; every path is a parameter (-DNAME=path).");
    w.line("(version 1)");
    w.comment("Nothing is allowed but what the rules below allow.");
    w.line(&format!("(deny default {msg})"));
    w.line("");

    w.comment("Processes: programs start programs; signals and process information stay inside");
    w.comment("the run (every process of the run shares this sandbox).");
    w.line("(allow process-fork)");
    w.line("(allow process-exec)");
    w.line("(allow signal (target same-sandbox))");
    w.line("(allow process-info* (target same-sandbox))");
    w.comment("The process tree is held: no process of the run leaves its session or process");
    w.comment("group, so the run's group can be ended as a whole. Where the system mediates");
    w.comment("system calls, allow them all (as the default does) and deny these two.");
    w.line("(if (defined? 'syscall-unix)");
    w.line("  (begin");
    w.line("    (allow syscall-unix)");
    w.line(&format!(
        "    (deny syscall-unix (syscall-number SYS_setsid SYS_setpgid) {msg})))"
    ));
    w.line("");

    w.comment("Sysctls read by runtimes at start: CPU count and features, page size, OS version.");
    w.line("(allow sysctl-read");
    for n in SYSCTL_NAMES {
        w.line(&format!("  (sysctl-name {})", quote(n)?));
    }
    for n in SYSCTL_PREFIXES {
        w.line(&format!("  (sysctl-name-prefix {})", quote(n)?));
    }
    w.line(")");
    w.comment("User and group lookups (getpwuid); no other service, no DNS.");
    w.line("(allow mach-lookup");
    for n in MACH_SERVICES {
        w.line(&format!("  (global-name {})", quote(n)?));
    }
    w.line(")");
    w.comment("Named POSIX semaphores: Python's multiprocessing locks.");
    w.line("(allow ipc-posix-sem)");
    w.line("");

    w.comment("System files, read-only; libraries and frameworks may be mapped as code.");
    let mut read = Vec::new();
    let mut exec = Vec::new();
    for (name, path, access, why) in SYSTEM_PATHS {
        let p = w.param(name, Path::new(path))?;
        read.push(format!("  (subpath {p}) ; {why}"));
        if *access == Access::ReadExec {
            exec.push(format!("  (subpath {p})"));
        }
    }
    w.line("(allow file-read*");
    for r in &read {
        w.line(r);
    }
    w.line(")");
    w.line("(allow file-map-executable");
    for e in &exec {
        w.line(e);
    }
    w.line(")");
    w.comment("The system's links /tmp, /var and /etc themselves (readlink, realpath).");
    w.line("(allow file-read-metadata");
    for (name, path) in SYSTEM_LINKS {
        let p = w.param(name, Path::new(path))?;
        w.line(&format!("  (literal {p})"));
    }
    w.line(")");
    w.comment("The root directory: getcwd, realpath and the process's start read it.");
    let root = w.param("ROOT", Path::new("/"))?;
    w.line(&format!("(allow file-read* (literal {root}))"));
    w.line("");

    w.comment("Devices.");
    for (name, path, ops, why) in DEVICES {
        let p = w.param(name, Path::new(path))?;
        w.comment(why);
        w.line(&format!("(allow {ops} (literal {p}))"));
    }
    w.comment("The run's own descriptors by name (/dev/fd/N is the open file itself).");
    let fd = w.param("DEV_FD", Path::new("/dev/fd"))?;
    w.line(&format!(
        "(allow file-read* file-write-data (subpath {fd}))"
    ));
    w.comment("Pseudo-terminals: only those the run opened itself (the system marks them with");
    w.comment("the pty extension), never another terminal of the user.");
    w.line("(allow pseudo-tty)");
    w.line(&format!(
        "(allow file-read* file-write-data file-ioctl (require-all (regex {}) (extension {})))",
        quote("^/dev/ttys[0-9]+$")?,
        quote("com.apple.sandbox.pty")?
    ));
    w.line("");

    // The directories above every allowed path, for their metadata only.
    let mut above: BTreeSet<PathBuf> = BTreeSet::new();
    for (_, path, _, _) in SYSTEM_PATHS {
        above.extend(ancestors(Path::new(path)));
    }
    for (_, path, _, _) in DEVICES {
        above.extend(ancestors(Path::new(path)));
    }
    for g in &grants {
        above.extend(ancestors(&g.path));
    }
    for g in &grants {
        above.remove(&g.path);
    }
    for (_, path, _, _) in SYSTEM_PATHS {
        above.remove(Path::new(path));
    }
    let mut parents = Vec::new();
    for (k, path) in above.iter().enumerate() {
        parents.push(w.param(&format!("PARENT_{k}"), path)?);
    }
    if !parents.is_empty() {
        w.comment(
            "The directories leading to the paths above: their metadata only (stat, realpath),",
        );
        w.comment("never their contents.");
        w.line("(allow file-read-metadata");
        for p in &parents {
            w.line(&format!("  (literal {p})"));
        }
        w.line(")");
        w.line("");
    }

    w.comment("The run's own paths, outer ones first (a later rule wins over an earlier one).");
    let mut roots = Vec::new();
    for g in &grants {
        let p = w.param(&g.param, &g.path)?;
        let filter = if g.is_dir {
            format!("(subpath {p})")
        } else {
            format!("(literal {p})")
        };
        w.comment(&g.what);
        if g.write {
            w.line(&format!(
                "(allow file-read* file-write* file-map-executable {filter})"
            ));
        } else {
            w.line(&format!("(allow file-read* file-map-executable {filter})"));
            w.line(&format!("(deny file-write* {filter} {msg})"));
        }
        roots.push(p);
    }
    w.comment("No mount, nor the temporary directory, nor a directory leading to one, is removed");
    w.comment("or renamed: moving a directory that holds a read-only mount would carry the mount");
    w.comment("out from under its rule. Hard links are never allowed (the default denies them).");
    w.line("(deny file-write-unlink");
    for p in roots.iter().chain(parents.iter()) {
        w.line(&format!("  (literal {p})"));
    }
    w.line(&format!("  {msg})"));
    w.line("");

    w.comment("Network.");
    match proxy_port {
        None => {
            w.comment("None: no network rule at all. Pipes and socketpair() need none; binding or");
            w.comment("connecting any socket (unix-domain ones included) is denied.");
        }
        Some(port) => {
            w.comment("Only the filtering proxy on loopback; it applies the allowlist.");
            // The port is a number formatted here, never text from the policy.
            let remote = quote(&format!("localhost:{port}"))?;
            w.line(&format!("(allow network-outbound (remote ip {remote}))"));
        }
    }
    w.comment(
        "Resource limits are not part of the profile: the backend and the watchdog apply them.",
    );

    Ok(Profile {
        text: w.text,
        params: w.params,
    })
}

/// The command line that runs `program args...` under `profile`:
/// `/usr/bin/sandbox-exec -p TEXT -DNAME=path... -- program args...`.
///
/// `sandbox-exec` parses its options with getopt (`[-f file] [-n name] [-p string] [-D
/// key=value ...] command [arguments ...]`), which stops at `--`: a program named `-n` or `-p`
/// is never taken for an option. The program is run with execvp, so it should be an absolute
/// path.
#[cfg_attr(not(any(target_os = "macos", test)), allow(dead_code))]
pub(crate) fn argv(profile: &Profile, program: &OsStr, args: &[OsString]) -> Result<Vec<OsString>> {
    let nul = |what: &str| Error::InvalidOption {
        option: "seatbelt command line",
        reason: format!("{what} contains a NUL byte"),
    };
    if profile.text.contains('\0') {
        return Err(nul("the profile"));
    }
    if program.is_empty() {
        return Err(Error::InvalidOption {
            option: "seatbelt command line",
            reason: "the program is empty".into(),
        });
    }
    let mut out: Vec<OsString> = vec![
        SANDBOX_EXEC.into(),
        "-p".into(),
        profile.text.clone().into(),
    ];
    for (name, path) in &profile.params {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::InvalidOption {
                option: "seatbelt profile parameter",
                reason: format!("{name:?} is not a parameter name ([A-Z0-9_]+)"),
            });
        }
        if path.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(nul(&format!("parameter {name}")));
        }
        let mut d = OsString::from(format!("-D{name}="));
        d.push(path.as_os_str());
        out.push(d);
    }
    out.push("--".into());
    for a in std::iter::once(program).chain(args.iter().map(OsString::as_os_str)) {
        if a.as_encoded_bytes().contains(&0) {
            return Err(nul("an argument"));
        }
        out.push(a.to_owned());
    }
    Ok(out)
}
