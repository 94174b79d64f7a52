//! The presets end to end with real programs, as root (cgroup limits) and as uid 65534 (where the
//! presets' limits need `allow_degraded_limits`, there being no writable cgroup).

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;
mod proxy_util;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use common::TempDir;
use nanobox::{Error, Outcome, Permission, Sandbox, SandboxBuilder, Verdict};
use proxy_util::{read_head, Origin};

/// Whether this process gets cgroup limits.
fn cgroups() -> bool {
    !matches!(
        Sandbox::builder().memory_limit(64 << 20).build(),
        Err(Error::HostUnsupported { .. })
    )
}

/// The preset as this process can build it: strict where cgroups exist, else with rlimits (and
/// then the strict build must have been refused, naming the fix).
fn usable(b: SandboxBuilder) -> SandboxBuilder {
    if cgroups() {
        return b;
    }
    match b.clone().build() {
        Err(Error::HostUnsupported { fix, .. }) => assert!(fix.contains("allow_degraded_limits")),
        other => panic!("a strict preset without cgroups must be refused: {other:?}"),
    }
    b.allow_degraded_limits()
}

fn open_dir(d: &TempDir) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
}

both!(agent_edits_its_workspace_and_reaches_only_allowed_hosts, {
    let ws = TempDir::new();
    open_dir(&ws);
    std::fs::write(ws.join("notes.txt"), "draft\n").unwrap();
    let o = Origin::start(|mut c| {
        let _ = read_head(&mut c);
        let _ = c
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nfetched");
    });
    let p = o.port();
    let lo = "127.0.0.1".parse().unwrap();
    let agent = usable(
        Sandbox::agent_executor(ws.path())
            .allow_network(&[format!("api.allowed.test:{p}")])
            .map_host("api.allowed.test", lo)
            .map_host("evil.test", lo),
    )
    .build()
    .unwrap();
    let mut child = agent
        .spawn(
            "sh",
            &[
                "-c",
                &format!(
                    "pwd; echo $HOME; sed -i s/draft/final/ notes.txt; \
                     curl -sS http://api.allowed.test:{p}/ > fetched.txt; \
                     curl -sS -o /dev/null -w '%{{http_code}}\\n' http://evil.test:{p}/"
                ),
            ],
        )
        .unwrap();
    // Streaming: read the output as it comes.
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let r = child.wait_with_output().unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(out, "/workspace\n/workspace\n403\n");
    assert_eq!(
        std::fs::read_to_string(ws.join("notes.txt")).unwrap(),
        "final\n"
    );
    assert_eq!(
        std::fs::read_to_string(ws.join("fetched.txt")).unwrap(),
        "fetched"
    );
    assert_eq!(r.network.len(), 2, "{:?}", r.network);
    assert!(r.network[0].allowed && !r.network[1].allowed);
});

const SUBMISSIONS: &[(&str, &str, Verdict)] = &[
    ("accepted", "int main(void) { return 0; }", Verdict::Accepted),
    ("wrong_exit", "int main(void) { return 3; }", Verdict::RuntimeError),
    (
        "time_limit",
        "int main(void) { volatile unsigned long i = 0; for (;;) i++; }",
        Verdict::TimeLimit,
    ),
    (
        "memory_limit",
        "#include <stdlib.h>\n#include <string.h>\nint main(void) { for (;;) { char *p = malloc(1 << 24); if (!p) return 4; memset(p, 1, 1 << 24); } }",
        Verdict::MemoryLimit,
    ),
];

both!(judge_compiles_with_gcc_inside_and_gives_four_verdicts, {
    if !cgroups() {
        // The strict judge needs the cgroup limits, which uid 65534 does not get on this host,
        // and says so; the degraded judge's verdicts are degraded_memory.rs's.
        let sub = TempDir::new();
        assert!(matches!(
            Sandbox::code_judge(sub.path()).build(),
            Err(Error::HostUnsupported { .. })
        ));
        return;
    }
    for (name, source, want) in SUBMISSIONS {
        let sub = TempDir::new();
        let build = TempDir::new();
        open_dir(&build);
        std::fs::write(sub.join("main.c"), source).unwrap();
        // Compile inside, into the build directory, with the judge's limits and more CPU time.
        let compiler = Sandbox::code_judge(sub.path())
            .mount(build.path(), "/build", Permission::ReadWrite)
            .cpu_time_limit(Duration::from_secs(60))
            .wall_time_limit(Duration::from_secs(120))
            .build()
            .unwrap();
        let c = compiler
            .run("gcc", &["-O1", "-o", "/build/sol", "/submission/main.c"])
            .unwrap();
        assert_eq!(c.verdict(), Verdict::Accepted, "{name}: {c:?}");
        // Run it under the judge's limits (a short CPU time for the test, scaled where the CPU
        // is emulated: filling 256 MiB takes about a second of CPU there), the binary read-only.
        let judge = Sandbox::code_judge(sub.path())
            .mount(build.path(), "/build", Permission::ReadOnly)
            .cpu_time_limit(common::slow(Duration::from_secs(1)))
            .build()
            .unwrap();
        let r = judge.run("/build/sol", &[] as &[&str]).unwrap();
        assert_eq!(r.verdict(), *want, "{name}: {r:?}");
        assert!(r.accounting.starts_with("cgroup"), "{}", r.accounting);
        if *want == Verdict::MemoryLimit {
            assert!(
                r.peak_memory <= 256 << 20 && r.peak_memory > 128 << 20,
                "{}",
                r.peak_memory
            );
        }
        if *want == Verdict::TimeLimit {
            assert_eq!(r.outcome, Outcome::CpuTimeLimit);
            // The cgroup's exact usage ends the run: never before the limit.
            assert!(r.cpu_time >= Duration::from_secs(1), "{:?}", r.cpu_time);
        }
    }
});

both!(
    data_analysis_reads_input_and_writes_output_the_caller_owns,
    {
        let input = TempDir::new();
        let output = TempDir::new();
        open_dir(&output);
        std::fs::write(input.join("data.csv"), "name,value\na,1\nb,2\nc,39\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(input.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sb = usable(Sandbox::data_analysis(input.path(), output.path()))
            .build()
            .unwrap();
        let code = "import csv\n\
rows = list(csv.DictReader(open('/input/data.csv')))\n\
total = sum(int(r['value']) for r in rows)\n\
open('result.txt', 'w').write(f'{len(rows)} rows, total {total}\\n')\n\
try:\n\
\x20   open('/input/x', 'w')\n\
except OSError as e:\n\
\x20   print('input read-only:', e.errno)\n";
        let r = sb.run("python3", &["-c", code]).unwrap();
        assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
        assert_eq!(r.stdout, "input read-only: 30\n");
        let result = output.join("result.txt");
        assert_eq!(
            std::fs::read_to_string(&result).unwrap(),
            "3 rows, total 42\n"
        );
        // Owned on the host by whoever ran nanobox (root too: not the sandbox's uid 65534).
        assert_eq!(std::fs::metadata(&result).unwrap().uid(), common::euid());
        assert!(!Path::new(&input.join("x")).exists());
    }
);

/// Portable programs find the presets' directories in NANOBOX_*: on Linux their fixed paths.
#[test]
fn the_presets_name_their_directories_in_nanobox_variables() {
    let (ws, sub, input, output) = (
        TempDir::new(),
        TempDir::new(),
        TempDir::new(),
        TempDir::new(),
    );
    for d in [&ws, &sub, &input, &output] {
        open_dir(d);
    }
    let echo = |b: SandboxBuilder, var: &str| {
        let r = usable(b)
            .build()
            .unwrap()
            .run("sh", &["-c", &format!("echo ${var}")])
            .unwrap();
        assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
        r.stdout
    };
    assert_eq!(
        echo(Sandbox::agent_executor(ws.path()), "NANOBOX_WORKSPACE"),
        "/workspace\n"
    );
    assert_eq!(
        echo(Sandbox::code_judge(sub.path()), "NANOBOX_SUBMISSION"),
        "/submission\n"
    );
    let data = || Sandbox::data_analysis(input.path(), output.path());
    assert_eq!(echo(data(), "NANOBOX_INPUT"), "/input\n");
    assert_eq!(echo(data(), "NANOBOX_OUTPUT"), "/output\n");
    // The judge's working directory is still the private /tmp.
    assert_eq!(echo(Sandbox::code_judge(sub.path()), "PWD"), "/tmp\n");
}
