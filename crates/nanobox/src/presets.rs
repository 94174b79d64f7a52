//! Presets: builders with the values a common use wants, each adjustable further.
//!
//! The values and the reason for each are in [API.md, "Presets"](https://github.com/nanobox-sandbox/nanobox/blob/main/docs/API.md#presets). A preset is only a starting
//! point: every builder method still applies after it, and a later call wins.
//!
//! The presets' directories are at fixed sandbox paths on Linux (`/workspace`, `/submission`,
//! `/input`, `/output`). macOS (and Windows) cannot show a host directory at another path, so
//! there each directory is at its own host path (canonical: `/tmp/x` is `/private/tmp/x`), and the
//! working directory and `HOME` follow it. On every platform `NANOBOX_WORKSPACE`,
//! `NANOBOX_SUBMISSION`, `NANOBOX_INPUT` and `NANOBOX_OUTPUT` name where the directory is: a
//! program that uses them runs everywhere; one that hard-codes `/workspace` is Linux-only. The
//! layout is chosen when the policy is validated for a platform, so
//! [`SandboxBuilder::explain`] shows another platform's.

use std::path::Path;
use std::time::Duration;

use crate::policy::{Permission, Role, SandboxBuilder};
use crate::result::{Outcome, RunResult};
use crate::sandbox::Sandbox;
use crate::{GB, MB};

/// The agent preset's limits.
pub(crate) mod agent {
    use super::*;
    pub const MEMORY: u64 = 4 * GB;
    pub const PROCESSES: u64 = 512;
    pub const WALL: Duration = Duration::from_secs(30 * 60);
}

/// The judge preset's limits.
pub(crate) mod judge {
    use super::*;
    pub const MEMORY: u64 = 256 * MB;
    pub const CPU: f64 = 1.0;
    pub const CPU_TIME: Duration = Duration::from_secs(10);
    pub const WALL: Duration = Duration::from_secs(30);
    pub const PROCESSES: u64 = 64;
    pub const FILE_SIZE: u64 = 64 * MB;
    pub const OUTPUT: u64 = 16 * MB;
    pub const TMP: u64 = 256 * MB;
}

/// The data preset's limits.
pub(crate) mod data {
    use super::*;
    pub const MEMORY: u64 = 16 * GB;
    pub const PROCESSES: u64 = 1024;
    pub const TMP: u64 = 4 * GB;
}

impl Sandbox {
    /// For an AI agent's commands: `workspace` read-write at `/workspace` (on macOS and Windows
    /// at its own host path), which is also the working directory and `HOME`, and which
    /// `NANOBOX_WORKSPACE` names; no network (add [`SandboxBuilder::allow_network`]); 4 GiB of
    /// memory, 512 processes, 30 minutes of wall time. Stream its output with
    /// [`Sandbox::spawn`].
    ///
    /// ```
    /// use nanobox::Sandbox;
    /// # fn main() -> nanobox::Result<()> {
    /// let workspace = std::env::temp_dir().join(format!("nanobox-doc-agent-{}", std::process::id()));
    /// std::fs::create_dir_all(&workspace).unwrap();
    /// let sandbox = Sandbox::agent_executor(&workspace).build()?;
    /// let r = sandbox.run("sh", &["-c", "pwd; echo note > notes.txt"])?;
    /// assert_eq!(r.stdout, "/workspace\n");
    /// // Portable programs use the variable: /workspace on Linux, the host path on macOS.
    /// let r = sandbox.run("sh", &["-c", "echo $NANOBOX_WORKSPACE"])?;
    /// assert_eq!(r.stdout, "/workspace\n");
    /// // The workspace is the host directory, read-write.
    /// assert_eq!(std::fs::read_to_string(workspace.join("notes.txt")).unwrap(), "note\n");
    /// # std::fs::remove_dir_all(&workspace).unwrap();
    /// # Ok(()) }
    /// ```
    ///
    /// With an allowlist the program reaches the named hosts, and only them, through a filtering
    /// proxy (`HTTPS_PROXY` is set for it):
    ///
    /// ```no_run
    /// # let workspace = "/home/me/project";
    /// let sandbox = nanobox::Sandbox::agent_executor(workspace)
    ///     .allow_network(&["api.openai.com"])
    ///     .build()?;
    /// # Ok::<(), nanobox::Error>(())
    /// ```
    pub fn agent_executor(workspace: impl AsRef<Path>) -> SandboxBuilder {
        Sandbox::builder()
            .mount_role(workspace.as_ref(), Role::Workspace, Permission::ReadWrite)
            .working_dir_role(Role::Workspace)
            .env_role("HOME", Role::Workspace)
            .env_role(Role::Workspace.var(), Role::Workspace)
            .no_network()
            .memory_limit(agent::MEMORY)
            .process_limit(agent::PROCESSES)
            .wall_time_limit(agent::WALL)
    }

    /// For judging a contest submission: `submission` read-only at `/submission` (on macOS and
    /// Windows at its own host path; `NANOBOX_SUBMISSION` names it), a private `/tmp` (256 MiB)
    /// to build in and the working directory (on macOS the run's private temporary directory, the
    /// default); no network; 256 MiB of memory, one
    /// CPU, 10 s of CPU time, 30 s of wall time, 64 processes, 64 MiB files, 16 MiB of output.
    /// [`RunResult::verdict`] maps the outcome to a judge's verdict.
    ///
    /// ```
    /// use nanobox::{Sandbox, Verdict};
    /// use std::time::Duration;
    /// # fn main() -> nanobox::Result<()> {
    /// let sub = std::env::temp_dir().join(format!("nanobox-doc-judge-{}", std::process::id()));
    /// std::fs::create_dir_all(&sub).unwrap();
    /// std::fs::write(sub.join("main.sh"), "read n; echo $((n * 2))\n").unwrap();
    /// let judge = Sandbox::code_judge(&sub).stdin(b"21\n".to_vec()).build()?;
    /// let r = judge.run("sh", &["/submission/main.sh"])?;
    /// assert_eq!((r.verdict(), r.stdout.as_str()), (Verdict::Accepted, "42\n"));
    /// // An endless loop is a time-limit verdict (here with a 1 s CPU-time limit).
    /// let strict = Sandbox::code_judge(&sub).cpu_time_limit(Duration::from_secs(1)).build()?;
    /// assert_eq!(strict.run("sh", &["-c", "while :; do :; done"])?.verdict(), Verdict::TimeLimit);
    /// # std::fs::remove_dir_all(&sub).unwrap();
    /// # Ok(()) }
    /// ```
    pub fn code_judge(submission: impl AsRef<Path>) -> SandboxBuilder {
        Sandbox::builder()
            .mount_role(submission.as_ref(), Role::Submission, Permission::ReadOnly)
            .env_role(Role::Submission.var(), Role::Submission)
            .preset_tmp_size(judge::TMP)
            .no_network()
            .memory_limit(judge::MEMORY)
            .cpu_limit(judge::CPU)
            .cpu_time_limit(judge::CPU_TIME)
            .wall_time_limit(judge::WALL)
            .process_limit(judge::PROCESSES)
            .file_size_limit(judge::FILE_SIZE)
            .output_limit(judge::OUTPUT)
    }

    /// For running someone else's data script: `input` read-only at `/input`, `output`
    /// read-write at `/output` (the working directory); on macOS and Windows each at its own
    /// host path; `NANOBOX_INPUT` and `NANOBOX_OUTPUT` name them; no network; 16 GiB of memory, 1024
    /// processes, a 4 GiB `/tmp`. What the program writes to `/output` belongs on the host to the
    /// user who runs nanobox (root included).
    ///
    /// ```
    /// use nanobox::Sandbox;
    /// # fn main() -> nanobox::Result<()> {
    /// let base = std::env::temp_dir().join(format!("nanobox-doc-data-{}", std::process::id()));
    /// let (input, output) = (base.join("in"), base.join("out"));
    /// std::fs::create_dir_all(&input).unwrap();
    /// std::fs::create_dir_all(&output).unwrap();
    /// std::fs::write(input.join("numbers.txt"), "1\n2\n3\n").unwrap();
    /// let sandbox = Sandbox::data_analysis(&input, &output).build()?;
    /// let r = sandbox.run("sh", &["-c", "wc -l < /input/numbers.txt > count.txt"])?;
    /// assert!(r.success());
    /// assert_eq!(std::fs::read_to_string(output.join("count.txt")).unwrap(), "3\n");
    /// // The input is read-only.
    /// assert!(!sandbox.run("rm", &["/input/numbers.txt"])?.success());
    /// # std::fs::remove_dir_all(&base).unwrap();
    /// # Ok(()) }
    /// ```
    pub fn data_analysis(input: impl AsRef<Path>, output: impl AsRef<Path>) -> SandboxBuilder {
        Sandbox::builder()
            .mount_role(input.as_ref(), Role::Input, Permission::ReadOnly)
            .mount_role(output.as_ref(), Role::Output, Permission::ReadWrite)
            .working_dir_role(Role::Output)
            .env_role(Role::Input.var(), Role::Input)
            .env_role(Role::Output.var(), Role::Output)
            .no_network()
            .memory_limit(data::MEMORY)
            .process_limit(data::PROCESSES)
            .preset_tmp_size(data::TMP)
    }
}

/// A judge's verdict on one run (whether the output is right is the judge's own business).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// The program exited with 0.
    Accepted,
    /// It exited non-zero or died of a signal.
    RuntimeError,
    /// The CPU-time or the wall-time limit ended it.
    TimeLimit,
    /// The memory limit ended it.
    MemoryLimit,
    /// It wrote more than the output limit.
    OutputLimit,
}

impl Verdict {
    /// The verdict for an outcome.
    pub fn of(outcome: Outcome) -> Verdict {
        match outcome {
            Outcome::Exited(0) => Verdict::Accepted,
            Outcome::Exited(_) | Outcome::Signaled(_) => Verdict::RuntimeError,
            Outcome::WallTimeLimit | Outcome::CpuTimeLimit => Verdict::TimeLimit,
            Outcome::MemoryLimit => Verdict::MemoryLimit,
            Outcome::OutputLimit => Verdict::OutputLimit,
        }
    }

    /// The verdict's name as the JSON report and the Python package spell it: `"accepted"`,
    /// `"runtime_error"`, `"time_limit"`, `"memory_limit"`, `"output_limit"`.
    ///
    /// ```
    /// use nanobox::{Outcome, Verdict};
    /// assert_eq!(Verdict::of(Outcome::CpuTimeLimit).as_str(), "time_limit");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::RuntimeError => "runtime_error",
            Verdict::TimeLimit => "time_limit",
            Verdict::MemoryLimit => "memory_limit",
            Verdict::OutputLimit => "output_limit",
        }
    }
}

impl RunResult {
    /// The judge's verdict on this run (see [`Verdict`]).
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names_are_the_json_names() {
        for v in [
            Verdict::Accepted,
            Verdict::RuntimeError,
            Verdict::TimeLimit,
            Verdict::MemoryLimit,
            Verdict::OutputLimit,
        ] {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json.as_str(), Some(v.as_str()));
        }
    }

    #[test]
    fn verdicts_cover_every_outcome() {
        assert_eq!(Verdict::of(Outcome::Exited(0)), Verdict::Accepted);
        assert_eq!(Verdict::of(Outcome::Exited(1)), Verdict::RuntimeError);
        assert_eq!(Verdict::of(Outcome::Signaled(11)), Verdict::RuntimeError);
        assert_eq!(Verdict::of(Outcome::WallTimeLimit), Verdict::TimeLimit);
        assert_eq!(Verdict::of(Outcome::CpuTimeLimit), Verdict::TimeLimit);
        assert_eq!(Verdict::of(Outcome::MemoryLimit), Verdict::MemoryLimit);
        assert_eq!(Verdict::of(Outcome::OutputLimit), Verdict::OutputLimit);
    }

    #[test]
    #[cfg_attr(
        windows,
        ignore = "the expectations are Linux and macOS sandbox paths, which a policy for Windows (the host platform here) does not have: a Windows mount is at its host path"
    )]
    fn presets_validate_to_their_documented_values() {
        let dir = std::env::temp_dir();
        let p = Sandbox::code_judge(&dir).validate().unwrap();
        assert_eq!(p.mounts[0].sandbox, Path::new("/submission"));
        assert_eq!(p.mounts[0].permission, Permission::ReadOnly);
        assert_eq!(p.working_dir, Path::new("/tmp"));
        assert_eq!(p.limits.memory, Some(judge::MEMORY));
        assert_eq!(p.limits.cpu, Some(1.0));
        assert_eq!(p.limits.cpu_time, Some(judge::CPU_TIME));
        assert_eq!(p.output_limit, judge::OUTPUT);
        let p = Sandbox::agent_executor(&dir).validate().unwrap();
        assert_eq!(p.working_dir, Path::new("/workspace"));
        assert!(p.env.contains(&("HOME".into(), "/workspace".into())));
        assert_eq!(p.mounts[0].permission, Permission::ReadWrite);
        let p = Sandbox::data_analysis(&dir, &dir).validate().unwrap();
        assert_eq!(p.working_dir, Path::new("/output"));
        // A later call wins.
        let p = Sandbox::code_judge(&dir)
            .memory_limit(512 * MB)
            .validate()
            .unwrap();
        assert_eq!(p.limits.memory, Some(512 * MB));
    }
}
