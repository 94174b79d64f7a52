//! The setup syscalls the sandbox's init makes, behind a trait.
//!
//! [`Sys`] is what the mount plan executes against: [`RealSys`] makes the syscalls, and the tests
//! use a recording double, so that mount logic is checked without root or namespaces.
//!
//! Everything here may run between `clone` and `execve` in a child of a multithreaded process: no
//! allocation, no locks, only syscalls, and every string arrives prepared as a `&CStr`.

use std::ffi::CStr;
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
use rustix::mount::{
    MountFlags, MountPropagationFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
};

/// An errno value.
pub(crate) type Errno = i32;
/// A syscall result.
pub(crate) type SysResult<T> = Result<T, Errno>;

// mount_setattr(2) attribute bits (linux/mount.h).
pub(crate) const ATTR_RDONLY: u64 = 0x1;
pub(crate) const ATTR_NOSUID: u64 = 0x2;
pub(crate) const ATTR_NODEV: u64 = 0x4;
pub(crate) const ATTR_NOEXEC: u64 = 0x8;
pub(crate) const ATTR_IDMAP: u64 = 0x0010_0000;

/// The setup calls of the sandbox's init. Paths are absolute in the init's current view.
pub(crate) trait Sys {
    /// mount(2) with a filesystem type (tmpfs, proc, devpts).
    fn mount_fs(
        &self,
        fstype: &CStr,
        target: &CStr,
        flags: MountFlags,
        data: &CStr,
    ) -> SysResult<()>;
    /// Make every mount private, so nothing propagates back to the host.
    fn make_private(&self) -> SysResult<()>;
    /// mkdir(2); an existing directory is not an error.
    fn mkdir(&self, path: &CStr, mode: u32) -> SysResult<()>;
    /// Create an empty file; an existing file is not an error.
    fn touch(&self, path: &CStr, mode: u32) -> SysResult<()>;
    /// symlink(2).
    fn symlink(&self, target: &CStr, link: &CStr) -> SysResult<()>;
    /// chdir(2).
    fn chdir(&self, path: &CStr) -> SysResult<()>;
    /// pivot_root(2).
    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult<()>;
    /// umount2(2) with MNT_DETACH.
    fn detach(&self, target: &CStr) -> SysResult<()>;
    /// Open a directory as an O_PATH descriptor.
    fn open_dir(&self, path: &CStr) -> SysResult<RawFd>;
    /// Open `rel` beneath `dirfd`, refusing every symlink and any escape (openat2).
    fn open_beneath(&self, dirfd: RawFd, rel: &CStr) -> SysResult<RawFd>;
    /// The (st_dev, st_ino) of an open descriptor.
    fn file_id(&self, fd: RawFd) -> SysResult<HostId>;
    /// A detached recursive copy of the mount tree at `fd` (open_tree with OPEN_TREE_CLONE).
    fn clone_tree(&self, fd: RawFd) -> SysResult<RawFd>;
    /// A detached recursive copy of the mount tree at a path of our own tree.
    fn clone_tree_at(&self, path: &CStr) -> SysResult<RawFd>;
    /// Set mount attributes on a detached tree (recursively).
    fn set_attr_fd(&self, fd: RawFd, attr: u64) -> SysResult<()>;
    /// Set mount attributes on the mount at `path` (only that mount, or the whole tree).
    fn set_attr_path(&self, path: &CStr, attr: u64, recursive: bool) -> SysResult<()>;
    /// A plain bind mount (MS_BIND, not recursive); the new mount keeps the source's flags.
    fn bind(&self, source: &CStr, target: &CStr) -> SysResult<()>;
    /// Attach a detached tree at `target`.
    fn move_mount(&self, fd: RawFd, target: &CStr) -> SysResult<()>;
    /// close(2).
    fn close(&self, fd: RawFd);
    /// Write `data` to an existing file.
    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult<()>;
    /// Create a new file (an existing one is an error, and no symlink is followed) holding `data`.
    fn create_file(&self, path: &CStr, data: &[u8], mode: u32) -> SysResult<()>;
    /// Fill `buf` from the kernel's random source (getrandom(2)).
    fn random(&self, buf: &mut [u8]) -> SysResult<()>;
    /// sethostname(2).
    fn sethostname(&self, name: &[u8]) -> SysResult<()>;
    /// Bring the loopback interface up.
    fn loopback_up(&self) -> SysResult<()>;
}

fn errno(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

fn owned(fd: OwnedFd) -> RawFd {
    fd.into_raw_fd()
}

/// # Safety
/// `fd` must be open for the duration of the call.
unsafe fn borrow<'a>(fd: RawFd) -> BorrowedFd<'a> {
    // SAFETY: the caller promises the descriptor is open.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

/// The real syscalls.
pub(crate) struct RealSys;

impl Sys for RealSys {
    fn mount_fs(
        &self,
        fstype: &CStr,
        target: &CStr,
        flags: MountFlags,
        data: &CStr,
    ) -> SysResult<()> {
        rustix::mount::mount(fstype, target, fstype, flags, Some(data)).map_err(errno)
    }

    fn make_private(&self) -> SysResult<()> {
        rustix::mount::mount_change(
            c"/",
            MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
        )
        .map_err(errno)
    }

    fn mkdir(&self, path: &CStr, mode: u32) -> SysResult<()> {
        match rustix::fs::mkdir(path, Mode::from_raw_mode(mode)) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) => Ok(()),
            Err(e) => Err(errno(e)),
        }
    }

    fn touch(&self, path: &CStr, mode: u32) -> SysResult<()> {
        let fd = rustix::fs::open(
            path,
            OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode),
        )
        .map_err(errno)?;
        drop(fd);
        Ok(())
    }

    fn symlink(&self, target: &CStr, link: &CStr) -> SysResult<()> {
        rustix::fs::symlink(target, link).map_err(errno)
    }

    fn chdir(&self, path: &CStr) -> SysResult<()> {
        rustix::process::chdir(path).map_err(errno)
    }

    fn pivot_root(&self, new_root: &CStr, put_old: &CStr) -> SysResult<()> {
        rustix::process::pivot_root(new_root, put_old).map_err(errno)
    }

    fn detach(&self, target: &CStr) -> SysResult<()> {
        rustix::mount::unmount(target, UnmountFlags::DETACH).map_err(errno)
    }

    fn open_dir(&self, path: &CStr) -> SysResult<RawFd> {
        rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map(owned)
        .map_err(errno)
    }

    fn open_beneath(&self, dirfd: RawFd, rel: &CStr) -> SysResult<RawFd> {
        // SAFETY: the plan opened `dirfd` and keeps it open until the end of setup.
        let dir = unsafe { borrow(dirfd) };
        rustix::fs::openat2(
            dir,
            rel,
            OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map(owned)
        .map_err(errno)
    }

    fn file_id(&self, fd: RawFd) -> SysResult<HostId> {
        // SAFETY: `fd` was just opened by `open_beneath` and is closed by the caller afterwards.
        let f = unsafe { borrow(fd) };
        file_id(f).map_err(errno)
    }

    fn clone_tree(&self, fd: RawFd) -> SysResult<RawFd> {
        // SAFETY: `fd` was just opened by `open_beneath` and is closed by the caller afterwards.
        let f = unsafe { borrow(fd) };
        rustix::mount::open_tree(
            f,
            c"",
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH
                | OpenTreeFlags::AT_RECURSIVE,
        )
        .map(owned)
        .map_err(errno)
    }

    fn clone_tree_at(&self, path: &CStr) -> SysResult<RawFd> {
        rustix::mount::open_tree(
            CWD,
            path,
            OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_RECURSIVE
                | OpenTreeFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map(owned)
        .map_err(errno)
    }

    fn set_attr_fd(&self, fd: RawFd, attr: u64) -> SysResult<()> {
        mount_setattr(fd, c"", libc::AT_EMPTY_PATH | libc::AT_RECURSIVE, attr, -1)
    }

    fn set_attr_path(&self, path: &CStr, attr: u64, recursive: bool) -> SysResult<()> {
        let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
        mount_setattr(
            libc::AT_FDCWD,
            path,
            flags | libc::AT_SYMLINK_NOFOLLOW,
            attr,
            -1,
        )
    }

    fn bind(&self, source: &CStr, target: &CStr) -> SysResult<()> {
        rustix::mount::mount_bind(source, target).map_err(errno)
    }

    fn move_mount(&self, fd: RawFd, target: &CStr) -> SysResult<()> {
        // SAFETY: `fd` is a detached tree the caller owns and closes afterwards.
        let f = unsafe { borrow(fd) };
        rustix::mount::move_mount(f, c"", CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(errno)
    }

    fn close(&self, fd: RawFd) {
        // SAFETY: the caller owns `fd` and never uses it again.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }

    fn write_file(&self, path: &CStr, data: &[u8]) -> SysResult<()> {
        let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(errno)?;
        let n = rustix::io::write(&fd, data).map_err(errno)?;
        if n != data.len() {
            return Err(libc::EIO);
        }
        Ok(())
    }

    fn create_file(&self, path: &CStr, data: &[u8], mode: u32) -> SysResult<()> {
        let fd = rustix::fs::open(
            path,
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(mode),
        )
        .map_err(errno)?;
        let n = rustix::io::write(&fd, data).map_err(errno)?;
        if n != data.len() {
            return Err(libc::EIO);
        }
        Ok(())
    }

    fn random(&self, buf: &mut [u8]) -> SysResult<()> {
        let mut done = 0;
        while done < buf.len() {
            match rustix::rand::getrandom(&mut buf[done..], rustix::rand::GetRandomFlags::empty()) {
                Ok(n) => done += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(errno(e)),
            }
        }
        Ok(())
    }

    fn sethostname(&self, name: &[u8]) -> SysResult<()> {
        rustix::system::sethostname(name).map_err(errno)
    }

    fn loopback_up(&self) -> SysResult<()> {
        // SAFETY: plain syscalls on a socket we own; `ifreq` is plain data, zero is a valid value.
        unsafe {
            let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if s < 0 {
                return Err(last_errno());
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            req.ifr_name[0] = b'l' as libc::c_char;
            req.ifr_name[1] = b'o' as libc::c_char;
            req.ifr_ifru.ifru_flags =
                (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
            let r = libc::ioctl(s, libc::SIOCSIFFLAGS, &req);
            let e = last_errno();
            libc::close(s);
            if r < 0 {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// What identifies a host file while a descriptor of it is held open: (st_dev, st_ino). The open
/// descriptor keeps the inode allocated, so its number cannot be reused by another file.
pub(crate) type HostId = (u64, u64);

/// The [`HostId`] of an open descriptor (one fstat; async-signal-safe).
pub(crate) fn file_id(fd: BorrowedFd<'_>) -> Result<HostId, rustix::io::Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Open a host path as an O_PATH descriptor, refusing every symlink (and magic link) on the way.
/// For the calling process only: it may allocate (for a long path).
///
/// Where `openat2` is filtered (a container's seccomp profile, or nanobox's own filter when
/// nanobox runs inside a sandbox, where it answers ENOSYS), the same walk is made one component at
/// a time: each opened `O_PATH | O_NOFOLLOW` beneath the last, and a symlink met anywhere, the
/// last component included, is `ELOOP`.
pub(crate) fn open_no_symlinks(path: &Path) -> std::io::Result<OwnedFd> {
    match rustix::fs::openat2(
        CWD,
        path.as_os_str(),
        OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    ) {
        Err(rustix::io::Errno::NOSYS) => open_by_components(path),
        r => Ok(r?),
    }
}

/// [`open_no_symlinks`] without `openat2`, for an absolute path without `..`.
fn open_by_components(path: &Path) -> std::io::Result<OwnedFd> {
    use std::path::Component;
    let flags = OFlags::PATH | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let einval = || std::io::Error::from_raw_os_error(libc::EINVAL);
    let mut comps = path.components();
    if comps.next() != Some(Component::RootDir) {
        return Err(einval());
    }
    let mut fd = rustix::fs::open("/", flags | OFlags::DIRECTORY, Mode::empty())?;
    for c in comps {
        let name = match c {
            Component::Normal(n) => n,
            Component::CurDir => continue,
            _ => return Err(einval()),
        };
        let next = rustix::fs::openat(&fd, name, flags, Mode::empty())?;
        if rustix::fs::fstat(&next)?.st_mode & libc::S_IFMT == libc::S_IFLNK {
            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
        }
        fd = next;
    }
    Ok(fd)
}

/// Send `data` on the unix socket `sock`, with `fd` attached (SCM_RIGHTS) when there is one.
/// Async-signal-safe: one sendmsg on stack data. The hand-off of a descriptor from inside the
/// sandbox to the caller (the proxy's listener, the memory observer's seccomp listener).
pub(crate) fn send_fd(sock: RawFd, data: &[u8], fd: Option<RawFd>) -> Result<(), Errno> {
    // SAFETY: sendmsg reads the iovec, the data and the control buffer, all of which outlive the
    // call; the kernel does not write through iov_base on send.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        // Room for one descriptor, aligned for cmsghdr.
        let mut cbuf = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if let Some(fd) = fd {
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) != data.len() as isize {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// The caller's side of [`send_fd`], without waiting: the bytes received into `data` (0 when
/// nothing was sent: `WouldBlock`'s case is an `Err`) and the descriptor, close-on-exec, if one
/// came with them.
pub(crate) fn recv_fd(
    sock: &std::os::fd::OwnedFd,
    data: &mut [u8],
) -> std::io::Result<(usize, Option<std::os::fd::OwnedFd>)> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        sock,
        &mut [std::io::IoSliceMut::new(data)],
        &mut anc,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    )?;
    let fd = anc.drain().find_map(|m| match m {
        RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    Ok((got.bytes, fd))
}

/// The calling thread's errno (async-signal-safe).
pub(crate) fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// mount_setattr(2) (rustix has no wrapper for it yet).
pub(crate) fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_int,
    attr_set: u64,
    userns_fd: RawFd,
) -> SysResult<()> {
    let attr = libc::mount_attr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: if userns_fd >= 0 { userns_fd as u64 } else { 0 },
    };
    // SAFETY: `path` is NUL-terminated, `attr` lives for the call and its size is passed with it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// The kernel's `struct clone_args` up to `cgroup` (linux/sched.h, `CLONE_ARGS_SIZE_VER2`): every
/// field a 64-bit value on every architecture, so one definition serves all (the libc crate has
/// it for 64-bit targets only).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3 with `flags` and `exit_signal` (and `CLONE_PIDFD` when `pidfd` is given), falling back to
/// clone(2) where clone3 is filtered out (Docker's default seccomp profile answers ENOSYS, as
/// nanobox's own does). No stack is passed: the child continues on a copy of this one, as after
/// fork(2), and no atfork handler runs. Returns the child's pid in the parent and 0 in the child.
/// Async-signal-safe.
///
/// # Safety
/// In the child, only async-signal-safe calls may follow, and it must end in `execve` or `_exit`.
pub(crate) unsafe fn raw_clone(
    flags: u64,
    exit_signal: u64,
    pidfd: Option<&mut RawFd>,
    cgroup: Option<RawFd>,
) -> SysResult<libc::pid_t> {
    let pidfd_ptr = pidfd.map_or(std::ptr::null_mut(), |p| p as *mut RawFd);
    let flags = if pidfd_ptr.is_null() {
        flags
    } else {
        flags | libc::CLONE_PIDFD as u64
    };
    let mut args = CloneArgs {
        flags,
        pidfd: pidfd_ptr as u64,
        exit_signal,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        // CLONE_INTO_CGROUP (Linux 5.7): the child starts in that cgroup v2 directory.
        args.flags |= 0x2_0000_0000;
        args.cgroup = fd as u64;
    }
    // SAFETY: `args` is valid for the call and its size is passed; without CLONE_VM the child gets
    // a copy of the address space (the caller's contract covers what it then does).
    let mut r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 && last_errno() == libc::ENOSYS {
        // SAFETY: clone(2) takes the same flags with the exit signal in the low byte and returns
        // the pidfd through parent_tid. The raw argument order differs: x86_64 takes flags,
        // stack, parent_tid, child_tid, tls; aarch64 (CONFIG_CLONE_BACKWARDS) flags, stack,
        // parent_tid, tls, child_tid. parent_tid is third on both, and the last two are 0 here
        // (no CLONE_SETTLS, CLONE_CHILD_SETTID or CLONE_CHILD_CLEARTID), so one call serves both.
        r = unsafe {
            libc::syscall(
                libc::SYS_clone,
                flags | exit_signal,
                0usize,
                pidfd_ptr,
                0usize,
                0usize,
            )
        };
    }
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as libc::pid_t)
    }
}

/// Set the disposition of every signal (but SIGKILL, SIGSTOP and `keep`) to `SIG_DFL` or `SIG_IGN`.
/// The raw syscall, because glibc's wrappers refuse the signals it reserves for itself (32, 33),
/// which a caller can still have ignored. Async-signal-safe.
pub(crate) fn set_all_signals(ignore: bool, keep: &[libc::c_int]) {
    // The kernel's struct sigaction on x86_64 and on aarch64 (whose uapi signal.h defines
    // SA_RESTORER, which gives asm-generic's struct the field): handler, flags, restorer, mask,
    // each 8 bytes. The restorer is only read with SA_RESTORER in the flags (x86_64 requires it
    // for a handler; aarch64 otherwise returns through its vDSO); here there is no handler, the
    // flags are 0 and so is the mask. Handler 0 is SIG_DFL, 1 is SIG_IGN.
    let action: [u64; 4] = [u64::from(ignore), 0, 0, 0];
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || keep.contains(&sig) {
            continue;
        }
        // SAFETY: rt_sigaction with a valid kernel sigaction and a NULL old-action pointer.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                action.as_ptr(),
                std::ptr::null_mut::<u64>(),
                8,
            )
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn clone_args_is_the_kernel_s_version_2() {
        // CLONE_ARGS_SIZE_VER2, and the libc crate's layout where it has one.
        assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
        #[cfg(target_pointer_width = "64")]
        {
            assert_eq!(
                std::mem::size_of::<CloneArgs>(),
                std::mem::size_of::<libc::clone_args>()
            );
            assert_eq!(
                std::mem::offset_of!(CloneArgs, cgroup),
                std::mem::offset_of!(libc::clone_args, cgroup)
            );
            assert_eq!(
                std::mem::offset_of!(CloneArgs, exit_signal),
                std::mem::offset_of!(libc::clone_args, exit_signal)
            );
        }
    }

    #[test]
    fn the_walk_without_openat2_opens_what_the_path_names_and_refuses_every_symlink() {
        let base = std::env::temp_dir().join(format!("nb-sys-walk-{}", std::process::id()));
        std::fs::create_dir_all(base.join("real/sub")).unwrap();
        std::os::unix::fs::symlink(base.join("real"), base.join("link")).unwrap();
        let base = std::fs::canonicalize(&base).unwrap();
        let fd = open_by_components(&base.join("real/sub")).unwrap();
        let m = std::fs::metadata(base.join("real/sub")).unwrap();
        assert_eq!(file_id(fd.as_fd()).unwrap(), (m.dev(), m.ino()));
        for p in [base.join("link"), base.join("link/sub")] {
            let e = open_by_components(&p).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{}", p.display());
        }
        let e = open_by_components(Path::new("relative/path")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        let e = open_by_components(&base.join("missing")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
