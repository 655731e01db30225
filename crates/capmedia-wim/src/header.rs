//! The 208-byte WIM header, resource headers, and the XML data resource.
//!
//! Header layout (little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0x00 | 8 | magic `MSWIM\0\0\0` or `WLPWM\0\0\0` (pipable) |
//! | 0x08 | 4 | header size (208) |
//! | 0x0C | 4 | version (0x10D00; 0xE00 for solid/ESD) |
//! | 0x10 | 4 | flags (0x2 compressed; 0x20000 XPRESS, 0x40000 LZX, 0x80000 LZMS) |
//! | 0x14 | 4 | chunk size of non-solid compressed resources |
//! | 0x18 | 16 | GUID (the same in every part of a split WIM) |
//! | 0x28 | 2+2 | part number, total parts |
//! | 0x2C | 4 | image count |
//! | 0x30 | 24 | lookup-table resource header |
//! | 0x48 | 24 | XML resource header |
//! | 0x60 | 24 | boot metadata resource header |
//! | 0x78 | 4 | boot index (0 = none) |
//! | 0x7C | 24 | integrity table resource header |
//!
//! A resource header is a 7-byte size in the file, a flag byte, a u64
//! offset and a u64 uncompressed size.
//!
//! A pipable WIM (wimlib's `--pipable`) is written front to back so it can
//! go down a pipe: its leading header carries no resource locations, and the
//! complete header is written again as the last 208 bytes. We read that copy.

use std::io::{Read, Seek, SeekFrom};

use capmedia_wimlib::Codec;
use serde::Serialize;

use crate::WimError;

/// Size of the on-disk WIM header.
pub const WIM_HEADER_SIZE: usize = 208;
/// Magic of an ordinary WIM.
pub const WIM_MAGIC: [u8; 8] = *b"MSWIM\0\0\0";
/// Magic of a pipable WIM.
pub const PIPABLE_WIM_MAGIC: [u8; 8] = *b"WLPWM\0\0\0";
/// Version written for solid (LZMS "ESD") WIMs.
pub const SOLID_VERSION: u32 = 0xE00;
/// Version of ordinary WIMs, in which the solid flag means nothing.
pub const DEFAULT_VERSION: u32 = 0x10D00;

/// Resource flag: the resource is compressed.
pub const RESHDR_FLAG_COMPRESSED: u8 = 0x04;
/// Resource flag: the resource is an image's metadata.
pub const RESHDR_FLAG_METADATA: u8 = 0x02;
/// Resource flag: solid resource (or a blob inside one).
pub const RESHDR_FLAG_SOLID: u8 = 0x10;

const HDR_FLAG_COMPRESSION: u32 = 0x0000_0002;
const HDR_FLAG_XPRESS: u32 = 0x0002_0000;
const HDR_FLAG_LZX: u32 = 0x0004_0000;
const HDR_FLAG_LZMS: u32 = 0x0008_0000;

/// A resource header: where a resource lies in the WIM and how big it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResourceHeader {
    /// Bytes the resource occupies in the file (56 bits on disk).
    pub stored_size: u64,
    /// Resource flags (0x04 compressed, 0x02 metadata, 0x10 solid, ...).
    pub flags: u8,
    /// Offset from the start of the file.
    pub offset: u64,
    /// Size once uncompressed.
    pub original_size: u64,
}

impl ResourceHeader {
    /// Parses the 24 on-disk bytes.
    pub fn parse(b: &[u8; 24]) -> Self {
        let mut size = [0u8; 8];
        size[..7].copy_from_slice(&b[..7]);
        ResourceHeader {
            stored_size: u64::from_le_bytes(size),
            flags: b[7],
            offset: le_u64(&b[8..16]),
            original_size: le_u64(&b[16..24]),
        }
    }

    /// Whether the compressed flag is set.
    pub fn is_compressed(&self) -> bool {
        self.flags & RESHDR_FLAG_COMPRESSED != 0
    }

    fn is_empty(&self) -> bool {
        self.stored_size == 0 && self.offset == 0 && self.original_size == 0
    }
}

/// The WIM header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WimHeader {
    /// Whether the magic was `WLPWM\0\0\0`.
    pub pipable: bool,
    /// Format version (0x10D00 ordinary, 0xE00 solid).
    pub version: u32,
    /// Header flags.
    pub flags: u32,
    /// Chunk size of non-solid compressed resources.
    pub chunk_size: u32,
    /// The WIM's GUID, shared by all parts of a split WIM.
    pub guid: [u8; 16],
    /// Which part of a split WIM this is (1-based).
    pub part: u16,
    /// How many parts the split WIM has (1 if not split).
    pub total_parts: u16,
    /// Images in the WIM.
    pub image_count: u32,
    /// Where the lookup table lies.
    pub lookup_table: ResourceHeader,
    /// Where the XML data lies.
    pub xml: ResourceHeader,
    /// The bootable image's index, 0 for none.
    pub boot_index: u32,
}

impl WimHeader {
    /// Parses and checks one header (magic, size field, part numbers).
    pub fn parse(b: &[u8; WIM_HEADER_SIZE]) -> Result<Self, WimError> {
        let pipable = if b[..8] == WIM_MAGIC {
            false
        } else if b[..8] == PIPABLE_WIM_MAGIC {
            true
        } else {
            return Err(WimError::WrongMagic {
                found: b[..8].to_vec(),
            });
        };
        let declared = le_u32(&b[0x08..0x0C]);
        if declared as usize != WIM_HEADER_SIZE {
            return Err(WimError::BadHeaderSize { declared });
        }
        let part = le_u16(&b[0x28..0x2A]);
        let total_parts = le_u16(&b[0x2A..0x2C]);
        if part == 0 || total_parts == 0 || part > total_parts {
            return Err(WimError::BadPartNumber {
                part,
                total: total_parts,
            });
        }
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&b[0x18..0x28]);
        Ok(WimHeader {
            pipable,
            version: le_u32(&b[0x0C..0x10]),
            flags: le_u32(&b[0x10..0x14]),
            chunk_size: le_u32(&b[0x14..0x18]),
            guid,
            part,
            total_parts,
            image_count: le_u32(&b[0x2C..0x30]),
            lookup_table: reshdr_at(b, 0x30),
            xml: reshdr_at(b, 0x48),
            boot_index: le_u32(&b[0x78..0x7C]),
        })
    }

    /// The compression named by the header flags: "none", "xpress", "lzx",
    /// "lzms" or "unknown".
    pub fn compression(&self) -> &'static str {
        match self.codec() {
            Ok(None) => "none",
            Ok(Some(c)) => c.name(),
            Err(_) => "unknown",
        }
    }

    /// The codec of non-solid compressed resources, `None` if uncompressed.
    pub fn codec(&self) -> Result<Option<Codec>, WimError> {
        if self.flags & HDR_FLAG_COMPRESSION == 0 {
            Ok(None)
        } else if self.flags & HDR_FLAG_XPRESS != 0 {
            Ok(Some(Codec::Xpress))
        } else if self.flags & HDR_FLAG_LZX != 0 {
            Ok(Some(Codec::Lzx))
        } else if self.flags & HDR_FLAG_LZMS != 0 {
            Ok(Some(Codec::Lzms))
        } else {
            Err(WimError::UnknownCompression { flags: self.flags })
        }
    }

    /// Whether the header's version is the solid one (ESD).
    pub fn is_solid_version(&self) -> bool {
        self.version == SOLID_VERSION
    }
}

fn reshdr_at(b: &[u8; WIM_HEADER_SIZE], at: usize) -> ResourceHeader {
    let mut r = [0u8; 24];
    r.copy_from_slice(&b[at..at + 24]);
    ResourceHeader::parse(&r)
}

/// Reads the header of a WIM (the trailing copy for a pipable one) and the
/// file's length. Reads at most two headers.
pub fn read_header<R: Read + Seek>(r: &mut R) -> Result<(WimHeader, u64), WimError> {
    let file_len = r.seek(SeekFrom::End(0))?;
    if file_len == 0 {
        return Err(WimError::Empty);
    }
    r.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; WIM_HEADER_SIZE];
    let got = read_up_to(r, &mut head)?;
    // Judge the magic on what we have, so a short non-WIM says "wrong magic"
    // and a short WIM says "truncated".
    let avail = got.min(8);
    if head[..avail] != WIM_MAGIC[..avail] && head[..avail] != PIPABLE_WIM_MAGIC[..avail] {
        return Err(WimError::WrongMagic {
            found: head[..avail].to_vec(),
        });
    }
    if got < WIM_HEADER_SIZE {
        return Err(WimError::TruncatedHeader {
            len: file_len,
            needed: WIM_HEADER_SIZE as u64,
        });
    }
    let mut header = WimHeader::parse(&head)?;
    if header.pipable {
        let needed = 2 * WIM_HEADER_SIZE as u64;
        if file_len < needed {
            return Err(WimError::TruncatedHeader {
                len: file_len,
                needed,
            });
        }
        r.seek(SeekFrom::Start(file_len - WIM_HEADER_SIZE as u64))?;
        let mut tail = [0u8; WIM_HEADER_SIZE];
        r.read_exact(&mut tail)?;
        if tail[..8] != PIPABLE_WIM_MAGIC {
            return Err(WimError::PipableTrailerMissing);
        }
        header = WimHeader::parse(&tail)?;
    }
    Ok((header, file_len))
}

/// Reads and decodes the XML data resource (UTF-16LE with BOM, always
/// stored uncompressed), refusing more than `max_xml` bytes.
pub fn read_xml<R: Read + Seek>(
    r: &mut R,
    res: &ResourceHeader,
    file_len: u64,
    max_xml: u64,
) -> Result<String, WimError> {
    if res.is_empty() {
        return Err(WimError::XmlMissing);
    }
    if res.is_compressed() {
        return Err(WimError::XmlCompressed { flags: res.flags });
    }
    let size = res.stored_size.max(res.original_size);
    if size > max_xml {
        return Err(WimError::XmlTooLarge {
            size,
            limit: max_xml,
        });
    }
    match res.offset.checked_add(res.stored_size) {
        Some(end) if end <= file_len => {}
        _ => {
            return Err(WimError::XmlBeyondFile {
                offset: res.offset,
                size: res.stored_size,
                file_len,
            })
        }
    }
    if res.stored_size != res.original_size {
        return Err(WimError::XmlSizeMismatch {
            stored: res.stored_size,
            original: res.original_size,
        });
    }
    if !res.stored_size.is_multiple_of(2) {
        return Err(WimError::XmlOddLength {
            size: res.stored_size,
        });
    }
    // Bounded by max_xml and the file length just above.
    let len = usize::try_from(res.stored_size).map_err(|_| WimError::XmlTooLarge {
        size: res.stored_size,
        limit: max_xml,
    })?;
    r.seek(SeekFrom::Start(res.offset))?;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    decode_utf16_xml(&buf)
}

/// Decodes the XML resource: UTF-16LE, starting with the byte-order mark;
/// trailing NULs (padding some writers add) are dropped.
pub fn decode_utf16_xml(bytes: &[u8]) -> Result<String, WimError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(WimError::XmlOddLength {
            size: bytes.len() as u64,
        });
    }
    if bytes.len() < 2 || bytes[..2] != [0xFF, 0xFE] {
        return Err(WimError::XmlMissingBom);
    }
    let units = bytes[2..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    for (i, c) in char::decode_utf16(units).enumerate() {
        match c {
            Ok(c) => text.push(c),
            Err(_) => {
                return Err(WimError::XmlInvalidUtf16 {
                    byte_offset: 2 + 2 * i as u64,
                })
            }
        }
    }
    let trimmed = text.trim_end_matches('\0').len();
    text.truncate(trimmed);
    Ok(text)
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
pub fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
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

pub(crate) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}
