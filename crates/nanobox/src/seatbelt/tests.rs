//! The generator's tests: golden profiles for every combination of mounts, network and limits,
//! the properties every profile must have, the TinyScheme structural check (and cases it must
//! reject), quoting, canonical paths, the command line and the log reader.

use super::violations::{self, Violation};
use super::*;
use crate::policy::{Mount, Permission, Policy, ResourceLimits};
use std::collections::BTreeSet;
use std::time::Duration;

const TAG: &str = "nanobox-1234-7";
const PORT: u16 = 43128;
/// A run's temporary directory as macOS gives one (made up; never touched).
const TMPDIR: &str = "/private/var/folders/zz/nb_test_0000/T/nanobox-1234-7";
/// A made-up home directory for the mounts (never touched: profile() reads no file).
const HOME: &str = "/Users/nanobox-test";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mounts {
    None,
    RoDir,
    RwDir,
    RoFile,
    RoInRw,
}

const ALL_MOUNTS: [Mounts; 5] = [
    Mounts::None,
    Mounts::RoDir,
    Mounts::RwDir,
    Mounts::RoFile,
    Mounts::RoInRw,
];

impl Mounts {
    fn name(self) -> &'static str {
        match self {
            Mounts::None => "no-mounts",
            Mounts::RoDir => "ro-dir",
            Mounts::RwDir => "rw-dir",
            Mounts::RoFile => "ro-file",
            Mounts::RoInRw => "ro-in-rw",
        }
    }
    fn list(self) -> Vec<Mount> {
        let m = |rel: &str, permission, is_dir| {
            let p = PathBuf::from(format!("{HOME}/{rel}"));
            Mount {
                host: p.clone(),
                host_canonical: p.clone(),
                sandbox: p,
                permission,
                is_dir,
                follow_symlinks: false,
            }
        };
        match self {
            Mounts::None => vec![],
            Mounts::RoDir => vec![m("input", Permission::ReadOnly, true)],
            Mounts::RwDir => vec![m("work", Permission::ReadWrite, true)],
            Mounts::RoFile => vec![m("data.csv", Permission::ReadOnly, false)],
            Mounts::RoInRw => vec![
                m("work", Permission::ReadWrite, true),
                m("work/reference", Permission::ReadOnly, true),
            ],
        }
    }
}

/// A validated policy (no mounts, so nothing is looked up on this host) given the case's mounts,
/// network and limits.
fn policy(mounts: Mounts, allowlist: bool, limits: bool) -> Policy {
    let mut b = crate::Sandbox::builder();
    if allowlist {
        b = b
            .allow_network(&["pypi.org", "*.pythonhosted.org"])
            .upstream_proxy("http://proxy.invalid:8080");
    }
    if limits {
        b = b
            .memory_limit(256 * crate::MB)
            .cpu_time_limit(Duration::from_secs(10))
            .process_limit(64);
    }
    let mut p = b.validate().expect("a valid policy");
    p.mounts = mounts.list();
    if limits {
        assert_ne!(p.limits, ResourceLimits::default());
    }
    p
}

fn run(allowlist: bool) -> RunContext {
    RunContext {
        tmpdir: TMPDIR.into(),
        proxy_port: allowlist.then_some(PORT),
        tag: TAG.into(),
    }
}

/// Every case: its golden file's name, the policy and the run.
fn cases() -> Vec<(String, Policy, RunContext)> {
    let mut out = Vec::new();
    for m in ALL_MOUNTS {
        for net in [false, true] {
            for limits in [false, true] {
                let name = format!(
                    "{}-{}-{}",
                    m.name(),
                    if net { "allowlist" } else { "no-network" },
                    if limits { "limits" } else { "no-limits" }
                );
                out.push((name, policy(m, net, limits), run(net)));
            }
        }
    }
    out
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/seatbelt/golden")
}

#[test]
fn golden_profiles_match_for_every_combination() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let dir = golden_dir();
    let mut differ = Vec::new();
    let cases = cases();
    assert_eq!(cases.len(), 20, "5 mount cases x 2 networks x 2 limits");
    for (name, policy, run) in &cases {
        let p = profile(policy, run).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Deterministic: the same inputs give the same profile.
        assert_eq!(p, profile(policy, run).unwrap(), "{name}");
        let file = dir.join(format!("{name}.sb"));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &p.text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(g) if g == p.text => {}
            Ok(_) => differ.push(format!("{name}: differs from {}", file.display())),
            Err(e) => differ.push(format!("{name}: {}: {e}", file.display())),
        }
    }
    // No stale goldens either.
    if !update {
        let expected: BTreeSet<String> = cases.iter().map(|(n, _, _)| format!("{n}.sb")).collect();
        for e in std::fs::read_dir(&dir).unwrap() {
            let n = e.unwrap().file_name().to_string_lossy().into_owned();
            if n.ends_with(".sb") && !expected.contains(&n) {
                differ.push(format!("{n}: a golden no case produces"));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "profiles differ from their goldens (rerun with UPDATE_GOLDEN=1 and review the diff):\n{}",
        differ.join("\n")
    );
}

#[test]
fn limits_do_not_change_the_profile() {
    for m in ALL_MOUNTS {
        for net in [false, true] {
            let a = profile(&policy(m, net, false), &run(net)).unwrap();
            let b = profile(&policy(m, net, true), &run(net)).unwrap();
            assert_eq!(a, b, "{m:?} allowlist={net}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A small reader of the profile text: quoted strings and whole forms.

/// Parse one string in [`quote`]'s form at the start of `s`: the string and the rest.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[1 + i + 1..])),
            '\\' => match chars.next()? {
                (_, '\\') => out.push('\\'),
                (_, '"') => out.push('"'),
                _ => return None,
            },
            c if c.is_control() => return None,
            c => out.push(c),
        }
    }
    None
}

/// Every quoted string of a profile, comments skipped.
fn strings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['"', ';']) {
        if rest[i..].starts_with(';') {
            rest = rest[i..].split_once('\n').map_or("", |(_, r)| r);
            continue;
        }
        let (s, r) = unquote(&rest[i..]).expect("a well-formed string");
        out.push(s);
        rest = r;
    }
    out
}

/// Every whole form that starts with `head` (e.g. `(deny`), comments and strings respected.
fn forms<'a>(text: &'a str, head: &str) -> Vec<&'a str> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut starts = Vec::new();
    while i < b.len() {
        match b[i] {
            b';' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' => starts.push(i),
            b')' => {
                let s = starts.pop().expect("balanced");
                if text[s..].starts_with(head) {
                    out.push(&text[s..=i]);
                }
            }
            _ => {}
        }
        i += 1;
    }
    assert!(starts.is_empty(), "balanced");
    out
}

fn host_specific_paths(policy: &Policy, run: &RunContext) -> Vec<String> {
    let mut v: Vec<String> = policy
        .mounts
        .iter()
        .flat_map(|m| [m.host.clone(), m.host_canonical.clone(), m.sandbox.clone()])
        .chain([run.tmpdir.clone()])
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    v.push(HOME.into());
    v.push("/private/var/folders".into());
    v
}

#[test]
fn no_path_is_written_into_a_profile() {
    for (name, policy, run) in cases() {
        let p = profile(&policy, &run).unwrap();
        for path in host_specific_paths(&policy, &run) {
            assert!(!p.text.contains(&path), "{name}: {path} is in the text");
        }
        for s in strings(&p.text) {
            assert!(
                !s.starts_with('/'),
                "{name}: the path {s:?} is quoted into the text"
            );
        }
        // ...and every host-specific path is a parameter instead.
        for m in &policy.mounts {
            assert!(
                p.params.iter().any(|(_, v)| *v == m.host_canonical),
                "{name}: {} is no parameter",
                m.host_canonical.display()
            );
        }
        assert!(p
            .params
            .iter()
            .any(|(n, v)| n == "TMPDIR" && v == Path::new(TMPDIR)));
    }
}

#[test]
fn every_param_is_declared_once_and_used() {
    for (name, policy, run) in cases() {
        let p = profile(&policy, &run).unwrap();
        let declared: Vec<&str> = p.params.iter().map(|(n, _)| n.as_str()).collect();
        let unique: BTreeSet<&str> = declared.iter().copied().collect();
        assert_eq!(
            unique.len(),
            declared.len(),
            "{name}: a name declared twice"
        );
        let used: BTreeSet<String> = forms(&p.text, "(param ")
            .iter()
            .map(|f| {
                unquote(f["(param ".len()..].trim_end_matches(')'))
                    .unwrap()
                    .0
            })
            .collect();
        let unique: BTreeSet<String> = unique.into_iter().map(String::from).collect();
        assert_eq!(used, unique, "{name}");
    }
}

#[test]
fn every_deny_carries_the_tag() {
    let with = format!("(with message {})", quote(TAG).unwrap());
    for (name, policy, run) in cases() {
        let p = profile(&policy, &run).unwrap();
        let denies = forms(&p.text, "(deny ");
        // default, the syscalls, the unlinks; and one per read-only mount.
        let ro = policy
            .mounts
            .iter()
            .filter(|m| m.permission == Permission::ReadOnly)
            .count();
        assert_eq!(denies.len(), 3 + ro, "{name}: {denies:#?}");
        for d in denies {
            assert!(d.contains(&with), "{name}: {d} has no tag");
        }
        assert!(p.text.contains(&format!("(deny default {with})")), "{name}");
    }
}

#[test]
fn network_rules_name_only_the_proxy_on_loopback() {
    for (name, policy, run) in cases() {
        let p = profile(&policy, &run).unwrap();
        assert!(!p.text.contains("(local "), "{name}: a local filter");
        assert!(!p.text.contains("local ip"), "{name}: a local ip filter");
        for f in forms(&p.text, "(remote ")
            .into_iter()
            .chain(forms(&p.text, "(local "))
        {
            let arg = f.split_once("ip ").expect("an ip filter").1;
            let (addr, _) = unquote(arg).unwrap();
            let (host, port) = addr.rsplit_once(':').unwrap();
            assert!(host == "localhost" || host == "*", "{name}: host {host}");
            assert!(
                port == "*" || port.parse::<u16>().is_ok(),
                "{name}: port {port}"
            );
        }
        let network: Vec<&str> = forms(&p.text, "(allow network");
        if run.proxy_port.is_some() {
            assert_eq!(
                network,
                [format!("(allow network-outbound (remote ip \"localhost:{PORT}\"))").as_str()],
                "{name}"
            );
        } else {
            assert!(network.is_empty(), "{name}: {network:?}");
        }
    }
}

#[test]
fn a_port_without_an_allowlist_allows_no_network() {
    let mut r = run(false);
    r.proxy_port = Some(PORT);
    let p = profile(&policy(Mounts::None, false, false), &r).unwrap();
    assert!(!p.text.contains("(allow network"));
    assert!(!p.text.contains(&PORT.to_string()));
}

#[test]
fn an_allowlist_without_a_proxy_port_is_refused() {
    let e = profile(&policy(Mounts::RoDir, true, false), &run(false)).unwrap_err();
    assert_eq!(e.kind(), "invalid_option", "{e}");
    assert!(e.to_string().contains("proxy"), "{e}");
}

#[test]
fn a_read_only_mount_inside_a_read_write_one_is_decided_after_it() {
    let p = profile(&policy(Mounts::RoInRw, false, false), &run(false)).unwrap();
    let value = |n: &str| p.params.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(value("MOUNT_0"), Path::new(HOME).join("work"));
    assert_eq!(value("MOUNT_1"), Path::new(HOME).join("work/reference"));
    let names = ["MOUNT_0", "MOUNT_1"];
    let rw = p
        .text
        .find(&format!(
            "(allow file-read* file-write* file-map-executable (subpath (param \"{}\")))",
            names[0]
        ))
        .expect("the read-write rule");
    let ro_deny = p
        .text
        .find(&format!(
            "(deny file-write* (subpath (param \"{}\"))",
            names[1]
        ))
        .expect("the read-only mount's deny");
    let tmp = p
        .text
        .find("(allow file-read* file-write* file-map-executable (subpath (param \"TMPDIR\")))")
        .expect("the tmpdir rule");
    assert!(rw < ro_deny, "the nested read-only deny must come later");
    // Each allow precedes the unlink deny that overrides it.
    let unlink_at = p.text.rfind("(deny file-write-unlink").unwrap();
    assert!(tmp < unlink_at && ro_deny < unlink_at);
    // The directories leading to the nested mount are not renamed away from under its rule.
    let unlink = forms(&p.text, "(deny file-write-unlink")[0];
    for n in ["TMPDIR", "MOUNT_0", "MOUNT_1"] {
        assert!(
            unlink.contains(&format!("(literal (param \"{n}\"))")),
            "{n}"
        );
    }
}

#[test]
fn the_directories_above_a_mount_get_metadata_only() {
    let p = profile(&policy(Mounts::RoFile, false, false), &run(false)).unwrap();
    let parent = |path: &str| {
        p.params
            .iter()
            .find(|(n, v)| n.starts_with("PARENT_") && v == Path::new(path))
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| panic!("{path} is no parent parameter"))
    };
    for dir in [
        "/Users",
        HOME,
        "/private/var/folders",
        "/System",
        "/usr",
        "/dev",
    ] {
        let n = parent(dir);
        let uses: Vec<&str> = p.text.matches(&format!("(param \"{n}\")")).collect();
        // Once in the metadata rule, once in the unlink deny.
        assert_eq!(uses.len(), 2, "{dir}");
        let meta = forms(&p.text, "(allow file-read-metadata");
        assert!(
            meta.iter().any(|f| f.contains(&format!("(param \"{n}\")"))),
            "{dir}"
        );
    }
    // The file mount is a literal, not a subpath.
    assert!(p
        .text
        .contains("(allow file-read* file-map-executable (literal (param \"MOUNT_0\")))"));
}

#[test]
fn mounts_elsewhere_than_their_host_path_or_at_the_root_are_refused() {
    let mut p = policy(Mounts::RoDir, false, false);
    p.mounts[0].sandbox = "/input".into();
    let e = profile(&p, &run(false)).unwrap_err();
    assert_eq!(e.kind(), "invalid_sandbox_path", "{e}");

    // /tmp/x on macOS is /private/tmp/x: a host path that is not in that form is refused rather
    // than guessed at.
    let mut p = policy(Mounts::RoDir, false, false);
    p.mounts[0].sandbox = "/tmp/x".into();
    p.mounts[0].host_canonical = "/tmp/x".into();
    assert!(profile(&p, &run(false)).is_err());
    p.mounts[0].host_canonical = "/private/tmp/x".into();
    assert!(profile(&p, &run(false)).is_ok());

    let mut p = policy(Mounts::RwDir, false, false);
    p.mounts[0].sandbox = "/".into();
    p.mounts[0].host_canonical = "/".into();
    assert_eq!(
        profile(&p, &run(false)).unwrap_err().kind(),
        "reserved_path"
    );

    for bad in ["relative/tmp", "/", "/private/../etc"] {
        let mut r = run(false);
        r.tmpdir = bad.into();
        assert!(
            profile(&policy(Mounts::None, false, false), &r).is_err(),
            "{bad}"
        );
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn a_policy_built_with_real_directories_gives_a_profile() {
    // Under the build directory, not /tmp: on Linux /tmp is no link, so its canonical macOS form
    // (/private/tmp) would differ from the host path and the mount be refused.
    let root = std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .unwrap()
        .join("target")
        .join(format!("seatbelt-test-{}", std::process::id()));
    let base = root.join("work");
    if canonical(&base).unwrap() != base {
        eprintln!(
            "{} is under /tmp, /var or /etc: nothing to test here",
            base.display()
        );
        return;
    }
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("ref")).unwrap();
    let policy = crate::Sandbox::builder()
        .mount(&base, &base, Permission::ReadWrite)
        .mount(base.join("ref"), base.join("ref"), Permission::ReadOnly)
        .validate()
        .unwrap();
    let p = profile(&policy, &run(false)).unwrap();
    assert!(!p.text.contains(&*base.to_string_lossy()));
    assert!(p
        .params
        .iter()
        .any(|(n, v)| n == "MOUNT_1" && *v == base.join("ref")));
    check_with_tinyscheme(&p, TAG).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn malformed_tags_are_refused() {
    let long = "a".repeat(65);
    for bad in [
        "",
        long.as_str(),
        "with space",
        "q\"uote",
        "new\nline",
        "é",
        "a/b",
        "a)b",
    ] {
        let mut r = run(false);
        r.tag = bad.into();
        let e = profile(&policy(Mounts::None, false, false), &r).unwrap_err();
        assert_eq!(e.kind(), "invalid_option", "{bad:?}");
        assert_eq!(violations::log_predicate(bad), "FALSEPREDICATE");
    }
    let mut r = run(false);
    r.tag = "A.b_c-9".repeat(10)[..64].to_string();
    assert!(profile(&policy(Mounts::None, false, false), &r).is_ok());
}

// ---------------------------------------------------------------------------------------------
// quote, canonical, argv.

#[test]
fn quoting_round_trips_and_refuses_control_characters() {
    for s in [
        "",
        "plain",
        "com.apple.system.opendirectoryd.libinfo",
        "back\\slash",
        "\\",
        "\\\"",
        "\"",
        "\"quoted\" and \\\"escaped\\\"",
        "trailing\\",
        "unicode é ☃ 𝄞",
        "(deny default)",
        "; not a comment",
    ] {
        let q = quote(s).unwrap();
        assert!(q.starts_with('"') && q.ends_with('"'), "{q}");
        let (back, rest) = unquote(&q).unwrap_or_else(|| panic!("{q} does not parse"));
        assert_eq!(back, s);
        assert_eq!(rest, "", "{q}: the string ends where the quote does");
        // Quoting the quoted form round-trips as well.
        assert_eq!(unquote(&quote(&q).unwrap()).unwrap().0, q);
    }
    for bad in [
        "nul\0",
        "new\nline",
        "tab\t",
        "cr\r",
        "esc\u{1b}[0m",
        "del\u{7f}",
        "c1\u{85}",
    ] {
        let e = quote(bad).unwrap_err();
        assert_eq!(e.kind(), "invalid_option", "{bad:?}");
    }
}

#[test]
fn canonical_follows_only_the_systems_own_links_lexically() {
    let ok = [
        ("/tmp", "/private/tmp"),
        ("/tmp/x", "/private/tmp/x"),
        ("/tmp/", "/private/tmp"),
        ("/var", "/private/var"),
        ("/var/folders/ab/T/run", "/private/var/folders/ab/T/run"),
        ("/etc/hosts", "/private/etc/hosts"),
        ("/etcetera", "/etcetera"),
        ("/tmpfoo/x", "/tmpfoo/x"),
        ("/private/tmp/x", "/private/tmp/x"),
        ("/Users/me/x/", "/Users/me/x"),
        ("/Users//me/./x", "/Users/me/x"),
        ("//tmp//x/", "/private/tmp/x"),
        ("/usr/tmp", "/usr/tmp"),
        ("/", "/"),
    ];
    for (input, want) in ok {
        assert_eq!(
            canonical(Path::new(input)).unwrap(),
            Path::new(want),
            "{input}"
        );
        // Idempotent.
        assert_eq!(
            canonical(Path::new(want)).unwrap(),
            Path::new(want),
            "{want}"
        );
    }
    for bad in ["tmp/x", "", ".", "/tmp/../etc", "/Users/me/..", "/a/\0b"] {
        assert!(canonical(Path::new(bad)).is_err(), "{bad:?}");
    }
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn argv_runs_sandbox_exec_with_the_profile_its_params_and_the_program_after_dashes() {
    let p = profile(&policy(Mounts::RoInRw, true, false), &run(true)).unwrap();
    let args: Vec<OsString> = ["-p", "x", "--", "-D", "A=b"].map(OsString::from).to_vec();
    let v = argv(&p, OsStr::new("-n"), &args).unwrap();
    assert_eq!(v[0], OsStr::new(SANDBOX_EXEC));
    assert!(Path::new(&v[0]).is_absolute());
    assert_eq!(v[1], "-p");
    assert_eq!(v[2], OsStr::new(&p.text));
    for (i, (name, path)) in p.params.iter().enumerate() {
        assert_eq!(
            v[3 + i],
            OsString::from(format!("-D{name}={}", path.display()))
        );
    }
    let dashes = 3 + p.params.len();
    assert_eq!(v[dashes], "--");
    assert_eq!(v[dashes + 1], "-n", "a program named -n stays the program");
    assert_eq!(&v[dashes + 2..], &args[..], "arguments follow unchanged");
    // The only "--" before the program is ours; no option is taken from the program's side.
    assert_eq!(v[..=dashes].iter().filter(|a| *a == "--").count(), 1);
    assert!(v[3..dashes]
        .iter()
        .all(|a| a.to_string_lossy().starts_with("-D")));

    assert!(argv(&p, OsStr::new(""), &[]).is_err());
    assert!(argv(&p, OsStr::new("a\0b"), &[]).is_err());
    assert!(argv(&p, OsStr::new("/bin/sh"), &["x\0".into()]).is_err());
    let mut bad = p.clone();
    bad.params.push(("lower".into(), "/x".into()));
    assert!(argv(&bad, OsStr::new("/bin/sh"), &[]).is_err());
    let mut bad = p.clone();
    bad.params
        .push(("X".into(), PathBuf::from(OsString::from("/a\0b"))));
    assert!(argv(&bad, OsStr::new("/bin/sh"), &[]).is_err());
}

// ---------------------------------------------------------------------------------------------
// The structural check with TinyScheme.

const TINYSCHEME: &str = "/usr/bin/tinyscheme";

/// Run the checker on `text` with the parameters `names` declared and `tag` as the run's tag:
/// Ok when TinyScheme read the whole profile, every form passed and the sentinel came out.
fn check_text(text: &str, names: &[&str], tag: &str) -> Result<(), String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let declared: Vec<String> = names.iter().map(|n| quote(n).unwrap()).collect();
    let program = format!(
        "{}\n(sbpl-declare '({}) {})\n{}\n(sbpl-end)\n",
        include_str!("check.scm"),
        declared.join(" "),
        quote(tag).unwrap(),
        text
    );
    let file = std::env::temp_dir().join(format!(
        "nanobox-sbpl-check-{}-{}.scm",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&file, program).unwrap();
    let out = std::process::Command::new(TINYSCHEME)
        .arg(&file)
        .output()
        .expect("run tinyscheme");
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ok = out.status.success()
        && stdout.lines().any(|l| l.starts_with("SBPL-CHECK-OK "))
        && !stdout.contains("Error")
        && stderr.trim().is_empty();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "status {}\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        ))
    }
}

fn check_with_tinyscheme(p: &Profile, tag: &str) -> Result<(), String> {
    let names: Vec<&str> = p.params.iter().map(|(n, _)| n.as_str()).collect();
    check_text(&p.text, &names, tag)
}

/// Whether the checker can run. TinyScheme is a test-only tool (CI installs it); a missing one
/// fails the test unless NANOBOX_SKIP_TINYSCHEME=1 says that this host is knowingly without it,
/// so that a CI image that lost the package cannot turn the check into a silent pass.
fn tinyscheme_available() -> bool {
    if cfg!(not(unix)) {
        eprintln!("TinyScheme is a Linux and macOS program: the SBPL structural check is skipped");
        return false;
    }
    if Path::new(TINYSCHEME).exists() {
        return true;
    }
    if std::env::var_os("NANOBOX_SKIP_TINYSCHEME").is_some_and(|v| v == "1") {
        eprintln!("{TINYSCHEME} is missing and NANOBOX_SKIP_TINYSCHEME=1: the SBPL structural check is skipped");
        return false;
    }
    panic!(
        "{TINYSCHEME} is missing: the SBPL structural check needs it (apt-get install tinyscheme), \
         or set NANOBOX_SKIP_TINYSCHEME=1 to skip it knowingly"
    );
}

#[test]
fn every_golden_profile_passes_the_structural_check() {
    if !tinyscheme_available() {
        return;
    }
    for (name, policy, run) in cases() {
        let p = profile(&policy, &run).unwrap();
        // The golden on disk is checked too (it equals `p.text` when the golden test passes),
        // but not while that test rewrites it.
        if std::env::var_os("UPDATE_GOLDEN").is_none() {
            let golden = std::fs::read_to_string(golden_dir().join(format!("{name}.sb")))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let names: Vec<&str> = p.params.iter().map(|(n, _)| n.as_str()).collect();
            check_text(&golden, &names, TAG).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        check_with_tinyscheme(&p, TAG).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_structural_check_rejects_broken_and_widening_profiles() {
    if !tinyscheme_available() {
        return;
    }
    let p = profile(&policy(Mounts::RoInRw, true, false), &run(true)).unwrap();
    let names: Vec<&str> = p.params.iter().map(|(n, _)| n.as_str()).collect();
    check_text(&p.text, &names, TAG).expect("the profile itself passes");
    let tagged = format!("(with message {})", quote(TAG).unwrap());
    let hostile: Vec<(&str, String)> = vec![
        (
            "an unknown operation",
            "(allow file-read-everything (subpath (param \"TMPDIR\")))".into(),
        ),
        (
            "an unknown filter",
            "(allow file-read* (subpathx (param \"TMPDIR\")))".into(),
        ),
        (
            "an unclosed form",
            "(allow file-read* (subpath (param \"TMPDIR\"))".into(),
        ),
        (
            "an unclosed string",
            "(allow mach-lookup (global-name \"com.apple.x))".into(),
        ),
        ("a stray closing paren", ")".into()),
        (
            "an undeclared param",
            "(allow file-read* (subpath (param \"NOT_DECLARED\")))".into(),
        ),
        (
            "a path written into the text",
            "(allow file-read* (subpath \"/Users\"))".into(),
        ),
        (
            "a deny without the tag",
            "(deny file-write* (subpath (param \"TMPDIR\")))".into(),
        ),
        (
            "a deny with another run's tag",
            "(deny file-write* (subpath (param \"TMPDIR\")) (with message \"nanobox-1-1\"))".into(),
        ),
        (
            "a local ip in an outbound rule",
            "(allow network-outbound (local ip \"localhost:80\"))".into(),
        ),
        (
            "a remote host",
            "(allow network-outbound (remote ip \"example.com:443\"))".into(),
        ),
        (
            "a remote address",
            "(allow network* (remote ip \"10.0.0.1:*\"))".into(),
        ),
        (
            "a port out of range",
            "(allow network-outbound (remote ip \"localhost:65536\"))".into(),
        ),
        ("an unfiltered file allow", "(allow file-read*)".into()),
        ("an unfiltered network allow", "(allow network*)".into()),
        ("an unfiltered mach-lookup", "(allow mach-lookup)".into()),
        (
            "a filter of another operation",
            "(allow mach-lookup (subpath (param \"TMPDIR\")))".into(),
        ),
        (
            "signals to other processes",
            "(allow signal (target others))".into(),
        ),
        ("a second default", format!("(deny default {tagged})")),
        ("a second version", "(version 1)".into()),
        (
            "an unknown syscall",
            format!("(deny syscall-unix (syscall-number SYS_fork) {tagged})"),
        ),
    ];
    for (what, extra) in &hostile {
        let text = format!("{}\n{extra}\n", p.text);
        assert!(
            check_text(&text, &names, TAG).is_err(),
            "not rejected: {what}"
        );
    }
    // A declared parameter that the text never uses (argv and profile out of step).
    let mut more = names.clone();
    more.push("EXTRA");
    assert!(
        check_text(&p.text, &more, TAG).is_err(),
        "an unused declared param"
    );
    // A parameter the text uses but argv would not declare.
    assert!(
        check_text(&p.text, &names[1..], TAG).is_err(),
        "a missing declaration"
    );
    // A profile without (deny default) first, or without (version 1).
    assert!(check_text("(version 1)\n(allow process-fork)\n", &[], TAG).is_err());
    assert!(check_text(&format!("(deny default {tagged})\n"), &[], TAG).is_err());
    assert!(check_text(
        &format!("(version 1)\n(deny default {tagged})\n(allow process-fork)\n"),
        &[],
        TAG
    )
    .is_ok());
}

// ---------------------------------------------------------------------------------------------
// The log reader.

/// One `log show --style ndjson` line whose message is `message` (the fields as the tool prints
/// them; `/` escaped as it does). Reconstructed from public documentation and public tools that
/// read these logs, not recorded on a Mac.
fn ndjson(message: &str) -> String {
    let escaped = message
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('/', "\\/")
        .replace('\n', "\\n");
    format!(
        concat!(
            r#"{{"traceID":7380832768,"eventMessage":"{}","eventType":"logEvent","source":null,"#,
            r#""formatString":"%s","activityIdentifier":0,"subsystem":"","category":"","#,
            r#""threadID":2104934,"senderImageUUID":"4A1B3F51-2E39-3E5B-B8E9-4C7D0C6D2A11","#,
            r#""backtrace":{{"frames":[{{"imageOffset":112233,"imageUUID":"4A1B3F51-2E39-3E5B-B8E9-4C7D0C6D2A11"}}]}},"#,
            r#""bootUUID":"","processImagePath":"\/kernel","timestamp":"2026-12-03 17:30:01.123456+0000","#,
            r#""senderImagePath":"\/System\/Library\/Extensions\/Sandbox.kext\/Contents\/MacOS\/Sandbox","#,
            r#""machTimestamp":1187349283746,"messageType":"Error","processImageUUID":"1D2C3B4A-0000-1111-2222-333344445555","#,
            r#""processID":0,"senderProgramCounter":4242,"parentActivityIdentifier":0,"timezoneName":""}}"#
        ),
        escaped
    )
}

fn v(op: &str, target: Option<&str>, process: &str, pid: u32) -> Option<Violation> {
    Some(Violation {
        operation: op.into(),
        target: target.map(String::from),
        process: Some(process.into()),
        pid: Some(pid),
    })
}

#[test]
fn parse_reads_this_runs_denials_from_ndjson_lines() {
    let samples: &[(&str, Option<Violation>)] = &[
        (
            "Sandbox: python3(1234) deny(1) file-write-create /Users/me/x\nnanobox-1234-7",
            v("file-write-create", Some("/Users/me/x"), "python3", 1234),
        ),
        (
            "Sandbox: curl(77) deny(1) network-outbound 93.184.216.34:443\nnanobox-1234-7",
            v("network-outbound", Some("93.184.216.34:443"), "curl", 77),
        ),
        (
            "Sandbox: node(4321) deny(3) mach-lookup com.apple.mDNSResponder\nnanobox-1234-7",
            v("mach-lookup", Some("com.apple.mDNSResponder"), "node", 4321),
        ),
        (
            "Sandbox: Python Helper (x)(99) deny(1) file-read-data /Users/me/My Files/a b.txt\nnanobox-1234-7",
            v("file-read-data", Some("/Users/me/My Files/a b.txt"), "Python Helper (x)", 99),
        ),
        (
            "Sandbox: sh(5) deny(1) syscall-unix\nnanobox-1234-7",
            v("syscall-unix", None, "sh", 5),
        ),
        (
            "Sandbox: cat(8) deny(1) file-read-data /Users/me/caf\u{e9}.txt nanobox-1234-7",
            v("file-read-data", Some("/Users/me/caf\u{e9}.txt"), "cat", 8),
        ),
        // Another run's tag, ours as its prefix.
        ("Sandbox: sh(5) deny(1) file-read-data /x\nnanobox-1234-77", None),
        // Our tag inside a path of another run's denial.
        ("Sandbox: sh(5) deny(1) file-read-data /tmp/nanobox-1234-7/x\nnanobox-9-9", None),
        ("Sandbox: sh(5) deny(1) file-read-data /tmp/ nanobox-1234-7\nnanobox-9-9", None),
        ("Sandbox: sh(5) deny(1) file-read-data /tmp/xnanobox-1234-7", None),
        // Not denials.
        ("Sandbox: sh(5) allow(1) file-read-data /x\nnanobox-1234-7", None),
        ("launchd: something about nanobox-1234-7", None),
        ("Sandbox: sh(5) deny(x) file-read-data /x\nnanobox-1234-7", None),
    ];
    for (message, want) in samples {
        assert_eq!(
            &violations::parse(&ndjson(message), TAG),
            want,
            "{message:?}"
        );
    }
    // The \u escape form of the same line.
    let line =
        ndjson("Sandbox: cat(8) deny(1) file-read-data /Users/me/caf\u{e9}.txt\nnanobox-1234-7")
            .replace('\u{e9}', "\\u00e9");
    assert_eq!(
        violations::parse(&line, TAG),
        v("file-read-data", Some("/Users/me/caf\u{e9}.txt"), "cat", 8)
    );
    // What is not one whole JSON object is skipped.
    let good = ndjson("Sandbox: sh(5) deny(1) process-fork\nnanobox-1234-7");
    assert!(violations::parse(&good, TAG).is_some());
    for bad in [
        "",
        "Filtering the log data using \"eventMessage CONTAINS ...\"",
        "Sandbox: sh(5) deny(1) process-fork nanobox-1234-7",
        &good[..good.len() - 1],
        &format!("{good} trailing"),
        &format!("[{good}]"),
        r#"{"eventMessage":5}"#,
        r#"{"eventMessage":"Sandbox: sh(5) deny(1) process-fork\u12 nanobox-1234-7"}"#,
    ] {
        assert_eq!(violations::parse(bad, TAG), None, "{bad}");
    }
    // A malformed tag matches nothing.
    assert_eq!(violations::parse(&good, "nanobox 1234"), None);
}

#[test]
fn the_log_predicate_selects_sandbox_messages_with_the_tag() {
    let p = violations::log_predicate(TAG);
    assert_eq!(
        p,
        r#"(eventMessage CONTAINS "Sandbox: ") AND (eventMessage CONTAINS "nanobox-1234-7")"#
    );
}

#[test]
#[cfg_attr(
    windows,
    ignore = "on a Windows host, Linux and macOS paths are resolved with the host's std::path and come out with backslashes: explaining a foreign platform from Windows is not done (docs/platform-windows.md)"
)]
fn the_expanded_text_shows_every_path_in_place_of_its_parameter() {
    let p = profile(&policy(Mounts::RoInRw, true, false), &run(true)).unwrap();
    let shown = p.expanded().unwrap();
    assert!(!shown.contains("(param "), "every parameter replaced");
    for (_, path) in &p.params {
        let q = quote(path.to_str().unwrap()).unwrap();
        assert!(
            shown.contains(&format!("(subpath {q})")) || shown.contains(&format!("(literal {q})")),
            "{q}"
        );
    }
    assert!(shown.contains(&format!("(subpath \"{HOME}/work/reference\")")));
    let mut bad = p.clone();
    bad.params[0].1 = "/a\nb".into();
    assert!(bad.expanded().is_err());
}
