//! The drive-safety decision over fake sysfs trees shaped like real ones.

#![allow(clippy::unwrap_used)] // tests may unwrap (HELPERS.md)

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use capmedia_device::{probe, Bus, SystemPaths};

struct Fake {
    _dir: tempfile::TempDir,
    sys: SystemPaths,
}

/// A block device node in a fake sysfs: `devpath` is relative to
/// `sys/devices`, `parts` are (name, dev number).
struct Disk<'a> {
    name: &'a str,
    devpath: &'a str,
    removable: bool,
    sectors: u64,
    vendor: &'a str,
    model: &'a str,
    dev: &'a str,
    parts: &'a [(&'a str, &'a str)],
}

impl Fake {
    fn new(disks: &[Disk<'_>], mountinfo: &str, swaps: &str) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let sysfs = dir.path().join("sys");
        fs::create_dir_all(sysfs.join("class/block")).unwrap();
        for d in disks {
            let node = sysfs.join("devices").join(d.devpath).join(d.name);
            fs::create_dir_all(node.join("device")).unwrap();
            fs::create_dir_all(node.join("holders")).unwrap();
            fs::write(
                node.join("removable"),
                if d.removable { "1\n" } else { "0\n" },
            )
            .unwrap();
            fs::write(node.join("size"), format!("{}\n", d.sectors)).unwrap();
            fs::write(node.join("ro"), "0\n").unwrap();
            fs::write(node.join("dev"), format!("{}\n", d.dev)).unwrap();
            fs::write(node.join("device/vendor"), format!("{:<8}\n", d.vendor)).unwrap();
            fs::write(node.join("device/model"), format!("{:<16}\n", d.model)).unwrap();
            symlink(&node, sysfs.join("class/block").join(d.name)).unwrap();
            for (p, dev) in d.parts {
                let pn = node.join(p);
                fs::create_dir_all(pn.join("holders")).unwrap();
                fs::write(pn.join("partition"), "1\n").unwrap();
                fs::write(pn.join("size"), "1000\n").unwrap();
                fs::write(pn.join("ro"), "0\n").unwrap();
                fs::write(pn.join("dev"), format!("{dev}\n")).unwrap();
                symlink(&pn, sysfs.join("class/block").join(p)).unwrap();
            }
        }
        let mi = dir.path().join("mountinfo");
        fs::write(&mi, mountinfo).unwrap();
        let sw = dir.path().join("swaps");
        fs::write(
            &sw,
            format!("Filename\tType\tSize\tUsed\tPriority\n{swaps}"),
        )
        .unwrap();
        Fake {
            sys: SystemPaths {
                sysfs,
                mountinfo: mi,
                swaps: sw,
                dev: dir.path().join("dev"),
            },
            _dir: dir,
        }
    }
}

const USB_PATH: &str = "pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block";
const SATA_PATH: &str = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block";
const NVME_PATH: &str = "pci0000:00/0000:00:1d.0/0000:03:00.0/nvme/nvme0";

const BASE_MOUNTS: &str = "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n\
                           23 22 0:21 / /proc rw shared:2 - proc proc rw\n";

fn stick(removable: bool) -> Disk<'static> {
    Disk {
        name: "sdb",
        devpath: USB_PATH,
        removable,
        sectors: 31_266_816,
        vendor: "SanDisk",
        model: "Cruzer Blade",
        dev: "8:16",
        parts: &[("sdb1", "8:17")],
    }
}

fn nvme() -> Disk<'static> {
    Disk {
        name: "nvme0n1",
        devpath: NVME_PATH,
        removable: false,
        sectors: 1_000_215_216,
        vendor: "",
        model: "Samsung SSD 980",
        dev: "259:0",
        parts: &[("nvme0n1p1", "259:1"), ("nvme0n1p2", "259:2")],
    }
}

fn joined(r: &[String]) -> String {
    r.join(" | ")
}

#[test]
fn removable_usb_stick_is_accepted_and_named() {
    let f = Fake::new(&[stick(true), nvme()], BASE_MOUNTS, "");
    let info = probe(&f.sys, "sdb").unwrap();
    assert_eq!(info.bus, Bus::Usb);
    assert!(info.removable && !info.is_partition);
    assert_eq!(info.size, 31_266_816 * 512);
    assert_eq!(info.partitions, ["sdb1"]);
    assert!(
        info.refusals(false).is_empty(),
        "{:?}",
        info.refusals(false)
    );
    let d = info.describe();
    for want in [
        "sdb",
        "SanDisk Cruzer Blade",
        "16.0 GB",
        "bus USB",
        "removable",
    ] {
        assert!(d.contains(want), "{d}");
    }
}

#[test]
fn usb_disk_reporting_fixed_is_accepted_for_its_bus() {
    let f = Fake::new(&[stick(false)], BASE_MOUNTS, "");
    let info = probe(&f.sys, "sdb").unwrap();
    assert!(!info.removable);
    assert_eq!(info.bus, Bus::Usb);
    assert!(
        info.refusals(false).is_empty(),
        "{:?}",
        info.refusals(false)
    );
    assert!(info.describe().contains("not removable"));
}

#[test]
fn nvme_disk_is_refused_unless_allowed() {
    // The system runs from nvme0n1p2 in BASE_MOUNTS: use a second, idle NVMe.
    let mut idle = nvme();
    idle.name = "nvme1n1";
    idle.dev = "259:8";
    idle.parts = &[];
    let f = Fake::new(&[nvme(), idle], BASE_MOUNTS, "");
    let info = probe(&f.sys, "nvme1n1").unwrap();
    assert_eq!(info.bus, Bus::Nvme);
    let r = info.refusals(false);
    assert!(
        joined(&r).contains("not removable and not on the USB bus"),
        "{r:?}"
    );
    assert!(info.refusals(true).is_empty(), "{:?}", info.refusals(true));
}

#[test]
fn sata_system_disk_is_refused_even_when_allowed() {
    let sda = Disk {
        name: "sda",
        devpath: SATA_PATH,
        removable: false,
        sectors: 500_118_192,
        vendor: "ATA",
        model: "WDC WD5000",
        dev: "8:0",
        parts: &[("sda1", "8:1"), ("sda2", "8:2"), ("sda3", "8:3")],
    };
    let mounts = "22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw\n\
                  24 22 8:1 / /boot/efi rw shared:3 - vfat /dev/sda1 rw\n";
    let f = Fake::new(&[sda], mounts, "/dev/sda3\tpartition\t8388604\t0\t-2\n");
    let info = probe(&f.sys, "sda").unwrap();
    assert_eq!(info.bus, Bus::Ata);
    for allow in [false, true] {
        let r = joined(&info.refusals(allow));
        assert!(
            r.contains("holds the running system (sda2 is mounted on /)"),
            "{r}"
        );
        assert!(r.contains("swap (sda3)"), "{r}");
    }
    assert!(joined(&info.refusals(false)).contains("not removable"));
}

#[test]
fn mounted_partition_is_refused_even_when_allowed() {
    let mounts = format!(
        "{BASE_MOUNTS}40 22 8:17 / /media/user/MY\\040STICK rw shared:9 - vfat /dev/sdb1 rw\n"
    );
    let f = Fake::new(&[stick(true)], &mounts, "");
    let info = probe(&f.sys, "sdb").unwrap();
    for allow in [false, true] {
        let r = joined(&info.refusals(allow));
        assert!(
            r.contains("is mounted (sdb1 on /media/user/MY STICK)"),
            "{r}"
        );
    }
}

#[test]
fn partition_is_refused_even_when_allowed() {
    let f = Fake::new(&[stick(true)], BASE_MOUNTS, "");
    let info = probe(&f.sys, "sdb1").unwrap();
    assert!(info.is_partition);
    assert_eq!(info.disk, "sdb");
    assert_eq!(info.model, "SanDisk Cruzer Blade");
    let r = joined(&info.refusals(false));
    assert!(
        r.contains("sdb1 is a partition of sdb: give the whole disk, /dev/sdb, not /dev/sdb1"),
        "{r}"
    );
    // --allow-fixed-disk is about the kind of disk, never about partitions.
    assert!(joined(&info.refusals(true)).contains("is a partition"));
}

#[test]
fn device_mapper_holder_is_refused() {
    let f = Fake::new(&[stick(true)], BASE_MOUNTS, "");
    let holders: PathBuf = fs::canonicalize(f.sys.sysfs.join("class/block/sdb1"))
        .unwrap()
        .join("holders");
    fs::create_dir_all(holders.join("dm-0")).unwrap();
    let info = probe(&f.sys, "sdb").unwrap();
    assert!(joined(&info.refusals(true)).contains("in use by dm-0"));
}

#[test]
fn unknown_device_is_an_error() {
    let f = Fake::new(&[], BASE_MOUNTS, "");
    let e = probe(&f.sys, "sdz").unwrap_err();
    assert!(e.to_string().contains("sdz"), "{e}");
}
