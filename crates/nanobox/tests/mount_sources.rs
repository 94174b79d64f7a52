//! A mount source is exactly what the caller named, and every run mounts what build() opened:
//! symlinks planted by a run (or an archive, or another stage of a pipeline) do not redirect the
//! next sandbox's mounts, and a source replaced between runs fails the run. As root and as uid
//! 65534. Listed in docs/SECURITY.md, "Mount sources".

// What these tests assert is the Linux backend's (the macOS backend's own: tests/macos.rs).
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::{usable, TempDir};
use nanobox::{Error, Outcome, Permission, Sandbox};

fn open_dir(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
}

fn sh(sb: &Sandbox, script: &str) -> String {
    let r = sb.run("sh", &["-c", script]).unwrap();
    assert_eq!(r.outcome, Outcome::Exited(0), "{r:?}");
    r.stdout
}

/// The link and target of a refused mount source, or a panic naming what came instead.
fn refused(r: nanobox::Result<Sandbox>) -> (PathBuf, PathBuf, String) {
    match r {
        Err(e @ Error::SymlinkedMountSource { .. }) => {
            let msg = e.to_string();
            let Error::SymlinkedMountSource { link, target, .. } = e else {
                unreachable!()
            };
            assert!(msg.contains(&*link.to_string_lossy()), "{msg}");
            assert!(msg.contains(&*target.to_string_lossy()), "{msg}");
            (link, target, msg)
        }
        Err(e) => panic!("SymlinkedMountSource expected, got: {e}"),
        Ok(_) => panic!("a symlinked mount source was accepted"),
    }
}

/// Names and contents of the files directly in `dir`, sorted.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let data = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), data)
        })
        .collect();
    v.sort();
    v
}

both!(
    links_planted_by_one_run_do_not_redirect_the_next_runs_mounts,
    {
        // The review's attack: run 1 (agent preset) plants `inputs -> /etc` and `cache -> <a
        // directory the program must not reach>` in its workspace; run 2 mounts those names as its
        // input (read-only) and its cache (read-write), as a pipeline's next stage does.
        let ws = TempDir::new();
        open_dir(ws.path());
        let forbidden = TempDir::new();
        std::fs::write(forbidden.join("keep"), "untouched").unwrap();
        if common::is_root() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::Permissions::from_mode(0o700);
            std::fs::set_permissions(forbidden.path(), mode).unwrap();
        }
        let before = contents(forbidden.path());

        let agent = usable(Sandbox::agent_executor(ws.path())).build().unwrap();
        sh(
            &agent,
            &format!(
                "ln -s /etc /workspace/inputs && ln -s {} /workspace/cache",
                forbidden.path().display()
            ),
        );
        assert_eq!(
            std::fs::read_link(ws.join("inputs")).unwrap(),
            Path::new("/etc")
        );

        let stage2 = Sandbox::builder()
            .mount(ws.join("inputs"), "/inputs", Permission::ReadOnly)
            .mount(ws.join("cache"), "/cache", Permission::ReadWrite)
            .build();
        if let Ok(sb) = &stage2 {
            // What the attack does when the mounts are accepted.
            let _ = sb.run(
                "sh",
                &["-c", "cat /inputs/shadow; echo pwned > /cache/pwned"],
            );
        }
        assert_eq!(
            contents(forbidden.path()),
            before,
            "the target directory was written"
        );
        let (link, target, msg) = refused(stage2);
        assert_eq!(link, ws.join("inputs"));
        assert_eq!(target, Path::new("/etc"));
        assert!(msg.contains("mount_following_symlinks"), "{msg}");

        let (link, target, _) = refused(
            Sandbox::builder()
                .mount(ws.join("cache"), "/cache", Permission::ReadWrite)
                .build(),
        );
        assert_eq!(link, ws.join("cache"));
        assert_eq!(target, forbidden.path());
        // The preset refuses a symlinked workspace too.
        refused(usable(Sandbox::agent_executor(ws.join("cache"))).build());
        assert_eq!(contents(forbidden.path()), before);
    }
);

both!(a_symlink_anywhere_on_the_way_is_refused, {
    let ws = TempDir::new();
    std::fs::create_dir_all(ws.join("real/sub")).unwrap();
    symlink("/etc", ws.join("l")).unwrap();
    symlink("../../../etc", ws.join("real/rel")).unwrap();
    symlink("/etc/passwd", ws.join("file")).unwrap();
    symlink("/etc/ssl", ws.join("ssl")).unwrap();
    symlink("b", ws.join("a")).unwrap();
    symlink("a", ws.join("b")).unwrap();
    let ro = |p: PathBuf| {
        refused(
            Sandbox::builder()
                .mount(p, "/in", Permission::ReadOnly)
                .build(),
        )
    };

    // An intermediate component: ws/l/ssl is /etc/ssl.
    let (link, target, _) = ro(ws.join("l/ssl"));
    assert_eq!((link, target), (ws.join("l"), PathBuf::from("/etc")));
    // A relative link.
    let (link, target, _) = ro(ws.join("real/rel"));
    assert_eq!(
        (link, target),
        (ws.join("real/rel"), PathBuf::from("../../../etc"))
    );
    // A link to a file.
    let (link, target, _) = ro(ws.join("file"));
    assert_eq!(
        (link, target),
        (ws.join("file"), PathBuf::from("/etc/passwd"))
    );
    // A link followed by `..`: the kernel would take ws/ssl/.. to /etc, not to ws.
    let (link, _, _) = ro(ws.join("ssl/.."));
    assert_eq!(link, ws.join("ssl"));
    // A loop.
    let (link, target, _) = ro(ws.join("a"));
    assert_eq!((link, target), (ws.join("a"), PathBuf::from("b")));
    // `.` and `..` over real directories are fine.
    Sandbox::builder()
        .mount(ws.join("real/./sub/.."), "/in", Permission::ReadOnly)
        .build()
        .unwrap();
});

both!(a_relative_host_path_is_taken_from_the_working_directory, {
    // Relative to this process's cwd, without changing it (the tests run threaded): up to the
    // root with `..`, then down to the test directory.
    let ws = TempDir::new();
    std::fs::create_dir(ws.join("real")).unwrap();
    std::fs::write(ws.join("real/hello"), "hi").unwrap();
    symlink("/etc", ws.join("l")).unwrap();
    let cwd = std::env::current_dir().unwrap();
    let up: PathBuf = cwd.components().skip(1).map(|_| "..").collect();
    let rel = |p: &str| up.join(ws.join(p).strip_prefix("/").unwrap());
    assert!(rel("real").is_relative());

    let (link, target, _) = refused(
        Sandbox::builder()
            .mount(rel("l"), "/in", Permission::ReadOnly)
            .build(),
    );
    assert_eq!((link, target), (ws.join("l"), PathBuf::from("/etc")));
    let sb = Sandbox::builder()
        .mount(rel("real"), "/in", Permission::ReadOnly)
        .build()
        .unwrap();
    assert_eq!(sh(&sb, "cat /in/hello"), "hi");
});

both!(the_systems_own_links_and_the_opt_in_pass, {
    // /lib -> usr/lib on a merged-/usr host: mounting through it shows the real directory.
    let lib = std::fs::read_dir("/lib")
        .unwrap()
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_dir()) && e.file_name() != "modules")
        .map(|e| e.path())
        .expect("a directory under /lib");
    let name = std::fs::read_dir(&lib)
        .unwrap()
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .expect("a file there");
    let sb = Sandbox::builder()
        .mount(&lib, "/data/lib", Permission::ReadOnly)
        .build()
        .unwrap();
    let listing = sh(&sb, "ls /data/lib");
    assert!(listing.lines().any(|l| l == name), "{name} in {listing}");

    // The explicit opt-in follows a link the caller knows, and mounts its target.
    let ws = TempDir::new();
    let real = TempDir::new();
    std::fs::write(real.join("hello"), "from the target").unwrap();
    symlink(real.path(), ws.join("link")).unwrap();
    let sb = Sandbox::builder()
        .mount_following_symlinks(ws.join("link"), "/in", Permission::ReadOnly)
        .build()
        .unwrap();
    assert_eq!(sh(&sb, "cat /in/hello"), "from the target");
});

/// A sandbox whose `/out` is `ws/out`, after one run that wrote `/out/first`.
fn out_sandbox(ws: &TempDir) -> Sandbox {
    std::fs::create_dir(ws.join("out")).unwrap();
    open_dir(&ws.join("out"));
    let sb = Sandbox::builder()
        .mount(ws.join("out"), "/out", Permission::ReadWrite)
        .build()
        .unwrap();
    sh(&sb, "echo 1 > /out/first");
    assert_eq!(
        std::fs::read_to_string(ws.join("out/first")).unwrap(),
        "1\n"
    );
    sb
}

/// The next run of `sb` must fail with MountSourceChanged for `ws/out`, and run nothing.
fn next_run_fails(sb: &Sandbox, ws: &TempDir) -> String {
    match sb.run("sh", &["-c", "echo 2 > /out/second"]) {
        Err(e @ Error::MountSourceChanged { .. }) => {
            let msg = e.to_string();
            let Error::MountSourceChanged { path, sandbox, .. } = e else {
                unreachable!()
            };
            assert_eq!(path, ws.join("out"));
            assert_eq!(sandbox, Path::new("/out"));
            assert!(msg.contains("build the sandbox again"), "{msg}");
            msg
        }
        other => panic!("MountSourceChanged expected, got {other:?}"),
    }
}

both!(a_source_recreated_between_runs_fails_the_next_run, {
    // `rm -rf out && mkdir out`: the path now names a new directory; the held one is deleted.
    let ws = TempDir::new();
    let sb = out_sandbox(&ws);
    std::fs::remove_dir_all(ws.join("out")).unwrap();
    let msg = next_run_fails(&sb, &ws);
    assert!(msg.contains("no longer exists"), "{msg}");
    std::fs::create_dir(ws.join("out")).unwrap();
    open_dir(&ws.join("out"));
    next_run_fails(&sb, &ws);
    assert!(
        contents(&ws.join("out")).is_empty(),
        "the new out was written"
    );
});

both!(a_source_renamed_between_runs_fails_the_next_run, {
    // `mv out out.old && mkdir out`: the held directory lives on under another name.
    let ws = TempDir::new();
    let sb = out_sandbox(&ws);
    std::fs::rename(ws.join("out"), ws.join("out.old")).unwrap();
    std::fs::create_dir(ws.join("out")).unwrap();
    open_dir(&ws.join("out"));
    next_run_fails(&sb, &ws);
    assert!(
        contents(&ws.join("out")).is_empty(),
        "the new out was written"
    );
    assert_eq!(
        contents(&ws.join("out.old")),
        [("first".to_string(), b"1\n".to_vec())]
    );
});

both!(
    a_source_replaced_by_a_symlink_between_runs_fails_the_next_run,
    {
        let ws = TempDir::new();
        let elsewhere = TempDir::new();
        open_dir(elsewhere.path());
        let sb = out_sandbox(&ws);
        std::fs::rename(ws.join("out"), ws.join("out.old")).unwrap();
        symlink(elsewhere.path(), ws.join("out")).unwrap();
        let msg = next_run_fails(&sb, &ws);
        assert!(msg.contains("replaced"), "{msg}");
        assert!(
            contents(elsewhere.path()).is_empty(),
            "the link's target was written"
        );
        // A directory on the way replaced by a symlink is caught as well.
        std::fs::remove_file(ws.join("out")).unwrap();
        std::fs::rename(ws.join("out.old"), ws.join("out")).unwrap();
        let inner = TempDir::new();
        std::fs::create_dir(inner.join("out")).unwrap();
        open_dir(&inner.join("out"));
        let sb = Sandbox::builder()
            .mount(inner.join("out"), "/out", Permission::ReadWrite)
            .build()
            .unwrap();
        let moved = inner.path().with_extension("moved");
        std::fs::rename(inner.path(), &moved).unwrap();
        symlink(&moved, inner.path()).unwrap();
        let r = sb.run("sh", &["-c", "echo 2 > /out/second"]);
        let _ = std::fs::remove_file(inner.path());
        std::fs::rename(&moved, inner.path()).unwrap();
        assert!(matches!(r, Err(Error::MountSourceChanged { .. })), "{r:?}");
        assert!(contents(&inner.join("out")).is_empty());
    }
);

both!(an_untouched_source_keeps_working_for_many_runs, {
    let ws = TempDir::new();
    let sb = out_sandbox(&ws);
    for i in 0..20 {
        sh(&sb, &format!("echo {i} >> /out/log"));
    }
    let log = std::fs::read_to_string(ws.join("out/log")).unwrap();
    assert_eq!(log.lines().count(), 20, "{log}");
});
