//! The cgroup v1 side of a run: one directory per hierarchy (memory, pids, cpu, cpuacct; a
//! hierarchy that holds several of them, like `cpu,cpuacct`, gets one directory).

use std::io;
use std::path::{Path, PathBuf};

use super::detect::{Controller, CpuAccounting, Host, Mechanism};
use super::fs::CgroupFs;
use super::v2::annotate;
use super::{cpu_quota, Limits, CPU_PERIOD_US};

/// The directories of the caller's v1 cgroups a run needs, each with the controller names it
/// serves: memory whenever v1 holds memory (peak and OOM accounting even without a limit), pids and
/// cpu when limited, cpuacct whenever it is the CPU accounting.
pub(super) fn needed(host: &Host, limits: &Limits) -> Vec<(PathBuf, Vec<&'static str>)> {
    let mut want: Vec<&'static str> = Vec::new();
    if host.mechanism(Controller::Memory) == Mechanism::V1 {
        want.push("memory");
    }
    if host.mechanism(Controller::Pids) == Mechanism::V1 && limits.pids.is_some() {
        want.push("pids");
    }
    if host.mechanism(Controller::Cpu) == Mechanism::V1 && limits.cpu.is_some() {
        want.push("cpu");
    }
    if matches!(host.cpu_accounting, CpuAccounting::V1(_)) {
        want.push("cpuacct");
    }
    let mut out: Vec<(PathBuf, Vec<&'static str>)> = Vec::new();
    for name in want {
        let Some(dir) = host.v1_dir(name) else {
            continue;
        };
        match out.iter_mut().find(|(d, _)| d == dir) {
            Some((_, names)) => names.push(name),
            None => out.push((dir.to_path_buf(), vec![name])),
        }
    }
    out
}

/// The v1 limit on the TCP buffers of a cgroup's sockets.
pub(super) const V1_TCP_LIMIT: &str = "memory.kmem.tcp.limit_in_bytes";

/// Write the limits for the controllers `names` into the run cgroup `dir`.
pub(super) fn configure(
    fs: &dyn CgroupFs,
    dir: &Path,
    names: &[&str],
    limits: &Limits,
) -> io::Result<()> {
    let w = |file: &str, value: &str| {
        let p = dir.join(file);
        fs.write(&p, value).map_err(|e| annotate(e, &p, value))
    };
    if names.contains(&"memory") {
        if let Some(bytes) = limits.memory {
            w("memory.limit_in_bytes", &bytes.to_string())?;
            // memory+swap at the same value: no swap. Written second (it may not be below
            // limit_in_bytes); present only with swap accounting.
            if fs.exists(&dir.join("memory.memsw.limit_in_bytes")) {
                w("memory.memsw.limit_in_bytes", &bytes.to_string())?;
            }
            // v1 keeps TCP buffers out of limit_in_bytes, charged to the host's tcp_mem unless
            // this limit is set (v2 counts them in memory.max): the same bound for them.
            if fs.exists(&dir.join(V1_TCP_LIMIT)) {
                w(V1_TCP_LIMIT, &bytes.to_string())?;
            }
        }
    }
    if names.contains(&"pids") {
        if let Some(n) = limits.pids {
            w("pids.max", &n.to_string())?;
        }
    }
    if names.contains(&"cpu") {
        if let Some(cores) = limits.cpu {
            w("cpu.cfs_period_us", &CPU_PERIOD_US.to_string())?;
            w("cpu.cfs_quota_us", &cpu_quota(cores).to_string())?;
        }
    }
    Ok(())
}
