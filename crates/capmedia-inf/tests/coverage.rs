//! Real-world-shaped INFs (tests/data: UTF-16LE with BOM, UTF-8 with BOM,
//! Windows-1252, plain ASCII; [Strings] tokens, OS-versioned decorations,
//! `\` continuations) against device lists in each supported format.

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

use capmedia_content::Arch;
use capmedia_inf::{
    check_devices, parse_device_list, uncovered_devices, Device, DeviceKind, DeviceListFormat,
    DriverInfo, DriverKind, DriverTable, Inf, OsVersion, ParseOptions, Target, TextEncoding,
};

const E1I: &[u8] = include_bytes!("data/e1i68x64.inf");
const NETKVM: &[u8] = include_bytes!("data/netkvm.inf");
const VIOSCSI: &[u8] = include_bytes!("data/vioscsi.inf");
const STORNVME: &[u8] = include_bytes!("data/stornvme.inf");
const STORAHCI: &[u8] = include_bytes!("data/storahci.inf");
const LSPCI: &[u8] = include_bytes!("data/qemu-q35.lspci-nnv.txt");
const PNPUTIL: &[u8] = include_bytes!("data/pnputil-ids.txt");
const DEVMGR: &[u8] = include_bytes!("data/devmgr-ids.txt");

const ALL: &[(&str, &[u8])] = &[
    ("e1i68x64.inf", E1I),
    ("netkvm.inf", NETKVM),
    ("vioscsi.inf", VIOSCSI),
    ("stornvme.inf", STORNVME),
    ("storahci.inf", STORAHCI),
];

fn drivers(target: &Target, skip: &str) -> Vec<DriverInfo> {
    ALL.iter()
        .filter(|(n, _)| *n != skip)
        .map(|(n, b)| DriverInfo::from_bytes(n, b, target).unwrap())
        .collect()
}

#[test]
fn encodings_are_detected() {
    let enc = |b: &[u8]| Inf::parse(b).unwrap().encoding;
    assert_eq!(enc(E1I), TextEncoding::Utf16Le);
    assert_eq!(enc(STORNVME), TextEncoding::Utf16Le);
    assert_eq!(enc(VIOSCSI), TextEncoding::Utf8);
    assert_eq!(enc(NETKVM), TextEncoding::Windows1252);
    assert_eq!(enc(STORAHCI), TextEncoding::Utf8);
}

#[test]
fn e1i68x64_driver_info() {
    let x64 = Target::new(Arch::X64);
    let d = DriverInfo::from_bytes("e1i68x64.inf", E1I, &x64).unwrap();
    assert_eq!(d.class.as_deref(), Some("Net"));
    assert_eq!(
        d.class_guid.as_deref(),
        Some("{4d36e972-e325-11ce-bfc1-08002be10318}")
    );
    assert_eq!(d.kind, DriverKind::Net);
    assert_eq!(d.provider.as_deref(), Some("Intel"));
    let dv = d.driver_ver.as_ref().unwrap();
    assert_eq!(dv.date.as_deref(), Some("2019-07-19"));
    assert_eq!(dv.version.as_deref(), Some("12.18.9.23"));
    // 26100 >= 17763: the 1809+ section, its continued line included.
    assert_eq!(d.models.len(), 1);
    assert_eq!(d.models[0].manufacturer, "Intel");
    assert_eq!(d.models[0].section, "Intel.NTamd64.10.0...17763");
    assert_eq!(
        d.hardware_ids,
        vec![
            "PCI\\VEN_8086&DEV_100E",
            "PCI\\VEN_8086&DEV_100E&SUBSYS_001E8086",
            "PCI\\VEN_8086&DEV_10D3",
            "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086",
            "PCI\\VEN_8086&DEV_15B8&SUBSYS_06DE1028",
        ]
    );
    // Windows 10 1607 (14393) gets the plain 10.0 section.
    let w1607 = x64.with_os(OsVersion {
        major: 10,
        minor: 0,
        build: 14393,
    });
    let old = DriverInfo::from_bytes("e1i68x64.inf", E1I, &w1607).unwrap();
    assert_eq!(old.models[0].section, "Intel.NTamd64.10.0");
    assert_eq!(old.hardware_ids.len(), 2);
    // Windows 8.1: nothing applies.
    let w81 = x64.with_os(OsVersion {
        major: 6,
        minor: 3,
        build: 9600,
    });
    assert!(DriverInfo::from_bytes("e1i68x64.inf", E1I, &w81)
        .unwrap()
        .hardware_ids
        .is_empty());
    // No x86 or arm64 models (x86 would use an undecorated [Intel] section,
    // which this INF does not have).
    for arch in [Arch::X86, Arch::Arm64] {
        let d = DriverInfo::from_bytes("e1i68x64.inf", E1I, &Target::new(arch)).unwrap();
        assert!(d.models.is_empty() && d.hardware_ids.is_empty(), "{arch}");
    }
}

#[test]
fn localized_strings() {
    let de = ParseOptions {
        language: 0x0407,
        ..Default::default()
    };
    let d = DriverInfo::from_bytes_with("e1i68x64.inf", E1I, &Target::new(Arch::X64), &de).unwrap();
    assert_eq!(d.provider.as_deref(), Some("Intel Deutschland"));
    assert_eq!(d.models[0].manufacturer, "Intel Deutschland");
    // A token missing from [Strings.0407] comes from [Strings].
    let inf = Inf::parse_with(E1I, &de).unwrap();
    let section = inf.section("intel.ntamd64.10.0...17763").unwrap();
    assert_eq!(
        section.lines[0].key.as_deref(),
        Some("Intel(R) PRO/1000 MT-Netzwerkverbindung")
    );
    assert_eq!(
        section.lines[2].key.as_deref(),
        Some("Intel(R) 82574L Gigabit Network Connection")
    );
}

#[test]
fn netkvm_vioscsi_stornvme() {
    let x64 = Target::new(Arch::X64);
    let n = DriverInfo::from_bytes("netkvm.inf", NETKVM, &x64).unwrap();
    // A quoted string value keeps its comma.
    assert_eq!(n.provider.as_deref(), Some("Red Hat, Inc."));
    assert_eq!(n.kind, DriverKind::Net);
    assert_eq!(
        n.hardware_ids,
        vec![
            "PCI\\VEN_1AF4&DEV_1000&SUBSYS_00011AF4&REV_00",
            "PCI\\VEN_1AF4&DEV_1000",
            "PCI\\VEN_1AF4&DEV_1041&SUBSYS_11001AF4&REV_01",
            "PCI\\VEN_1AF4&DEV_1041",
        ]
    );
    let inf = Inf::parse(NETKVM).unwrap();
    assert_eq!(
        inf.section("strings")
            .unwrap()
            .entry("Trademark")
            .unwrap()
            .fields,
        vec!["VirtIO\u{ae} is 100%% virtual"]
    );
    let arm = DriverInfo::from_bytes("netkvm.inf", NETKVM, &Target::new(Arch::Arm64)).unwrap();
    assert_eq!(arm.models[0].section, "NetKVM.NTarm64.10.0");
    assert_eq!(arm.hardware_ids.len(), 1);

    let v = DriverInfo::from_bytes("vioscsi.inf", VIOSCSI, &x64).unwrap();
    assert_eq!(v.kind, DriverKind::Storage);
    assert_eq!(v.class.as_deref(), Some("SCSIAdapter"));
    let vi = Inf::parse(VIOSCSI).unwrap();
    assert!(vi
        .value("strings", "VioScsi.DeviceDesc")
        .unwrap()
        .ends_with("– ünïcödé"));
    let v86 = DriverInfo::from_bytes("vioscsi.inf", VIOSCSI, &Target::new(Arch::X86)).unwrap();
    assert_eq!(v86.models[0].section, "VioScsi.NTx86.10.0");

    let s = DriverInfo::from_bytes("stornvme.inf", STORNVME, &x64).unwrap();
    assert_eq!(s.provider.as_deref(), Some("Microsoft"));
    assert_eq!(
        s.models[0].manufacturer,
        "(Standard NVM Express Controllers)"
    );
    assert_eq!(s.hardware_ids, vec!["PCI\\CC_010802"]);
    assert_eq!(
        s.driver_ver.as_ref().unwrap().version.as_deref(),
        Some("10.0.26100.1882")
    );
}

#[test]
fn lspci_all_covered_then_nic_missing() {
    let list = parse_device_list(LSPCI).unwrap();
    assert_eq!(list.format, DeviceListFormat::Lspci);
    let ids: Vec<(&str, DeviceKind)> = list
        .devices
        .iter()
        .map(|d| (d.id.as_str(), d.kind))
        .collect();
    assert_eq!(
        ids,
        vec![
            (
                "PCI\\VEN_8086&DEV_29C0&SUBSYS_11001AF4&REV_00",
                DeviceKind::Other
            ),
            (
                "PCI\\VEN_1234&DEV_1111&SUBSYS_11001AF4&REV_02",
                DeviceKind::Other
            ),
            (
                "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086&REV_00",
                DeviceKind::Net
            ),
            (
                "PCI\\VEN_1AF4&DEV_1041&SUBSYS_11001AF4&REV_01",
                DeviceKind::Net
            ),
            (
                "PCI\\VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01",
                DeviceKind::Storage
            ),
            (
                "PCI\\VEN_1B36&DEV_0010&SUBSYS_11001AF4&REV_02",
                DeviceKind::Storage
            ),
            (
                "PCI\\VEN_1B36&DEV_000D&SUBSYS_11001AF4&REV_01",
                DeviceKind::Other
            ),
            (
                "PCI\\VEN_8086&DEV_2922&SUBSYS_11001AF4&REV_02",
                DeviceKind::Storage
            ),
        ]
    );

    let x64 = Target::new(Arch::X64);
    let all = drivers(&x64, "");
    let report = check_devices(&list.devices, &all);
    assert!(report.is_complete(), "{report}");
    let via = |i: usize| {
        let m = &report.devices[i].drivers[0];
        (m.file.as_str(), m.matched_id.as_str(), m.exact)
    };
    assert_eq!(
        via(2),
        (
            "e1i68x64.inf",
            "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086",
            true
        )
    );
    assert_eq!(
        via(3),
        (
            "netkvm.inf",
            "PCI\\VEN_1AF4&DEV_1041&SUBSYS_11001AF4&REV_01",
            true
        )
    );
    assert_eq!(via(5), ("stornvme.inf", "PCI\\CC_010802", true));
    assert_eq!(via(7), ("storahci.inf", "PCI\\CC_010601", true));
    // Devices of other classes are listed but not checked.
    assert!(!report.devices[0].checked && !report.devices[0].is_covered());

    // Without netkvm the virtio NIC is uncovered, and named.
    let some = drivers(&x64, "netkvm.inf");
    let missing = uncovered_devices(&list.devices, &some);
    assert_eq!(
        missing.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        vec!["PCI\\VEN_1AF4&DEV_1041&SUBSYS_11001AF4&REV_01"]
    );
    let report = check_devices(&list.devices, &some);
    assert!(!report.is_complete());
    let table = report.to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("PCI\\VEN_1AF4&DEV_1041") && l.contains("MISSING")),
        "{table}"
    );
    assert!(table.contains("4 of 5 checked devices covered, 1 without a driver"));

    // On arm64, e1i68x64 has no models: the Intel NIC is uncovered too.
    let arm = drivers(&Target::new(Arch::Arm64), "");
    let missing = uncovered_devices(&list.devices, &arm);
    assert_eq!(
        missing.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        vec![
            "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086&REV_00",
            // vioscsi has no arm64 models either.
            "PCI\\VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01",
        ]
    );
}

#[test]
fn lspci_without_v_matches_subsys_and_prog_if_loosely() {
    let text = "00:02.0 Ethernet controller [0200]: Intel Corporation 82574L Gigabit Network Connection [8086:10d3]\n\
                00:05.0 Non-Volatile memory controller [0108]: Red Hat, Inc. QEMU NVM Express Controller [1b36:0010] (rev 02)\n\
                00:06.0 Ethernet controller [0200]: Intel Corporation Ethernet Connection (2) I219-V [8086:15b8] (rev 10)\n";
    let list = parse_device_list(text.as_bytes()).unwrap();
    assert_eq!(list.devices[0].id, "PCI\\VEN_8086&DEV_10D3&REV_00");
    assert!(!list.devices[0].subsys_known);
    let report = check_devices(&list.devices, &drivers(&Target::new(Arch::X64), ""));
    assert!(report.is_complete(), "{report}");
    // The generic VEN&DEV id is an exact match and ranks before the
    // SUBSYS-specific one that needs the unknown SUBSYS.
    let nic = &report.devices[0];
    assert_eq!(nic.drivers.len(), 1);
    assert_eq!(nic.drivers[0].matched_id, "PCI\\VEN_8086&DEV_10D3");
    assert!(nic.drivers[0].exact);
    // NVMe: the prog-if is not shown, so CC_010802 matches as a maybe.
    let nvme = &report.devices[1].drivers[0];
    assert_eq!(
        (nvme.matched_id.as_str(), nvme.exact),
        ("PCI\\CC_010802", false)
    );
    // I219-V: only a SUBSYS-specific id exists; matched as a maybe.
    let i219 = &report.devices[2].drivers[0];
    assert_eq!(
        (i219.matched_id.as_str(), i219.exact),
        ("PCI\\VEN_8086&DEV_15B8&SUBSYS_06DE1028", false)
    );
    assert!(report.to_string().contains("(if SUBSYS/prog-if agree)"));
}

#[test]
fn lspci_numeric_and_machine_readable() {
    let n = "00:03.0 0200: 1af4:1041 (rev 01)\n\tSubsystem: 1af4:1100\n";
    let l = parse_device_list(n.as_bytes()).unwrap();
    assert_eq!(l.format, DeviceListFormat::Lspci);
    assert_eq!(
        l.devices[0].id,
        "PCI\\VEN_1AF4&DEV_1041&SUBSYS_11001AF4&REV_01"
    );
    let mm = "Slot:\t00:05.0\nClass:\tNon-Volatile memory controller [0108]\n\
              Vendor:\tRed Hat, Inc. [1b36]\nDevice:\tQEMU NVM Express Controller [0010]\n\
              SVendor:\tRed Hat, Inc. [1af4]\nSDevice:\tDevice [1100]\nRev:\t02\nProgIf:\t02\n\n\
              Slot:\t00:1d.0\nClass:\tUSB controller [0c03]\nVendor:\tRed Hat, Inc. [1b36]\n\
              Device:\tQEMU XHCI Host Controller [000d]\nRev:\t01\nProgIf:\t30\n";
    let l = parse_device_list(mm.as_bytes()).unwrap();
    assert_eq!(l.format, DeviceListFormat::LspciMachine);
    assert_eq!(
        l.devices[0].id,
        "PCI\\VEN_1B36&DEV_0010&SUBSYS_11001AF4&REV_02"
    );
    assert_eq!(l.devices[0].kind, DeviceKind::Storage);
    assert_eq!(
        l.devices[0].description.as_deref(),
        Some("QEMU NVM Express Controller")
    );
    assert_eq!(
        l.devices[1].id,
        "PCI\\VEN_1B36&DEV_000D&SUBSYS_00000000&REV_01"
    );
    assert_eq!(l.devices[1].kind, DeviceKind::Other);
    // lspci without -nn has no ids to match: a clear error.
    let plain = "00:03.0 Ethernet controller: Red Hat, Inc. Virtio network device (rev 01)\n";
    let e = parse_device_list(plain.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("lspci -nn"), "{e}");
}

#[test]
fn pnputil_with_ids() {
    let list = parse_device_list(PNPUTIL).unwrap();
    assert_eq!(list.format, DeviceListFormat::Pnputil);
    assert_eq!(list.encoding, TextEncoding::Utf16Le);
    let kinds: Vec<DeviceKind> = list.devices.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![
            DeviceKind::Net,
            DeviceKind::Storage,
            DeviceKind::Other,
            // No class, no ids: must be checked.
            DeviceKind::Unknown
        ]
    );
    let nic = &list.devices[0];
    assert_eq!(
        nic.id,
        "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086&REV_00\\3&11583659&0&10"
    );
    assert_eq!(
        nic.description.as_deref(),
        Some("Intel(R) 82574L Gigabit Network Connection")
    );
    assert_eq!(nic.hardware_ids.len(), 4);
    assert_eq!(nic.compatible_ids.len(), 7);
    assert_eq!(nic.class_code.unwrap().prog_if, Some(0));
    // Windows' own order is kept.
    assert_eq!(
        nic.match_ids()[..3],
        [
            "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086&REV_00",
            "PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086",
            "PCI\\VEN_8086&DEV_10D3&CC_020000",
        ]
    );
    let x64 = Target::new(Arch::X64);
    let report = check_devices(&list.devices, &drivers(&x64, "netkvm.inf"));
    assert_eq!(
        report
            .uncovered()
            .iter()
            .map(|d| d.device.id.as_str())
            .collect::<Vec<_>>(),
        vec!["PCI\\VEN_1AF4&DEV_1041&SUBSYS_11001AF4&REV_01\\3&11583659&0&18"]
    );
    assert_eq!(report.devices[1].drivers[0].matched_id, "PCI\\CC_010802");
    assert!(check_devices(&list.devices, &drivers(&x64, "")).is_complete());

    // Without /ids, only the instance ids and classes.
    let short = "Instance ID:                PCI\\VEN_8086&DEV_10D3&SUBSYS_00008086&REV_00\\3&11583659&0&10\n\
                 Device Description:         Intel(R) 82574L Gigabit Network Connection\n\
                 Class Name:                 Net\n\
                 Class GUID:                 {4d36e972-e325-11ce-bfc1-08002be10318}\n\n\
                 Instance ID:                ACPI\\PNP0A03\\0\n\
                 Class Name:                 System\n";
    let l = parse_device_list(short.as_bytes()).unwrap();
    assert_eq!(l.devices.len(), 2);
    assert_eq!(l.devices[0].kind, DeviceKind::Net);
    assert_eq!(l.devices[1].kind, DeviceKind::Other);
    let r = check_devices(&l.devices, &drivers(&x64, ""));
    assert!(r.is_complete());
}

#[test]
fn id_list_groups_device_manager_blocks() {
    let list = parse_device_list(DEVMGR).unwrap();
    assert_eq!(list.format, DeviceListFormat::Ids);
    // "InstanceId" and the ruler are not ids.
    assert_eq!(list.ignored_lines, 2);
    let ids: Vec<&str> = list.devices.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "PCI\\VEN_8086&DEV_15B8&SUBSYS_06DE1028&REV_10",
            "PCI\\VEN_8086&DEV_A282&SUBSYS_06DE1028&REV_00\\3&11583659&0&B8",
            "USB\\VID_0BDA&PID_8153&REV_3100\\000001000000",
        ]
    );
    let nic = &list.devices[0];
    assert_eq!(nic.hardware_ids.len(), 3);
    assert_eq!(nic.kind, DeviceKind::Net);
    assert_eq!(list.devices[1].kind, DeviceKind::Unknown);
    let report = check_devices(&list.devices, &drivers(&Target::new(Arch::X64), ""));
    let nic = &report.devices[0];
    assert_eq!(
        nic.drivers[0].matched_id,
        "PCI\\VEN_8086&DEV_15B8&SUBSYS_06DE1028"
    );
    // The SATA controller (no class known from a bare instance id) and the
    // USB NIC have no driver here.
    assert_eq!(report.uncovered().len(), 2);
}

#[test]
fn require_hwid_single_device() {
    let all = drivers(&Target::new(Arch::X64), "");
    let covered = Device::from_id("PCI\\VEN_1AF4&DEV_1048&SUBSYS_11001AF4&REV_01");
    let not = Device::from_id("PCI\\VEN_10EC&DEV_8168&SUBSYS_86771043&REV_15");
    let missing = uncovered_devices(&[covered, not.clone()], &all);
    assert_eq!(missing, vec![not]);
    // A CC_ part gives the class: storage, covered by the class driver.
    let d = Device::from_id("PCI\\VEN_144D&DEV_A808&CC_010802");
    assert_eq!(d.kind, DeviceKind::Storage);
    assert!(uncovered_devices(&[d], &all).is_empty());
}

#[test]
fn json_and_tables() {
    let all = drivers(&Target::new(Arch::X64), "");
    let table = DriverTable(&all).to_string();
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("INF") && header.ends_with("IDS"));
    let row = table.lines().find(|l| l.starts_with("netkvm.inf")).unwrap();
    // Columns line up under the header.
    for (col, value) in [
        ("KIND", "net "),
        ("CLASS", "Net "),
        ("PROVIDER", "Red Hat, Inc. "),
        ("VERSION", "100.95.104.26200 "),
        ("DATE", "2024-08-14 "),
        ("IDS", "4"),
    ] {
        let at = header.find(col).unwrap();
        assert_eq!(row.get(at..at + value.len()), Some(value), "{table}");
    }
    let v = serde_json::to_value(&all[0]).unwrap();
    assert_eq!(v["file"], "e1i68x64.inf");
    assert_eq!(v["arch"], "x64");
    assert_eq!(v["kind"], "net");
    assert_eq!(v["driver_ver"]["date"], "2019-07-19");
    let list = parse_device_list(LSPCI).unwrap();
    let report = check_devices(&list.devices, &all);
    let text = report.to_string();
    let header = text.lines().next().unwrap();
    let status = header.find("STATUS").unwrap();
    let kind = header.find("KIND").unwrap();
    let nic = text.lines().nth(3).unwrap();
    assert_eq!(nic.get(kind..kind + 4), Some("net "), "{text}");
    assert_eq!(nic.get(status..status + 8), Some("covered "), "{text}");
    let v = serde_json::to_value(&report).unwrap();
    assert_eq!(v["devices"][2]["kind"], "net");
    assert_eq!(v["devices"][2]["drivers"][0]["file"], "e1i68x64.inf");
    assert_eq!(v["devices"][0]["checked"], false);
    let v = serde_json::to_value(&list).unwrap();
    assert_eq!(v["format"], "lspci");
}
