//! The VHD boots: OVMF (Debian: ovmf, qemu-system-x86) attaches it as
//! `format=vpc` and runs the test EFI program from the FAT32 partition.
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
    assert!(
        std::path::Path::new(OVMF_PATH).is_file(),
        "{OVMF_PATH} missing: install the Debian package ovmf"
    );
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let marker = format!("CAPMEDIA-VHD-{vhd_type}-{scheme}");
    write_media_folder(&media, Arch::X64, &marker).unwrap();
    let out = dir.path().join("boot.vhd");
    let mut b = PlanBuilder::new("Configuration Manager", "vhd", &out)
        .source_date_epoch(1_700_000_000)
        .option("vhd-type", vhd_type)
        .option("partition-scheme", scheme);
    b.add_tree("", &media, EntryRole::Boot, "boot").unwrap();
    let plan = b.build().unwrap();
    VhdSink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    let drive = format!("file={},format=vpc,if=ide", out.display());
    let serial = qemu_boot(
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
        &marker,
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
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
