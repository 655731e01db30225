//! The on-disk structures of VHDX ([MS-VHDX] "Virtual Hard Disk v2 (VHDX)
//! File Format", version 1): file type identifier, headers, region table,
//! metadata table and items, BAT entries. All fields are little-endian; GUIDs
//! are stored as Windows stores them (first three fields little-endian).

use uuid::Uuid;

use crate::VhdxError;

pub(crate) const KIB: u64 = 1 << 10;
pub(crate) const MIB: u64 = 1 << 20;

/// The file type identifier's signature at offset 0.
pub(crate) const FILE_SIGNATURE: &[u8; 8] = b"vhdxfile";
pub(crate) const HEADER_SIGNATURE: &[u8; 4] = b"head";
pub(crate) const REGION_SIGNATURE: &[u8; 4] = b"regi";
pub(crate) const METADATA_SIGNATURE: &[u8; 8] = b"metadata";

/// Header 1 and 2 (4 KiB structures in 64 KiB slots), region tables 1 and 2.
pub(crate) const HEADER_OFFSETS: [u64; 2] = [64 * KIB, 128 * KIB];
pub(crate) const HEADER_LEN: usize = 4096;
pub(crate) const REGION_OFFSETS: [u64; 2] = [192 * KIB, 256 * KIB];
pub(crate) const REGION_TABLE_LEN: usize = 64 * 1024;
/// The header section: identifier, two headers, two region tables.
pub(crate) const HEADER_SECTION: u64 = MIB;
/// The metadata table's size; items start past it.
pub(crate) const METADATA_TABLE_LEN: usize = 64 * 1024;
/// The specification's limits on table entries.
pub(crate) const MAX_REGION_ENTRIES: u32 = 2047;
pub(crate) const MAX_METADATA_ENTRIES: u16 = 2047;
/// The largest virtual disk the format allows.
pub const MAX_SIZE: u64 = 64 << 40;
/// Block sizes the format allows: powers of two in [1 MiB, 256 MiB].
pub(crate) const MIN_BLOCK: u32 = 1 << 20;
pub(crate) const MAX_BLOCK: u32 = 256 << 20;

/// The payload block size this crate writes: 1 MiB.
///
/// Why not Hyper-V's 32 MiB default: the disk capmedia-disk writes is aligned
/// to 1 MiB, so 1 MiB blocks make a dynamic VHDX exactly the MiBs that hold
/// data (the free space behind the content and the backup GPT's last MiB cost
/// nothing, where a 32 MiB block would allocate up to 32 MiB each), and the
/// writer's BAT stays small (4 bytes per MiB of disk: 4 KiB per GiB). Hyper-V
/// reads and writes 1 MiB blocks (`New-VHD -BlockSizeBytes 1MB` makes them;
/// Microsoft recommends them for guests whose file systems scatter metadata).
pub const BLOCK_SIZE: u32 = 1 << 20;
/// Logical sector size: 512, because capmedia-disk lays the partition table
/// and FAT32 out in 512-byte sectors (a 4096-byte logical sector would move
/// the GPT header and every LBA).
pub const LOGICAL_SECTOR: u32 = 512;
/// Physical sector size: 4096, Hyper-V's default for new VHDX files; it is a
/// hint for alignment and every structure here is 1 MiB aligned.
pub const PHYSICAL_SECTOR: u32 = 4096;
/// The log region: 1 MiB at 1 MiB, all zeros, never used (log GUID zero).
pub(crate) const LOG_OFFSET: u64 = MIB;
pub(crate) const LOG_LEN: u32 = MIB as u32;
/// The metadata region: 1 MiB at 2 MiB.
pub(crate) const METADATA_OFFSET: u64 = 2 * MIB;
pub(crate) const METADATA_LEN: u32 = MIB as u32;
/// The BAT region starts at 3 MiB.
pub(crate) const BAT_OFFSET: u64 = 3 * MIB;
/// Who wrote the file, in the identifier's creator field (fixed text, so
/// builds are reproducible).
pub const CREATOR: &str = "capmedia";

// Region and metadata item ids ([MS-VHDX] 2.2.3.2 and 2.6.2).
pub(crate) const BAT_GUID: Uuid = Uuid::from_u128(0x2DC27766_F623_4200_9D64_115E9BFD4A08);
pub(crate) const METADATA_GUID: Uuid = Uuid::from_u128(0x8B7CA206_4790_4B9A_B8FE_575F050F886E);
pub(crate) const FILE_PARAMETERS_GUID: Uuid =
    Uuid::from_u128(0xCAA16737_FA36_4D43_B3B6_33F0AA44E76B);
pub(crate) const VIRTUAL_DISK_SIZE_GUID: Uuid =
    Uuid::from_u128(0x2FA54224_CD1B_4876_B211_5DBED83BF4B8);
pub(crate) const PAGE83_GUID: Uuid = Uuid::from_u128(0xBECA12AB_B2E6_4523_93EF_C309E000C746);
pub(crate) const LOGICAL_SECTOR_GUID: Uuid =
    Uuid::from_u128(0x8141BF1D_A96F_4709_BA47_F233A8FAAB5F);
pub(crate) const PHYSICAL_SECTOR_GUID: Uuid =
    Uuid::from_u128(0xCDA348C7_445D_4471_9CC9_E9885251C556);
pub(crate) const PARENT_LOCATOR_GUID: Uuid =
    Uuid::from_u128(0xA8D35F2D_B30B_454D_ABF7_D3D84834AB0C);

// BAT entry states ([MS-VHDX] 2.5.1.1 and 2.5.1.2).
pub(crate) const PAYLOAD_BLOCK_NOT_PRESENT: u64 = 0;
pub(crate) const PAYLOAD_BLOCK_UNDEFINED: u64 = 1;
pub(crate) const PAYLOAD_BLOCK_ZERO: u64 = 2;
pub(crate) const PAYLOAD_BLOCK_UNMAPPED: u64 = 3;
pub(crate) const PAYLOAD_BLOCK_FULLY_PRESENT: u64 = 6;
pub(crate) const PAYLOAD_BLOCK_PARTIALLY_PRESENT: u64 = 7;
pub(crate) const SB_BLOCK_NOT_PRESENT: u64 = 0;
pub(crate) const SB_BLOCK_PRESENT: u64 = 6;

// Metadata entry flags.
pub(crate) const META_IS_VIRTUAL_DISK: u32 = 2;
pub(crate) const META_IS_REQUIRED: u32 = 4;

/// The kind of VHDX.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VhdxType {
    /// Every block allocated, in order, behind the BAT (`LeaveBlocksAllocated`):
    /// as large as the disk, unwritten areas sparse on the host.
    Fixed,
    /// Only the blocks that hold data: about as large as the content.
    Dynamic,
}

impl std::str::FromStr for VhdxType {
    type Err = VhdxError;
    fn from_str(s: &str) -> Result<Self, VhdxError> {
        match s {
            "fixed" => Ok(VhdxType::Fixed),
            "dynamic" => Ok(VhdxType::Dynamic),
            other => Err(VhdxError::UnknownType(other.to_owned())),
        }
    }
}

impl std::fmt::Display for VhdxType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VhdxType::Fixed => "fixed",
            VhdxType::Dynamic => "dynamic",
        })
    }
}

/// The virtual size this crate gives a disk of at least `min_bytes`: whole
/// MiB (so whole blocks), at most [`MAX_SIZE`].
pub fn virtual_size_for(min_bytes: u64) -> Result<u64, VhdxError> {
    let size = min_bytes.max(1).div_ceil(MIB).saturating_mul(MIB);
    if size > MAX_SIZE {
        return Err(VhdxError::TooLarge {
            requested: min_bytes,
            max: MAX_SIZE,
        });
    }
    Ok(size)
}

/// CRC-32C (Castagnoli), the checksum of headers, region tables and log
/// entries.
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    CRC.checksum(bytes)
}

/// `bytes` with its 4-byte checksum field at `at` computed (the field counts
/// as zero).
pub(crate) fn seal(bytes: &mut [u8], at: usize) {
    if let Some(f) = bytes.get_mut(at..at + 4) {
        f.fill(0);
    }
    let sum = crc32c(bytes);
    if let Some(f) = bytes.get_mut(at..at + 4) {
        f.copy_from_slice(&sum.to_le_bytes());
    }
}

/// Whether the checksum at `at` matches; returns (stored, computed).
pub(crate) fn check_sum(bytes: &[u8], at: usize) -> (u32, u32) {
    let stored = le32(bytes, at);
    let mut copy = bytes.to_vec();
    seal(&mut copy, at);
    (stored, le32(&copy, at))
}

pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    let mut x = [0u8; 2];
    if let Some(s) = b.get(at..at + 2) {
        x.copy_from_slice(s);
    }
    u16::from_le_bytes(x)
}

pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        x.copy_from_slice(s);
    }
    u32::from_le_bytes(x)
}

pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        x.copy_from_slice(s);
    }
    u64::from_le_bytes(x)
}

pub(crate) fn guid_at(b: &[u8], at: usize) -> Uuid {
    let mut x = [0u8; 16];
    if let Some(s) = b.get(at..at + 16) {
        x.copy_from_slice(s);
    }
    Uuid::from_bytes_le(x)
}

/// Write `v` at `at` (callers size `b` so the field fits).
pub(crate) fn put(b: &mut [u8], at: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(at..at + v.len()) {
        s.copy_from_slice(v);
    }
}

/// Payload blocks per sector bitmap block: (2^23 * logical sector size) /
/// block size ([MS-VHDX] 2.5.1, "chunk ratio").
pub(crate) fn chunk_ratio(block_size: u32, logical_sector: u32) -> u64 {
    ((1u64 << 23) * u64::from(logical_sector)) / u64::from(block_size)
}

/// The BAT's geometry for a disk: payload blocks, chunk ratio, entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatGeometry {
    pub blocks: u64,
    pub chunk_ratio: u64,
    /// Payload entries plus one sector bitmap entry after each full chunk
    /// (a fixed or dynamic disk's count, [MS-VHDX] 2.5.1).
    pub entries: u64,
}

impl BatGeometry {
    pub fn new(size: u64, block_size: u32, logical_sector: u32) -> BatGeometry {
        let blocks = size.div_ceil(u64::from(block_size));
        let chunk_ratio = chunk_ratio(block_size, logical_sector).max(1);
        let entries = blocks + blocks.saturating_sub(1) / chunk_ratio;
        BatGeometry {
            blocks,
            chunk_ratio,
            entries,
        }
    }

    /// The BAT index of payload block `block`.
    pub fn payload_index(&self, block: u64) -> u64 {
        block + block / self.chunk_ratio
    }

    /// Whether BAT index `i` is a sector bitmap entry.
    pub fn is_bitmap_index(&self, i: u64) -> bool {
        (i + 1).is_multiple_of(self.chunk_ratio + 1)
    }
}

/// A BAT entry: state in bits 0-2, file offset in MiB in bits 20-63.
pub(crate) fn bat_entry(state: u64, offset_mib: u64) -> u64 {
    state | (offset_mib << 20)
}

pub(crate) fn bat_state(e: u64) -> u64 {
    e & 7
}

pub(crate) fn bat_offset_mib(e: u64) -> u64 {
    e >> 20
}

/// The 64 KiB file type identifier: signature and UTF-16LE creator.
pub(crate) fn file_identifier() -> Vec<u8> {
    let mut b = vec![0u8; 64 * 1024];
    put(&mut b, 0, FILE_SIGNATURE);
    for (i, u) in CREATOR.encode_utf16().take(256).enumerate() {
        put(&mut b, 8 + 2 * i, &u.to_le_bytes());
    }
    b
}

/// A VHDX header's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub sequence_number: u64,
    pub file_write_guid: Uuid,
    pub data_write_guid: Uuid,
    pub log_guid: Uuid,
    pub log_version: u16,
    pub version: u16,
    pub log_length: u32,
    pub log_offset: u64,
}

impl Header {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN];
        put(&mut b, 0, HEADER_SIGNATURE);
        put(&mut b, 8, &self.sequence_number.to_le_bytes());
        put(&mut b, 16, &self.file_write_guid.to_bytes_le());
        put(&mut b, 32, &self.data_write_guid.to_bytes_le());
        put(&mut b, 48, &self.log_guid.to_bytes_le());
        put(&mut b, 64, &self.log_version.to_le_bytes());
        put(&mut b, 66, &self.version.to_le_bytes());
        put(&mut b, 68, &self.log_length.to_le_bytes());
        put(&mut b, 72, &self.log_offset.to_le_bytes());
        seal(&mut b, 4);
        b
    }

    /// Decode a 4 KiB header; signature and checksum checked.
    pub(crate) fn decode(b: &[u8], which: usize) -> Result<Header, VhdxError> {
        if b.get(..4) != Some(HEADER_SIGNATURE.as_slice()) {
            return Err(VhdxError::HeaderSignature(which));
        }
        let (stored, computed) = check_sum(b, 4);
        if stored != computed {
            return Err(VhdxError::HeaderChecksum {
                which,
                stored,
                computed,
            });
        }
        Ok(Header {
            sequence_number: le64(b, 8),
            file_write_guid: guid_at(b, 16),
            data_write_guid: guid_at(b, 32),
            log_guid: guid_at(b, 48),
            log_version: le16(b, 64),
            version: le16(b, 66),
            log_length: le32(b, 68),
            log_offset: le64(b, 72),
        })
    }
}

/// A region table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub guid: Uuid,
    pub file_offset: u64,
    pub length: u32,
    pub required: bool,
}

pub(crate) fn encode_region_table(regions: &[Region]) -> Vec<u8> {
    let mut b = vec![0u8; REGION_TABLE_LEN];
    put(&mut b, 0, REGION_SIGNATURE);
    put(&mut b, 8, &(regions.len() as u32).to_le_bytes());
    for (i, r) in regions.iter().enumerate() {
        let at = 16 + 32 * i;
        put(&mut b, at, &r.guid.to_bytes_le());
        put(&mut b, at + 16, &r.file_offset.to_le_bytes());
        put(&mut b, at + 24, &r.length.to_le_bytes());
        put(&mut b, at + 28, &u32::from(r.required).to_le_bytes());
    }
    seal(&mut b, 4);
    b
}

pub(crate) fn decode_region_table(b: &[u8], which: usize) -> Result<Vec<Region>, VhdxError> {
    if b.get(..4) != Some(REGION_SIGNATURE.as_slice()) {
        return Err(VhdxError::RegionSignature(which));
    }
    let (stored, computed) = check_sum(b, 4);
    if stored != computed {
        return Err(VhdxError::RegionChecksum {
            which,
            stored,
            computed,
        });
    }
    let count = le32(b, 8);
    if count > MAX_REGION_ENTRIES {
        return Err(VhdxError::RegionCount(count));
    }
    Ok((0..count as usize)
        .map(|i| {
            let at = 16 + 32 * i;
            Region {
                guid: guid_at(b, at),
                file_offset: le64(b, at + 16),
                length: le32(b, at + 24),
                required: le32(b, at + 28) & 1 != 0,
            }
        })
        .collect())
}

/// A metadata table entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetaEntry {
    pub guid: Uuid,
    pub offset: u32,
    pub length: u32,
    pub flags: u32,
}

/// The metadata region's table and items as (offset in region, bytes).
pub(crate) fn encode_metadata(
    size: u64,
    leave_blocks_allocated: bool,
    virtual_disk_id: Uuid,
) -> Vec<u8> {
    let vd = META_IS_VIRTUAL_DISK | META_IS_REQUIRED;
    let items: [(Uuid, u32, Vec<u8>); 5] = [
        (FILE_PARAMETERS_GUID, META_IS_REQUIRED, {
            let mut v = BLOCK_SIZE.to_le_bytes().to_vec();
            // Bit 0: LeaveBlocksAllocated; bit 1: HasParent (never).
            v.extend_from_slice(&u32::from(leave_blocks_allocated).to_le_bytes());
            v
        }),
        (VIRTUAL_DISK_SIZE_GUID, vd, size.to_le_bytes().to_vec()),
        (PAGE83_GUID, vd, virtual_disk_id.to_bytes_le().to_vec()),
        (
            LOGICAL_SECTOR_GUID,
            vd,
            LOGICAL_SECTOR.to_le_bytes().to_vec(),
        ),
        (
            PHYSICAL_SECTOR_GUID,
            vd,
            PHYSICAL_SECTOR.to_le_bytes().to_vec(),
        ),
    ];
    let data_len: usize = items.iter().map(|i| i.2.len()).sum();
    let mut b = vec![0u8; METADATA_TABLE_LEN + data_len];
    put(&mut b, 0, METADATA_SIGNATURE);
    put(&mut b, 10, &(items.len() as u16).to_le_bytes());
    let mut offset = METADATA_TABLE_LEN;
    for (i, (guid, flags, data)) in items.iter().enumerate() {
        let at = 32 + 32 * i;
        put(&mut b, at, &guid.to_bytes_le());
        put(&mut b, at + 16, &(offset as u32).to_le_bytes());
        put(&mut b, at + 20, &(data.len() as u32).to_le_bytes());
        put(&mut b, at + 24, &flags.to_le_bytes());
        put(&mut b, offset, data);
        offset += data.len();
    }
    b
}

pub(crate) fn decode_metadata_table(b: &[u8]) -> Result<Vec<MetaEntry>, VhdxError> {
    if b.get(..8) != Some(METADATA_SIGNATURE.as_slice()) {
        return Err(VhdxError::MetadataSignature);
    }
    let count = le16(b, 10);
    if count > MAX_METADATA_ENTRIES {
        return Err(VhdxError::MetadataCount(count));
    }
    Ok((0..usize::from(count))
        .map(|i| {
            let at = 32 + 32 * i;
            MetaEntry {
                guid: guid_at(b, at),
                offset: le32(b, at + 16),
                length: le32(b, at + 20),
                flags: le32(b, at + 24),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The CRC-32C catalogue's check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn guid_bytes_are_windows_order() {
        assert_eq!(
            &BAT_GUID.to_bytes_le()[..8],
            &[0x66, 0x77, 0xC2, 0x2D, 0x23, 0xF6, 0x00, 0x42]
        );
    }

    #[test]
    fn bat_geometry() {
        let g = BatGeometry::new(1 << 30, BLOCK_SIZE, LOGICAL_SECTOR);
        assert_eq!((g.blocks, g.chunk_ratio, g.entries), (1024, 4096, 1024));
        let g = BatGeometry::new(4097 << 20, BLOCK_SIZE, LOGICAL_SECTOR);
        assert_eq!(g.entries, 4098);
        assert_eq!(g.payload_index(4096), 4097);
        assert!(g.is_bitmap_index(4096));
        assert!(!g.is_bitmap_index(4095));
    }
}
