use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A processor architecture as Windows PE and WIM files name it.
///
/// capmedia builds media for x86, x64 and arm64. ARM (32-bit) and IA64 are
/// recognised so that an image built for them is reported by name rather than
/// as garbage, but [`Arch::is_supported`] is false for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    X86,
    X64,
    Arm64,
    Arm,
    Ia64,
}

impl Arch {
    /// Every architecture, supported or not.
    pub const ALL: [Arch; 5] = [Arch::X86, Arch::X64, Arch::Arm64, Arch::Arm, Arch::Ia64];

    /// Whether capmedia can build media for this architecture.
    pub fn is_supported(self) -> bool {
        matches!(self, Arch::X86 | Arch::X64 | Arch::Arm64)
    }

    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86 => "x86",
            Arch::X64 => "x64",
            Arch::Arm64 => "arm64",
            Arch::Arm => "arm",
            Arch::Ia64 => "ia64",
        }
    }

    /// The file name UEFI firmware loads from `\EFI\BOOT\` for this
    /// architecture (UEFI spec, "removable media boot behaviour").
    pub fn uefi_boot_file(self) -> &'static str {
        match self {
            Arch::X86 => "bootia32.efi",
            Arch::X64 => "bootx64.efi",
            Arch::Arm64 => "bootaa64.efi",
            Arch::Arm => "bootarm.efi",
            Arch::Ia64 => "bootia64.efi",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text given was not an architecture name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown architecture {0:?} (expected x86, x64 or arm64)")]
pub struct ArchParseError(pub String);

impl FromStr for Arch {
    type Err = ArchParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Accept the spellings Windows tools use as well as ours.
        match s.to_ascii_lowercase().as_str() {
            "x86" | "i386" | "i686" | "ia32" => Ok(Arch::X86),
            "x64" | "amd64" | "x86_64" | "x86-64" => Ok(Arch::X64),
            "arm64" | "aarch64" | "aa64" => Ok(Arch::Arm64),
            "arm" | "arm32" => Ok(Arch::Arm),
            "ia64" | "itanium" => Ok(Arch::Ia64),
            _ => Err(ArchParseError(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in Arch::ALL {
            assert_eq!(a.as_str().parse::<Arch>(), Ok(a));
        }
        assert_eq!("AMD64".parse::<Arch>(), Ok(Arch::X64));
        assert!("mips".parse::<Arch>().is_err());
    }

    #[test]
    fn arm_and_ia64_are_recognised_but_unsupported() {
        assert!(!Arch::Arm.is_supported());
        assert!(!Arch::Ia64.is_supported());
        assert!(Arch::X86.is_supported() && Arch::X64.is_supported() && Arch::Arm64.is_supported());
    }
}
