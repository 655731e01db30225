//! Real WIMs built with wimlib-imagex (Debian package wimtools): our reading
//! must agree with `wimlib-imagex info` on every kind of WIM.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use capmedia_arch::{image_suits_target, inspect, Arch, Inspection, WimInfo};
use common::*;

/// Inspects `wim` and checks it against `wimlib-imagex info`.
fn agree(wim: &Path) -> WimInfo {
    let ours = match inspect(wim).unwrap() {
        Inspection::Wim(w) => w.wim,
        other => panic!("not inspected as a WIM: {other:?}"),
    };
    let theirs = wimlib_info(wim);
    assert_eq!(ours.images.len() as u32, theirs.image_count, "image count");
    assert_eq!(ours.boot_index, theirs.boot_index, "boot index");
    assert_eq!(
        (ours.part, ours.total_parts),
        (theirs.part, theirs.total_parts),
        "part numbers"
    );
    let ours_images: Vec<_> = ours
        .images
        .iter()
        .map(|i| (i.index, i.name.clone().unwrap_or_default(), i.arch))
        .collect();
    assert_eq!(ours_images, theirs.images, "images");
    for img in &ours.images {
        assert_eq!(img.is_boot, img.index == ours.boot_index);
    }
    ours
}

#[test]
fn single_image_wims_of_every_architecture() {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    for arch in Arch::ALL {
        let tree = windows_tree(dir.path(), &format!("tree-{arch}"), arch);
        let wim = dir.path().join(format!("{arch}.wim"));
        let name = format!("WinPE {arch}");
        wimlib(&[
            "capture",
            tree.to_str().unwrap(),
            wim.to_str().unwrap(),
            &name,
            "--boot",
        ]);
        let info = agree(&wim);
        assert_eq!(info.images.len(), 1);
        assert_eq!(info.images[0].arch, arch);
        assert_eq!(info.boot_image().unwrap().arch, arch);
        assert!(!info.pipable && !info.solid && info.total_parts == 1);
        assert_eq!(info.compression, "lzx");
    }
}

#[test]
fn two_images_of_different_architectures_with_boot() {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let t86 = windows_tree(dir.path(), "t86", Arch::X86);
    let t64 = windows_tree(dir.path(), "t64", Arch::X64);
    let ta64 = windows_tree(dir.path(), "ta64", Arch::Arm64);
    let wim = dir.path().join("two.wim");
    let w = wim.to_str().unwrap();
    wimlib(&["capture", t86.to_str().unwrap(), w, "Setup x86"]);
    wimlib(&["append", t64.to_str().unwrap(), w, "WinPE x64", "--boot"]);
    let info = agree(&wim);
    assert_eq!(info.boot_index, 2);
    assert_eq!(
        info.images.iter().map(|i| i.arch).collect::<Vec<_>>(),
        [Arch::X86, Arch::X64]
    );
    let boot = info.boot_image().unwrap();
    assert_eq!((boot.index, boot.arch), (2, Arch::X64));
    // The rule applies to the boot image, not the first one.
    assert!(image_suits_target(Arch::X64, boot.arch).is_ok());
    let e = image_suits_target(Arch::X86, boot.arch)
        .unwrap_err()
        .to_string();
    assert!(e.contains("x64") && e.contains("x86"), "{e}");

    // Move the boot flag to image 1, then add a third image.
    wimlib(&["info", w, "1", "--boot"]);
    wimlib(&["append", ta64.to_str().unwrap(), w, "WinPE arm64"]);
    let info = agree(&wim);
    assert_eq!(info.boot_index, 1);
    assert_eq!(info.images[2].arch, Arch::Arm64);
}

#[test]
fn pipable_wim_reads_the_trailing_header() {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let t = windows_tree(dir.path(), "t", Arch::Arm64);
    let wim = dir.path().join("pipe.wim");
    wimlib(&[
        "capture",
        t.to_str().unwrap(),
        wim.to_str().unwrap(),
        "piped",
        "--pipable",
        "--boot",
    ]);
    let bytes = std::fs::read(&wim).unwrap();
    assert_eq!(&bytes[..8], b"WLPWM\0\0\0");
    assert_eq!(&bytes[bytes.len() - 208..][..8], b"WLPWM\0\0\0");
    let info = agree(&wim);
    assert!(info.pipable);
    assert_eq!(info.boot_image().unwrap().arch, Arch::Arm64);

    // Without its trailing header (a cut-off stream) it is a typed error.
    let cut = &bytes[..bytes.len() - 1];
    let e = capmedia_arch::read_wim(&mut std::io::Cursor::new(cut)).unwrap_err();
    assert!(
        matches!(
            e,
            capmedia_arch::ArchError::Wim(capmedia_wim::WimError::PipableTrailerMissing)
        ),
        "{e:?}"
    );
}

#[test]
fn split_wim_every_part_reports_n_of_m_and_the_images() {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let t = windows_tree(dir.path(), "t", Arch::X64);
    // Incompressible content, in several files so parts can be filled.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for n in 0..3 {
        let data: Vec<u8> = (0..1_100_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        std::fs::write(t.join(format!("random{n}.bin")), data).unwrap();
    }
    let wim = dir.path().join("big.wim");
    wimlib(&[
        "capture",
        t.to_str().unwrap(),
        wim.to_str().unwrap(),
        "big x64",
        "--boot",
    ]);
    let swm = dir.path().join("big.swm");
    wimlib(&["split", wim.to_str().unwrap(), swm.to_str().unwrap(), "1"]);
    let first = agree(&swm);
    assert_eq!(first.part, 1);
    assert!(
        first.total_parts >= 2,
        "expected at least 2 parts, got {}",
        first.total_parts
    );
    for n in 2..=first.total_parts {
        let part = dir.path().join(format!("big{n}.swm"));
        let info = agree(&part);
        assert_eq!((info.part, info.total_parts), (n, first.total_parts));
        let strip = |i: &WimInfo| {
            i.images
                .iter()
                .map(|i| (i.index, i.name.clone(), i.arch))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&info), strip(&first));
        assert_eq!(info.boot_index, first.boot_index);
    }
    // wimlib 1.13's split does not carry the boot index over (every part
    // says 0); agree() checked we report exactly what the headers say.
}

#[test]
fn solid_wim() {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let t1 = windows_tree(dir.path(), "t1", Arch::X86);
    let t2 = windows_tree(dir.path(), "t2", Arch::X64);
    let wim = dir.path().join("solid.esd");
    wimlib(&[
        "capture",
        t1.to_str().unwrap(),
        wim.to_str().unwrap(),
        "solid x86",
        "--solid",
        "--boot",
    ]);
    let info = agree(&wim);
    assert!(info.solid);
    assert_eq!(info.version, 0xE00);
    assert_eq!(info.compression, "lzms");
    assert_eq!(info.boot_image().unwrap().arch, Arch::X86);
    // A two-image solid WIM via export.
    let src = dir.path().join("src.wim");
    wimlib(&[
        "capture",
        t2.to_str().unwrap(),
        src.to_str().unwrap(),
        "second x64",
    ]);
    wimlib(&[
        "export",
        src.to_str().unwrap(),
        "1",
        wim.to_str().unwrap(),
        "--solid",
    ]);
    let info = agree(&wim);
    assert_eq!(info.images.len(), 2);
    assert_eq!(info.images[1].arch, Arch::X64);
}

#[test]
fn json_and_text_rendering() {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let t = windows_tree(dir.path(), "t", Arch::X64);
    let wim = dir.path().join("boot.wim");
    wimlib(&[
        "capture",
        t.to_str().unwrap(),
        wim.to_str().unwrap(),
        "Microsoft Windows PE (x64)",
        "--boot",
    ]);
    let insp = inspect(&wim).unwrap();
    let json: serde_json::Value = serde_json::to_value(&insp).unwrap();
    assert_eq!(json["kind"], "wim");
    assert_eq!(json["path"], wim.to_str().unwrap());
    assert_eq!(json["part"], 1);
    assert_eq!(json["total_parts"], 1);
    assert_eq!(json["pipable"], false);
    assert_eq!(json["solid"], false);
    assert_eq!(json["boot_index"], 1);
    assert_eq!(json["images"][0]["index"], 1);
    assert_eq!(json["images"][0]["name"], "Microsoft Windows PE (x64)");
    assert_eq!(json["images"][0]["arch"], "x64");
    assert_eq!(json["images"][0]["is_boot"], true);
    let text = insp.to_string();
    assert!(text.contains("boot image: index 1 (x64)"), "{text}");
    assert!(text.contains("Microsoft Windows PE (x64)"), "{text}");

    // A PE file: the same kernel32 stub wimlib read.
    let pe = t.join("Windows/System32/kernel32.dll");
    let insp = inspect(&pe).unwrap();
    let json = serde_json::to_value(&insp).unwrap();
    assert_eq!(json["kind"], "pe");
    assert_eq!(json["machine"], "0x8664");
    assert_eq!(json["arch"], "x64");
    assert_eq!(json["pe32_plus"], true);
    assert_eq!(json["subsystem"], 10);
    assert_eq!(json["efi_application"], true);
    assert!(insp.to_string().contains("machine 0x8664 (x64)"), "{insp}");
}
