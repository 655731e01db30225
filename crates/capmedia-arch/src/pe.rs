//! Reading the machine type of a PE file (bootmgr.efi, efi/boot/boot*.efi, ...).
//!
//! Only the fixed headers are read: the DOS header's `e_lfanew` (0x3C), the
//! `PE\0\0` signature there, the COFF machine field right after it, and the
//! optional header's magic and subsystem. Every offset is checked against the
//! file length before it is used, so a hostile `e_lfanew` is an error.

use std::io::{Read, Seek, SeekFrom};

use capmedia_content::Arch;
use serde::Serialize;

use crate::wim::{le_u16, le_u32, read_up_to};
use crate::ArchError;

/// COFF machine: Intel 386.
pub const MACHINE_I386: u16 = 0x014C;
/// COFF machine: AMD64.
pub const MACHINE_AMD64: u16 = 0x8664;
/// COFF machine: ARM64.
pub const MACHINE_ARM64: u16 = 0xAA64;
/// COFF machine: ARM Thumb-2 (Windows on 32-bit ARM).
pub const MACHINE_ARMNT: u16 = 0x01C4;
/// COFF machine: ARM (older tools write this for 32-bit ARM).
pub const MACHINE_ARM: u16 = 0x01C0;
/// COFF machine: Itanium.
pub const MACHINE_IA64: u16 = 0x0200;
/// Optional-header subsystem of a UEFI application (what boot*.efi are).
pub const SUBSYSTEM_EFI_APPLICATION: u16 = 10;

const OPT_MAGIC_PE32: u16 = 0x10B;
const OPT_MAGIC_PE32_PLUS: u16 = 0x20B;
/// Subsystem sits at the same offset in PE32 and PE32+ optional headers.
const OPT_SUBSYSTEM_OFFSET: u64 = 68;

/// What capmedia reads from a PE file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeInfo {
    /// The raw COFF machine field.
    pub machine: u16,
    /// The architecture that machine means.
    pub arch: Arch,
    /// Optional-header magic 0x20B (64-bit image) rather than 0x10B.
    pub pe32_plus: bool,
    /// The optional header's subsystem (10 = EFI application).
    pub subsystem: u16,
}

impl PeInfo {
    /// Whether this is a UEFI application, as boot loaders are.
    pub fn is_efi_application(&self) -> bool {
        self.subsystem == SUBSYSTEM_EFI_APPLICATION
    }
}

/// The architecture a COFF machine value means, if capmedia knows it.
pub fn arch_from_machine(machine: u16) -> Option<Arch> {
    match machine {
        MACHINE_I386 => Some(Arch::X86),
        MACHINE_AMD64 => Some(Arch::X64),
        MACHINE_ARM64 => Some(Arch::Arm64),
        MACHINE_ARMNT | MACHINE_ARM => Some(Arch::Arm),
        MACHINE_IA64 => Some(Arch::Ia64),
        _ => None,
    }
}

/// Reads a PE file's machine, optional-header magic and subsystem.
pub fn read_pe<R: Read + Seek>(r: &mut R) -> Result<PeInfo, ArchError> {
    let len = r.seek(SeekFrom::End(0))?;
    if len == 0 {
        return Err(ArchError::Empty);
    }
    r.seek(SeekFrom::Start(0))?;
    let mut dos = [0u8; 0x40];
    let got = read_up_to(r, &mut dos)?;
    if got < 2 || dos[..2] != *b"MZ" {
        return Err(ArchError::NotPe);
    }
    if got < dos.len() {
        return Err(ArchError::PeTruncated {
            what: "the DOS header",
            needed: dos.len() as u64,
            len,
        });
    }
    let e_lfanew = le_u32(&dos[0x3C..0x40]);
    // Signature (4) + COFF header (20) must fit.
    let coff_end = u64::from(e_lfanew) + 24;
    if coff_end > len {
        return Err(ArchError::BadLfanew { e_lfanew, len });
    }
    r.seek(SeekFrom::Start(u64::from(e_lfanew)))?;
    let mut nt = [0u8; 24];
    r.read_exact(&mut nt)?;
    if nt[..4] != *b"PE\0\0" {
        return Err(ArchError::NoPeSignature { e_lfanew });
    }
    let machine = le_u16(&nt[4..6]);
    let opt_size = le_u16(&nt[20..22]);
    let arch = arch_from_machine(machine).ok_or(ArchError::UnknownMachine { machine })?;
    if u64::from(opt_size) < OPT_SUBSYSTEM_OFFSET + 2 {
        return Err(ArchError::NoOptionalHeader { size: opt_size });
    }
    let needed = coff_end + OPT_SUBSYSTEM_OFFSET + 2;
    if needed > len {
        return Err(ArchError::PeTruncated {
            what: "the optional header",
            needed,
            len,
        });
    }
    let mut opt = [0u8; OPT_SUBSYSTEM_OFFSET as usize + 2];
    r.read_exact(&mut opt)?;
    let magic = le_u16(&opt[0..2]);
    let pe32_plus = match magic {
        OPT_MAGIC_PE32 => false,
        OPT_MAGIC_PE32_PLUS => true,
        _ => return Err(ArchError::BadOptionalMagic { magic }),
    };
    let subsystem = le_u16(&opt[OPT_SUBSYSTEM_OFFSET as usize..]);
    Ok(PeInfo {
        machine,
        arch,
        pe32_plus,
        subsystem,
    })
}
