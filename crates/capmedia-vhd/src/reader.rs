//! Reading a VHD back: every structure is validated before the first read,
//! so hostile files give typed errors, never panics or huge allocations.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use crate::format::{
    bitmap_len, DynHeader, Footer, VhdType, FOOTER_COOKIE, FOOTER_LEN, HEADER_LEN, SECTOR,
};
use crate::VhdError;
use capmedia_vdisk::seek_pos;

const UNALLOCATED: u32 = u32::MAX;

/// What a VHD's footer (and dynamic header) say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdInfo {
    pub footer: Footer,
    /// Dynamic disks: the block size.
    pub block_size: Option<u32>,
    /// Dynamic disks: blocks that have space in the file.
    pub allocated_blocks: u64,
    pub file_len: u64,
}

struct Dyn {
    bat: Vec<u32>,
    block_size: u64,
    bitmap_len: u64,
    /// The bitmap of the block read last: (block, bitmap, all sectors set).
    cached: Option<(u64, Vec<u8>, bool)>,
}

/// A `Read + Seek` over the virtual disk of a fixed or dynamic VHD.
pub struct VhdReader<F> {
    file: F,
    info: VhdInfo,
    size: u64,
    pos: u64,
    dynamic: Option<Dyn>,
}

impl<F> std::fmt::Debug for VhdReader<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdReader")
            .field("info", &self.info)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl VhdReader<File> {
    /// Open the VHD at `path`.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Self, VhdError> {
        Self::open(File::open(path)?)
    }
}

impl<F: Read + Seek> VhdReader<F> {
    /// Validate `file` as a VHD: footer cookie, checksum, version and type;
    /// for dynamic disks also the header, its checksum, the BAT's size and
    /// place, and every allocated block's place in the file.
    pub fn open(mut file: F) -> Result<Self, VhdError> {
        let file_len = file.seek(SeekFrom::End(0))?;
        if file_len < FOOTER_LEN as u64 {
            return Err(VhdError::TooSmall(file_len));
        }
        let mut fb = [0u8; FOOTER_LEN];
        file.seek(SeekFrom::Start(file_len - FOOTER_LEN as u64))?;
        file.read_exact(&mut fb)?;
        let footer = Footer::decode(&fb)?;
        let size = footer.current_size;
        let mut info = VhdInfo {
            footer,
            block_size: None,
            allocated_blocks: 0,
            file_len,
        };
        let dynamic = match info.footer.vhd_type {
            VhdType::Fixed => {
                let expected = size + FOOTER_LEN as u64;
                if file_len != expected {
                    return Err(VhdError::FixedLength {
                        size,
                        expected,
                        actual: file_len,
                    });
                }
                None
            }
            VhdType::Dynamic => Some(Self::open_dynamic(&mut file, &mut info)?),
        };
        Ok(VhdReader {
            file,
            info,
            size,
            pos: 0,
            dynamic,
        })
    }

    fn open_dynamic(file: &mut F, info: &mut VhdInfo) -> Result<Dyn, VhdError> {
        let file_len = info.file_len;
        let offset = info.footer.data_offset;
        if offset
            .checked_add(HEADER_LEN as u64)
            .is_none_or(|end| end > file_len)
        {
            return Err(VhdError::HeaderOffset { offset, file_len });
        }
        let mut hb = [0u8; HEADER_LEN];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut hb)?;
        let header = DynHeader::decode(&hb)?;
        let block_size = u64::from(header.block_size);
        let needed = info.footer.current_size.div_ceil(block_size);
        let entries = header.max_table_entries;
        if u64::from(entries) < needed {
            return Err(VhdError::TableTooSmall { entries, needed });
        }
        let table_end = header
            .table_offset
            .checked_add(u64::from(entries) * 4)
            .filter(|&end| end <= file_len)
            .ok_or(VhdError::TableOutOfBounds {
                offset: header.table_offset,
                entries,
                file_len,
            })?;
        // Only the entries the disk uses; the bound above keeps this within
        // the file's size.
        let mut raw = vec![0u8; usize::try_from(needed * 4).map_err(|_| VhdError::FileTooLarge)?];
        file.seek(SeekFrom::Start(header.table_offset))?;
        file.read_exact(&mut raw)?;
        let bitmap_len = bitmap_len(header.block_size);
        let data_start = table_end.next_multiple_of(SECTOR);
        let mut bat = Vec::with_capacity(raw.len() / 4);
        for (block, e) in raw.chunks_exact(4).enumerate() {
            let sector = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            if sector != UNALLOCATED {
                let start = u64::from(sector) * SECTOR;
                if start < data_start || start + bitmap_len + block_size > file_len {
                    return Err(VhdError::BlockOutOfBounds {
                        block: block as u64,
                        sector,
                        file_len,
                    });
                }
                info.allocated_blocks += 1;
            }
            bat.push(sector);
        }
        info.block_size = Some(header.block_size);
        Ok(Dyn {
            bat,
            block_size,
            bitmap_len,
            cached: None,
        })
    }

    /// What the footer and header say.
    pub fn info(&self) -> &VhdInfo {
        &self.info
    }

    /// The virtual disk's size in bytes (the footer's current size).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn into_inner(self) -> F {
        self.file
    }

    /// Read `out` from the dynamic block holding `self.pos` (the request does
    /// not cross the block's end).
    fn read_dynamic(&mut self, out: &mut [u8]) -> io::Result<()> {
        let Some(d) = self.dynamic.as_mut() else {
            return Ok(());
        };
        let block = self.pos / d.block_size;
        let within = self.pos % d.block_size;
        let sector = usize::try_from(block)
            .ok()
            .and_then(|b| d.bat.get(b))
            .copied()
            .unwrap_or(UNALLOCATED);
        if sector == UNALLOCATED {
            out.fill(0);
            return Ok(());
        }
        let start = u64::from(sector) * SECTOR;
        if d.cached.as_ref().is_none_or(|c| c.0 != block) {
            let mut bm = vec![0u8; d.bitmap_len as usize];
            self.file.seek(SeekFrom::Start(start))?;
            self.file.read_exact(&mut bm)?;
            let sectors = (d.block_size / SECTOR) as usize;
            let full = (0..sectors).all(|s| bit(&bm, s));
            d.cached = Some((block, bm, full));
        }
        let data = start + d.bitmap_len;
        let (full, bm) = match &d.cached {
            Some((_, bm, full)) => (*full, bm.as_slice()),
            None => (true, &[][..]),
        };
        if full {
            self.file.seek(SeekFrom::Start(data + within))?;
            return self.file.read_exact(out);
        }
        // Sectors whose bitmap bit is clear hold no data: they read as zeros.
        let mut done = 0usize;
        while done < out.len() {
            let at = within + done as u64;
            let s = (at / SECTOR) as usize;
            let n = ((SECTOR - at % SECTOR) as usize).min(out.len() - done);
            let piece = &mut out[done..done + n];
            if bit(bm, s) {
                self.file.seek(SeekFrom::Start(data + at))?;
                self.file.read_exact(piece)?;
            } else {
                piece.fill(0);
            }
            done += n;
        }
        Ok(())
    }
}

/// Bit `s` of a VHD sector bitmap (most significant bit first).
fn bit(bm: &[u8], s: usize) -> bool {
    bm.get(s / 8).is_some_and(|b| b & (0x80 >> (s % 8)) != 0)
}

impl<F: Read + Seek> Read for VhdReader<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let to_end = self.size - self.pos;
        let n = match &self.dynamic {
            None => usize::try_from(to_end).map_or(buf.len(), |t| t.min(buf.len())),
            Some(d) => {
                let to_block = d.block_size - self.pos % d.block_size;
                usize::try_from(to_end.min(to_block)).map_or(buf.len(), |t| t.min(buf.len()))
            }
        };
        let out = &mut buf[..n];
        if self.dynamic.is_some() {
            self.read_dynamic(out)?;
        } else {
            self.file.seek(SeekFrom::Start(self.pos))?;
            self.file.read_exact(out)?;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F: Read + Seek> Seek for VhdReader<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_pos(self.pos, self.size, to)?;
        Ok(self.pos)
    }
}

/// Whether the file at `path` ends in a VHD footer cookie (cheap: the cookie
/// only; [`VhdReader::open`] validates).
pub fn detect(path: impl AsRef<Path>) -> bool {
    fn cookie(path: &Path) -> io::Result<bool> {
        let mut f = File::open(path)?;
        let len = f.seek(SeekFrom::End(0))?;
        if len < FOOTER_LEN as u64 {
            return Ok(false);
        }
        f.seek(SeekFrom::Start(len - FOOTER_LEN as u64))?;
        let mut c = [0u8; 8];
        f.read_exact(&mut c)?;
        Ok(&c == FOOTER_COOKIE)
    }
    cookie(path.as_ref()).unwrap_or(false)
}
