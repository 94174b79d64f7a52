//! The cgroup v2 side of a run: one directory holding every v2 controller.

use std::io;
use std::path::Path;

use super::detect::{Controller, V2Plan};
use super::fs::CgroupFs;
use super::{cpu_quota, Limits, CPU_PERIOD_US};

fn enable(fs: &dyn CgroupFs, dir: &Path, controllers: &[Controller]) -> io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let have = fs.read(&file)?;
    let have: Vec<&str> = have.split_ascii_whitespace().collect();
    for c in controllers {
        if !have.contains(&c.name()) {
            fs.write(&file, &format!("+{}", c.name()))
                .map_err(|e| annotate(e, &file, &format!("+{}", c.name())))?;
        }
    }
    Ok(())
}

/// An error that names the file and the value.
pub(super) fn annotate(e: io::Error, file: &Path, value: &str) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("writing {value:?} to {}: {e}", file.display()),
    )
}

/// Root mode: make `<mount>/nanobox` and enable the controllers in the mount's root and in it.
/// Idempotent; a delegated parent needs nothing.
pub(super) fn prepare_parent(fs: &dyn CgroupFs, plan: &V2Plan) -> io::Result<()> {
    let Some(root) = &plan.setup_root else {
        return Ok(());
    };
    enable(fs, root, &plan.controllers)?;
    match fs.mkdir(&plan.parent) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    enable(fs, &plan.parent, &plan.controllers)
}

/// Write the limits of the controllers v2 holds into the run cgroup `dir`.
pub(super) fn configure(
    fs: &dyn CgroupFs,
    dir: &Path,
    limits: &Limits,
    controllers: &[Controller],
) -> io::Result<()> {
    let w = |file: &str, value: &str| {
        let p = dir.join(file);
        fs.write(&p, value).map_err(|e| annotate(e, &p, value))
    };
    if controllers.contains(&Controller::Memory) {
        if let Some(bytes) = limits.memory {
            w("memory.max", &bytes.to_string())?;
            // No swap: the limit is on memory, and swapping would only slow the program down.
            if fs.exists(&dir.join("memory.swap.max")) {
                w("memory.swap.max", "0")?;
            }
        }
    }
    if controllers.contains(&Controller::Cpu) {
        if let Some(cores) = limits.cpu {
            w("cpu.max", &format!("{} {CPU_PERIOD_US}", cpu_quota(cores)))?;
        }
    }
    if controllers.contains(&Controller::Pids) {
        if let Some(n) = limits.pids {
            w("pids.max", &n.to_string())?;
        }
    }
    Ok(())
}
