//! The on-disk structures of the VHD format (Microsoft "Virtual Hard Disk
//! Image Format Specification", version 1.0): the 512-byte footer, the
//! 1024-byte dynamic disk header, CHS geometry and the checksum. All fields are
//! big-endian.

use crate::VhdError;

pub(crate) const SECTOR: u64 = 512;
pub(crate) const FOOTER_LEN: usize = 512;
pub(crate) const HEADER_LEN: usize = 1024;
pub(crate) const FOOTER_COOKIE: &[u8; 8] = b"conectix";
pub(crate) const HEADER_COOKIE: &[u8; 8] = b"cxsparse";
/// "Reserved" feature bit: the specification says it must always be set.
const FEATURES: u32 = 2;
/// Format version 1.0 (footer and dynamic header).
pub(crate) const VERSION: u32 = 0x0001_0000;
/// The block size this crate writes (the specification's default, and the
/// only one Hyper-V and Virtual PC create).
pub const BLOCK_SIZE: u32 = 2 << 20;
/// Our creator application. Not `vpc `: readers such as qemu treat a `vpc `
/// image's size as Virtual PC would (from CHS), and the field exists to say
/// who wrote the file.
pub const CREATOR_APP: &[u8; 4] = b"cpmd";
const CREATOR_HOST_OS: &[u8; 4] = b"Wi2k";
/// Seconds from 1970-01-01 to 2000-01-01, the VHD epoch.
const VHD_EPOCH: u64 = 946_684_800;
pub(crate) const DISK_FIXED: u32 = 2;
pub(crate) const DISK_DYNAMIC: u32 = 3;
pub(crate) const DISK_DIFFERENCING: u32 = 4;
/// Largest CHS product the specification's algorithm yields.
pub(crate) const MAX_CHS_SECTORS: u64 = 65535 * 16 * 255;
/// The largest VHD (2040 GiB), the limit Hyper-V and qemu enforce.
pub const MAX_SIZE: u64 = 2040 << 30;
const MIB: u64 = 1 << 20;

/// The kind of VHD.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VhdType {
    /// The raw disk followed by the footer: simple and fast, as large as the disk.
    Fixed,
    /// Footer copy, dynamic header, block allocation table and only the 2 MiB
    /// blocks that hold data: about as large as the content.
    Dynamic,
}

impl VhdType {
    fn disk_type(self) -> u32 {
        match self {
            VhdType::Fixed => DISK_FIXED,
            VhdType::Dynamic => DISK_DYNAMIC,
        }
    }
}

impl std::str::FromStr for VhdType {
    type Err = VhdError;
    fn from_str(s: &str) -> Result<Self, VhdError> {
        match s {
            "fixed" => Ok(VhdType::Fixed),
            "dynamic" => Ok(VhdType::Dynamic),
            other => Err(VhdError::UnknownType(other.to_owned())),
        }
    }
}

impl std::fmt::Display for VhdType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VhdType::Fixed => "fixed",
            VhdType::Dynamic => "dynamic",
        })
    }
}

/// Cylinders, heads and sectors per track, as stored in the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geometry {
    pub cylinders: u16,
    pub heads: u8,
    pub sectors_per_track: u8,
}

impl Geometry {
    /// The specification's algorithm (appendix "CHS Calculation") for a disk
    /// of `total_sectors` 512-byte sectors.
    pub fn for_sectors(total_sectors: u64) -> Geometry {
        let total = total_sectors.min(MAX_CHS_SECTORS);
        let (spt, heads, cth) = if total >= 65535 * 16 * 63 {
            (255u64, 16u64, total / 255)
        } else {
            let mut spt = 17u64;
            let mut cth = total / spt;
            let mut heads = cth.div_ceil(1024).max(4);
            if cth >= heads * 1024 || heads > 16 {
                spt = 31;
                heads = 16;
                cth = total / spt;
            }
            if cth >= heads * 1024 {
                spt = 63;
                heads = 16;
                cth = total / spt;
            }
            (spt, heads, cth)
        };
        // Every value is bounded by the clamp above: cth / heads <= 65535.
        Geometry {
            cylinders: u16::try_from(cth / heads).unwrap_or(u16::MAX),
            heads: u8::try_from(heads).unwrap_or(16),
            sectors_per_track: u8::try_from(spt).unwrap_or(255),
        }
    }

    /// Sectors the geometry addresses.
    pub fn sectors(self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.sectors_per_track)
    }
}

/// The virtual size this crate gives a disk of at least `min_bytes`: a whole
/// number of MiB whose CHS geometry (by the specification's algorithm)
/// addresses exactly that many sectors.
///
/// Why: Virtual PC, and qemu before 10.0 for creator applications it does not
/// know, take the disk size from CHS; Hyper-V and newer qemu take it from the
/// footer's current size. Only when both agree does every reader see the same
/// disk (and a GPT backup header where it was written). Above the largest CHS
/// geometry (about 127 GiB) readers use the current size, which is then
/// `min_bytes` rounded up to a MiB.
pub fn virtual_size_for(min_bytes: u64) -> Result<u64, VhdError> {
    let mut mib = min_bytes.div_ceil(MIB).max(1);
    loop {
        let bytes = mib * MIB;
        if bytes > MAX_SIZE {
            return Err(VhdError::TooLarge {
                requested: min_bytes,
                max: MAX_SIZE,
            });
        }
        let sectors = bytes / SECTOR;
        if sectors >= MAX_CHS_SECTORS || Geometry::for_sectors(sectors).sectors() == sectors {
            return Ok(bytes);
        }
        mib += 1;
    }
}

/// The ones' complement of the byte sum, the checksum of footer and header.
pub(crate) fn checksum(bytes: &[u8]) -> u32 {
    !bytes
        .iter()
        .fold(0u32, |sum, &b| sum.wrapping_add(u32::from(b)))
}

/// A 16-byte unique id derived from `seed` (e.g. the media set id), so the
/// same build gets the same id. Shaped as an RFC 9562 version 8 UUID.
pub fn unique_id_from_seed(seed: &[u8]) -> [u8; 16] {
    let mut h = blake3::Hasher::new_derive_key("capmedia-vhd 2024 unique id");
    h.update(seed);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id[6] = (id[6] & 0x0F) | 0x80;
    id[8] = (id[8] & 0x3F) | 0x80;
    id
}

/// Footer field values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub vhd_type: VhdType,
    pub data_offset: u64,
    pub timestamp: u32,
    pub creator_app: [u8; 4],
    pub creator_version: u32,
    pub creator_host_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub geometry: Geometry,
    pub unique_id: [u8; 16],
    pub saved_state: u8,
}

/// Our creator version: the crate's major and minor version.
fn creator_version() -> u32 {
    let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap_or(0);
    let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap_or(0);
    (major << 16) | (minor & 0xFFFF)
}

impl Footer {
    pub(crate) fn ours(
        vhd_type: VhdType,
        size: u64,
        source_date_epoch: u64,
        unique_id: [u8; 16],
    ) -> Footer {
        let secs = source_date_epoch.saturating_sub(VHD_EPOCH);
        Footer {
            vhd_type,
            data_offset: match vhd_type {
                VhdType::Fixed => u64::MAX,
                VhdType::Dynamic => FOOTER_LEN as u64,
            },
            timestamp: u32::try_from(secs).unwrap_or(u32::MAX),
            creator_app: *CREATOR_APP,
            creator_version: creator_version(),
            creator_host_os: *CREATOR_HOST_OS,
            original_size: size,
            current_size: size,
            geometry: Geometry::for_sectors(size / SECTOR),
            unique_id,
            saved_state: 0,
        }
    }

    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[0..8].copy_from_slice(FOOTER_COOKIE);
        b[8..12].copy_from_slice(&FEATURES.to_be_bytes());
        b[12..16].copy_from_slice(&VERSION.to_be_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.timestamp.to_be_bytes());
        b[28..32].copy_from_slice(&self.creator_app);
        b[32..36].copy_from_slice(&self.creator_version.to_be_bytes());
        b[36..40].copy_from_slice(&self.creator_host_os);
        b[40..48].copy_from_slice(&self.original_size.to_be_bytes());
        b[48..56].copy_from_slice(&self.current_size.to_be_bytes());
        b[56..58].copy_from_slice(&self.geometry.cylinders.to_be_bytes());
        b[58] = self.geometry.heads;
        b[59] = self.geometry.sectors_per_track;
        b[60..64].copy_from_slice(&self.vhd_type.disk_type().to_be_bytes());
        b[68..84].copy_from_slice(&self.unique_id);
        b[84] = self.saved_state;
        let sum = checksum(&b);
        b[64..68].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Parse and validate a footer.
    pub(crate) fn decode(b: &[u8; FOOTER_LEN]) -> Result<Footer, VhdError> {
        if &b[0..8] != FOOTER_COOKIE {
            return Err(VhdError::FooterCookie(arr(&b[0..8])));
        }
        let stored = be32(&b[64..68]);
        let mut copy = *b;
        copy[64..68].fill(0);
        let actual = checksum(&copy);
        if stored != actual {
            return Err(VhdError::FooterChecksum {
                stored,
                computed: actual,
            });
        }
        let version = be32(&b[12..16]);
        if version >> 16 != 1 {
            return Err(VhdError::FooterVersion(version));
        }
        let vhd_type = match be32(&b[60..64]) {
            DISK_FIXED => VhdType::Fixed,
            DISK_DYNAMIC => VhdType::Dynamic,
            DISK_DIFFERENCING => return Err(VhdError::Differencing),
            other => return Err(VhdError::DiskType(other)),
        };
        let current_size = be64(&b[48..56]);
        if !current_size.is_multiple_of(SECTOR) || current_size > MAX_SIZE {
            return Err(VhdError::BadSize(current_size));
        }
        Ok(Footer {
            vhd_type,
            data_offset: be64(&b[16..24]),
            timestamp: be32(&b[24..28]),
            creator_app: arr(&b[28..32]),
            creator_version: be32(&b[32..36]),
            creator_host_os: arr(&b[36..40]),
            original_size: be64(&b[40..48]),
            current_size,
            geometry: Geometry {
                cylinders: u16::from_be_bytes([b[56], b[57]]),
                heads: b[58],
                sectors_per_track: b[59],
            },
            unique_id: arr(&b[68..84]),
            saved_state: b[84],
        })
    }
}

/// The dynamic disk header fields this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DynHeader {
    pub table_offset: u64,
    pub max_table_entries: u32,
    pub block_size: u32,
}

impl DynHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(HEADER_COOKIE);
        b[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
        b[16..24].copy_from_slice(&self.table_offset.to_be_bytes());
        b[24..28].copy_from_slice(&VERSION.to_be_bytes());
        b[28..32].copy_from_slice(&self.max_table_entries.to_be_bytes());
        b[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        let sum = checksum(&b);
        b[36..40].copy_from_slice(&sum.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8; HEADER_LEN]) -> Result<DynHeader, VhdError> {
        if &b[0..8] != HEADER_COOKIE {
            return Err(VhdError::HeaderCookie(arr(&b[0..8])));
        }
        let stored = be32(&b[36..40]);
        let mut copy = *b;
        copy[36..40].fill(0);
        let actual = checksum(&copy);
        if stored != actual {
            return Err(VhdError::HeaderChecksum {
                stored,
                computed: actual,
            });
        }
        let version = be32(&b[24..28]);
        if version >> 16 != 1 {
            return Err(VhdError::HeaderVersion(version));
        }
        let block_size = be32(&b[32..36]);
        // A power of two of at least a sector; 256 MiB bounds the bitmap.
        if !block_size.is_power_of_two() || u64::from(block_size) < SECTOR || block_size > 256 << 20
        {
            return Err(VhdError::BlockSize(block_size));
        }
        Ok(DynHeader {
            table_offset: be64(&b[16..24]),
            max_table_entries: be32(&b[28..32]),
            block_size,
        })
    }
}

/// Bytes of the sector bitmap before each block, padded to a sector.
pub(crate) fn bitmap_len(block_size: u32) -> u64 {
    (u64::from(block_size) / SECTOR)
        .div_ceil(8)
        .next_multiple_of(SECTOR)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes(arr(b))
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(arr(b))
}

/// Copy a slice into an array; callers pass slices of exactly `N` bytes.
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    let n = b.len().min(N);
    a[..n].copy_from_slice(&b[..n]);
    a
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn geometry_matches_known_values() {
        // 127 GiB and above: the maximum.
        assert_eq!(
            Geometry::for_sectors(u64::MAX),
            Geometry {
                cylinders: 65535,
                heads: 16,
                sectors_per_track: 255
            }
        );
        // 4158 MiB = 66 * 63 MiB: 16 heads, 63 sectors, 8448 cylinders exactly.
        let g = Geometry::for_sectors(4158 * 2048);
        assert_eq!((g.heads, g.sectors_per_track), (16, 63));
        assert_eq!(g.sectors(), 4158 * 2048);
    }

    #[test]
    fn virtual_sizes_are_whole_mib_and_chs_exact() {
        for mib in (1..600).chain([1024, 4096, 8192, 32_000, 40_000, 130_000, 200_000]) {
            let s = virtual_size_for(mib << 20).unwrap();
            assert_eq!(s % MIB, 0);
            assert!(s >= mib << 20);
            assert!(s - (mib << 20) <= 255 * MIB, "{mib} -> {s}");
            let sectors = s / SECTOR;
            assert!(
                sectors >= MAX_CHS_SECTORS || Geometry::for_sectors(sectors).sectors() == sectors
            );
        }
        assert!(virtual_size_for(MAX_SIZE + 1).is_err());
        assert_eq!(virtual_size_for(MAX_SIZE).unwrap(), MAX_SIZE);
    }

    #[test]
    fn footer_round_trips() {
        let f = Footer::ours(VhdType::Dynamic, 4158 << 20, 1_700_000_000, [7; 16]);
        let b = f.encode();
        assert_eq!(Footer::decode(&b).unwrap(), f);
        let mut bad = b;
        bad[30] ^= 1;
        assert!(matches!(
            Footer::decode(&bad),
            Err(VhdError::FooterChecksum { .. })
        ));
    }
}
