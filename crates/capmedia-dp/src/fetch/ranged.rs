//! Parallel ranged downloads: a large HTTP(S) blob fetched as several byte
//! ranges at once and appended to the output in order.
//!
//! One HTTP connection is one TCP flow, held to what one flow gets (a
//! window per round trip on a WAN, a per-connection limit on a server or
//! proxy); several ranges in flight fill the link. The output still grows
//! front to back only, part after part, and is hashed in that order (so a
//! streamed capture's reader, which takes bytes as the file grows, sees
//! what it always saw), and memory is a fixed pool of part buffers,
//! `2 * connections * part`, whatever the blob's size.
//!
//! The first part goes alone: a server that ignores `Range` answers it with
//! the whole blob (200), which is then read as one stream, with no request
//! wasted. Each part is retried on its own, resuming within the part, under
//! the blob's one budget of retries. With Windows authentication every
//! request leases a connection of its own from [`crate::winauth`], which
//! authenticates each new connection with its own handshake.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Condvar, Mutex, MutexGuard};
use std::thread;

use super::{Digests, Finished, Pass, Progress};
use crate::backend::Blob;
use crate::error::DpError;
use crate::{ContentFile, Dp, PackageContent};

/// The most parts fetched at once, whatever `DpOptions::concurrency` says.
const MAX_CONNECTIONS: usize = 8;
/// The largest part: the pool stays well under the 64 MiB a capture may use.
const MAX_PART: u64 = 8 << 20;

/// What a ranged attempt came to.
pub(super) enum Ranged {
    /// The whole blob is in the output: bytes written and their digests.
    Done(u64, Finished),
    /// The server ignored the first part's range and sent the whole blob:
    /// that answer, to read as one stream.
    Whole(Blob),
}

/// Part buffers: a fixed number, allocated as first needed and passed
/// round (fetching worker, then writer, then hasher, then back).
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
    max: usize,
    part: usize,
}

struct PoolState {
    free: Vec<Vec<u8>>,
    allocated: usize,
    stop: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A buffer, waiting for one to come back if all are out; `None` once
    /// the round stops.
    fn take(&self) -> Option<Vec<u8>> {
        let mut s = self.lock();
        loop {
            if s.stop {
                return None;
            }
            if let Some(b) = s.free.pop() {
                return Some(b);
            }
            if s.allocated < self.max {
                s.allocated += 1;
                return Some(Vec::with_capacity(self.part));
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn put(&self, b: Vec<u8>) {
        self.lock().free.push(b);
        self.ready.notify_one();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.ready.notify_all();
    }
}

/// What the workers of one round share.
struct Shared<'a> {
    pool: Pool,
    /// The next part to claim.
    next: AtomicUsize,
    failures: &'a AtomicU32,
    stopped: AtomicBool,
    /// The first failure; it ends the round.
    error: Mutex<Option<DpError>>,
}

impl Shared<'_> {
    fn fail(&self, e: DpError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
        drop(slot);
        self.stopped.store(true, Ordering::Relaxed);
        self.pool.stop();
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

impl Dp {
    /// Fetch `file` into `out` (empty, at its start) as parallel byte
    /// ranges of `DpOptions::range_part` bytes, appended in order; see the
    /// module comment.
    pub(super) fn ranged_round(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &mut File,
        prog: &Progress<'_>,
        failures: &AtomicU32,
    ) -> Result<Ranged, DpError> {
        let part = self.opts.range_part.clamp(64 << 10, MAX_PART);
        let parts = usize::try_from(file.size.div_ceil(part)).unwrap_or(usize::MAX);
        let part_len = |i: usize| {
            let off = (i as u64).saturating_mul(part);
            (off, part.min(file.size.saturating_sub(off)))
        };
        // The first part alone: it tells whether the server honours ranges.
        let probe = loop {
            if (prog.cancel)() {
                return Err(DpError::Cancelled);
            }
            match self.backend.open_blob(&file.sha256, 0, Some(part)) {
                Ok(b) if b.whole => return Ok(Ranged::Whole(b)),
                Ok(b) => break b,
                Err(e) => match self.open_err(content, file, e, 0) {
                    Pass::Transient(why) => self.transient(content, file, prog, failures, why)?,
                    Pass::Fatal(e) => return Err(*e),
                },
            }
        };
        let workers = self
            .opts
            .concurrency
            .clamp(1, MAX_CONNECTIONS)
            .min(parts.max(1));
        let shared = Shared {
            pool: Pool {
                state: Mutex::new(PoolState {
                    free: Vec::new(),
                    allocated: 0,
                    stop: false,
                }),
                ready: Condvar::new(),
                // As many again as are fetched, so that downloads go on
                // while the writer and the hasher take the parts that came
                // in together (parts fetched side by side end together).
                max: workers * 2,
                part: part as usize,
            },
            next: AtomicUsize::new(1),
            failures,
            stopped: AtomicBool::new(false),
            error: Mutex::new(None),
        };
        // Part 0's buffer before any worker starts: the lowest part not yet
        // written always holds a buffer, so the pool cannot run dry with
        // every buffer waiting behind it.
        let first = shared.pool.take().map(|b| (b, probe));
        let blake3 = self.opts.blake3;
        let (tx, rx) = mpsc::channel::<(usize, Vec<u8>)>();
        let (to_hash, hash_rx) = mpsc::channel::<Vec<u8>>();
        let mut written = 0u64;
        let done = thread::scope(|s| {
            let shared = &shared;
            let hasher = s.spawn(move || {
                let mut d = Digests::new(blake3);
                for b in hash_rx {
                    d.update(&b);
                    shared.pool.put(b);
                }
                d.finish()
            });
            let mut first = first;
            for _ in 0..workers {
                let tx = tx.clone();
                let mine = first.take();
                s.spawn(move || {
                    self.ranged_worker(content, file, parts, &part_len, shared, mine, &tx, prog)
                });
            }
            drop(tx);
            // The writer: parts in order, each written, then hashed.
            let mut waiting: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
            let mut next = 0usize;
            for (i, buf) in rx {
                waiting.insert(i, buf);
                while let Some(b) = waiting.remove(&next) {
                    next += 1;
                    if shared.stopped() {
                        continue;
                    }
                    if (prog.cancel)() {
                        shared.fail(DpError::Cancelled);
                        continue;
                    }
                    if let Err(e) = out.write_all(&b) {
                        shared.fail(self.cache_error(content, file, out, e));
                        continue;
                    }
                    written += b.len() as u64;
                    prog.add(b.len() as u64);
                    let _ = to_hash.send(b);
                }
            }
            drop(to_hash);
            let done = hasher.join().ok();
            if next < parts && !shared.stopped() {
                // Every worker ended without an error, yet parts are
                // missing: only a worker that died can do that.
                shared.fail(self.cache_error(
                    content,
                    file,
                    out,
                    io::Error::other("a download thread ended early"),
                ));
            }
            done
        });
        let error = shared.error.into_inner().unwrap_or_else(|p| p.into_inner());
        match (error, done) {
            (None, Some(done)) => Ok(Ranged::Done(written, done)),
            (e, _) => {
                prog.sub(written);
                Err(e.unwrap_or_else(|| {
                    self.cache_error(
                        content,
                        file,
                        out,
                        io::Error::other("the hashing thread panicked"),
                    )
                }))
            }
        }
    }

    /// Claim parts in order and fetch each into a pool buffer, handing it
    /// to the writer, until none is left or the round stops. `first` is
    /// part 0, already opened (the probe), with its buffer.
    #[allow(clippy::too_many_arguments)]
    fn ranged_worker(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        parts: usize,
        part_len: &(dyn Fn(usize) -> (u64, u64) + Sync),
        shared: &Shared<'_>,
        mut first: Option<(Vec<u8>, Blob)>,
        tx: &mpsc::Sender<(usize, Vec<u8>)>,
        prog: &Progress<'_>,
    ) {
        loop {
            let (i, mut buf, blob) = match first.take() {
                Some((buf, blob)) => (0, buf, Some(blob)),
                None => {
                    // A buffer first, then a part: a worker only claims a
                    // part it can hold (see `ranged_round`).
                    let Some(buf) = shared.pool.take() else {
                        return;
                    };
                    let i = shared.next.fetch_add(1, Ordering::Relaxed);
                    if i >= parts {
                        shared.pool.put(buf);
                        return;
                    }
                    (i, buf, None)
                }
            };
            let (off, len) = part_len(i);
            buf.clear();
            buf.resize(len as usize, 0);
            match self.fetch_part(content, file, off, &mut buf, blob, shared, prog) {
                Ok(()) => {
                    if tx.send((i, buf)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    shared.fail(e);
                    return;
                }
            }
        }
    }

    /// Fill `buf` with the blob's bytes from `off`, resuming within the
    /// part after a transient failure. `blob` is the part already opened.
    #[allow(clippy::too_many_arguments)]
    fn fetch_part(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        off: u64,
        buf: &mut [u8],
        mut blob: Option<Blob>,
        shared: &Shared<'_>,
        prog: &Progress<'_>,
    ) -> Result<(), DpError> {
        let len = buf.len();
        let mut got = 0usize;
        let location = || self.backend.blob_location(&file.sha256);
        loop {
            if (prog.cancel)() {
                return Err(DpError::Cancelled);
            }
            if shared.stopped() {
                // Another part failed; its error is the round's.
                return Err(DpError::Cancelled);
            }
            let at = off + got as u64;
            let opened = match blob.take() {
                Some(b) => Ok(b),
                None => self
                    .backend
                    .open_blob(&file.sha256, at, Some((len - got) as u64))
                    .map_err(|e| self.open_err(content, file, e, at)),
            };
            let why = match opened {
                Err(Pass::Fatal(e)) => return Err(*e),
                Err(Pass::Transient(why)) => why,
                Ok(b) if b.whole || b.offset != at => format!(
                    "{}: the server ignored the byte range from byte {at} that it honoured \
                     before",
                    location()
                ),
                Ok(b) => {
                    let mut reader = b.reader;
                    loop {
                        let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) else {
                            // One more read sees the body's end, so that
                            // its connection goes back to the pool for the
                            // next part (an HTTP body is only done once its
                            // end was read). More bytes than asked are
                            // dropped with the connection.
                            let _ = reader.read(&mut [0u8; 1]);
                            return Ok(());
                        };
                        if (prog.cancel)() {
                            return Err(DpError::Cancelled);
                        }
                        if shared.stopped() {
                            return Err(DpError::Cancelled);
                        }
                        match reader.read(rest) {
                            Ok(0) => {
                                break format!(
                                    "{}: the body of bytes {off}-{} ended after {got} bytes",
                                    location(),
                                    off + len as u64 - 1
                                )
                            }
                            Ok(n) => got += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break e.to_string(),
                        }
                    }
                }
            };
            self.transient(content, file, prog, shared.failures, why)?;
        }
    }

    /// A failure on the output's side, named with its path.
    fn cache_error(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &File,
        source: io::Error,
    ) -> DpError {
        DpError::Cache {
            path: super::cache_tmp_path(out),
            what: self.cache_what(content, file),
            source,
        }
    }
}
