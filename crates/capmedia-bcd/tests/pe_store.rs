//! The Windows PE RAM-disk stores capmedia writes, checked with hivex
//! (`hivexregedit --export`) and chntpw (`reged -x`) against a table of the
//! elements `bcdedit` sets for a Windows PE RAM-disk boot.

#[path = "../../capmedia-regf/tests/common/mod.rs"]
mod common;

use capmedia_bcd::{pe_ramdisk_store, Firmware, Store};
use capmedia_regf::utf16z;
use common::*;

const BOOTMGR: &str = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}";
const LOADER: &str = "{7619dcc9-fafe-11d9-b411-000476eba25f}";
const RAMDISKOPTIONS: &str = "{ae5534e0-a924-466c-b836-758539a3ee3a}";
const BOOTLOADERSETTINGS: &str = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}";
const GLOBALSETTINGS: &str = "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}";
const DBGSETTINGS: &str = "{4636856e-540f-4170-a130-a84776f4c654}";
const EMSSETTINGS: &str = "{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}";
const HYPERVISORSETTINGS: &str = "{7ff607e0-4395-11db-b0de-0800200c9a66}";

/// An element's expected value, encoded below independently of the crate.
#[derive(Debug, Clone, Copy)]
enum V {
    Sz(&'static str),
    Objects(&'static [&'static str]),
    Int(u64),
    Bool(bool),
    /// `boot`
    BootDevice,
    /// `ramdisk=[boot]\sources\boot.wim,{ramdiskoptions}`
    RamdiskBootWim,
}

/// The objects (`identifier`, object type) of the store.
///
/// Object types: Microsoft's BCD WMI provider documentation (BcdObject
/// `Type`: 0x10100002 Windows boot manager, 0x10200003 Windows boot loader,
/// 0x20100000 / 0x20200003 settings inherited by any object / by OS
/// loaders, 0x30000000 device options).
const OBJECTS: &[(&str, u32)] = &[
    (BOOTMGR, 0x1010_0002),
    (LOADER, 0x1020_0003),
    (RAMDISKOPTIONS, 0x3000_0000),
    (BOOTLOADERSETTINGS, 0x2020_0003),
    (GLOBALSETTINGS, 0x2010_0000),
    (DBGSETTINGS, 0x2010_0000),
    (EMSSETTINGS, 0x2010_0000),
    (HYPERVISORSETTINGS, 0x2020_0003),
];

/// The elements of the Windows PE RAM-disk configuration, one row each:
/// (object, element id, bcdedit name, value).
///
/// Source: Microsoft's Windows PE RAM-disk instructions for `bcdedit`
/// ("Boot to WinPE from a RAM disk" / "WDS: Windows PE RAM disk" in the ADK
/// and Windows Deployment Services documentation:
/// `bcdedit /create {ramdiskoptions}`, `/set {ramdiskoptions}
/// ramdisksdidevice boot`, `ramdisksdipath \boot\boot.sdi`,
/// `/create /application osloader`, `/set {guid} device
/// ramdisk=[boot]\sources\boot.wim,{ramdiskoptions}`, `osdevice` the same,
/// `path \windows\system32\boot\winload.exe|.efi`, `systemroot \windows`,
/// `detecthal yes`, `winpe yes`, `/create {bootmgr}`, `timeout 30`,
/// `displayorder`, `default`), the inherited settings objects bcdedit's
/// default templates add (`{globalsettings}`, `{dbgsettings}` serial port 1
/// at 115200, `{emssettings}`, `{bootloadersettings}`,
/// `{hypervisorsettings}`), with the element ids of Microsoft's
/// `BcdLibraryElementTypes` (1xxxxxxx), `BcdBootMgrElementTypes` and
/// `BcdOSLoaderElementTypes` (2xxxxxxx) and `BcdDeviceObjectElementTypes`
/// (3xxxxxxx) enumerations.
fn table(firmware: Firmware, label: &'static str) -> Vec<(&'static str, u32, &'static str, V)> {
    let winload = match firmware {
        Firmware::Bios => "\\windows\\system32\\boot\\winload.exe",
        Firmware::Uefi => "\\windows\\system32\\boot\\winload.efi",
    };
    let mut t = vec![
        (
            BOOTMGR,
            0x1200_0004,
            "description",
            V::Sz("Windows Boot Manager"),
        ),
        (BOOTMGR, 0x1200_0005, "locale", V::Sz("en-US")),
        (
            BOOTMGR,
            0x1400_0006,
            "inherit",
            V::Objects(&[GLOBALSETTINGS]),
        ),
        (BOOTMGR, 0x2300_0003, "default", V::Sz(LOADER)),
        (BOOTMGR, 0x2400_0001, "displayorder", V::Objects(&[LOADER])),
        (BOOTMGR, 0x2500_0004, "timeout", V::Int(30)),
        (LOADER, 0x1100_0001, "device", V::RamdiskBootWim),
        (LOADER, 0x1200_0002, "path", V::Sz(winload)),
        (LOADER, 0x1200_0004, "description", V::Sz(label)),
        (LOADER, 0x1200_0005, "locale", V::Sz("en-US")),
        (
            LOADER,
            0x1400_0006,
            "inherit",
            V::Objects(&[BOOTLOADERSETTINGS]),
        ),
        (LOADER, 0x2100_0001, "osdevice", V::RamdiskBootWim),
        (LOADER, 0x2200_0002, "systemroot", V::Sz("\\windows")),
        (LOADER, 0x2500_00C2, "bootmenupolicy", V::Int(1)),
        (LOADER, 0x2600_0010, "detecthal", V::Bool(true)),
        (LOADER, 0x2600_0022, "winpe", V::Bool(true)),
        (LOADER, 0x2600_00B0, "ems", V::Bool(false)),
        (
            RAMDISKOPTIONS,
            0x1200_0004,
            "description",
            V::Sz("Ramdisk Options"),
        ),
        (
            RAMDISKOPTIONS,
            0x3100_0003,
            "ramdisksdidevice",
            V::BootDevice,
        ),
        (
            RAMDISKOPTIONS,
            0x3200_0004,
            "ramdisksdipath",
            V::Sz("\\boot\\boot.sdi"),
        ),
        (
            BOOTLOADERSETTINGS,
            0x1400_0006,
            "inherit",
            V::Objects(&[GLOBALSETTINGS, HYPERVISORSETTINGS]),
        ),
        (
            GLOBALSETTINGS,
            0x1400_0006,
            "inherit",
            V::Objects(&[DBGSETTINGS, EMSSETTINGS]),
        ),
        (DBGSETTINGS, 0x1500_0011, "debugtype", V::Int(0)),
        (DBGSETTINGS, 0x1500_0013, "debugport", V::Int(1)),
        (DBGSETTINGS, 0x1500_0014, "baudrate", V::Int(115_200)),
        (EMSSETTINGS, 0x1600_0020, "bootems", V::Bool(false)),
        (
            HYPERVISORSETTINGS,
            0x1200_0004,
            "description",
            V::Sz("Hypervisor Settings"),
        ),
        (
            HYPERVISORSETTINGS,
            0x2500_00F3,
            "hypervisordebugtype",
            V::Int(0),
        ),
        (
            HYPERVISORSETTINGS,
            0x2500_00F4,
            "hypervisordebugport",
            V::Int(1),
        ),
        (
            HYPERVISORSETTINGS,
            0x2500_00F5,
            "hypervisorbaudrate",
            V::Int(115_200),
        ),
    ];
    if firmware == Firmware::Uefi {
        // Windows 8 and later UEFI loaders need isolatedcontext.
        t.push((LOADER, 0x1600_0060, "isolatedcontext", V::Bool(true)));
    }
    t
}

fn guid_le(s: &str) -> Vec<u8> {
    let h: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    let b: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let mut out = vec![b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]];
    out.extend_from_slice(&b[8..]);
    out
}

fn u32le(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// `boot`: a nil options GUID, then a boot device record (type 5, size 0x48).
fn boot_device() -> Vec<u8> {
    let mut d = vec![0u8; 16];
    d.extend(u32le(5));
    d.extend(u32le(0));
    d.extend(u32le(0x48));
    d.extend(vec![0u8; 0x48 - 12]);
    d
}

/// The RAM-disk device as a Windows setup medium's BCD stores it (same
/// bytes, with `{ramdiskoptions}` as the options object).
fn ramdisk_device() -> Vec<u8> {
    let path = utf16z("\\sources\\boot.wim");
    let mut d = guid_le(RAMDISKOPTIONS);
    d.extend(u32le(0)); // block I/O
    d.extend(u32le(1));
    d.extend(u32le(0xA0));
    d.extend(u32le(0));
    d.extend(u32le(3)); // RAM disk
    d.extend(vec![0u8; 20]);
    d.extend(u32le(1));
    d.extend(u32le(0x78));
    d.extend(u32le(5));
    d.extend(&boot_device()[16..]);
    d.extend(path);
    assert_eq!(d.len(), 16 + 0xA0);
    d
}

fn encode(v: V) -> (u32, Vec<u8>) {
    match v {
        V::Sz(s) => (1, utf16z(s)),
        V::Objects(l) => {
            let mut d = Vec::new();
            for g in l {
                d.extend(utf16z(g));
            }
            d.extend([0, 0]);
            (7, d)
        }
        V::Int(i) => (3, i.to_le_bytes().to_vec()),
        V::Bool(b) => (3, vec![u8::from(b)]),
        V::BootDevice => (3, boot_device()),
        V::RamdiskBootWim => (3, ramdisk_device()),
    }
}

/// The whole hive the table describes.
fn expected(firmware: Firmware, label: &'static str) -> Flat {
    let mut f = Flat::new();
    f.insert(String::new(), Values::new());
    let mut desc = Values::new();
    desc.insert("KeyName".into(), (1, utf16z("BCD00000000")));
    f.insert("Description".into(), desc);
    f.insert("Objects".into(), Values::new());
    for (id, ty) in OBJECTS {
        f.insert(format!("Objects\\{id}"), Values::new());
        let mut d = Values::new();
        d.insert("Type".into(), (4, ty.to_le_bytes().to_vec()));
        f.insert(format!("Objects\\{id}\\Description"), d);
        f.insert(format!("Objects\\{id}\\Elements"), Values::new());
    }
    for (obj, el, _, v) in table(firmware, label) {
        let mut vals = Values::new();
        vals.insert("Element".into(), encode(v));
        let prev = f.insert(format!("Objects\\{obj}\\Elements\\{el:08x}"), vals);
        assert!(prev.is_none(), "table lists {obj} {el:08x} twice");
    }
    f
}

fn store_file(firmware: Firmware, label: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let bytes = pe_ramdisk_store(firmware, label, 132_000_000_000_000_000).expect("store");
    assert_eq!(bytes.len() % 4096, 0);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("BCD");
    std::fs::write(&p, bytes).expect("write");
    (dir, p)
}

#[test]
fn hivex_reads_every_element_of_the_table_and_nothing_else() {
    for fw in [Firmware::Bios, Firmware::Uefi] {
        let (_d, p) = store_file(fw, "Configuration Manager");
        let got = hivexregedit(&p);
        assert_same(
            &format!("{fw:?} store via hivexregedit"),
            &got,
            &expected(fw, "Configuration Manager"),
        );
    }
}

#[test]
fn reged_reads_every_element_of_the_table_and_nothing_else() {
    for fw in [Firmware::Bios, Firmware::Uefi] {
        let (_d, p) = store_file(fw, "Capture Media");
        let got = reged(&p);
        assert_same(
            &format!("{fw:?} store via reged"),
            &got,
            &as_reged_sees(expected(fw, "Capture Media")),
        );
    }
}

#[test]
fn element_names_are_bcdedits() {
    for fw in [Firmware::Bios, Firmware::Uefi] {
        let (_d, p) = store_file(fw, "x");
        let store = Store::from_hive(&std::fs::read(&p).expect("read")).expect("parse");
        for (obj, el, name, _) in table(fw, "x") {
            let o = store
                .objects
                .iter()
                .find(|o| o.id.to_string() == obj)
                .unwrap_or_else(|| panic!("object {obj}"));
            let e = o
                .elements
                .iter()
                .find(|e| e.id == el)
                .unwrap_or_else(|| panic!("{obj} {el:08x}"));
            assert_eq!(e.name, name, "{obj} {el:08x}");
        }
    }
}

#[test]
fn same_inputs_same_bytes() {
    let a = pe_ramdisk_store(Firmware::Bios, "L", 5).expect("a");
    assert_eq!(a, pe_ramdisk_store(Firmware::Bios, "L", 5).expect("b"));
    assert_ne!(a, pe_ramdisk_store(Firmware::Uefi, "L", 5).expect("c"));
    assert_ne!(a, pe_ramdisk_store(Firmware::Bios, "M", 5).expect("d"));
    let t = pe_ramdisk_store(Firmware::Bios, "L", 6).expect("e");
    assert_ne!(a, t);
    assert_eq!(u64::from_le_bytes(t[12..20].try_into().expect("8")), 6);
}

const BIOS_ENUM: &str = r"Windows Boot Manager
--------------------
identifier              {bootmgr}
description             Windows Boot Manager
locale                  en-US
inherit                 {globalsettings}
default                 {default}
displayorder            {default}
timeout                 30

Windows Boot Loader
-------------------
identifier              {default}
device                  ramdisk=[boot]\sources\boot.wim,{ramdiskoptions}
path                    \windows\system32\boot\winload.exe
description             Configuration Manager
locale                  en-US
inherit                 {bootloadersettings}
osdevice                ramdisk=[boot]\sources\boot.wim,{ramdiskoptions}
systemroot              \windows
bootmenupolicy          Standard
detecthal               Yes
winpe                   Yes
ems                     No

EMS Settings
------------
identifier              {emssettings}
bootems                 No

Debugger Settings
-----------------
identifier              {dbgsettings}
debugtype               Serial
debugport               1
baudrate                115200

Boot Loader Settings
--------------------
identifier              {bootloadersettings}
inherit                 {globalsettings}
                        {hypervisorsettings}

Global Settings
---------------
identifier              {globalsettings}
inherit                 {dbgsettings}
                        {emssettings}

Hypervisor Settings
-------------------
identifier              {hypervisorsettings}
description             Hypervisor Settings
hypervisordebugtype     Serial
hypervisordebugport     1
hypervisorbaudrate      115200

Device options
--------------
identifier              {ramdiskoptions}
description             Ramdisk Options
ramdisksdidevice        boot
ramdisksdipath          \boot\boot.sdi
";

#[test]
fn display_is_bcdedit_enum_all() {
    let (_d, p) = store_file(Firmware::Bios, "Configuration Manager");
    let store = Store::from_hive(&std::fs::read(&p).expect("read")).expect("parse");
    assert_eq!(store.to_string(), BIOS_ENUM);
}

#[test]
fn json_names_objects_and_decodes_values() {
    let (_d, p) = store_file(Firmware::Uefi, "Configuration Manager");
    let store = Store::from_hive(&std::fs::read(&p).expect("read")).expect("parse");
    let j = serde_json::to_value(&store).expect("json");
    let objects = j["objects"].as_array().expect("objects");
    let loader = objects.iter().find(|o| o["id"] == LOADER).expect("loader");
    assert_eq!(loader["kind"], "Windows Boot Loader");
    assert_eq!(loader["object_type"], 0x1020_0003);
    let dev = loader["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .find(|e| e["name"] == "device")
        .expect("device");
    assert_eq!(dev["value"]["type"], "device");
    assert_eq!(dev["value"]["value"]["options"], RAMDISKOPTIONS);
    assert_eq!(dev["value"]["value"]["device"]["kind"], "ramdisk");
    assert_eq!(
        dev["value"]["value"]["device"]["path"],
        "\\sources\\boot.wim"
    );
    assert_eq!(dev["value"]["value"]["device"]["parent"]["kind"], "boot");
    let bm = objects
        .iter()
        .find(|o| o["id"] == BOOTMGR)
        .expect("bootmgr");
    assert_eq!(bm["alias"], "{bootmgr}");
}
