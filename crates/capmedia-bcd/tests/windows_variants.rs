//! Stores laid out as Windows writes them (not as capmedia does), built
//! with hivex: integers in as few bytes as `bcdedit` leaves them (`1e` for
//! a timeout of 30, `00,c2,01` for 115200), setup media's private RAM-disk
//! options object, the memory tester, partition devices, elements no name
//! is known for and a value stored with an unexpected type. The reader must
//! decode all of it and print it as `bcdedit /enum all` would.

#[path = "../../capmedia-regf/tests/common/mod.rs"]
mod common;

use std::process::Command;

use capmedia_bcd::{Device, ElementValue, Store};
use capmedia_regf::{utf16z, write, Key, WriteOptions};
use common::*;

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(",")
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

fn record(ty: u32, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend(ty.to_le_bytes());
    r.extend(0u32.to_le_bytes());
    r.extend(((16 + body.len()) as u32).to_le_bytes());
    r.extend(0u32.to_le_bytes());
    r.extend(body);
    r
}

fn boot() -> Vec<u8> {
    let mut d = vec![0u8; 16];
    d.extend(record(5, &[0u8; 0x38]));
    d
}

fn gpt_partition(disk: &str, part: &str) -> Vec<u8> {
    let mut body = guid_le(part);
    body.extend([0u8; 4]); // to 0x24
    body.extend(0u32.to_le_bytes()); // GPT
    body.extend(guid_le(disk));
    body.resize(0x38, 0);
    let mut d = vec![0u8; 16];
    d.extend(record(6, &body));
    d
}

fn mbr_partition(sig: u32, offset: u64) -> Vec<u8> {
    let mut body = offset.to_le_bytes().to_vec();
    body.resize(0x14, 0);
    body.extend(1u32.to_le_bytes()); // MBR
    body.extend(sig.to_le_bytes());
    body.resize(0x38, 0);
    let mut d = vec![0u8; 16];
    d.extend(record(6, &body));
    d
}

fn ramdisk(options: &str, path: &str) -> Vec<u8> {
    let parent = &boot()[16..];
    let p = utf16z(path);
    let mut body = 3u32.to_le_bytes().to_vec();
    body.extend([0u8; 20]);
    body.extend(1u32.to_le_bytes());
    body.extend(((12 + parent.len() + p.len()) as u32).to_le_bytes());
    body.extend(5u32.to_le_bytes());
    body.extend(parent);
    body.extend(p);
    let mut r = record(0, &body);
    r[4] = 1;
    let mut d = guid_le(options);
    d.extend(r);
    d
}

fn multi(l: &[&str]) -> Vec<u8> {
    let mut d = Vec::new();
    for s in l {
        d.extend(utf16z(s));
    }
    d.extend([0, 0]);
    d
}

const SETUP_OPTIONS: &str = "{7619dcc8-fafe-11d9-b411-000476eba25f}";
const LOADER: &str = "{7619dcc9-fafe-11d9-b411-000476eba25f}";
const OTHER: &str = "{11111111-2222-3333-4444-555555555555}";

/// (element key name, reg type, data)
type RawElement = (&'static str, u32, Vec<u8>);

/// (object, type, elements)
fn objects() -> Vec<(&'static str, u32, Vec<RawElement>)> {
    vec![
        (
            "{9dea862c-5cdd-4e70-acc1-f32b344d4795}",
            0x1010_0002,
            vec![
                ("12000004", 1, utf16z("Windows Boot Manager")),
                ("24000001", 7, multi(&[LOADER, OTHER])),
                ("23000003", 1, utf16z(LOADER)),
                (
                    "24000010",
                    7,
                    multi(&["{b2721d73-1db4-4c62-bf78-c548a880142d}"]),
                ),
                ("25000004", 3, vec![0x1e]),
            ],
        ),
        (
            LOADER,
            0x1020_0003,
            vec![
                ("11000001", 3, ramdisk(SETUP_OPTIONS, "\\sources\\boot.wim")),
                ("12000004", 1, utf16z("Windows Setup")),
                ("21000001", 3, ramdisk(SETUP_OPTIONS, "\\sources\\boot.wim")),
                ("26000010", 3, vec![1]),
                ("250000C2", 3, vec![1, 0, 0, 0, 0, 0, 0, 0]),
                ("25000020", 3, vec![0]),
            ],
        ),
        (
            OTHER,
            0x1020_0003,
            vec![
                (
                    "11000001",
                    3,
                    gpt_partition(
                        "{aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee}",
                        "{01234567-89ab-cdef-0123-456789abcdef}",
                    ),
                ),
                ("21000001", 3, mbr_partition(0x1a2b_3c4d, 1_048_576)),
                ("12000004", 1, utf16z("Windows 10")),
                ("250000ab", 3, vec![7]),
                ("12000030", 3, vec![1, 2, 3]),
            ],
        ),
        (
            "{b2721d73-1db4-4c62-bf78-c548a880142d}",
            0x1020_0005,
            vec![
                ("11000001", 3, boot()),
                ("12000002", 1, utf16z("\\boot\\memtest.exe")),
                ("1600000b", 3, vec![1]),
            ],
        ),
        (
            "{4636856e-540f-4170-a130-a84776f4c654}",
            0x2010_0000,
            vec![
                ("15000011", 3, vec![0]),
                ("15000014", 3, vec![0x00, 0xc2, 0x01]),
            ],
        ),
        (
            SETUP_OPTIONS,
            0x3000_0000,
            vec![
                ("31000003", 3, boot()),
                ("32000004", 1, utf16z("\\boot\\boot.sdi")),
            ],
        ),
    ]
}

const ENUM: &str = r"Windows Boot Manager
--------------------
identifier              {bootmgr}
description             Windows Boot Manager
default                 {default}
displayorder            {default}
                        {11111111-2222-3333-4444-555555555555}
toolsdisplayorder       {memdiag}
timeout                 30

Windows Boot Loader
-------------------
identifier              {11111111-2222-3333-4444-555555555555}
device                  partition=(gpt disk {aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee} partition {01234567-89ab-cdef-0123-456789abcdef})
description             Windows 10
loadoptions             010203
osdevice                partition=(mbr disk 1a2b3c4d offset 1048576)
custom:250000ab         7

Windows Boot Loader
-------------------
identifier              {default}
device                  ramdisk=[boot]\sources\boot.wim,{7619dcc8-fafe-11d9-b411-000476eba25f}
description             Windows Setup
osdevice                ramdisk=[boot]\sources\boot.wim,{7619dcc8-fafe-11d9-b411-000476eba25f}
nx                      OptIn
bootmenupolicy          Standard
detecthal               Yes

Windows Memory Tester
---------------------
identifier              {memdiag}
device                  boot
path                    \boot\memtest.exe
badmemoryaccess         Yes

Debugger Settings
-----------------
identifier              {dbgsettings}
debugtype               Serial
baudrate                115200

Device options
--------------
identifier              {7619dcc8-fafe-11d9-b411-000476eba25f}
ramdisksdidevice        boot
ramdisksdipath          \boot\boot.sdi
";

#[test]
fn windows_layouts_decode_as_bcdedit_shows_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hive = dir.path().join("BCD");
    // Start from an empty hive whose root is named as on Windows media;
    // hivex writes everything else.
    let empty = write(&Key::new("System"), &WriteOptions::default()).expect("empty");
    std::fs::write(&hive, empty).expect("write");
    let mut reg = String::from("Windows Registry Editor Version 5.00\n\n");
    reg += "[\\Description]\n\"KeyName\"=\"BCD00000001\"\n\n[\\Objects]\n\n";
    for (obj, ty, elements) in objects() {
        // hivexregedit creates a key only below an existing parent.
        reg += &format!("[\\Objects\\{obj}]\n\n[\\Objects\\{obj}\\Elements]\n\n");
        reg += &format!("[\\Objects\\{obj}\\Description]\n\"Type\"=dword:{ty:08x}\n\n");
        for (id, t, data) in elements {
            reg += &format!(
                "[\\Objects\\{obj}\\Elements\\{id}]\n\"Element\"=hex({t:x}):{}\n\n",
                hex(&data)
            );
        }
    }
    let f = dir.path().join("in.reg");
    std::fs::write(&f, reg).expect("reg");
    let out = Command::new(tool("hivexregedit", "libwin-hivex-perl"))
        .arg("--merge")
        .arg(&hive)
        .arg(&f)
        .output()
        .expect("hivexregedit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = Store::from_hive(&std::fs::read(&hive).expect("read")).expect("parse");
    assert_eq!(store.to_string(), ENUM);

    // Decoded, not just printed.
    let other = store
        .objects
        .iter()
        .find(|o| o.id.to_string() == OTHER)
        .expect("other loader");
    assert!(matches!(
        other.element(0x2100_0001),
        Some(ElementValue::Device(d)) if d.device == Device::MbrPartition { disk_signature: 0x1a2b_3c4d, offset: 1_048_576 }
    ));
    assert!(matches!(
        other.element(0x1200_0030),
        Some(ElementValue::Raw { reg_type: 3, .. })
    ));
    // Written back, the store keeps every element byte for byte.
    let again = Store::from_hive(&store.to_hive(0).expect("write")).expect("reparse");
    assert_eq!(again, store);
}

#[test]
fn not_a_store() {
    let plain = write(
        &Key::new("R").with_subkey(Key::new("X")),
        &WriteOptions::default(),
    )
    .expect("hive");
    assert!(Store::from_hive(&plain).is_err());
    let bad_object = write(
        &Key::new("R").with_subkey(Key::new("Objects").with_subkey(Key::new("not-a-guid"))),
        &WriteOptions::default(),
    )
    .expect("hive");
    assert!(Store::from_hive(&bad_object).is_err());
    assert!(Store::from_hive(b"regf but not much else").is_err());
}
