//! What a program writes through a read-write mount cannot make the host act for it: no file it
//! creates or changes carries the set-user-ID or set-group-ID bit (on the host such a file would
//! run as its host owner: root for a root caller's idmapped mounts, the caller otherwise), file
//! capabilities stay refused, and ownership changes to ids the program does not hold fail with
//! EPERM, as for any unprivileged user. Each test is the attack, as root and as uid 65534.

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{usable, TempDir};
use nanobox::{Outcome, Permission, Sandbox};

/// Python helper: print `label ok` or `label <errno name>` for a callable.
const TRY: &str = "import os, errno, ctypes, stat\n\
def t(label, f):\n  try:\n    f(); print(label, 'ok')\n  except OSError as e:\n    print(label, errno.errorcode.get(e.errno, e.errno))\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
def sc(*a):\n  r = libc.syscall(*a)\n  if r < 0:\n    e = ctypes.get_errno(); raise OSError(e, os.strerror(e))\n  return r\n";

fn outcome_of<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{label} ")))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// The agent preset, as this uid can build it (the limits are not what these tests are about).
fn agent(ws: &Path) -> Sandbox {
    usable(Sandbox::agent_executor(ws)).build().unwrap()
}

/// Every file and directory under `dir` (itself included) whose mode has S_ISUID or S_ISGID.
fn setid_entries(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let mode = m.permissions().mode();
        if mode & 0o6000 != 0 {
            out.push((p.display().to_string(), mode));
        }
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

both!(chmod_4755_of_a_copied_interpreter_leaves_no_setuid_file, {
    // The review's attack: an agent copies an interpreter into its workspace and marks it setuid,
    // so that any local user could later run it as the file's host owner (root, as root caller).
    let ws = TempDir::new();
    let r = agent(ws.path())
        .run(
            "sh",
            &[
                "-c",
                "cp /usr/bin/python3 /workspace/.x; chmod 4755 /workspace/.x; echo chmod=$?; \
                 chmod u+s,g+s /workspace/.x; echo symbolic=$?; ls -l /workspace/.x",
            ],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert!(r.stdout.contains("chmod=1"), "chmod 4755 failed: {r:?}");
    assert!(r.stdout.contains("symbolic=1"), "chmod u+s failed: {r:?}");
    assert!(r.stderr.contains("Operation not permitted"), "EPERM: {r:?}");
    assert_eq!(setid_entries(ws.path()), vec![], "{r:?}");
    if common::is_root() {
        // The copy is root's on the host; run as nobody it must not get euid 0.
        let host = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(ws.join(".x"))
            .args(["-c", "import os; print(os.geteuid())"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&host.stdout), "65534\n", "{host:?}");
    }
});

/// Every syscall route to a set-id mode, tried on the workspace (creat, fchmodat2 and openat2
/// by number, as libc has no wrapper for them or would fall back).
const ROUTES: &str = r#"
w = '/workspace'
open(w + '/f', 'w').close()
os.mkdir(w + '/d')
for bits, name in ((0o4000, 'suid'), (0o2000, 'sgid'), (0o6000, 'both')):
    m = 0o755 | bits
    t(name + '_chmod', lambda: os.chmod(w + '/f', m))
    fd = os.open(w + '/f', os.O_RDONLY)
    t(name + '_fchmod', lambda: os.fchmod(fd, m))
    os.close(fd)
    dfd = os.open(w, os.O_RDONLY | os.O_DIRECTORY)
    t(name + '_fchmodat', lambda: os.chmod('f', m, dir_fd=dfd))
    t(name + '_open_creat', lambda: os.close(os.open(w + '/o_' + name, os.O_CREAT | os.O_WRONLY, m)))
    t(name + '_openat_creat', lambda: os.close(os.open('oa_' + name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, m, dir_fd=dfd)))
    t(name + '_o_tmpfile', lambda: os.close(os.open(w, os.O_TMPFILE | os.O_WRONLY, m)))
    t(name + '_creat', lambda: os.close(sc(85, (w + '/c_' + name).encode(), m)))
    t(name + '_mknod', lambda: os.mknod(w + '/n_' + name, stat.S_IFREG | m))
    t(name + '_mknodat', lambda: os.mknod('na_' + name, stat.S_IFREG | m, dir_fd=dfd))
    t(name + '_chmod_dir', lambda: os.chmod(w + '/d', m))
    t(name + '_fchmodat2', lambda: sc(452, dfd, b'f', m, 0))
    how = (ctypes.c_uint64 * 3)(os.O_CREAT | os.O_WRONLY, m, 0)
    t(name + '_openat2', lambda: os.close(sc(437, dfd, ('o2_' + name).encode(), ctypes.byref(how), 24)))
    os.close(dfd)
t('plain_chmod', lambda: os.chmod(w + '/f', 0o700))
t('sticky_dir', lambda: os.chmod(w + '/d', 0o1777))
t('plain_creat', lambda: os.close(os.open(w + '/plain', os.O_CREAT | os.O_WRONLY, 0o755)))
"#;

both!(no_syscall_route_sets_a_setid_bit, {
    let ws = TempDir::new();
    let code = format!("{TRY}{ROUTES}");
    let r = agent(ws.path()).run("python3", &["-c", &code]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    let out = &r.stdout;
    for name in ["suid", "sgid", "both"] {
        for route in [
            "chmod",
            "fchmod",
            "fchmodat",
            "open_creat",
            "openat_creat",
            "o_tmpfile",
            "creat",
            "mknod",
            "mknodat",
            "chmod_dir",
        ] {
            let label = format!("{name}_{route}");
            assert_eq!(outcome_of(out, &label), "EPERM", "{label}: {out}");
        }
        // Not reachable at all, so that libc falls back to the checked calls.
        for route in ["fchmodat2", "openat2"] {
            let label = format!("{name}_{route}");
            assert_eq!(outcome_of(out, &label), "ENOSYS", "{label}: {out}");
        }
    }
    for label in ["plain_chmod", "sticky_dir", "plain_creat"] {
        assert_eq!(outcome_of(out, label), "ok", "{label}: {out}");
    }
    assert_eq!(setid_entries(ws.path()), vec![], "{out}");
});

both!(hard_links_to_the_host_s_setuid_binaries_are_refused, {
    // The workspace may be on the same filesystem as /usr (here it is): a hard link would give
    // the program's directory a setuid-root file without setting any bit.
    let ws = TempDir::new();
    let code = format!(
        "{TRY}import glob\n\
         for p in ('/usr/bin/su', '/usr/bin/passwd', '/usr/bin/mount'):\n\
         \x20 if os.path.exists(p) and os.stat(p).st_mode & 0o4000:\n\
         \x20   t('link' + p, lambda: os.link(p, '/workspace/' + os.path.basename(p)))\n\
         print('done')\n"
    );
    let r = agent(ws.path()).run("python3", &["-c", &code]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    let tried: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("link")).collect();
    assert!(!tried.is_empty(), "a setuid binary to link: {r:?}");
    for l in tried {
        assert!(l.ends_with(" EXDEV"), "{l}");
    }
    assert_eq!(setid_entries(ws.path()), vec![], "{r:?}");
});

both!(copy_tools_that_preserve_modes_leave_no_setid_file, {
    // A setuid file the program may read (the caller's own, mounted read-only), and an archive
    // whose members claim set-id modes: cp -p, install -m, shutil.copy2 and tar -p try to give
    // the copies the same modes.
    let src = TempDir::new();
    let ws = TempDir::new();
    std::fs::write(src.join("tool"), "#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(src.join("tool"), std::fs::Permissions::from_mode(0o6755)).unwrap();
    assert_eq!(
        std::fs::metadata(src.join("tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o6755,
        "the fixture is set-id on the host"
    );
    let tar = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import tarfile, io, sys\n\
             with tarfile.open(sys.argv[1], 'w') as t:\n\
             \x20 for name, mode, kind in (('a/suid', 0o4755, tarfile.REGTYPE), ('a/sgid', 0o2755, tarfile.REGTYPE), ('a/sdir', 0o2755, tarfile.DIRTYPE), ('a/plain', 0o755, tarfile.REGTYPE)):\n\
             \x20   i = tarfile.TarInfo(name); i.mode = mode; i.type = kind\n\
             \x20   data = b'' if kind == tarfile.DIRTYPE else b'x'\n\
             \x20   i.size = len(data); t.addfile(i, io.BytesIO(data))\n",
        )
        .arg(src.join("a.tar"))
        .status()
        .unwrap();
    assert!(tar.success());
    let sb =
        usable(Sandbox::agent_executor(ws.path()).mount(src.path(), "/src", Permission::ReadOnly))
            .build()
            .unwrap();
    let r = sb
        .run(
            "sh",
            &[
                "-c",
                "cp -p /src/tool /workspace/cp; echo cp=$?; \
                 cp -a /src/tool /workspace/cpa; echo cpa=$?; \
                 install -m 4755 /src/tool /workspace/inst; echo install=$?; \
                 python3 -c 'import shutil; shutil.copy2(\"/src/tool\", \"/workspace/copy2\")'; echo copy2=$?; \
                 tar -xpf /src/a.tar -C /workspace; echo tar=$?; \
                 ls /workspace /workspace/a",
            ],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    for tool in ["cp", "cpa", "install", "copy2", "tar"] {
        assert!(
            !r.stdout.contains(&format!("{tool}=0\n")),
            "{tool} reports that it could not keep the mode: {r:?}"
        );
    }
    // The copies exist (the tools went on), without the bits.
    for f in [
        "cp", "cpa", "copy2", "a/suid", "a/sgid", "a/plain", "a/sdir",
    ] {
        assert!(ws.join(f).exists(), "{f}: {r:?}");
    }
    assert_eq!(setid_entries(ws.path()), vec![], "{r:?}");
});

both!(writing_to_an_existing_setid_file_clears_its_bits, {
    // A set-id file already in the workspace (the caller's): the program owns it through the
    // mount, but it holds no CAP_FSETID, so the kernel clears the bits on write and truncate.
    let ws = TempDir::new();
    for name in ["w", "t"] {
        std::fs::write(ws.join(name), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(ws.join(name), std::fs::Permissions::from_mode(0o6755)).unwrap();
    }
    let r = agent(ws.path())
        .run(
            "sh",
            &[
                "-c",
                "echo 'echo pwned' >> /workspace/w && truncate -s 1 /workspace/t",
            ],
        )
        .unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    for name in ["w", "t"] {
        let mode = std::fs::metadata(ws.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o6000, 0, "{name}: {mode:o}");
    }
});

both!(file_capabilities_cannot_be_set, {
    // security.capability on a file is another way to make the host grant privilege to it.
    let ws = TempDir::new();
    let code = format!(
        "{TRY}open('/workspace/f', 'w').close()\n\
         import struct\n\
         blob = struct.pack('<IIIII', 0x02000001, 1 << 21, 1 << 21, 0, 0)\n\
         t('setxattr', lambda: os.setxattr('/workspace/f', 'security.capability', blob))\n\
         t('setxattr_tmp', lambda: (open('/tmp/f', 'w').close(), os.setxattr('/tmp/f', 'security.capability', blob)))\n"
    );
    let r = agent(ws.path()).run("python3", &["-c", &code]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    assert_eq!(outcome_of(&r.stdout, "setxattr"), "EPERM", "{r:?}");
    assert_eq!(outcome_of(&r.stdout, "setxattr_tmp"), "EPERM", "{r:?}");
    let getcap = std::process::Command::new("python3")
        .arg("-c")
        .arg("import os, sys\ntry:\n  os.getxattr(sys.argv[1], 'security.capability'); print('present')\nexcept OSError:\n  print('absent')")
        .arg(ws.join("f"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&getcap.stdout), "absent\n");
});

both!(
    chown_and_setid_to_ids_the_program_does_not_hold_fail_with_eperm,
    {
        // As for any unprivileged user outside (CPython's test_os.ChownFileTests expects it): not
        // EINVAL, which is what the kernel says for an id that the user namespace does not map.
        let ws = TempDir::new();
        let code = format!(
            "{TRY}p = '/workspace/f'\n\
         open(p, 'w').close()\n\
         u, g = os.getuid(), os.getgid()\n\
         print('ids', u, g)\n\
         t('chown_root', lambda: os.chown(p, 0, -1))\n\
         t('chown_other', lambda: os.chown(p, u + 1, -1))\n\
         t('chgrp_root', lambda: os.chown(p, -1, 0))\n\
         t('lchown_nobody', lambda: os.lchown(p, 65534, 65534))\n\
         fd = os.open(p, os.O_RDONLY)\n\
         t('fchown_root', lambda: os.fchown(fd, 0, 0))\n\
         t('chown_own', lambda: os.chown(p, u, g))\n\
         t('chown_unchanged', lambda: os.chown(p, -1, -1))\n\
         t('setuid_root', lambda: os.setuid(0))\n\
         t('setgid_root', lambda: os.setgid(0))\n\
         t('setresuid_other', lambda: os.setresuid(-1, u + 1, -1))\n\
         t('setregid_other', lambda: os.setregid(g + 1, -1))\n\
         t('setuid_own', lambda: os.setuid(u))\n"
        );
        let r = agent(ws.path()).run("python3", &["-c", &code]).unwrap();
        assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
        let out = &r.stdout;
        for label in [
            "chown_root",
            "chown_other",
            "chgrp_root",
            "lchown_nobody",
            "fchown_root",
            "setuid_root",
            "setgid_root",
            "setresuid_other",
            "setregid_other",
        ] {
            assert_eq!(outcome_of(out, label), "EPERM", "{label}: {out}");
        }
        for label in ["chown_own", "chown_unchanged", "setuid_own"] {
            assert_eq!(outcome_of(out, label), "ok", "{label}: {out}");
        }
    }
);
