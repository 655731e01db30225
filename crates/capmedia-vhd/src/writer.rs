//! Writing a VHD: the writer is itself a `Read + Write + Seek` over the
//! virtual disk, so a disk-layout library writes straight into it.

use std::io::{self, Read, Seek, SeekFrom, Write};

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

/// Where the dynamic layout keeps its blocks.
struct Dynamic {
    /// Sector offset of each block's bitmap, `u32::MAX` when unallocated.
    bat: Vec<u32>,
    table_offset: u64,
    /// Byte offset where the next block goes (and, at the end, the footer).
    next_free: u64,
}

const UNALLOCATED: u32 = u32::MAX;
const BLOCK: u64 = BLOCK_SIZE as u64;
const TABLE_OFFSET: u64 = (FOOTER_LEN + HEADER_LEN) as u64;

/// A VHD being written into the empty host file `F`.
///
/// Reads, writes and seeks address the virtual disk `[0, size)`. Fixed: the
/// host file holds the disk at the same offsets. Dynamic: a 2 MiB block gets
/// space (at the end of the file, in the order of the first non-zero write
/// into it) only when non-zero data is written to it; reads of unallocated
/// blocks give zeros. Call [`VhdWriter::finish`] to write the footer (and
/// header and BAT); without it the file is not a VHD.
pub struct VhdWriter<F> {
    file: F,
    footer: Footer,
    size: u64,
    pos: u64,
    dynamic: Option<Dynamic>,
}

impl<F> std::fmt::Debug for VhdWriter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhdWriter")
            .field("type", &self.footer.vhd_type)
            .field("size", &self.size)
            .field("pos", &self.pos)
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
        let dynamic = match params.vhd_type {
            VhdType::Fixed => None,
            VhdType::Dynamic => {
                let entries = size.div_ceil(BLOCK);
                let table_len = (entries * 4).next_multiple_of(SECTOR);
                Some(Dynamic {
                    bat: vec![
                        UNALLOCATED;
                        usize::try_from(entries).map_err(|_| VhdError::FileTooLarge)?
                    ],
                    table_offset: TABLE_OFFSET,
                    next_free: TABLE_OFFSET + table_len,
                })
            }
        };
        Ok(VhdWriter {
            file,
            footer,
            size,
            pos: 0,
            dynamic,
        })
    }

    /// The virtual disk's size in bytes (whole MiB, CHS-exact).
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn vhd_type(&self) -> VhdType {
        self.footer.vhd_type
    }

    /// Bytes the host file will have after [`finish`](Self::finish), given
    /// what was written so far.
    pub fn file_len(&self) -> u64 {
        match &self.dynamic {
            None => self.size + FOOTER_LEN as u64,
            Some(d) => d.next_free + FOOTER_LEN as u64,
        }
    }

    /// Write the footer (dynamic: also the footer copy, header and BAT),
    /// flush, and give the host file back.
    pub fn finish(mut self) -> Result<F, VhdError> {
        let footer = self.footer.encode();
        match &self.dynamic {
            None => {
                self.file.seek(SeekFrom::Start(self.size))?;
                self.file.write_all(&footer)?;
            }
            Some(d) => {
                let entries = u32::try_from(d.bat.len()).map_err(|_| VhdError::FileTooLarge)?;
                let header = DynHeader {
                    table_offset: d.table_offset,
                    max_table_entries: entries,
                    block_size: BLOCK_SIZE,
                };
                let mut head = Vec::with_capacity(FOOTER_LEN + HEADER_LEN);
                head.extend_from_slice(&footer);
                head.extend_from_slice(&header.encode());
                self.file.seek(SeekFrom::Start(0))?;
                self.file.write_all(&head)?;
                // The BAT, padded to a sector with unallocated entries.
                let table_len = (d.bat.len() * 4).next_multiple_of(SECTOR as usize);
                let mut table = Vec::with_capacity(table_len);
                for e in &d.bat {
                    table.extend_from_slice(&e.to_be_bytes());
                }
                table.resize(table_len, 0xFF);
                self.file.seek(SeekFrom::Start(d.table_offset))?;
                self.file.write_all(&table)?;
                self.file.seek(SeekFrom::Start(d.next_free))?;
                self.file.write_all(&footer)?;
            }
        }
        self.file.flush()?;
        Ok(self.file)
    }

    /// The host-file offset of virtual offset `pos` when its block is
    /// allocated (fixed disks: always).
    fn host_offset(&self, pos: u64) -> Option<u64> {
        match &self.dynamic {
            None => Some(pos),
            Some(d) => {
                let e = *d.bat.get(usize::try_from(pos / BLOCK).ok()?)?;
                (e != UNALLOCATED)
                    .then(|| u64::from(e) * SECTOR + bitmap_len(BLOCK_SIZE) + pos % BLOCK)
            }
        }
    }

    /// Give block `block` space at the end of the file, bitmap all set (every
    /// sector of an allocated block is present; never-written ones are zeros).
    fn allocate(&mut self, block: usize) -> io::Result<()> {
        let Some(d) = self.dynamic.as_mut() else {
            return Ok(());
        };
        let at = d.next_free;
        let sector = u32::try_from(at / SECTOR)
            .ok()
            .filter(|&s| s != UNALLOCATED)
            .ok_or(VhdError::FileTooLarge)?;
        let bitmap = vec![0xFFu8; bitmap_len(BLOCK_SIZE) as usize];
        self.file.seek(SeekFrom::Start(at))?;
        self.file.write_all(&bitmap)?;
        if let Some(e) = d.bat.get_mut(block) {
            *e = sector;
        }
        d.next_free = at + bitmap.len() as u64 + BLOCK;
        Ok(())
    }

    /// The length of the piece of a request at `pos` that stays in one block.
    fn piece(&self, pos: u64, want: usize) -> usize {
        let to_end = self.size - pos;
        let to_block = BLOCK - pos % BLOCK;
        usize::try_from(to_end.min(to_block)).map_or(want, |n| n.min(want))
    }
}

impl<F: Read + Write + Seek> Write for VhdWriter<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() && self.pos < self.size {
            let n = self.piece(self.pos, buf.len() - done);
            let chunk = &buf[done..done + n];
            let host = match self.host_offset(self.pos) {
                Some(h) => Some(h),
                None if is_zero(chunk) => None,
                None => {
                    let block = usize::try_from(self.pos / BLOCK)
                        .map_err(|_| io::Error::from(VhdError::FileTooLarge))?;
                    self.allocate(block)?;
                    self.host_offset(self.pos)
                }
            };
            if let Some(h) = host {
                self.file.seek(SeekFrom::Start(h))?;
                self.file.write_all(chunk)?;
            }
            self.pos += n as u64;
            done += n;
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl<F: Read + Write + Seek> Read for VhdWriter<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let n = self.piece(self.pos, buf.len());
        let out = &mut buf[..n];
        match self.host_offset(self.pos) {
            Some(h) => read_or_zero(&mut self.file, h, out)?,
            None => out.fill(0),
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F: Read + Write + Seek> Seek for VhdWriter<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_pos(self.pos, self.size, to)?;
        Ok(self.pos)
    }
}

/// The new position of a seek over a disk of `size` bytes.
pub(crate) fn seek_pos(pos: u64, size: u64, to: SeekFrom) -> io::Result<u64> {
    let new = match to {
        SeekFrom::Start(n) => Some(n),
        SeekFrom::End(d) => size.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    new.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "seek to a negative or overflowing position",
        )
    })
}

/// Read `out.len()` bytes at `offset`; bytes past the end of the file (not
/// yet written: a hole the footer will extend over) read as zeros.
fn read_or_zero<F: Read + Seek>(file: &mut F, offset: u64, out: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut got = 0;
    while got < out.len() {
        match file.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out[got..].fill(0);
    Ok(())
}

/// Whether `b` holds only zeros, a word at a time.
pub(crate) fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(16);
    chunks.all(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])) == 0)
        && chunks.remainder().iter().all(|&x| x == 0)
}
