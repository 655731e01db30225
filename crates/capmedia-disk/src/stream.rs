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
}

impl<T> Slice<T> {
    pub fn new(inner: T, offset: u64, len: u64) -> Self {
        Slice {
            inner,
            offset,
            len,
            pos: 0,
        }
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    pub fn get_mut(&mut self) -> &mut T {
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
        let n = buf.len().min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.offset + self.pos))?;
        let k = self.inner.read(&mut buf[..n])?;
        self.pos += k as u64;
        Ok(k)
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
        let n = buf.len().min(usize::try_from(self.len - self.pos).unwrap_or(usize::MAX));
        self.inner.seek(SeekFrom::Start(self.offset + self.pos))?;
        let k = self.inner.write(&buf[..n])?;
        self.pos += k as u64;
        Ok(k)
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
/// Blocks kept before the cache writes the lowest back (8 MiB).
const MAX_BLOCKS: usize = 128;

/// A write-back block cache in front of the target.
///
/// fatfs writes every FAT entry (4 bytes, twice: one per FAT) and every
/// directory entry with its own seek and write, and reads each one back
/// first. Straight onto a file that is several syscalls per cluster. Here
/// small accesses land in 64 KiB blocks kept in memory (bounded: at most
/// `MAX_BLOCKS`), while large writes (file data, a cluster or more) go
/// straight through. Memory stays flat whatever the content size.
pub struct BlockCache<T: Read + Write + Seek> {
    inner: T,
    pos: u64,
    blocks: BTreeMap<u64, Block>,
    tick: u64,
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
        }
    }

    /// Writes every dirty block back and returns the target.
    pub fn into_inner(mut self) -> io::Result<T> {
        self.flush_blocks()?;
        Ok(self.inner)
    }

    fn flush_blocks(&mut self) -> io::Result<()> {
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
            let mut data = vec![0u8; BLOCK as usize];
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
                    self.inner.seek(SeekFrom::Start(n * BLOCK))?;
                    self.inner.write_all(&b.data)?;
                }
            }
        }
        Ok(())
    }

    /// Drop or refresh cached blocks that a direct write overlaps.
    fn write_through(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = self.pos;
        let end = start + buf.len() as u64;
        self.inner.seek(SeekFrom::Start(start))?;
        self.inner.write_all(buf)?;
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
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before start")),
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
        if buf.len() as u64 >= BLOCK && off == 0 && !self.blocks.contains_key(&n) {
            self.inner.seek(SeekFrom::Start(self.pos))?;
            let k = self.inner.read(&mut buf[..BLOCK as usize])?;
            self.pos += k as u64;
            return Ok(k);
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
