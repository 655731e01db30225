//! Streamed entries: a plan entry whose file is still being fetched while
//! the sink reads it ([`crate::EntrySource::Stream`]).
//!
//! The protocol is files only, so that it works unchanged across the plugin
//! ABI (a plugin is a separate library with its own copy of this crate and
//! gets the plan as JSON):
//!
//! - the stream file at `path` only grows, written front to back by one
//!   fetcher, which hashes the bytes as they arrive;
//! - `<path>.ok` appears (renamed into place) once the bytes' SHA-256 matched
//!   the DP's; it holds their BLAKE3 (lower-case hex), for the manifest;
//! - `<path>.err` appears instead when the fetch failed or the run gave up;
//!   it holds the reason (naming the file).
//!
//! [`StreamReader`] hands out bytes as they arrive but withholds the last
//! one until `.ok` exists, so a sink that copies exactly the entry's size
//! still cannot finish an entry whose SHA-256 did not match: the sink never
//! commits unverified content. It fails with the `.err` text instead.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a reader waits for more bytes without any arriving before it
/// gives up (the fetcher's own deadlines are far shorter; this only ends a
/// wait whose writer vanished without a word).
pub const STALL_LIMIT: Duration = Duration::from_secs(600);
/// The longest pause between two looks at a stream that has not grown.
const MAX_POLL: Duration = Duration::from_millis(10);
/// A `.ok`/`.err` marker is a hex digest or one message line.
const MARKER_LIMIT: u64 = 64 * 1024;

/// The marker saying `path`'s bytes matched their SHA-256.
pub fn ok_marker(path: &Path) -> PathBuf {
    with_suffix(path, ".ok")
}

/// The marker saying `path`'s fetch failed.
pub fn err_marker(path: &Path) -> PathBuf {
    with_suffix(path, ".err")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Write a marker atomically (temporary name, then rename), so a reader
/// never sees half of it.
fn put_marker(marker: &Path, text: &str) -> io::Result<()> {
    let tmp = with_suffix(marker, ".part");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, marker)
}

/// Fetcher side: the bytes of `path` matched; `blake3` is their BLAKE3.
pub fn finish_ok(path: &Path, blake3: &str) -> io::Result<()> {
    put_marker(&ok_marker(path), blake3)
}

/// Fetcher side: the fetch of `path` failed for `why` (a reader then fails
/// with it). A first failure is kept: it says what went wrong first.
pub fn finish_err(path: &Path, why: &str) -> io::Result<()> {
    let marker = err_marker(path);
    if marker.exists() || ok_marker(path).exists() {
        return Ok(());
    }
    put_marker(&marker, why)
}

fn read_marker(marker: &Path) -> io::Result<Option<String>> {
    match File::open(marker) {
        Ok(f) => {
            let mut s = String::new();
            f.take(MARKER_LIMIT).read_to_string(&mut s)?;
            Ok(Some(s.trim().to_owned()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The BLAKE3 of a finished stream, `None` while it is not (yet) verified.
pub fn finished_blake3(path: &Path) -> io::Result<Option<String>> {
    let Some(b) = read_marker(&ok_marker(path))? else {
        return Ok(None);
    };
    if b.len() == 64 && b.bytes().all(|c| c.is_ascii_hexdigit()) {
        Ok(Some(b.to_ascii_lowercase()))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a BLAKE3 digest", ok_marker(path).display()),
        ))
    }
}

/// Reads a stream file of `size` bytes as it grows; see the module docs.
#[derive(Debug)]
pub struct StreamReader {
    file: File,
    path: PathBuf,
    size: u64,
    pos: u64,
    verified: bool,
}

impl StreamReader {
    pub fn open(path: &Path, size: u64) -> io::Result<StreamReader> {
        Ok(StreamReader {
            file: File::open(path)?,
            path: path.to_owned(),
            size,
            pos: 0,
            verified: false,
        })
    }

    /// The failure recorded for the stream, if any.
    fn failed(&self) -> io::Result<Option<io::Error>> {
        Ok(read_marker(&err_marker(&self.path))?.map(io::Error::other))
    }
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut wait = Duration::from_micros(200);
        // Each call returns as soon as bytes arrive, so the time since it
        // began is the time without bytes.
        let began = Instant::now();
        loop {
            // The last byte only once the SHA-256 matched.
            let limit = if self.verified {
                self.size
            } else {
                self.size.saturating_sub(1)
            };
            if self.pos >= self.size && self.verified {
                return Ok(0);
            }
            if self.pos < limit {
                let want = (limit - self.pos).min(buf.len() as u64) as usize;
                let n = self.file.read(&mut buf[..want])?;
                if n > 0 {
                    self.pos += n as u64;
                    return Ok(n);
                }
            }
            if let Some(e) = self.failed()? {
                return Err(e);
            }
            if !self.verified && finished_blake3(&self.path)?.is_some() {
                self.verified = true;
                let len = self.file.metadata()?.len();
                if len != self.size {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: verified with {len} bytes where {} were planned",
                            self.path.display(),
                            self.size
                        ),
                    ));
                }
                continue;
            }
            if self.file.metadata()?.len() < self.pos {
                return Err(io::Error::other(format!(
                    "{}: the stream was rewound under its reader",
                    self.path.display()
                )));
            }
            if began.elapsed() > STALL_LIMIT {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{}: no bytes arrived for {} s",
                        self.path.display(),
                        STALL_LIMIT.as_secs()
                    ),
                ));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reader_follows_a_growing_file_and_ends_only_when_verified() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        let mut w = File::create(&p).unwrap();
        let mut r = StreamReader::open(&p, 6).unwrap();
        let writer = {
            let p = p.clone();
            std::thread::spawn(move || {
                w.write_all(b"abc").unwrap();
                std::thread::sleep(Duration::from_millis(20));
                w.write_all(b"def").unwrap();
                std::thread::sleep(Duration::from_millis(20));
                finish_ok(&p, &"a".repeat(64)).unwrap();
            })
        };
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got, b"abcdef");
        assert_eq!(finished_blake3(&p).unwrap(), Some("a".repeat(64)));
    }

    #[test]
    fn reader_withholds_the_last_byte_and_fails_with_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("blob");
        std::fs::write(&p, b"abcdef").unwrap();
        finish_err(&p, "boot.wim: SHA-256 mismatch").unwrap();
        let mut r = StreamReader::open(&p, 6).unwrap();
        let mut buf = [0u8; 6];
        let mut got = 0;
        let e = loop {
            match r.read(&mut buf[got..]) {
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(got, 5, "the last byte waits for the verdict");
        assert!(e.to_string().contains("boot.wim: SHA-256 mismatch"), "{e}");
        // A later success does not overwrite the first verdict.
        finish_err(&p, "other").unwrap();
        assert!(std::fs::read_to_string(err_marker(&p))
            .unwrap()
            .contains("mismatch"));
    }
}
