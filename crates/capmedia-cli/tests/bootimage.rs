//! The boot image from the inside (issue 12): a boot image package that
//! holds only `boot.<PKGID>.wim` (LZX, written by wimlib-imagex) gives
//! bootable media with no `--boot-files`, the boot managers taken from the
//! image (`--uefi-ca 2023`: the `_EX` ones), and its drivers checked
//! against the reference computer's devices before anything is written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use capmedia_content::{Arch, PackageId};
use capmedia_dp::{build_library, BuildOptions, PackageSource};
use capmedia_testboot::{
    ca2023_marker, qemu_boot, write_boot_image_tree, BootImageShape, OVMF_PATH,
};
use common::{bin_dir, capmedia, show};

const MARKER: &str = "capmedia boot-image test program: booted";
const PACKAGE: &str = "PS10000B";

/// A content library whose boot image package holds only its WIM.
struct Dp {
    dir: tempfile::TempDir,
    lib: PathBuf,
}

fn dp(shape: BootImageShape) -> Dp {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    write_boot_image_tree(&tree, Arch::X64, MARKER, shape).unwrap();
    let id: PackageId = PACKAGE.parse().unwrap();
    let pkg = dir.path().join("package");
    fs::create_dir_all(&pkg).unwrap();
    let o = Command::new("wimlib-imagex")
        .arg("capture")
        .arg(&tree)
        .arg(pkg.join(id.boot_wim_name()))
        .args([
            "Microsoft Windows PE (x64)",
            "--compress=lzx",
            "--boot",
            "--quiet",
        ])
        .output()
        .expect("wimlib-imagex (Debian package wimtools)");
    assert!(o.status.success(), "{}", show(&o));
    let lib = dir.path().join("SCCMContentLib");
    build_library(
        &lib,
        &[PackageSource {
            id,
            version: 1,
            folder: &pkg,
        }],
        &BuildOptions::default(),
    )
    .unwrap();
    Dp { dir, lib }
}

fn capture(d: &Dp, sink: &str, out: &str, extra: &[&str]) -> (std::process::Output, PathBuf) {
    let out = d.dir.path().join(out);
    let cache = d.dir.path().join("cache");
    let plugins = bin_dir().display().to_string();
    let mut args = vec![
        "capture",
        "--dp",
        d.lib.to_str().unwrap(),
        "--boot-image",
        PACKAGE,
        "--target-arch",
        "x64",
        "--sink",
        sink,
        "--out",
        out.to_str().unwrap(),
        "--cache",
        cache.to_str().unwrap(),
        "--plugin-dir",
        &plugins,
    ];
    args.extend_from_slice(extra);
    (capmedia(&args), out)
}

fn boots(what: &str, args: &[&str], marker: &str) {
    let serial =
        qemu_boot(args, marker, Duration::from_secs(180)).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(serial.contains(marker), "{what}: {serial}");
}

#[test]
fn media_from_the_boot_image_alone_boot_under_seabios_and_ovmf() {
    let d = dp(BootImageShape::default());

    // The dry run names each boot file's place in the WIM.
    let (o, _) = capture(&d, "iso-set", "capture.iso", &["--dry-run"]);
    assert!(o.status.success(), "{}", show(&o));
    let plan = String::from_utf8_lossy(&o.stdout);
    let wim = format!("boot.{PACKAGE}.wim");
    for (media, inside) in [
        ("bootmgr ", "Windows/Boot/PCAT/bootmgr"),
        ("efi/boot/bootx64.efi", "Windows/Boot/EFI/bootmgfw.efi"),
        ("boot/boot.sdi", "Windows/Boot/DVD/PCAT/boot.sdi"),
        (
            "boot/fonts/wgl4_boot.ttf",
            "Windows/Boot/Fonts/wgl4_boot.ttf",
        ),
    ] {
        assert!(
            plan.lines()
                .any(|l| l.trim_start().starts_with(media.trim_end())
                    && l.contains(&format!("{wim}:{inside}"))),
            "{media}: {plan}"
        );
    }
    assert!(plan.contains("boot files from the boot image"), "{plan}");
    assert!(plan.contains("1 network, 1 mass-storage"), "{plan}");
    // No BCD in the image: capmedia writes both stores.
    assert!(
        plan.contains("generated: Windows PE RAM-disk BCD store"),
        "{plan}"
    );

    let (o, iso) = capture(&d, "iso-set", "capture.iso", &[]);
    assert!(o.status.success(), "{}", show(&o));
    let (o, img) = capture(&d, "usb-raw", "capture.img", &[]);
    assert!(o.status.success(), "{}", show(&o));
    let iso_s = iso.to_str().unwrap();
    boots(
        "ISO under SeaBIOS",
        &["-cdrom", iso_s, "-net", "none"],
        MARKER,
    );
    boots(
        "ISO under OVMF",
        &["-bios", OVMF_PATH, "-cdrom", iso_s, "-net", "none"],
        MARKER,
    );
    let drive = format!("file={},format=raw", img.display());
    boots(
        "USB image under OVMF",
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
        MARKER,
    );

    // --uefi-ca 2023: the _EX boot manager runs instead.
    let (o, img23) = capture(&d, "usb-raw", "capture-2023.img", &["--uefi-ca", "2023"]);
    assert!(o.status.success(), "{}", show(&o));
    let drive = format!("file={},format=raw", img23.display());
    let ex = ca2023_marker(MARKER);
    boots(
        "USB image (UEFI CA 2023) under OVMF",
        &["-bios", OVMF_PATH, "-drive", &drive, "-net", "none"],
        &ex,
    );
}

#[test]
fn uefi_ca_2023_is_refused_for_an_image_without_ex_boot_managers() {
    let d = dp(BootImageShape {
        ca2023: false,
        ..Default::default()
    });
    let (o, out) = capture(&d, "usb-raw", "x.img", &["--uefi-ca", "2023"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("bootmgfw_EX.efi"),
        "{}",
        show(&o)
    );
    assert!(!out.exists());
    assert!(
        !d.dir.path().join("cache").exists()
            || fs::read_dir(d.dir.path().join("cache")).unwrap().count() == 0
    );
}

#[test]
fn a_missing_boot_file_is_refused_naming_it_and_boot_files() {
    let d = dp(BootImageShape {
        boot_sdi: false,
        ..Default::default()
    });
    let (o, out) = capture(&d, "iso-set", "x.iso", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/boot/boot.sdi") && err.contains("--boot-files"),
        "{err}"
    );
    assert!(!out.exists());
}

/// The device lists of the reference computer, in each format.
fn write(p: &Path, text: &str) -> String {
    fs::write(p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn target_hwids_pass_when_covered_and_refuse_naming_the_device_before_writing() {
    let d = dp(BootImageShape::default());
    // pnputil-style instance ids: a virtio NIC and a virtio SCSI controller.
    let ok = write(
        &d.dir.path().join("ok.txt"),
        "PCI\\VEN_1AF4&DEV_1000&SUBSYS_00011AF4&REV_00\\3&267A616A&0&18\r\n\
         PCI\\VEN_1AF4&DEV_1004&SUBSYS_00081AF4&REV_00\\3&267A616A&0&20\r\n",
    );
    let (o, _) = capture(
        &d,
        "iso-set",
        "x.iso",
        &["--dry-run", "--target-hwids", &ok],
    );
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("nettest.inf"), "{text}");
    assert!(text.contains("vioscsi.inf"), "{text}");

    // lspci -nn output whose NIC (Realtek) has no driver in the image.
    let bad = write(
        &d.dir.path().join("lspci.txt"),
        "00:00.0 Host bridge [0600]: Intel Corporation 440FX - 82441FX PMC [Natoma] [8086:1237] (rev 02)\n\
         00:03.0 Ethernet controller [0200]: Realtek Semiconductor Co., Ltd. RTL8111/8168/8411 PCI Express Gigabit Ethernet Controller [10ec:8168] (rev 15)\n",
    );
    let (o, out) = capture(&d, "usb-raw", "x.img", &["--target-hwids", &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("VEN_10EC&DEV_8168"), "{err}");
    assert!(!out.exists());
    let cache = d.dir.path().join("cache");
    assert!(!cache.exists() || fs::read_dir(&cache).unwrap().count() == 0);

    // --require-hwid alone, covered and not.
    let (o, _) = capture(
        &d,
        "iso-set",
        "x.iso",
        &[
            "--dry-run",
            "--require-hwid",
            "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086&REV_03",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    let (o, _) = capture(
        &d,
        "iso-set",
        "x.iso",
        &["--dry-run", "--require-hwid", "PCI\\VEN_8086&DEV_15B8"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
}

#[test]
fn inspect_drivers_lists_the_images_infs() {
    let d = dp(BootImageShape::default());
    let wim = d
        .dir
        .path()
        .join("package")
        .join(format!("boot.{PACKAGE}.wim"));
    let o = capmedia(&["inspect", "--drivers", wim.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("Windows/INF/nettest.inf [net] class Net"),
        "{text}"
    );
    assert!(text.contains("PCI\\VEN_8086&DEV_100E"), "{text}");
    assert!(text.contains("[storage] class SCSIAdapter"), "{text}");
    let o = capmedia(&["inspect", "--drivers", "--json", wim.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["net"], 1);
    assert_eq!(v["summary"]["storage"], 1);
    assert_eq!(v["sms"]["tsm_bootstrap"], false);
}
