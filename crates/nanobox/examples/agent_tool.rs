//! A minimal agent tool: the "run a shell command" tool an LLM agent calls, backed by one
//! persistent bash in a sandbox. Each line of stdin is one tool call (a shell command); each
//! answer is one JSON line with the command's output, exit code and time, so that `cd` and
//! `export` from one call hold in the next, as in the agent's own terminal.
//!
//!     printf 'cd /tmp && echo hi > f\ncat f; pwd\nsleep 60\n' | \
//!         cargo run -q -p nanobox-sandbox --example agent_tool -- /path/to/workspace
//!
//! The workspace (default: a new temporary directory) is the only host directory the program
//! sees, read-write at `/workspace`; the network is off; each call has 10 s.
use std::io::BufRead;
use std::time::Duration;

use nanobox::{Sandbox, MB};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let workspace = match std::env::args_os().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            let d = std::env::temp_dir().join(format!("agent-workspace-{}", std::process::id()));
            std::fs::create_dir_all(&d)?;
            d
        }
    };
    let sandbox = Sandbox::agent_executor(&workspace)
        .memory_limit(512 * MB)
        .wall_time_limit(Duration::from_secs(10))
        .build()?;
    let mut shell = sandbox.bash()?;
    for line in std::io::stdin().lock().lines() {
        let cmd = line?;
        if cmd.trim().is_empty() {
            continue;
        }
        if !shell.is_alive() {
            // The last call ended the shell (`exit`, or a command that ignored its timeout):
            // the agent gets a fresh one, as a terminal that was closed.
            shell = sandbox.bash()?;
        }
        let out = shell.run(&cmd)?;
        println!(
            "{{\"command\":{},\"exit_code\":{},\"timed_out\":{},\"seconds\":{:.3},\"stdout\":{},\"stderr\":{}}}",
            json(&cmd),
            out.exit_code.map_or("null".to_string(), |c| c.to_string()),
            out.timed_out,
            out.duration.as_secs_f64(),
            json(&out.stdout),
            json(&out.stderr),
        );
    }
    Ok(())
}

/// A JSON string.
fn json(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
