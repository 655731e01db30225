//! Small boot programs for tests, generated as bytes.
//!
//! capmedia's tests (and the bundled sample distribution point) need boot files
//! that *really boot* and print something checkable, but nothing here may be
//! fetched prebuilt and no UEFI Rust target is available. So this crate
//! hand-assembles them: an El Torito no-emulation BIOS program (in place of
//! `etfsboot.com`/`bootmgr`), UEFI applications (in place of `bootmgr.efi` and
//! `bootx64.efi`), a PE DLL stub (in place of `kernel32.dll`, so wimlib reads an
//! architecture), an ADK-like `Media` folder made of them, and [`qemu_boot`] to
//! boot a medium and wait for the marker on the serial console.
//!
//! Every output is a pure function of its arguments: no timestamps, no randomness.

mod asm;
mod bios;
mod efi;
pub mod pe;
mod qemu;

use std::path::Path;

use capmedia_content::Arch;

pub use bios::BIOS_BOOT_SIZE;
pub use efi::{efi_machine, MAX_EFI_MARKER};
pub use qemu::{qemu_boot, require_tool, QemuError, OVMF_PATH, QEMU_PROGRAM};

/// El Torito no-emulation BIOS boot program (stands in for etfsboot.com): loaded by
/// the BIOS at 0000:7C00 (load segment 0), at most 8 sectors of 512 bytes. It writes
/// `marker` + "\r\n" to COM1 (I/O port 0x3F8, polling the LSR at 0x3FD) and through
/// int 10h AH=0Eh, then `cli; hlt` forever. Returns exactly 2048 bytes (padded).
/// A marker too long to fit is cut (at a char boundary).
pub fn bios_boot_sector(marker: &str) -> Vec<u8> {
    bios::bios_boot_sector(marker)
}

/// A valid UEFI application (PE32+ for X64/Arm64, PE32 for X86; subsystem 10;
/// machine 0x8664 / 0xAA64 / 0x014C), sections page-aligned, SizeOfImage /
/// SizeOfHeaders / CheckSum right, an empty base-relocation block and
/// position-independent code so OVMF can load it anywhere.
///
/// X64: writes `marker`+"\r\n" directly to COM1 and via
/// `SystemTable->ConOut->OutputString` (UTF-16 copy in the image), then calls
/// `RuntimeServices->ResetSystem(EfiResetShutdown)` so qemu exits. Other
/// architectures get a body that just returns EFI_SUCCESS (we cannot run them).
/// Markers longer than [`MAX_EFI_MARKER`] bytes are cut; NUL characters dropped.
pub fn efi_app(arch: Arch, marker: &str) -> Vec<u8> {
    efi::efi_app(arch, marker)
}

/// A minimal but valid PE DLL of the given machine type (PE32+ for 0x8664,
/// 0xAA64, 0x0200, PE32 otherwise); used as Windows/System32/kernel32.dll so
/// `wimlib-imagex capture` records `<ARCH>` (0x014C x86, 0x8664 x64, 0xAA64 arm64).
pub fn pe_stub(machine: u16) -> Vec<u8> {
    efi::pe_stub(machine)
}

/// The PE machine type of Windows binaries for `arch` (what [`pe_stub`] takes).
pub fn windows_machine(arch: Arch) -> u16 {
    match arch {
        Arch::Arm => pe::MACHINE_ARMNT,
        other => efi_machine(other),
    }
}

/// Contents of the placeholder files (`boot/bcd`, `boot/boot.sdi`, ...): short,
/// recognisable, deterministic text. They are never interpreted by our boot
/// programs; they exist so the layout matches the ADK's.
fn placeholder(name: &str, arch: Arch) -> Vec<u8> {
    format!("capmedia-testboot placeholder: {name} ({arch})\n").into_bytes()
}

/// Writes an ADK-like Windows PE `Media` folder for `arch` into `dir` (created if
/// needed): `bootmgr` (BIOS boot program), `bootmgr.efi` (EFI app),
/// `boot/bcd`, `boot/boot.sdi` (placeholders), `efi/boot/<Arch::uefi_boot_file()>`
/// (EFI app), `efi/microsoft/boot/bcd` (placeholder) and `etfsboot.com` (BIOS boot
/// program). Same arguments, same bytes.
pub fn write_media_folder(dir: &Path, arch: Arch, marker: &str) -> std::io::Result<()> {
    let bios = bios_boot_sector(marker);
    let efi = efi_app(arch, marker);
    let files: [(&str, Vec<u8>); 7] = [
        ("bootmgr", bios.clone()),
        ("bootmgr.efi", efi.clone()),
        ("boot/bcd", placeholder("boot/bcd", arch)),
        ("boot/boot.sdi", placeholder("boot/boot.sdi", arch)),
        (
            "efi/microsoft/boot/bcd",
            placeholder("efi/microsoft/boot/bcd", arch),
        ),
        ("etfsboot.com", bios),
        ("", efi), // efi/boot/<uefi_boot_file>, named below
    ];
    for (rel, bytes) in files {
        let path = if rel.is_empty() {
            dir.join("efi").join("boot").join(arch.uefi_boot_file())
        } else {
            rel.split('/').fold(dir.to_path_buf(), |p, c| p.join(c))
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}
