//! Checks against things nobody here wrote: this machine's own PCI devices
//! as `lspci` (pciutils) prints them, compared with what the kernel says in
//! sysfs, and the real `qemupciserial.inf` that Debian's qemu-system-data
//! ships.

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use capmedia_content::Arch;
use capmedia_inf::{
    check_devices, parse_device_list, Device, DeviceListFormat, DriverInfo, DriverKind, Target,
};

fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{program} is missing: apt-get update && apt-get install -y {package}")
        })
}

fn sysfs(dev: &Path, name: &str) -> u32 {
    let s = std::fs::read_to_string(dev.join(name)).unwrap();
    u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).unwrap()
}

/// (slot, Windows hardware id, class, subclass, prog-if) of every PCI
/// function, from sysfs.
fn sysfs_devices() -> Vec<(String, String, u8, u8, u8)> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir("/sys/bus/pci/devices")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for dev in entries {
        let class = sysfs(&dev, "class");
        let id = format!(
            "PCI\\VEN_{:04X}&DEV_{:04X}&SUBSYS_{:04X}{:04X}&REV_{:02X}",
            sysfs(&dev, "vendor"),
            sysfs(&dev, "device"),
            sysfs(&dev, "subsystem_device"),
            sysfs(&dev, "subsystem_vendor"),
            sysfs(&dev, "revision"),
        );
        let slot = dev.file_name().unwrap().to_string_lossy().into_owned();
        let [_, c, s, p] = class.to_be_bytes();
        out.push((slot, id, c, s, p));
    }
    out
}

fn lspci(args: &[&str]) -> Vec<u8> {
    let out = Command::new(require("lspci", "pciutils"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "lspci {args:?} failed");
    out.stdout
}

#[test]
fn lspci_output_matches_sysfs() {
    let expected = sysfs_devices();
    // Every machine of this project (and CI's) is a VM with virtio PCI
    // devices; no devices would make this test prove nothing.
    assert!(
        !expected.is_empty(),
        "no PCI devices in /sys/bus/pci/devices"
    );
    for (args, format) in [
        (&["-nnv", "-D"][..], DeviceListFormat::Lspci),
        (&["-nv", "-D"][..], DeviceListFormat::Lspci),
        (&["-nnvv", "-D"][..], DeviceListFormat::Lspci),
        (&["-vmm", "-nn", "-D"][..], DeviceListFormat::LspciMachine),
        (&["-vmm", "-n", "-D"][..], DeviceListFormat::LspciMachine),
    ] {
        let list = parse_device_list(&lspci(args)).unwrap();
        assert_eq!(list.format, format, "{args:?}");
        let got: Vec<(String, u8, u8, Option<u8>)> = list
            .devices
            .iter()
            .map(|d| {
                let cc = d.class_code.unwrap();
                (d.id.clone(), cc.class, cc.subclass, cc.prog_if)
            })
            .collect();
        let want: Vec<(String, u8, u8, Option<u8>)> = expected
            .iter()
            .map(|(_, id, c, s, p)| (id.clone(), *c, *s, Some(*p)))
            .collect();
        assert_eq!(got, want, "lspci {args:?}");
    }
    // Plain -nn: no SUBSYS and no prog-if, the rest the same.
    let list = parse_device_list(&lspci(&["-nn", "-D"])).unwrap();
    assert_eq!(list.devices.len(), expected.len());
    for (d, (slot, id, c, _, _)) in list.devices.iter().zip(&expected) {
        let (head, rest) = id.split_once("&SUBSYS_").unwrap();
        let rev = rest.split_once('&').unwrap().1;
        assert_eq!(d.id, format!("{head}&{rev}"), "{slot}");
        assert!(!d.subsys_known);
        assert_eq!(d.class_code.unwrap().class, *c);
        assert_eq!(d.class_code.unwrap().prog_if, None);
    }
}

#[test]
fn this_machines_devices_against_a_virtio_driver_set() {
    // A driver for this machine's network and storage devices, built from
    // sysfs, covers exactly those; without it they are reported.
    let expected = sysfs_devices();
    let list = parse_device_list(&lspci(&["-nnv"])).unwrap();
    let checked: Vec<&Device> = list.devices.iter().filter(|d| d.is_checked()).collect();
    let want_checked: Vec<&String> = expected
        .iter()
        .filter(|(_, _, c, _, _)| *c == 1 || *c == 2)
        .map(|(_, id, _, _, _)| id)
        .collect();
    assert_eq!(
        checked.iter().map(|d| &d.id).collect::<Vec<_>>(),
        want_checked
    );
    let mut models = String::new();
    for id in &want_checked {
        // Match on VEN&DEV only, as most INFs do.
        let (vd, _) = id.split_once("&SUBSYS_").unwrap();
        models.push_str(&format!("%D% = Inst, {vd}\r\n"));
    }
    let inf = format!(
        "[Version]\r\nClass=Net\r\nProvider=%P%\r\n[Manufacturer]\r\n%P%=M,NTamd64.10.0\r\n\
         [M.NTamd64.10.0]\r\n{models}[Strings]\r\nP=\"Test\"\r\nD=\"Device\"\r\n"
    );
    let driver =
        DriverInfo::from_bytes("test.inf", inf.as_bytes(), &Target::new(Arch::X64)).unwrap();
    let report = check_devices(&list.devices, std::slice::from_ref(&driver));
    assert!(report.is_complete(), "{report}");
    let report = check_devices(&list.devices, &[]);
    assert_eq!(report.uncovered().len(), want_checked.len());
}

#[test]
fn debian_qemupciserial_inf() {
    let path = Path::new("/usr/share/doc/qemu-system-data/qemupciserial.inf");
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: apt-get update && apt-get install -y qemu-system-data",
            path.display()
        )
    });
    for arch in [Arch::X64, Arch::X86] {
        let d = DriverInfo::from_bytes("qemupciserial.inf", &bytes, &Target::new(arch)).unwrap();
        assert_eq!(d.class.as_deref(), Some("MultiFunction"));
        assert_eq!(
            d.class_guid.as_deref(),
            Some("{4d36e971-e325-11ce-bfc1-08002be10318}")
        );
        assert_eq!(d.kind, DriverKind::Other);
        assert_eq!(d.provider.as_deref(), Some("QEMU"));
        let dv = d.driver_ver.as_ref().unwrap();
        assert_eq!(
            (dv.date.as_deref(), dv.version.as_deref()),
            (Some("2013-12-29"), Some("1.3.0"))
        );
        assert_eq!(
            d.hardware_ids,
            vec![
                "PCI\\VEN_1B36&DEV_0002",
                "PCI\\VEN_1B36&DEV_0003",
                "PCI\\VEN_1B36&DEV_0004"
            ],
            "{arch}"
        );
    }
    // Decorated NTx86 and NTAMD64 only: nothing for arm64.
    let arm =
        DriverInfo::from_bytes("qemupciserial.inf", &bytes, &Target::new(Arch::Arm64)).unwrap();
    assert!(arm.hardware_ids.is_empty());
    // QEMU's pci-serial-2x device as lspci shows it.
    let dev = parse_device_list(
        b"00:06.0 Serial controller [0700]: Red Hat, Inc. QEMU PCI 16550A Adapter [1b36:0003] (rev 01) (prog-if 02 [16550])\n\tSubsystem: Red Hat, Inc. QEMU Virtual Machine [1af4:1100]\n",
    )
    .unwrap();
    let d = DriverInfo::from_bytes("qemupciserial.inf", &bytes, &Target::new(Arch::X64)).unwrap();
    let report = check_devices(&dev.devices, &[d]);
    assert_eq!(
        report.devices[0].drivers[0].matched_id,
        "PCI\\VEN_1B36&DEV_0003"
    );
    // A serial controller is not checked, but its coverage is reported.
    assert!(!report.devices[0].checked);
}
