//! `nanobox`: run a program in a sandbox from the command line.
//!
//! The command itself: [`main_from`] parses a command line and runs it. The `nanobox` binary is a
//! one-line `main` around it, and the Python package's `nanobox` command calls it too.
//!
//! `nanobox run [OPTIONS] [--] PROGRAM [ARGS...]` and
//! `nanobox doctor [--json] [--clean] [--apparmor-profile PATH]`. The command-line contract
//! (options, JSON report, exit statuses) is in the project notes; `nanobox --help` and
//! `nanobox run --help` describe it.

#![deny(clippy::undocumented_unsafe_blocks)]

mod config;
mod parse;
mod signals;
mod stdio;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{OsStringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use nanobox::{Outcome, Permission, Sandbox};

use parse::MountSpec;

/// Exit status when the sandbox could not be set up.
const EXIT_SETUP: u8 = 125;
/// A malformed command line, including option values the library refuses.
const EXIT_USAGE: u8 = 2;
/// Exit status when PROGRAM exists but cannot be executed.
const EXIT_NOT_EXECUTABLE: u8 = 126;
/// Exit status when PROGRAM is not found.
const EXIT_NOT_FOUND: u8 = 127;
/// Exit status when the wall-clock limit (--timeout) ended the run.
const EXIT_TIMEOUT: u8 = 124;
/// Exit status when the output limit (--max-output) ended the run (as for a SIGKILL).
const EXIT_OUTPUT_LIMIT: u8 = 137;

const MAIN_HELP: &str = "\
EXAMPLES:
  nanobox run -- python3 -c 'print(\"hello\")'
  nanobox run --ro ./data:/data --timeout 30s -- python3 /data/script.py
  nanobox run --json --max-output 1M -- sh -c 'echo out; echo err >&2'
  nanobox doctor

Run `nanobox run --help` for every option, the JSON report and the exit statuses.";

const RUN_HELP: &str = "\
DEFAULTS:
  The program sees the host's system directories (/usr, /bin, /lib, /lib64, /sbin) and a safe /etc
  read-only, a private size-bounded /tmp (its working directory unless --workdir is given), its own
  /proc and a minimal /dev. It has no network, runs as an unprivileged user with no capabilities,
  and gets a minimal environment (PATH, HOME, LANG, PWD) with nothing from the caller's. There is
  no time limit unless --timeout is given.

VALUES:
  DURATION  a number and a unit: ms, s, m or h (30s, 1500ms, 2m, 1.5h); a bare number is seconds.
  SIZE      a number and a binary unit: K, M, G or T (512K = 524288 bytes, 256M, 1G), also written
            KB/KiB, MB/MiB, ...; a bare number (or a B suffix) is bytes.
  FILE      for --stdin: a host file, or '-' for this command's own stdin (a pipe or file is
            handed over as it is; a terminal is relayed through a pipe, never given to the program).
  HOST[:SANDBOX]
            a host path and where it appears in the sandbox (an absolute path). Without SANDBOX it
            appears at the same path (a relative HOST at its absolute path). Write a ':' that is
            part of a path as '\\:' and a '\\' just before a separating ':' as '\\\\'.
            HOST is mounted exactly as named: if it is or passes through a symlink (other than the
            system's own, such as /bin -> usr/bin), nothing runs (exit status 125) and the message
            names the link and its target. Name the target instead, or use --ro-follow/--rw-follow
            for a link you trust. A run also fails if HOST was removed or replaced since it started.

OUTPUT:
  Without --json the program's stdout and stderr are passed through as they are produced, with no
  cap unless --max-output is given; when a limit ends the run, one line on stderr says which.
  With --json its output is captured (64M per stream unless --max-output is given) and one JSON
  object is printed on stdout, the run report:
    status              \"exited\" | \"signaled\" | \"wall_time_limit\" | \"cpu_time_limit\" |
                        \"memory_limit\" | \"output_limit\": why the program ended (the limit
                        that fired first)
    exit_code           N, or null unless status is \"exited\"
    signal              N, or null unless the program died of a signal
    stdout, stderr      the captured output (UTF-8, invalid bytes replaced)
    stdout_truncated, stderr_truncated
                        true when that stream was cut at the output limit
    wall_time_ms        wall-clock time of the run
    cpu_time_ms         CPU time of the whole sandbox
    peak_memory_bytes   peak memory of the whole sandbox (of its largest process with rusage)
    accounting          where cpu_time_ms and peak_memory_bytes come from: \"cgroup v2\",
                        \"cgroup v1\", \"rusage\" or \"watchdog\" (macOS)
    limits              [{\"limit\", \"mechanism\"}]: what enforced each limit that was set
    network             [{\"host\", \"port\", \"allowed\", \"pattern\", \"address\", \"reason\",
                        \"count\", \"bytes_up\", \"bytes_down\"}]: requests through the
                        --allow-net proxy, one entry per destination and outcome
    network_truncated, network_omitted
                        whether, and how many, refused requests the log left out
    degraded            what was weaker than full isolation (with --allow-degraded-*)
    denials             [{\"operation\", \"target\", \"process\", \"pid\"}]: what the platform's
                        sandbox denied (with --report-denials; macOS, empty on Linux)
    denials_unread      why denials could not be read, or null
    stopped_by_signal   the SIGINT or SIGTERM nanobox received during the run and passed on (2
                        or 15), or null when none came
  When the sandbox cannot be set up or PROGRAM cannot be started, --json prints instead
    {\"status\": \"setup_error\", \"kind\": KIND, \"message\": \"...\", \"exit_code\": null,
     \"signal\": null}
  where KIND names the error (mount_source_missing, host_unsupported, program_not_found,
  invalid_option, ...), and the same message goes to stderr. A command line the parser rejects
  prints usage text only.

SIGNALS:
  A SIGINT or SIGTERM to nanobox during a run is passed on to the program (the process it
  started, once); the program then has the --stop-timeout (2s unless given) to end, and the
  sandbox is killed if it has not, or at once at a second SIGINT or SIGTERM (with
  --stop-timeout 0, at the first, which is then not passed on). Nothing of the sandbox outlives
  nanobox.

EXPLAIN:
  With --explain nothing runs: the policy the other options make is validated for --platform
  (linux, macos or windows; default: this one) and what a run of PROGRAM would do there is
  printed (with --json as one object: platform, program, args, mounts, working_dir, env, limits,
  and one of macos {profile, params, argv, tmpdir, proxy_port}, linux {system, namespaces,
  hostname, network, seccomp, host_limits, degraded} or windows {job_limits, token, handles,
  refused}); the exit status is 0. For another platform no host path is checked: each mount
  source is taken as an existing directory. macOS shows a mount only at its own host path and the
  presets' directories there; a mount elsewhere is refused (exit status 2), as a run there would
  be. The macOS run's temporary directory and proxy port are placeholders (made per run).

EXIT STATUS (also with --json):
  N        the program's own exit code
  128+N    the program was killed by signal N
  130, 143 nanobox got SIGINT or SIGTERM and the program had to be killed after --stop-timeout
           (a program that ends by itself in time gives its own status: 130 or 143 when the
           signal killed it, its exit code when it handled the signal and exited)
  124      the --timeout limit ended the run
  137      the --memory, --cpu-time or --max-output limit ended the run (as with SIGKILL)
  125      the sandbox could not be set up (a message on stderr says why)
  126      PROGRAM exists but cannot be executed
  127      PROGRAM was not found in the sandbox
  2        a malformed command line, also an option value nanobox refuses (a mount over
           /etc or /usr, two mounts at one path, a relative sandbox path); nothing was run

EXAMPLES:
  nanobox run -- python3 -c 'print(\"hello\")'
  nanobox run python3 -c 'import sys; print(sys.version)'
  nanobox run --ro ~/project:/src --workdir /src -- make test
  nanobox run --rw ./out:/out --env MODE=fast -- sh -c 'date > /out/stamp'
  nanobox run --stdin input.txt --timeout 2s -- python3 /usr/share/doc/solve.py
  echo hi | nanobox run --stdin - -- cat
  nanobox run --ro '/mnt/c\\:drive:/drive' -- ls /drive
  nanobox run --json --timeout 1500ms --max-output 512K -- ./a.out
  nanobox run --explain --platform macos --preset judge --submission ./sub -- python3 main.py";

const DOCTOR_HELP: &str = "\
Exits with 0 when runs can start on this host, 1 when a required feature is missing.

With --apparmor-profile PATH nothing is checked: the profile is printed (with --json, one object:
program, name, file, text) and the exit status is 0, or 2 when PATH is refused (relative, a
character AppArmor gives a meaning to, a symlink, missing, not an executable file).

EXAMPLES:
  nanobox doctor
  nanobox doctor --json
  nanobox doctor --clean
  nanobox doctor --apparmor-profile /usr/local/bin/nanobox \\
    | sudo tee /etc/apparmor.d/nanobox.usr.local.bin.nanobox >/dev/null
  sudo apparmor_parser -r /etc/apparmor.d/nanobox.usr.local.bin.nanobox";

/// Run untrusted programs in a lightweight sandbox.
#[derive(Debug, Parser)]
#[command(name = "nanobox", version, after_help = MAIN_HELP, subcommand_required = true,
          arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run PROGRAM with ARGS in a fresh sandbox
    #[command(after_help = RUN_HELP, override_usage = "nanobox run [OPTIONS] [--] PROGRAM [ARGS]...")]
    Run(Box<RunArgs>),
    /// Report what this host supports and whether runs can start
    #[command(after_help = DOCTOR_HELP)]
    Doctor(DoctorArgs),
    /// Print a shell completion script: bash, zsh or fish (e.g. `nanobox completions bash >
    /// /etc/bash_completion.d/nanobox`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: CompletionShell,
    },
    /// Print the manual page (roff; e.g. `nanobox man > /usr/local/share/man/man1/nanobox.1`)
    Man,
}

/// The shells `nanobox completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Take options from FILE, a TOML policy file (docs/API.md, "Config file")
    ///
    /// Every option of this command but --json, --explain and --platform can be written in it; relative paths in it are
    /// relative to its directory. Flags override the file: a flag's value replaces the file's
    /// (--preset too: the file's preset directories are kept only if it names the same preset);
    /// --env and --pool-limit add to the file's, a name set both ways taking the flag's value;
    /// --ro/--rw mounts are added, and one at a sandbox path a file mount also uses replaces that
    /// mount; --allow-net patterns replace the file's allow_net list, and --no-network drops it.
    /// An unknown key or a bad value is exit status 2 with a message naming the line; nothing runs
    #[arg(long, value_name = "FILE", help_heading = "Config")]
    config: Option<PathBuf>,

    /// Bind HOST read-only at SANDBOX (default: the same path); repeatable
    #[arg(long = "ro", value_name = "HOST[:SANDBOX]", help_heading = "Filesystem",
          value_parser = OsStringValueParser::new().try_map(|s| parse::mount_spec(&s)))]
    ro: Vec<MountSpec>,

    /// Bind HOST read-write at SANDBOX (default: the same path); changes reach the host; repeatable
    #[arg(long = "rw", value_name = "HOST[:SANDBOX]", help_heading = "Filesystem",
          value_parser = OsStringValueParser::new().try_map(|s| parse::mount_spec(&s)))]
    rw: Vec<MountSpec>,

    /// Bind HOST at SANDBOX, read-only unless ':rw' is given (unlike Docker's -v, which is
    /// read-write by default); a leading drive such as C:\data stays part of HOST; repeatable
    #[arg(short = 'v', long = "volume", value_name = "HOST[:SANDBOX][:ro|:rw]",
          help_heading = "Filesystem",
          value_parser = OsStringValueParser::new().try_map(|s| parse::volume_spec(&s)))]
    volume: Vec<(MountSpec, bool)>,

    /// Like --ro, but follow symlinks in HOST (once, at start); only for links you trust; repeatable
    #[arg(long = "ro-follow", value_name = "HOST[:SANDBOX]", help_heading = "Filesystem",
          value_parser = OsStringValueParser::new().try_map(|s| parse::mount_spec(&s)))]
    ro_follow: Vec<MountSpec>,

    /// Like --rw, but follow symlinks in HOST (once, at start); only for links you trust; repeatable
    #[arg(long = "rw-follow", value_name = "HOST[:SANDBOX]", help_heading = "Filesystem",
          value_parser = OsStringValueParser::new().try_map(|s| parse::mount_spec(&s)))]
    rw_follow: Vec<MountSpec>,

    /// Working directory inside the sandbox (default: /tmp); PWD is set to it
    #[arg(short = 'w', long, value_name = "PATH", help_heading = "Filesystem",
          value_parser = OsStringValueParser::new().try_map(|s| parse::sandbox_path(&s)))]
    workdir: Option<PathBuf>,

    /// Wall-clock limit, e.g. 30s, 1500ms, 2m (exit status 124 when it fires)
    #[arg(long, value_name = "DURATION", help_heading = "Limits", value_parser = parse::duration)]
    timeout: Option<Duration>,

    /// Memory for the whole sandbox, its /tmp included, no swap: 256M, 1G (binary units; a bare
    /// number is bytes); the memory_limit status and exit status 137 when the OOM killer acts
    #[arg(long, value_name = "SIZE", help_heading = "Limits", value_parser = parse::size)]
    memory: Option<u64>,

    /// CPU bandwidth in cores for the whole sandbox, e.g. 0.5 or 2
    #[arg(long, value_name = "N", help_heading = "Limits", value_parser = parse::cores)]
    cpus: Option<f64>,

    /// CPU time of the whole sandbox, e.g. 2s (the cpu_time_limit status, exit status 137)
    #[arg(long, value_name = "DURATION", help_heading = "Limits", value_parser = parse::duration)]
    cpu_time: Option<Duration>,

    /// Maximum live processes + threads in the sandbox
    #[arg(long, value_name = "N", help_heading = "Limits", value_parser = clap::value_parser!(u64).range(1..=4_000_000))]
    pids: Option<u64>,

    /// Largest file the program may write, e.g. 16M (writes past it fail with EFBIG)
    #[arg(long, value_name = "SIZE", help_heading = "Limits", value_parser = parse::size)]
    file_size: Option<u64>,

    /// Bound the sandbox's share of a kernel pool the host keeps per user, e.g.
    /// inotify_watches=65536 (default: an eighth of the caller's allowance; pools:
    /// inotify_instances, inotify_watches, pending_signals, mqueue_bytes, locked_memory_bytes,
    /// ptys); repeatable
    #[arg(long, value_name = "NAME=N", help_heading = "Limits", value_parser = parse::pool_limit)]
    pool_limit: Vec<(nanobox::KernelPool, u64)>,

    /// Cap on stdout and on stderr, each, e.g. 512K, 256M, 1G (exit status 137 when it fires)
    #[arg(long, value_name = "SIZE", help_heading = "Limits", value_parser = parse::size)]
    max_output: Option<u64>,

    /// No network at all: only a private loopback interface (the default)
    #[arg(long, help_heading = "Network", conflicts_with = "allow_net")]
    no_network: bool,

    /// Allow HTTP/HTTPS to PATTERN (host, *.domain, host:port) through the filtering proxy;
    /// repeatable. The program gets HTTP_PROXY/HTTPS_PROXY; --json lists every attempt
    #[arg(long, value_name = "PATTERN", help_heading = "Network")]
    allow_net: Vec<String>,

    /// Set KEY to VALUE, or with NAME alone pass this command's own value of NAME (nothing if it
    /// has none); the environment otherwise starts minimal; repeatable
    #[arg(short = 'e', long, value_name = "KEY=VALUE|NAME", help_heading = "Process",
          value_parser = parse::env_arg)]
    env: Vec<parse::EnvArg>,

    /// Set the variables of FILE: KEY=VALUE lines, '#' comments, an optional 'export ' prefix,
    /// values as written (no quotes removed, nothing expanded); before --env; repeatable
    #[arg(long, value_name = "FILE", help_heading = "Process")]
    env_file: Vec<PathBuf>,

    /// Feed FILE to the program's stdin ('-' = this command's own stdin; default: empty)
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Process",
        conflicts_with = "interactive"
    )]
    stdin: Option<PathBuf>,

    /// Pass this command's stdin through to the program (the same as --stdin -)
    #[arg(short = 'i', long, help_heading = "Process")]
    interactive: bool,

    /// After a SIGINT or SIGTERM to nanobox, which is passed on to the program, how long the
    /// program has to end before the sandbox is killed: 2s unless given; 0 kills at once
    #[arg(long, value_name = "DURATION", help_heading = "Process", value_parser = signals::stop_timeout)]
    stop_timeout: Option<Duration>,

    /// Hostname inside the sandbox (default: nanobox)
    #[arg(long, value_name = "NAME", help_heading = "Process")]
    hostname: Option<String>,

    /// Start from a preset: agent (needs --workspace), judge (--submission), data (--input and
    /// --output); other flags override the preset's values
    #[arg(long, value_name = "NAME", help_heading = "Presets", value_enum)]
    preset: Option<Preset>,

    /// The agent preset's workspace, read-write at /workspace (macOS: at its own path;
    /// NANOBOX_WORKSPACE names it)
    #[arg(long, value_name = "DIR", help_heading = "Presets")]
    workspace: Option<PathBuf>,

    /// The judge preset's submission, read-only at /submission (macOS: at its own path;
    /// NANOBOX_SUBMISSION names it)
    #[arg(long, value_name = "DIR", help_heading = "Presets")]
    submission: Option<PathBuf>,

    /// The data preset's input, read-only at /input (macOS: at its own path; NANOBOX_INPUT)
    #[arg(long, value_name = "DIR", help_heading = "Presets")]
    input: Option<PathBuf>,

    /// The data preset's output, read-write at /output (macOS: at its own path; NANOBOX_OUTPUT)
    #[arg(long, value_name = "DIR", help_heading = "Presets")]
    output: Option<PathBuf>,

    /// Print one JSON run report on stdout instead of passing the output through
    #[arg(long, help_heading = "Output")]
    json: bool,

    /// Run nothing: print what a run of this policy would do (with --json as one JSON object)
    /// on --platform: the Seatbelt profile and sandbox-exec arguments for macOS, the mount plan,
    /// seccomp policy and limit mechanisms for Linux, the Job Object limits, token and handles
    /// for Windows
    #[arg(long, help_heading = "Explain")]
    explain: bool,

    /// The platform --explain explains: linux, macos or windows (default: this one). For another
    /// platform no host path is looked at
    #[arg(long, value_name = "PLATFORM", help_heading = "Explain", requires = "explain",
          value_parser = clap::builder::PossibleValuesParser::new(["linux", "macos", "windows"])
              .map(|s| s.parse::<nanobox::Platform>().expect("one of the possible values")))]
    platform: Option<nanobox::Platform>,

    /// Where the host refuses user namespaces (or a new /proc), run with Landlock + seccomp alone
    /// instead of failing (weaker: printed to stderr, listed in --json's "degraded")
    #[arg(long, help_heading = "Isolation")]
    allow_degraded_isolation: bool,

    /// Where no cgroup is writable, enforce memory/pids/cpu-time limits with per-process rlimits
    /// instead of failing (weaker: listed in --json's "limits")
    #[arg(long, help_heading = "Isolation")]
    allow_degraded_limits: bool,

    /// List what the platform's sandbox denied in --json's "denials" (macOS: read from the
    /// unified log after the run; empty on Linux, where a denial is an error the program sees)
    #[arg(long, help_heading = "Isolation")]
    report_denials: bool,

    /// Both --allow-degraded-isolation and --allow-degraded-limits (the older, combined flag)
    #[arg(long, help_heading = "Isolation")]
    allow_degraded: bool,

    /// PROGRAM and its ARGS. PROGRAM is looked up in the sandbox's PATH unless it contains a '/';
    /// everything after it is passed on as it is, also words that start with '-'
    #[arg(value_name = "PROGRAM", required = true, num_args = 1.., trailing_var_arg = true)]
    program: Vec<OsString>,
}

#[derive(Debug, Args)]
struct DoctorArgs {
    /// Print the report as one JSON object
    #[arg(long)]
    json: bool,

    /// First remove the cgroups of runs whose owner is gone (a caller killed before it could
    /// clean up); prints each one removed
    #[arg(long)]
    clean: bool,

    /// Print an AppArmor profile that lets the program at PATH (absolute, no symlinks) create
    /// user namespaces where kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 23.10+);
    /// checks nothing else
    #[arg(long, value_name = "PATH", conflicts_with = "clean",
          value_parser = OsStringValueParser::new().map(PathBuf::from))]
    apparmor_profile: Option<PathBuf>,
}

/// Run the command line `args` (the first is the program's name, as in `std::env::args_os`) and
/// return the exit status. The `nanobox` binary and the Python package's `nanobox` command both
/// call this.
pub fn main_from<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Run(args) => run(*args),
        Command::Doctor(args) => doctor(args),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
    }
}

/// The completion script for `shell`, generated from the command's own definition.
fn completions(shell: CompletionShell) -> u8 {
    use clap::CommandFactory;
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "nanobox", &mut out);
    print_bytes(&out)
}

/// The manual page nanobox(1): the command, then each subcommand's description, options and
/// help text (OUTPUT, EXIT STATUS, ...) as sections of the same page.
fn man() -> u8 {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut out = Vec::new();
    let mut ok = clap_mangen::Man::new(cmd.clone()).render(&mut out).is_ok();
    for sub in cmd.get_subcommands().filter(|c| c.get_name() != "help") {
        out.extend_from_slice(
            format!(".SH \"NANOBOX {}\"\n", sub.get_name().to_uppercase()).as_bytes(),
        );
        let man = clap_mangen::Man::new(sub.clone());
        ok &= man.render_description_section(&mut out).is_ok()
            && man.render_options_section(&mut out).is_ok()
            && man.render_extra_section(&mut out).is_ok();
    }
    if !ok {
        eprintln!("nanobox: cannot render the manual page");
        return 1;
    }
    print_bytes(&out)
}

fn print_bytes(bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nanobox: cannot write to stdout: {e}");
            1
        }
    }
}

fn doctor(args: DoctorArgs) -> u8 {
    if let Some(path) = &args.apparmor_profile {
        return apparmor_profile(path, args.json);
    }
    if args.clean {
        match Sandbox::clean_stale() {
            Ok(removed) => {
                for p in &removed {
                    eprintln!("nanobox: removed stale cgroup {}", p.display());
                }
                eprintln!("nanobox: {} stale cgroup(s) removed", removed.len());
            }
            Err(e) => {
                eprintln!("nanobox: cleaning stale cgroups failed: {e}");
                return 1;
            }
        }
    }
    let probe = Sandbox::probe();
    if args.json {
        match serde_json::to_string(&probe) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("nanobox: cannot encode the report: {e}");
                return 1;
            }
        }
    } else {
        println!("{probe}");
    }
    if probe.ready {
        0
    } else {
        1
    }
}

/// `doctor --apparmor-profile PATH`: the profile's text, or with --json one object.
fn apparmor_profile(path: &std::path::Path, json: bool) -> u8 {
    let profile = match Sandbox::apparmor_profile(path) {
        Ok(p) => p,
        Err(nanobox::Error::InvalidOption { reason, .. }) => {
            eprintln!("nanobox: --apparmor-profile: {reason}");
            return EXIT_USAGE;
        }
        Err(e) => return fail(&e),
    };
    if json {
        match serde_json::to_string(&profile) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("nanobox: cannot encode the profile: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", profile.text);
    }
    0
}

/// Print `nanobox: {e}` on stderr and map the error to its exit status.
fn fail(e: &nanobox::Error) -> u8 {
    eprintln!("nanobox: {e}");
    error_status(e)
}

/// The exit status for a library error.
fn error_status(e: &nanobox::Error) -> u8 {
    match e {
        nanobox::Error::ProgramNotFound { .. } => EXIT_NOT_FOUND,
        nanobox::Error::ProgramNotExecutable { .. } => EXIT_NOT_EXECUTABLE,
        // What the library refuses about the options themselves is a malformed command line.
        nanobox::Error::ReservedPath { .. }
        | nanobox::Error::DuplicateMount { .. }
        | nanobox::Error::RelativeSandboxPath { .. }
        | nanobox::Error::InvalidSandboxPath { .. }
        | nanobox::Error::InvalidOption { .. } => EXIT_USAGE,
        _ => EXIT_SETUP,
    }
}

fn exit_status(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Exited(c) => u8::try_from(c).unwrap_or(255),
        Outcome::Signaled(n) => u8::try_from(128 + n).unwrap_or(255),
        Outcome::WallTimeLimit => EXIT_TIMEOUT,
        Outcome::OutputLimit => EXIT_OUTPUT_LIMIT,
        // Both end with SIGKILL from the kernel or the sandbox's init.
        Outcome::MemoryLimit | Outcome::CpuTimeLimit => 137,
        // An outcome a later version adds (Outcome is non-exhaustive).
        _ => EXIT_SETUP,
    }
}

/// The presets of `--preset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    Agent,
    Judge,
    Data,
}

/// The builder `--preset` and its directories give, or a message naming what is missing or extra.
fn preset_builder(args: &RunArgs) -> Result<nanobox::SandboxBuilder, String> {
    let given = [
        ("--workspace", args.workspace.is_some(), Preset::Agent),
        ("--submission", args.submission.is_some(), Preset::Judge),
        ("--input", args.input.is_some(), Preset::Data),
        ("--output", args.output.is_some(), Preset::Data),
    ];
    for (flag, set, owner) in given {
        if set && args.preset != Some(owner) {
            return Err(format!(
                "{flag} belongs to --preset {}",
                format!("{owner:?}").to_lowercase()
            ));
        }
    }
    let need = |v: &Option<PathBuf>, flag: &str| {
        v.clone().ok_or_else(|| {
            format!("--preset {:?} needs {flag} DIR", args.preset.unwrap()).to_lowercase()
        })
    };
    Ok(match args.preset {
        None => Sandbox::builder().no_network(),
        Some(Preset::Agent) => Sandbox::agent_executor(need(&args.workspace, "--workspace")?),
        Some(Preset::Judge) => Sandbox::code_judge(need(&args.submission, "--submission")?),
        Some(Preset::Data) => Sandbox::data_analysis(
            need(&args.input, "--input")?,
            need(&args.output, "--output")?,
        ),
    })
}

fn run(mut args: RunArgs) -> u8 {
    let builder = match config::starting_builder(&mut args) {
        Ok(b) => b,
        Err(f) => return f.report(args.json),
    };
    match run_or_fail(&args, builder) {
        Ok(code) => code,
        Err(f) => f.report(args.json),
    }
}

/// Why a run did not happen: its exit status, kind and message.
#[derive(Debug)]
struct Failure {
    code: u8,
    kind: &'static str,
    message: String,
}

impl Failure {
    /// An option the command line or the library refuses (exit status 2).
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            kind: "invalid_option",
            message: message.into(),
        }
    }

    /// The sandbox could not be set up (exit status 125).
    fn setup(kind: &'static str, message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_SETUP,
            kind,
            message: message.into(),
        }
    }

    fn of(e: &nanobox::Error) -> Self {
        Failure {
            code: error_status(e),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// The human text on stderr; with --json also one report on stdout, so that scripts never
    /// parse prose: `{"status": "setup_error", "kind": ..., "message": ..., "exit_code": null, ...}`.
    fn report(self, json: bool) -> u8 {
        eprintln!("nanobox: {}", self.message);
        if json {
            let report = serde_json::json!({
                "status": "setup_error",
                "kind": self.kind,
                "message": self.message,
                "exit_code": null,
                "signal": null,
            });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{report}").and_then(|()| out.flush());
        }
        self.code
    }
}

fn run_or_fail(args: &RunArgs, mut builder: nanobox::SandboxBuilder) -> Result<u8, Failure> {
    let mounts = args
        .ro
        .iter()
        .map(|m| (m, Permission::ReadOnly, false))
        .chain(args.rw.iter().map(|m| (m, Permission::ReadWrite, false)))
        .chain(
            args.ro_follow
                .iter()
                .map(|m| (m, Permission::ReadOnly, true)),
        )
        .chain(
            args.rw_follow
                .iter()
                .map(|m| (m, Permission::ReadWrite, true)),
        );
    let volumes = args.volume.iter().map(|(m, rw)| {
        let p = if *rw {
            Permission::ReadWrite
        } else {
            Permission::ReadOnly
        };
        (m, p, false)
    });
    for (spec, permission, follow) in mounts.chain(volumes) {
        let target = match spec.target() {
            Ok(t) => t,
            Err(e) => {
                return Err(Failure::setup(
                    "io",
                    format!(
                        "cannot make the mount source {} absolute: {e}",
                        spec.host.display()
                    ),
                ))
            }
        };
        builder = if follow {
            builder.mount_following_symlinks(&spec.host, target, permission)
        } else {
            builder.mount(&spec.host, target, permission)
        };
    }
    if let Some(dir) = &args.workdir {
        builder = builder.working_dir(dir);
    }
    for file in &args.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::usage(format!("--env-file {}: {e}", file.display())))?;
        let pairs = nanobox::parse_env_file(&text).map_err(|(line, why)| {
            Failure::usage(format!("--env-file {}, line {line}: {why}", file.display()))
        })?;
        builder = builder.envs(pairs);
    }
    for e in &args.env {
        match e {
            parse::EnvArg::Set(k, v) => builder = builder.env(k, v),
            parse::EnvArg::Pass(name) => {
                if let Some(v) = std::env::var_os(name) {
                    match v.into_string() {
                        Ok(v) => builder = builder.env(name, v),
                        Err(_) => {
                            return Err(Failure::usage(format!(
                                "--env {name}: this command's value is not UTF-8"
                            )))
                        }
                    }
                }
            }
        }
    }
    if let Some(t) = args.timeout {
        builder = builder.wall_time_limit(t);
    }
    // Passed-through output has no cap unless one is asked for; --json keeps the library's default.
    match (args.max_output, args.json) {
        (Some(n), _) => builder = builder.output_limit(n),
        (None, false) if args.preset.is_none() => builder = builder.output_limit(u64::MAX),
        (None, false) => {}
        (None, true) => {}
    }
    if let Some(name) = &args.hostname {
        builder = builder.hostname(name.clone());
    }
    if !args.allow_net.is_empty() {
        builder = builder.allow_network(&args.allow_net);
    }
    if args.allow_degraded || args.allow_degraded_isolation {
        builder = builder.allow_degraded_isolation();
    }
    if args.allow_degraded || args.allow_degraded_limits {
        builder = builder.allow_degraded_limits();
    }
    if args.report_denials {
        builder = builder.report_denials();
    }
    if let Some(m) = args.memory {
        builder = builder.memory_limit(m);
    }
    if let Some(c) = args.cpus {
        builder = builder.cpu_limit(c);
    }
    if let Some(t) = args.cpu_time {
        builder = builder.cpu_time_limit(t);
    }
    if let Some(n) = args.pids {
        builder = builder.process_limit(n);
    }
    if let Some(f) = args.file_size {
        builder = builder.file_size_limit(f);
    }
    for &(pool, n) in &args.pool_limit {
        builder = builder.kernel_pool_limit(pool, n);
    }
    if args.explain {
        return explain(args, &builder);
    }
    let stdin = if args.interactive {
        Some(std::path::Path::new("-"))
    } else {
        args.stdin.as_deref()
    };
    builder = builder.stdin(stdio::stdin_for(stdin).map_err(|m| Failure::setup("stdin", m))?);
    let sandbox = builder.build().map_err(|e| Failure::of(&e))?;
    if !args.json {
        for note in sandbox.degraded() {
            eprintln!("nanobox: degraded: {note}");
        }
    }

    let (program, rest) = args.program.split_first().expect("clap requires PROGRAM");
    let not_run = |e: nanobox::Error| program_failure(&e, program, args.workdir.is_some());
    // From here on SIGINT and SIGTERM are passed on to the program (signals.rs).
    let mut stopper = signals::Stopper::start(args.stop_timeout);
    if args.json {
        let result = stopper.capture(&sandbox, program, rest).map_err(not_run)?;
        match stopper.report(&result) {
            Ok(s) => {
                let mut out = std::io::stdout().lock();
                // A closed stdout leaves nothing to report to; the exit status still tells.
                let _ = writeln!(out, "{s}").and_then(|()| out.flush());
            }
            Err(e) => {
                eprintln!("nanobox: cannot encode the run report: {e}");
                return Ok(EXIT_SETUP);
            }
        }
        Ok(stopper.exit_status(result.outcome))
    } else {
        let outcome = stopper.stream(&sandbox, program, rest).map_err(not_run)?;
        match outcome {
            Outcome::WallTimeLimit => eprintln!(
                "nanobox: the program was stopped by the wall-clock limit (--timeout {:?})",
                args.timeout.unwrap_or_default()
            ),
            Outcome::OutputLimit => eprintln!(
                "nanobox: the program was stopped by the output limit (--max-output {} bytes)",
                args.max_output.unwrap_or(u64::MAX)
            ),
            Outcome::MemoryLimit => eprintln!(
                "nanobox: the program was stopped by the memory limit ({})",
                limit_source("--memory", args.memory.map(show_size), args.preset)
            ),
            Outcome::CpuTimeLimit => eprintln!(
                "nanobox: the program was stopped by the CPU-time limit ({})",
                limit_source(
                    "--cpu-time",
                    args.cpu_time.map(|t| format!("{t:?}")),
                    args.preset
                )
            ),
            _ => {}
        }
        Ok(stopper.exit_status(outcome))
    }
}

/// `run --explain`: the explanation on stdout (with --json as one object); nothing runs and stdin
/// is not read.
fn explain(args: &RunArgs, builder: &nanobox::SandboxBuilder) -> Result<u8, Failure> {
    let platform = args
        .platform
        .or_else(nanobox::Platform::current)
        .unwrap_or(nanobox::Platform::Linux);
    let (program, rest) = args.program.split_first().expect("clap requires PROGRAM");
    let e = builder
        .explain(platform, program, rest)
        .map_err(|e| Failure::of(&e))?;
    let text = if args.json {
        match serde_json::to_string(&e) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("nanobox: cannot encode the explanation: {e}");
                return Ok(EXIT_SETUP);
            }
        }
    } else {
        e.text()
    };
    Ok(print_bytes(text.as_bytes()))
}

/// Which limit it was: the flag and its value, or the preset's.
fn limit_source(flag: &str, value: Option<String>, preset: Option<Preset>) -> String {
    match (value, preset) {
        (Some(v), _) => format!("{flag} {v}"),
        (None, Some(p)) => format!("the {} preset's", format!("{p:?}").to_lowercase()),
        (None, None) => flag.to_string(),
    }
}

/// A size as the flags take it: 256M rather than 268435456 where it divides evenly.
fn show_size(n: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// A run that did not start; a relative host path given as PROGRAM gets the way to mount it.
fn program_failure(e: &nanobox::Error, program: &OsString, workdir_given: bool) -> Failure {
    let mut f = Failure::of(e);
    let path = std::path::Path::new(program);
    // `./a.out` is two components (CurDir, a.out), as `bin/x` is.
    let relative_with_dir = path.is_relative() && path.components().count() > 1;
    if matches!(e, nanobox::Error::ProgramNotFound { .. })
        && relative_with_dir
        && !workdir_given
        && path.is_file()
    {
        let inside = path
            .strip_prefix(".")
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        f.message.push_str(&format!(
            "\n{} is a file in this directory on the host, which the sandbox does not see: mount \
             the directory, e.g. nanobox run --ro .:/w --workdir /w -- /w/{inside}",
            program.to_string_lossy()
        ));
    }
    f
}
