//! `nanobox run --config FILE`: a policy file's options, under the command line's.
//!
//! The file is read with the library's [`nanobox::Config`] (one schema for the CLI, Rust and
//! Python; docs/API.md, "Config file"). Its values are written into the [`RunArgs`] that the
//! command line left unset, so the rest of `run` applies them exactly as it applies flags. The
//! rules, as `run --help` states them:
//!
//! - a flag's value replaces the file's (`--timeout` over `[limits] timeout`, ...);
//! - `--preset` replaces the file's `preset`; the file's preset directories are kept only when
//!   both name the same preset (a file's `preset = "judge"` with `--submission DIR` works);
//! - `--env` adds to the file's environment, and a name set both ways takes the flag's value;
//! - `--ro`/`--rw` mounts are added to the file's, and one at a sandbox path that a file mount
//!   also uses replaces that mount;
//! - `--allow-net` patterns replace the file's `allow_net` list, and `--no-network` drops it;
//! - `--pool-limit` adds to the file's `pools`, replacing the same pool's bound.

use std::path::Path;

use nanobox::{Config, Permission};

use crate::parse::{EnvArg, MountSpec};
use crate::{preset_builder, Failure, Preset, RunArgs};

/// The builder `run` starts from: without `--config`, [`preset_builder`]'s; with it, the file is
/// merged into `args` first, and what no flag can say (`tmp_size`) is set on the builder. A
/// failure (exit status 2) when the file cannot be read or is refused.
pub(crate) fn starting_builder(args: &mut RunArgs) -> Result<nanobox::SandboxBuilder, Failure> {
    let Some(path) = args.config.clone() else {
        return preset_builder(args).map_err(Failure::usage);
    };
    let file = Config::load(&path).map_err(|e| Failure {
        kind: e.kind(),
        ..Failure::usage(e.to_string())
    })?;
    merge(args, &file).map_err(Failure::usage)?;
    let mut builder = preset_builder(args).map_err(Failure::usage)?;
    if let Some(bytes) = file.limits.tmp_size {
        builder = builder.tmp_size(bytes);
    }
    Ok(builder)
}

fn cli_preset(p: nanobox::Preset) -> Result<Preset, String> {
    match p {
        nanobox::Preset::Agent => Ok(Preset::Agent),
        nanobox::Preset::Judge => Ok(Preset::Judge),
        nanobox::Preset::Data => Ok(Preset::Data),
        other => Err(format!("preset {:?} has no --preset here", other.name())),
    }
}

/// Fill every option of `args` that the command line left unset from `file` (see the module's
/// rules).
fn merge(args: &mut RunArgs, file: &Config) -> Result<(), String> {
    // The preset and its directories.
    let file_preset = file.preset.map(cli_preset).transpose()?;
    if args.preset.is_none() || args.preset == file_preset {
        args.preset = args.preset.or(file_preset);
        fill(&mut args.workspace, &file.workspace);
        fill(&mut args.submission, &file.submission);
        fill(&mut args.input, &file.input);
        fill(&mut args.output, &file.output);
    }

    // Mounts: the file's first, but those a flag mount replaces.
    let flag_targets: Vec<_> = [&args.ro, &args.rw, &args.ro_follow, &args.rw_follow]
        .into_iter()
        .flatten()
        .filter_map(|spec| spec.target().ok())
        .collect();
    let (mut ro, mut rw, mut ro_follow, mut rw_follow) = (vec![], vec![], vec![], vec![]);
    for m in &file.mounts {
        if flag_targets.iter().any(|t| same_path(t, &m.sandbox)) {
            continue;
        }
        let spec = MountSpec {
            host: m.host.clone(),
            sandbox: Some(m.sandbox.clone()),
        };
        match (m.permission, m.follow_symlinks) {
            (Permission::ReadWrite, false) => rw.push(spec),
            (Permission::ReadWrite, true) => rw_follow.push(spec),
            (_, false) => ro.push(spec),
            (_, true) => ro_follow.push(spec),
        }
    }
    prepend(&mut args.ro, ro);
    prepend(&mut args.rw, rw);
    prepend(&mut args.ro_follow, ro_follow);
    prepend(&mut args.rw_follow, rw_follow);

    fill(&mut args.workdir, &file.workdir);
    fill(&mut args.stop_timeout, &file.stop_timeout);
    fill(&mut args.hostname, &file.hostname);
    fill(&mut args.stdin, &file.stdin);
    // The file's pairs first: a flag's value of the same name is applied after it and wins.
    prepend(
        &mut args.env,
        file.env
            .iter()
            .map(|(k, v)| EnvArg::Set(k.clone(), v.clone()))
            .collect(),
    );
    args.allow_degraded_isolation |= file.allow_degraded_isolation;
    args.allow_degraded_limits |= file.allow_degraded_limits;

    if !args.no_network && args.allow_net.is_empty() {
        args.allow_net = file.allow_net.clone();
    }

    let l = &file.limits;
    fill(&mut args.timeout, &l.timeout);
    fill(&mut args.memory, &l.memory);
    fill(&mut args.cpus, &l.cpus);
    fill(&mut args.cpu_time, &l.cpu_time);
    fill(&mut args.pids, &l.pids);
    fill(&mut args.file_size, &l.file_size);
    fill(&mut args.max_output, &l.max_output);
    prepend(
        &mut args.pool_limit,
        l.pools.iter().map(|(&p, &n)| (p, n)).collect(),
    );
    Ok(())
}

fn fill<T: Clone>(flag: &mut Option<T>, file: &Option<T>) {
    if flag.is_none() {
        flag.clone_from(file);
    }
}

fn prepend<T>(flags: &mut Vec<T>, mut file: Vec<T>) {
    file.append(flags);
    *flags = file;
}

/// Whether two sandbox paths name the same place (`/data` and `/data/`, `/a/./b` and `/a/b`).
fn same_path(a: &Path, b: &Path) -> bool {
    a.components().eq(b.components())
}
