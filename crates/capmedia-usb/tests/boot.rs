//! The image boots under OVMF into a test EFI program at
//! `efi/boot/bootx64.efi` that prints a marker (qemu-system-x86, ovmf).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use capmedia_content::{Arch, EntryRole, PlanBuilder};
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};
use capmedia_testboot::{efi_app, qemu_boot, OVMF_PATH};
use capmedia_usb::UsbRawSink;

/// A bound, not a speed assertion: OVMF under TCG on a busy box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn boots(scheme: &str) {
    let marker = format!("CAPMEDIA-USB-{}-BOOTED", scheme.to_uppercase());
    let out = tempfile::tempdir().unwrap();
    let img = out.path().join("media.img");
    let mut b = PlanBuilder::new("Configuration Manager", "usb-raw", &img);
    b.add_bytes(
        "efi/boot/bootx64.efi",
        efi_app(Arch::X64, &marker),
        EntryRole::Boot,
        "boot",
    )
    .unwrap();
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
    let drive = format!("file={},format=raw,snapshot=on", img.display());
    let r = qemu_boot(
        &["-bios", OVMF_PATH, "-drive", &drive],
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
