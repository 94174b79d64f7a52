//! A HumanEval-style harness: each candidate solution runs against each of its tests in a fresh
//! sandbox with a per-test timeout and the test's input on stdin; a test passes when the program
//! exits 0 in time and prints the expected output. Prints one line per problem and pass@1.
//!
//!     cargo run -q -p nanobox-sandbox --example humaneval
//!
//! A real harness reads problems and model samples from files; these four are inline, and the
//! last two are wrong on purpose (an endless loop ended by its timeout, a wrong answer).
use std::time::Duration;

use nanobox::{Outcome, Sandbox, MB};

struct Problem {
    name: &'static str,
    solution: &'static str,
    /// (stdin, expected stdout)
    tests: &'static [(&'static str, &'static str)],
}

const PROBLEMS: &[Problem] = &[
    Problem {
        name: "add",
        solution: "a, b = map(int, input().split())\nprint(a + b)\n",
        tests: &[("1 2\n", "3"), ("-5 5\n", "0")],
    },
    Problem {
        name: "reverse",
        solution: "print(input()[::-1])\n",
        tests: &[("abc\n", "cba"), ("\n", "")],
    },
    Problem {
        name: "fib",
        solution: "n = int(input())\nwhile True:\n    pass\n",
        tests: &[("10\n", "55")],
    },
    Problem {
        name: "max",
        solution: "print(min(map(int, input().split())))\n",
        tests: &[("3 9 4\n", "9")],
    },
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One sandbox for every run: no network, no host files, 256 MiB and 16 processes per run.
    let sandbox = Sandbox::builder()
        .memory_limit(256 * MB)
        .process_limit(16)
        .wall_time_limit(Duration::from_secs(30))
        .build()?;
    let mut passed = 0;
    for p in PROBLEMS {
        let mut verdicts = Vec::new();
        for (input, expected) in p.tests {
            let r = sandbox
                .command("python3")
                .args(["-c", p.solution])
                .stdin(*input)
                .timeout(Duration::from_secs(2)) // per test, tighter than the sandbox's
                .run()?;
            verdicts.push(match r.outcome {
                Outcome::Exited(0) if r.stdout.trim_end() == *expected => "pass",
                Outcome::Exited(0) => "wrong answer",
                Outcome::WallTimeLimit => "timeout",
                Outcome::MemoryLimit => "memory limit",
                _ => "runtime error",
            });
        }
        let ok = verdicts.iter().all(|v| *v == "pass");
        passed += usize::from(ok);
        println!(
            "{:8} {} {:?}",
            p.name,
            if ok { "PASS" } else { "FAIL" },
            verdicts
        );
    }
    println!("pass@1 = {passed}/{}", PROBLEMS.len());
    Ok(())
}
