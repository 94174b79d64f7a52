//! Policy files: a sandbox's options written in TOML, loaded by [`Sandbox::from_config`] (and
//! by the CLI's `nanobox run --config FILE`, and Python's `Sandbox.from_config`).
//!
//! The schema, each key's meaning and default, and how the CLI's flags combine with a file are
//! in docs/API.md, "Config file". In short:
//!
//! ```toml
//! preset = "judge"              # "agent" | "judge" | "data"
//! submission = "./sub"          # the judge preset's directory (agent: workspace; data: input, output)
//! workdir = "/tmp"
//! no_network = true
//! env_file = ".env"
//! pass_env = ["LANG"]
//!
//! [env]
//! MODE = "fast"
//!
//! [limits]
//! memory = "256M"
//! timeout = "1m30s"
//!
//! [[mount]]
//! host = "./data"
//! sandbox = "/data"
//! mode = "ro"
//! ```
//!
//! Relative host paths (mounts, preset directories, `stdin`, `env_file`) are relative to the
//! file's directory. Every table rejects keys it does not know, naming the line and the keys it
//! allows: a misspelt limit never silently goes unenforced.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};
use crate::policy::{KernelPool, Permission, SandboxBuilder};
use crate::sandbox::Sandbox;
use crate::units::{parse_duration, parse_env_file, parse_size};

/// A preset named by a config file's `preset` key (or the CLI's `--preset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Preset {
    /// [`Sandbox::agent_executor`]: needs `workspace`.
    Agent,
    /// [`Sandbox::code_judge`]: needs `submission`.
    Judge,
    /// [`Sandbox::data_analysis`]: needs `input` and `output`.
    Data,
}

impl Preset {
    /// The preset's name in files and on the command line: `agent`, `judge`, `data`.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Agent => "agent",
            Preset::Judge => "judge",
            Preset::Data => "data",
        }
    }
}

/// One `[[mount]]` of a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigMount {
    /// The host path, absolute (a relative `host` was joined to the file's directory).
    pub host: PathBuf,
    /// Where it appears in the sandbox: `sandbox`, or else the host path's absolute form.
    pub sandbox: PathBuf,
    /// `mode = "ro"` (the default) or `"rw"`.
    pub permission: Permission,
    /// `follow_symlinks = true`: added with [`SandboxBuilder::mount_following_symlinks`].
    pub follow_symlinks: bool,
}

/// The `[limits]` table of a config file; `None` where the file does not set the key.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ConfigLimits {
    /// `memory`: [`SandboxBuilder::memory_limit`], in bytes.
    pub memory: Option<u64>,
    /// `cpus`: [`SandboxBuilder::cpu_limit`], in cores.
    pub cpus: Option<f64>,
    /// `cpu_time`: [`SandboxBuilder::cpu_time_limit`].
    pub cpu_time: Option<Duration>,
    /// `pids`: [`SandboxBuilder::process_limit`].
    pub pids: Option<u64>,
    /// `file_size`: [`SandboxBuilder::file_size_limit`], in bytes.
    pub file_size: Option<u64>,
    /// `timeout`: [`SandboxBuilder::wall_time_limit`].
    pub timeout: Option<Duration>,
    /// `max_output`: [`SandboxBuilder::output_limit`], in bytes.
    pub max_output: Option<u64>,
    /// `tmp_size`: [`SandboxBuilder::tmp_size`], in bytes.
    pub tmp_size: Option<u64>,
    /// `pools`: [`SandboxBuilder::kernel_pool_limit`] for each pool named.
    pub pools: BTreeMap<KernelPool, u64>,
}

/// A parsed config file: every key it sets, checked, with host paths made absolute and the
/// environment resolved (`env_file` read, `pass_env` taken from the caller's environment).
///
/// [`Config::builder`] turns it into a [`SandboxBuilder`] ([`Sandbox::from_config`] does both
/// steps); the fields are there for a caller that merges the file with options of its own, as
/// the CLI does with its flags.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// The file it was read from (empty for [`Config::parse`]).
    pub path: PathBuf,
    /// `preset`: the builder to start from.
    pub preset: Option<Preset>,
    /// `workspace`: the agent preset's directory (absolute).
    pub workspace: Option<PathBuf>,
    /// `submission`: the judge preset's directory (absolute).
    pub submission: Option<PathBuf>,
    /// `input`: the data preset's input directory (absolute).
    pub input: Option<PathBuf>,
    /// `output`: the data preset's output directory (absolute).
    pub output: Option<PathBuf>,
    /// `[[mount]]`, in file order.
    pub mounts: Vec<ConfigMount>,
    /// `workdir`: the working directory in the sandbox.
    pub workdir: Option<PathBuf>,
    /// `hostname`.
    pub hostname: Option<String>,
    /// `stdin`: a host file fed to the program's stdin (absolute).
    pub stdin: Option<PathBuf>,
    /// `no_network = true`.
    pub no_network: bool,
    /// `allow_net`: host patterns for [`SandboxBuilder::allow_network`] (empty: none).
    pub allow_net: Vec<String>,
    /// `allow_degraded_isolation = true`.
    pub allow_degraded_isolation: bool,
    /// `allow_degraded_limits = true`.
    pub allow_degraded_limits: bool,
    /// `stop_timeout`: the CLI's grace period between forwarding SIGINT/SIGTERM to the program
    /// and killing it. The library itself does not use it.
    pub stop_timeout: Option<Duration>,
    /// The environment the file sets, in the order it is applied (a later pair of the same
    /// name wins): the `env_file`'s lines, then `[env]`, then the `pass_env` names that are set
    /// in the caller's environment.
    pub env: Vec<(String, String)>,
    /// `[limits]`.
    pub limits: ConfigLimits,
    /// Line and column of the `preset` key, for the message when its directory is missing.
    preset_at: Option<(usize, usize)>,
}

impl Sandbox {
    /// A builder with the options of the config file at `path` (TOML; see docs/API.md, "Config
    /// file"). Relative host paths in it are relative to the file's directory. Every builder
    /// method still applies after it, and a later call wins.
    ///
    /// An unreadable or malformed file is an [`Error::Config`] naming the file, the line and
    /// column, and for an unknown key the keys allowed there.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = std::env::temp_dir().join(format!("nanobox-doc-config-{}", std::process::id()));
    /// std::fs::create_dir_all(dir.join("data"))?;
    /// std::fs::write(dir.join("data/n.txt"), "42\n")?;
    /// std::fs::write(
    ///     dir.join("nanobox.toml"),
    ///     "[limits]\nmemory = \"64M\"\ntimeout = \"10s\"\n\n[[mount]]\nhost = \"data\"\nsandbox = \"/data\"\n",
    /// )?;
    /// let sandbox = nanobox::Sandbox::from_config(dir.join("nanobox.toml"))?.build()?;
    /// assert_eq!(sandbox.run("cat", &["/data/n.txt"])?.stdout, "42\n");
    ///
    /// std::fs::write(dir.join("bad.toml"), "[limits]\nmemroy = \"64M\"\n")?;
    /// let err = nanobox::Sandbox::from_config(dir.join("bad.toml")).unwrap_err();
    /// assert_eq!(err.kind(), "config");
    /// assert!(err.to_string().contains("line 2"), "{err}");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(()) }
    /// ```
    pub fn from_config(path: impl AsRef<Path>) -> Result<SandboxBuilder> {
        Config::load(path)?.builder()
    }
}

impl SandboxBuilder {
    /// A builder with the options of config `text` (the contents of a config file; see
    /// [`Sandbox::from_config`]); relative host paths in it are relative to `base_dir`.
    pub fn from_config_str(text: &str, base_dir: impl AsRef<Path>) -> Result<SandboxBuilder> {
        Config::parse(text, base_dir)?.builder()
    }
}

impl Config {
    /// Read and check the config file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let fail = |reason: String| Error::Config {
            path: path.to_path_buf(),
            line: None,
            column: None,
            reason,
        };
        let absolute =
            std::path::absolute(path).map_err(|e| fail(format!("cannot resolve the path: {e}")))?;
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        // Cleaned by text, as docker compose does: `a/../b.toml` is in `b.toml`'s directory.
        let absolute = lexical_normalize(&absolute);
        let base = absolute.parent().unwrap_or(Path::new("/"));
        parse(&text, path, base)
    }

    /// Check config `text`; relative host paths in it are relative to `base_dir` (itself
    /// relative to the working directory if it is relative). Errors name no file.
    pub fn parse(text: &str, base_dir: impl AsRef<Path>) -> Result<Config> {
        let base = std::path::absolute(base_dir.as_ref()).map_err(|e| Error::Config {
            path: PathBuf::new(),
            line: None,
            column: None,
            reason: format!(
                "cannot resolve the base directory {}: {e}",
                base_dir.as_ref().display()
            ),
        })?;
        parse(text, Path::new(""), &lexical_normalize(&base))
    }

    /// The builder this file describes: its preset's (or [`Sandbox::builder`]), then every other
    /// key applied with [`Config::apply`].
    pub fn builder(&self) -> Result<SandboxBuilder> {
        let need = |dir: &Option<PathBuf>, key: &str| {
            dir.clone().ok_or_else(|| {
                let (line, column) = self.preset_at.unzip();
                Error::Config {
                    path: self.path.clone(),
                    line,
                    column,
                    reason: format!(
                        "preset {:?} needs {key} = \"DIR\"",
                        self.preset.map_or("", Preset::name)
                    ),
                }
            })
        };
        let start = match self.preset {
            None => Sandbox::builder(),
            Some(Preset::Agent) => Sandbox::agent_executor(need(&self.workspace, "workspace")?),
            Some(Preset::Judge) => Sandbox::code_judge(need(&self.submission, "submission")?),
            Some(Preset::Data) => {
                Sandbox::data_analysis(need(&self.input, "input")?, need(&self.output, "output")?)
            }
        };
        Ok(self.apply(start))
    }

    /// Apply every key of the file but `preset` and its directories to `builder`.
    pub fn apply(&self, mut b: SandboxBuilder) -> SandboxBuilder {
        for m in &self.mounts {
            b = if m.follow_symlinks {
                b.mount_following_symlinks(&m.host, &m.sandbox, m.permission)
            } else {
                b.mount(&m.host, &m.sandbox, m.permission)
            };
        }
        if let Some(d) = &self.workdir {
            b = b.working_dir(d);
        }
        if let Some(h) = &self.hostname {
            b = b.hostname(h.clone());
        }
        if let Some(s) = &self.stdin {
            b = b.stdin(crate::Stdin::file(s));
        }
        if self.no_network {
            b = b.no_network();
        }
        if !self.allow_net.is_empty() {
            b = b.allow_network(&self.allow_net);
        }
        if self.allow_degraded_isolation {
            b = b.allow_degraded_isolation();
        }
        if self.allow_degraded_limits {
            b = b.allow_degraded_limits();
        }
        b = b.envs(self.env.iter().cloned());
        let l = &self.limits;
        if let Some(v) = l.memory {
            b = b.memory_limit(v);
        }
        if let Some(v) = l.cpus {
            b = b.cpu_limit(v);
        }
        if let Some(v) = l.cpu_time {
            b = b.cpu_time_limit(v);
        }
        if let Some(v) = l.pids {
            b = b.process_limit(v);
        }
        if let Some(v) = l.file_size {
            b = b.file_size_limit(v);
        }
        if let Some(v) = l.timeout {
            b = b.wall_time_limit(v);
        }
        if let Some(v) = l.max_output {
            b = b.output_limit(v);
        }
        if let Some(v) = l.tmp_size {
            b = b.tmp_size(v);
        }
        for (&pool, &n) in &l.pools {
            b = b.kernel_pool_limit(pool, n);
        }
        b
    }
}

// ---- The file as TOML sees it ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    preset: Option<Spanned<Preset>>,
    workspace: Option<Spanned<PathBuf>>,
    submission: Option<Spanned<PathBuf>>,
    input: Option<Spanned<PathBuf>>,
    output: Option<Spanned<PathBuf>>,
    workdir: Option<Spanned<PathBuf>>,
    hostname: Option<String>,
    stdin: Option<PathBuf>,
    no_network: Option<bool>,
    allow_net: Option<Spanned<Vec<String>>>,
    allow_degraded_isolation: Option<bool>,
    allow_degraded_limits: Option<bool>,
    stop_timeout: Option<Dur>,
    env_file: Option<Spanned<PathBuf>>,
    pass_env: Option<Vec<Spanned<String>>>,
    env: Option<BTreeMap<Spanned<String>, String>>,
    limits: Option<RawLimits>,
    mount: Option<Vec<RawMount>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    memory: Option<Size>,
    cpus: Option<Cores>,
    cpu_time: Option<Dur>,
    pids: Option<Spanned<u64>>,
    file_size: Option<Size>,
    timeout: Option<Dur>,
    max_output: Option<Size>,
    tmp_size: Option<Size>,
    pools: Option<BTreeMap<Spanned<String>, PoolBound>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMount {
    host: Spanned<PathBuf>,
    sandbox: Option<Spanned<PathBuf>>,
    mode: Option<Mode>,
    follow_symlinks: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Ro,
    Rw,
}

/// A size: `"256M"` (see [`crate::parse_size`]) or a whole number of bytes.
struct Size(u64);
/// A duration: `"1m30s"` (see [`crate::parse_duration`]) or a number of seconds.
struct Dur(Duration);
/// A number of cores, 0.01 ..= 4096.
struct Cores(f64);
/// A kernel pool's bound: a whole number (0 refuses the pool) or a size string.
struct PoolBound(u64);

macro_rules! visit {
    ($ty:ident, $expecting:literal, |$v:ident| {
        str => $s:expr,
        int => $i:expr,
        float => $f:expr $(,)?
    }) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, $v: &str) -> std::result::Result<$ty, E> {
                        let r: std::result::Result<$ty, String> = $s;
                        r.map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, $v: i64) -> std::result::Result<$ty, E> {
                        let r: std::result::Result<$ty, String> = $i;
                        r.map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<$ty, E> {
                        match i64::try_from(v) {
                            Ok(v) => self.visit_i64(v),
                            Err(_) => Err(E::custom(format!("{v} is too large"))),
                        }
                    }
                    fn visit_f64<E: de::Error>(self, $v: f64) -> std::result::Result<$ty, E> {
                        let r: std::result::Result<$ty, String> = $f;
                        r.map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

visit!(Size, "a size: a string such as \"256M\", \"1G\", \"512K\", or a whole number of bytes", |v| {
    str => parse_size(v).map(Size).map_err(|why| format!("invalid size {v:?}: {why}")),
    int => u64::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .map(Size)
        .ok_or_else(|| format!("invalid size {v}: it must be at least 1 byte")),
    float => Err(format!(
        "invalid size {v}: a number of bytes is whole; write fractions with a unit, e.g. \"1.5M\""
    )),
});

visit!(Dur, "a duration: a string such as \"30s\", \"1500ms\", \"2m\", \"1m30s\", or a number of seconds", |v| {
    str => parse_duration(v).map(Dur).map_err(|why| format!("invalid duration {v:?}: {why}")),
    int => u64::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .map(|n| Dur(Duration::from_secs(n)))
        .ok_or_else(|| format!("invalid duration {v}: it must be longer than zero")),
    float => Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .map(Dur)
        .ok_or_else(|| format!("invalid duration {v}: it must be a number of seconds above zero")),
});

fn cores(v: f64) -> std::result::Result<Cores, String> {
    if v.is_finite() && (0.01..=4096.0).contains(&v) {
        Ok(Cores(v))
    } else {
        Err(format!(
            "invalid cpus {v}: a number of cores in 0.01 ..= 4096, e.g. 0.5"
        ))
    }
}

visit!(Cores, "a number of cores, e.g. 0.5 or 2", |v| {
    str => Err(format!("invalid cpus {v:?}: write a number without quotes, e.g. cpus = 0.5")),
    int => cores(v as f64),
    float => cores(v),
});

visit!(PoolBound, "a whole number, or a size such as \"64M\" for the byte pools", |v| {
    str => parse_size(v).map(PoolBound).map_err(|why| format!("invalid bound {v:?}: {why}")),
    int => u64::try_from(v)
        .map(PoolBound)
        .map_err(|_| format!("invalid bound {v}: it must be 0 or more")),
    float => Err(format!("invalid bound {v}: it must be a whole number")),
});

// ---- From TOML to a Config ---------------------------------------------------------------------

/// Line and column (from 1, the column in characters) of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before, |i| &before[i + 1..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Resolve `.` and `..` components by text alone.
fn lexical_normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn parse(text: &str, file: &Path, base: &Path) -> Result<Config> {
    let at = |span: Option<std::ops::Range<usize>>, reason: String| {
        let (line, column) = span.map(|s| line_col(text, s.start)).unzip();
        Error::Config {
            path: file.to_path_buf(),
            line,
            column,
            reason,
        }
    };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        // The message alone; the file, line and column go in front of it.
        at(e.span(), e.message().trim_end().to_string())
    })?;
    // Host paths: relative ones are relative to the file's directory.
    let host = |p: PathBuf| -> PathBuf {
        if p.is_absolute() {
            p
        } else {
            base.join(p).components().collect()
        }
    };
    let sandbox_path = |p: Spanned<PathBuf>, key: &str| -> Result<PathBuf> {
        let span = p.span();
        let p = p.into_inner();
        if !p.is_absolute() {
            return Err(at(
                Some(span),
                format!(
                    "{key} {} is relative: paths inside the sandbox start with '/'",
                    p.display()
                ),
            ));
        }
        Ok(p)
    };

    let mut c = Config {
        path: file.to_path_buf(),
        ..Config::default()
    };
    if let Some(p) = raw.preset {
        c.preset_at = Some(line_col(text, p.span().start));
        c.preset = Some(p.into_inner());
    }
    // Each preset directory belongs to one preset, which the file must name.
    let dirs = [
        (raw.workspace, "workspace", Preset::Agent, &mut c.workspace),
        (
            raw.submission,
            "submission",
            Preset::Judge,
            &mut c.submission,
        ),
        (raw.input, "input", Preset::Data, &mut c.input),
        (raw.output, "output", Preset::Data, &mut c.output),
    ];
    for (value, key, owner, slot) in dirs {
        let Some(value) = value else { continue };
        if c.preset != Some(owner) {
            return Err(at(
                Some(value.span()),
                format!(
                    "{key} belongs to preset = \"{}\"{}",
                    owner.name(),
                    match c.preset {
                        Some(p) => format!(", but the preset is {:?}", p.name()),
                        None => ", and no preset is set".to_string(),
                    }
                ),
            ));
        }
        *slot = Some(host(value.into_inner()));
    }
    if let Some(w) = raw.workdir {
        c.workdir = Some(sandbox_path(w, "workdir")?);
    }
    c.hostname = raw.hostname;
    c.stdin = raw.stdin.map(host);
    c.no_network = raw.no_network.unwrap_or(false);
    if let Some(list) = raw.allow_net {
        if c.no_network && !list.get_ref().is_empty() {
            return Err(at(
                Some(list.span()),
                "allow_net contradicts no_network = true: keep one of them".into(),
            ));
        }
        c.allow_net = list.into_inner();
    }
    c.allow_degraded_isolation = raw.allow_degraded_isolation.unwrap_or(false);
    c.allow_degraded_limits = raw.allow_degraded_limits.unwrap_or(false);
    c.stop_timeout = raw.stop_timeout.map(|d| d.0);

    // The environment: env_file, then [env], then pass_env.
    if let Some(f) = raw.env_file {
        let span = f.span();
        let path = host(f.into_inner());
        let body = std::fs::read_to_string(&path).map_err(|e| {
            at(
                Some(span.clone()),
                format!("env_file {}: cannot read it: {e}", path.display()),
            )
        })?;
        let pairs = parse_env_file(&body).map_err(|(line, why)| Error::Config {
            path: path.clone(),
            line: Some(line),
            column: None,
            reason: format!("(the env_file of {}) {why}", display_name(file)),
        })?;
        c.env.extend(pairs);
    }
    let table = raw.env.unwrap_or_default();
    for (k, v) in &table {
        check_env_name(k.get_ref()).map_err(|why| at(Some(k.span()), why))?;
        c.env.push((k.get_ref().clone(), v.clone()));
    }
    for name in raw.pass_env.unwrap_or_default() {
        let span = name.span();
        let name = name.into_inner();
        check_env_name(&name).map_err(|why| at(Some(span.clone()), why))?;
        if table.keys().any(|k| *k.get_ref() == name) {
            return Err(at(
                Some(span),
                format!("{name} is both in [env] and in pass_env: keep one of them"),
            ));
        }
        match std::env::var_os(&name) {
            None => {}
            Some(v) => match v.into_string() {
                Ok(v) => c.env.push((name, v)),
                Err(_) => {
                    return Err(at(
                        Some(span),
                        format!("the caller's value of {name} is not valid UTF-8"),
                    ))
                }
            },
        }
    }

    if let Some(l) = raw.limits {
        let out = &mut c.limits;
        out.memory = l.memory.map(|s| s.0);
        out.cpus = l.cpus.map(|v| v.0);
        out.cpu_time = l.cpu_time.map(|d| d.0);
        if let Some(p) = l.pids {
            let n = *p.get_ref();
            if n == 0 || n > 4_000_000 {
                return Err(at(
                    Some(p.span()),
                    format!("invalid pids {n}: it must be 1 ..= 4000000"),
                ));
            }
            out.pids = Some(n);
        }
        out.file_size = l.file_size.map(|s| s.0);
        out.timeout = l.timeout.map(|d| d.0);
        out.max_output = l.max_output.map(|s| s.0);
        out.tmp_size = l.tmp_size.map(|s| s.0);
        for (name, bound) in l.pools.unwrap_or_default() {
            let pool = KernelPool::from_name(name.get_ref()).ok_or_else(|| {
                let names: Vec<&str> = KernelPool::ALL.iter().map(|p| p.name()).collect();
                at(
                    Some(name.span()),
                    format!(
                        "unknown pool `{}`, expected one of {}",
                        name.get_ref(),
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            out.pools.insert(pool, bound.0);
        }
    }

    for m in raw.mount.unwrap_or_default() {
        let host_path = host(m.host.into_inner());
        let sandbox = match m.sandbox {
            Some(s) => sandbox_path(s, "sandbox")?,
            None => lexical_normalize(&host_path),
        };
        c.mounts.push(ConfigMount {
            host: host_path,
            sandbox,
            permission: match m.mode {
                None | Some(Mode::Ro) => Permission::ReadOnly,
                Some(Mode::Rw) => Permission::ReadWrite,
            },
            follow_symlinks: m.follow_symlinks.unwrap_or(false),
        });
    }
    Ok(c)
}

fn display_name(file: &Path) -> String {
    if file.as_os_str().is_empty() {
        "the config text".into()
    } else {
        file.display().to_string()
    }
}

fn check_env_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() || name.contains('=') || name.contains('\0') {
        return Err(format!(
            "environment variable name {name:?} is empty or contains '=' or NUL"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GB, MB};

    /// A fresh directory for one test, removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let p =
                std::env::temp_dir().join(format!("nanobox-config-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Scratch(p)
        }
        fn dir(&self, rel: &str) -> PathBuf {
            let p = self.0.join(rel);
            std::fs::create_dir_all(&p).unwrap();
            p
        }
        fn file(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.0.join(rel);
            std::fs::write(&p, text).unwrap();
            p
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn err(text: &str) -> Error {
        Config::parse(text, "/base").expect_err(text)
    }

    /// The line, column and reason of a config error.
    fn where_(e: &Error) -> (Option<usize>, Option<usize>, String) {
        match e {
            Error::Config {
                line,
                column,
                reason,
                ..
            } => (*line, *column, reason.clone()),
            other => panic!("not a config error: {other:?}"),
        }
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the expectations are Linux and macOS sandbox paths, which a policy for Windows (the host platform here) does not have: a Windows mount is at its host path"
    )]
    fn every_key_reaches_the_builder() {
        let s = Scratch::new("every-key");
        s.dir("sub");
        s.dir("data");
        s.dir("out");
        s.file("in.txt", "x");
        s.file(".env", "FROM_FILE=1\nSHARED=file\n");
        let path = s.file(
            "nanobox.toml",
            r#"
preset = "judge"
submission = "./sub"
workdir = "/submission"
hostname = "box"
stdin = "in.txt"
allow_net = ["pypi.org", "*.pythonhosted.org"]
allow_degraded_isolation = true
allow_degraded_limits = true
stop_timeout = "2s"
env_file = ".env"
pass_env = ["PATH", "NANOBOX_TEST_SURELY_UNSET_VARIABLE"]

[env]
MODE = "fast"
SHARED = "table"

[limits]
memory = "256M"
cpus = 0.5
cpu_time = "2s"
pids = 64
file_size = "16M"
timeout = "1m30s"
max_output = "1M"
tmp_size = "128M"
pools = { inotify_watches = 65536, mqueue_bytes = "1M" }

[[mount]]
host = "./data"
sandbox = "/data"

[[mount]]
host = "out"
mode = "rw"
follow_symlinks = true
"#,
        );
        let c = Config::load(&path).unwrap();
        assert_eq!(c.stop_timeout, Some(Duration::from_secs(2)));
        let got = Sandbox::from_config(&path).unwrap();
        let want = Sandbox::code_judge(s.0.join("sub"))
            .mount(s.0.join("data"), "/data", Permission::ReadOnly)
            .mount_following_symlinks(s.0.join("out"), s.0.join("out"), Permission::ReadWrite)
            .working_dir("/submission")
            .hostname("box")
            .stdin(crate::Stdin::file(s.0.join("in.txt")))
            .allow_network(&["pypi.org", "*.pythonhosted.org"])
            .allow_degraded_isolation()
            .allow_degraded_limits()
            .env("FROM_FILE", "1")
            .env("SHARED", "table")
            .env("MODE", "fast")
            .env("PATH", std::env::var("PATH").unwrap())
            .memory_limit(256 * MB)
            .cpu_limit(0.5)
            .cpu_time_limit(Duration::from_secs(2))
            .process_limit(64)
            .file_size_limit(16 * MB)
            .wall_time_limit(Duration::from_secs(90))
            .output_limit(MB)
            .tmp_size(128 * MB)
            .kernel_pool_limit(KernelPool::InotifyWatches, 65536)
            .kernel_pool_limit(KernelPool::MessageQueueBytes, MB);
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
        // And it differs from the preset alone, so the comparison sees the keys.
        assert_ne!(
            format!("{got:?}"),
            format!("{:?}", Sandbox::code_judge(s.0.join("sub")))
        );
        // The policy checks pass too: this builds.
        got.validate().unwrap();
    }

    #[test]
    fn the_other_presets_and_no_preset_start_their_builders() {
        let s = Scratch::new("presets");
        let (ws, i, o) = (s.dir("ws"), s.dir("in"), s.dir("out"));
        let b = |t: &str| format!("{:?}", SandboxBuilder::from_config_str(t, &s.0).unwrap());
        assert_eq!(
            b("preset = \"agent\"\nworkspace = \"ws\"\n"),
            format!("{:?}", Sandbox::agent_executor(&ws))
        );
        assert_eq!(
            b("preset = \"data\"\ninput = \"in\"\noutput = \"out\"\nno_network = true\n"),
            format!("{:?}", Sandbox::data_analysis(&i, &o).no_network())
        );
        assert_eq!(b(""), format!("{:?}", Sandbox::builder()));
        // Sizes and durations as plain numbers: bytes and seconds.
        assert_eq!(
            b("[limits]\nmemory = 1073741824\ntimeout = 1.5\ncpu_time = 3\ncpus = 2\n"),
            format!(
                "{:?}",
                Sandbox::builder()
                    .memory_limit(GB)
                    .wall_time_limit(Duration::from_millis(1500))
                    .cpu_time_limit(Duration::from_secs(3))
                    .cpu_limit(2.0)
            )
        );
    }

    #[test]
    fn unknown_keys_name_their_line_and_the_keys_allowed_there() {
        // Top level.
        let e = err("preset = \"judge\"\nsubmission = \"/s\"\n\ntimeot = \"2s\"\n");
        let (line, column, reason) = where_(&e);
        assert_eq!((line, column), (Some(4), Some(1)), "{e}");
        assert!(reason.contains("unknown field `timeot`"), "{reason}");
        for allowed in [
            "`preset`",
            "`workdir`",
            "`allow_net`",
            "`limits`",
            "`mount`",
        ] {
            assert!(reason.contains(allowed), "{allowed} missing: {reason}");
        }
        // In [limits].
        let e = err("hostname = \"h\"\n[limits]\nmemory = \"1G\"\nmemroy = \"1G\"\n");
        let (line, _, reason) = where_(&e);
        assert_eq!(line, Some(4), "{e}");
        assert!(reason.contains("unknown field `memroy`"), "{reason}");
        for allowed in ["`memory`", "`cpus`", "`timeout`", "`pools`"] {
            assert!(reason.contains(allowed), "{allowed} missing: {reason}");
        }
        // In a [[mount]].
        let e = err("[[mount]]\nhost = \"/a\"\n\n[[mount]]\nhost = \"/b\"\nreadonly = true\n");
        let (line, _, reason) = where_(&e);
        assert_eq!(line, Some(6), "{e}");
        assert!(reason.contains("unknown field `readonly`"), "{reason}");
        for allowed in ["`host`", "`sandbox`", "`mode`", "`follow_symlinks`"] {
            assert!(reason.contains(allowed), "{allowed} missing: {reason}");
        }
        // An unknown pool.
        let (line, _, reason) = where_(&err("[limits]\npools = { inotify_watchez = 1 }\n"));
        assert_eq!(line, Some(2));
        assert!(reason.contains("`inotify_watches`"), "{reason}");
        // The message carries the file, line and column.
        let s = Scratch::new("unknown");
        let f = s.file("nanobox.toml", "[limits]\nmemroy = 1\n");
        let msg = Sandbox::from_config(&f).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "config file {}, line 2, column 1: unknown field `memroy`",
                f.display()
            )),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_name_their_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("[limits]\nmemory = \"256Q\"\n", 2, "invalid size \"256Q\""),
            ("[limits]\n\nfile_size = 0\n", 3, "at least 1 byte"),
            ("[limits]\nmax_output = 1.5\n", 2, "whole"),
            (
                "[limits]\ntimeout = \"30 s\"\n",
                2,
                "invalid duration \"30 s\"",
            ),
            ("stop_timeout = \"0s\"\n", 1, "longer than zero"),
            ("[limits]\ncpu_time = -1\n", 2, "longer than zero"),
            ("[limits]\ncpus = 0\n", 2, "invalid cpus"),
            ("[limits]\ncpus = \"0.5\"\n", 2, "without quotes"),
            ("[limits]\npids = 0\n", 2, "invalid pids 0"),
            ("\n\npreset = \"jduge\"\n", 3, "unknown variant `jduge`"),
            (
                "[[mount]]\nhost = \"/a\"\nmode = \"wr\"\n",
                3,
                "unknown variant `wr`",
            ),
            ("[[mount]]\nsandbox = \"/a\"\n", 1, "missing field `host`"),
            (
                "[[mount]]\nhost = \"/a\"\nsandbox = \"a\"\n",
                3,
                "is relative",
            ),
            ("workdir = \"src\"\n", 1, "is relative"),
            ("submission = \"/s\"\n", 1, "belongs to preset = \"judge\""),
            (
                "preset = \"agent\"\ninput = \"/i\"\n",
                2,
                "but the preset is \"agent\"",
            ),
            (
                "no_network = true\nallow_net = [\"a.org\"]\n",
                2,
                "contradicts",
            ),
            ("hostname = 3\n", 1, "invalid type"),
            ("[env]\nN = 1\n", 2, "invalid type"),
            ("pass_env = [\"A=B\"]\n", 1, "contains '='"),
            (
                "pass_env = [\"M\"]\n[env]\nM = \"x\"\n",
                1,
                "both in [env] and in pass_env",
            ),
            ("env_file = \"no-such.env\"\n", 1, "cannot read it"),
            ("memory = \"1G\n", 1, ""),
        ];
        for &(text, want_line, want) in cases {
            let e = err(text);
            let (line, _, reason) = where_(&e);
            assert_eq!(line, Some(want_line), "{text:?}: {e}");
            assert!(reason.contains(want), "{text:?}: {reason}");
            assert_eq!(e.kind(), "config");
        }
        // A preset without its directory: at the preset key, when the builder is made.
        let e = SandboxBuilder::from_config_str("\npreset = \"judge\"\n", "/").unwrap_err();
        let (line, _, reason) = where_(&e);
        assert_eq!(line, Some(2));
        assert!(reason.contains("needs submission"), "{reason}");
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the expectations are Linux and macOS sandbox paths, which a policy for Windows (the host platform here) does not have: a Windows mount is at its host path"
    )]
    fn relative_paths_are_relative_to_the_files_directory() {
        let s = Scratch::new("relative");
        let conf = s.dir("conf");
        let f = s.file(
            "conf/nanobox.toml",
            "stdin = \"in.txt\"\n[[mount]]\nhost = \"./data/../data\"\n[[mount]]\nhost = \"/abs\"\nsandbox = \"/x\"\n",
        );
        // Loaded through a relative path, from another working directory than the file's.
        let cwd = std::env::current_dir().unwrap();
        assert_ne!(cwd, conf);
        let rel = pathdiff(&f, &cwd);
        let c = Config::load(&rel).unwrap();
        assert_eq!(c.path, rel);
        assert_eq!(c.stdin, Some(conf.join("in.txt")));
        assert_eq!(c.mounts[0].host, conf.join("data/../data"));
        // The default sandbox path is the host path's absolute form.
        assert_eq!(c.mounts[0].sandbox, conf.join("data"));
        assert_eq!(c.mounts[0].permission, Permission::ReadOnly);
        assert!(!c.mounts[0].follow_symlinks);
        assert_eq!(c.mounts[1].host, PathBuf::from("/abs"));
        // From text: relative to the base directory given.
        let c = Config::parse("stdin = \"in.txt\"\n", "/srv/job").unwrap();
        assert_eq!(c.stdin, Some(PathBuf::from("/srv/job/in.txt")));
    }

    /// `path` relative to `from` (both absolute).
    fn pathdiff(path: &Path, from: &Path) -> PathBuf {
        let up = from.components().count() - 1;
        let mut p: PathBuf = std::iter::repeat_n("..", up).collect();
        p.push(path.strip_prefix("/").unwrap());
        p
    }

    #[test]
    fn the_environment_comes_from_the_env_file_then_the_table_then_pass_env() {
        let s = Scratch::new("env");
        s.file("vars.env", "# comment\nexport A=from file\nB=file\n");
        let text = "env_file = \"vars.env\"\npass_env = [\"PATH\", \"NANOBOX_TEST_SURELY_UNSET_VARIABLE\"]\n[env]\nB = \"table\"\n";
        let c = Config::parse(text, &s.0).unwrap();
        let path = std::env::var("PATH").unwrap();
        assert_eq!(
            c.env,
            vec![
                ("A".to_string(), "from file".to_string()),
                ("B".to_string(), "file".to_string()),
                ("B".to_string(), "table".to_string()),
                ("PATH".to_string(), path.clone()),
            ]
        );
        let p = SandboxBuilder::from_config_str(text, &s.0)
            .unwrap()
            .validate()
            .unwrap();
        let env: BTreeMap<_, _> = p.env.into_iter().collect();
        assert_eq!(env["A"], "from file");
        assert_eq!(env["B"], "table");
        assert_eq!(env["PATH"], path);
        assert!(!env.contains_key("NANOBOX_TEST_SURELY_UNSET_VARIABLE"));

        // A malformed line of the env file: that file and its line.
        let bad = s.file("bad.env", "A=1\n\nexport B\n");
        let e = Config::parse("env_file = \"bad.env\"\n", &s.0).unwrap_err();
        match &e {
            Error::Config { path, line, .. } => {
                assert_eq!((path, *line), (&bad, Some(3)), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é\né = 1", 6), (2, 3));
        assert_eq!(line_col("a", 99), (1, 2));
    }

    #[test]
    fn an_unreadable_file_is_a_config_error_naming_it() {
        let e = Sandbox::from_config("/no/such/nanobox.toml").unwrap_err();
        assert_eq!(e.kind(), "config");
        assert!(
            e.to_string()
                .starts_with("config file /no/such/nanobox.toml: cannot read it"),
            "{e}"
        );
        let e = SandboxBuilder::from_config_str("x = 1", "/").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config text, line 1, column 1: unknown field `x`"),
            "{e}"
        );
    }
}
