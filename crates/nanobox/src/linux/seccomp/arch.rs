//! The CPU architectures the filter has syscall tables for, and what differs between them.
//!
//! Everything here is data and compiles on every target, so that the tests of one host check the
//! filter of every architecture. A build for any other architecture compiles too, and
//! [`Arch::native`] makes `build()` refuse it.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::Error;

/// `AUDIT_ARCH_*` values (linux/audit.h: the ELF machine, `__AUDIT_ARCH_64BIT`,
/// `__AUDIT_ARCH_LE`), the `arch` field of `struct seccomp_data`.
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(super) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// i386 (`int 0x80`, and 32-bit programs) on an x86_64 kernel.
#[cfg(test)]
pub(super) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// 32-bit ARM (AArch32 programs, on kernels with `CONFIG_COMPAT`) on an aarch64 kernel.
#[cfg(test)]
pub(super) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// x32 syscalls arrive with `AUDIT_ARCH_X86_64` and this bit in their number.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture the filter has a syscall table for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    /// Every architecture with a table.
    pub(crate) const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The name Rust and the kernel give it (`std::env::consts::ARCH`, `uname -m`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    fn from_name(name: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The architecture this build runs on; elsewhere the error `build()` returns.
    pub(crate) fn native() -> Result<Arch, Error> {
        Arch::for_build(
            std::env::consts::ARCH,
            cfg!(target_pointer_width = "64"),
            cfg!(target_endian = "little"),
        )
    }

    /// The `nanobox doctor` line: (supported, detail, fix).
    pub(crate) fn doctor() -> (bool, String, Option<String>) {
        match Arch::native() {
            Ok(a) => (
                true,
                format!("{}: the syscall filter has a table for it", a.name()),
                None,
            ),
            Err(Error::HostUnsupported { cause, fix, .. }) => (false, cause, Some(fix)),
            Err(e) => (false, e.to_string(), None),
        }
    }

    /// The table for a build for `arch`, with 64-bit pointers or not (x86_64's x32 ABI has 32-bit
    /// ones and syscall numbers of its own) and little-endian or not (aarch64_be has an `arch`
    /// value of its own, and the filters compare the low half of each argument where a
    /// little-endian machine keeps it).
    pub(super) fn for_build(
        arch: &str,
        pointers_64: bool,
        little_endian: bool,
    ) -> Result<Arch, Error> {
        match Arch::from_name(arch) {
            Some(a) if pointers_64 && little_endian => Ok(a),
            _ => {
                let build = match (pointers_64, little_endian) {
                    (true, true) => arch.to_string(),
                    (false, true) => format!("{arch} with 32-bit pointers"),
                    (true, false) => format!("big-endian {arch}"),
                    (false, false) => format!("big-endian {arch} with 32-bit pointers"),
                };
                let known: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
                Err(Error::HostUnsupported {
                    missing: "a syscall filter for this CPU architecture",
                    cause: format!(
                        "nanobox has syscall tables for {} only; this build is for {build}",
                        known.join(" and ")
                    ),
                    fix: format!("run nanobox on a 64-bit {} Linux host", known.join(" or ")),
                })
            }
        }
    }

    /// The `arch` value of its own syscalls.
    pub(super) fn audit(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The other syscall ABIs a process on this architecture can reach, by their `arch` value.
    /// The filters refuse every `arch` value but [`Arch::audit`]; the tests check these by name.
    #[cfg(test)]
    pub(super) fn compat(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => &[("i386", AUDIT_ARCH_I386)],
            Arch::Aarch64 => &[("arm", AUDIT_ARCH_ARM)],
        }
    }

    /// A bit that marks a syscall number as another ABI's under the native `arch` value (x32).
    pub(super) fn foreign_number_bit(self) -> Option<u32> {
        match self {
            Arch::X86_64 => Some(X32_SYSCALL_BIT),
            Arch::Aarch64 => None,
        }
    }

    /// seccompiler's name for it (the argument filter).
    pub(super) fn target(self) -> seccompiler::TargetArch {
        match self {
            Arch::X86_64 => seccompiler::TargetArch::x86_64,
            Arch::Aarch64 => seccompiler::TargetArch::aarch64,
        }
    }

    /// Every syscall of the architecture, (name, number).
    pub(super) fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Arch::X86_64 => super::x86_64::SYSCALLS,
            Arch::Aarch64 => super::aarch64::SYSCALLS,
        }
    }

    /// The number of syscall `name`, if the architecture has it.
    pub(super) fn nr(self, name: &str) -> Option<u32> {
        type ByName = OnceLock<HashMap<&'static str, u32>>;
        static X86_64: ByName = OnceLock::new();
        static AARCH64: ByName = OnceLock::new();
        let by_name = match self {
            Arch::X86_64 => &X86_64,
            Arch::Aarch64 => &AARCH64,
        };
        by_name
            .get_or_init(|| self.table().iter().copied().collect())
            .get(name)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_picked_by_architecture_and_any_other_is_refused_by_name() {
        assert_eq!(Arch::for_build("x86_64", true, true).unwrap(), Arch::X86_64);
        assert_eq!(
            Arch::for_build("aarch64", true, true).unwrap(),
            Arch::Aarch64
        );
        for (arch, p64, le, shown) in [
            ("riscv64", true, true, "riscv64"),
            ("x86", false, true, "x86 with 32-bit pointers"),
            ("arm", false, true, "arm with 32-bit pointers"),
            ("x86_64", false, true, "x86_64 with 32-bit pointers"),
            ("aarch64", true, false, "big-endian aarch64"),
            ("aarch64", false, true, "aarch64 with 32-bit pointers"),
            ("powerpc64", true, false, "big-endian powerpc64"),
            ("mips", false, false, "big-endian mips with 32-bit pointers"),
        ] {
            let e = Arch::for_build(arch, p64, le).unwrap_err();
            let Error::HostUnsupported {
                ref cause, ref fix, ..
            } = e
            else {
                panic!("{arch}: {e:?}");
            };
            assert!(
                cause.ends_with(&format!("this build is for {shown}")),
                "{cause}"
            );
            assert!(cause.contains("x86_64 and aarch64"), "{cause}");
            assert!(fix.contains("x86_64 or aarch64"), "{fix}");
            assert!(e.to_string().lines().count() <= 3, "{e}");
        }
    }

    #[test]
    fn this_build_has_a_table() {
        // The targets nanobox is built and tested for; any other is refused by `build()`.
        let native = Arch::native().unwrap();
        assert_eq!(native.name(), std::env::consts::ARCH);
        assert!(Arch::ALL.contains(&native));
    }

    #[test]
    fn tables_name_each_syscall_and_number_once() {
        for arch in Arch::ALL {
            let t = arch.table();
            for (i, &(name, nr)) in t.iter().enumerate() {
                assert!(
                    !t[i + 1..].iter().any(|&(n, m)| n == name || m == nr),
                    "{}: {name} {nr} twice",
                    arch.name()
                );
                assert!(nr < 1024, "{}: {name} {nr}", arch.name());
            }
            assert!(!arch.compat().iter().any(|&(_, a)| a == arch.audit()));
        }
    }
}
