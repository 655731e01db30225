//! Fetching FileLib blobs into a local cache, verified as they stream.
//!
//! Each blob is written to a temporary file in the cache, hashed while it is
//! written, and only renamed to `<cache>/<HASH[0..2]>/<HASH>` once the hash
//! matches. A later run (or another package sharing the file) reuses it
//! without downloading again, but hashes it once more before trusting it:
//! the cache is not fsynced (that would cost more than the download on a
//! fast link), so after a crash a file under its hash name could hold
//! other bytes, and re-hashing a local file is cheap next to fetching it.
//! Memory use is a few buffers per download thread.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use capmedia_content::MediaPath;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{BackendError, DpError};
use crate::{ContentFile, Dp, PackageContent};

const BUF: usize = 1 << 20;

/// A local folder of verified blobs keyed by SHA-256.
#[derive(Debug, Clone)]
pub struct ContentCache {
    dir: PathBuf,
}

/// A file of a package, now in the cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FetchedFile {
    pub path: MediaPath,
    pub size: u64,
    pub sha256: String,
    /// Where the verified bytes are.
    pub local: PathBuf,
}

impl ContentCache {
    /// The cache at `dir`, for naming where blobs go, without touching the
    /// disk (a dry run must create nothing). [`ContentCache::open`] before
    /// fetching.
    pub fn at(dir: impl Into<PathBuf>) -> ContentCache {
        ContentCache { dir: dir.into() }
    }

    /// Use (and create) `dir` as the cache.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ContentCache, DpError> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("tmp")).map_err(|source| DpError::Cache {
            path: dir.clone(),
            source,
        })?;
        Ok(ContentCache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where blob `sha256` lives once fetched.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        let up = sha256.to_ascii_uppercase();
        let prefix = up.get(..2).unwrap_or("xx").to_owned();
        self.dir.join(prefix).join(up)
    }

    /// Whether the cache holds a file for `file` with the right size (cheap;
    /// [`ContentCache::verify`] checks the bytes).
    pub fn contains(&self, file: &ContentFile) -> bool {
        fs::metadata(self.path_of(&file.sha256)).is_ok_and(|m| m.is_file() && m.len() == file.size)
    }

    /// Whether the cached bytes of `file` hash to its SHA-256.
    pub fn verify(&self, file: &ContentFile) -> io::Result<bool> {
        let (size, hash) = sha256_file(&self.path_of(&file.sha256))?;
        Ok(size == file.size && hash == file.sha256)
    }
}

/// Size and upper-case hex SHA-256 of a local file, streamed.
pub(crate) fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; BUF];
    let mut n_total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..n]);
        n_total += n as u64;
    }
    Ok((n_total, hex::encode_upper(h.finalize())))
}

/// Run `job` over `items` on up to `threads` threads; the first error stops
/// the others from starting new items and is returned.
pub(crate) fn parallel<T: Sync>(
    items: &[T],
    threads: usize,
    job: impl Fn(&T) -> Result<(), DpError> + Sync,
) -> Result<(), DpError> {
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let first: Mutex<Option<(usize, DpError)>> = Mutex::new(None);
    let worker = || {
        while !stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            if let Err(e) = job(item) {
                stop.store(true, Ordering::Relaxed);
                let mut slot = first.lock().unwrap_or_else(|p| p.into_inner());
                // Keep the error of the earliest item, so results do not
                // depend on thread timing more than they must.
                if slot.as_ref().is_none_or(|(j, _)| i < *j) {
                    *slot = Some((i, e));
                }
            }
        }
    };
    let n = threads.clamp(1, items.len().max(1));
    if n == 1 {
        worker();
    } else {
        thread::scope(|s| {
            for _ in 0..n {
                s.spawn(worker);
            }
        });
    }
    match first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// `f` over `items` on up to `threads` threads, results in item order.
pub(crate) fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let worker = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(i) else { break };
        let r = f(item);
        slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
    };
    let n = threads.clamp(1, items.len().max(1));
    if n == 1 {
        worker();
    } else {
        thread::scope(|s| {
            for _ in 0..n {
                s.spawn(worker);
            }
        });
    }
    slots
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Shared progress of one `fetch`.
struct Progress<'a> {
    done: AtomicU64,
    total: u64,
    callback: &'a (dyn Fn(u64, u64) + Sync),
    cancel: &'a (dyn Fn() -> bool + Sync),
}

impl Progress<'_> {
    fn add(&self, n: u64) {
        let d = self.done.fetch_add(n, Ordering::Relaxed) + n;
        (self.callback)(d.min(self.total), self.total);
    }
    fn sub(&self, n: u64) {
        let d = self.done.fetch_sub(n, Ordering::Relaxed).saturating_sub(n);
        (self.callback)(d.min(self.total), self.total);
    }
}

/// Why one pass over a blob ended early.
enum Pass {
    /// Retry (resuming where possible).
    Transient(String),
    /// Give up at once.
    Fatal(Box<DpError>),
}

impl Dp {
    /// Fetch every file of `content` into `cache`, several at once, and
    /// return where each one is. Files the cache already holds are not
    /// fetched again; files shared within the package are fetched once.
    /// `progress(bytes_done, bytes_total)` is called as bytes arrive, from
    /// the download threads.
    pub fn fetch(
        &self,
        content: &PackageContent,
        cache: &ContentCache,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Vec<FetchedFile>, DpError> {
        self.fetch_with_cancel(content, cache, progress, &|| false)
    }

    /// [`Dp::fetch`], stopping with [`DpError::Cancelled`] soon after
    /// `cancel()` turns true (it is polled between buffers). What was
    /// verified so far stays in the cache; partial files are removed.
    pub fn fetch_with_cancel(
        &self,
        content: &PackageContent,
        cache: &ContentCache,
        progress: &(dyn Fn(u64, u64) + Sync),
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<FetchedFile>, DpError> {
        let mut unique: BTreeMap<&str, &ContentFile> = BTreeMap::new();
        for f in &content.files {
            unique.entry(f.sha256.as_str()).or_insert(f);
        }
        let jobs: Vec<&ContentFile> = unique.into_values().collect();
        let total = jobs.iter().map(|f| f.size).sum();
        let prog = Progress {
            done: AtomicU64::new(0),
            total,
            callback: progress,
            cancel,
        };
        (prog.callback)(0, total);
        parallel(&jobs, self.opts.concurrency, |f| {
            self.fetch_one(content, f, cache, &prog)
        })?;
        Ok(content
            .files
            .iter()
            .map(|f| FetchedFile {
                path: f.path.clone(),
                size: f.size,
                sha256: f.sha256.clone(),
                local: cache.path_of(&f.sha256),
            })
            .collect())
    }

    /// Read at most `max` bytes from the start of `file` without fetching it
    /// whole (a bounded range request over HTTP), e.g. a WIM header.
    pub fn read_head(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        max: u64,
    ) -> Result<Vec<u8>, DpError> {
        self.read_range(content, file, 0, max)
    }

    pub(crate) fn blob_err(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        e: BackendError,
    ) -> DpError {
        match e {
            BackendError::NotFound => DpError::Incomplete {
                dp: self.name.clone(),
                package: content.package.clone(),
                file: file.path.to_string(),
                sha256: file.sha256.clone(),
                detail: format!(
                    "FileLib lacks it ({})",
                    self.backend.blob_location(&file.sha256)
                ),
            },
            e => self.err(e, format!("{} of package {}", file.path, content.package)),
        }
    }

    fn fetch_one(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        cache: &ContentCache,
        prog: &Progress<'_>,
    ) -> Result<(), DpError> {
        if (prog.cancel)() {
            return Err(DpError::Cancelled);
        }
        let cache_err = |path: &Path, source: io::Error| DpError::Cache {
            path: path.to_owned(),
            source,
        };
        if cache.contains(file) {
            match cache.verify(file) {
                Ok(true) => {
                    prog.add(file.size);
                    return Ok(());
                }
                // Not what its name says: fetch it again over it.
                Ok(false) => {}
                Err(e) => return Err(cache_err(&cache.path_of(&file.sha256), e)),
            }
        }
        let final_path = cache.path_of(&file.sha256);
        let mut tmp = NamedTempFile::new_in(cache.dir().join("tmp"))
            .map_err(|e| cache_err(&cache.dir().join("tmp"), e))?;
        let mut mismatches = 0;
        let mut failures = 0u32;
        loop {
            // One whole verification round: from byte 0, resuming within it.
            let mut hasher = PipelinedHasher::new();
            let mut written: u64 = 0;
            tmp.as_file_mut()
                .set_len(0)
                .and_then(|_| tmp.as_file_mut().seek(SeekFrom::Start(0)).map(|_| ()))
                .map_err(|e| cache_err(tmp.path(), e))?;
            loop {
                let pass = self.one_pass(
                    content,
                    file,
                    tmp.as_file_mut(),
                    &mut hasher,
                    &mut written,
                    prog,
                );
                match pass {
                    Ok(()) => break,
                    Err(Pass::Fatal(e)) => {
                        prog.sub(written);
                        return Err(*e);
                    }
                    Err(Pass::Transient(why)) => {
                        failures += 1;
                        if failures > self.opts.retries {
                            prog.sub(written);
                            return Err(DpError::Transfer {
                                dp: self.name.clone(),
                                what: format!("{} of package {}", file.path, content.package),
                                detail: why,
                                attempts: failures,
                            });
                        }
                        thread::sleep(backoff(self.opts.backoff, failures));
                    }
                }
            }
            let actual = hex::encode_upper(hasher.finish());
            if written == file.size && actual == file.sha256 {
                break;
            }
            prog.sub(written);
            mismatches += 1;
            if mismatches >= 2 {
                let actual = if written == file.size {
                    actual
                } else {
                    format!("{actual} over {written} bytes instead of {}", file.size)
                };
                return Err(DpError::HashMismatch {
                    dp: self.name.clone(),
                    package: content.package.clone(),
                    file: file.path.to_string(),
                    expected: file.sha256.clone(),
                    actual,
                });
            }
        }
        if let Some(parent) = final_path.parent() {
            fs::create_dir_all(parent).map_err(|e| cache_err(parent, e))?;
        }
        tmp.persist(&final_path)
            .map_err(|e| cache_err(&final_path, e.error))?;
        Ok(())
    }

    /// Stream the rest of `file` from byte `*written` into `out`, hashing it.
    /// Returns when the expected size is reached (or exceeded: a longer body
    /// is read one buffer past the size so that verification fails) or the
    /// source ends.
    fn one_pass(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &mut File,
        hasher: &mut PipelinedHasher,
        written: &mut u64,
        prog: &Progress<'_>,
    ) -> Result<(), Pass> {
        let cache_err = |e: io::Error| {
            Pass::Fatal(Box::new(DpError::Cache {
                path: PathBuf::from("(temporary file)"),
                source: e,
            }))
        };
        let blob = match self.backend.open_blob(&file.sha256, *written, None) {
            Ok(b) => b,
            Err(BackendError::Transient(why)) => return Err(Pass::Transient(why)),
            Err(e) => return Err(Pass::Fatal(Box::new(self.blob_err(content, file, e)))),
        };
        if blob.offset != *written {
            // The server ignored `Range`: start this round over.
            prog.sub(*written);
            hasher.reset();
            *written = 0;
            out.set_len(0)
                .and_then(|_| out.seek(SeekFrom::Start(0)).map(|_| ()))
                .map_err(cache_err)?;
        }
        let mut reader = blob.reader;
        loop {
            if (prog.cancel)() {
                return Err(Pass::Fatal(Box::new(DpError::Cancelled)));
            }
            let mut buf = hasher.buffer();
            let n = match reader.read(&mut buf) {
                Ok(0) => {
                    hasher.give_back(buf);
                    break;
                }
                Ok(n) => n,
                Err(e) => {
                    hasher.give_back(buf);
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(Pass::Transient(e.to_string()));
                }
            };
            if let Err(e) = out.write_all(&buf[..n]) {
                hasher.give_back(buf);
                return Err(cache_err(e));
            }
            hasher.feed(buf, n);
            *written += n as u64;
            prog.add(n as u64);
            if *written > file.size {
                return Ok(());
            }
        }
        if *written < file.size {
            return Err(Pass::Transient(format!(
                "body ended after {} of {} bytes",
                *written, file.size
            )));
        }
        Ok(())
    }
}

/// Buffers in flight per download: memory stays at `BUFFERS * BUF` per
/// download thread whatever the file size.
const BUFFERS: usize = 4;

enum HashMsg {
    Data(Vec<u8>, usize),
    Reset,
}

/// SHA-256 computed on a helper thread from the buffers the download thread
/// has just written, so that hashing overlaps reading and writing (a second
/// core hashes while the first moves bytes). Buffers go round between the
/// two threads; none is allocated beyond [`BUFFERS`].
struct PipelinedHasher {
    tx: Option<mpsc::SyncSender<HashMsg>>,
    returned: mpsc::Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    allocated: usize,
    handle: Option<thread::JoinHandle<Sha256>>,
}

impl PipelinedHasher {
    fn new() -> Self {
        let (tx, rx) = mpsc::sync_channel::<HashMsg>(BUFFERS);
        let (ret_tx, returned) = mpsc::channel::<Vec<u8>>();
        let handle = thread::spawn(move || {
            let mut h = Sha256::new();
            for msg in rx {
                match msg {
                    HashMsg::Data(buf, n) => {
                        h.update(&buf[..n]);
                        let _ = ret_tx.send(buf);
                    }
                    HashMsg::Reset => h = Sha256::new(),
                }
            }
            h
        });
        PipelinedHasher {
            tx: Some(tx),
            returned,
            spare: Vec::new(),
            allocated: 0,
            handle: Some(handle),
        }
    }

    /// A free buffer, waiting for the hasher to hand one back if all are
    /// in flight.
    fn buffer(&mut self) -> Vec<u8> {
        while let Ok(b) = self.returned.try_recv() {
            self.spare.push(b);
        }
        if let Some(b) = self.spare.pop() {
            return b;
        }
        if self.allocated < BUFFERS {
            self.allocated += 1;
            return vec![0u8; BUF];
        }
        // The hasher thread only ends when `tx` is dropped, so a buffer
        // comes back unless it died; then a fresh one keeps us going (the
        // hash will be wrong and verification fails).
        self.returned.recv().unwrap_or_else(|_| vec![0u8; BUF])
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    fn feed(&mut self, buf: Vec<u8>, n: usize) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(HashMsg::Data(buf, n));
        }
    }

    fn reset(&mut self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(HashMsg::Reset);
        }
    }

    /// The digest of everything fed since the last reset.
    fn finish(mut self) -> [u8; 32] {
        self.tx = None;
        let h = self
            .handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        h.finalize().into()
    }
}

impl Drop for PipelinedHasher {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub(crate) fn backoff(base: Duration, failure: u32) -> Duration {
    base.saturating_mul(1u32 << failure.saturating_sub(1).min(6))
}
