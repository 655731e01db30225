//! Reading a WIM's header and XML data without decompressing anything.
//!
//! The boot image's architecture lives in the WIM's XML data resource, which
//! is always stored uncompressed. So the header (208 bytes) and the XML (a few
//! KiB) are all we read, whatever the WIM's size or compression (XPRESS, LZX,
//! LZMS/solid). Every size is checked against the file length and a hard
//! limit before a byte is allocated for it.
//!
//! Header layout (little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0x00 | 8 | magic `MSWIM\0\0\0` or `WLPWM\0\0\0` (pipable) |
//! | 0x08 | 4 | header size (208) |
//! | 0x0C | 4 | version (0x10D00; 0xE00 for solid/ESD) |
//! | 0x10 | 4 | flags (compression type in 0x20000 XPRESS, 0x40000 LZX, 0x80000 LZMS) |
//! | 0x28 | 2+2 | part number, total parts |
//! | 0x2C | 4 | image count |
//! | 0x48 | 24 | XML resource header: 7-byte stored size, flag byte, u64 offset, u64 original size |
//! | 0x78 | 4 | boot index (0 = none) |
//!
//! A pipable WIM (wimlib's `--pipable`) is written front to back so it can go
//! down a pipe: its leading header carries no resource locations, and the
//! complete header is written again as the last 208 bytes of the stream. We
//! read that trailing copy.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};

use capmedia_content::Arch;
use serde::Serialize;

use crate::ArchError;

/// Size of the on-disk WIM header.
pub const WIM_HEADER_SIZE: usize = 208;
/// Magic of an ordinary WIM.
pub const WIM_MAGIC: [u8; 8] = *b"MSWIM\0\0\0";
/// Magic of a pipable WIM.
pub const PIPABLE_WIM_MAGIC: [u8; 8] = *b"WLPWM\0\0\0";
/// Version written for solid (LZMS "ESD") WIMs.
pub const SOLID_VERSION: u32 = 0xE00;
/// Default cap on the XML data. Real WIMs carry a few KiB of XML per image;
/// 16 MiB leaves room for thousands of images while keeping the worst case
/// (bytes + decoded text + parsed tree) to well under half a GiB.
pub const DEFAULT_MAX_XML_SIZE: u64 = 16 * 1024 * 1024;

const RESHDR_FLAG_COMPRESSED: u8 = 0x04;

/// A resource header: where a resource lies in the WIM and how big it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResourceHeader {
    /// Bytes the resource occupies in the file (56 bits on disk).
    pub stored_size: u64,
    /// Resource flags (0x04 compressed, 0x10 solid, ...).
    pub flags: u8,
    /// Offset from the start of the file.
    pub offset: u64,
    /// Size once uncompressed.
    pub original_size: u64,
}

impl ResourceHeader {
    fn parse(b: &[u8; 24]) -> Self {
        let mut size = [0u8; 8];
        size[..7].copy_from_slice(&b[..7]);
        ResourceHeader {
            stored_size: u64::from_le_bytes(size),
            flags: b[7],
            offset: le_u64(&b[8..16]),
            original_size: le_u64(&b[16..24]),
        }
    }
}

/// The fields of the 208-byte WIM header that capmedia uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimHeader {
    /// Whether the magic was `WLPWM\0\0\0`.
    pub pipable: bool,
    /// Format version (0x10D00 ordinary, 0xE00 solid).
    pub version: u32,
    /// Header flags.
    pub flags: u32,
    /// Which part of a split WIM this is (1-based).
    pub part: u16,
    /// How many parts the split WIM has (1 if not split).
    pub total_parts: u16,
    /// Images in the WIM.
    pub image_count: u32,
    /// Where the XML data lies.
    pub xml: ResourceHeader,
    /// The bootable image's index, 0 for none.
    pub boot_index: u32,
}

impl WimHeader {
    /// Parses and checks one header (magic, size field, part numbers).
    pub fn parse(b: &[u8; WIM_HEADER_SIZE]) -> Result<Self, ArchError> {
        let pipable = if b[..8] == WIM_MAGIC {
            false
        } else if b[..8] == PIPABLE_WIM_MAGIC {
            true
        } else {
            return Err(ArchError::WrongMagic {
                found: b[..8].to_vec(),
            });
        };
        let declared = le_u32(&b[0x08..0x0C]);
        if declared as usize != WIM_HEADER_SIZE {
            return Err(ArchError::BadHeaderSize { declared });
        }
        let part = le_u16(&b[0x28..0x2A]);
        let total_parts = le_u16(&b[0x2A..0x2C]);
        if part == 0 || total_parts == 0 || part > total_parts {
            return Err(ArchError::BadPartNumber {
                part,
                total: total_parts,
            });
        }
        let mut xml = [0u8; 24];
        xml.copy_from_slice(&b[0x48..0x60]);
        Ok(WimHeader {
            pipable,
            version: le_u32(&b[0x0C..0x10]),
            flags: le_u32(&b[0x10..0x14]),
            part,
            total_parts,
            image_count: le_u32(&b[0x2C..0x30]),
            xml: ResourceHeader::parse(&xml),
            boot_index: le_u32(&b[0x78..0x7C]),
        })
    }

    /// The compression named by the header flags.
    pub fn compression(&self) -> &'static str {
        const COMPRESSION: u32 = 0x0000_0002;
        if self.flags & COMPRESSION == 0 {
            "none"
        } else if self.flags & 0x0002_0000 != 0 {
            "xpress"
        } else if self.flags & 0x0004_0000 != 0 {
            "lzx"
        } else if self.flags & 0x0008_0000 != 0 {
            "lzms"
        } else {
            "unknown"
        }
    }
}

/// One image described in the WIM's XML.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimImage {
    /// 1-based image index.
    pub index: u32,
    /// `<NAME>`, if the image has one.
    pub name: Option<String>,
    /// `<WINDOWS><ARCH>`.
    pub arch: Arch,
    /// Whether the header's boot index names this image.
    pub is_boot: bool,
}

/// Everything capmedia reads from a WIM (or one part of a split WIM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimInfo {
    /// Part n ...
    pub part: u16,
    /// ... of m.
    pub total_parts: u16,
    /// Written by `wimlib-imagex capture --pipable`.
    pub pipable: bool,
    /// Version 0xE00: solid (LZMS) resources, as in ESD files.
    pub solid: bool,
    /// The header's version field.
    pub version: u32,
    /// "none", "xpress", "lzx", "lzms" or "unknown".
    pub compression: &'static str,
    /// The bootable image's index, 0 for none.
    pub boot_index: u32,
    /// Images in index order.
    pub images: Vec<WimImage>,
}

impl WimInfo {
    /// The image the boot index names, if any.
    pub fn boot_image(&self) -> Option<&WimImage> {
        self.images.iter().find(|i| i.is_boot)
    }

    /// The image with this 1-based index.
    pub fn image(&self, index: u32) -> Option<&WimImage> {
        self.images.iter().find(|i| i.index == index)
    }
}

/// Reads a WIM's header and XML with the default XML size limit.
pub fn read_wim<R: Read + Seek>(r: &mut R) -> Result<WimInfo, ArchError> {
    read_wim_with_limit(r, DEFAULT_MAX_XML_SIZE)
}

/// Reads a WIM's header and XML, refusing XML larger than `max_xml` bytes.
///
/// Reads at most two headers and the XML resource; never decompresses.
pub fn read_wim_with_limit<R: Read + Seek>(r: &mut R, max_xml: u64) -> Result<WimInfo, ArchError> {
    let file_len = r.seek(SeekFrom::End(0))?;
    if file_len == 0 {
        return Err(ArchError::Empty);
    }
    r.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; WIM_HEADER_SIZE];
    let got = read_up_to(r, &mut head)?;
    // Judge the magic on what we have, so a short non-WIM says "wrong magic"
    // and a short WIM says "truncated".
    let avail = got.min(8);
    if head[..avail] != WIM_MAGIC[..avail] && head[..avail] != PIPABLE_WIM_MAGIC[..avail] {
        return Err(ArchError::WrongMagic {
            found: head[..avail].to_vec(),
        });
    }
    if got < WIM_HEADER_SIZE {
        return Err(ArchError::TruncatedHeader {
            len: file_len,
            needed: WIM_HEADER_SIZE as u64,
        });
    }
    let mut header = WimHeader::parse(&head)?;
    if header.pipable {
        let needed = 2 * WIM_HEADER_SIZE as u64;
        if file_len < needed {
            return Err(ArchError::TruncatedHeader {
                len: file_len,
                needed,
            });
        }
        r.seek(SeekFrom::Start(file_len - WIM_HEADER_SIZE as u64))?;
        let mut tail = [0u8; WIM_HEADER_SIZE];
        r.read_exact(&mut tail)?;
        if tail[..8] != PIPABLE_WIM_MAGIC {
            return Err(ArchError::PipableTrailerMissing);
        }
        header = WimHeader::parse(&tail)?;
    }
    let xml = read_xml_resource(r, &header.xml, file_len, max_xml)?;
    let text = decode_utf16_xml(&xml)?;
    drop(xml);
    let images = parse_xml(&text, header.boot_index)?;
    let count = u32::try_from(images.len()).unwrap_or(u32::MAX);
    if count != header.image_count {
        return Err(ArchError::ImageCountMismatch {
            header: header.image_count,
            xml: count,
        });
    }
    if header.boot_index > count {
        return Err(ArchError::BadBootIndex {
            boot_index: header.boot_index,
            image_count: count,
        });
    }
    Ok(WimInfo {
        part: header.part,
        total_parts: header.total_parts,
        pipable: header.pipable,
        solid: header.version == SOLID_VERSION,
        version: header.version,
        compression: header.compression(),
        boot_index: header.boot_index,
        images,
    })
}

/// Checks the XML resource header against the file and the limit, then reads it.
fn read_xml_resource<R: Read + Seek>(
    r: &mut R,
    res: &ResourceHeader,
    file_len: u64,
    max_xml: u64,
) -> Result<Vec<u8>, ArchError> {
    if res.stored_size == 0 && res.offset == 0 && res.original_size == 0 {
        return Err(ArchError::XmlMissing);
    }
    if res.flags & RESHDR_FLAG_COMPRESSED != 0 {
        return Err(ArchError::XmlCompressed { flags: res.flags });
    }
    let size = res.stored_size.max(res.original_size);
    if size > max_xml {
        return Err(ArchError::XmlTooLarge {
            size,
            limit: max_xml,
        });
    }
    match res.offset.checked_add(res.stored_size) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(ArchError::XmlBeyondFile {
                offset: res.offset,
                size: res.stored_size,
                file_len,
            })
        }
    }
    if res.stored_size != res.original_size {
        return Err(ArchError::XmlSizeMismatch {
            stored: res.stored_size,
            original: res.original_size,
        });
    }
    if !res.stored_size.is_multiple_of(2) {
        return Err(ArchError::XmlOddLength {
            size: res.stored_size,
        });
    }
    // Bounded by max_xml and the file length just above.
    let len = usize::try_from(res.stored_size).map_err(|_| ArchError::XmlTooLarge {
        size: res.stored_size,
        limit: max_xml,
    })?;
    r.seek(SeekFrom::Start(res.offset))?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Decodes the XML resource: UTF-16LE, starting with the byte-order mark.
pub fn decode_utf16_xml(bytes: &[u8]) -> Result<String, ArchError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ArchError::XmlOddLength {
            size: bytes.len() as u64,
        });
    }
    if bytes.len() < 2 || bytes[..2] != [0xFF, 0xFE] {
        return Err(ArchError::XmlMissingBom);
    }
    let units = bytes[2..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    for (i, c) in char::decode_utf16(units).enumerate() {
        match c {
            Ok(c) => text.push(c),
            Err(_) => {
                return Err(ArchError::XmlInvalidUtf16 {
                    byte_offset: 2 + 2 * i as u64,
                })
            }
        }
    }
    // Some writers end the text with NULs; they are padding, not content.
    let trimmed = text.trim_end_matches('\0').len();
    text.truncate(trimmed);
    Ok(text)
}

/// Parses the decoded XML into images, sorted by index.
pub fn parse_xml(text: &str, boot_index: u32) -> Result<Vec<WimImage>, ArchError> {
    let doc = roxmltree::Document::parse(text).map_err(|e| ArchError::XmlSyntax(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "WIM" {
        return Err(ArchError::XmlNotWim {
            found: root.tag_name().name().to_owned(),
        });
    }
    let image_nodes: Vec<_> = root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "IMAGE")
        .collect();
    let image_count = u32::try_from(image_nodes.len()).unwrap_or(u32::MAX);
    let mut seen = BTreeSet::new();
    let mut images = Vec::with_capacity(image_nodes.len());
    for node in image_nodes {
        let raw = node.attribute("INDEX");
        let index = raw
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|i| (1..=image_count).contains(i) && seen.insert(*i))
            .ok_or_else(|| ArchError::BadImageIndex {
                value: raw.map(str::to_owned),
                image_count,
            })?;
        let name = child(node, "NAME").map(|n| n.text().unwrap_or("").to_owned());
        let arch_node = child(node, "WINDOWS")
            .and_then(|w| child(w, "ARCH"))
            .ok_or(ArchError::MissingArch { index })?;
        let value = arch_node.text().unwrap_or("").trim();
        let arch = value
            .parse::<u32>()
            .ok()
            .and_then(arch_from_wim_value)
            .ok_or_else(|| ArchError::UnknownArch {
                index,
                value: value.to_owned(),
            })?;
        images.push(WimImage {
            index,
            name,
            arch,
            is_boot: boot_index == index,
        });
    }
    images.sort_by_key(|i| i.index);
    Ok(images)
}

/// Maps the XML's `<ARCH>` (Windows' PROCESSOR_ARCHITECTURE_*) to [`Arch`].
pub fn arch_from_wim_value(v: u32) -> Option<Arch> {
    match v {
        0 => Some(Arch::X86),
        5 => Some(Arch::Arm),
        6 => Some(Arch::Ia64),
        9 => Some(Arch::X64),
        12 => Some(Arch::Arm64),
        _ => None,
    }
}

fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub(crate) fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(crate) fn le_u16(b: &[u8]) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[..2]);
    u16::from_le_bytes(a)
}

pub(crate) fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
