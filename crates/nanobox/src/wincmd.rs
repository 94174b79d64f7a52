//! The Windows command line and environment block of a run: data only, built and tested on every
//! platform, used by the Windows backend for `CreateProcessAsUserW`.
//!
//! **Programs (`.exe`, `.com`)** parse their command line with the Microsoft C runtime's rules
//! (those of `CommandLineToArgvW` after the first word): [`msvc_quote`] writes each argument so
//! that it comes back as exactly that argument, never two, never merged with the next.
//!
//! **Batch files (`.bat`, `.cmd`)** are run by cmd.exe, which parses the line with rules of its
//! own (the class of CVE-2024-24576: an argument that is safe for a program can run a command
//! through cmd.exe). nanobox runs them as `"<ComSpec>" /d /e:ON /v:OFF /c ""<script>" "arg" ..."`
//! (`/d`: no AutoRun commands from the registry; `/v:OFF`: no delayed expansion, so `!` is an
//! ordinary character), every argument in double quotes, where `& | < > ( ) ^` are literal. What
//! cmd.exe cannot carry literally inside quotes is refused, not escaped: `"` (it ends the
//! quoting), `%` (expanded even inside quotes), and line breaks, NUL and the other control
//! characters. Windows drops trailing dots and spaces from a file name, so `x.bat.` and `x.cmd `
//! are batch files too.

#![cfg_attr(not(windows), allow(dead_code))]

use crate::error::{Error, Result};

/// The longest command line CreateProcess takes, in UTF-16 units with its NUL.
pub(crate) const MAX_COMMAND_LINE: usize = 32_767;
/// The longest command line cmd.exe takes, in characters.
pub(crate) const MAX_CMD_LINE: usize = 8_191;

/// How Windows runs a program file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProgramKind {
    /// A program: the C runtime's argument rules.
    Exe,
    /// A batch file, run by cmd.exe with its rules.
    Batch,
}

/// The kind of the program at `path`, from its file name as Windows opens it.
pub(crate) fn program_kind(path: &str) -> ProgramKind {
    let name = path.rsplit(['\\', '/']).next().unwrap_or(path);
    let name = name.trim_end_matches(['.', ' ']).to_ascii_lowercase();
    if name.ends_with(".bat") || name.ends_with(".cmd") {
        ProgramKind::Batch
    } else {
        ProgramKind::Exe
    }
}

/// Append `arg` to `out`, quoted so the C runtime reads it back as exactly `arg`.
pub(crate) fn msvc_quote(arg: &str, out: &mut String) {
    let plain = !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\x0b', '"']);
    if plain {
        out.push_str(arg);
        return;
    }
    out.push('"');
    let mut backslashes = 0usize;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // Backslashes before a quote are doubled, and the quote is escaped.
                out.extend(std::iter::repeat_n('\\', 2 * backslashes + 1));
                out.push('"');
                backslashes = 0;
            }
            c => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    // Before the closing quote, backslashes are doubled too.
    out.extend(std::iter::repeat_n('\\', 2 * backslashes));
    out.push('"');
}

/// The C runtime's parse of a whole command line: the program name by the rule for the first
/// word (up to a space or tab, or inside quotes without escapes), the rest by the argument rules.
/// The reference the tests check [`command_line`] against.
#[cfg(test)]
pub(crate) fn parse_msvc(cmdline: &str) -> Vec<String> {
    let chars: Vec<char> = cmdline.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    // argv[0]
    let mut first = String::new();
    let mut quoted = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' {
            quoted = !quoted;
        } else if !quoted && (c == ' ' || c == '\t') {
            break;
        } else {
            first.push(c);
        }
        i += 1;
    }
    out.push(first);
    loop {
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            return out;
        }
        let mut arg = String::new();
        let mut quoted = false;
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let mut n = 0;
                while i < chars.len() && chars[i] == '\\' {
                    n += 1;
                    i += 1;
                }
                if i < chars.len() && chars[i] == '"' {
                    arg.extend(std::iter::repeat_n('\\', n / 2));
                    if n % 2 == 1 {
                        arg.push('"');
                        i += 1;
                    }
                    // An even count leaves the quote to the next round.
                } else {
                    arg.extend(std::iter::repeat_n('\\', n));
                }
                continue;
            }
            if c == '"' {
                if quoted && chars.get(i + 1) == Some(&'"') {
                    // `""` inside a quoted run is a literal quote (the 2008 and later runtime).
                    arg.push('"');
                    i += 2;
                    continue;
                }
                quoted = !quoted;
                i += 1;
                continue;
            }
            if !quoted && (c == ' ' || c == '\t') {
                break;
            }
            arg.push(c);
            i += 1;
        }
        out.push(arg);
    }
}

fn refuse(option: &'static str, reason: String) -> Error {
    Error::InvalidOption { option, reason }
}

/// The first character of `s` that cmd.exe cannot carry inside quotes, if any.
fn cmd_unsafe(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c == '"' || c == '%' || (c as u32) < 0x20 || c == '\x7f')
}

/// The application name and command line that run `program` (a full path) with `args`:
/// `program` itself for a program, `comspec` (cmd.exe's full path) for a batch file.
pub(crate) fn command_line(
    program: &str,
    args: &[String],
    kind: ProgramKind,
    comspec: &str,
) -> Result<(String, String)> {
    if program.contains('\0') {
        return Err(refuse("program", "the program's path contains NUL".into()));
    }
    if let Some((i, _)) = args.iter().enumerate().find(|(_, a)| a.contains('\0')) {
        return Err(refuse(
            "args",
            format!("argument {i} contains NUL, which no Windows command line can carry"),
        ));
    }
    let (app, line) = match kind {
        ProgramKind::Exe => {
            if let Some(c) = program.chars().find(|&c| c == '"' || (c as u32) < 0x20) {
                return Err(refuse(
                    "program",
                    format!(
                        "the program's path contains {c:?}, which its command line cannot carry"
                    ),
                ));
            }
            let mut line = format!("\"{program}\"");
            for a in args {
                line.push(' ');
                msvc_quote(a, &mut line);
            }
            (program.to_string(), line)
        }
        ProgramKind::Batch => {
            if let Some(c) = cmd_unsafe(program).or_else(|| cmd_unsafe(comspec)) {
                return Err(refuse(
                    "program",
                    format!(
                        "the batch file's path contains {c:?}, which cmd.exe cannot carry safely"
                    ),
                ));
            }
            let mut line = format!("\"{comspec}\" /d /e:ON /v:OFF /c \"\"{program}\"");
            for (i, a) in args.iter().enumerate() {
                if let Some(c) = cmd_unsafe(a) {
                    return Err(refuse(
                        "args",
                        format!(
                            "argument {i} contains {c:?}, which cmd.exe expands or splits even \
                             inside quotes; a batch file cannot be given it safely (run the \
                             program the script runs directly instead)"
                        ),
                    ));
                }
                line.push_str(" \"");
                line.push_str(a);
                line.push('"');
            }
            line.push('"');
            if line.chars().count() > MAX_CMD_LINE {
                return Err(refuse(
                    "args",
                    format!(
                        "the command line is {} characters; cmd.exe takes at most {MAX_CMD_LINE}",
                        line.chars().count()
                    ),
                ));
            }
            (comspec.to_string(), line)
        }
    };
    let units = line.encode_utf16().count() + 1;
    if units > MAX_COMMAND_LINE {
        return Err(refuse(
            "args",
            format!(
                "the command line is {units} UTF-16 units with its NUL; Windows takes at most \
                 {MAX_COMMAND_LINE}"
            ),
        ));
    }
    Ok((app, line))
}

/// The `CREATE_UNICODE_ENVIRONMENT` block of `env`: `NAME=VALUE\0` each, sorted by name as
/// Windows expects (the upper-cased names compared unit by unit), then one more `\0`.
pub(crate) fn environment_block(env: &[(String, String)]) -> Result<Vec<u16>> {
    let upper = |s: &str| -> Vec<u16> { s.to_uppercase().encode_utf16().collect() };
    let mut sorted: Vec<&(String, String)> = env.iter().collect();
    for (k, v) in &sorted {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(refuse(
                "env",
                format!("variable name {k:?} is empty or contains '=' or NUL"),
            ));
        }
        if v.contains('\0') {
            return Err(refuse("env", format!("the value of {k} contains NUL")));
        }
    }
    sorted.sort_by_key(|(k, _)| upper(k));
    for w in sorted.windows(2) {
        if upper(&w[0].0) == upper(&w[1].0) {
            return Err(refuse(
                "env",
                format!(
                    "{} and {} are the same variable on Windows (names are case-insensitive); \
                     set one of them",
                    w[0].0, w[1].0
                ),
            ));
        }
    }
    let mut block = Vec::new();
    for (k, v) in sorted {
        block.extend(k.encode_utf16());
        block.push(u16::from(b'='));
        block.extend(v.encode_utf16());
        block.push(0);
    }
    if block.is_empty() {
        block.push(0);
    }
    block.push(0);
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROG: &str = "C:\\Program Files\\x\\p.exe";
    const COMSPEC: &str = "C:\\Windows\\System32\\cmd.exe";

    fn exe_line(args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        command_line(PROG, &args, ProgramKind::Exe, COMSPEC)
            .unwrap()
            .1
    }

    fn round_trip(args: &[String]) {
        let line = command_line(PROG, args, ProgramKind::Exe, COMSPEC)
            .unwrap()
            .1;
        let mut want = vec![PROG.to_string()];
        want.extend(args.iter().cloned());
        assert_eq!(parse_msvc(&line), want, "line {line:?}");
    }

    #[test]
    fn hostile_arguments_come_back_as_exactly_themselves() {
        let corpus = [
            "",
            " ",
            "a b",
            "\t",
            "\"",
            "\\\"",
            "a\\",
            "a\\\\",
            "\\\\\\\"",
            "\" && calc.exe",
            "a\" \"b",
            "ünï cødé",
            "line\nbreak",
            "\\",
            "\"\"\"\"",
            "a\\\"b",
            "x\"",
            "\\ \\",
            "%PATH%",
            "^&|<>()",
            "\x0b",
        ];
        for a in corpus {
            round_trip(&[a.to_string()]);
            round_trip(&[a.to_string(), "next".into(), a.to_string()]);
        }
        round_trip(&corpus.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        // A few thousand generated ones, heavy in backslashes, quotes and blanks.
        let alphabet = ['\\', '"', ' ', '\t', 'a', 'b', '\\', '"', 'é'];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..3000 {
            let n = (next() % 4) as usize;
            let args: Vec<String> = (0..n)
                .map(|_| {
                    let len = (next() % 9) as usize;
                    (0..len)
                        .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                        .collect()
                })
                .collect();
            round_trip(&args);
        }
    }

    #[test]
    fn quoting_is_the_documented_form() {
        let q = |a: &str| {
            let mut s = String::new();
            msvc_quote(a, &mut s);
            s
        };
        assert_eq!(q("plain"), "plain");
        assert_eq!(q("a b"), "\"a b\"");
        assert_eq!(q("a\\\"b"), "\"a\\\\\\\"b\"");
        assert_eq!(q("a\\"), "a\\");
        assert_eq!(q("a b\\"), "\"a b\\\\\"");
        assert_eq!(q(""), "\"\"");
        assert_eq!(exe_line(&["x", "y z"]), format!("\"{PROG}\" x \"y z\""));
    }

    #[test]
    fn the_parser_follows_the_documented_examples() {
        let p = |s: &str| parse_msvc(&format!("p {s}"))[1..].to_vec();
        assert_eq!(p("\"a b c\" d e"), ["a b c", "d", "e"]);
        assert_eq!(p("\"ab\\\"c\" \"\\\\\" d"), ["ab\"c", "\\", "d"]);
        assert_eq!(p("a\\\\\\b d\"e f\"g h"), ["a\\\\\\b", "de fg", "h"]);
        assert_eq!(p("a\\\\\\\"b c d"), ["a\\\"b", "c", "d"]);
        assert_eq!(p("a\\\\\\\\\"b c\" d e"), ["a\\\\b c", "d", "e"]);
        assert_eq!(p("\"a\"\"b\""), ["a\"b"]);
        assert_eq!(parse_msvc("\"C:\\a b\\p.exe\" x")[0], "C:\\a b\\p.exe");
    }

    #[test]
    fn batch_files_run_through_cmd_with_every_argument_quoted() {
        let args: Vec<String> = ["a b", "x&y|z", "(^!<>)", "trail\\"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (app, line) =
            command_line("C:\\s\\run.bat", &args, ProgramKind::Batch, COMSPEC).unwrap();
        assert_eq!(app, COMSPEC);
        assert_eq!(
            line,
            format!(
                "\"{COMSPEC}\" /d /e:ON /v:OFF /c \"\"C:\\s\\run.bat\" \"a b\" \"x&y|z\" \
                 \"(^!<>)\" \"trail\\\"\""
            )
        );
    }

    #[test]
    fn what_cmd_cannot_carry_is_refused_with_its_index() {
        for bad in ["\"&calc.exe", "%PATH%", "a\nb", "a\rb", "\x07", "x\"y"] {
            let args = vec!["ok".to_string(), bad.to_string()];
            let e = command_line("C:\\s\\run.cmd", &args, ProgramKind::Batch, COMSPEC)
                .unwrap_err()
                .to_string();
            assert!(e.contains("argument 1"), "{bad:?}: {e}");
        }
        let e = command_line("C:\\s%x%\\run.bat", &[], ProgramKind::Batch, COMSPEC).unwrap_err();
        assert!(e.to_string().contains("batch file's path"), "{e}");
        for kind in [ProgramKind::Exe, ProgramKind::Batch] {
            let e = command_line(PROG, &["a\0b".into()], kind, COMSPEC).unwrap_err();
            assert!(e.to_string().contains("NUL"), "{e}");
        }
        let e = command_line("C:\\a\"b.exe", &[], ProgramKind::Exe, COMSPEC).unwrap_err();
        assert!(e.to_string().contains("program"), "{e}");
    }

    #[test]
    fn batch_files_are_known_by_the_name_windows_opens() {
        for b in [
            "C:\\x.bat",
            "x.CMD",
            "C:\\d\\x.bat.",
            "x.cmd  ",
            "x.Bat. .",
            "a/b/c.bat",
        ] {
            assert_eq!(program_kind(b), ProgramKind::Batch, "{b}");
        }
        for e in [
            "x.exe",
            "x.bat.exe",
            "x.batch",
            "C:\\bat\\x",
            "x.com",
            "cmd",
        ] {
            assert_eq!(program_kind(e), ProgramKind::Exe, "{e}");
        }
    }

    #[test]
    fn command_lines_past_the_limits_are_refused() {
        // `"PROG" ` is PROG's length + 3; the NUL is one more.
        let room = MAX_COMMAND_LINE - (PROG.chars().count() + 3) - 1;
        let fits = "a".repeat(room);
        assert!(command_line(PROG, std::slice::from_ref(&fits), ProgramKind::Exe, COMSPEC).is_ok());
        let over = format!("{fits}a");
        let e = command_line(PROG, &[over], ProgramKind::Exe, COMSPEC).unwrap_err();
        assert!(e.to_string().contains("32767"), "{e}");
        let head = format!("\"{COMSPEC}\" /d /e:ON /v:OFF /c \"\"C:\\r.bat\" \"\"\"")
            .chars()
            .count();
        let fits = "b".repeat(MAX_CMD_LINE - head);
        assert!(command_line(
            "C:\\r.bat",
            std::slice::from_ref(&fits),
            ProgramKind::Batch,
            COMSPEC
        )
        .is_ok());
        let e = command_line(
            "C:\\r.bat",
            &[format!("{fits}b")],
            ProgramKind::Batch,
            COMSPEC,
        )
        .unwrap_err();
        assert!(e.to_string().contains("8191"), "{e}");
    }

    #[test]
    fn the_environment_block_is_sorted_and_double_terminated() {
        let env = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let text = |b: Vec<u16>| String::from_utf16(&b).unwrap();
        assert_eq!(
            text(environment_block(&env(&[("b", "2"), ("A", "1"), ("C", "3")])).unwrap()),
            "A=1\0b=2\0C=3\0\0"
        );
        assert_eq!(environment_block(&[]).unwrap(), vec![0, 0]);
        let block = environment_block(&env(&[("K", "é")])).unwrap();
        assert_eq!(block, vec![u16::from(b'K'), u16::from(b'='), 0xe9, 0, 0]);
        for bad in [("", "x"), ("A=B", "x"), ("A\0", "x"), ("A", "x\0y")] {
            assert!(environment_block(&env(&[bad])).is_err(), "{bad:?}");
        }
        let e = environment_block(&env(&[("Path", "a"), ("PATH", "b")])).unwrap_err();
        assert!(e.to_string().contains("case-insensitive"), "{e}");
    }
}
