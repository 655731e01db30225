//! Device elements (format 1): the binary layout.
//!
//! Layout as Windows writes it (Microsoft's `ImageStorageServiceManaged`
//! `BcdElementDevice` / `BcdElementBootDevice` / `RamDiskIdentifier` /
//! `FileIdentifier` classes, and DiscUtils' `DeviceRecord`; checked against
//! `bcdedit`-made stores):
//!
//! ```text
//! element value
//!   0x00  GUID     additional options object ({ramdiskoptions} for a RAM
//!                  disk, all zero otherwise)
//!   0x10  record   the device
//! device record
//!   0x00  u32      device type: 0 block I/O, 2 partition, 3 serial, 4 UDP,
//!                  5 boot, 6 partition (qualified), 8 locate
//!   0x04  u32      flags (1 for a RAM disk)
//!   0x08  u32      size of the record, this header included
//!   0x0C  u32      0
//!   0x10  ...      type-specific
//! boot device (type 5): the header and 0x38 zero bytes; size 0x48
//! block I/O (type 0), RAM disk:
//!   0x10  u32      block I/O type 3 (RAM disk)
//!   0x14  20 bytes image base, size, offset: 0 (from the file)
//!   0x28  u32      file identifier version 1
//!   0x2C  u32      file identifier length: 12 + parent record + path
//!   0x30  u32      5
//!   0x34  record   the device holding the file (a boot device: 0x48 bytes)
//!   ...   UTF-16LE the file's path, NUL-terminated
//! partition (type 6), qualified:
//!   0x10  16 bytes partition: GPT partition GUID, or MBR offset (u64)
//!   0x24  u32      partition style: 0 GPT, 1 MBR
//!   0x28  16 bytes disk: GPT disk GUID, or MBR signature (u32)
//! ```
//!
//! So `ramdisk=[boot]\sources\boot.wim,{ramdiskoptions}` is 16 + 0xA0 bytes.

use serde::Serialize;

use crate::Guid;

const HEADER: usize = 16;
const BOOT_RECORD: usize = 0x48;
/// Nested device records (a RAM disk's file on a device ...) deeper than
/// this are not followed.
const MAX_NESTING: usize = 4;

/// A decoded device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Device {
    /// The device the boot manager was started from (`boot`).
    Boot,
    /// A RAM disk loaded from `path` on `parent`.
    Ramdisk { parent: Box<Device>, path: String },
    /// A GPT partition.
    GptPartition { disk: Guid, partition: Guid },
    /// An MBR partition.
    MbrPartition { disk_signature: u32, offset: u64 },
    /// A layout this reader does not decode (type as stored).
    Unknown { device_type: u32 },
}

/// A device element: the options object it names and the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceValue {
    /// The additional options object (nil for none).
    pub options: Guid,
    pub device: Device,
    /// The element's bytes as stored (written back unchanged).
    #[serde(skip)]
    pub raw: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn boot_record() -> Vec<u8> {
    let mut r = vec![0u8; BOOT_RECORD];
    r[0..4].copy_from_slice(&5u32.to_le_bytes());
    r[8..12].copy_from_slice(&(BOOT_RECORD as u32).to_le_bytes());
    r
}

impl DeviceValue {
    /// `boot`: the device the boot manager started from.
    pub fn boot() -> Self {
        let mut raw = vec![0u8; HEADER];
        raw.extend(boot_record());
        Self {
            options: Guid::from_bytes_le([0; 16]),
            device: Device::Boot,
            raw,
        }
    }

    /// `ramdisk=[boot]<path>,<options>`: a RAM disk from a file on the boot device.
    pub fn ramdisk_on_boot(path: &str, options: Guid) -> Self {
        let mut path_bytes: Vec<u8> = path.encode_utf16().flat_map(u16::to_le_bytes).collect();
        path_bytes.extend([0, 0]);
        let parent = boot_record();
        let file_len = 12 + parent.len() + path_bytes.len();
        let record_len = HEADER + 24 + file_len;
        let mut raw = Vec::with_capacity(HEADER + record_len);
        raw.extend(options.to_bytes_le());
        raw.extend(0u32.to_le_bytes()); // block I/O
        raw.extend(1u32.to_le_bytes()); // flags
        raw.extend((record_len as u32).to_le_bytes());
        raw.extend(0u32.to_le_bytes());
        raw.extend(3u32.to_le_bytes()); // RAM disk
        raw.extend([0u8; 20]); // image base, size, offset
        raw.extend(1u32.to_le_bytes()); // file identifier version
        raw.extend((file_len as u32).to_le_bytes());
        raw.extend(5u32.to_le_bytes());
        raw.extend(parent);
        raw.extend(path_bytes);
        Self {
            options,
            device: Device::Ramdisk {
                parent: Box::new(Device::Boot),
                path: path.to_string(),
            },
            raw,
        }
    }

    /// Decodes an element value; layouts it does not know become
    /// [`Device::Unknown`], never an error.
    pub fn parse(raw: &[u8]) -> Self {
        let options = raw
            .get(..16)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Guid::from_bytes_le)
            .unwrap_or_else(|| Guid::from_bytes_le([0; 16]));
        let device = raw
            .get(HEADER..)
            .and_then(|r| parse_record(r, 0))
            .map(|(d, _)| d)
            .unwrap_or(Device::Unknown { device_type: 0 });
        Self {
            options,
            device,
            raw: raw.to_vec(),
        }
    }
}

/// A device record at the start of `r`: the device and the record's size.
fn parse_record(r: &[u8], depth: usize) -> Option<(Device, usize)> {
    let ty = u32_at(r, 0)?;
    let size = u32_at(r, 8)? as usize;
    if size < HEADER || size > r.len() || depth > MAX_NESTING {
        return Some((Device::Unknown { device_type: ty }, size.min(r.len())));
    }
    let rec = &r[..size];
    let unknown = Device::Unknown { device_type: ty };
    let dev = match ty {
        5 => Device::Boot,
        0 if u32_at(rec, 0x10) == Some(3) => parse_ramdisk(rec, depth).unwrap_or(unknown),
        6 => match u32_at(rec, 0x24) {
            Some(0) => Device::GptPartition {
                partition: Guid::from_bytes_le(rec.get(0x10..0x20)?.try_into().ok()?),
                disk: Guid::from_bytes_le(rec.get(0x28..0x38)?.try_into().ok()?),
            },
            Some(1) => Device::MbrPartition {
                offset: u64::from_le_bytes(rec.get(0x10..0x18)?.try_into().ok()?),
                disk_signature: u32_at(rec, 0x28)?,
            },
            _ => unknown,
        },
        _ => unknown,
    };
    Some((dev, size))
}

fn parse_ramdisk(rec: &[u8], depth: usize) -> Option<Device> {
    let file_len = u32_at(rec, 0x2C)? as usize;
    let file = rec.get(0x28..0x28 + file_len)?;
    let (parent, parent_len) = parse_record(file.get(12..)?, depth + 1)?;
    let path_bytes = file.get(12 + parent_len..)?;
    let units: Vec<u16> = path_bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    Some(Device::Ramdisk {
        parent: Box::new(parent),
        path: String::from_utf16_lossy(&units),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::well_known::RAMDISKOPTIONS;

    #[test]
    fn boot_device_is_88_bytes() {
        let d = DeviceValue::boot();
        assert_eq!(d.raw.len(), 0x58);
        assert_eq!(DeviceValue::parse(&d.raw).device, Device::Boot);
    }

    #[test]
    fn ramdisk_round_trip_and_size() {
        let d = DeviceValue::ramdisk_on_boot("\\sources\\boot.wim", RAMDISKOPTIONS);
        assert_eq!(d.raw.len(), 16 + 0xA0);
        assert_eq!(u32_at(&d.raw, 0x18), Some(0xA0));
        let p = DeviceValue::parse(&d.raw);
        assert_eq!(p.options, RAMDISKOPTIONS);
        assert_eq!(p.device, d.device);
    }

    #[test]
    fn garbage_is_unknown_not_a_panic() {
        for n in 0..200 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            let _ = DeviceValue::parse(&junk);
        }
    }
}
