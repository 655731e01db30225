//! Stream adapters: a window onto part of a target (a partition, or a disk
//! inside a container such as a VHD), a read-only guard, and a small write
//! cache that turns fatfs's many tiny FAT updates into few large writes.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// A byte range `[offset, offset + len)` of an inner stream, seen as a stream
/// of its own: fatfs formats a partition through it, and the `gpt` crate finds
/// the disk's end through it even when the target is longer (a VHD footer).
pub struct Slice<T> {
    inner: T,
    offset: u64,
    len: u64,
    pos: u64,
    /// Where the inner stream is known to be, to skip needless seeks.
    inner_pos: Option<u64>,
}

impl<T> Slice<T> {
    pub fn new(inner: T, offset: u64, len: u64) -> Self {
        Slice {
            inner,
            offset,
            len,
            pos: 0,
            inner_pos: None,
        }
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
        self.inner_pos = None;
        &mut self.inner
    }
}

impl<T> fmt::Debug for Slice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slice")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish()
    }
}

impl<T: Seek> Slice<T> {
    fn seek_inner(&mut self) -> io::Result<()> {
        let want = self.offset + self.pos;
        if self.inner_pos != Some(want) {
            self.inner_pos = None;
            self.inner.seek(SeekFrom::Start(want))?;
            self.inner_pos = Some(want);
        }
        Ok(())
    }

    fn advance(&mut self, k: io::Result<usize>) -> io::Result<usize> {
        match k {
            Ok(k) => {
                self.pos += k as u64;
                self.inner_pos = self.inner_pos.map(|p| p + k as u64);
                Ok(k)
            }
            Err(e) => {
                self.inner_pos = None;
                Err(e)
            }
        }
    }
}

impl<T: Seek> Seek for Slice<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the slice",
            )),
        }
    }
}

impl<T: Read + Seek> Read for Slice<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            return Ok(0);
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        self.seek_inner()?;
        let k = self.inner.read(&mut buf[..n]);
        self.advance(k)
    }
}

impl<T: Write + Seek> Write for Slice<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos >= self.len {
            if buf.is_empty() {
                return Ok(0);
            }
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        let n = buf
            .len()
            .min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        self.seek_inner()?;
        let k = self.inner.write(&buf[..n]);
        self.advance(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A stream that refuses writes: the reader hands it to `fatfs` and `gpt`,
/// which demand `Write` even to read, so a verify can never modify a medium.
pub struct ReadOnly<T>(pub T);

impl<T> fmt::Debug for ReadOnly<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReadOnly")
    }
}

impl<T: Read> Read for ReadOnly<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<T: Seek> Seek for ReadOnly<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.0.seek(to)
    }
}

impl<T> Write for ReadOnly<T> {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the medium is opened read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bytes of one cache block.
const BLOCK: u64 = 64 << 10;
/// Blocks kept before the least recently used is written back (8 MiB).
const MAX_BLOCKS: usize = 128;
/// Sequential large writes are gathered up to this size before reaching the
/// target, so file data costs one syscall per MiB rather than per cluster.
const GATHER: usize = 1 << 20;

/// A write-back block cache in front of the target.
///
/// fatfs writes every FAT entry (4 bytes, twice: one per FAT) and every
/// directory entry with its own seek and write, and reads each one back
/// first. Straight onto a file that is several syscalls per cluster. Here
/// small accesses land in 64 KiB blocks kept in memory (bounded: at most
/// `MAX_BLOCKS`), while large writes (file data, a cluster or more) bypass
/// the blocks and are gathered while sequential (at most `GATHER` bytes).
/// Memory stays flat whatever the content size.
///
/// Ordering: cached blocks always hold the newest bytes of their range (a
/// gathered write is copied into any cached block it overlaps), so the
/// gathered run is written before any block overlapping it is loaded from
/// or written to the target.
pub struct BlockCache<T: Read + Write + Seek> {
    inner: T,
    pos: u64,
    blocks: BTreeMap<u64, Block>,
    tick: u64,
    gathered: Gather,
    gathered_at: u64,
    /// Reads of at least this many bytes that no cached block overlaps go
    /// straight to the target.
    bypass: u64,
    /// A buffer of an evicted block, reused rather than allocated (and
    /// zeroed) again.
    recycled: Option<Vec<u8>>,
}

/// The gathered run, in a buffer that starts on a 4 KiB boundary: copying
/// into a buffer that is not cache-line aligned measured several times
/// slower here (glibc's `rep movsb` path), and this copy is made for every
/// byte of file data.
struct Gather {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Gather {
    fn new() -> Gather {
        Gather {
            raw: Vec::new(),
            start: 0,
            len: 0,
        }
    }
    fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn len(&self) -> usize {
        self.len
    }
    fn clear(&mut self) {
        self.len = 0;
    }
    fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
    /// Append `buf`; the caller keeps the run within [`GATHER`] bytes.
    fn extend_from_slice(&mut self, buf: &[u8]) {
        if self.raw.is_empty() {
            self.raw = vec![0u8; GATHER + 4096];
            self.start = self.raw.as_ptr().align_offset(4096);
        }
        let at = self.start + self.len;
        if at + buf.len() > self.raw.len() {
            // Never with the caller's bound; grow rather than fail.
            self.raw.resize(at + buf.len(), 0);
        }
        self.raw[at..at + buf.len()].copy_from_slice(buf);
        self.len += buf.len();
    }
}

struct Block {
    data: Vec<u8>,
    dirty: bool,
    used: u64,
}

impl<T: Read + Write + Seek> fmt::Debug for BlockCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockCache")
            .field("pos", &self.pos)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl<T: Read + Write + Seek> BlockCache<T> {
    pub fn new(inner: T) -> Self {
        BlockCache {
            inner,
            pos: 0,
            blocks: BTreeMap::new(),
            tick: 0,
            gathered: Gather::new(),
            gathered_at: 0,
            bypass: BLOCK,
            recycled: None,
        }
    }

    /// A cache over a target that reads cheaply at any size because it
    /// keeps its own read-ahead (capmedia-directio's `DirectFile`): reads of
    /// a sector or more that no cached block holds go straight to it, so
    /// file data is not copied through the blocks.
    pub fn over_read_ahead(inner: T) -> Self {
        BlockCache {
            bypass: 512,
            ..Self::new(inner)
        }
    }

    /// Writes every dirty block back and returns the target.
    pub fn into_inner(mut self) -> io::Result<T> {
        self.flush_blocks()?;
        Ok(self.inner)
    }

    /// Write the gathered run to the target.
    fn flush_gathered(&mut self) -> io::Result<()> {
        if !self.gathered.is_empty() {
            self.inner.seek(SeekFrom::Start(self.gathered_at))?;
            self.inner.write_all(self.gathered.as_slice())?;
            self.gathered.clear();
        }
        Ok(())
    }

    /// Flush the gathered run if it overlaps `[start, end)`.
    fn flush_gathered_over(&mut self, start: u64, end: u64) -> io::Result<()> {
        let g_end = self.gathered_at + self.gathered.len() as u64;
        if !self.gathered.is_empty() && start < g_end && self.gathered_at < end {
            self.flush_gathered()?;
        }
        Ok(())
    }

    fn flush_blocks(&mut self) -> io::Result<()> {
        self.flush_gathered()?;
        for (&n, b) in self.blocks.iter_mut() {
            if b.dirty {
                self.inner.seek(SeekFrom::Start(n * BLOCK))?;
                self.inner.write_all(&b.data)?;
                b.dirty = false;
            }
        }
        Ok(())
    }

    fn block(&mut self, n: u64) -> io::Result<&mut Block> {
        self.tick += 1;
        let tick = self.tick;
        if !self.blocks.contains_key(&n) {
            if self.blocks.len() >= MAX_BLOCKS {
                self.evict()?;
            }
            self.flush_gathered_over(n * BLOCK, (n + 1) * BLOCK)?;
            let mut data = self.recycled.take().unwrap_or_default();
            data.resize(BLOCK as usize, 0);
            self.inner.seek(SeekFrom::Start(n * BLOCK))?;
            let mut got = 0;
            while got < data.len() {
                let k = self.inner.read(&mut data[got..])?;
                if k == 0 {
                    break;
                }
                got += k;
            }
            data.truncate(got);
            self.blocks.insert(
                n,
                Block {
                    data,
                    dirty: false,
                    used: tick,
                },
            );
        }
        match self.blocks.get_mut(&n) {
            Some(b) => {
                b.used = tick;
                Ok(b)
            }
            None => Err(io::Error::other("block cache lost a block")),
        }
    }

    fn evict(&mut self) -> io::Result<()> {
        let victim = self
            .blocks
            .iter()
            .min_by_key(|(_, b)| b.used)
            .map(|(&n, _)| n);
        if let Some(n) = victim {
            if let Some(b) = self.blocks.remove(&n) {
                if b.dirty {
                    self.flush_gathered_over(n * BLOCK, (n + 1) * BLOCK)?;
                    self.inner.seek(SeekFrom::Start(n * BLOCK))?;
                    self.inner.write_all(&b.data)?;
                }
                self.recycled = Some(b.data);
            }
        }
        Ok(())
    }

    /// Drop or refresh cached blocks that a direct write overlaps.
    fn write_through(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = self.pos;
        let end = start + buf.len() as u64;
        let g_end = self.gathered_at + self.gathered.len() as u64;
        let appends = !self.gathered.is_empty() && g_end == start;
        if !(appends && self.gathered.len() + buf.len() <= GATHER) {
            self.flush_gathered()?;
        }
        if buf.len() >= GATHER {
            self.inner.seek(SeekFrom::Start(start))?;
            self.inner.write_all(buf)?;
        } else {
            if self.gathered.is_empty() {
                self.gathered_at = start;
            }
            self.gathered.extend_from_slice(buf);
        }
        let first = start / BLOCK;
        let last = (end - 1) / BLOCK;
        let hit: Vec<u64> = self.blocks.range(first..=last).map(|(&n, _)| n).collect();
        for n in hit {
            if let Some(b) = self.blocks.get_mut(&n) {
                let bstart = n * BLOCK;
                let s = start.max(bstart);
                let e = end.min(bstart + b.data.len() as u64);
                if s < e {
                    let dst = (s - bstart) as usize..(e - bstart) as usize;
                    let src = (s - start) as usize..(e - start) as usize;
                    b.data[dst].copy_from_slice(&buf[src]);
                }
            }
        }
        self.pos = end;
        Ok(buf.len())
    }
}

impl<T: Read + Write + Seek> Seek for BlockCache<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => {
                self.flush_gathered()?;
                let end = self.inner.seek(SeekFrom::End(0))?;
                end.checked_add_signed(d)
            }
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(n) => {
                self.pos = n;
                Ok(n)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            )),
        }
    }
}

impl<T: Read + Write + Seek> Read for BlockCache<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.pos / BLOCK;
        let off = (self.pos % BLOCK) as usize;
        // Large reads (file data) that no cached block holds bypass the
        // blocks: up to the next block boundary, so a cached block further
        // on is never skipped.
        let direct = if self.bypass >= BLOCK {
            (off == 0).then_some(BLOCK)
        } else {
            Some(BLOCK - off as u64)
        };
        if let Some(limit) = direct {
            let len = (buf.len() as u64).min(limit);
            if len >= self.bypass && !self.blocks.contains_key(&n) {
                self.flush_gathered_over(self.pos, self.pos + len)?;
                self.inner.seek(SeekFrom::Start(self.pos))?;
                let k = self.inner.read(&mut buf[..len as usize])?;
                self.pos += k as u64;
                return Ok(k);
            }
        }
        let b = self.block(n)?;
        if off >= b.data.len() {
            return Ok(0);
        }
        let k = buf.len().min(b.data.len() - off);
        buf[..k].copy_from_slice(&b.data[off..off + k]);
        self.pos += k as u64;
        Ok(k)
    }
}

impl<T: Read + Write + Seek> Write for BlockCache<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Cluster-sized and larger writes are file data: not worth caching.
        if buf.len() >= 4096 {
            return self.write_through(buf);
        }
        let n = self.pos / BLOCK;
        let off = (self.pos % BLOCK) as usize;
        let b = self.block(n)?;
        let room = BLOCK as usize - off;
        let k = buf.len().min(room);
        if b.data.len() < off + k {
            // Past the end of the target: let the target decide.
            return self.write_through(buf);
        }
        b.data[off..off + k].copy_from_slice(&buf[..k]);
        b.dirty = true;
        self.pos += k as u64;
        Ok(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_blocks()?;
        self.inner.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// Random reads and writes of all sizes through the cache agree with
    /// the same operations on a plain buffer, at every step and at the end.
    #[test]
    fn block_cache_matches_a_plain_buffer() {
        matches_a_plain_buffer(BlockCache::new);
    }

    /// The same with reads bypassing the blocks from 512 bytes on.
    #[test]
    fn block_cache_over_read_ahead_matches_a_plain_buffer() {
        matches_a_plain_buffer(BlockCache::over_read_ahead);
    }

    type Memory = Cursor<Vec<u8>>;

    fn matches_a_plain_buffer(make: fn(Memory) -> BlockCache<Memory>) {
        const SIZE: usize = 12 << 20;
        let mut model = vec![0u8; SIZE];
        let mut cache = make(Cursor::new(vec![0u8; SIZE]));
        let mut x: u64 = 42;
        let mut next = |m: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let mut seq = 0u64;
        for i in 0..3_000u64 {
            let len = match next(4) {
                0 => 1 + next(16),
                1 => 512 * (1 + next(8)),
                2 => 4096 * (1 + next(4)),
                _ => 1 + next(3 << 19),
            } as usize;
            // Mostly sequential data with small writes elsewhere, like fatfs.
            let at = if next(3) == 0 {
                seq = (seq + len as u64) % (SIZE as u64 - len as u64);
                seq
            } else {
                next((SIZE - len) as u64)
            } as usize;
            cache.seek(SeekFrom::Start(at as u64)).unwrap();
            if next(3) == 0 {
                let mut got = vec![0u8; len];
                cache.read_exact(&mut got).unwrap();
                assert_eq!(got, model[at..at + len], "read {i} at {at}+{len}");
            } else {
                let data: Vec<u8> = (0..len).map(|k| (k as u64 ^ i) as u8).collect();
                cache.write_all(&data).unwrap();
                model[at..at + len].copy_from_slice(&data);
            }
        }
        let inner = cache.into_inner().unwrap().into_inner();
        assert!(inner == model);
    }
}
