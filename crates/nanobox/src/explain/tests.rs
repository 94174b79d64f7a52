use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::error::Error;
use crate::policy::{lexical_canonical, LINUX_SYSTEM_LINKS, MACOS_SYSTEM_LINKS};
use crate::{Sandbox, MB};

/// A fresh directory for one test, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("nb-explain-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env<'a>(e: &'a Explanation, key: &str) -> Option<&'a str> {
    e.env
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Where a path explained for macOS ends up: /tmp/x is /private/tmp/x there.
fn on_macos(p: &Path) -> String {
    lexical_canonical(p, MACOS_SYSTEM_LINKS)
        .to_string_lossy()
        .into_owned()
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

const NO_ARGS: &[&str] = &[];

/// `explain` with the stand-in resolver, also for the platform these tests run on (where
/// `explain` checks the real file system), for paths that exist on no test host.
trait Lexical {
    fn lexical(&self, platform: Platform, program: &str, args: &[&str]) -> Result<Explanation>;
}

impl Lexical for SandboxBuilder {
    fn lexical(&self, platform: Platform, program: &str, args: &[&str]) -> Result<Explanation> {
        let policy = self
            .clone()
            .validate_for(platform, &LexicalPaths(platform))?;
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        explain_policy(&policy, OsStr::new(program), &args)
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn each_preset_explains_for_each_platform_in_that_platform_s_layout() {
    let d = Dir::new("presets");
    let (ws, sub, input, output) = (
        d.0.join("ws"),
        d.0.join("sub"),
        d.0.join("in"),
        d.0.join("out"),
    );
    for p in [&ws, &sub, &input, &output] {
        std::fs::create_dir(p).unwrap();
    }
    for platform in Platform::ALL {
        let fixed = platform == Platform::Linux;
        let at = |dir: &Path, linux: &str| {
            if fixed {
                linux.to_string()
            } else if platform == Platform::MacOs {
                on_macos(dir)
            } else {
                s(dir)
            }
        };

        let e = Sandbox::agent_executor(&ws)
            .explain(platform, "sh", &["-c", "pwd"])
            .unwrap();
        assert_eq!(e.platform, platform);
        assert_eq!(e.mounts.len(), 1);
        assert_eq!(e.mounts[0].sandbox, at(&ws, "/workspace"), "{platform}");
        assert_eq!(e.mounts[0].permission, Permission::ReadWrite);
        assert_eq!(e.working_dir, at(&ws, "/workspace"));
        assert_eq!(env(&e, "HOME"), Some(at(&ws, "/workspace").as_str()));
        assert_eq!(env(&e, "PWD"), Some(at(&ws, "/workspace").as_str()));
        assert_eq!(
            env(&e, "NANOBOX_WORKSPACE"),
            Some(at(&ws, "/workspace").as_str())
        );
        assert_eq!(
            (e.program.as_str(), e.args.as_slice()),
            ("sh", &["-c".to_string(), "pwd".into()][..])
        );

        let e = Sandbox::code_judge(&sub)
            .explain(platform, "true", NO_ARGS)
            .unwrap();
        assert_eq!(e.mounts[0].sandbox, at(&sub, "/submission"));
        assert_eq!(e.mounts[0].permission, Permission::ReadOnly);
        assert_eq!(
            env(&e, "NANOBOX_SUBMISSION"),
            Some(at(&sub, "/submission").as_str())
        );
        // The judge's working directory is the private /tmp on Linux, the run's own temporary
        // directory on macOS.
        let wd = if platform == Platform::MacOs {
            EXPLAIN_TMPDIR
        } else {
            "/tmp"
        };
        assert_eq!(e.working_dir, wd);
        assert_eq!(env(&e, "PWD"), Some(wd));
        let mem = e.limits.iter().find(|l| l.limit == "memory_limit").unwrap();
        assert_eq!(mem.value, "256M");

        let e = Sandbox::data_analysis(&input, &output)
            .explain(platform, "true", NO_ARGS)
            .unwrap();
        let by_perm = |p: Permission| {
            e.mounts
                .iter()
                .find(|m| m.permission == p)
                .unwrap()
                .sandbox
                .clone()
        };
        assert_eq!(by_perm(Permission::ReadOnly), at(&input, "/input"));
        assert_eq!(by_perm(Permission::ReadWrite), at(&output, "/output"));
        assert_eq!(e.working_dir, at(&output, "/output"));
        assert_eq!(
            env(&e, "NANOBOX_INPUT"),
            Some(at(&input, "/input").as_str())
        );
        assert_eq!(
            env(&e, "NANOBOX_OUTPUT"),
            Some(at(&output, "/output").as_str())
        );

        // A plain policy.
        let e = Sandbox::builder()
            .memory_limit(64 * MB)
            .explain(platform, "echo", &["hi"])
            .unwrap();
        assert!(e.mounts.is_empty());
        assert_eq!(e.macos.is_some(), platform == Platform::MacOs);
        assert_eq!(e.linux.is_some(), platform == Platform::Linux);
        assert_eq!(e.windows.is_some(), platform == Platform::Windows);
        assert!(e.env.iter().all(|(k, _)| !k.starts_with("NANOBOX_")));
        assert!(e.text().contains("memory_limit 64M"), "{}", e.text());
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn macos_refuses_a_mount_at_another_path_and_says_what_to_do() {
    let e = Sandbox::builder()
        .mount("/Users/me/data", "/data", Permission::ReadOnly)
        .lexical(Platform::MacOs, "ls", NO_ARGS)
        .unwrap_err();
    match &e {
        Error::InvalidSandboxPath { path, reason } => {
            assert_eq!(path, Path::new("/data"));
            assert!(reason.contains("/Users/me/data"), "{reason}");
            assert!(reason.contains("its own path"), "{reason}");
            assert!(reason.contains("presets"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Windows too.
    let e = Sandbox::builder()
        .mount("/data/x", "/x", Permission::ReadOnly)
        .lexical(Platform::Windows, "x", NO_ARGS)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidSandboxPath { .. }), "{e:?}");
    // The same path, spelt through a system link, is its own path.
    let e = Sandbox::builder()
        .mount("/tmp/job", "/private/tmp/job", Permission::ReadOnly)
        .mount("/private/var/x", "/var/x", Permission::ReadWrite)
        .lexical(Platform::MacOs, "ls", NO_ARGS)
        .unwrap();
    let paths: Vec<_> = e.mounts.iter().map(|m| m.sandbox.as_str()).collect();
    assert_eq!(paths, ["/private/tmp/job", "/private/var/x"]);
    // Two spellings of one path are one mount.
    let e = Sandbox::builder()
        .mount("/tmp/job", "/tmp/job", Permission::ReadOnly)
        .mount("/private/tmp/job", "/private/tmp/job", Permission::ReadOnly)
        .lexical(Platform::MacOs, "ls", NO_ARGS)
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateMount { .. }), "{e:?}");
}

#[test]
fn macos_refuses_the_root_and_writable_system_paths() {
    let refused = |host: &str, p: Permission| {
        Sandbox::builder()
            .mount(host, host, p)
            .lexical(Platform::MacOs, "true", NO_ARGS)
            .is_err()
    };
    assert!(refused("/", Permission::ReadOnly));
    for p in [
        "/System",
        "/usr/local",
        "/bin",
        "/etc",
        "/private/etc/ssh",
        "/private",
        "/Library",
    ] {
        assert!(refused(p, Permission::ReadWrite), "{p} read-write");
    }
    for p in ["/usr/local", "/etc", "/System"] {
        assert!(!refused(p, Permission::ReadOnly), "{p} read-only");
    }
    assert!(!refused("/Users/me/project", Permission::ReadWrite));
    // The reserved list above is macOS's; Linux refuses a mount on /usr whatever its permission.
    assert!(Sandbox::builder()
        .mount("/usr/share", "/usr/share", Permission::ReadOnly)
        .explain(Platform::Linux, "true", NO_ARGS)
        .is_err());
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn what_only_linux_provides_is_refused_elsewhere_never_ignored() {
    use crate::policy::{KernelPool, SeccompPolicy};
    type Make = fn() -> SandboxBuilder;
    let builders: [(&str, Make); 4] = [
        ("hostname", || Sandbox::builder().hostname("judge")),
        ("tmp_size", || Sandbox::builder().tmp_size(64 * MB)),
        ("seccomp", || {
            Sandbox::builder().seccomp(SeccompPolicy::default().deny(&["ptrace"]))
        }),
        ("kernel_pool_limit", || {
            Sandbox::builder().kernel_pool_limit(KernelPool::InotifyWatches, 10)
        }),
    ];
    for (option, make) in builders {
        for platform in [Platform::MacOs, Platform::Windows] {
            match make().lexical(platform, "true", NO_ARGS) {
                Err(Error::InvalidOption { option: o, reason }) => {
                    assert_eq!(o, option, "{reason}");
                    assert!(reason.contains(platform.display_name()), "{reason}");
                }
                other => panic!("{option} on {platform:?}: {other:?}"),
            }
        }
        assert!(
            make().explain(Platform::Linux, "true", NO_ARGS).is_ok(),
            "{option} on Linux"
        );
    }
    // A preset's own /tmp size is no request: the judge and data presets build for macOS.
    let dir = std::env::temp_dir();
    assert!(Sandbox::code_judge(&dir)
        .lexical(Platform::MacOs, "true", NO_ARGS)
        .is_ok());
    assert!(Sandbox::data_analysis(&dir, dir.join("out"))
        .lexical(Platform::MacOs, "true", NO_ARGS)
        .is_ok());
    // Asked for on top of a preset, it is refused all the same.
    assert!(Sandbox::code_judge(&dir)
        .tmp_size(64 * MB)
        .lexical(Platform::MacOs, "true", NO_ARGS)
        .is_err());
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn explaining_a_foreign_platform_never_looks_at_the_host_path() {
    let missing = "/definitely/not/here/nanobox-explain";
    assert!(!Path::new(missing).exists());
    let here = Platform::current().unwrap();
    for platform in Platform::ALL.into_iter().filter(|p| *p != here) {
        let e = Sandbox::agent_executor(missing)
            .explain(platform, "true", NO_ARGS)
            .unwrap();
        let at = if platform == Platform::Linux {
            "/workspace"
        } else {
            missing
        };
        assert_eq!(e.mounts[0].sandbox, at);
        assert_eq!(e.mounts[0].host_canonical, missing);
        assert!(e.mounts[0].is_dir);
    }
    // For the platform this runs on, the check is the real one, as build() makes it.
    let e = Sandbox::agent_executor(missing)
        .explain(here, "true", NO_ARGS)
        .unwrap_err();
    assert!(matches!(e, Error::MountSourceMissing { .. }), "{e:?}");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn the_macos_plan_is_the_generator_s_profile_and_argv() {
    let d = Dir::new("macos");
    let b = Sandbox::agent_executor(&d.0)
        .allow_network(&["pypi.org"])
        .cpu_time_limit(Duration::from_secs(2));
    let e = b
        .lexical(Platform::MacOs, "python3", &["-c", "print(1)"])
        .unwrap();
    let policy = b
        .clone()
        .validate_for(Platform::MacOs, &LexicalPaths(Platform::MacOs))
        .unwrap();
    let run = crate::seatbelt::RunContext {
        tmpdir: EXPLAIN_TMPDIR.into(),
        proxy_port: Some(EXPLAIN_PROXY_PORT),
        tag: "nanobox-explain".into(),
    };
    let profile = crate::seatbelt::profile(&policy, &run).unwrap();
    let argv = crate::seatbelt::argv(
        &profile,
        OsStr::new("python3"),
        &["-c".into(), "print(1)".into()],
    )
    .unwrap();
    let m = e.macos.as_ref().unwrap();
    assert_eq!(e.profile(), Some(profile.text.as_str()));
    assert_eq!(
        e.argv().unwrap(),
        argv.iter().map(|a| lossy(a)).collect::<Vec<_>>()
    );
    assert_eq!(m.argv[0], crate::seatbelt::SANDBOX_EXEC);
    assert_eq!(&m.argv[m.argv.len() - 3..], ["python3", "-c", "print(1)"]);
    assert_eq!(m.tmpdir, EXPLAIN_TMPDIR);
    assert_eq!(m.proxy_port, Some(EXPLAIN_PROXY_PORT));
    // The proxy variables name the run's port (a placeholder here), not Linux's fixed one.
    let want = format!("http://127.0.0.1:{EXPLAIN_PROXY_PORT}");
    assert_eq!(env(&e, "HTTPS_PROXY"), Some(want.as_str()));
    let text = e.text();
    assert!(text.contains(&profile.text), "{text}");
    assert!(text.contains("chosen per run"), "{text}");
    assert!(text.contains(EXPLAIN_TMPDIR), "{text}");
    // The builder stays usable and unchanged.
    assert_eq!(format!("{b:?}"), format!("{:?}", b.clone()));
    assert!(b.lexical(Platform::MacOs, "true", NO_ARGS).is_ok());
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn the_linux_plan_names_mounts_namespaces_seccomp_and_limits() {
    let d = Dir::new("linux");
    let e = Sandbox::builder()
        .mount(&d.0, "/data", Permission::ReadOnly)
        .seccomp(crate::SeccompPolicy::default().deny(&["socket"]))
        .process_limit(10)
        .tmp_size(128 * MB)
        .explain(Platform::Linux, "ls", &["/data"])
        .unwrap();
    let l = e.linux.as_ref().unwrap();
    assert_eq!(e.mounts[0].sandbox, "/data");
    assert_eq!(e.mounts[0].host_canonical, s(&d.0));
    assert!(l
        .system
        .iter()
        .any(|s| s.starts_with("/usr -> /usr read-only")));
    assert!(l
        .system
        .iter()
        .any(|s| s.contains("/tmp: a private tmpfs of 128M")));
    assert!(l.system.iter().any(|s| s.starts_with("/proc")));
    assert!(l.system.iter().any(|s| s.starts_with("/dev")));
    assert_eq!(l.namespaces.len(), 7);
    assert_eq!(l.seccomp.deny, ["socket"]);
    let pids = e
        .limits
        .iter()
        .find(|l| l.limit == "process_limit")
        .unwrap();
    assert_eq!(pids.value, "10");
    assert!(pids.mechanism.contains("pids.max"), "{}", pids.mechanism);
    assert!(
        pids.mechanism.contains("else refused"),
        "{}",
        pids.mechanism
    );
    let text = e.text();
    assert!(
        text.contains(&format!("{} -> /data read-only", s(&d.0))),
        "{text}"
    );
    if cfg!(target_os = "linux") {
        assert!(l.seccomp.note.is_none());
        assert!(l.seccomp.default_allowed.iter().any(|n| n == "read"));
        assert!(l.seccomp.default_denied.iter().any(|n| n == "ptrace"));
        assert!(l.host_limits.is_some());
        // A name the filter does not know is refused, as build() refuses it.
        let e = Sandbox::builder()
            .seccomp(crate::SeccompPolicy::default().deny(&["no_such_call"]))
            .explain(Platform::Linux, "true", NO_ARGS)
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidOption {
                    option: "seccomp",
                    ..
                }
            ),
            "{e:?}"
        );
    } else {
        assert!(l.seccomp.note.is_some());
    }
}

#[test]
fn the_windows_plan_is_part_of_the_explanation() {
    let e = Sandbox::builder()
        .process_limit(3)
        .lexical(Platform::Windows, "cmd", &["/c", "echo"])
        .unwrap();
    let w = e.windows.as_ref().unwrap();
    assert!(w
        .job_limits
        .iter()
        .any(|j| j.name == "JOB_OBJECT_LIMIT_ACTIVE_PROCESS" && j.value.ends_with("= 3")));
    let text = e.text();
    assert!(
        text.contains("JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE"),
        "{text}"
    );
    assert!(
        text.contains("AppContainer:\n  an AppContainer profile per run"),
        "{text}"
    );
    assert!(text.contains("JOBOBJECT_BASIC_UI_RESTRICTIONS"), "{text}");
}

#[test]
fn the_explanation_serialises_with_its_platform_s_part() {
    let e = Sandbox::builder()
        .lexical(Platform::MacOs, "true", NO_ARGS)
        .unwrap();
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["platform"], "macos");
    assert_eq!(v["program"], "true");
    assert!(v["macos"]["profile"].is_string());
    assert!(v["macos"]["argv"].is_array());
    assert!(v["linux"].is_null());
    assert_eq!(e.to_string(), e.text());
}

#[test]
fn a_later_env_call_replaces_a_preset_s_directory_variable() {
    let e = Sandbox::agent_executor("/w")
        .env("HOME", "/home/x")
        .lexical(Platform::MacOs, "true", NO_ARGS)
        .unwrap();
    assert_eq!(env(&e, "HOME"), Some("/home/x"));
    assert_eq!(env(&e, "NANOBOX_WORKSPACE"), Some("/w"));
    let e = Sandbox::agent_executor("/w")
        .working_dir("/elsewhere")
        .lexical(Platform::MacOs, "true", NO_ARGS)
        .unwrap();
    assert_eq!(e.working_dir, "/elsewhere");
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn lexical_resolution_follows_only_the_table_s_links() {
    let c = |p: &str, t| s(&lexical_canonical(Path::new(p), t));
    assert_eq!(c("/tmp/a/../b/./c", MACOS_SYSTEM_LINKS), "/private/tmp/b/c");
    assert_eq!(c("/var", MACOS_SYSTEM_LINKS), "/private/var");
    assert_eq!(c("/etc/hosts", MACOS_SYSTEM_LINKS), "/private/etc/hosts");
    assert_eq!(c("/tmpx", MACOS_SYSTEM_LINKS), "/tmpx");
    assert_eq!(c("/bin/sh", LINUX_SYSTEM_LINKS), "/usr/bin/sh");
    assert_eq!(c("/var/run/x", LINUX_SYSTEM_LINKS), "/run/x");
    assert_eq!(c("/tmp/x", LINUX_SYSTEM_LINKS), "/tmp/x");
    assert_eq!(c("/../..", &[]), "/");
}

#[test]
fn platform_names_round_trip() {
    for p in Platform::ALL {
        assert_eq!(p.name().parse::<Platform>(), Ok(p));
        assert_eq!(serde_json::to_value(p).unwrap(), p.name());
    }
    assert!("beos".parse::<Platform>().is_err());
}
