//! The AppArmor profile that lets one program create user namespaces on a host that restricts
//! them (Ubuntu 23.10 and later with `kernel.apparmor_restrict_unprivileged_userns=1`).
//!
//! Pure text from a checked path: compiled on every platform, so that the CLI's
//! `nanobox doctor --apparmor-profile PATH` has one meaning everywhere. Detecting the restriction
//! is the Linux backend's (`linux/apparmor.rs`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Where profiles are installed on Ubuntu (and every distribution that ships AppArmor).
pub(crate) const APPARMOR_DIR: &str = "/etc/apparmor.d";

/// An AppArmor profile for one program: it allows user namespaces (`userns`) and confines the
/// program no further (`flags=(unconfined)`), the shape Ubuntu ships for browsers and other
/// programs that build sandboxes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppArmorProfile {
    /// The program the profile attaches to (absolute, no symlinks).
    pub program: PathBuf,
    /// The profile's name: `nanobox.` and the path without its leading `/`, each `/` made a `.`
    /// (`/usr/local/bin/app` -> `nanobox.usr.local.bin.app`), also the file name.
    pub name: String,
    /// Where to install it: `/etc/apparmor.d/NAME`.
    pub file: PathBuf,
    /// The profile's text.
    pub text: String,
}

/// Why a character may not appear in the path: AppArmor's profile language gives it a meaning
/// (a glob, a hat, the end of a rule, quoting, a comment, a variable) or it is not plain ASCII.
/// Only letters, digits and `/ . _ - +` pass.
fn refused_char(c: char) -> Option<&'static str> {
    if c.is_ascii_alphanumeric() || "/._-+".contains(c) {
        return None;
    }
    Some(match c {
        '*' | '?' | '[' | ']' | '{' | '}' => "an AppArmor glob character",
        '^' => "AppArmor's hat separator",
        ',' => "the end of an AppArmor rule",
        '"' | '\'' | '\\' => "an AppArmor quoting or escape character",
        '#' => "the start of an AppArmor comment",
        '@' | '$' | '=' | '<' | '>' | '(' | ')' | '!' | '&' | '|' | ':' | '%' | '~' | ';' | '`' => {
            "a character with a meaning in AppArmor rules or in the shell commands around them"
        }
        c if c.is_whitespace() => "whitespace, which ends an AppArmor path",
        c if c.is_control() => "a control character",
        _ => "not plain ASCII",
    })
}

/// The profile's name for `program` (already checked).
fn name_for(program: &str) -> String {
    format!(
        "nanobox.{}",
        program.trim_start_matches('/').replace('/', ".")
    )
}

fn refuse(reason: String) -> Error {
    Error::InvalidOption {
        option: "apparmor_profile",
        reason,
    }
}

/// Check `program` and write its profile. Refused: a relative path, a path with a character
/// AppArmor gives a meaning to (globs `*?[]{}`, `^`, `,`, quotes, whitespace, `#`, `@`, ...), a path
/// that does not exist, is not the program's own path (a symlink, `..`, `//`: AppArmor attaches to
/// the path the kernel executes, every symlink resolved), is not a regular file, or is not
/// executable.
pub(crate) fn profile_for(program: &Path) -> Result<AppArmorProfile> {
    let shown = program.display();
    let Some(text) = program.to_str() else {
        return Err(refuse(format!("{shown} is not valid UTF-8")));
    };
    if !text.starts_with('/') {
        return Err(refuse(format!(
            "{text} is relative: AppArmor attaches a profile to an absolute path; give the \
             program's absolute path (e.g. $(command -v PROGRAM))"
        )));
    }
    if let Some((c, why)) = text.chars().find_map(|c| refused_char(c).map(|w| (c, w))) {
        return Err(refuse(format!(
            "{text:?} contains {c:?}, {why}: nanobox writes profiles only for paths of letters, \
             digits and / . _ - +; install the program at such a path"
        )));
    }
    let meta = std::fs::symlink_metadata(program)
        .map_err(|e| refuse(format!("{text} cannot be used: {e}")))?;
    let canonical = std::fs::canonicalize(program)
        .map_err(|e| refuse(format!("{text} cannot be resolved: {e}")))?;
    if canonical.as_os_str() != program.as_os_str() {
        return Err(refuse(format!(
            "{text} is not the program's own path: AppArmor attaches a profile to the path the \
             kernel executes, with every symlink resolved; use {}",
            canonical.display()
        )));
    }
    if !meta.is_file() {
        return Err(refuse(format!("{text} is not a regular file")));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(refuse(format!(
                "{text} is not executable: give the program that runs the sandboxes"
            )));
        }
    }
    let name = name_for(text);
    let file = Path::new(APPARMOR_DIR).join(&name);
    let body = render(text, &name, &file.display().to_string());
    Ok(AppArmorProfile {
        program: program.to_path_buf(),
        name,
        file,
        text: body,
    })
}

/// The profile text. Comment lines start with "# " (a "#include" at the start of a line would be
/// an include).
fn render(program: &str, name: &str, file: &str) -> String {
    format!(
        "# AppArmor profile for {program}
# (printed by `nanobox doctor --apparmor-profile`).
#
# Where kernel.apparmor_restrict_unprivileged_userns=1 (Ubuntu 23.10 and later), a program
# without a profile that allows user namespaces gets them without capabilities, and nanobox
# cannot build its sandbox. This profile allows them (`userns`) and confines the program no
# further (`flags=(unconfined)`), from the program's next start on. Every program started from
# this path gets it: prefer a dedicated binary to a general-purpose interpreter.
#
# Install:
#   nanobox doctor --apparmor-profile {program} | sudo tee {file} >/dev/null
#   sudo apparmor_parser -r {file}
# Remove:
#   sudo apparmor_parser -R {file} && sudo rm {file}

abi <abi/4.0>,

include <tunables/global>

profile {name} {program} flags=(unconfined) {{
  userns,

  # Rules of this host's own, kept when this file is replaced.
  include if exists <local/{name}>
}}
"
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A fresh executable file under a canonical temp directory, removed on drop.
    struct Prog(PathBuf);
    impl Prog {
        fn new(tag: &str, mode: u32) -> Prog {
            use std::os::unix::fs::PermissionsExt;
            let dir = std::fs::canonicalize(std::env::temp_dir())
                .unwrap()
                .join(format!("nanobox-aa-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            let p = dir.join("prog");
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            Prog(p)
        }
    }
    impl Drop for Prog {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }

    fn reason(r: Result<AppArmorProfile>) -> String {
        match r {
            Err(Error::InvalidOption { option, reason }) => {
                assert_eq!(option, "apparmor_profile");
                reason
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn the_profile_has_ubuntus_userns_shape_for_the_resolved_path() {
        let body = render(
            "/usr/local/bin/app",
            "nanobox.usr.local.bin.app",
            "/etc/apparmor.d/nanobox.usr.local.bin.app",
        );
        let rules: Vec<&str> = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .collect();
        assert_eq!(
            rules,
            [
                "abi <abi/4.0>,",
                "include <tunables/global>",
                "profile nanobox.usr.local.bin.app /usr/local/bin/app flags=(unconfined) {",
                "  userns,",
                "  # Rules of this host's own, kept when this file is replaced.",
                "  include if exists <local/nanobox.usr.local.bin.app>",
                "}",
            ]
        );
        // No comment line may read as an include directive.
        assert!(!body.lines().any(|l| l.starts_with("#include")), "{body}");
        assert!(body.contains("sudo apparmor_parser -r /etc/apparmor.d/nanobox.usr.local.bin.app"));
    }

    #[test]
    fn the_name_is_the_path_with_dots() {
        assert_eq!(
            name_for("/usr/bin/python3.12"),
            "nanobox.usr.bin.python3.12"
        );
        assert_eq!(name_for("/opt/app"), "nanobox.opt.app");
    }

    #[test]
    fn an_existing_executable_gets_its_profile() {
        let p = Prog::new("ok", 0o755);
        let prof = profile_for(&p.0).unwrap();
        let path = p.0.to_str().unwrap();
        assert_eq!(prof.name, name_for(path));
        assert_eq!(prof.file, Path::new(APPARMOR_DIR).join(&prof.name));
        assert!(prof.text.contains(&format!(
            "profile {} {path} flags=(unconfined) {{\n  userns,\n",
            prof.name
        )));
    }

    #[test]
    fn every_special_character_is_refused_before_the_file_is_looked_at() {
        for c in [
            '*', '?', '[', ']', '{', '}', '^', ',', '"', '\'', '\\', '#', '@', '$', '=', ' ', '\t',
            '\n', '<', '>', '(', ')', '!', '&', '|', ':', '%', '~', ';', '`', 'é', '\u{7f}',
        ] {
            // The path does not exist: a refusal that names the character comes first.
            let r = reason(profile_for(Path::new(&format!("/nonexistent/a{c}b"))));
            assert!(r.contains(&format!("{c:?}")), "{c:?}: {r}");
        }
    }

    #[test]
    fn relative_missing_symlinked_directory_and_non_executable_paths_are_refused() {
        assert!(reason(profile_for(Path::new("bin/app"))).contains("is relative"));
        assert!(reason(profile_for(Path::new("/nonexistent/app"))).contains("cannot be used"));
        let p = Prog::new("refusals", 0o755);
        let dir = p.0.parent().unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&p.0, &link).unwrap();
        let r = reason(profile_for(&link));
        assert!(
            r.contains("not the program's own path") && r.contains(p.0.to_str().unwrap()),
            "{r}"
        );
        let dotted = PathBuf::from(format!("{}/../{}/prog", dir.display(), {
            dir.file_name().unwrap().to_str().unwrap()
        }));
        assert!(reason(profile_for(&dotted)).contains("not the program's own path"));
        assert!(reason(profile_for(dir)).contains("not a regular file"));
        let plain = Prog::new("plain", 0o644);
        assert!(reason(profile_for(&plain.0)).contains("not executable"));
    }
}
