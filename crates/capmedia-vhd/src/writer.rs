//! Writing a VHD: the writer is itself a `Read + Write + Seek` over the
//! virtual disk, so a disk-layout library writes straight into it.

use std::io::{self, Read, Seek, SeekFrom, Write};

use capmedia_vdisk::{BlockWriter, Placement};

use crate::format::{
    bitmap_len, virtual_size_for, DynHeader, Footer, VhdType, BLOCK_SIZE, FOOTER_LEN, HEADER_LEN,
    SECTOR,
};
use crate::VhdError;

/// What a VHD is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdParams {
    pub vhd_type: VhdType,
    /// The smallest virtual size wanted, in bytes; rounded up by
    /// [`virtual_size_for`].
    pub min_size: u64,
    /// Seconds since 1970 for the footer's timestamp (reproducible builds).
    pub source_date_epoch: u64,
    /// The footer's unique id; see [`crate::unique_id_from_seed`].
    pub unique_id: [u8; 16],
}

/// Where the blocks are: a fixed VHD holds the disk at the same offsets; a
/// dynamic one places each block (after its sector bitmap) at the end of the
/// file.
#[derive(Debug)]
enum Blocks {
    Fixed,
    Dynamic {
        /// Sector offset of each block's bitmap, `u32::MAX` when unallocated.
        bat: Vec<u32>,
        /// Byte offset where the next block goes (and, at the end, the footer).
        next_free: u64,
    },
}

const UNALLOCATED: u32 = u32::MAX;
const BLOCK: u64 = BLOCK_SIZE as u64;
const TABLE_OFFSET: u64 = (FOOTER_LEN + HEADER_LEN) as u64;

impl Placement for Blocks {
    fn place(&self, block: u64) -> Option<u64> {
        match self {
            Blocks::Fixed => Some(block * BLOCK),
            Blocks::Dynamic { bat, .. } => {
                let e = *bat.get(usize::try_from(block).ok()?)?;
                (e != UNALLOCATED).then(|| u64::from(e) * SECTOR + bitmap_len(BLOCK_SIZE))
            }
        }
    }

    /// Space at the end of the file, bitmap all set (every sector of an
    /// allocated block is present; never-written ones are zeros).
    fn allocate<F: Write + Seek>(&mut self, file: &mut F, block: u64) -> io::Result<u64> {
        let Blocks::Dynamic { bat, next_free } = self else {
            return Ok(block * BLOCK);
        };
        let at = *next_free;
        let sector = u32::try_from(at / SECTOR)
            .ok()
            .filter(|&s| s != UNALLOCATED)
            .ok_or(VhdError::FileTooLarge)?;
        let e = usize::try_from(block)
            .ok()
            .and_then(|b| bat.get_mut(b))
            .ok_or(VhdError::FileTooLarge)?;
        *e = sector;
        let bitmap = vec![0xFFu8; bitmap_len(BLOCK_SIZE) as usize];
        file.seek(SeekFrom::Start(at))?;
        file.write_all(&bitmap)?;
        *next_free = at + bitmap.len() as u64 + BLOCK;
        Ok(at + bitmap.len() as u64)
    }
}

/// A VHD being written into the empty host file `F`.
///
/// Reads, writes and seeks address the virtual disk `[0, size)`. Fixed: the
/// host file holds the disk at the same offsets. Dynamic: a 2 MiB block gets
/// space (at the end of the file, in the order of the first non-zero write
/// into it) only when non-zero data is written to it; reads of unallocated
/// blocks give zeros. The block mechanism is `capmedia_vdisk::BlockWriter`'s
/// (shared with the VHDX writer); this type adds the VHD structures. Call
/// [`VhdWriter::finish`] to write the footer (and header and BAT); without it
/// the file is not a VHD.
pub struct VhdWriter<F> {
    disk: BlockWriter<F, Blocks>,
    footer: Footer,
}

impl<F> std::fmt::Debug for VhdWriter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdWriter")
            .field("type", &self.footer.vhd_type)
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl<F: Read + Write + Seek> VhdWriter<F> {
    /// Start a VHD in `file`, which must be empty (a fresh or truncated file:
    /// the writer relies on never-written bytes reading as zeros).
    pub fn create(mut file: F, params: &VhdParams) -> Result<Self, VhdError> {
        let size = virtual_size_for(params.min_size)?;
        let len = file.seek(SeekFrom::End(0))?;
        if len != 0 {
            return Err(VhdError::NotEmpty(len));
        }
        let footer = Footer::ours(
            params.vhd_type,
            size,
            params.source_date_epoch,
            params.unique_id,
        );
        let blocks = match params.vhd_type {
            VhdType::Fixed => Blocks::Fixed,
            VhdType::Dynamic => {
                let entries = size.div_ceil(BLOCK);
                let table_len = (entries * 4).next_multiple_of(SECTOR);
                Blocks::Dynamic {
                    bat: vec![
                        UNALLOCATED;
                        usize::try_from(entries).map_err(|_| VhdError::FileTooLarge)?
                    ],
                    next_free: TABLE_OFFSET + table_len,
                }
            }
        };
        Ok(VhdWriter {
            disk: BlockWriter::new(file, blocks, size, BLOCK),
            footer,
        })
    }

    /// The virtual disk's size in bytes (whole MiB, CHS-exact).
    pub fn size(&self) -> u64 {
        self.disk.size()
    }

    pub fn vhd_type(&self) -> VhdType {
        self.footer.vhd_type
    }

    /// Bytes the host file will have after [`finish`](Self::finish), given
    /// what was written so far.
    pub fn file_len(&self) -> u64 {
        match self.disk.placement() {
            Blocks::Fixed => self.disk.size() + FOOTER_LEN as u64,
            Blocks::Dynamic { next_free, .. } => next_free + FOOTER_LEN as u64,
        }
    }

    /// Write the footer (dynamic: also the footer copy, header and BAT),
    /// flush, and give the host file back.
    pub fn finish(self) -> Result<F, VhdError> {
        let footer = self.footer.encode();
        let size = self.disk.size();
        let (mut file, blocks) = self.disk.into_parts();
        match blocks {
            Blocks::Fixed => {
                file.seek(SeekFrom::Start(size))?;
                file.write_all(&footer)?;
            }
            Blocks::Dynamic { bat, next_free } => {
                let entries = u32::try_from(bat.len()).map_err(|_| VhdError::FileTooLarge)?;
                let header = DynHeader {
                    table_offset: TABLE_OFFSET,
                    max_table_entries: entries,
                    block_size: BLOCK_SIZE,
                };
                let mut head = Vec::with_capacity(FOOTER_LEN + HEADER_LEN);
                head.extend_from_slice(&footer);
                head.extend_from_slice(&header.encode());
                file.seek(SeekFrom::Start(0))?;
                file.write_all(&head)?;
                // The BAT, padded to a sector with unallocated entries.
                let table_len = (bat.len() * 4).next_multiple_of(SECTOR as usize);
                let mut table = Vec::with_capacity(table_len);
                for e in &bat {
                    table.extend_from_slice(&e.to_be_bytes());
                }
                table.resize(table_len, 0xFF);
                file.seek(SeekFrom::Start(TABLE_OFFSET))?;
                file.write_all(&table)?;
                file.seek(SeekFrom::Start(next_free))?;
                file.write_all(&footer)?;
            }
        }
        file.flush()?;
        Ok(file)
    }
}

impl<F: Read + Write + Seek> Write for VhdWriter<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.disk.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.flush()
    }
}

impl<F: Read + Write + Seek> Read for VhdWriter<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.disk.read(buf)
    }
}

impl<F: Read + Write + Seek> Seek for VhdWriter<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.disk.seek(to)
    }
}
