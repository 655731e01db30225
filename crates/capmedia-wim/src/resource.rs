//! Resources: where a resource's bytes lie in which part, and reading any
//! range of its uncompressed bytes chunk by chunk.
//!
//! Three layouts exist (wimlib's `resource.c` is the reference):
//!
//! - raw: the bytes as they are (stored size = uncompressed size);
//! - chunked (ordinary compressed resources): a chunk table of
//!   `chunks - 1` entries, 4 bytes each (8 if the resource is over 4 GiB),
//!   giving each chunk's offset after the first, relative to the end of the
//!   table; then the chunks. A chunk whose stored size equals its
//!   uncompressed size is stored raw;
//! - solid ("alternate chunk table"): a 16-byte header (uncompressed size
//!   u64, chunk size u32, codec u32), then one u32 *size* per chunk, then
//!   the chunks. Many blobs share one solid resource.
//!
//! In pipable WIMs, the chunk table follows the chunks and each chunk is
//! preceded by a 4-byte header holding its compressed size.
//!
//! Memory stays bounded by the chunk size: one uncompressed chunk, one
//! compressed chunk and a window of at most [`TABLE_WINDOW`] bytes of chunk
//! table are held, whatever the resource size.

use std::io::{Read, Seek, SeekFrom};

use capmedia_wimlib::{Codec, Decompressor};

use crate::header::le_u32;
use crate::WimError;

/// Bytes of chunk table held at once.
pub const TABLE_WINDOW: usize = 32 * 1024;
/// Bytes read at once from an uncompressed resource.
const RAW_PIECE: u64 = 256 * 1024;
/// Size of a solid resource's header.
pub(crate) const SOLID_HEADER_SIZE: u64 = 16;
/// Size of a pipable WIM's per-chunk header.
const PIPABLE_CHUNK_HEADER: u64 = 4;

/// A chunked resource's geometry, checked once when the resource is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunked {
    /// `None` for a solid resource whose codec is "none" (all chunks raw).
    codec: Option<Codec>,
    chunk_size: u32,
    /// Solid resource: header, then one size per chunk.
    alt: bool,
    pipable: bool,
    num_chunks: u64,
    entry_size: u64,
    entries: u64,
    /// Where the chunk table starts in the file.
    table_pos: u64,
    /// Where compressed offset 0 is in the file.
    data_base: u64,
    /// Compressed bytes of all chunks (excluding tables and chunk headers).
    data_size: u64,
}

/// How a resource is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    Raw,
    Chunked(Chunked),
}

/// One resource in one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resource {
    pub part: usize,
    pub offset: u64,
    pub stored: u64,
    /// Uncompressed size.
    pub size: u64,
    pub layout: Layout,
}

/// What a resource claims, before checking.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResourceSpec {
    pub part: usize,
    pub offset: u64,
    pub stored: u64,
    pub size: u64,
    /// `None`: raw. `Some(codec)` (the codec `None` only for solid): chunked.
    pub chunked: Option<Option<Codec>>,
    pub chunk_size: u32,
    pub solid: bool,
    pub pipable: bool,
}

impl Resource {
    /// Checks a resource against its file and the chunk-size cap.
    pub fn new(spec: ResourceSpec, file_len: u64, max_chunk: u32) -> Result<Self, WimError> {
        let bad = |reason| WimError::BadResource {
            offset: spec.offset,
            reason,
        };
        match spec.offset.checked_add(spec.stored) {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(WimError::ResourceBeyondFile {
                    what: "resource",
                    offset: spec.offset,
                    size: spec.stored,
                    file_len,
                })
            }
        }
        let codec = match spec.chunked {
            None => {
                if spec.stored != spec.size {
                    return Err(bad("uncompressed resource with stored size != size"));
                }
                return Ok(Resource {
                    part: spec.part,
                    offset: spec.offset,
                    stored: spec.stored,
                    size: spec.size,
                    layout: Layout::Raw,
                });
            }
            Some(c) => c,
        };
        let cs = spec.chunk_size;
        if !cs.is_power_of_two() || !(4096..=max_chunk).contains(&cs) {
            return Err(WimError::BadChunkSize {
                size: cs.into(),
                limit: max_chunk,
            });
        }
        let num_chunks = spec.size.div_ceil(cs.into());
        let alt = spec.solid;
        let entries = if alt {
            num_chunks
        } else {
            num_chunks.saturating_sub(1)
        };
        let entry_size = if alt || spec.size <= u64::from(u32::MAX) {
            4
        } else {
            8
        };
        let table_size = entries
            .checked_mul(entry_size)
            .ok_or(bad("chunk table size overflows"))?;
        let hdr = if alt { SOLID_HEADER_SIZE } else { 0 };
        let chunk_headers = if spec.pipable {
            num_chunks
                .checked_mul(PIPABLE_CHUNK_HEADER)
                .ok_or(bad("chunk headers overflow"))?
        } else {
            0
        };
        // Every chunk holds at least one byte.
        let overhead = hdr
            .checked_add(table_size)
            .and_then(|v| v.checked_add(chunk_headers))
            .ok_or(bad("chunk table size overflows"))?;
        let data_size = spec
            .stored
            .checked_sub(overhead)
            .filter(|d| *d >= num_chunks)
            .ok_or(bad("chunk table larger than the resource"))?;
        let base = spec.offset + hdr;
        // wimlib's layout: the pipable table sits at the end of the stored bytes.
        let (table_pos, data_base) = if spec.pipable {
            (base + (spec.stored - hdr) - table_size, base)
        } else {
            (base, base + table_size)
        };
        Ok(Resource {
            part: spec.part,
            offset: spec.offset,
            stored: spec.stored,
            size: spec.size,
            layout: Layout::Chunked(Chunked {
                codec,
                chunk_size: cs,
                alt,
                pipable: spec.pipable,
                num_chunks,
                entry_size,
                entries,
                table_pos,
                data_base,
                data_size,
            }),
        })
    }
}

/// Bytes read ahead from a part at once. Chunks are read in file order, so
/// one read serves many of them: fewer system calls on a local file, and
/// far fewer round trips through a DP range reader.
pub const READ_AHEAD: usize = 512 * 1024;

/// One part file with a read-ahead window; it remembers its position so
/// sequential reads do not seek.
#[derive(Debug)]
pub(crate) struct PartFile<R> {
    pub r: R,
    pub len: u64,
    pos: Option<u64>,
    window: Vec<u8>,
    window_at: u64,
}

impl<R: Read + Seek> PartFile<R> {
    pub fn new(r: R, len: u64) -> Self {
        PartFile {
            r,
            len,
            pos: None,
            window: Vec::new(),
            window_at: 0,
        }
    }

    fn raw_read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), WimError> {
        if self.pos != Some(off) {
            self.pos = None;
            self.r.seek(SeekFrom::Start(off))?;
        }
        self.pos = None;
        self.r.read_exact(buf)?;
        self.pos = Some(off + buf.len() as u64);
        Ok(())
    }

    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<(), WimError> {
        let n = buf.len() as u64;
        let end = off
            .checked_add(n)
            .filter(|e| *e <= self.len)
            .ok_or_else(|| {
                WimError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "read beyond the end of the WIM",
                ))
            })?;
        let w_end = self.window_at + self.window.len() as u64;
        if off >= self.window_at && end <= w_end {
            // Inside the window: `off - window_at` < window.len() (a usize).
            let from = (off - self.window_at) as usize;
            buf.copy_from_slice(&self.window[from..from + buf.len()]);
            return Ok(());
        }
        if buf.len() >= READ_AHEAD {
            return self.raw_read_at(off, buf);
        }
        // Refill from `off`: at most READ_AHEAD, at least `buf`, never past the end.
        let want = (self.len - off).min(READ_AHEAD as u64) as usize;
        let mut window = std::mem::take(&mut self.window);
        window.resize(want, 0);
        let r = self.raw_read_at(off, &mut window);
        if r.is_err() {
            window.clear();
        }
        self.window = window;
        self.window_at = off;
        r?;
        buf.copy_from_slice(&self.window[..buf.len()]);
        Ok(())
    }
}

fn part_of<R>(parts: &mut [PartFile<R>], i: usize) -> Result<&mut PartFile<R>, WimError> {
    parts.get_mut(i).ok_or(WimError::BadResource {
        offset: 0,
        reason: "resource in a part that was not given",
    })
}

/// Identifies a resource for the caches: the whole descriptor, so two
/// (hostile) descriptors at one offset never share a cached chunk.
type ResKey = Resource;

/// The readers of all parts and the scratch state for decoding: one
/// decompressor, one chunk (kept, so the next blob of a solid chunk needs no
/// second decode), a chunk-table window.
#[derive(Debug)]
pub(crate) struct Io<R> {
    pub parts: Vec<PartFile<R>>,
    dec: Option<Decompressor>,
    ubuf: Vec<u8>,
    cbuf: Vec<u8>,
    /// Which chunk `ubuf` holds.
    cached: Option<(ResKey, u64)>,
    table: Vec<u8>,
    /// (resource, first entry) of the table window.
    table_at: Option<(ResKey, u64)>,
    /// Known compressed offset of a chunk: (resource, chunk, offset).
    cursor: Option<(ResKey, u64, u64)>,
}

impl<R: Read + Seek> Io<R> {
    pub fn new(parts: Vec<PartFile<R>>) -> Self {
        Io {
            parts,
            dec: None,
            ubuf: Vec::new(),
            cbuf: Vec::new(),
            cached: None,
            table: Vec::new(),
            table_at: None,
            cursor: None,
        }
    }

    /// Makes bytes from `pos` of `res` available in the buffer, at most
    /// `max`; returns their range in [`Io::buf`]. Never returns an empty
    /// range while `pos < res.size` and `max > 0`.
    pub fn fill(
        &mut self,
        res: &Resource,
        pos: u64,
        max: u64,
    ) -> Result<std::ops::Range<usize>, WimError> {
        if pos >= res.size || max == 0 {
            return Ok(0..0);
        }
        match res.layout {
            Layout::Raw => {
                // Bounded by RAW_PIECE.
                let n = (res.size - pos).min(max).min(RAW_PIECE) as usize;
                if self.ubuf.len() < n {
                    self.ubuf.resize(n, 0);
                }
                self.cached = None;
                let off = res.offset + pos;
                let part = part_of(&mut self.parts, res.part)?;
                part.read_at(off, &mut self.ubuf[..n])?;
                Ok(0..n)
            }
            Layout::Chunked(c) => {
                let cs = u64::from(c.chunk_size);
                let chunk = pos / cs;
                let key = *res;
                if self.cached != Some((key, chunk)) {
                    self.load_chunk(res, &c, chunk)?;
                }
                let start = chunk * cs;
                let usize_c = (res.size - start).min(cs);
                let from = pos - start;
                let n = (usize_c - from).min(max);
                // Both below the chunk size, a u32.
                Ok(from as usize..(from + n) as usize)
            }
        }
    }

    /// The decode buffer [`Io::fill`] returns ranges of.
    pub fn buf(&self) -> &[u8] {
        &self.ubuf
    }

    /// Reads table entry `i` through the window.
    fn entry(&mut self, key: ResKey, c: &Chunked, i: u64) -> Result<u64, WimError> {
        let es = c.entry_size;
        let have = match self.table_at {
            Some((k, first)) if k == key && i >= first => {
                (i - first) < self.table.len() as u64 / es
            }
            _ => false,
        };
        if !have {
            if i >= c.entries {
                return Err(WimError::BadResource {
                    offset: key.offset,
                    reason: "chunk table entry beyond the table",
                });
            }
            let count = (c.entries - i).min(TABLE_WINDOW as u64 / es);
            // Bounded by TABLE_WINDOW.
            let bytes = (count * es) as usize;
            self.table.resize(bytes, 0);
            self.table_at = None;
            let at = c.table_pos + i * es;
            let part = part_of(&mut self.parts, key.part)?;
            if at
                .checked_add(bytes as u64)
                .is_none_or(|end| end > part.len)
            {
                return Err(WimError::BadResource {
                    offset: key.offset,
                    reason: "chunk table beyond the end of the file",
                });
            }
            part_of(&mut self.parts, key.part)?.read_at(at, &mut self.table)?;
            self.table_at = Some((key, i));
        }
        let first = self.table_at.map_or(0, |(_, f)| f);
        let at = ((i - first) * es) as usize;
        let b = self
            .table
            .get(at..at + es as usize)
            .ok_or(WimError::BadResource {
                offset: key.offset,
                reason: "chunk table window",
            })?;
        Ok(if es == 4 {
            u64::from(le_u32(b))
        } else {
            crate::header::le_u64(b)
        })
    }

    /// Compressed offset of chunk `i` (relative to the data base).
    fn chunk_offset(&mut self, key: ResKey, c: &Chunked, i: u64) -> Result<u64, WimError> {
        if !c.alt {
            return if i == 0 {
                Ok(0)
            } else {
                self.entry(key, c, i - 1)
            };
        }
        // Sizes, not offsets: sum from the nearest known point. Sequential
        // reading keeps the cursor one chunk behind, so this is one step.
        let (mut at, mut off) = match self.cursor {
            Some((k, ci, co)) if k == key && ci <= i => (ci, co),
            _ => (0, 0),
        };
        while at < i {
            let size = self.entry(key, c, at)?;
            off = off.checked_add(size).ok_or(WimError::BadResource {
                offset: key.offset,
                reason: "chunk sizes overflow",
            })?;
            at += 1;
        }
        Ok(off)
    }

    fn load_chunk(&mut self, res: &Resource, c: &Chunked, i: u64) -> Result<(), WimError> {
        let key = *res;
        let bad = |reason| WimError::BadResource {
            offset: res.offset,
            reason,
        };
        self.cached = None;
        let cs = u64::from(c.chunk_size);
        let start = i * cs;
        let usize_c = (res.size - start).min(cs);
        let off = self.chunk_offset(key, c, i)?;
        let next = if i + 1 == c.num_chunks {
            c.data_size
        } else if c.alt {
            off.checked_add(self.entry(key, c, i)?)
                .ok_or(bad("chunk sizes overflow"))?
        } else {
            self.entry(key, c, i)?
        };
        let csize = next
            .checked_sub(off)
            .filter(|s| *s > 0 && *s <= usize_c)
            .ok_or(bad("chunk size out of range"))?;
        if next > c.data_size {
            return Err(bad("chunk beyond the resource"));
        }
        let pos = c.data_base
            + off
            + if c.pipable {
                (i + 1) * PIPABLE_CHUNK_HEADER
            } else {
                0
            };
        // Both at most the chunk size (checked against the cap).
        let (usize_c, csize) = (usize_c as usize, csize as usize);
        if self.ubuf.len() < usize_c {
            self.ubuf.resize(usize_c, 0);
        }
        let part_idx = res.part;
        if csize == usize_c {
            part_of(&mut self.parts, part_idx)?.read_at(pos, &mut self.ubuf[..usize_c])?;
        } else {
            let codec = c
                .codec
                .ok_or(bad("compressed chunk in a resource without codec"))?;
            if self.cbuf.len() < csize {
                self.cbuf.resize(csize, 0);
            }
            part_of(&mut self.parts, part_idx)?.read_at(pos, &mut self.cbuf[..csize])?;
            let block = c.chunk_size as usize;
            let reuse = self
                .dec
                .as_ref()
                .is_some_and(|d| d.codec() == codec && d.max_block_size() == block);
            if !reuse {
                self.dec = None;
                self.dec = Some(Decompressor::new(codec, block)?);
            }
            if let Some(dec) = self.dec.as_mut() {
                dec.decompress(&self.cbuf[..csize], &mut self.ubuf[..usize_c])?;
            }
        }
        self.cursor = Some((key, i + 1, next));
        self.cached = Some((key, i));
        Ok(())
    }

    /// Reads the 16-byte header of a solid resource.
    pub fn solid_header(
        &mut self,
        part: usize,
        offset: u64,
        stored: u64,
    ) -> Result<(u64, u32, u32), WimError> {
        let p = part_of(&mut self.parts, part)?;
        if stored < SOLID_HEADER_SIZE || offset.checked_add(stored).is_none_or(|end| end > p.len) {
            return Err(WimError::ResourceBeyondFile {
                what: "solid resource",
                offset,
                size: stored,
                file_len: p.len,
            });
        }
        let mut h = [0u8; SOLID_HEADER_SIZE as usize];
        p.read_at(offset, &mut h)?;
        Ok((
            crate::header::le_u64(&h[0..8]),
            le_u32(&h[8..12]),
            le_u32(&h[12..16]),
        ))
    }
}
