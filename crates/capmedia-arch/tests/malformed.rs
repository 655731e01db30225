//! Every malformed field gives its own typed error, never a panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Cursor;

use capmedia_arch::{inspect_reader, read_pe, read_wim, read_wim_with_limit, Arch, ArchError};
use capmedia_wim::WimError;
use common::*;

fn wim(bytes: &[u8]) -> Result<capmedia_arch::WimInfo, ArchError> {
    read_wim(&mut Cursor::new(bytes))
}

fn pe(bytes: &[u8]) -> Result<capmedia_arch::PeInfo, ArchError> {
    read_pe(&mut Cursor::new(bytes))
}

fn good_xml() -> Vec<u8> {
    utf16_bom(&wim_xml(&[("x86 setup", 0), ("WinPE x64", 9)]))
}

/// Sets the XML resource header (stored size, flags, offset, original size).
fn set_xml_reshdr(v: &mut [u8], stored: u64, flags: u8, off: u64, orig: u64) {
    v[0x48..0x4F].copy_from_slice(&stored.to_le_bytes()[..7]);
    v[0x4F] = flags;
    v[0x50..0x58].copy_from_slice(&off.to_le_bytes());
    v[0x58..0x60].copy_from_slice(&orig.to_le_bytes());
}

#[test]
fn synthetic_wims_parse() {
    let info = wim(&synth_wim(&good_xml(), 2, 2)).unwrap();
    assert_eq!(info.images.len(), 2);
    assert_eq!(info.boot_image().unwrap().arch, Arch::X64);
    assert_eq!(info.images[0].name.as_deref(), Some("x86 setup"));
    let info = wim(&synth_pipable(&good_xml(), 2, 1)).unwrap();
    assert!(info.pipable);
    assert_eq!(info.boot_image().unwrap().arch, Arch::X86);
    // Images listed out of order come back sorted; no boot index is fine.
    let xml = "<WIM><IMAGE INDEX=\"2\"><WINDOWS><ARCH>12</ARCH></WINDOWS></IMAGE>\
               <IMAGE INDEX=\"1\"><WINDOWS><ARCH>5</ARCH></WINDOWS></IMAGE></WIM>";
    let info = wim(&synth_wim(&utf16_bom(xml), 2, 0)).unwrap();
    assert_eq!(
        info.images
            .iter()
            .map(|i| (i.index, i.arch))
            .collect::<Vec<_>>(),
        [(1, Arch::Arm), (2, Arch::Arm64)]
    );
    assert!(info.boot_image().is_none());
    assert_eq!(info.images[0].name, None);
}

#[test]
fn empty_file() {
    assert!(matches!(wim(&[]), Err(ArchError::Empty)));
    assert!(matches!(pe(&[]), Err(ArchError::Empty)));
    assert!(matches!(
        inspect_reader(&mut Cursor::new(&[] as &[u8]), "x"),
        Err(ArchError::Empty)
    ));
}

#[test]
fn wrong_magic() {
    let mut v = synth_wim(&good_xml(), 2, 2);
    v[0] = b'X';
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::WrongMagic { .. }))
    ));
    assert!(matches!(
        wim(b"hello"),
        Err(ArchError::Wim(WimError::WrongMagic { .. }))
    ));
    assert!(matches!(
        inspect_reader(&mut Cursor::new(b"\x7fELF\x02\x01\x01\0".as_slice()), "x"),
        Err(ArchError::UnknownFormat { .. })
    ));
}

#[test]
fn truncated_header() {
    let v = synth_wim(&good_xml(), 2, 2);
    for len in [1, 5, 8, 100, 207] {
        assert!(
            matches!(
                wim(&v[..len]),
                Err(ArchError::Wim(WimError::TruncatedHeader {
                    needed: 208,
                    ..
                }))
            ),
            "len {len}: {:?}",
            wim(&v[..len])
        );
    }
    // A pipable WIM needs its trailing copy too.
    let p = synth_pipable(&good_xml(), 2, 1);
    assert!(matches!(
        wim(&p[..300]),
        Err(ArchError::Wim(WimError::TruncatedHeader {
            needed: 416,
            ..
        }))
    ));
    assert!(matches!(
        wim(&p[..p.len() - 10]),
        Err(ArchError::Wim(WimError::PipableTrailerMissing))
    ));
}

#[test]
fn bad_header_size_field() {
    let mut v = synth_wim(&good_xml(), 2, 2);
    v[8] = 200;
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::BadHeaderSize { declared: 200 }))
    ));
}

#[test]
fn xml_offset_or_size_beyond_file() {
    let xml = good_xml();
    let n = xml.len() as u64;
    let mut v = synth_wim(&xml, 2, 2);
    set_xml_reshdr(&mut v, n, 0, 208 + 2, n);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlBeyondFile { .. }))
    ));
    set_xml_reshdr(&mut v, n + 2, 0, 208, n + 2);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlBeyondFile { .. }))
    ));
    set_xml_reshdr(&mut v, n, 0, u64::MAX - 4, n);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlBeyondFile { .. }))
    ));
}

#[test]
fn absurd_xml_size_is_refused_before_allocation() {
    let mut v = synth_wim(&good_xml(), 2, 2);
    // 2^56 - 1 bytes: would abort the process if allocated.
    set_xml_reshdr(&mut v, (1 << 56) - 2, 0, 208, (1 << 56) - 2);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlTooLarge { .. }))
    ));
    set_xml_reshdr(&mut v, 100, 0, 208, u64::MAX);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlTooLarge { .. }))
    ));
    // A caller's own lower limit applies too.
    let v = synth_wim(&good_xml(), 2, 2);
    assert!(matches!(
        read_wim_with_limit(&mut Cursor::new(&v), 16),
        Err(ArchError::Wim(WimError::XmlTooLarge { limit: 16, .. }))
    ));
}

#[test]
fn xml_size_mismatch_and_missing() {
    let xml = good_xml();
    let n = xml.len() as u64;
    let mut v = synth_wim(&xml, 2, 2);
    set_xml_reshdr(&mut v, n, 0, 208, n - 2);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlSizeMismatch { .. }))
    ));
    set_xml_reshdr(&mut v, 0, 0, 0, 0);
    assert!(matches!(wim(&v), Err(ArchError::Wim(WimError::XmlMissing))));
}

#[test]
fn compressed_xml_flag() {
    let xml = good_xml();
    let n = xml.len() as u64;
    let mut v = synth_wim(&xml, 2, 2);
    set_xml_reshdr(&mut v, n, 0x04, 208, n);
    assert!(matches!(
        wim(&v),
        Err(ArchError::Wim(WimError::XmlCompressed { flags: 0x04 }))
    ));
    set_xml_reshdr(&mut v, n, 0x02, 208, n); // METADATA, as wimlib writes: fine
    assert!(wim(&v).is_ok());
}

#[test]
fn odd_length_utf16() {
    let mut xml = good_xml();
    xml.push(b'>');
    assert!(matches!(
        wim(&synth_wim(&xml, 2, 2)),
        Err(ArchError::Wim(WimError::XmlOddLength { .. }))
    ));
}

#[test]
fn invalid_utf16() {
    let mut xml = utf16_bom("<WIM>");
    xml.extend_from_slice(&0xD800u16.to_le_bytes()); // lone high surrogate
    xml.extend_from_slice(&utf16_bom("</WIM>")[2..]);
    assert!(matches!(
        wim(&synth_wim(&xml, 0, 0)),
        Err(ArchError::Wim(WimError::XmlInvalidUtf16 {
            byte_offset: 12
        }))
    ));
    let mut xml = utf16_bom("<WIM></WIM>");
    xml.extend_from_slice(&0xDC00u16.to_le_bytes()); // lone low surrogate
    assert!(matches!(
        wim(&synth_wim(&xml, 0, 0)),
        Err(ArchError::Wim(WimError::XmlInvalidUtf16 { .. }))
    ));
}

#[test]
fn missing_bom() {
    let xml = good_xml();
    assert!(matches!(
        wim(&synth_wim(&xml[2..], 2, 2)),
        Err(ArchError::Wim(WimError::XmlMissingBom))
    ));
    // UTF-8 XML is not what a WIM holds.
    let utf8 = wim_xml(&[("a", 0)]).into_bytes();
    let even = &utf8[..utf8.len() & !1];
    assert!(matches!(
        wim(&synth_wim(even, 1, 0)),
        Err(ArchError::Wim(WimError::XmlMissingBom))
    ));
}

#[test]
fn xml_without_arch() {
    let xml = "<WIM><IMAGE INDEX=\"1\"><NAME>n</NAME><WINDOWS><EDITIONID>WindowsPE</EDITIONID></WINDOWS></IMAGE></WIM>";
    assert!(matches!(
        wim(&synth_wim(&utf16_bom(xml), 1, 1)),
        Err(ArchError::MissingArch { index: 1 })
    ));
    let xml = "<WIM><IMAGE INDEX=\"1\"><NAME>n</NAME></IMAGE></WIM>";
    assert!(matches!(
        wim(&synth_wim(&utf16_bom(xml), 1, 1)),
        Err(ArchError::MissingArch { index: 1 })
    ));
}

#[test]
fn unknown_arch_value() {
    for bad in ["7", "-1", "x64", "", "99999999999"] {
        let xml =
            format!("<WIM><IMAGE INDEX=\"1\"><WINDOWS><ARCH>{bad}</ARCH></WINDOWS></IMAGE></WIM>");
        let got = wim(&synth_wim(&utf16_bom(&xml), 1, 1));
        assert!(
            matches!(&got, Err(ArchError::UnknownArch { index: 1, value }) if value == bad),
            "{bad}: {got:?}"
        );
    }
}

#[test]
fn bad_xml_structure() {
    type Check = fn(&ArchError) -> bool;
    let cases: [(&str, Check); 6] = [
        ("<WIM><IMAGE", |e| matches!(e, ArchError::XmlSyntax(_))),
        ("<NOTWIM/>", |e| matches!(e, ArchError::XmlNotWim { .. })),
        (
            "<WIM><IMAGE><WINDOWS><ARCH>9</ARCH></WINDOWS></IMAGE></WIM>",
            |e| matches!(e, ArchError::BadImageIndex { value: None, .. }),
        ),
        (
            "<WIM><IMAGE INDEX=\"2\"><WINDOWS><ARCH>9</ARCH></WINDOWS></IMAGE></WIM>",
            |e| matches!(e, ArchError::BadImageIndex { .. }),
        ),
        (
            "<WIM><IMAGE INDEX=\"one\"><WINDOWS><ARCH>9</ARCH></WINDOWS></IMAGE></WIM>",
            |e| matches!(e, ArchError::BadImageIndex { .. }),
        ),
        ("<!DOCTYPE WIM [<!ENTITY a \"aaaa\">]><WIM>&a;</WIM>", |e| {
            matches!(
                e,
                ArchError::XmlSyntax(_) | ArchError::ImageCountMismatch { .. }
            )
        }),
    ];
    for (xml, ok) in cases {
        let got = wim(&synth_wim(&utf16_bom(xml), 1, 0));
        assert!(got.as_ref().is_err_and(ok), "{xml}: {got:?}");
    }
    // Repeated index.
    let xml = "<WIM><IMAGE INDEX=\"1\"><WINDOWS><ARCH>9</ARCH></WINDOWS></IMAGE>\
               <IMAGE INDEX=\"1\"><WINDOWS><ARCH>0</ARCH></WINDOWS></IMAGE></WIM>";
    assert!(matches!(
        wim(&synth_wim(&utf16_bom(xml), 2, 0)),
        Err(ArchError::BadImageIndex { .. })
    ));
}

#[test]
fn header_and_xml_disagree() {
    assert!(matches!(
        wim(&synth_wim(&good_xml(), 3, 0)),
        Err(ArchError::ImageCountMismatch { header: 3, xml: 2 })
    ));
    assert!(matches!(
        wim(&synth_wim(&good_xml(), 2, 3)),
        Err(ArchError::BadBootIndex {
            boot_index: 3,
            image_count: 2
        })
    ));
}

#[test]
fn bad_part_numbers() {
    for (part, total) in [(0u16, 1u16), (1, 0), (3, 2), (0, 0), (u16::MAX, 1)] {
        let mut v = synth_wim(&good_xml(), 2, 2);
        v[0x28..0x2A].copy_from_slice(&part.to_le_bytes());
        v[0x2A..0x2C].copy_from_slice(&total.to_le_bytes());
        let got = wim(&v);
        assert!(
            matches!(got, Err(ArchError::Wim(WimError::BadPartNumber { part: p, total: t })) if (p, t) == (part, total)),
            "{part}/{total}: {got:?}"
        );
    }
    let mut v = synth_wim(&good_xml(), 2, 2);
    v[0x28..0x2A].copy_from_slice(&2u16.to_le_bytes());
    v[0x2A..0x2C].copy_from_slice(&3u16.to_le_bytes());
    let info = wim(&v).unwrap();
    assert_eq!((info.part, info.total_parts), (2, 3));
}

#[test]
fn error_messages_are_clear() {
    let e = wim(&[]).unwrap_err().to_string();
    assert_eq!(e, "the file is empty");
    let mut v = synth_wim(&good_xml(), 2, 2);
    set_xml_reshdr(&mut v, 1 << 40, 0, 208, 1 << 40);
    let e = wim(&v).unwrap_err().to_string();
    assert!(e.contains("absurd XML size 1099511627776"), "{e}");
}

// ---- PE ----

#[test]
fn pe_machines() {
    for (arch, machine) in [
        (Arch::X86, 0x014C),
        (Arch::X64, 0x8664),
        (Arch::Arm64, 0xAA64),
        (Arch::Arm, 0x01C4),
        (Arch::Arm, 0x01C0),
        (Arch::Ia64, 0x0200),
    ] {
        let info = pe(&pe_stub(machine)).unwrap();
        assert_eq!((info.arch, info.machine), (arch, machine));
        assert!(info.pe32_plus && info.is_efi_application());
    }
    let mut v = pe_stub(0x014C);
    v[0x98..0x9A].copy_from_slice(&0x10Bu16.to_le_bytes());
    v[0x98 + 68] = 3;
    let info = pe(&v).unwrap();
    assert!(!info.pe32_plus && !info.is_efi_application());
}

#[test]
fn pe_errors() {
    assert!(matches!(pe(b"ZM\0\0"), Err(ArchError::NotPe)));
    assert!(matches!(pe(b"M"), Err(ArchError::NotPe)));
    assert!(matches!(
        pe(&pe_stub(0x8664)[..0x30]),
        Err(ArchError::PeTruncated { .. })
    ));
    for lfanew in [0x200u32, 0x1F0, u32::MAX, 0xFFFF_FFF0] {
        let mut v = pe_stub(0x8664);
        v[0x3C..0x40].copy_from_slice(&lfanew.to_le_bytes());
        let got = pe(&v);
        assert!(
            matches!(got, Err(ArchError::BadLfanew { e_lfanew, .. }) if e_lfanew == lfanew),
            "{lfanew:#x}: {got:?}"
        );
    }
    let mut v = pe_stub(0x8664);
    v[0x3C] = 0x40;
    assert!(matches!(
        pe(&v),
        Err(ArchError::NoPeSignature { e_lfanew: 0x40 })
    ));
    assert!(matches!(
        pe(&pe_stub(0x0166)),
        Err(ArchError::UnknownMachine { machine: 0x0166 })
    ));
    let mut v = pe_stub(0x8664);
    v[0x94..0x96].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        pe(&v),
        Err(ArchError::NoOptionalHeader { size: 0 })
    ));
    let mut v = pe_stub(0x8664);
    v[0x98..0x9A].copy_from_slice(&0x107u16.to_le_bytes());
    assert!(matches!(
        pe(&v),
        Err(ArchError::BadOptionalMagic { magic: 0x107 })
    ));
    assert!(matches!(
        pe(&pe_stub(0x8664)[..0xA0]),
        Err(ArchError::PeTruncated { .. })
    ));
    let e = {
        let mut v = pe_stub(0x8664);
        v[0x3C..0x40].copy_from_slice(&0x10000u32.to_le_bytes());
        pe(&v).unwrap_err().to_string()
    };
    assert_eq!(
        e,
        "bad e_lfanew 0x10000: the PE header would lie beyond the file (512 bytes)"
    );
    // inspect routes "MZ" to the PE reader and reports its error.
    let mut v = pe_stub(0x8664);
    v[0x3C..0x40].copy_from_slice(&0x10000u32.to_le_bytes());
    assert!(matches!(
        inspect_reader(&mut Cursor::new(&v), "x"),
        Err(ArchError::BadLfanew { .. })
    ));
}
