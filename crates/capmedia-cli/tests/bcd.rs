//! BCD stores on media (issue 13): boot files without stores get the
//! Windows PE RAM-disk stores capmedia writes; they are read back by
//! `capmedia inspect --bcd` and by hivex, and the media still boot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use capmedia_content::Arch;
use capmedia_sample::{MARKER, X64_PACKAGE};
use capmedia_testboot::{qemu_boot, write_media_folder, OVMF_PATH};
use common::{bin_dir, capmedia, sample, show};

/// A Windows PE Media folder whose boot files carry no BCD store.
fn boot_files_without_bcds(dir: &Path) {
    write_media_folder(dir, Arch::X64, MARKER).unwrap();
    fs::remove_file(dir.join("boot/bcd")).unwrap();
    fs::remove_file(dir.join("efi/microsoft/boot/bcd")).unwrap();
}

fn capture(sink: &str, out: &Path, boot: &Path, extra: &[&str]) -> std::process::Output {
    let lib = sample().content_lib.display().to_string();
    let mut args = vec![
        "capture",
        "--dp",
        &lib,
        "--boot-image",
        X64_PACKAGE,
        "--sink",
        sink,
        "--label",
        "Capture BCD",
        "--boot-files",
        boot.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let plugins = bin_dir().display().to_string();
    args.extend_from_slice(&["--plugin-dir", &plugins]);
    args.extend_from_slice(extra);
    let cache = out.with_extension("cache");
    let cache = cache.to_str().unwrap().to_owned();
    args.extend_from_slice(&["--cache", &cache]);
    capmedia(&args)
}

/// `hivexregedit --export` of a store (Debian libwin-hivex-perl).
fn hivex_export(store: &Path) -> String {
    let o = Command::new("hivexregedit")
        .args(["--export", store.to_str().unwrap(), "\\"])
        .output()
        .expect("hivexregedit (Debian package libwin-hivex-perl)");
    assert!(o.status.success(), "{}", show(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn media_from_boot_files_without_bcds_carry_both_stores_and_boot() {
    let t = tempfile::tempdir().unwrap();
    let boot = t.path().join("media");
    boot_files_without_bcds(&boot);

    // The dry run says where the stores come from.
    let iso = t.path().join("capture.iso");
    let o = capture("iso-set", &iso, &boot, &["--dry-run"]);
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for p in ["boot/bcd", "efi/microsoft/boot/bcd"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(p)
                && l.contains("generated: Windows PE RAM-disk BCD store")),
            "{p}: {text}"
        );
    }

    let o = capture("iso-set", &iso, &boot, &[]);
    assert!(o.status.success(), "{}", show(&o));
    let img = t.path().join("capture.img");
    let o = capture("usb-raw", &img, &boot, &[]);
    assert!(o.status.success(), "{}", show(&o));

    // capmedia reads them back from each medium, as bcdedit shows them.
    for medium in [&iso, &img] {
        let o = capmedia(&["inspect", "--bcd", medium.to_str().unwrap()]);
        assert!(o.status.success(), "{}", show(&o));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("/boot/bcd") && text.contains("/efi/microsoft/boot/bcd"),
            "{text}"
        );
        assert!(text.contains("{bootmgr}"), "{text}");
        assert!(
            text.contains("ramdisk=[boot]\\sources\\boot.wim,{ramdiskoptions}"),
            "{text}"
        );
        assert!(
            text.contains("\\windows\\system32\\boot\\winload.efi"),
            "{text}"
        );
        assert!(
            text.contains("\\windows\\system32\\boot\\winload.exe"),
            "{text}"
        );
        assert!(text.contains("Capture BCD"), "{text}");
        let o = capmedia(&["inspect", "--bcd", "--json", medium.to_str().unwrap()]);
        let v = common::json_doc(&o);
        assert_eq!(v["stores"].as_array().unwrap().len(), 2);
    }

    // And so does hivex, nobody here wrote: the stores copied out of the ISO.
    let out = t.path().join("out");
    let o = Command::new("osirrox")
        .args([
            "-indev",
            iso.to_str().unwrap(),
            "-extract",
            "/",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("osirrox (Debian package xorriso)");
    assert!(o.status.success(), "{}", show(&o));
    for p in ["boot/bcd", "efi/microsoft/boot/bcd"] {
        let found = [
            "BOOT/BCD",
            "boot/bcd",
            "EFI/MICROSOFT/BOOT/BCD",
            "efi/microsoft/boot/bcd",
        ]
        .iter()
        .map(|q| out.join(q))
        .find(|q| q.is_file() && q.to_string_lossy().to_lowercase().ends_with(p))
        .unwrap_or_else(|| panic!("{p} not on the ISO"));
        let reg = hivex_export(&found);
        assert!(
            reg.contains("\\Objects\\{9dea862c-5cdd-4e70-acc1-f32b344d4795}"),
            "{reg}"
        );
        assert!(
            reg.contains("\\Objects\\{ae5534e0-a924-466c-b836-758539a3ee3a}"),
            "{reg}"
        );
        // The same stores inspect reads directly.
        let o = capmedia(&["inspect", found.to_str().unwrap()]);
        assert!(o.status.success(), "{}", show(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("{ramdiskoptions}"));
    }

    // The media still boot the test boot programs.
    let bound = Duration::from_secs(180);
    let serial = qemu_boot(
        &["-cdrom", iso.to_str().unwrap(), "-net", "none"],
        MARKER,
        bound,
    )
    .unwrap_or_else(|e| panic!("ISO under SeaBIOS: {e}"));
    assert!(serial.contains(MARKER));
    let drive = format!("file={},format=raw", img.display());
    let serial = qemu_boot(
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
        MARKER,
        bound,
    )
    .unwrap_or_else(|e| panic!("USB image under OVMF: {e}"));
    assert!(serial.contains(MARKER));
}

#[test]
fn the_boot_files_own_stores_win() {
    let t = tempfile::tempdir().unwrap();
    let boot = t.path().join("media");
    write_media_folder(&boot, Arch::X64, MARKER).unwrap();
    let iso = t.path().join("capture.iso");
    let o = capture("iso-set", &iso, &boot, &["--dry-run"]);
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.contains("generated: Windows PE RAM-disk BCD store"),
        "{text}"
    );
}
