//! The device path on a real block device: a loop device (needs root and
//! util-linux's losetup, mount, blockdev).

#![allow(clippy::unwrap_used)] // tests may unwrap (HELPERS.md)

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use capmedia_sink::{ErrorKind, MediaSink, NeverCancel, NoProgress, VerifyRequest};
use capmedia_usb::UsbRawSink;
use common::*;

/// A loop device detached (and its mount undone) whatever happens.
struct Loop {
    dev: String,
    mounted: Option<PathBuf>,
}

impl Drop for Loop {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            let _ = Command::new("umount").arg(&m).status();
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

fn attach(img: &Path) -> Loop {
    assert!(
        is_root(),
        "this test needs root: it attaches a loop device with losetup (util-linux)"
    );
    let (ok, out) = run(
        "losetup",
        "mount",
        &["-f", "--show", "-P", img.to_str().unwrap()],
    );
    assert!(
        ok,
        "losetup -f --show -P failed (are loop devices available?): {out}"
    );
    Loop {
        dev: out.trim().to_owned(),
        mounted: None,
    }
}

#[test]
fn loop_device_refused_then_written_then_refused_while_mounted() {
    let src = tempfile::tempdir().unwrap();
    source_tree(src.path());
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join("disk.img");
    fs::File::create(&img).unwrap().set_len(64 << 20).unwrap();
    let mut lo = attach(&img);
    let dev = PathBuf::from(&lo.dev);
    let sink = UsbRawSink::new();

    // A loop device is neither removable nor USB.
    let p = plan(src.path(), &dev, &[("yes", "true")]);
    let e = sink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(
        e.message.contains("not removable and not on the USB bus"),
        "{e}"
    );
    assert!(e.message.contains("bus virtual"), "{e}");
    assert_eq!(
        sink.write(&p, &NoProgress, &NeverCancel).unwrap_err().kind,
        ErrorKind::Refused
    );

    // The override alone is not consent to erase: check accepts the drive
    // (the driver asks the user after check), write refuses it.
    let p = plan(src.path(), &dev, &[("allow-fixed-disk", "true")]);
    sink.check(&p).unwrap();
    let e = sink.write(&p, &NoProgress, &NeverCancel).unwrap_err();
    assert!(e.message.contains("pass yes"), "{e}");

    // With both: written in place and read back, named through a link as
    // /dev/disk/by-id names drives.
    let link = work.path().join("usb-Fake_Stick_0123-0:0");
    std::os::unix::fs::symlink(&dev, &link).unwrap();
    let p = plan(
        src.path(),
        &link,
        &[("allow-fixed-disk", "true"), ("yes", "true")],
    );
    let report = sink.check(&p).unwrap();
    let name = dev.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains(&name) && n.contains("erased")),
        "{:?}",
        report.notes
    );
    let w = sink.write(&p, &NoProgress, &NeverCancel).unwrap();
    assert!(w.verified);
    assert_eq!(w.outputs[0].bytes, 64 << 20);
    let v = sink
        .verify(&VerifyRequest::from(&w), &NoProgress, &NeverCancel)
        .unwrap();
    assert!(v.is_ok(), "{v:?}");
    assert_eq!(v.volumes[0].outcome.files_checked, p.entries.len());

    // Mount something on the disk for the refusal below. Where the kernel
    // scans loop partitions and has vfat, mount our FAT32 partition and read
    // a file through the kernel's driver. Some sandboxes' kernels do neither
    // (no partition scanning, no vfat): then ext2 on the partition, or on
    // the whole device, is what is mounted.
    let (ok, out) = run("blockdev", "util-linux", &["--rereadpt", &lo.dev]);
    assert!(ok, "blockdev --rereadpt: {out}");
    let part = format!("{}p1", lo.dev);
    let has_partitions = Path::new(&part).exists();
    let mnt = work.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let kernel_has_vfat = fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .any(|l| l.trim_end().ends_with("vfat"));
    let mounted_dev = if has_partitions {
        part.clone()
    } else {
        lo.dev.clone()
    };
    if has_partitions && kernel_has_vfat {
        let (ok, out) = run(
            "mount",
            "mount",
            &["-t", "vfat", "-o", "ro", &part, mnt.to_str().unwrap()],
        );
        assert!(ok, "mount -t vfat {part}: {out}");
        lo.mounted = Some(mnt.clone());
        assert_eq!(
            fs::read(mnt.join("sources/boot.wim")).unwrap(),
            fs::read(src.path().join("sources/boot.wim")).unwrap()
        );
        assert!(mnt
            .join("A long folder name/another long folder name/a long file name.txt")
            .is_file());
    } else {
        eprintln!(
            "kernel partition scanning of loop devices: {has_partitions}, vfat: {kernel_has_vfat}; \
             mounting an ext2 made on {mounted_dev} instead"
        );
        let (ok, out) = run("mkfs.ext2", "e2fsprogs", &["-q", "-F", &mounted_dev]);
        assert!(ok, "mkfs.ext2 {mounted_dev}: {out}");
        let (ok, out) = run(
            "mount",
            "mount",
            &["-t", "ext2", &mounted_dev, mnt.to_str().unwrap()],
        );
        assert!(ok, "mounting {mounted_dev} is impossible here: {out}");
        lo.mounted = Some(mnt.clone());
    }
    let mounted_name = Path::new(&mounted_dev)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();

    // Refused while the disk or a partition of it is mounted, even with the override.
    let e = sink.check(&p).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(
        e.message
            .contains(&format!("{mounted_name} on {}", mnt.display())),
        "{e}"
    );
    assert_eq!(
        sink.write(&p, &NoProgress, &NeverCancel).unwrap_err().kind,
        ErrorKind::Refused
    );

    // A partition is not a whole disk.
    if has_partitions {
        let pp = plan(src.path(), Path::new(&part), &[("yes", "true")]);
        assert!(sink
            .check(&pp)
            .unwrap_err()
            .message
            .contains("is a partition of"));
    }
}
