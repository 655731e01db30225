//! The block layer of capmedia's virtual disk writers: a virtual disk kept as
//! fixed-size blocks in a host file, written and read back through
//! `Read + Write + Seek` over the *virtual* disk, so a disk-layout library
//! (capmedia-disk) writes into it as into a raw image.
//!
//! VHD and VHDX store a disk the same way: a block of the disk has a place in
//! the host file or reads as zeros. Only where a block goes, and what a format
//! writes beside it (a VHD block's sector bitmap), differ; a format says that
//! through [`Placement`] and keeps its headers and tables to itself.
//! [`BlockWriter`] does the rest once: it splits requests at block
//! boundaries, gives a block its place on its first non-zero write (so
//! all-zero blocks are never written and stay holes on the host), reads
//! blocks without a place as zeros, and writes each run of pieces that lie
//! back to back in the host file with one call, so a large write costs one
//! system call, not one per block. Written by hand: it is a thin adapter over
//! the formats' own tables, which no crate provides.

use std::io::{self, Read, Seek, SeekFrom, Write};

#[cfg(feature = "testing")]
pub mod testing;

/// Where a format keeps the blocks of its virtual disk.
pub trait Placement {
    /// Where block `block`'s data starts in the host file, or `None` while it
    /// has no place (it reads as zeros).
    fn place(&self, block: u64) -> Option<u64>;

    /// Give `block` a place, on its first non-zero write; write what the
    /// format keeps beside it (a VHD sector bitmap) into `file`. Returns
    /// where its data starts. Called only for blocks [`place`](Self::place)
    /// says have none.
    fn allocate<F: Write + Seek>(&mut self, file: &mut F, block: u64) -> io::Result<u64>;
}

/// A virtual disk of `size` bytes in blocks of `block_size`, placed by `P`
/// in the host file `F`, which starts empty (never-written bytes must read
/// as zeros).
///
/// Memory: whatever `P` keeps (a table entry per block); nothing grows with
/// what is written.
pub struct BlockWriter<F, P> {
    file: F,
    placement: P,
    size: u64,
    block_size: u64,
    pos: u64,
    /// Where the host file is known to be, to skip needless seeks.
    host_pos: Option<u64>,
}

impl<F, P> std::fmt::Debug for BlockWriter<F, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockWriter")
            .field("size", &self.size)
            .field("block_size", &self.block_size)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl<F, P> BlockWriter<F, P> {
    /// A disk of `size` bytes; `block_size` must not be zero (it is a
    /// format's constant; zero is taken as one byte rather than dividing by
    /// it).
    pub fn new(file: F, placement: P, size: u64, block_size: u64) -> Self {
        BlockWriter {
            file,
            placement,
            size,
            block_size: block_size.max(1),
            pos: 0,
            host_pos: None,
        }
    }

    /// The virtual disk's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn placement(&self) -> &P {
        &self.placement
    }

    /// The host file and the placement, for a format's closing structures.
    pub fn into_parts(self) -> (F, P) {
        (self.file, self.placement)
    }

    /// The length of the piece of a request at `pos` (below `size`) that
    /// stays in one block.
    fn piece(&self, pos: u64, want: usize) -> usize {
        let to_end = self.size - pos;
        let to_block = self.block_size - pos % self.block_size;
        usize::try_from(to_end.min(to_block)).map_or(want, |n| n.min(want))
    }
}

impl<F: Read + Write + Seek, P: Placement> BlockWriter<F, P> {
    fn seek_host(&mut self, at: u64) -> io::Result<()> {
        if self.host_pos != Some(at) {
            self.host_pos = None;
            self.file.seek(SeekFrom::Start(at))?;
            self.host_pos = Some(at);
        }
        Ok(())
    }

    fn write_host(&mut self, at: u64, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.seek_host(at)?;
        if let Err(e) = self.file.write_all(data) {
            self.host_pos = None;
            return Err(e);
        }
        self.host_pos = Some(at + data.len() as u64);
        Ok(())
    }
}

impl<F: Read + Write + Seek, P: Placement> Write for BlockWriter<F, P> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        // The run being gathered: `buf[run_start..done]`, to go to the host
        // at `run_at`. Pieces that follow each other in the host file as in
        // `buf` join it.
        let mut run_start = 0;
        let mut run_at = 0u64;
        let mut done = 0;
        while done < buf.len() && self.pos < self.size {
            let n = self.piece(self.pos, buf.len() - done);
            let chunk = buf.get(done..done + n).unwrap_or_default();
            let block = self.pos / self.block_size;
            let within = self.pos % self.block_size;
            let host = match self.placement.place(block) {
                Some(start) => Some(start + within),
                // A block that stays zero keeps no place: never written.
                None if is_zero(chunk) => None,
                None => {
                    self.host_pos = None;
                    let start = self.placement.allocate(&mut self.file, block)?;
                    Some(start + within)
                }
            };
            let joins = host == Some(run_at + (done - run_start) as u64) && done > run_start;
            if !joins {
                let run = buf.get(run_start..done).unwrap_or_default();
                self.write_host(run_at, run)?;
                run_start = done;
                match host {
                    Some(h) => run_at = h,
                    // Skipped: the run restarts after this piece.
                    None => run_start = done + n,
                }
            }
            self.pos += n as u64;
            done += n;
        }
        if run_start < done {
            let run = buf.get(run_start..done).unwrap_or_default();
            self.write_host(run_at, run)?;
        }
        Ok(done)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl<F: Read + Write + Seek, P: Placement> Read for BlockWriter<F, P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let n = self.piece(self.pos, buf.len());
        let Some(out) = buf.get_mut(..n) else {
            return Ok(0);
        };
        match self.placement.place(self.pos / self.block_size) {
            Some(start) => {
                self.host_pos = None;
                read_or_zero(&mut self.file, start + self.pos % self.block_size, out)?;
            }
            None => out.fill(0),
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<F, P> Seek for BlockWriter<F, P> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_pos(self.pos, self.size, to)?;
        Ok(self.pos)
    }
}

/// The new position of a seek over a disk of `size` bytes (past the end is
/// allowed, as for files; reads there give nothing, writes write nothing).
pub fn seek_pos(pos: u64, size: u64, to: SeekFrom) -> io::Result<u64> {
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
/// yet written: a hole the format's closing structures extend over) read as
/// zeros.
fn read_or_zero<F: Read + Seek>(file: &mut F, offset: u64, out: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut got = 0;
    while let Some(rest) = out.get_mut(got..).filter(|r| !r.is_empty()) {
        match file.read(rest) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(rest) = out.get_mut(got..) {
        rest.fill(0);
    }
    Ok(())
}

/// Whether `b` holds only zeros, 16 bytes at a time.
pub fn is_zero(b: &[u8]) -> bool {
    let mut chunks = b.chunks_exact(16);
    chunks.all(|c| u128::from_ne_bytes(c.try_into().unwrap_or([1; 16])) == 0)
        && chunks.remainder().iter().all(|&x| x == 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    /// Blocks placed at the end of the host file, each after a one-byte
    /// marker (as a VHD block follows its bitmap), so runs never join across
    /// blocks unless the placement puts them back to back.
    #[derive(Debug, Default)]
    struct Appended {
        places: Vec<Option<u64>>,
        next: u64,
        gap: u64,
        block: u64,
    }

    impl Placement for Appended {
        fn place(&self, block: u64) -> Option<u64> {
            self.places.get(block as usize).copied().flatten()
        }
        fn allocate<F: Write + Seek>(&mut self, file: &mut F, block: u64) -> io::Result<u64> {
            if self.gap > 0 {
                file.seek(SeekFrom::Start(self.next))?;
                file.write_all(&vec![0xEE; self.gap as usize])?;
            }
            let at = self.next + self.gap;
            self.places[block as usize] = Some(at);
            self.next = at + self.block;
            Ok(at)
        }
    }

    fn disk(size: u64, block: u64, gap: u64) -> BlockWriter<Cursor<Vec<u8>>, Appended> {
        let places = vec![None; size.div_ceil(block) as usize];
        let p = Appended {
            places,
            next: 0,
            gap,
            block,
        };
        BlockWriter::new(Cursor::new(Vec::new()), p, size, block)
    }

    /// Counts the host writes, to see runs joined.
    #[derive(Debug, Default)]
    struct Counting {
        inner: Cursor<Vec<u8>>,
        writes: usize,
    }
    impl Read for Counting {
        fn read(&mut self, b: &mut [u8]) -> io::Result<usize> {
            self.inner.read(b)
        }
    }
    impl Write for Counting {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            self.inner.write(b)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Seek for Counting {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.inner.seek(to)
        }
    }

    #[test]
    fn back_to_back_blocks_take_one_write_and_zero_blocks_none() {
        let places = vec![None; 8];
        let p = Appended {
            places,
            block: 16,
            ..Default::default()
        };
        let mut d = BlockWriter::new(Counting::default(), p, 128, 16);
        // Blocks 0..4 in order: placed back to back, one host write.
        d.write_all(&[7u8; 64]).unwrap();
        assert_eq!(d.file.writes, 1);
        // All zeros into blocks 4..8: nothing placed, nothing written.
        d.write_all(&[0u8; 64]).unwrap();
        assert_eq!(d.file.writes, 1);
        assert_eq!(d.placement().next, 64);
        assert!((4..8).all(|b| d.placement().place(b).is_none()));
    }

    proptest! {
        /// Any sequence of writes and reads gives what a plain in-memory
        /// disk gives, zero blocks keep no place, and the host holds each
        /// placed block's bytes at its place.
        #[test]
        fn behaves_as_a_plain_disk(
            gap in 0u64..3,
            ops in proptest::collection::vec(
                (0u64..300, 0usize..90, any::<u8>(), any::<bool>()), 1..40)
        ) {
            let (size, block) = (256u64, 32u64);
            let mut d = disk(size, block, gap);
            let mut model = vec![0u8; size as usize];
            for (at, len, byte, is_read) in ops {
                d.seek(SeekFrom::Start(at)).unwrap();
                if is_read {
                    let mut got = vec![0u8; len];
                    let mut n = 0;
                    loop {
                        let k = d.read(&mut got[n..]).unwrap();
                        if k == 0 { break; }
                        n += k;
                    }
                    let want = (size.saturating_sub(at) as usize).min(len);
                    prop_assert_eq!(n, want);
                    prop_assert_eq!(&got[..n], model.get(at as usize..at as usize + n).unwrap_or_default());
                } else {
                    let data = vec![byte; len];
                    let n = d.write(&data).unwrap();
                    let want = (size.saturating_sub(at) as usize).min(len);
                    prop_assert_eq!(n, want);
                    if n > 0 {
                        model[at as usize..at as usize + n].copy_from_slice(&data[..n]);
                    }
                }
            }
            let (file, p) = d.into_parts();
            let host = file.into_inner();
            for b in 0..size / block {
                let bytes = &model[(b * block) as usize..((b + 1) * block) as usize];
                match p.place(b) {
                    None => prop_assert!(bytes.iter().all(|&x| x == 0)),
                    Some(at) => {
                        let mut got = vec![0u8; block as usize];
                        let end = ((at + block) as usize).min(host.len());
                        if (at as usize) < end {
                            got[..end - at as usize].copy_from_slice(&host[at as usize..end]);
                        }
                        prop_assert_eq!(&got[..], bytes);
                    }
                }
            }
        }
    }
}
