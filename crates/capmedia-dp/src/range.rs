//! Bounded reads at any offset of a DP file, so the driver can read a WIM's
//! header and XML (which sits near the end) before fetching it in full.

use std::io::{self, Read, Seek, SeekFrom};

use crate::error::{BackendError, DpError};
use crate::{ContentFile, Dp, PackageContent};

/// The most one range read may ask for; WIM XML is a few KiB.
const MAX_RANGE: u64 = 64 << 20;

impl Dp {
    /// Read `len` bytes at `offset` of `file` (fewer at the end of the file).
    ///
    /// A server that ignores `Range` answers with the whole file: the bytes
    /// before `offset` are then read and dropped (bounded by the file's
    /// size, and in time by the request deadline and minimum rate), never
    /// taken for the bytes asked for. A body that ends early is a transient
    /// failure, retried like the others.
    pub fn read_range(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, DpError> {
        let len = len.min(MAX_RANGE).min(file.size.saturating_sub(offset));
        if len == 0 {
            return Ok(Vec::new());
        }
        let location = self.backend.blob_location(&file.sha256);
        self.retry(|| {
            let blob = self.backend.open_blob(&file.sha256, offset, Some(len))?;
            let transient = |e: io::Error| BackendError::Transient(e.to_string());
            let mut reader = blob.reader;
            if blob.offset > offset {
                return Err(BackendError::Other(format!(
                    "{location}: the server answered from byte {} when asked from {offset}",
                    blob.offset
                )));
            }
            let skip = offset - blob.offset;
            if skip > 0 {
                // `reader` was limited to `len` bytes for a range answer;
                // a 200 answer comes back unlimited, so the skip is read
                // from it in full.
                let skipped =
                    io::copy(&mut (&mut reader).take(skip), &mut io::sink()).map_err(transient)?;
                if skipped < skip {
                    return Err(BackendError::Transient(format!(
                        "{location}: the server ignored the byte range and its body ended after \
                         {skipped} bytes, before byte {offset}"
                    )));
                }
            }
            let mut buf = Vec::with_capacity(len as usize);
            reader.take(len).read_to_end(&mut buf).map_err(transient)?;
            if (buf.len() as u64) < len {
                return Err(BackendError::Transient(format!(
                    "{location}: the body ended after {} of {len} bytes from byte {offset}",
                    buf.len()
                )));
            }
            Ok(buf)
        })
        .map_err(|e| self.blob_err(content, file, e))
    }

    /// A `Read + Seek` view of a DP file in which every read is one bounded
    /// range read: for parsers that look at a few small places of a big file.
    pub fn remote_reader<'a>(
        &'a self,
        content: &'a PackageContent,
        file: &'a ContentFile,
    ) -> RemoteReader<'a> {
        RemoteReader {
            dp: self,
            content,
            file,
            pos: 0,
        }
    }

    /// [`Dp::remote_reader`], or the cache's copy of `file` when `cache`
    /// holds one whose stamp still matches, or that matches its SHA-256
    /// once hashed again where its stamp is missing
    /// ([`crate::ContentCache::revalidate`]), and
    /// [`crate::DpOptions::verify_cache`] is off: a warm cache then reads
    /// no DP byte.
    pub fn content_reader<'a>(
        &'a self,
        content: &'a PackageContent,
        file: &'a ContentFile,
        cache: &crate::ContentCache,
    ) -> ContentReader<'a> {
        if !self.opts.verify_cache
            && (cache.trusted(file).is_some() || matches!(cache.revalidate(file), Ok(Some(_))))
        {
            if let Ok(f) = std::fs::File::open(cache.path_of(&file.sha256)) {
                return ContentReader::Cached(f);
            }
        }
        ContentReader::Remote(self.remote_reader(content, file))
    }
}

/// See [`Dp::content_reader`].
#[derive(Debug)]
pub enum ContentReader<'a> {
    Cached(std::fs::File),
    Remote(RemoteReader<'a>),
}

impl Read for ContentReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ContentReader::Cached(f) => f.read(buf),
            ContentReader::Remote(r) => r.read(buf),
        }
    }
}

impl Seek for ContentReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match self {
            ContentReader::Cached(f) => f.seek(to),
            ContentReader::Remote(r) => r.seek(to),
        }
    }
}

/// See [`Dp::remote_reader`].
#[derive(Debug)]
pub struct RemoteReader<'a> {
    dp: &'a Dp,
    content: &'a PackageContent,
    file: &'a ContentFile,
    pos: u64,
}

impl Read for RemoteReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self
            .dp
            .read_range(self.content, self.file, self.pos, buf.len() as u64)
            .map_err(io::Error::other)?;
        buf[..data.len()].copy_from_slice(&data);
        self.pos += data.len() as u64;
        Ok(data.len())
    }
}

impl Seek for RemoteReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let size = self.file.size as i128;
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => size + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before start",
            ));
        }
        self.pos = target as u64;
        Ok(self.pos)
    }
}
