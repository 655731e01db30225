//! Boots the generated programs under qemu (SeaBIOS and OVMF) and checks that
//! the marker reaches the serial console.

#![allow(clippy::unwrap_used)] // tests may unwrap (HELPERS.md)

mod common;

use std::process::Command;
use std::time::Duration;

use capmedia_content::Arch;
use capmedia_testboot::{bios_boot_sector, efi_app, qemu_boot, OVMF_PATH};
use common::{run, tool};

/// A bound, not a speed assertion: OVMF under TCG on a busy 2-core box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

#[test]
fn x64_efi_app_boots_under_ovmf_and_prints_marker() {
    let mkfs = tool("mkfs.fat", "dosfstools");
    let mmd = tool("mmd", "mtools");
    let mcopy = tool("mcopy", "mtools");
    assert!(
        std::path::Path::new(OVMF_PATH).is_file(),
        "{OVMF_PATH} missing: install the Debian package ovmf"
    );

    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("BOOTX64.EFI");
    let marker = "CAPMEDIA-EFI-MARKER-7d1e";
    std::fs::write(&app, efi_app(Arch::X64, marker)).unwrap();
    let img = dir.path().join("esp.img");
    run(Command::new(mkfs).arg("-C").arg(&img).arg("8192"));
    run(Command::new(&mmd)
        .arg("-i")
        .arg(&img)
        .args(["::/EFI", "::/EFI/BOOT"]));
    run(Command::new(&mcopy)
        .arg("-i")
        .arg(&img)
        .arg(&app)
        .arg("::/EFI/BOOT/BOOTX64.EFI"));

    let drive = format!("file={},format=raw,if=ide", img.display());
    let out = qemu_boot(
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
        marker,
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains(marker));
}

#[test]
fn bios_boot_sector_boots_under_seabios_as_el_torito_no_emulation() {
    let xorriso = tool("xorriso", "xorriso");
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let marker = "CAPMEDIA-BIOS-MARKER-41c9";
    std::fs::write(tree.join("etfsboot.com"), bios_boot_sector(marker)).unwrap();
    let iso = dir.path().join("boot.iso");
    run(Command::new(xorriso)
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-b",
            "etfsboot.com",
            "-no-emul-boot",
            "-boot-load-size",
            "8",
            "-o",
        ])
        .arg(&iso)
        .arg(&tree));
    let iso = iso.to_str().unwrap();
    let out = qemu_boot(
        &["-cdrom", iso, "-boot", "d", "-net", "none"],
        marker,
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains(marker));
}

#[test]
fn qemu_boot_reports_missing_firmware_naming_ovmf() {
    let err = qemu_boot(
        &["-bios", "/nonexistent/OVMF.fd"],
        "x",
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("ovmf"), "{err}");
}
