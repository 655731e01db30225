//! Shared test helpers: tiny PE files, synthetic WIMs, and driving wimlib.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use capmedia_arch::Arch;

/// A minimal PE32+ EFI-application image with the given COFF machine: just
/// enough headers for wimlib (which reads kernel32.dll's machine to set
/// `<ARCH>`) and for our own PE reader.
pub fn pe_stub(machine: u16) -> Vec<u8> {
    let mut b = vec![0u8; 512];
    b[0..2].copy_from_slice(b"MZ");
    b[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
    b[0x80..0x84].copy_from_slice(b"PE\0\0");
    b[0x84..0x86].copy_from_slice(&machine.to_le_bytes());
    b[0x94..0x96].copy_from_slice(&0xF0u16.to_le_bytes()); // SizeOfOptionalHeader
    b[0x98..0x9A].copy_from_slice(&0x20Bu16.to_le_bytes()); // PE32+
    b[0x98 + 68..0x98 + 70].copy_from_slice(&10u16.to_le_bytes()); // EFI application
    b
}

pub fn machine_of(arch: Arch) -> u16 {
    match arch {
        Arch::X86 => 0x014C,
        Arch::X64 => 0x8664,
        Arch::Arm64 => 0xAA64,
        Arch::Arm => 0x01C4,
        Arch::Ia64 => 0x0200,
    }
}

/// UTF-16LE with BOM, as WIMs store their XML.
pub fn utf16_bom(text: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        v.extend_from_slice(&u.to_le_bytes());
    }
    v
}

/// XML for images with the given (name, ARCH value) pairs.
pub fn wim_xml(images: &[(&str, u32)]) -> String {
    let mut s = String::from("<WIM><TOTALBYTES>0</TOTALBYTES>");
    for (i, (name, arch)) in images.iter().enumerate() {
        s += &format!(
            "<IMAGE INDEX=\"{}\"><NAME>{name}</NAME><WINDOWS><ARCH>{arch}</ARCH></WINDOWS></IMAGE>",
            i + 1
        );
    }
    s + "</WIM>"
}

/// A 208-byte header.
pub fn wim_header(
    magic: &[u8; 8],
    image_count: u32,
    xml_off: u64,
    xml_size: u64,
    boot: u32,
) -> Vec<u8> {
    let mut h = vec![0u8; 208];
    h[0..8].copy_from_slice(magic);
    h[0x08..0x0C].copy_from_slice(&208u32.to_le_bytes());
    h[0x0C..0x10].copy_from_slice(&0x10D00u32.to_le_bytes());
    h[0x28..0x2A].copy_from_slice(&1u16.to_le_bytes());
    h[0x2A..0x2C].copy_from_slice(&1u16.to_le_bytes());
    h[0x2C..0x30].copy_from_slice(&image_count.to_le_bytes());
    h[0x48..0x4F].copy_from_slice(&xml_size.to_le_bytes()[..7]);
    h[0x50..0x58].copy_from_slice(&xml_off.to_le_bytes());
    h[0x58..0x60].copy_from_slice(&xml_size.to_le_bytes());
    h[0x78..0x7C].copy_from_slice(&boot.to_le_bytes());
    h
}

/// A synthetic (data-less) WIM: header, then the XML resource.
pub fn synth_wim(xml: &[u8], image_count: u32, boot: u32) -> Vec<u8> {
    let mut v = wim_header(b"MSWIM\0\0\0", image_count, 208, xml.len() as u64, boot);
    v.extend_from_slice(xml);
    v
}

/// A synthetic pipable WIM: empty leading header, XML, complete header at the end.
pub fn synth_pipable(xml: &[u8], image_count: u32, boot: u32) -> Vec<u8> {
    let mut v = wim_header(b"WLPWM\0\0\0", image_count, 0, 0, 0);
    v.extend_from_slice(xml);
    v.extend(wim_header(
        b"WLPWM\0\0\0",
        image_count,
        208,
        xml.len() as u64,
        boot,
    ));
    v
}

// ---- wimlib ----

pub fn require_wimlib() {
    let ok = Command::new("wimlib-imagex")
        .arg("--version")
        .output()
        .map(|o| o.status.success());
    assert!(
        matches!(ok, Ok(true)),
        "wimlib-imagex is needed for this test: install the Debian package `wimtools`"
    );
}

pub fn wimlib(args: &[&str]) {
    let out = Command::new("wimlib-imagex")
        .args(args)
        .output()
        .expect("wimlib-imagex (Debian package wimtools)");
    assert!(
        out.status.success(),
        "wimlib-imagex {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tree wimlib recognises as Windows of architecture `arch`.
pub fn windows_tree(dir: &Path, name: &str, arch: Arch) -> PathBuf {
    let root = dir.join(name);
    let sys = root.join("Windows/System32");
    std::fs::create_dir_all(&sys).unwrap();
    std::fs::write(sys.join("kernel32.dll"), pe_stub(machine_of(arch))).unwrap();
    root
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct WimlibInfo {
    pub image_count: u32,
    pub boot_index: u32,
    pub part: u16,
    pub total_parts: u16,
    /// (index, name, arch)
    pub images: Vec<(u32, String, Arch)>,
}

/// Parses `wimlib-imagex info` output.
pub fn wimlib_info(path: &Path) -> WimlibInfo {
    let out = Command::new("wimlib-imagex")
        .arg("info")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut info = WimlibInfo::default();
    let mut cur: Option<(u32, String)> = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "Image Count" => info.image_count = v.parse().unwrap(),
            "Boot Index" => info.boot_index = v.parse().unwrap(),
            "Part Number" => {
                let (p, t) = v.split_once('/').unwrap();
                info.part = p.parse().unwrap();
                info.total_parts = t.parse().unwrap();
            }
            "Index" => cur = Some((v.parse().unwrap(), String::new())),
            "Name" => cur.as_mut().unwrap().1 = v.to_owned(),
            "Architecture" => {
                let arch = match v {
                    "x86" => Arch::X86,
                    "x86_64" => Arch::X64,
                    "ARM64" => Arch::Arm64,
                    "ARM" => Arch::Arm,
                    "ia64" => Arch::Ia64,
                    other => panic!("unknown wimlib architecture {other:?}"),
                };
                let (i, n) = cur.take().unwrap();
                info.images.push((i, n, arch));
            }
            _ => {}
        }
    }
    info
}
