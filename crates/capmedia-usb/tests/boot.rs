//! The image boots under OVMF into a test EFI program at
//! `efi/boot/bootx64.efi`, and (MBR) under SeaBIOS through capmedia's own
//! boot code into a test program placed as `/bootmgr`; both print a marker
//! on the serial console (qemu-system-x86, ovmf). Without `/bootmgr` the
//! boot code's "no BOOTMGR" message shows on the serial console.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use capmedia_content::{Arch, EntryRole, PlanBuilder};
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};
use capmedia_testboot::{bios_boot_sector, efi_app, qemu_boot, OVMF_PATH};
use capmedia_usb::UsbRawSink;

/// A bound, not a speed assertion: OVMF under TCG on a busy box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// Writes a usb-raw image with the EFI test program and, if `bootmgr` is
/// given, the BIOS test program (position-independent: it runs at
/// 2000:0000 as well as at 0000:7C00) as `/bootmgr`.
fn image(img: &Path, scheme: &str, efi_marker: &str, bootmgr: Option<&str>) {
    let bootmgr = bootmgr.map(bios_boot_sector);
    image_with(img, scheme, efi_marker, bootmgr, 0);
}

/// As [`image`], with `bootmgr`'s bytes given and `extra` long-named files
/// in the root folder (so that it spans several clusters).
fn image_with(img: &Path, scheme: &str, efi_marker: &str, bootmgr: Option<Vec<u8>>, extra: usize) {
    let mut b = PlanBuilder::new("Configuration Manager", "usb-raw", img);
    for i in 0..extra {
        b.add_bytes(
            &format!("a root file number {i:03} with a long name.txt"),
            vec![b'x'; 700 + i],
            EntryRole::Generated,
            "boot",
        )
        .unwrap();
    }
    b.add_bytes(
        "efi/boot/bootx64.efi",
        efi_app(Arch::X64, efi_marker),
        EntryRole::Boot,
        "boot",
    )
    .unwrap();
    if let Some(bytes) = bootmgr {
        b.add_bytes("bootmgr", bytes, EntryRole::Boot, "boot")
            .unwrap();
    }
    b.add_bytes(
        "MediaLabel.txt",
        b"label=Configuration Manager".to_vec(),
        EntryRole::Generated,
        "boot",
    )
    .unwrap();
    let plan = b
        .option("partition-scheme", scheme)
        .source_date_epoch(1)
        .build()
        .unwrap();
    UsbRawSink::new()
        .write(&plan, &NoProgress, &NeverCancel)
        .unwrap();
}

fn drive(img: &Path) -> String {
    format!("file={},format=raw,snapshot=on", img.display())
}

fn boots(scheme: &str) {
    let marker = format!("CAPMEDIA-USB-{}-BOOTED", scheme.to_uppercase());
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    image(&img, scheme, &marker, Some("CAPMEDIA-USB-BIOS-BOOTMGR"));
    let r = qemu_boot(
        &["-bios", OVMF_PATH, "-drive", &drive(&img)],
        &marker,
        BOOT_TIMEOUT,
    );
    match r {
        Ok(serial) => assert!(serial.contains(&marker)),
        Err(e) => panic!("{scheme} image did not boot: {e}"),
    }
}

#[test]
fn mbr_image_boots_under_ovmf() {
    boots("mbr");
}

#[test]
fn gpt_image_boots_under_ovmf() {
    boots("gpt");
}

/// SeaBIOS (qemu's default firmware) -> capmedia's MBR code -> its FAT32
/// boot sector -> `/bootmgr` at 2000:0000, which prints the marker.
#[test]
fn mbr_image_boots_under_seabios_into_bootmgr() {
    let marker = "CAPMEDIA-USB-BIOS-BOOTMGR-RAN";
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    image(&img, "mbr", "CAPMEDIA-USB-EFI", Some(marker));
    match qemu_boot(&["-drive", &drive(&img)], marker, BOOT_TIMEOUT) {
        Ok(serial) => assert!(serial.contains(marker)),
        Err(e) => panic!("the MBR image did not boot under SeaBIOS: {e}"),
    }
}

/// Without `/bootmgr` the boot sector says so (on COM1 as well as the
/// screen) and halts.
#[test]
fn mbr_image_without_bootmgr_says_no_bootmgr_under_seabios() {
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    image(&img, "mbr", "CAPMEDIA-USB-EFI", None);
    let msg = capmedia_bootcode::MSG_NO_BOOTMGR;
    match qemu_boot(&["-drive", &drive(&img)], msg, BOOT_TIMEOUT) {
        Ok(serial) => assert!(serial.contains(msg)),
        Err(e) => panic!("no {msg:?} message: {e}"),
    }
}

/// A BOOTMGR of `size` bytes whose first instruction jumps far to the BIOS
/// test program placed at `at` (a multiple of 16): the marker shows only if
/// every cluster up to there was loaded where it belongs. The filler is
/// `hlt`, so a misplaced jump stops silently.
fn big_bootmgr(marker: &str, at: usize, size: usize) -> Vec<u8> {
    let prog = bios_boot_sector(marker);
    let seg = 0x2000u16 + u16::try_from(at / 16).unwrap();
    let mut v = vec![0xF4u8; size];
    v[..5].copy_from_slice(&[0xEA, 0x00, 0x00, seg.to_le_bytes()[0], seg.to_le_bytes()[1]]);
    v[at..at + prog.len()].copy_from_slice(&prog);
    v
}

/// A BOOTMGR of 448 KiB (hundreds of clusters, several FAT sectors) found
/// in a root folder of many clusters is loaded whole at 2000:0000.
#[test]
fn mbr_image_loads_a_large_bootmgr_under_seabios() {
    let marker = "CAPMEDIA-USB-BIOS-LARGE-BOOTMGR-RAN";
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    let size = 448 << 10;
    let bootmgr = big_bootmgr(marker, size - 4096, size);
    image_with(&img, "mbr", "CAPMEDIA-USB-EFI", Some(bootmgr), 40);
    match qemu_boot(&["-drive", &drive(&img)], marker, BOOT_TIMEOUT) {
        Ok(serial) => assert!(serial.contains(marker)),
        Err(e) => panic!("the large BOOTMGR did not run: {e}"),
    }
}

/// A BOOTMGR over 512 KiB does not fit below 0xA0000: refused with a message.
#[test]
fn mbr_image_refuses_a_bootmgr_over_512k_under_seabios() {
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    let bootmgr = big_bootmgr("NEVER", 4096, (512 << 10) + 1);
    image_with(&img, "mbr", "CAPMEDIA-USB-EFI", Some(bootmgr), 0);
    let msg = capmedia_bootcode::MSG_TOO_LARGE;
    match qemu_boot(&["-drive", &drive(&img)], msg, BOOT_TIMEOUT) {
        Ok(serial) => assert!(serial.contains(msg) && !serial.contains("NEVER")),
        Err(e) => panic!("no {msg:?} message: {e}"),
    }
}

/// The MBR code's own failures, on a copy of a good image with one field
/// broken: no active partition, a partition start past the end of the disk
/// (the read fails), a partition boot sector without its 55AA signature.
#[test]
fn mbr_code_failures_show_their_messages_under_seabios() {
    use std::io::{Seek, SeekFrom, Write};
    let out = tempfile::tempdir().unwrap();
    let good = out.path().join("good.img");
    image(&good, "mbr", "CAPMEDIA-USB-EFI", Some("NEVER"));
    let start = {
        let b = std::fs::read(&good).unwrap();
        u64::from(u32::from_le_bytes(b[454..458].try_into().unwrap()))
    };
    let cases: [(&str, u64, &[u8]); 3] = [
        (capmedia_bootcode::MSG_NO_ACTIVE, 446, &[0x00]),
        (
            capmedia_bootcode::MSG_MBR_READ_ERROR,
            454,
            &[0x00, 0xFF, 0xFF, 0x7F],
        ),
        (
            capmedia_bootcode::MSG_MISSING_OS,
            start * 512 + 510,
            &[0, 0],
        ),
    ];
    for (msg, at, bytes) in cases {
        let img = out.path().join("broken.img");
        std::fs::copy(&good, &img).unwrap();
        let mut f = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(bytes).unwrap();
        drop(f);
        match qemu_boot(&["-drive", &drive(&img)], msg, BOOT_TIMEOUT) {
            Ok(serial) => assert!(
                serial.contains(msg) && !serial.contains("NEVER") && !serial.contains("extensions"),
                "{serial}"
            ),
            Err(e) => panic!("no {msg:?} message: {e}"),
        }
    }
}
