//! Where everything goes on the disk, decided before the first byte is
//! written: partition placement, FAT32 geometry and whether the plan fits.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use capmedia_content::{MediaPlan, MANIFEST_PATH};
use capmedia_manifest::Manifest;

use crate::DiskError;

/// Bytes per logical sector; capmedia writes 512-byte-sector disks only
/// (every USB stick and VHD presents 512-byte logical sectors).
pub const SECTOR: u64 = 512;
/// Partitions start on a 1 MiB boundary, as Windows and parted place them.
pub const ALIGN: u64 = 1 << 20;
/// The largest file FAT32 can hold.
pub const MAX_FAT32_FILE: u64 = u32::MAX as u64;
/// FAT32 needs at least this many clusters (Microsoft's FAT specification);
/// fewer and every driver reads the volume as FAT16.
pub const MIN_FAT32_CLUSTERS: u32 = 65_525;
/// The most clusters a FAT32 volume may have.
pub const MAX_FAT32_CLUSTERS: u32 = 0x0FFF_FFF4;
/// fatfs's FAT32 reserved sector count (boot, FSInfo, backup boot).
const RESERVED_SECTORS: u32 = 8;
const FATS: u32 = 2;
/// Sectors the GPT needs at the end of the disk (backup table + header).
const GPT_TAIL_SECTORS: u64 = 33;

/// The partition table written in front of the FAT32 volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionScheme {
    /// One active FAT32 LBA partition (type 0x0C): boots on UEFI and on
    /// BIOS (capmedia's boot code in the MBR and the FAT32 boot sector,
    /// see `capmedia_bootcode`, loads `/bootmgr`).
    #[default]
    Mbr,
    /// One EFI System Partition behind a protective MBR without boot code:
    /// boots on UEFI only.
    Gpt,
}

impl PartitionScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionScheme::Mbr => "mbr",
            PartitionScheme::Gpt => "gpt",
        }
    }
}

impl fmt::Display for PartitionScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PartitionScheme {
    type Err = DiskError;
    fn from_str(s: &str) -> Result<Self, DiskError> {
        match s.to_ascii_lowercase().as_str() {
            "mbr" | "msdos" | "dos" => Ok(PartitionScheme::Mbr),
            "gpt" => Ok(PartitionScheme::Gpt),
            _ => Err(DiskError::BadScheme(s.to_owned())),
        }
    }
}

/// FAT32 geometry of one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatGeometry {
    pub total_sectors: u32,
    pub sectors_per_cluster: u32,
    pub sectors_per_fat: u32,
    pub clusters: u32,
}

impl FatGeometry {
    pub fn cluster_bytes(&self) -> u64 {
        u64::from(self.sectors_per_cluster) * SECTOR
    }

    /// The geometry fatfs 0.3.6 computes for this size and cluster size
    /// (same formula, so the fit check before writing is exact).
    pub fn compute(total_sectors: u32, sectors_per_cluster: u32) -> Option<FatGeometry> {
        if total_sectors <= RESERVED_SECTORS + 8 || sectors_per_cluster == 0 {
            return None;
        }
        let t0 = u64::from(total_sectors - RESERVED_SECTORS);
        let t1 = t0 + 2 * u64::from(sectors_per_cluster);
        let t2 = u64::from(sectors_per_cluster) * SECTOR * 8 / 32 + u64::from(FATS);
        let spf = t1.div_ceil(t2);
        let data = t0.checked_sub(spf * u64::from(FATS))?;
        let clusters = data / u64::from(sectors_per_cluster);
        Some(FatGeometry {
            total_sectors,
            sectors_per_cluster,
            sectors_per_fat: u32::try_from(spf).ok()?,
            clusters: u32::try_from(clusters).ok()?,
        })
    }

    /// The cluster size for a FAT32 volume of `total_sectors`: Microsoft's
    /// default for the size, made smaller until there are enough clusters
    /// that the volume really is FAT32.
    pub fn choose(total_sectors: u32) -> Result<FatGeometry, DiskError> {
        let bytes = u64::from(total_sectors) * SECTOR;
        let preferred: u64 = match bytes {
            b if b <= 64 << 20 => 512,
            b if b <= 128 << 20 => 1 << 10,
            b if b <= 256 << 20 => 2 << 10,
            b if b <= 8 << 30 => 4 << 10,
            b if b <= 16 << 30 => 8 << 10,
            b if b <= 32 << 30 => 16 << 10,
            _ => 32 << 10,
        };
        let mut spc = (preferred / SECTOR) as u32;
        loop {
            if let Some(g) = Self::compute(total_sectors, spc) {
                if g.clusters >= MIN_FAT32_CLUSTERS && g.clusters <= MAX_FAT32_CLUSTERS {
                    return Ok(g);
                }
            }
            if spc == 1 {
                return Err(DiskError::TooSmallForFat32 {
                    size: bytes,
                    minimum: min_fat32_partition(),
                });
            }
            spc /= 2;
        }
    }
}

/// The smallest partition that FAT32 with 512-byte clusters allows.
fn min_fat32_partition() -> u64 {
    // Grows monotonically with the sector count: scan from the bound.
    let mut s = MIN_FAT32_CLUSTERS + RESERVED_SECTORS;
    loop {
        if let Some(g) = FatGeometry::compute(s, 1) {
            if g.clusters >= MIN_FAT32_CLUSTERS {
                return u64::from(s) * SECTOR;
            }
        }
        s += 64;
    }
}

/// The whole disk: size, partition and file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLayout {
    pub scheme: PartitionScheme,
    pub disk_bytes: u64,
    /// First sector of the FAT32 partition.
    pub part_start_lba: u64,
    pub part_sectors: u64,
    pub fat: FatGeometry,
}

impl DiskLayout {
    /// The layout for a disk of `disk_bytes` (rounded down to whole sectors).
    pub fn new(disk_bytes: u64, scheme: PartitionScheme) -> Result<DiskLayout, DiskError> {
        let sectors = disk_bytes / SECTOR;
        let start = ALIGN / SECTOR;
        let end = match scheme {
            PartitionScheme::Mbr => sectors,
            PartitionScheme::Gpt => sectors.saturating_sub(GPT_TAIL_SECTORS + 1),
        };
        // MBR entries and fatfs both count sectors in 32 bits: beyond 2 TiB
        // the partition stops and the rest of the disk stays unused.
        let part_sectors = end.saturating_sub(start).min(u64::from(u32::MAX));
        if part_sectors == 0 {
            return Err(DiskError::TooSmallForFat32 {
                size: disk_bytes,
                minimum: min_fat32_partition() + ALIGN + GPT_TAIL_SECTORS * SECTOR,
            });
        }
        let fat =
            FatGeometry::choose(part_sectors as u32).map_err(|_| DiskError::TooSmallForFat32 {
                size: disk_bytes,
                minimum: min_fat32_partition() + ALIGN + (GPT_TAIL_SECTORS + 1) * SECTOR,
            })?;
        Ok(DiskLayout {
            scheme,
            disk_bytes: sectors * SECTOR,
            part_start_lba: start,
            part_sectors,
            fat,
        })
    }

    pub fn part_offset(&self) -> u64 {
        self.part_start_lba * SECTOR
    }

    pub fn part_bytes(&self) -> u64 {
        self.part_sectors * SECTOR
    }

    /// Clusters the plan (with its manifest) needs on this layout.
    pub fn clusters_needed(&self, plan: &MediaPlan) -> u64 {
        clusters_needed(plan, self.fat.cluster_bytes())
    }

    /// Clusters free after formatting (the root directory takes one).
    pub fn clusters_free(&self) -> u64 {
        u64::from(self.fat.clusters) - 1
    }

    /// Refuses a plan that does not fit, before anything is written.
    pub fn check_fits(&self, plan: &MediaPlan) -> Result<(), DiskError> {
        let need = self.clusters_needed(plan);
        let free = self.clusters_free();
        if need > free {
            let c = self.fat.cluster_bytes();
            return Err(DiskError::DoesNotFit {
                needed: need * c,
                available: free * c,
                disk: self.disk_bytes,
            });
        }
        Ok(())
    }
}

/// Directory entries a name takes: the 8.3 entry and its long-name entries
/// (fatfs writes long-name entries for every name).
fn entries_for(name: &str) -> u64 {
    1 + (name.encode_utf16().count() as u64).div_ceil(13)
}

/// Clusters a plan takes with clusters of `cluster` bytes: file data,
/// every directory's entries, the manifest and its root entry.
pub(crate) fn clusters_needed(plan: &MediaPlan, cluster: u64) -> u64 {
    // Directory path ("" = root) -> entry slots used in it.
    let mut dirs: BTreeMap<String, u64> = BTreeMap::new();
    // The root holds the volume label entry.
    dirs.insert(String::new(), 1);
    let mut data = 0u64;
    let add_file = |path: &str, size: u64, dirs: &mut BTreeMap<String, u64>| {
        let comps: Vec<&str> = path.split('/').collect();
        let mut parent = String::new();
        for (i, c) in comps.iter().enumerate() {
            let me = if parent.is_empty() {
                (*c).to_owned()
            } else {
                format!("{parent}/{c}")
            };
            let is_dir = i + 1 < comps.len();
            if is_dir {
                if !dirs.contains_key(&me) {
                    // "." and ".." with fatfs's long-name entries (removed
                    // afterwards, but they take room while writing).
                    dirs.insert(me.clone(), 4);
                    *dirs.entry(parent.clone()).or_insert(0) += entries_for(c);
                }
            } else {
                *dirs.entry(parent.clone()).or_insert(0) += entries_for(c);
            }
            parent = me;
        }
        size.div_ceil(cluster)
    };
    for e in &plan.entries {
        data += add_file(e.path.as_str(), e.size, &mut dirs);
    }
    let manifest = Manifest::for_plan(plan).to_bytes().len() as u64;
    data += add_file(MANIFEST_PATH, manifest, &mut dirs);
    let per_cluster = cluster / 32;
    let dir_clusters: u64 = dirs
        .values()
        // One spare slot: fatfs looks for room for the next entry.
        .map(|&n| (n + 1).div_ceil(per_cluster).max(1))
        .sum();
    // The root's first cluster is allocated by formatting.
    data + dir_clusters - 1
}

/// The smallest disk (whole MiB) that holds the plan with either partition
/// scheme, with slack: for sizing an image when no media size is given.
pub fn min_disk_size(plan: &MediaPlan) -> u64 {
    let content = plan.content_bytes();
    // Start from content plus ~3% FAT and rounding overhead, plus 2 MiB of
    // slack; grow until both schemes fit.
    let mut size = (ALIGN + content + content / 32 + (2 << 20)).div_ceil(ALIGN) * ALIGN;
    loop {
        let fits = |s| {
            DiskLayout::new(size, s)
                .map(|l| l.check_fits(plan).is_ok())
                .unwrap_or(false)
        };
        if fits(PartitionScheme::Mbr) && fits(PartitionScheme::Gpt) {
            return size;
        }
        // Past 2 TiB the partition stops growing (32-bit sector counts):
        // return the size and let the fit check refuse it.
        if size > u64::from(u32::MAX) * SECTOR + 2 * ALIGN {
            return size;
        }
        let step = (size / 64).div_ceil(ALIGN).max(1) * ALIGN;
        size = size.saturating_add(step);
    }
}

/// The FAT volume label for a media label: its first 11 characters,
/// upper-cased, with characters FAT forbids in labels replaced by `_`.
pub fn fat_label(label: &str) -> [u8; 11] {
    let mut out = [b' '; 11];
    for (o, c) in out.iter_mut().zip(label.chars().take(11)) {
        let c = c.to_ascii_uppercase();
        *o = if c.is_ascii_alphanumeric() || " !#$%&'()-@^_`{}~".contains(c) {
            c as u8
        } else {
            b'_'
        };
    }
    // A label may not start with a space: it would read as empty.
    if out[0] == b' ' && out.iter().any(|&b| b != b' ') {
        out[0] = b'_';
    }
    if out.iter().all(|&b| b == b' ') {
        out.copy_from_slice(b"NO NAME    ");
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(&fat_label("Configuration Manager"), b"CONFIGURATI");
        assert_eq!(&fat_label("a.b*c"), b"A_B_C      ");
        assert_eq!(&fat_label(""), b"NO NAME    ");
        assert_eq!(&fat_label("Ünï"), b"_N_        ");
    }

    #[test]
    fn fat32_geometry_is_fat32() {
        for mib in [34u64, 40, 64, 100, 200, 300, 1024, 9000, 20000, 40000] {
            let g = FatGeometry::choose(((mib << 20) / 512) as u32).unwrap();
            assert!(g.clusters >= MIN_FAT32_CLUSTERS, "{mib} MiB: {g:?}");
        }
        assert!(FatGeometry::choose(((32u64 << 20) / 512) as u32).is_err());
    }
}
