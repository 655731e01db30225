//! The BLAKE3 of a whole image file, taken from the read-back's own reads.
//!
//! A sink reports the BLAKE3 of every output file it writes. Reading the
//! whole image once more just for that costs as much as the read-back
//! itself; but the read-back already reads almost every byte of the image,
//! and almost in order: the partition table, the FAT, then the files in the
//! order they were written. [`HashingReader`] sits under the read-back and
//! hands the bytes it reads to a hashing thread whenever they continue the
//! bytes hashed so far; a read that leaves a small gap (a directory cluster,
//! the space before the partition) first reads the gap; reads far ahead
//! (the manifest, the backup GPT) or behind (FAT lookups) are served but not
//! hashed. [`HashingReader::finish`] then reads whatever is left after the
//! last byte hashed (the manifest and the free tail, usually a few MiB) and
//! returns the hash. Every byte hashed was read from the image, once, in
//! order: the result is the image's BLAKE3 whatever order the read-back
//! chose, only the number of extra reads changes.
//!
//! Memory: a few 1 MiB pieces in flight, whatever the image size.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::mpsc;
use std::thread;

/// Bytes handed to the hashing thread at once.
const PIECE: usize = 1 << 20;
/// Pieces allocated at most (the one being filled, queued, being hashed).
const PIECES: usize = 4;
/// A read at most this far past the last byte hashed reads the gap first.
const CATCH_UP: u64 = 4 << 20;

/// A `Read + Seek` over an image that computes the image's BLAKE3 from the
/// bytes read through it; see the module documentation.
pub struct HashingReader<T: Read + Seek> {
    inner: T,
    pos: u64,
    len: u64,
    /// `[0, upto)` has been hashed (or sits in `piece`).
    upto: u64,
    piece: Vec<u8>,
    filled: usize,
    back: mpsc::Receiver<Vec<u8>>,
    allocated: usize,
    thread: Hashing,
}

/// The hashing thread; dropping it stops the thread.
struct Hashing {
    tx: Option<mpsc::SyncSender<(Vec<u8>, usize)>>,
    handle: Option<thread::JoinHandle<blake3::Hash>>,
}

impl Drop for Hashing {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl<T: Read + Seek> std::fmt::Debug for HashingReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingReader")
            .field("pos", &self.pos)
            .field("len", &self.len)
            .field("upto", &self.upto)
            .finish_non_exhaustive()
    }
}

impl<T: Read + Seek> HashingReader<T> {
    /// Hash the image `inner` (its length is where it ends now).
    pub fn new(mut inner: T) -> io::Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(PIECES - 2);
        let (back_tx, back) = mpsc::channel();
        let handle = thread::spawn(move || {
            let mut h = blake3::Hasher::new();
            for (buf, n) in rx {
                h.update(buf.get(..n).unwrap_or_default());
                // The reader may be gone (an error): the piece is dropped.
                let _ = back_tx.send(buf);
            }
            h.finalize()
        });
        Ok(HashingReader {
            inner,
            pos: 0,
            len,
            upto: 0,
            piece: vec![0u8; PIECE],
            filled: 0,
            back,
            allocated: 1,
            thread: Hashing {
                tx: Some(tx),
                handle: Some(handle),
            },
        })
    }

    /// The image's length when it was opened.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes hashed so far from the reads (for tests and measurements).
    pub fn hashed(&self) -> u64 {
        self.upto
    }

    /// Hand the full piece to the hashing thread and take an empty one.
    fn send_piece(&mut self) -> io::Result<()> {
        let stopped = || io::Error::other("the image hashing thread stopped");
        let next = match self.back.try_recv() {
            Ok(b) => b,
            Err(_) if self.allocated < PIECES => {
                self.allocated += 1;
                vec![0u8; PIECE]
            }
            Err(_) => self.back.recv().map_err(|_| stopped())?,
        };
        let full = std::mem::replace(&mut self.piece, next);
        let n = std::mem::take(&mut self.filled);
        self.thread
            .tx
            .as_ref()
            .ok_or_else(stopped)?
            .send((full, n))
            .map_err(|_| stopped())
    }

    /// Append bytes that continue `[0, upto)`.
    fn feed(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = (PIECE - self.filled).min(data.len());
            self.piece[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            self.upto += n as u64;
            data = &data[n..];
            if self.filled == PIECE {
                self.send_piece()?;
            }
        }
        Ok(())
    }

    /// Read and hash `[upto, to)` from the image (straight into the piece),
    /// leaving the inner reader anywhere. Stops early at the image's end.
    fn catch_up(&mut self, to: u64) -> io::Result<()> {
        if self.upto >= to {
            return Ok(());
        }
        self.inner.seek(SeekFrom::Start(self.upto))?;
        while self.upto < to {
            let want = usize::try_from(to - self.upto)
                .unwrap_or(usize::MAX)
                .min(PIECE - self.filled);
            let k = match self
                .inner
                .read(&mut self.piece[self.filled..self.filled + want])
            {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.filled += k;
            self.upto += k as u64;
            if self.filled == PIECE {
                self.send_piece()?;
            }
        }
        Ok(())
    }

    /// Hash the rest of the image and return its BLAKE3 (lower-case hex)
    /// and the inner reader.
    pub fn finish(mut self) -> io::Result<(String, T)> {
        self.catch_up(self.len)?;
        if self.filled > 0 {
            let n = std::mem::take(&mut self.filled);
            let piece = std::mem::take(&mut self.piece);
            let tx = self
                .thread
                .tx
                .as_ref()
                .ok_or_else(|| io::Error::other("the image hashing thread stopped"))?;
            tx.send((piece, n))
                .map_err(|_| io::Error::other("the image hashing thread stopped"))?;
        }
        self.thread.tx = None;
        let hash = self
            .thread
            .handle
            .take()
            .map(|h| h.join())
            .ok_or_else(|| io::Error::other("the image hashing thread is gone"))?
            .map_err(|_| io::Error::other("the image hashing thread failed"))?;
        let HashingReader { inner, .. } = self;
        Ok((hash.to_hex().to_string(), inner))
    }
}

impl<T: Read + Seek> Read for HashingReader<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos > self.upto && self.pos - self.upto <= CATCH_UP {
            self.catch_up(self.pos)?;
            self.inner.seek(SeekFrom::Start(self.pos))?;
        }
        let k = self.inner.read(buf)?;
        let end = self.pos + k as u64;
        if self.pos <= self.upto && self.upto < end {
            let from = (self.upto - self.pos) as usize;
            self.feed(&buf[from..k])?;
        }
        self.pos = end;
        Ok(k)
    }
}

impl<T: Read + Seek> Seek for HashingReader<T> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// Run `verify` (a read-back past the page cache) while another thread
/// makes `file` durable (`fsync`), and return both results.
///
/// The two are independent: the read-back reads what the direct writes put
/// on the medium, synced or not, and `fsync` only waits for the file
/// system's journal and the drive's cache. One after the other, the sync
/// (a journal commit and a cache flush, a large part of a second measured
/// on a VM) adds its whole time; beside the read-back it mostly hides. A
/// caller commits nothing until both succeeded.
pub fn verify_while_syncing<R, E>(
    file: &std::fs::File,
    verify: impl FnOnce() -> Result<R, E>,
) -> (Result<R, E>, io::Result<()>) {
    thread::scope(|s| {
        let sync = s.spawn(|| file.sync_all());
        let verified = verify();
        let synced = sync
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the sync thread panicked")));
        (verified, synced)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn image(len: usize) -> Vec<u8> {
        let mut x: u32 = 7;
        (0..len)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    /// Whatever the reads (in order, backwards, small gaps, far jumps,
    /// none at all), the result is the BLAKE3 of the whole image.
    #[test]
    fn any_read_order_gives_the_image_hash() {
        let data = image((5 << 20) + 12_345);
        let want = blake3::hash(&data).to_hex().to_string();
        let len = data.len() as u64;
        let orders: Vec<Vec<(u64, usize)>> = vec![
            vec![],
            vec![(0, data.len())],
            // A reader's pattern: header, far end, a table, files in order
            // with small gaps, a look back.
            vec![
                (0, 512),
                (len - 512, 512),
                (4096, 70_000),
                (80_000, 1 << 20),
                (2 << 20, 3000),
                (1000, 10),
                ((2 << 20) + 3000, 2 << 20),
            ],
            vec![(len - 100, 100), (0, 10)],
            vec![(3 << 20, 4096), (3 << 20, 4096), (0, 1)],
        ];
        for reads in orders {
            let mut r = HashingReader::new(Cursor::new(data.clone())).unwrap();
            for &(at, n) in &reads {
                r.seek(SeekFrom::Start(at)).unwrap();
                let mut buf = vec![0u8; n];
                r.read_exact(&mut buf).unwrap();
                assert_eq!(buf, data[at as usize..at as usize + n], "{reads:?}");
            }
            let (got, _) = r.finish().unwrap();
            assert_eq!(got, want, "{reads:?}");
        }
    }

    /// Reads in order hash as they go: finishing reads nothing more.
    #[test]
    fn sequential_reads_are_hashed_on_the_way() {
        let data = image(3 << 20);
        let mut r = HashingReader::new(Cursor::new(data.clone())).unwrap();
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).unwrap();
        assert_eq!(r.hashed(), data.len() as u64);
        let (got, _) = r.finish().unwrap();
        assert_eq!(got, blake3::hash(&data).to_hex().to_string());
    }
}
