//! What the host supports: the data behind `nanobox doctor` and [`crate::Sandbox::probe`].

use serde::Serialize;

/// Whether one feature is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckStatus {
    /// Present and working.
    Available,
    /// Absent or refused by the host.
    Missing,
}

/// One feature of the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name, e.g. `user namespaces`.
    pub name: String,
    /// Present or not.
    pub status: CheckStatus,
    /// What was found, in a sentence.
    pub detail: String,
    /// Whether every run needs it (a run refuses to start without it).
    pub required: bool,
    /// Whether a run uses it on this host.
    pub used: bool,
    /// How to get it, when it is missing.
    pub fix: Option<String>,
}

/// The host report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// `linux`, `macos`, `windows`, ...
    pub platform: &'static str,
    /// Whether a run can start here (every required check is available).
    pub ready: bool,
    /// Each feature.
    pub checks: Vec<Check>,
    /// The builder options runs refuse on this host although they start without them (e.g.
    /// `memory_limit` where no cgroup can enforce it): see the checks for why and the fix.
    pub refused: Vec<String>,
}

impl Probe {
    pub(crate) fn new(platform: &'static str, checks: Vec<Check>) -> Probe {
        let ready = checks
            .iter()
            .all(|c| !c.required || c.status == CheckStatus::Available);
        Probe {
            platform,
            ready,
            checks,
            refused: Vec::new(),
        }
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "nanobox on {}", self.platform)?;
        for c in &self.checks {
            let mark = match (c.status, c.required) {
                (CheckStatus::Available, _) => "ok  ",
                (CheckStatus::Missing, true) => "FAIL",
                (CheckStatus::Missing, false) => "--  ",
            };
            let used = if c.used { " [used]" } else { "" };
            writeln!(f, "  {mark} {}{used}: {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "       fix: {fix}")?;
            }
        }
        if self.ready && !self.refused.is_empty() {
            write!(
                f,
                "ready, except: runs start on this host, but a sandbox with {} is refused (see \
                 \"resource limits\" above)",
                self.refused.join(", ")
            )
        } else if self.ready {
            write!(f, "ready: runs will start on this host")
        } else {
            write!(
                f,
                "not ready: a required feature is missing (see FAIL above)"
            )
        }
    }
}
