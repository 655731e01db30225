//! Writing a VHDX: the writer is itself a `Read + Write + Seek` over the
//! virtual disk, so a disk-layout library writes straight into it.

use std::io::{self, Read, Seek, SeekFrom, Write};

use capmedia_vdisk::{BlockWriter, Placement};
use uuid::Uuid;

use crate::format::{
    bat_entry, encode_metadata, encode_region_table, file_identifier, virtual_size_for,
    BatGeometry, Header, Region, VhdxType, BAT_GUID, BAT_OFFSET, BLOCK_SIZE, HEADER_OFFSETS,
    LOGICAL_SECTOR, LOG_LEN, LOG_OFFSET, METADATA_GUID, METADATA_LEN, METADATA_OFFSET, MIB,
    PAYLOAD_BLOCK_FULLY_PRESENT, PAYLOAD_BLOCK_NOT_PRESENT, REGION_OFFSETS, SB_BLOCK_NOT_PRESENT,
};
use crate::VhdxError;

/// The three ids a VHDX carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhdxIds {
    /// Headers' FileWriteGuid: changes whenever the file is opened for writing.
    pub file_write: Uuid,
    /// Headers' DataWriteGuid: changes whenever the disk's data changes.
    pub data_write: Uuid,
    /// The Page 83 data item: the disk's identity (SCSI page 83).
    pub virtual_disk: Uuid,
}

impl VhdxIds {
    /// Reproducible ids from `seed` (e.g. the plan's set id): each is
    /// `capmedia_vhd::unique_id_from_seed` of the seed and its role, a
    /// version 4-shaped GUID.
    pub fn from_seed(seed: &str) -> VhdxIds {
        let id = |role: &str| {
            Uuid::from_bytes(capmedia_vhd::unique_id_from_seed(
                format!("capmedia vhdx {role} {seed}").as_bytes(),
            ))
        };
        VhdxIds {
            file_write: id("file write"),
            data_write: id("data write"),
            virtual_disk: id("virtual disk"),
        }
    }
}

/// What a VHDX is created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdxParams {
    pub vhdx_type: VhdxType,
    /// The smallest virtual size wanted, in bytes; rounded up to a MiB by
    /// [`virtual_size_for`].
    pub min_size: u64,
    pub ids: VhdxIds,
}

/// A VHDX being written into the empty host file `F`.
///
/// Reads, writes and seeks address the virtual disk `[0, size)`. The layout:
/// identifier, headers and region tables in the first MiB, an empty 1 MiB log,
/// 1 MiB of metadata, the BAT from 3 MiB, then 1 MiB payload blocks. Fixed:
/// every block has its place from the start, in disk order. Dynamic: a block
/// gets a place (at the end of the file, in the order of the first non-zero
/// write into it) only when non-zero data is written to it; reads of blocks
/// without one give zeros. Never-written bytes are never written, so they stay
/// holes on the host. The block mechanism is `capmedia_vdisk::BlockWriter`'s
/// (shared with the VHD writer); this type adds the VHDX structures. Call
/// [`VhdxWriter::finish`] to write the headers, region tables, metadata and
/// BAT; without it the file is not a VHDX.
///
/// Memory: 4 bytes per block of the disk (4 KiB per GiB), whatever the
/// content.
pub struct VhdxWriter<F> {
    disk: BlockWriter<F, Blocks>,
    params: VhdxParams,
    geometry: BatGeometry,
    data_start: u64,
}

/// Where the payload blocks are.
#[derive(Debug)]
struct Blocks {
    /// Each payload block's file offset in MiB; 0 = not present.
    mib: Vec<u32>,
    /// Where the next dynamic block goes; the file's final length.
    next_free: u64,
}

impl Placement for Blocks {
    fn place(&self, block: u64) -> Option<u64> {
        let at = *self.mib.get(usize::try_from(block).ok()?)?;
        (at != 0).then(|| u64::from(at) * MIB)
    }

    /// At the end of the file (VHDX keeps nothing beside a block).
    fn allocate<F: Write + Seek>(&mut self, _: &mut F, block: u64) -> io::Result<u64> {
        let at = self.next_free;
        let mib = u32::try_from(at / MIB).map_err(|_| VhdxError::FileTooLarge)?;
        let e = usize::try_from(block)
            .ok()
            .and_then(|b| self.mib.get_mut(b))
            .ok_or(VhdxError::FileTooLarge)?;
        *e = mib;
        self.next_free += BLOCK;
        Ok(at)
    }
}

impl<F> std::fmt::Debug for VhdxWriter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdxWriter")
            .field("type", &self.params.vhdx_type)
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

const BLOCK: u64 = BLOCK_SIZE as u64;

impl<F: Read + Write + Seek> VhdxWriter<F> {
    /// Start a VHDX in `file`, which must be empty (a fresh or truncated
    /// file: the writer relies on never-written bytes reading as zeros).
    pub fn create(mut file: F, params: &VhdxParams) -> Result<Self, VhdxError> {
        let size = virtual_size_for(params.min_size)?;
        let len = file.seek(SeekFrom::End(0))?;
        if len != 0 {
            return Err(VhdxError::NotEmpty(len));
        }
        let geometry = BatGeometry::new(size, BLOCK_SIZE, LOGICAL_SECTOR);
        let bat_len = (geometry.entries * 8).next_multiple_of(MIB);
        let data_start = BAT_OFFSET + bat_len;
        let count = usize::try_from(geometry.blocks).map_err(|_| VhdxError::FileTooLarge)?;
        let mib = match params.vhdx_type {
            VhdxType::Dynamic => vec![0u32; count],
            VhdxType::Fixed => (0..geometry.blocks)
                .map(|b| u32::try_from(data_start / MIB + b).map_err(|_| VhdxError::FileTooLarge))
                .collect::<Result<_, _>>()?,
        };
        let next_free = match params.vhdx_type {
            VhdxType::Dynamic => data_start,
            VhdxType::Fixed => data_start + geometry.blocks * BLOCK,
        };
        Ok(VhdxWriter {
            disk: BlockWriter::new(file, Blocks { mib, next_free }, size, BLOCK),
            params: params.clone(),
            geometry,
            data_start,
        })
    }

    /// The virtual disk's size in bytes (whole MiB).
    pub fn size(&self) -> u64 {
        self.disk.size()
    }

    pub fn vhdx_type(&self) -> VhdxType {
        self.params.vhdx_type
    }

    /// Bytes the host file will have after [`finish`](Self::finish), given
    /// what was written so far.
    pub fn file_len(&self) -> u64 {
        self.disk.placement().next_free
    }

    /// Write the identifier, both headers, both region tables, the metadata
    /// and the BAT; make the file its full length; flush; give the file back.
    pub fn finish(self) -> Result<F, VhdxError> {
        let size = self.disk.size();
        let (mut file, blocks) = self.disk.into_parts();
        let bat_len = self.data_start - BAT_OFFSET;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&file_identifier())?;
        for (i, at) in HEADER_OFFSETS.into_iter().enumerate() {
            let h = Header {
                sequence_number: i as u64 + 1,
                file_write_guid: self.params.ids.file_write,
                data_write_guid: self.params.ids.data_write,
                log_guid: Uuid::nil(),
                log_version: 0,
                version: 1,
                log_length: LOG_LEN,
                log_offset: LOG_OFFSET,
            };
            file.seek(SeekFrom::Start(at))?;
            file.write_all(&h.encode())?;
        }
        let regions = encode_region_table(&[
            Region {
                guid: BAT_GUID,
                file_offset: BAT_OFFSET,
                length: u32::try_from(bat_len).map_err(|_| VhdxError::FileTooLarge)?,
                required: true,
            },
            Region {
                guid: METADATA_GUID,
                file_offset: METADATA_OFFSET,
                length: METADATA_LEN,
                required: true,
            },
        ]);
        for at in REGION_OFFSETS {
            file.seek(SeekFrom::Start(at))?;
            file.write_all(&regions)?;
        }
        let metadata = encode_metadata(
            size,
            self.params.vhdx_type == VhdxType::Fixed,
            self.params.ids.virtual_disk,
        );
        file.seek(SeekFrom::Start(METADATA_OFFSET))?;
        file.write_all(&metadata)?;

        // The BAT, streamed in 64 KiB pieces: payload entries with a
        // (not present) sector bitmap entry after each chunk.
        file.seek(SeekFrom::Start(BAT_OFFSET))?;
        let mut piece = Vec::with_capacity(64 * 1024);
        let mut block = 0usize;
        for i in 0..self.geometry.entries {
            let e = if self.geometry.is_bitmap_index(i) {
                bat_entry(SB_BLOCK_NOT_PRESENT, 0)
            } else {
                let at = blocks.mib.get(block).copied().unwrap_or(0);
                block += 1;
                if at == 0 {
                    bat_entry(PAYLOAD_BLOCK_NOT_PRESENT, 0)
                } else {
                    bat_entry(PAYLOAD_BLOCK_FULLY_PRESENT, u64::from(at))
                }
            };
            piece.extend_from_slice(&e.to_le_bytes());
            if piece.len() == piece.capacity() {
                file.write_all(&piece)?;
                piece.clear();
            }
        }
        file.write_all(&piece)?;

        // The file's full length: a zero in its last byte (whatever lies
        // before it and was never written stays a hole).
        let len = file.seek(SeekFrom::End(0))?;
        if len < blocks.next_free {
            file.seek(SeekFrom::Start(blocks.next_free - 1))?;
            file.write_all(&[0])?;
        }
        file.flush()?;
        Ok(file)
    }
}

impl<F: Read + Write + Seek> Write for VhdxWriter<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.disk.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.disk.flush()
    }
}

impl<F: Read + Write + Seek> Read for VhdxWriter<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.disk.read(buf)
    }
}

impl<F: Read + Write + Seek> Seek for VhdxWriter<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.disk.seek(to)
    }
}
