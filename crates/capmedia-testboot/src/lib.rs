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
/// `marker` + "\r\n" through int 10h AH=0Eh, waits four timer ticks (so SeaBIOS's
/// serial mirror of the screen has flushed), writes it again to COM1 (I/O port
/// 0x3F8, polling the LSR at 0x3FD), then halts with interrupts on, forever.
/// Returns exactly 2048 bytes (padded).
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

/// What [`write_boot_image_tree`] puts in a boot image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootImageShape {
    /// `Windows/Boot/DVD/{PCAT,EFI}/BCD` (ADK-built images often lack them).
    pub bcds: bool,
    /// `Windows/Boot/DVD/PCAT/boot.sdi`.
    pub boot_sdi: bool,
    /// The `_EX` boot managers signed by the Windows UEFI CA 2023.
    pub ca2023: bool,
}

impl Default for BootImageShape {
    fn default() -> Self {
        BootImageShape {
            bcds: false,
            boot_sdi: true,
            ca2023: true,
        }
    }
}

/// UTF-16LE with a byte-order mark, as Windows' inbox INFs are stored.
fn utf16le(text: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

/// A network driver INF shaped like Windows' inbox ones (UTF-16LE,
/// `[Strings]` tokens, decorated Models sections) for the virtio and e1000
/// NICs qemu emulates.
pub fn net_inf() -> Vec<u8> {
    utf16le(
        "; capmedia test driver: network adapters qemu emulates\r\n\
         [Version]\r\n\
         Signature   = \"$WINDOWS NT$\"\r\n\
         Class       = Net\r\n\
         ClassGUID   = {4d36e972-e325-11ce-bfc1-08002be10318}\r\n\
         Provider    = %Vendor%\r\n\
         DriverVer   = 06/21/2024,100.95.104.26000\r\n\
         \r\n\
         [Manufacturer]\r\n\
         %Vendor% = Devices, NTx86, NTamd64, NTarm64\r\n\
         \r\n\
         [Devices.NTx86]\r\n\
         %Virtio% = Install, PCI\\VEN_1AF4&DEV_1000, PCI\\VEN_1AF4&DEV_1041\r\n\
         %E1000%  = Install, PCI\\VEN_8086&DEV_100E\r\n\
         \r\n\
         [Devices.NTamd64]\r\n\
         %Virtio% = Install, PCI\\VEN_1AF4&DEV_1000, \\\r\n\
                    PCI\\VEN_1AF4&DEV_1041\r\n\
         %E1000%  = Install, PCI\\VEN_8086&DEV_100E\r\n\
         \r\n\
         [Devices.NTarm64]\r\n\
         %Virtio% = Install, PCI\\VEN_1AF4&DEV_1041\r\n\
         \r\n\
         [Strings]\r\n\
         Vendor = \"capmedia test drivers\"\r\n\
         Virtio = \"Virtio network adapter\"\r\n\
         E1000  = \"Intel(R) PRO/1000 MT network connection\"\r\n",
    )
}

/// A mass-storage driver INF (virtio SCSI), UTF-8 as OEM INFs often are.
pub fn storage_inf() -> Vec<u8> {
    "[Version]\r\n\
     Signature = \"$WINDOWS NT$\"\r\n\
     Class = SCSIAdapter\r\n\
     ClassGUID = {4D36E97B-E325-11CE-BFC1-08002BE10318}\r\n\
     Provider = %Vendor%\r\n\
     DriverVer = 06/21/2024,100.95.104.26000\r\n\
     [Manufacturer]\r\n\
     %Vendor% = Devices, NTx86, NTamd64, NTarm64\r\n\
     [Devices.NTx86]\r\n\
     %Scsi% = Install, PCI\\VEN_1AF4&DEV_1004, PCI\\VEN_1AF4&DEV_1048\r\n\
     [Devices.NTamd64]\r\n\
     %Scsi% = Install, PCI\\VEN_1AF4&DEV_1004, PCI\\VEN_1AF4&DEV_1048\r\n\
     [Devices.NTarm64]\r\n\
     %Scsi% = Install, PCI\\VEN_1AF4&DEV_1048\r\n\
     [Strings]\r\n\
     Vendor = \"capmedia test drivers\"\r\n\
     Scsi = \"Virtio SCSI pass-through controller\"\r\n"
        .as_bytes()
        .to_vec()
}

/// The marker the `_EX` (UEFI CA 2023) boot manager of
/// [`write_boot_image_tree`] prints instead of `marker`.
pub fn ca2023_marker(marker: &str) -> String {
    format!("{marker} (UEFI CA 2023)")
}

/// Writes the tree of a Windows PE boot image for `arch` as Configuration
/// Manager boot images hold it (product notes §5), with test programs in
/// place of Windows' boot managers: `Windows/Boot/PCAT/bootmgr` and
/// `Windows/Boot/DVD/PCAT/etfsboot.com` (BIOS programs printing `marker`),
/// `Windows/Boot/EFI/bootmgfw.efi` and `bootmgr.efi` (EFI apps printing
/// `marker`), the `_EX` ones printing [`ca2023_marker`], `boot.sdi`, fonts,
/// BCDs (placeholders, if asked), a network and a storage driver INF, and
/// `Windows/System32/kernel32.dll` with `arch`'s PE machine (from which
/// `wimlib-imagex capture` writes the image's `<ARCH>`). Same arguments,
/// same bytes. Capture it with `wimlib-imagex capture DIR WIM --boot`.
pub fn write_boot_image_tree(
    dir: &Path,
    arch: Arch,
    marker: &str,
    shape: BootImageShape,
) -> std::io::Result<()> {
    let bios = bios_boot_sector(marker);
    let efi = efi_app(arch, marker);
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (
            "Windows/System32/kernel32.dll",
            pe_stub(windows_machine(arch)),
        ),
        ("Windows/Boot/EFI/bootmgfw.efi", efi.clone()),
        ("Windows/Boot/EFI/bootmgr.efi", efi),
        ("Windows/Boot/Fonts/wgl4_boot.ttf", placeholder("wgl4_boot.ttf", arch)),
        ("Windows/Boot/Fonts/segmono_boot.ttf", placeholder("segmono_boot.ttf", arch)),
        ("Windows/INF/nettest.inf", net_inf()),
        (
            "Windows/System32/DriverStore/FileRepository/vioscsi.inf_amd64_0123456789abcdef/vioscsi.inf",
            storage_inf(),
        ),
    ];
    if matches!(arch, Arch::X86 | Arch::X64) {
        files.push(("Windows/Boot/PCAT/bootmgr", bios.clone()));
        files.push(("Windows/Boot/DVD/PCAT/etfsboot.com", bios));
    }
    if shape.boot_sdi {
        files.push((
            "Windows/Boot/DVD/PCAT/boot.sdi",
            placeholder("boot.sdi", arch),
        ));
    }
    if shape.bcds {
        files.push(("Windows/Boot/DVD/PCAT/BCD", placeholder("PCAT/BCD", arch)));
        files.push(("Windows/Boot/DVD/EFI/BCD", placeholder("EFI/BCD", arch)));
    }
    if shape.ca2023 {
        let ex = efi_app(arch, &ca2023_marker(marker));
        files.push(("Windows/Boot/EFI_EX/bootmgfw_EX.efi", ex.clone()));
        files.push(("Windows/Boot/EFI_EX/bootmgr_EX.efi", ex));
        files.push((
            "Windows/Boot/Fonts_EX/wgl4_boot_EX.ttf",
            placeholder("wgl4_boot_EX.ttf", arch),
        ));
    }
    for (rel, bytes) in files {
        let path = rel.split('/').fold(dir.to_path_buf(), |p, c| p.join(c));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}
