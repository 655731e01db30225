//! Streaming one blob (a file's data) chunk by chunk, verifying its SHA-1.

use std::io::{self, Read, Seek, Write};

use sha1::{Digest, Sha1};

use crate::resource::{Io, Resource};
use crate::{Sha1Hash, WimError};

/// Where a blob lies: `size` bytes from `offset` of the uncompressed
/// resource (0 and the resource's size unless it is solid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Blob {
    pub res: Resource,
    pub offset: u64,
    pub size: u64,
}

/// A reader of one stream's bytes, decoded chunk by chunk (memory bounded
/// by the chunk size whatever the stream's size). The SHA-1 recorded in the
/// lookup table is checked before the last bytes are handed out: a stream
/// that does not match ends in [`WimError::HashMismatch`] (as an
/// `io::Error` of kind `InvalidData`; [`WimError::from_io`] recovers it).
#[derive(Debug)]
pub struct StreamReader<'a, R> {
    io: &'a mut Io<R>,
    blob: Option<Blob>,
    expected: Sha1Hash,
    /// Bytes of the blob handed to the hasher so far.
    done: u64,
    hasher: Sha1,
    /// Pending bytes: a range of `io.buf()`.
    pending: std::ops::Range<usize>,
}

impl<'a, R: Read + Seek> StreamReader<'a, R> {
    pub(crate) fn new(io: &'a mut Io<R>, blob: Option<Blob>, expected: Sha1Hash) -> Self {
        StreamReader {
            io,
            blob,
            expected,
            done: 0,
            hasher: Sha1::new(),
            pending: 0..0,
        }
    }

    /// The stream's size.
    pub fn size(&self) -> u64 {
        self.blob.map_or(0, |b| b.size)
    }

    /// Decodes the next piece; `Ok(false)` at the end.
    fn next_piece(&mut self) -> Result<bool, WimError> {
        let Some(blob) = self.blob else {
            return Ok(false);
        };
        if self.done >= blob.size {
            return Ok(false);
        }
        let range = self
            .io
            .fill(&blob.res, blob.offset + self.done, blob.size - self.done)?;
        if range.is_empty() {
            return Err(WimError::BadResource {
                offset: blob.res.offset,
                reason: "blob beyond its resource",
            });
        }
        let piece = self
            .io
            .buf()
            .get(range.clone())
            .ok_or(WimError::BadResource {
                offset: blob.res.offset,
                reason: "decode buffer",
            })?;
        self.hasher.update(piece);
        self.done += piece.len() as u64;
        if self.done == blob.size {
            let actual: Sha1Hash = std::mem::take(&mut self.hasher).finalize().into();
            if actual != self.expected {
                self.blob = None;
                return Err(WimError::HashMismatch {
                    expected: hex::encode(self.expected),
                    actual: hex::encode(actual),
                });
            }
        }
        self.pending = range;
        Ok(true)
    }

    /// Copies the whole stream into `w`; returns the bytes written.
    pub fn copy_to<W: Write + ?Sized>(mut self, w: &mut W) -> Result<u64, WimError> {
        let mut total = 0u64;
        loop {
            if self.pending.is_empty() && !self.next_piece()? {
                return Ok(total);
            }
            let piece = self.io.buf().get(self.pending.clone()).unwrap_or(&[]);
            w.write_all(piece)?;
            total += piece.len() as u64;
            self.pending = 0..0;
        }
    }
}

impl<R: Read + Seek> Read for StreamReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pending.is_empty() && !self.next_piece().map_err(WimError::into_io)? {
            return Ok(0);
        }
        let piece = self.io.buf().get(self.pending.clone()).unwrap_or(&[]);
        let n = piece.len().min(out.len());
        out[..n].copy_from_slice(&piece[..n]);
        self.pending.start += n;
        Ok(n)
    }
}
