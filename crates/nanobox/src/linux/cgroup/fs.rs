//! Every file access of the cgroup code, behind [`CgroupFs`].
//!
//! [`RealFs`] talks to the kernel. The tests use a fixture implementation (in `tests.rs`) over a
//! temporary tree laid out like `/sys/fs/cgroup`, which mimics what the kernel does on `mkdir`
//! (interface files appear) and `rmdir` (they go, and a cgroup with processes or children is busy).

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Access, AtFlags, Mode, OFlags, CWD};

/// The file operations the cgroup code makes. Paths are absolute (fixture roots included).
pub(crate) trait CgroupFs: Send + Sync {
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Write `data` to an existing file in one write(2) (cgroup files take one value per write).
    fn write(&self, path: &Path, data: &str) -> io::Result<()>;
    /// mkdir(2), mode 0755.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// rmdir(2) of a cgroup directory (the kernel removes its interface files with it).
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    /// Whether the path exists.
    fn exists(&self, path: &Path) -> bool;
    /// Whether we may write the path (effective ids; a read-only mount is not writable).
    fn writable(&self, path: &Path) -> bool;
    /// The names in a directory.
    fn list(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// A directory opened `O_RDONLY | O_DIRECTORY | O_CLOEXEC` (what `CLONE_INTO_CGROUP` takes).
    fn open_dir(&self, path: &Path) -> io::Result<OwnedFd>;
    /// A file opened `O_RDONLY | O_CLOEXEC`.
    fn open_read(&self, path: &Path) -> io::Result<OwnedFd>;
    /// A file opened `O_WRONLY | O_CLOEXEC`.
    fn open_write(&self, path: &Path) -> io::Result<OwnedFd>;
    /// Send SIGKILL to a process.
    fn kill(&self, pid: i32) -> io::Result<()>;
    /// The start time of a live process (field 22 of `/proc/PID/stat`, clock ticks since boot),
    /// or `None` when no such process exists.
    fn start_time(&self, pid: i32) -> Option<u64>;
}

/// The kernel's cgroup filesystems and `/proc`.
pub(crate) struct RealFs;

impl CgroupFs for RealFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, data: &str) -> io::Result<()> {
        let fd = self.open_write(path)?;
        let n = rustix::io::write(&fd, data.as_bytes())?;
        if n != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write to {}", path.display()),
            ));
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        Ok(rustix::fs::mkdir(path, Mode::from_raw_mode(0o755))?)
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        Ok(rustix::fs::rmdir(path)?)
    }

    fn exists(&self, path: &Path) -> bool {
        rustix::fs::accessat(CWD, path, Access::EXISTS, AtFlags::EACCESS).is_ok()
    }

    fn writable(&self, path: &Path) -> bool {
        rustix::fs::accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS).is_ok()
    }

    fn list(&self, path: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn open_dir(&self, path: &Path) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    fn open_read(&self, path: &Path) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    fn open_write(&self, path: &Path) -> io::Result<OwnedFd> {
        Ok(rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?)
    }

    fn kill(&self, pid: i32) -> io::Result<()> {
        let pid = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
        match rustix::process::kill_process(pid, rustix::process::Signal::KILL) {
            Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn start_time(&self, pid: i32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        super::parse::stat_start_time(&stat)
    }
}
