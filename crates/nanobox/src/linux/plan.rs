//! The mount plan: every step the sandbox's init takes to build the program's root, computed and
//! turned into C strings before the fork, then executed in the child against [`Sys`].

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::mount::MountFlags;

use super::sys::{HostId, Sys, ATTR_NODEV, ATTR_NOEXEC, ATTR_NOSUID, ATTR_RDONLY};
use crate::policy::{Mount, Permission, Policy};

/// Where the scratch tmpfs is mounted in the fresh mount namespace before the first pivot_root.
/// It only has to exist on the host; the host's /tmp itself stays reachable as /oldroot/tmp.
const BASE: &str = "/tmp";

/// The flags of the sandbox's own /proc mount; [`super::container`]'s probe mounts a proc with the
/// same flags and data, so that what it finds possible is what a run does.
pub(crate) const PROC_FLAGS: MountFlags = MountFlags::NOSUID
    .union(MountFlags::NODEV)
    .union(MountFlags::NOEXEC);
/// The data of the sandbox's own /proc mount: the program sees only the processes it may trace.
pub(crate) const PROC_DATA: &std::ffi::CStr = c"hidepid=2";

/// Device nodes bound from the host's /dev.
pub(crate) const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Make every mount private.
    MakePrivate,
    /// Mount a fresh filesystem (tmpfs, proc, devpts).
    Fs {
        fstype: CString,
        target: CString,
        flags: MountFlags,
        data: CString,
    },
    /// mkdir (existing is fine).
    Mkdir { path: CString, mode: u32 },
    /// Create an empty file (existing is fine).
    Touch { path: CString, mode: u32 },
    /// Create a symlink.
    Symlink { target: CString, link: CString },
    /// chdir.
    Chdir(CString),
    /// pivot_root(new_root, put_old).
    PivotRoot { new_root: CString, put_old: CString },
    /// umount2(MNT_DETACH).
    Detach(CString),
    /// Remember the host's root (after the first pivot_root) for [`Op::BindHost`].
    OpenHostRoot(CString),
    /// Close the descriptor opened by [`Op::OpenHostRoot`].
    CloseHostRoot,
    /// Bind a host path (relative to the host root, no symlinks followed) with these attributes;
    /// for a user mount, only if it is still the file held since the sandbox was built.
    BindHost {
        rel: CString,
        target: CString,
        attr: u64,
        held: Option<Held>,
    },
    /// Bind a path of the sandbox's own making with these attributes.
    BindLocal {
        source: CString,
        target: CString,
        attr: u64,
    },
    /// Plain bind mount of a source nanobox controls (the read-only masks, host device nodes); the
    /// new mount keeps the source mount's flags.
    Bind { source: CString, target: CString },
    /// Attach a tree the parent prepared (slot in the per-run descriptor list).
    AttachPrepared { slot: usize, target: CString },
    /// Set attributes on one mount (not its children) or on the whole tree.
    SetAttr {
        target: CString,
        attr: u64,
        recursive: bool,
    },
    /// Write to a file (a sysctl of the sandbox's own namespaces).
    Write { path: CString, data: Vec<u8> },
    /// Create one of the files nanobox places in the sandbox's /etc (see [`etc_files`]).
    EtcFile { path: CString, content: EtcContent },
    /// Set the hostname of the sandbox's uts namespace.
    Hostname(CString),
    /// Bring up loopback in the sandbox's network namespace.
    LoopbackUp,
}

impl Op {
    /// A human description for error messages.
    pub(crate) fn describe(&self) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        let show = |c: &CString| sandbox_view(&s(c));
        match self {
            Op::MakePrivate => "making mounts private".into(),
            Op::Fs { fstype, target, .. } if fstype.as_bytes() == b"overlay" => format!(
                "mounting overlay at {} (nanobox's own files over the host's /etc; needs \
                 overlayfs in the kernel, Linux 5.11+, and 5.19+ when nanobox runs as root)",
                show(target)
            ),
            Op::Fs { fstype, target, .. } => {
                format!("mounting {} at {}", s(fstype), show(target))
            }
            Op::Mkdir { path, .. } => format!("creating directory {}", show(path)),
            Op::Touch { path, .. } => format!("creating mountpoint file {}", show(path)),
            Op::Symlink { target, link } => {
                format!("creating symlink {} -> {}", show(link), s(target))
            }
            Op::Chdir(p) => format!("changing directory to {}", s(p)),
            Op::PivotRoot { new_root, .. } => format!("pivot_root into {}", s(new_root)),
            Op::Detach(p) => format!("detaching {}", s(p)),
            Op::OpenHostRoot(_) => "opening the host root".into(),
            Op::CloseHostRoot => "closing the host root".into(),
            Op::BindHost { rel, target, .. } => {
                format!("binding host path /{} at {}", s(rel), show(target))
            }
            Op::BindLocal { source, target, .. } => {
                format!("binding {} at {}", show(source), show(target))
            }
            Op::Bind { source, target } => {
                format!("binding {} at {}", show(source), show(target))
            }
            Op::AttachPrepared { target, .. } => format!("attaching mount at {}", show(target)),
            Op::SetAttr { target, .. } => format!("setting mount flags of {}", show(target)),
            Op::Write { path, .. } => format!("writing {}", show(path)),
            Op::EtcFile { path, .. } => format!("creating the sandbox's own {}", s(path)),
            Op::Hostname(h) => format!("setting hostname {}", s(h)),
            Op::LoopbackUp => "bringing up loopback".into(),
        }
    }
}

/// What the init checks before binding a user mount's host path: that it still names the file held
/// open since the sandbox was built (a mismatch fails the step with `ESTALE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    /// The mount's index in the policy.
    pub mount: usize,
    /// The held file's (st_dev, st_ino).
    pub id: HostId,
}

/// Map a path in the init's view to the path the program will see.
fn sandbox_view(p: &str) -> String {
    match p.strip_prefix("/newroot") {
        Some("") => "/".into(),
        Some(rest) => rest.into(),
        None => p.into(),
    }
}

/// What a file nanobox places in the sandbox's /etc holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EtcContent {
    /// These bytes, the same in every run.
    Bytes(Vec<u8>),
    /// A machine-id made for each run: 128 random bits as 32 hex digits (a version 4 UUID, as
    /// systemd makes them) and a newline.
    MachineId,
}

/// Where the sandbox's own /etc files are made (a small tmpfs of the init's, the overlay's upper
/// layer).
const ETC_FILES: &str = "/etcfiles";
/// Where the host's /etc is attached before the overlay (the overlay's lower layer).
const ETC_HOST: &str = "/etchost";

/// The files nanobox places in the sandbox's /etc instead of the host's, so that nothing there
/// shows the host: its name (`hostname`, and `hosts`, which names it and the machines it knows)
/// and its identity (`machine-id`). This is the one place that says what they are; the plan
/// lays them over the host's /etc with an overlay, so they exist whether or not the host has
/// them, and whatever the host's are (files, symlinks, mount points).
pub(crate) fn etc_files(policy: &Policy) -> Vec<(&'static str, EtcContent)> {
    let name = &policy.hostname;
    vec![
        (
            "hostname",
            EtcContent::Bytes(format!("{name}\n").into_bytes()),
        ),
        (
            "hosts",
            EtcContent::Bytes(
                format!(
                    "127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n\
                     ::1\tlocalhost ip6-localhost ip6-loopback\n"
                )
                .into_bytes(),
            ),
        ),
        ("machine-id", EtcContent::MachineId),
    ]
}

/// Format 16 random bytes as a machine-id (version 4 UUID bits set), with a newline.
/// Allocation-free: it runs in the init.
pub(crate) fn machine_id(mut raw: [u8; 16]) -> [u8; 33] {
    raw[6] = (raw[6] & 0x0f) | 0x40;
    raw[8] = (raw[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'\n'; 33];
    for (i, b) in raw.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 0xf)];
    }
    out
}

/// What the host offers for the system part of the root, read once when a sandbox is built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostLayout {
    /// Top-level system directories to bind read-only (e.g. `usr`).
    pub dirs: Vec<String>,
    /// Top-level symlinks to recreate (e.g. `bin` -> `usr/bin`).
    pub links: Vec<(String, PathBuf)>,
    /// Paths under /etc (relative) to hide: files and directories that are not world-readable.
    pub etc_masked_files: Vec<PathBuf>,
    pub etc_masked_dirs: Vec<PathBuf>,
    /// Device nodes present on the host.
    pub devices: Vec<String>,
}

impl HostLayout {
    /// Read the layout of the running host; walk /etc for what to mask only if asked to.
    pub(crate) fn read(walk_etc: bool) -> HostLayout {
        let mut l = HostLayout::default();
        for name in ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let p = Path::new("/").join(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(t) = std::fs::read_link(&p) {
                        l.links.push((name.to_string(), t));
                    }
                }
                Ok(m) if m.is_dir() => l.dirs.push(name.to_string()),
                _ => {}
            }
        }
        if walk_etc {
            mask_walk(Path::new("/etc"), &mut l);
        }
        for d in DEVICES {
            if Path::new("/dev").join(d).exists() {
                l.devices.push(d.to_string());
            }
        }
        l
    }
}

/// Collect what under /etc the program must not read: everything not readable by "other".
/// Stat'ing every entry is the cost (about 4 ms for Debian's 1,200 entries on the test machine;
/// sharing the walk between threads did not make it faster there).
fn mask_walk(root: &Path, l: &mut HostLayout) {
    let mut stack = vec![PathBuf::new()];
    while let Some(d) = stack.pop() {
        scan_dir(root, &d, l, &mut stack);
    }
    l.etc_masked_files.sort();
    l.etc_masked_dirs.sort();
}

/// Classify the entries of one directory: masks go into `l`, readable subdirectories onto `dirs`.
/// What cannot be inspected is masked (fail closed).
fn scan_dir(root: &Path, rel: &Path, l: &mut HostLayout, dirs: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root.join(rel)) else {
        l.etc_masked_dirs.push(if rel.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            rel.to_path_buf()
        });
        return;
    };
    for e in rd {
        let Ok(e) = e else {
            l.etc_masked_dirs.push(if rel.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                rel.to_path_buf()
            });
            return;
        };
        // The type comes with the directory entry, so symlinks need no stat at all; the others
        // are stat'ed relative to the directory (no path walk from the root for each entry).
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        let r = rel.join(e.file_name());
        let Ok(m) = e.metadata() else {
            if ft.is_dir() {
                l.etc_masked_dirs.push(r)
            } else {
                l.etc_masked_files.push(r)
            }
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = m.permissions().mode();
        let ft = m.file_type();
        if ft.is_symlink() {
            continue;
        } else if ft.is_dir() {
            if mode & 0o005 != 0o005 {
                l.etc_masked_dirs.push(r);
            } else {
                dirs.push(r);
            }
        } else if !ft.is_file() || mode & 0o004 == 0 {
            l.etc_masked_files.push(r);
        }
    }
}

fn cs(s: impl AsRef<[u8]>) -> CString {
    // Paths reach here validated (no NUL); a NUL would be a bug, so fail loudly at build time.
    CString::new(s.as_ref().to_vec()).expect("path without NUL")
}

fn newroot(p: &Path) -> CString {
    let mut v = b"/newroot".to_vec();
    v.extend_from_slice(p.as_os_str().as_bytes());
    cs(v)
}

/// How user mounts are attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountMode {
    /// The init binds host paths itself (nanobox runs unprivileged).
    InChild,
    /// The parent prepares idmapped trees; the init attaches them (nanobox runs as root).
    Prepared,
}

/// How the safe /etc is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EtcMode {
    /// Bind the host's /etc and cover what "other" may not read (found by walking it).
    Masked,
    /// Attach the tree the parent prepared in this slot: an idmapped /etc through which no file
    /// is owned by the program's uid or groups, so the kernel lets it read only what "other" may.
    Prepared { slot: usize },
}

/// The steps, in order. `held` are the (st_dev, st_ino) of the user mounts' sources opened at
/// `build()`, in the order of `policy.mounts` (empty: no check), which each bind checks first.
pub(crate) fn build(
    policy: &Policy,
    host: &HostLayout,
    mode: MountMode,
    etc: EtcMode,
    held: &[HostId],
    pools: &super::pools::PoolPlan,
) -> Vec<Op> {
    let ro = ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV;
    let mut ops = Vec::new();
    let tmpfs = |target: &str, flags: MountFlags, data: String| Op::Fs {
        fstype: cs("tmpfs"),
        target: cs(target),
        flags,
        data: cs(data),
    };
    let nosuid_nodev = MountFlags::NOSUID | MountFlags::NODEV;

    ops.push(Op::MakePrivate);
    ops.push(tmpfs(
        BASE,
        nosuid_nodev | MountFlags::NOEXEC,
        "mode=0755,size=64k".into(),
    ));
    ops.push(Op::Chdir(cs(BASE)));
    ops.push(Op::Mkdir {
        path: cs(format!("{BASE}/oldroot")),
        mode: 0o755,
    });
    ops.push(Op::Mkdir {
        path: cs(format!("{BASE}/newroot")),
        mode: 0o755,
    });
    ops.push(Op::Mkdir {
        path: cs(format!("{BASE}/masks")),
        mode: 0o755,
    });
    ops.push(Op::PivotRoot {
        new_root: cs("."),
        put_old: cs("oldroot"),
    });
    ops.push(Op::Chdir(cs("/")));
    ops.push(Op::OpenHostRoot(cs("/oldroot")));

    // Read-only empty file and directory that masked paths are covered with.
    ops.push(tmpfs(
        "/masks",
        nosuid_nodev | MountFlags::NOEXEC,
        "mode=0755,size=16k".into(),
    ));
    ops.push(Op::Touch {
        path: cs("/masks/file"),
        mode: 0,
    });
    ops.push(Op::Mkdir {
        path: cs("/masks/dir"),
        mode: 0,
    });
    ops.push(Op::SetAttr {
        target: cs("/masks"),
        attr: ro | ATTR_NOEXEC,
        recursive: false,
    });

    // The new root: a small tmpfs, read-only once everything is in place.
    ops.push(tmpfs("/newroot", nosuid_nodev, "mode=0755,size=1m".into()));
    for d in &host.dirs {
        let target = newroot(&Path::new("/").join(d));
        ops.push(Op::Mkdir {
            path: target.clone(),
            mode: 0o755,
        });
        ops.push(Op::BindHost {
            rel: cs(d),
            target,
            attr: ro,
            held: None,
        });
    }
    for (name, to) in &host.links {
        ops.push(Op::Symlink {
            target: cs(to.as_os_str().as_bytes()),
            link: newroot(&Path::new("/").join(name)),
        });
    }

    // A safe /etc: nanobox's own files (etc_files) laid over the host's /etc, read-only, with what
    // "other" may not read covered. A read-only overlay of two lower layers: the files win, the
    // rest of the host's /etc shows through.
    ops.push(Op::Mkdir {
        path: cs(ETC_FILES),
        mode: 0o755,
    });
    ops.push(tmpfs(
        ETC_FILES,
        nosuid_nodev | MountFlags::NOEXEC,
        "mode=0755,size=64k".into(),
    ));
    for (name, content) in etc_files(policy) {
        ops.push(Op::EtcFile {
            path: cs(format!("{ETC_FILES}/{name}")),
            content,
        });
    }
    ops.push(Op::SetAttr {
        target: cs(ETC_FILES),
        attr: ro | ATTR_NOEXEC,
        recursive: false,
    });
    ops.push(Op::Mkdir {
        path: cs(ETC_HOST),
        mode: 0o755,
    });
    match etc {
        EtcMode::Prepared { slot } => ops.push(Op::AttachPrepared {
            slot,
            target: cs(ETC_HOST),
        }),
        EtcMode::Masked => ops.push(Op::BindHost {
            rel: cs("etc"),
            target: cs(ETC_HOST),
            attr: ro,
            held: None,
        }),
    }
    ops.push(Op::Mkdir {
        path: cs("/newroot/etc"),
        mode: 0o755,
    });
    ops.push(Op::Fs {
        fstype: cs("overlay"),
        target: cs("/newroot/etc"),
        flags: MountFlags::RDONLY | nosuid_nodev,
        data: cs(format!("lowerdir={ETC_FILES}:{ETC_HOST}")),
    });
    if etc == EtcMode::Masked {
        // The masks are on a read-only mount; a plain bind keeps that.
        for f in &host.etc_masked_files {
            ops.push(Op::Bind {
                source: cs("/masks/file"),
                target: newroot(&Path::new("/etc").join(f)),
            });
        }
        for d in &host.etc_masked_dirs {
            ops.push(Op::Bind {
                source: cs("/masks/dir"),
                target: newroot(&Path::new("/etc").join(d)),
            });
        }
    }

    // Private, size-bounded, executable /tmp.
    ops.push(Op::Mkdir {
        path: cs("/newroot/tmp"),
        mode: 0o1777,
    });
    ops.push(tmpfs(
        "/newroot/tmp",
        nosuid_nodev,
        format!("mode=1777,size={}", policy.tmp_size),
    ));

    // Minimal /dev.
    ops.push(Op::Mkdir {
        path: cs("/newroot/dev"),
        mode: 0o755,
    });
    ops.push(tmpfs(
        "/newroot/dev",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        "mode=0755,size=64k".into(),
    ));
    for d in &host.devices {
        let target = cs(format!("/newroot/dev/{d}"));
        ops.push(Op::Touch {
            path: target.clone(),
            mode: 0o666,
        });
        // The host's device node itself (root-owned, in devtmpfs): a plain bind, one syscall.
        ops.push(Op::Bind {
            source: cs(format!("/oldroot/dev/{d}")),
            target,
        });
    }
    ops.push(Op::Mkdir {
        path: cs("/newroot/dev/shm"),
        mode: 0o1777,
    });
    ops.push(tmpfs(
        "/newroot/dev/shm",
        nosuid_nodev,
        format!("mode=1777,size={}", policy.tmp_size),
    ));
    ops.push(Op::Mkdir {
        path: cs("/newroot/dev/pts"),
        mode: 0o755,
    });
    ops.push(Op::Fs {
        fstype: cs("devpts"),
        target: cs("/newroot/dev/pts"),
        flags: MountFlags::NOSUID | MountFlags::NOEXEC,
        data: cs(format!(
            "newinstance,ptmxmode=0666,mode=0620,max={}",
            pools.ptys
        )),
    });
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: cs(to),
            link: cs(format!("/newroot/dev/{link}")),
        });
    }
    ops.push(Op::SetAttr {
        target: cs("/newroot/dev"),
        attr: ATTR_RDONLY | ATTR_NOSUID | ATTR_NOEXEC,
        recursive: false,
    });

    // The sandbox's own /proc, showing the program only its own processes (the init, a copy of
    // the caller, is not dumpable and so not the program's to see); the per-user pools of the
    // sandbox's user namespace bounded; /proc/sys read-only.
    ops.push(Op::Mkdir {
        path: cs("/newroot/proc"),
        mode: 0o555,
    });
    ops.push(Op::Fs {
        fstype: cs("proc"),
        target: cs("/newroot/proc"),
        flags: PROC_FLAGS,
        data: PROC_DATA.to_owned(),
    });
    for (name, value) in &pools.userns {
        ops.push(Op::Write {
            path: cs(format!("/newroot/proc/sys/user/{name}")),
            data: value.to_string().into_bytes(),
        });
    }
    ops.push(Op::BindLocal {
        source: cs("/newroot/proc/sys"),
        target: cs("/newroot/proc/sys"),
        attr: ro | ATTR_NOEXEC,
    });

    // The user's mounts, parents first.
    for (slot, m) in policy.mounts.iter().enumerate() {
        let nested = policy.mounts[..slot]
            .iter()
            .any(|p| m.sandbox.starts_with(&p.sandbox));
        if !nested {
            push_mountpoint(&mut ops, m);
        }
        let target = newroot(&m.sandbox);
        match mode {
            MountMode::Prepared => ops.push(Op::AttachPrepared { slot, target }),
            MountMode::InChild => ops.push(Op::BindHost {
                rel: cs(host_rel(&m.host_canonical)),
                target,
                attr: user_mount_attr(m.permission),
                held: held.get(slot).map(|&id| Held { mount: slot, id }),
            }),
        }
    }

    ops.push(Op::Hostname(cs(&policy.hostname)));
    ops.push(Op::LoopbackUp);
    ops.push(Op::CloseHostRoot);
    ops.push(Op::SetAttr {
        target: cs("/newroot"),
        attr: ro,
        recursive: false,
    });
    ops.push(Op::Chdir(cs("/newroot")));
    ops.push(Op::PivotRoot {
        new_root: cs("."),
        put_old: cs("."),
    });
    ops.push(Op::Detach(cs(".")));
    ops.push(Op::Chdir(cs("/")));
    ops
}

/// The mount attributes a user mount gets.
pub(crate) fn user_mount_attr(p: Permission) -> u64 {
    match p {
        Permission::ReadOnly => ATTR_RDONLY | ATTR_NOSUID | ATTR_NODEV,
        Permission::ReadWrite => ATTR_NOSUID | ATTR_NODEV,
    }
}

/// A canonical host path without its leading '/'.
pub(crate) fn host_rel(p: &Path) -> Vec<u8> {
    let b = p.as_os_str().as_bytes();
    let b = b.strip_prefix(b"/").unwrap_or(b);
    if b.is_empty() {
        b".".to_vec()
    } else {
        b.to_vec()
    }
}

/// Directories leading to a mount target, then the mountpoint itself, on the sandbox's tmpfs.
fn push_mountpoint(ops: &mut Vec<Op>, m: &Mount) {
    let mut acc = PathBuf::from("/");
    let comps: Vec<_> = m.sandbox.components().skip(1).collect();
    for (i, c) in comps.iter().enumerate() {
        acc.push(c);
        let last = i + 1 == comps.len();
        if last && !m.is_dir {
            ops.push(Op::Touch {
                path: newroot(&acc),
                mode: 0o644,
            });
        } else {
            let mode = if acc == Path::new("/tmp") {
                0o1777
            } else {
                0o755
            };
            ops.push(Op::Mkdir {
                path: newroot(&acc),
                mode,
            });
        }
    }
}

/// Run the plan. On failure: the index of the failing step and its errno.
///
/// Async-signal-safe: no allocation, no locks (it runs between clone and exec).
pub(crate) fn execute(ops: &[Op], sys: &dyn Sys, prepared: &[i32]) -> Result<(), (usize, i32)> {
    let mut host_root: i32 = -1;
    for (i, op) in ops.iter().enumerate() {
        let r = match op {
            Op::MakePrivate => sys.make_private(),
            Op::Fs {
                fstype,
                target,
                flags,
                data,
            } => sys.mount_fs(fstype, target, *flags, data),
            Op::Mkdir { path, mode } => sys.mkdir(path, *mode),
            Op::Touch { path, mode } => sys.touch(path, *mode),
            Op::Symlink { target, link } => sys.symlink(target, link),
            Op::Chdir(p) => sys.chdir(p),
            Op::PivotRoot { new_root, put_old } => sys.pivot_root(new_root, put_old),
            Op::Detach(p) => sys.detach(p),
            Op::OpenHostRoot(p) => sys.open_dir(p).map(|fd| host_root = fd),
            Op::CloseHostRoot => {
                if host_root >= 0 {
                    sys.close(host_root);
                    host_root = -1;
                }
                Ok(())
            }
            Op::BindHost {
                rel,
                target,
                attr,
                held,
            } => {
                if host_root < 0 {
                    Err(libc::EBADF)
                } else {
                    sys.open_beneath(host_root, rel).and_then(|fd| {
                        if let Some(h) = held {
                            let same = sys.file_id(fd).and_then(|id| match id == h.id {
                                true => Ok(()),
                                false => Err(libc::ESTALE),
                            });
                            if let Err(e) = same {
                                sys.close(fd);
                                return Err(e);
                            }
                        }
                        let tree = sys.clone_tree(fd);
                        sys.close(fd);
                        attach(sys, tree?, *attr, target)
                    })
                }
            }
            Op::BindLocal {
                source,
                target,
                attr,
            } => sys
                .clone_tree_at(source)
                .and_then(|tree| attach(sys, tree, *attr, target)),
            Op::Bind { source, target } => sys.bind(source, target),
            Op::AttachPrepared { slot, target } => match prepared.get(*slot) {
                Some(&fd) => sys.move_mount(fd, target),
                None => Err(libc::EBADF),
            },
            Op::SetAttr {
                target,
                attr,
                recursive,
            } => sys.set_attr_path(target, *attr, *recursive),
            Op::Write { path, data } => sys.write_file(path, data),
            Op::EtcFile { path, content } => match content {
                EtcContent::Bytes(b) => sys.create_file(path, b, 0o644),
                EtcContent::MachineId => {
                    let mut raw = [0u8; 16];
                    sys.random(&mut raw)
                        .and_then(|_| sys.create_file(path, &machine_id(raw), 0o444))
                }
            },
            Op::Hostname(h) => sys.sethostname(h.as_bytes()),
            Op::LoopbackUp => sys.loopback_up(),
        };
        if let Err(e) = r {
            if host_root >= 0 {
                sys.close(host_root);
            }
            return Err((i, e));
        }
    }
    Ok(())
}

fn attach(sys: &dyn Sys, tree: i32, attr: u64, target: &CString) -> Result<(), i32> {
    let r = sys
        .set_attr_fd(tree, attr)
        .and_then(|_| sys.move_mount(tree, target));
    sys.close(tree);
    r
}

#[cfg(test)]
mod tests {
    use super::super::pools::PoolPlan;
    use super::*;
    use crate::policy::SandboxBuilder;
    use std::cell::RefCell;
    use std::ffi::CStr;

    /// Records every call; fails the call whose description matches `fail_on`.
    #[derive(Default)]
    struct Recorder {
        calls: RefCell<Vec<String>>,
        next_fd: RefCell<i32>,
        fail_on: Option<&'static str>,
    }

    impl Recorder {
        fn rec(&self, s: String) -> Result<(), i32> {
            let fail = self.fail_on.is_some_and(|f| s.contains(f));
            self.calls.borrow_mut().push(s);
            if fail {
                Err(libc::EACCES)
            } else {
                Ok(())
            }
        }
        fn fd(&self, s: String) -> Result<i32, i32> {
            self.rec(s)?;
            let mut n = self.next_fd.borrow_mut();
            *n += 1;
            Ok(100 + *n)
        }
    }

    fn t(c: &CStr) -> String {
        c.to_string_lossy().into_owned()
    }

    impl Sys for Recorder {
        fn mount_fs(
            &self,
            fs: &CStr,
            target: &CStr,
            flags: MountFlags,
            data: &CStr,
        ) -> Result<(), i32> {
            self.rec(format!(
                "mount {} {} {:?} {}",
                t(fs),
                t(target),
                flags,
                t(data)
            ))
        }
        fn make_private(&self) -> Result<(), i32> {
            self.rec("private".into())
        }
        fn mkdir(&self, p: &CStr, m: u32) -> Result<(), i32> {
            self.rec(format!("mkdir {} {m:o}", t(p)))
        }
        fn touch(&self, p: &CStr, m: u32) -> Result<(), i32> {
            self.rec(format!("touch {} {m:o}", t(p)))
        }
        fn symlink(&self, a: &CStr, b: &CStr) -> Result<(), i32> {
            self.rec(format!("symlink {} -> {}", t(b), t(a)))
        }
        fn chdir(&self, p: &CStr) -> Result<(), i32> {
            self.rec(format!("chdir {}", t(p)))
        }
        fn pivot_root(&self, a: &CStr, b: &CStr) -> Result<(), i32> {
            self.rec(format!("pivot_root {} {}", t(a), t(b)))
        }
        fn detach(&self, p: &CStr) -> Result<(), i32> {
            self.rec(format!("detach {}", t(p)))
        }
        fn open_dir(&self, p: &CStr) -> Result<i32, i32> {
            self.fd(format!("open_dir {}", t(p)))
        }
        fn open_beneath(&self, d: i32, p: &CStr) -> Result<i32, i32> {
            self.fd(format!("open_beneath {d} {}", t(p)))
        }
        fn file_id(&self, fd: i32) -> Result<HostId, i32> {
            self.rec(format!("file_id {fd}"))?;
            Ok(RECORDED_ID)
        }
        fn clone_tree(&self, fd: i32) -> Result<i32, i32> {
            self.fd(format!("clone_tree {fd}"))
        }
        fn clone_tree_at(&self, p: &CStr) -> Result<i32, i32> {
            self.fd(format!("clone_tree_at {}", t(p)))
        }
        fn set_attr_fd(&self, fd: i32, a: u64) -> Result<(), i32> {
            self.rec(format!("set_attr_fd {fd} {a:#x}"))
        }
        fn set_attr_path(&self, p: &CStr, a: u64, r: bool) -> Result<(), i32> {
            self.rec(format!("set_attr {} {a:#x} rec={r}", t(p)))
        }
        fn bind(&self, a: &CStr, b: &CStr) -> Result<(), i32> {
            self.rec(format!("bind {} {}", t(a), t(b)))
        }
        fn move_mount(&self, fd: i32, p: &CStr) -> Result<(), i32> {
            self.rec(format!("move_mount {fd} {}", t(p)))
        }
        fn close(&self, fd: i32) {
            self.calls.borrow_mut().push(format!("close {fd}"));
        }
        fn write_file(&self, p: &CStr, d: &[u8]) -> Result<(), i32> {
            self.rec(format!("write {} {}", t(p), String::from_utf8_lossy(d)))
        }
        fn create_file(&self, p: &CStr, d: &[u8], m: u32) -> Result<(), i32> {
            self.rec(format!(
                "create {} {m:o} {}",
                t(p),
                String::from_utf8_lossy(d).escape_debug()
            ))
        }
        fn random(&self, buf: &mut [u8]) -> Result<(), i32> {
            buf.fill(0xab);
            self.rec("random".into())
        }
        fn sethostname(&self, n: &[u8]) -> Result<(), i32> {
            self.rec(format!("hostname {}", String::from_utf8_lossy(n)))
        }
        fn loopback_up(&self) -> Result<(), i32> {
            self.rec("lo up".into())
        }
    }

    /// The (st_dev, st_ino) the recorder reports for every descriptor.
    const RECORDED_ID: HostId = (7, 42);

    fn layout() -> HostLayout {
        HostLayout {
            dirs: vec!["usr".into()],
            links: vec![
                ("bin".into(), "usr/bin".into()),
                ("lib64".into(), "usr/lib64".into()),
            ],
            etc_masked_files: vec!["shadow".into()],
            etc_masked_dirs: vec!["ssl/private".into()],
            devices: DEVICES.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn run_etc(policy: &Policy, mode: MountMode, etc: EtcMode) -> Vec<String> {
        let ops = build(policy, &layout(), mode, etc, &[], &PoolPlan::for_tests());
        let r = Recorder::default();
        execute(&ops, &r, &[7, 8, 9]).unwrap();
        r.calls.into_inner()
    }

    fn run(policy: &Policy, mode: MountMode) -> Vec<String> {
        run_etc(policy, mode, EtcMode::Masked)
    }

    fn pos(calls: &[String], needle: &str) -> usize {
        calls
            .iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no call {needle:?} in {calls:#?}"))
    }

    #[test]
    fn system_dirs_are_read_only_and_etc_secrets_masked() {
        let p = SandboxBuilder::default().validate().unwrap();
        let calls = run(&p, MountMode::InChild);
        // /usr: opened beneath the host root without symlinks, cloned, made ro+nosuid+nodev.
        let i = pos(&calls, "open_beneath 101 usr");
        assert_eq!(calls[i + 3], "set_attr_fd 103 0x7");
        assert_eq!(calls[i + 4], "move_mount 103 /newroot/usr");
        assert!(calls.contains(&"symlink /newroot/bin -> usr/bin".to_string()));
        // The host's /etc: bound read-only as the overlay's lower layer.
        let host_etc = pos(&calls, "open_beneath 101 etc");
        assert_eq!(calls[host_etc + 3], "set_attr_fd 105 0x7");
        assert_eq!(calls[host_etc + 4], "move_mount 105 /etchost");
        let etc = pos(&calls, "mount overlay /newroot/etc");
        assert!(host_etc < etc);
        let shadow = pos(&calls, "bind /masks/file /newroot/etc/shadow");
        assert!(shadow > etc, "mask after the /etc overlay");
        assert!(calls.contains(&"bind /masks/dir /newroot/etc/ssl/private".to_string()));
        // The masks are read-only before they are used.
        assert!(pos(&calls, "set_attr /masks 0xf") < shadow);
    }

    #[test]
    fn prepared_etc_is_the_lower_layer_without_masks() {
        let p = SandboxBuilder::default().validate().unwrap();
        let calls = run_etc(&p, MountMode::Prepared, EtcMode::Prepared { slot: 2 });
        let host_etc = pos(&calls, "move_mount 9 /etchost");
        assert!(host_etc < pos(&calls, "mount overlay /newroot/etc"));
        assert!(!calls.iter().any(|c| c.contains("open_beneath 101 etc")));
        assert!(!calls.iter().any(|c| c.starts_with("bind /masks")));
    }

    #[test]
    fn the_sandbox_s_own_etc_files_are_laid_over_the_host_s_read_only() {
        let p = SandboxBuilder::default()
            .hostname("box7")
            .validate()
            .unwrap();
        for (mode, etc) in [
            (MountMode::InChild, EtcMode::Masked),
            (MountMode::Prepared, EtcMode::Prepared { slot: 2 }),
        ] {
            let calls = run_etc(&p, mode, etc);
            let fs = pos(&calls, "mount tmpfs /etcfiles");
            let hostname = pos(&calls, "create /etcfiles/hostname 644 box7\\n");
            let hosts = pos(&calls, "create /etcfiles/hosts 644 ");
            assert!(
                calls[hosts].contains("127.0.1.1\\tbox7\\n"),
                "{}",
                calls[hosts]
            );
            assert!(
                calls[hosts].contains("127.0.0.1\\tlocalhost"),
                "{}",
                calls[hosts]
            );
            // The machine-id is made in the init from fresh random bytes, per run.
            let random = pos(&calls, "random");
            let id = pos(&calls, "create /etcfiles/machine-id 444 ");
            assert_eq!(
                calls[id],
                "create /etcfiles/machine-id 444 abababababab4bababababababababab\\n",
            );
            let sealed = pos(&calls, "set_attr /etcfiles 0xf");
            assert!(fs < hostname && hostname < sealed && random < id && id < sealed);
            let overlay = pos(&calls, "mount overlay /newroot/etc");
            assert!(sealed < overlay && pos(&calls, "/etchost") < overlay);
            assert!(
                calls[overlay].ends_with("lowerdir=/etcfiles:/etchost"),
                "nanobox's files are the upper of the two layers: {}",
                calls[overlay]
            );
            assert!(
                calls[overlay].contains("RDONLY") && calls[overlay].contains("NOSUID"),
                "{}",
                calls[overlay]
            );
        }
    }

    #[test]
    fn machine_ids_are_version_4_uuids_in_hex() {
        let id = machine_id([0xff; 16]);
        assert_eq!(&id, b"ffffffffffff4fffbfffffffffffffff\n");
        let id = machine_id([0; 16]);
        assert_eq!(&id, b"00000000000040008000000000000000\n");
    }

    #[test]
    fn user_mounts_get_their_permission_after_tmp_and_before_the_final_pivot() {
        let dir = std::env::temp_dir();
        let p = SandboxBuilder::default()
            .mount(&dir, "/data/in", Permission::ReadOnly)
            .mount(&dir, "/tmp/out", Permission::ReadWrite)
            .validate()
            .unwrap();
        let canon = std::fs::canonicalize(&dir).unwrap();
        let rel = canon.to_string_lossy().trim_start_matches('/').to_string();
        let calls = run(&p, MountMode::InChild);
        let tmp = pos(&calls, "mount tmpfs /newroot/tmp");
        let mk = pos(&calls, "mkdir /newroot/data 755");
        assert!(calls[mk + 1].starts_with("mkdir /newroot/data/in"));
        let ro = pos(&calls, &format!("open_beneath 101 {rel}"));
        assert!(
            calls[ro + 3].ends_with(" 0x7"),
            "read-only mount: {}",
            calls[ro + 3]
        );
        assert!(calls[ro + 4].ends_with("/newroot/data/in"));
        let out = calls
            .iter()
            .position(|c| c.starts_with("move_mount") && c.ends_with(" /newroot/tmp/out"))
            .expect("the /tmp/out mount is attached");
        assert!(out > tmp, "a mount under /tmp lands on the private tmpfs");
        assert!(
            calls[out - 1].ends_with(" 0x6"),
            "read-write mount: nosuid+nodev only"
        );
        let pivot = pos(&calls, "pivot_root . .");
        assert!(out < pivot);
        // The new root is read-only, the host root is closed and detached at the end.
        assert!(pos(&calls, "set_attr /newroot 0x7 rec=false") < pivot);
        assert!(pos(&calls, "close 101") < pivot);
        assert_eq!(calls[pivot + 1], "detach .");
    }

    #[test]
    fn a_user_mount_is_bound_only_while_its_path_names_the_held_file() {
        let dir = std::env::temp_dir();
        let p = SandboxBuilder::default()
            .mount(&dir, "/a", Permission::ReadOnly)
            .mount(&dir, "/b", Permission::ReadWrite)
            .validate()
            .unwrap();
        let ops = build(
            &p,
            &layout(),
            MountMode::InChild,
            EtcMode::Masked,
            &[RECORDED_ID, (7, 43)],
            &PoolPlan::for_tests(),
        );
        let held: Vec<_> = ops
            .iter()
            .filter_map(|op| match op {
                Op::BindHost { held, target, .. } => Some((target.clone(), *held)),
                _ => None,
            })
            .collect();
        // System directories and /etc carry no check; each user mount its own.
        assert_eq!(held[0], (cs("/newroot/usr"), None));
        assert!(held.contains(&(cs(ETC_HOST), None)));
        let a = Held {
            mount: 0,
            id: RECORDED_ID,
        };
        assert!(held.contains(&(cs("/newroot/a"), Some(a))));
        // /b's path now names another file: the step fails with ESTALE before any clone, and
        // the descriptor it opened is closed.
        let r = Recorder::default();
        let (i, e) = execute(&ops, &r, &[]).unwrap_err();
        assert_eq!(e, libc::ESTALE);
        assert!(
            matches!(&ops[i], Op::BindHost { held: Some(h), .. } if h.mount == 1),
            "{:?}",
            ops[i]
        );
        let calls = r.calls.into_inner();
        let check = calls.len() - 3;
        assert!(calls[check].starts_with("file_id "), "{calls:#?}");
        let fd = calls[check].trim_start_matches("file_id ");
        assert_eq!(calls[check + 1], format!("close {fd}"));
        assert!(!calls
            .iter()
            .any(|c| c.starts_with("clone_tree ") && c.ends_with(fd)));
        assert!(!calls
            .iter()
            .any(|c| c.starts_with("move_mount") && c.ends_with("/newroot/b")));
        // /a was checked, then bound.
        let a = calls
            .iter()
            .position(|c| c.starts_with("move_mount") && c.ends_with(" /newroot/a"))
            .expect("/a is attached");
        assert!(calls[..a].iter().any(|c| c.starts_with("file_id ")));
    }

    #[test]
    fn prepared_mounts_are_attached_by_slot() {
        let dir = std::env::temp_dir();
        let p = SandboxBuilder::default()
            .mount(&dir, "/a", Permission::ReadOnly)
            .mount(&dir, "/b", Permission::ReadWrite)
            .validate()
            .unwrap();
        let calls = run(&p, MountMode::Prepared);
        assert!(calls.contains(&"move_mount 7 /newroot/a".to_string()));
        assert!(calls.contains(&"move_mount 8 /newroot/b".to_string()));
        assert!(!calls
            .iter()
            .any(|c| c.contains("open_beneath") && c.contains("tmp")));
    }

    #[test]
    fn proc_dev_and_namespaces_are_set_up() {
        let p = SandboxBuilder::default()
            .hostname("box1")
            .validate()
            .unwrap();
        let calls = run(&p, MountMode::InChild);
        assert!(calls.contains(&"hostname box1".to_string()));
        assert!(calls.contains(&"lo up".to_string()));
        let proc_ = pos(&calls, "mount proc /newroot/proc");
        let w = pos(&calls, "write /newroot/proc/sys/user/max_user_namespaces 0");
        let sys_ro = pos(&calls, "clone_tree_at /newroot/proc/sys");
        assert!(proc_ < w && w < sys_ro);
        for d in ["null", "zero", "urandom"] {
            pos(&calls, &format!("bind /oldroot/dev/{d} /newroot/dev/{d}"));
        }
        assert!(calls
            .iter()
            .any(|c| c.starts_with("mount devpts /newroot/dev/pts") && c.contains("newinstance")));
        assert!(calls.contains(&"set_attr /newroot/dev 0xb rec=false".to_string()));
    }

    #[test]
    fn a_failing_step_is_reported_with_its_index_and_the_host_root_closed() {
        let p = SandboxBuilder::default().validate().unwrap();
        let ops = build(
            &p,
            &layout(),
            MountMode::InChild,
            EtcMode::Masked,
            &[],
            &PoolPlan::for_tests(),
        );
        let r = Recorder {
            fail_on: Some("mount proc"),
            ..Default::default()
        };
        let (i, e) = execute(&ops, &r, &[]).unwrap_err();
        assert_eq!(e, libc::EACCES);
        assert!(
            ops[i].describe().contains("mounting proc at /proc"),
            "{}",
            ops[i].describe()
        );
        assert_eq!(r.calls.borrow().last().unwrap(), "close 101");
    }

    #[test]
    fn host_layout_masks_shadow_on_this_host() {
        let l = HostLayout::read(true);
        if Path::new("/etc/shadow").exists() {
            assert!(
                l.etc_masked_files.contains(&PathBuf::from("shadow")),
                "{l:?}"
            );
        }
        assert!(!l.etc_masked_files.contains(&PathBuf::from("passwd")));
        assert!(l.dirs.contains(&"usr".to_string()));
    }
}
