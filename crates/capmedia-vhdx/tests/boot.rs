//! The VHDX boots: OVMF (Debian: ovmf, qemu-system-x86) attaches it as
//! `format=vhdx` and runs the test EFI program from the FAT32 partition, as
//! a Hyper-V generation 2 machine (UEFI) would.
#![cfg(feature = "sink")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use capmedia_content::{Arch, EntryRole, PlanBuilder};
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};
use capmedia_testboot::{qemu_boot, write_media_folder, OVMF_PATH};
use capmedia_vhdx::VhdxSink;

/// A bound, not a speed assertion: OVMF under TCG on a busy box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn boots(options: &[(&str, &str)], name: &str) {
    assert!(
        std::path::Path::new(OVMF_PATH).is_file(),
        "{OVMF_PATH} missing: apt-get install -y ovmf"
    );
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    let marker = format!("CAPMEDIA-VHDX-{name}");
    write_media_folder(&media, Arch::X64, &marker).unwrap();
    let out = dir.path().join("boot.vhdx");
    let mut b =
        PlanBuilder::new("Configuration Manager", "vhdx", &out).source_date_epoch(1_700_000_000);
    for (k, v) in options {
        b = b.option(k, v);
    }
    b.add_tree("", &media, EntryRole::Boot, "boot").unwrap();
    let plan = b.build().unwrap();
    VhdxSink.write(&plan, &NoProgress, &NeverCancel).unwrap();
    let drive = format!("file={},format=vhdx,if=ide", out.display());
    let serial = qemu_boot(
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
        &marker,
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(serial.contains(&marker));
}

#[test]
fn default_dynamic_gpt_vhdx_boots_under_ovmf() {
    boots(&[], "DYNAMIC-GPT");
}

#[test]
fn fixed_vhdx_boots_under_ovmf() {
    boots(&[("vhdx-type", "fixed")], "FIXED-GPT");
}
