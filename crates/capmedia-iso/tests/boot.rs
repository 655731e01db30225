//! The set's first volume boots under SeaBIOS (El Torito no-emulation) and
//! under OVMF (El Torito EFI) into the test boot programs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use capmedia_content::{Arch, BootFile, BootSpec, Capacity, EntryRole, MediaPlan, PlanBuilder};
use capmedia_iso::IsoSetSink;
use capmedia_sink::{MediaSink, NeverCancel, NoProgress};
use capmedia_testboot::{qemu_boot, write_media_folder, OVMF_PATH};

/// A bound, not a speed assertion: OVMF under TCG on a busy box is slow.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn plan_for(media: &Path, out: &Path, uefi: Option<&Path>) -> MediaPlan {
    let etfsboot = media.join("etfsboot.com");
    let mut b = PlanBuilder::new("Capture Test", "iso-set", out)
        .capacity(Capacity::Bytes(
            capmedia_content::Capacity::PRESETS[0].1.bytes().unwrap(),
        ))
        .source_date_epoch(1_700_000_000)
        .boot(BootSpec {
            bios: Some(BootFile {
                size: std::fs::metadata(&etfsboot).unwrap().len(),
                source: etfsboot,
                load_sectors: None,
            }),
            uefi: uefi.map(|u| BootFile {
                source: u.to_owned(),
                size: std::fs::metadata(u).unwrap().len(),
                load_sectors: None,
            }),
        });
    b.add_tree("", media, EntryRole::Boot, "boot").unwrap();
    b.add_bytes(
        "MediaLabel.txt",
        b"label=Capture Test".to_vec(),
        EntryRole::Generated,
        "boot",
    )
    .unwrap();
    b.build().unwrap()
}

fn seabios(iso: &Path, marker: &str) {
    let out = qemu_boot(
        &["-cdrom", iso.to_str().unwrap(), "-net", "none"],
        marker,
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("SeaBIOS boot of {}: {e}", iso.display()));
    assert!(out.contains(marker));
}

fn ovmf(iso: &Path, marker: &str) {
    assert!(
        Path::new(OVMF_PATH).is_file(),
        "{OVMF_PATH} missing: install the Debian package ovmf"
    );
    let out = qemu_boot(
        &[
            "-bios",
            OVMF_PATH,
            "-cdrom",
            iso.to_str().unwrap(),
            "-net",
            "none",
        ],
        marker,
        BOOT_TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("OVMF boot of {}: {e}", iso.display()));
    assert!(out.contains(marker));
}

#[test]
fn boots_under_seabios_and_ovmf() {
    let t = tempfile::tempdir().unwrap();
    let media = t.path().join("media");
    let marker = "CAPMEDIA-ISO-BOOT-5e21";
    write_media_folder(&media, Arch::X64, marker).unwrap();

    // No efisys.bin: the sink builds the EFI image from efi/boot/bootx64.efi.
    let out = t.path().join("built.iso");
    IsoSetSink
        .write(&plan_for(&media, &out, None), &NoProgress, &NeverCancel)
        .unwrap();
    seabios(&out, marker);
    ovmf(&out, marker);

    // With an efisys.bin given (here: the image the first ISO carries).
    let x = t.path().join("x");
    common::extract(&out, &x);
    let efisys = t.path().join("efisys.bin");
    std::fs::copy(x.join("efi/microsoft/boot/efisys.bin"), &efisys).unwrap();
    let out2 = t.path().join("given.iso");
    IsoSetSink
        .write(
            &plan_for(&media, &out2, Some(&efisys)),
            &NoProgress,
            &NeverCancel,
        )
        .unwrap();
    let et = common::tool_ok(
        "xorriso",
        "xorriso",
        &[
            "-indev",
            out2.to_str().unwrap(),
            "-report_el_torito",
            "plain",
        ],
    );
    assert!(et.contains("BIOS") && et.contains("UEFI"), "{et}");
    ovmf(&out2, marker);
}
