//! Reading a disk back: find the FAT partition, serve its files.

use std::io::{self, Read, Seek, SeekFrom};

use capmedia_content::MediaPath;
use capmedia_manifest::MediaReader;
use fatfs::{FileSystem, FsOptions};

use crate::layout::{PartitionScheme, SECTOR};
use crate::stream::{BlockCache, ReadOnly, Slice};
use crate::DiskError;

/// Where the FAT volume of a disk lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatPartition {
    /// `None` for a volume without partition table (a "superfloppy").
    pub scheme: Option<PartitionScheme>,
    /// Byte offset of the volume (what `mtools` wants after `@@`).
    pub offset: u64,
    pub len: u64,
}

const FAT_MBR_TYPES: [u8; 5] = [0x0B, 0x0C, 0x0E, 0x06, 0xEF];

/// Find the first FAT partition: a GPT EFI System or Basic Data partition,
/// an MBR FAT partition, or a FAT boot sector at offset 0.
pub fn find_fat_partition<T: Read + Seek>(disk: &mut T) -> Result<FatPartition, DiskError> {
    let size = disk.seek(SeekFrom::End(0))?;
    let mut s = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    disk.read_exact(&mut s)
        .map_err(|e| DiskError::NoFatPartition(format!("reading sector 0: {e}")))?;
    if s[510] != 0x55 || s[511] != 0xAA {
        return Err(DiskError::NoFatPartition(
            "no boot signature in sector 0".into(),
        ));
    }
    if &s[82..90] == b"FAT32   " || &s[54..59] == b"FAT16" || &s[54..59] == b"FAT12" {
        return Ok(FatPartition {
            scheme: None,
            offset: 0,
            len: size,
        });
    }
    let entries: Vec<&[u8]> = s[446..510].chunks_exact(16).collect();
    if entries.iter().any(|e| e[4] == 0xEE) {
        let g = gpt::GptConfig::new()
            .writable(false)
            .logical_block_size(gpt::disk::LogicalBlockSize::Lb512)
            .open_from_device(ReadOnly(&mut *disk))
            .map_err(|e| DiskError::NoFatPartition(format!("reading the GPT: {e}")))?;
        let found = g.partitions().values().find(|p| {
            p.is_used()
                && (p.part_type_guid == gpt::partition_types::EFI
                    || p.part_type_guid == gpt::partition_types::BASIC)
        });
        return match found {
            Some(p) => Ok(FatPartition {
                scheme: Some(PartitionScheme::Gpt),
                offset: p.first_lba * SECTOR,
                len: (p.last_lba + 1 - p.first_lba) * SECTOR,
            }),
            None => Err(DiskError::NoFatPartition(
                "the GPT has no EFI System or Basic Data partition".into(),
            )),
        };
    }
    for e in entries {
        let start = u64::from(u32::from_le_bytes([e[8], e[9], e[10], e[11]]));
        let len = u64::from(u32::from_le_bytes([e[12], e[13], e[14], e[15]]));
        if FAT_MBR_TYPES.contains(&e[4]) && len > 0 && start > 0 {
            return Ok(FatPartition {
                scheme: Some(PartitionScheme::Mbr),
                offset: start * SECTOR,
                len: len * SECTOR,
            });
        }
    }
    Err(DiskError::NoFatPartition(
        "the MBR has no FAT partition".into(),
    ))
}

/// The files of a disk written by [`crate::write_disk`] (or any disk with a
/// FAT partition), opened read-only.
pub struct DiskReader<T: Read + Seek> {
    pub(crate) fs: FileSystem<Slice<BlockCache<ReadOnly<T>>>>,
    part: FatPartition,
}

impl<T: Read + Seek> std::fmt::Debug for DiskReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskReader")
            .field("part", &self.part)
            .finish()
    }
}

impl<T: Read + Seek> DiskReader<T> {
    pub fn open(disk: T) -> Result<Self, DiskError> {
        Self::open_with(disk, BlockCache::new)
    }

    /// [`DiskReader::open`] for a disk that keeps its own read-ahead
    /// (capmedia-directio's `DirectFile`): file data is read straight from
    /// it rather than copied through the block cache.
    pub fn open_read_ahead(disk: T) -> Result<Self, DiskError> {
        Self::open_with(disk, BlockCache::over_read_ahead)
    }

    fn open_with(
        mut disk: T,
        cache: fn(ReadOnly<T>) -> BlockCache<ReadOnly<T>>,
    ) -> Result<Self, DiskError> {
        let part = find_fat_partition(&mut disk)?;
        // The cache keeps the FAT in memory while file data streams past.
        let mut volume = Slice::new(cache(ReadOnly(disk)), part.offset, part.len);
        // fatfs follows chains without bounds: every chain is checked first.
        crate::check::check_volume(&mut volume, part.len)?;
        volume.seek(SeekFrom::Start(0))?;
        let fs = FileSystem::new(volume, FsOptions::new()).map_err(|e| {
            DiskError::NoFatPartition(format!("the FAT volume cannot be read: {e}"))
        })?;
        Ok(DiskReader { fs, part })
    }

    pub fn partition(&self) -> FatPartition {
        self.part
    }

    /// The label in the boot sector, trailing spaces removed.
    pub fn label(&self) -> String {
        self.fs.volume_label()
    }

    pub fn is_fat32(&self) -> bool {
        self.fs.fat_type() == fatfs::FatType::Fat32
    }
}

impl<T: Read + Seek> MediaReader for DiskReader<T> {
    fn open(&mut self, path: &MediaPath) -> io::Result<Option<Box<dyn Read + '_>>> {
        match self.fs.root_dir().open_file(path.as_str()) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
