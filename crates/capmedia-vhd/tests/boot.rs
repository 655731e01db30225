//! The VHD boots: OVMF (Debian: ovmf, qemu-system-x86) attaches it as
//! `format=vpc` and runs the test EFI program from the FAT32 partition;
//! SeaBIOS (qemu's default firmware) boots an MBR VHD through capmedia's
//! boot code (capmedia-bootcode) into the BIOS test program at `/bootmgr`,
//! and one without `/bootmgr` to the boot code's message.
#![cfg(feature = "sink")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use capmedia_content::{Arch, EntryRole, PlanBuilder};
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};
use capmedia_testboot::{qemu_boot, write_media_folder, OVMF_PATH};
use capmedia_vhd::VhdSink;

/// A bound, not a speed assertion: OVMF under TCG on a busy box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn boots(vhd_type: &str, scheme: &str) {
    boots_with(vhd_type, scheme, true);
}

fn boots_with(vhd_type: &str, scheme: &str, uefi: bool) {
    boots_into(vhd_type, scheme, uefi, None);
}

/// Write a VHD of the test media and boot it until the serial console shows
/// the test programs' marker; or, given `no_bootmgr`, the media without
/// `/bootmgr` until it shows that message.
fn boots_into(vhd_type: &str, scheme: &str, uefi: bool, no_bootmgr: Option<&str>) {
    assert!(
        std::path::Path::new(OVMF_PATH).is_file(),
        "{OVMF_PATH} missing: install the Debian package ovmf"
    );
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let mut marker = format!("CAPMEDIA-VHD-{vhd_type}-{scheme}");
    write_media_folder(&media, Arch::X64, &marker).unwrap();
    if let Some(msg) = no_bootmgr {
        std::fs::remove_file(media.join("bootmgr")).unwrap();
        marker = msg.to_owned();
    }
    let out = dir.path().join("boot.vhd");
    let mut b = PlanBuilder::new("Configuration Manager", "vhd", &out)
        .source_date_epoch(1_700_000_000)
        .option("vhd-type", vhd_type)
        .option("partition-scheme", scheme);
    b.add_tree("", &media, EntryRole::Boot, "boot").unwrap();
    let plan = b.build().unwrap();
    VhdSink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    let drive = format!("file={},format=vpc,if=ide", out.display());
    let mut args = vec!["-drive", &drive, "-net", "none"];
    if uefi {
        args.extend(["-bios", OVMF_PATH]);
    }
    let serial = qemu_boot(&args, &marker, BOOT_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    assert!(serial.contains(&marker));
}

#[test]
fn dynamic_mbr_vhd_boots_under_ovmf() {
    boots("dynamic", "mbr");
}

#[test]
fn fixed_gpt_vhd_boots_under_ovmf() {
    boots("fixed", "gpt");
}

#[test]
fn dynamic_mbr_vhd_boots_under_seabios() {
    boots_with("dynamic", "mbr", false);
}

#[test]
fn fixed_mbr_vhd_boots_under_seabios() {
    boots_with("fixed", "mbr", false);
}

/// Without `/bootmgr` capmedia's FAT32 boot code says so (on COM1 as well as
/// the screen) and halts.
#[test]
fn mbr_vhd_without_bootmgr_says_no_bootmgr_under_seabios() {
    boots_into(
        "dynamic",
        "mbr",
        false,
        Some(capmedia_bootcode::MSG_NO_BOOTMGR),
    );
}
