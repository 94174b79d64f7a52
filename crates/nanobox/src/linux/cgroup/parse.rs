//! Parsers for the cgroup interface files and `/proc` files the module reads.
//!
//! [`parse_cpu_usage_ns`] is the one that may run between fork and exec (the sandbox's init preads
//! the CPU usage file to enforce a whole-sandbox CPU-time budget): it allocates nothing, takes no
//! lock and cannot panic.

/// Parse leading ASCII digits of `buf` (after optional spaces) as a u64; `None` when there are
/// none or the value overflows.
fn leading_u64(buf: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < buf.len() && buf[i] == b' ' {
        i += 1;
    }
    let start = i;
    let mut v: u64 = 0;
    while i < buf.len() && buf[i].is_ascii_digit() {
        v = v.checked_mul(10)?.checked_add(u64::from(buf[i] - b'0'))?;
        i += 1;
    }
    if i == start {
        None
    } else {
        Some(v)
    }
}

/// The value of the line `key N` in a flat-keyed file (`cpu.stat`, `memory.events`,
/// `memory.oom_control`, `pids.events`), without allocating.
pub(crate) fn keyed_u64(buf: &[u8], key: &[u8]) -> Option<u64> {
    let mut rest = buf;
    loop {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let line = &rest[..end];
        if line.len() > key.len() && line.starts_with(key) && line[key.len()] == b' ' {
            return leading_u64(&line[key.len() + 1..]);
        }
        if end >= rest.len() {
            return None;
        }
        rest = &rest[end + 1..];
    }
}

/// CPU time used by a cgroup, in nanoseconds, from the content of its CPU usage file:
/// `cpu.stat` (`usage_usec N`, microseconds) when `v2`, else v1 `cpuacct.usage` (one number, ns).
///
/// Allocation-free and panic-free: safe to call between fork and exec.
pub(crate) fn parse_cpu_usage_ns(buf: &[u8], v2: bool) -> Option<u64> {
    if v2 {
        keyed_u64(buf, b"usage_usec")?.checked_mul(1000)
    } else {
        leading_u64(buf)
    }
}

/// A single-number file (`memory.peak`, `memory.max_usage_in_bytes`, `pids.current`); "max" is
/// `None`.
pub(crate) fn single_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Field 22 (starttime) of `/proc/PID/stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last ')'.
pub(crate) fn stat_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // After ')' come field 3 (state) onwards; starttime is field 22, the 20th of these.
    after.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn pids(text: &str) -> Vec<i32> {
    text.split_ascii_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Decode the octal escapes (`\040` for a space, ...) the kernel writes in `/proc/*/mountinfo`.
pub(crate) fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/self/mountinfo`, the fields this module needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountLine {
    /// The path of the mounted filesystem that is the mount's root ("/" for a whole cgroup tree).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: String,
    /// Read-only mount.
    pub read_only: bool,
    /// Filesystem type: "cgroup" or "cgroup2" matter here.
    pub fstype: String,
    /// Superblock options: for cgroup v1 the controllers of the hierarchy.
    pub super_opts: Vec<String>,
}

/// The cgroup and cgroup2 mounts of a mountinfo text.
pub(crate) fn cgroup_mounts(mountinfo: &str) -> Vec<MountLine> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if fields.len() < sep + 3 || sep < 6 {
            continue;
        }
        let fstype = fields[sep + 1];
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        out.push(MountLine {
            root: unescape_mountinfo(fields[3]),
            mount_point: unescape_mountinfo(fields[4]),
            read_only: fields[5].split(',').any(|o| o == "ro"),
            fstype: fstype.to_string(),
            super_opts: fields
                .get(sep + 3)
                .map(|o| o.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    out
}

/// One line of `/proc/self/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupLine {
    /// 0 for the v2 hierarchy.
    pub id: u32,
    /// The controllers of a v1 hierarchy (`name=systemd` included as written); empty for v2.
    pub controllers: Vec<String>,
    /// The caller's cgroup, relative to the hierarchy's root (as seen in its cgroup namespace).
    pub path: String,
}

/// The lines of a `/proc/self/cgroup` text.
pub(crate) fn cgroup_lines(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let ctrl = it.next()?;
            let path = it.next()?;
            Some(CgroupLine {
                id,
                controllers: ctrl
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: path.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_cpu_usage_parses_both_formats() {
        let v2 = b"usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n";
        assert_eq!(parse_cpu_usage_ns(v2, true), Some(1_234_000));
        // A key that is a prefix of another is not confused with it.
        let v2b = b"usage_usec_x 9\nusage_usec 7\n";
        assert_eq!(parse_cpu_usage_ns(v2b, true), Some(7000));
        assert_eq!(
            parse_cpu_usage_ns(b"2338335536159\n", false),
            Some(2_338_335_536_159)
        );
        assert_eq!(parse_cpu_usage_ns(b"", false), None);
        assert_eq!(parse_cpu_usage_ns(b"user_usec 5\n", true), None);
        // A truncated read (buffer ends mid-line) still parses what is there.
        assert_eq!(parse_cpu_usage_ns(b"usage_usec 12", true), Some(12_000));
        assert_eq!(parse_cpu_usage_ns(b"99999999999999999999999", false), None);
    }

    #[test]
    fn cgroup_keyed_values() {
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_u64(oom.as_bytes(), b"oom_kill"), Some(3));
        assert_eq!(keyed_u64(oom.as_bytes(), b"under_oom"), Some(0));
        assert_eq!(
            keyed_u64(b"low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n", b"oom"),
            Some(1)
        );
    }

    #[test]
    fn cgroup_stat_start_time_counts_from_the_last_paren() {
        let stat = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 \
                    1000 100 18446744073709551615";
        assert_eq!(stat_start_time(stat), Some(98765));
    }

    #[test]
    fn cgroup_mountinfo_and_proc_cgroup() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
                  41 31 0:38 /sub /sys/fs/cgroup/uni\\040fied ro,relatime shared:5 - cgroup2 cgroup2 rw\n";
        let m = cgroup_mounts(mi);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].super_opts, ["rw", "cpu", "cpuacct"]);
        assert_eq!(m[1].mount_point, "/sys/fs/cgroup/uni fied");
        assert_eq!(m[1].root, "/sub");
        assert!(m[1].read_only);
        let cg = cgroup_lines("4:memory:/a/b\n1:cpu,cpuacct:/\n0::/user.slice/x.scope\n");
        assert_eq!(cg[0].controllers, ["memory"]);
        assert_eq!(cg[1].controllers, ["cpu", "cpuacct"]);
        assert_eq!(cg[2].id, 0);
        assert!(cg[2].controllers.is_empty());
        assert_eq!(cg[2].path, "/user.slice/x.scope");
    }
}
