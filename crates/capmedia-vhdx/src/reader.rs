//! Reading a VHDX back: every structure is validated before the first read,
//! so hostile files give typed errors, never panics or huge allocations.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use uuid::Uuid;

use crate::format::{
    bat_offset_mib, bat_state, decode_metadata_table, decode_region_table, le32, le64, BatGeometry,
    Header, Region, BAT_GUID, FILE_PARAMETERS_GUID, FILE_SIGNATURE, HEADER_LEN, HEADER_OFFSETS,
    HEADER_SECTION, LOGICAL_SECTOR_GUID, MAX_BLOCK, MAX_SIZE, METADATA_GUID, METADATA_TABLE_LEN,
    MIB, MIN_BLOCK, PAGE83_GUID, PARENT_LOCATOR_GUID, PAYLOAD_BLOCK_FULLY_PRESENT,
    PAYLOAD_BLOCK_NOT_PRESENT, PAYLOAD_BLOCK_PARTIALLY_PRESENT, PAYLOAD_BLOCK_UNDEFINED,
    PAYLOAD_BLOCK_UNMAPPED, PAYLOAD_BLOCK_ZERO, PHYSICAL_SECTOR_GUID, REGION_OFFSETS,
    REGION_TABLE_LEN, SB_BLOCK_NOT_PRESENT, SB_BLOCK_PRESENT, VIRTUAL_DISK_SIZE_GUID,
};
use crate::VhdxError;
use capmedia_vdisk::seek_pos;

/// What a VHDX's headers and metadata say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdxInfo {
    /// The current header (the valid one with the higher sequence number).
    pub header: Header,
    pub block_size: u32,
    /// The file parameters' LeaveBlocksAllocated bit (set for fixed disks).
    pub leave_blocks_allocated: bool,
    pub virtual_disk_size: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub virtual_disk_id: Uuid,
    /// Payload blocks that have space in the file.
    pub allocated_blocks: u64,
    pub file_len: u64,
}

/// A `Read + Seek` over the virtual disk of a (non-differencing) VHDX.
pub struct VhdxReader<F> {
    file: F,
    info: VhdxInfo,
    block: u64,
    pos: u64,
    geometry: BatGeometry,
    bat_offset: u64,
    /// The BAT page read last (index, 64 KiB): entries are looked up from the
    /// file, so memory does not grow with the disk.
    page: Option<(u64, Vec<u8>)>,
}

/// BAT entries per cached page.
const PAGE_ENTRIES: u64 = 8192;

impl<F> std::fmt::Debug for VhdxReader<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdxReader")
            .field("info", &self.info)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl VhdxReader<File> {
    /// Open the VHDX at `path`.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self, VhdxError> {
        Self::open(File::open(path)?)
    }
}

/// The smallest file: the header section and one 1 MiB region.
const MIN_FILE: u64 = HEADER_SECTION + MIB;

fn read_at<F: Read + Seek>(file: &mut F, at: u64, out: &mut [u8]) -> Result<(), VhdxError> {
    file.seek(SeekFrom::Start(at))?;
    file.read_exact(out)?;
    Ok(())
}

/// A region's byte range, checked: 1 MiB aligned, past the header section,
/// inside the file.
fn check_range(
    what: &'static str,
    offset: u64,
    length: u64,
    file_len: u64,
) -> Result<(u64, u64), VhdxError> {
    let bad = || VhdxError::BadRegion {
        what,
        offset,
        length,
        file_len,
    };
    if !offset.is_multiple_of(MIB)
        || !length.is_multiple_of(MIB)
        || length == 0
        || offset < HEADER_SECTION
    {
        return Err(bad());
    }
    let end = offset.checked_add(length).ok_or_else(bad)?;
    if end > file_len {
        return Err(bad());
    }
    Ok((offset, end))
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

impl<F: Read + Seek> VhdxReader<F> {
    /// Validate `file` as a VHDX: identifier; both headers (signature,
    /// CRC-32C; the current one by sequence number; version 1; empty log);
    /// a region table (signature, CRC-32C, entry count, known required
    /// regions, 1 MiB aligned, no overlaps, inside the file); the metadata
    /// (every item inside the region, required items present and sane); the
    /// BAT (size, states, every block inside the file and outside the other
    /// regions).
    pub fn open(mut file: F) -> Result<Self, VhdxError> {
        let file_len = file.seek(SeekFrom::End(0))?;
        if file_len < MIN_FILE {
            return Err(VhdxError::TooSmall(file_len));
        }
        let mut sig = [0u8; 8];
        read_at(&mut file, 0, &mut sig)?;
        if &sig != FILE_SIGNATURE {
            return Err(VhdxError::FileSignature(sig));
        }

        let header = Self::current_header(&mut file)?;
        if header.version != 1 {
            return Err(VhdxError::Version(header.version));
        }
        if !header.log_guid.is_nil() {
            return Err(VhdxError::LogNotEmpty(header.log_guid));
        }
        let mut taken = Vec::new();
        if header.log_length != 0 {
            taken.push(check_range(
                "log",
                header.log_offset,
                u64::from(header.log_length),
                file_len,
            )?);
        }

        let (bat, metadata) = Self::regions(&mut file, file_len)?;
        let bat_range = check_range(
            "BAT region",
            bat.file_offset,
            u64::from(bat.length),
            file_len,
        )?;
        let meta_range = check_range(
            "metadata region",
            metadata.file_offset,
            u64::from(metadata.length),
            file_len,
        )?;
        for (what, r) in [("BAT region", bat_range), ("metadata region", meta_range)] {
            if taken.iter().any(|t| overlaps(*t, r)) {
                return Err(VhdxError::BadRegion {
                    what,
                    offset: r.0,
                    length: r.1 - r.0,
                    file_len,
                });
            }
            taken.push(r);
        }

        let mut info = Self::metadata(&mut file, &metadata, header, file_len)?;
        let geometry = Self::bat(&mut file, &bat, &mut info, &taken)?;
        Ok(VhdxReader {
            file,
            block: u64::from(info.block_size),
            info,
            pos: 0,
            geometry,
            bat_offset: bat.file_offset,
            page: None,
        })
    }

    fn current_header(file: &mut F) -> Result<Header, VhdxError> {
        let mut best: Option<Header> = None;
        let mut first_err = None;
        let mut buf = vec![0u8; HEADER_LEN];
        for (i, at) in HEADER_OFFSETS.into_iter().enumerate() {
            read_at(file, at, &mut buf)?;
            match Header::decode(&buf, i + 1) {
                Ok(h) => {
                    if best.is_none_or(|b| h.sequence_number > b.sequence_number) {
                        best = Some(h);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        best.ok_or_else(|| {
            VhdxError::NoValidHeader(Box::new(first_err.unwrap_or(VhdxError::HeaderSignature(1))))
        })
    }

    /// The BAT and metadata regions of the first valid region table.
    fn regions(file: &mut F, _file_len: u64) -> Result<(Region, Region), VhdxError> {
        let mut buf = vec![0u8; REGION_TABLE_LEN];
        let mut first_err = None;
        for (i, at) in REGION_OFFSETS.into_iter().enumerate() {
            read_at(file, at, &mut buf)?;
            match decode_region_table(&buf, i + 1).and_then(|t| Self::pick_regions(&t)) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        Err(VhdxError::NoValidRegionTable(Box::new(
            first_err.unwrap_or(VhdxError::RegionSignature(1)),
        )))
    }

    fn pick_regions(table: &[Region]) -> Result<(Region, Region), VhdxError> {
        let (mut bat, mut meta) = (None, None);
        for r in table {
            let slot = if r.guid == BAT_GUID {
                &mut bat
            } else if r.guid == METADATA_GUID {
                &mut meta
            } else if r.required {
                return Err(VhdxError::UnknownRequiredRegion(r.guid));
            } else {
                continue;
            };
            if slot.replace(*r).is_some() {
                return Err(VhdxError::DuplicateRegion(r.guid));
            }
        }
        Ok((
            bat.ok_or(VhdxError::MissingRegion("BAT"))?,
            meta.ok_or(VhdxError::MissingRegion("metadata"))?,
        ))
    }

    fn metadata(
        file: &mut F,
        region: &Region,
        header: Header,
        file_len: u64,
    ) -> Result<VhdxInfo, VhdxError> {
        let mut table = vec![0u8; METADATA_TABLE_LEN];
        read_at(file, region.file_offset, &mut table)?;
        let entries = decode_metadata_table(&table)?;
        let mut seen: Vec<Uuid> = Vec::new();
        // (guid, expected length, value)
        let mut values: [(Uuid, u32, Option<[u8; 16]>); 5] = [
            (FILE_PARAMETERS_GUID, 8, None),
            (VIRTUAL_DISK_SIZE_GUID, 8, None),
            (PAGE83_GUID, 16, None),
            (LOGICAL_SECTOR_GUID, 4, None),
            (PHYSICAL_SECTOR_GUID, 4, None),
        ];
        for e in &entries {
            if seen.contains(&e.guid) {
                return Err(VhdxError::DuplicateMetadataItem(e.guid));
            }
            seen.push(e.guid);
            let bad = || VhdxError::BadMetadataItem {
                guid: e.guid,
                offset: e.offset,
                length: e.length,
            };
            let in_region = e.length == 0
                || (e.offset as usize >= METADATA_TABLE_LEN
                    && u64::from(e.offset) + u64::from(e.length) <= u64::from(region.length));
            if !in_region {
                return Err(bad());
            }
            if e.guid == PARENT_LOCATOR_GUID {
                return Err(VhdxError::Differencing);
            }
            match values.iter_mut().find(|v| v.0 == e.guid) {
                Some(v) => {
                    if e.length != v.1 {
                        return Err(bad());
                    }
                    let mut b = [0u8; 16];
                    let n = v.1 as usize;
                    read_at(file, region.file_offset + u64::from(e.offset), &mut b[..n])?;
                    v.2 = Some(b);
                }
                None if e.flags & crate::format::META_IS_REQUIRED != 0 => {
                    return Err(VhdxError::UnknownRequiredMetadata(e.guid));
                }
                None => {}
            }
        }
        let get =
            |i: usize, name: &'static str| values[i].2.ok_or(VhdxError::MissingMetadata(name));
        let fp = get(0, "file parameters")?;
        let block_size = le32(&fp, 0);
        let flags = le32(&fp, 4);
        if !(MIN_BLOCK..=MAX_BLOCK).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(VhdxError::BlockSize(block_size));
        }
        if flags & 2 != 0 {
            return Err(VhdxError::Differencing);
        }
        let logical = le32(&get(3, "logical sector size")?, 0);
        let physical = le32(&get(4, "physical sector size")?, 0);
        for s in [logical, physical] {
            if s != 512 && s != 4096 {
                return Err(VhdxError::SectorSize(s));
            }
        }
        let size = le64(&get(1, "virtual disk size")?, 0);
        if size == 0 || size > MAX_SIZE || !size.is_multiple_of(u64::from(logical)) {
            return Err(VhdxError::DiskSize(size));
        }
        let id = Uuid::from_bytes_le(get(2, "page 83 data")?);
        Ok(VhdxInfo {
            header,
            block_size,
            leave_blocks_allocated: flags & 1 != 0,
            virtual_disk_size: size,
            logical_sector_size: logical,
            physical_sector_size: physical,
            virtual_disk_id: id,
            allocated_blocks: 0,
            file_len,
        })
    }

    /// Read and check every BAT entry, streaming (64 KiB at a time).
    fn bat(
        file: &mut F,
        region: &Region,
        info: &mut VhdxInfo,
        taken: &[(u64, u64)],
    ) -> Result<BatGeometry, VhdxError> {
        let g = BatGeometry::new(
            info.virtual_disk_size,
            info.block_size,
            info.logical_sector_size,
        );
        let region_len = u64::from(region.length);
        if g.entries.saturating_mul(8) > region_len {
            return Err(VhdxError::BatTooSmall {
                region: region_len,
                entries: g.entries,
            });
        }
        let mut block = 0u64;
        let block_size = u64::from(info.block_size);
        let mut buf = vec![0u8; 64 * 1024];
        file.seek(SeekFrom::Start(region.file_offset))?;
        let mut i = 0u64;
        while i < g.entries {
            let n = usize::try_from((g.entries - i).min(8192)).unwrap_or(8192);
            let piece = &mut buf[..n * 8];
            file.read_exact(piece)?;
            for raw in piece.chunks_exact(8) {
                let e = le64(raw, 0);
                let state = bat_state(e);
                if g.is_bitmap_index(i) {
                    if state != SB_BLOCK_NOT_PRESENT && state != SB_BLOCK_PRESENT {
                        return Err(VhdxError::BatState { index: i, state });
                    }
                } else {
                    match state {
                        PAYLOAD_BLOCK_NOT_PRESENT
                        | PAYLOAD_BLOCK_UNDEFINED
                        | PAYLOAD_BLOCK_ZERO
                        | PAYLOAD_BLOCK_UNMAPPED => {}
                        PAYLOAD_BLOCK_FULLY_PRESENT => {
                            let mib = bat_offset_mib(e);
                            let offset = mib.saturating_mul(MIB);
                            let range = (offset, offset.saturating_add(block_size));
                            if offset < HEADER_SECTION
                                || range.1 > info.file_len
                                || taken.iter().any(|t| overlaps(*t, range))
                            {
                                return Err(VhdxError::BlockOutOfBounds {
                                    block,
                                    offset,
                                    file_len: info.file_len,
                                });
                            }
                            info.allocated_blocks += 1;
                        }
                        // Partially present blocks need a parent.
                        PAYLOAD_BLOCK_PARTIALLY_PRESENT => return Err(VhdxError::Differencing),
                        _ => return Err(VhdxError::BatState { index: i, state }),
                    }
                    block += 1;
                }
                i += 1;
            }
        }
        Ok(g)
    }

    /// The file offset of payload block `block`'s data, `None` when it reads
    /// as zeros.
    fn place(&mut self, block: u64) -> io::Result<Option<u64>> {
        let i = self.geometry.payload_index(block);
        if i >= self.geometry.entries {
            return Ok(None);
        }
        let page = i / PAGE_ENTRIES;
        if self.page.as_ref().is_none_or(|p| p.0 != page) {
            let n = (self.geometry.entries - page * PAGE_ENTRIES).min(PAGE_ENTRIES);
            let mut b = vec![0u8; (n * 8) as usize];
            self.file
                .seek(SeekFrom::Start(self.bat_offset + page * PAGE_ENTRIES * 8))?;
            self.file.read_exact(&mut b)?;
            self.page = Some((page, b));
        }
        let e = self
            .page
            .as_ref()
            .map_or(0, |p| le64(&p.1, ((i % PAGE_ENTRIES) * 8) as usize));
        Ok((bat_state(e) == PAYLOAD_BLOCK_FULLY_PRESENT)
            .then(|| bat_offset_mib(e).saturating_mul(MIB)))
    }

    /// What the headers and metadata say.
    pub fn info(&self) -> &VhdxInfo {
        &self.info
    }

    /// The virtual disk's size in bytes.
    pub fn size(&self) -> u64 {
        self.info.virtual_disk_size
    }

    pub fn into_inner(self) -> F {
        self.file
    }
}

impl<F: Read + Seek> Read for VhdxReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.info.virtual_disk_size;
        if buf.is_empty() || self.pos >= size {
            return Ok(0);
        }
        let to_end = size - self.pos;
        let to_block = self.block - self.pos % self.block;
        let n = usize::try_from(to_end.min(to_block)).map_or(buf.len(), |t| t.min(buf.len()));
        let out = &mut buf[..n];
        match self.place(self.pos / self.block)? {
            None => out.fill(0),
            Some(start) => {
                self.file
                    .seek(SeekFrom::Start(start.saturating_add(self.pos % self.block)))?;
                self.file.read_exact(out)?;
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F: Read + Seek> Seek for VhdxReader<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_pos(self.pos, self.info.virtual_disk_size, to)?;
        Ok(self.pos)
    }
}

/// Whether the file at `path` starts with the VHDX signature (cheap: the
/// signature only; [`VhdxReader::open`] validates).
pub fn detect(path: impl AsRef<Path>) -> bool {
    fn sig(path: &Path) -> io::Result<bool> {
        let mut s = [0u8; 8];
        File::open(path)?.read_exact(&mut s)?;
        Ok(&s == FILE_SIGNATURE)
    }
    sig(path.as_ref()).unwrap_or(false)
}
