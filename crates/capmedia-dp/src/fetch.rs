//! Fetching FileLib blobs into a local cache, verified as they stream.
//!
//! Each blob is written to a temporary file in the cache, hashed while it is
//! written, and only renamed to `<cache>/<HASH[0..2]>/<HASH>` once the hash
//! matches. Then it is sealed: its modification time is set two seconds
//! into the past and a stamp, `<cache>/stamps/<HASH>`, records its size,
//! that mtime, its device and inode, the SHA-256 it was verified against
//! and its BLAKE3, with a BLAKE3 seal over those fields (a torn or edited
//! stamp is not trusted). A later run (or another package sharing the
//! file) whose stamp still matches the file takes it as it is: no DP read,
//! no re-hash. Any write to the file after sealing, even in the same clock
//! tick, moves its mtime past the stamped one (which lies in the past), and
//! a replaced file has another inode: such an entry is hashed again, and
//! fetched again if it no longer matches. `DpOptions::verify_cache` re-hashes
//! every entry. What a stamp cannot see (the bytes changed and the mtime put
//! back, or lost by a crash before writeback: the cache is not fsynced, which
//! would cost more than the download on a fast link) reaches the medium and
//! is caught by its read-back, which compares it with the BLAKE3 the stamp
//! recorded when the bytes were verified (the driver then names the cache
//! entry and removes it).
//! Memory use is a few buffers per download thread.
//!
//! A blob the backend can open as a local file (the path backend) is copied
//! by the kernel (`copy_file_range`, so a file system that can share extents
//! or copy server-side does so) while a second thread hashes the copy's
//! bytes back from the page cache: what is verified is what the cache holds,
//! and the copy and the hashing run on two cores at once.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread;
use std::time::Duration;

use std::os::unix::fs::FileExt;

use capmedia_content::{MediaPath, PackageId};
use sha2::{Digest, Sha256};

use crate::backend::Blob;
use crate::error::{BackendError, DpError};
use crate::{ContentFile, Dp, PackageContent};

const BUF: usize = 1 << 20;
/// Bytes per `copy_file_range` round for local blobs: large enough that the
/// kernel copies in big runs, small enough that the hashing thread reads
/// them back while they are still in the page cache.
const COPY_CHUNK: u64 = 8 << 20;

mod ranged;

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
    /// The BLAKE3 of the same bytes, computed in the pass that verified
    /// them, when [`crate::DpOptions::blake3`] asked for it.
    pub blake3: Option<String>,
    /// Where the verified bytes are.
    pub local: PathBuf,
    /// Taken from the cache on its stamp, without reading it: a read-back
    /// that finds these bytes wrong points at a damaged cache entry.
    pub trusted: bool,
}

/// A cache entry whose stamp still matches it ([`ContentCache::trusted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedEntry {
    /// The BLAKE3 recorded when the entry was verified, if it was computed.
    pub blake3: Option<String>,
}

/// A stamp is a few hundred bytes; anything larger is not one.
const STAMP_LIMIT: u64 = 4096;
/// The BLAKE3 key-derivation context of stamp seals.
const STAMP_CONTEXT: &str = "capmedia 2026-12 content cache stamp v1";
/// How far into the past a sealed entry's mtime is set, so that a write in
/// the same clock tick as the seal still changes it.
const STAMP_BACKDATE: Duration = Duration::from_secs(2);

impl ContentCache {
    /// The cache at `dir`, for naming where blobs go, without touching the
    /// disk (a dry run must create nothing). [`ContentCache::open`] before
    /// fetching.
    pub fn at(dir: impl Into<PathBuf>) -> ContentCache {
        ContentCache { dir: dir.into() }
    }

    /// Use (and create) `dir` as the cache. Partial downloads that killed
    /// runs left in `tmp/` are removed (never a live run's: they are named
    /// by `capmedia-tempfile` with their owner).
    pub fn open(dir: impl Into<PathBuf>) -> Result<ContentCache, DpError> {
        let dir = dir.into();
        fs::create_dir_all(dir.join("tmp")).map_err(|source| DpError::Cache {
            path: dir.clone(),
            what: "creating the cache folder".into(),
            source,
        })?;
        let cache = ContentCache { dir };
        cache.clean()?;
        Ok(cache)
    }

    /// Remove what dead runs left in the cache (partial downloads); returns
    /// what was removed. `capmedia cache clean` and every fetch call it.
    pub fn clean(&self) -> Result<Vec<PathBuf>, DpError> {
        let tmp = self.dir.join("tmp");
        let mut removed =
            capmedia_tempfile::remove_stale(&tmp).map_err(|source| DpError::Cache {
                path: tmp,
                what: "removing a dead run's partial download".into(),
                source,
            })?;
        // A stamp whose blob is gone (removed by hand, or by an older
        // capmedia's `cache clean`) proves nothing and would only pile up.
        let stamps = self.dir.join("stamps");
        if let Ok(rd) = fs::read_dir(&stamps) {
            for d in rd.flatten() {
                let Some(sha) = d.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if !self.path_of(&sha).exists() && fs::remove_file(d.path()).is_ok() {
                    removed.push(d.path());
                }
            }
        }
        Ok(removed)
    }

    /// The blobs the cache holds (path, size), for `capmedia cache list`.
    pub fn blobs(&self) -> Result<Vec<(PathBuf, u64)>, DpError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| DpError::Cache {
                path,
                what: "listing the cache".into(),
                source,
            }
        };
        let mut out = Vec::new();
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Ok(out);
        };
        for d in rd {
            let d = d.map_err(err(&self.dir))?;
            let name = d.file_name();
            let Some(prefix) = name.to_str() else {
                continue;
            };
            if prefix.len() != 2 || !d.path().is_dir() {
                continue;
            }
            for f in fs::read_dir(d.path()).map_err(err(&d.path()))? {
                let f = f.map_err(err(&d.path()))?;
                let m = f.metadata().map_err(err(&f.path()))?;
                if m.is_file() {
                    out.push((f.path(), m.len()));
                }
            }
        }
        out.sort();
        Ok(out)
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

    /// Where the stamp of blob `sha256` lives.
    fn stamp_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("stamps").join(sha256.to_ascii_uppercase())
    }

    /// The entry of `file`, if its sealed stamp still matches the file
    /// (size, mtime, device and inode) and names `file`'s size and SHA-256:
    /// trusted without reading a byte of it.
    pub fn trusted(&self, file: &ContentFile) -> Option<TrustedEntry> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(self.path_of(&file.sha256)).ok()?;
        if !meta.is_file() || meta.len() != file.size {
            return None;
        }
        let mut text = String::new();
        File::open(self.stamp_path(&file.sha256))
            .ok()?
            .take(STAMP_LIMIT)
            .read_to_string(&mut text)
            .ok()?;
        let stamp = Stamp::parse(&text)?;
        let now = Stamp {
            sha256: file.sha256.to_ascii_uppercase(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            inode: (meta.dev(), meta.ino()),
            blake3: stamp.blake3.clone(),
        };
        (stamp == now).then_some(TrustedEntry {
            blake3: stamp.blake3,
        })
    }

    /// The entry of `file` trusted again by hashing it where it is: an
    /// entry of the right size whose stamp is missing, no longer matches,
    /// or lacks the BLAKE3, is hashed (SHA-256 and BLAKE3, in one read of
    /// the local bytes, no DP read) and, if its SHA-256 is `file`'s,
    /// sealed. `Ok(None)`: no such entry, or its bytes are not `file`'s
    /// (the caller fetches it again).
    pub fn revalidate(&self, file: &ContentFile) -> io::Result<Option<TrustedEntry>> {
        if !self.contains(file) {
            return Ok(None);
        }
        Ok(self.verify_digests(file, true)?.map(|done| {
            self.seal(file, done.blake3.as_deref());
            TrustedEntry {
                blake3: done.blake3,
            }
        }))
    }

    /// Seal the verified entry of `file`: back-date its mtime and write its
    /// stamp. Best effort: an entry left unsealed is only hashed again by
    /// the next run.
    fn seal(&self, file: &ContentFile, blake3: Option<&str>) {
        use std::os::unix::fs::MetadataExt;
        let path = self.path_of(&file.sha256);
        let sealed = (|| -> io::Result<()> {
            let f = fs::OpenOptions::new().write(true).open(&path)?;
            let past = std::time::SystemTime::now()
                .checked_sub(STAMP_BACKDATE)
                .unwrap_or(std::time::UNIX_EPOCH);
            f.set_modified(past)?;
            let meta = f.metadata()?;
            drop(f);
            let stamp = Stamp {
                sha256: file.sha256.to_ascii_uppercase(),
                size: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                inode: (meta.dev(), meta.ino()),
                blake3: blake3.map(str::to_owned),
            };
            let dir = self.dir.join("stamps");
            fs::create_dir_all(&dir)?;
            // Written beside the cache's partial files and renamed: a
            // reader sees the old stamp or the new one, never half of one.
            let tmp = self
                .dir
                .join("tmp")
                .join(capmedia_tempfile::temp_name("stamp"));
            let guard = capmedia_tempfile::TempPath::new(tmp.clone());
            fs::write(&tmp, stamp.render())?;
            fs::rename(&tmp, self.stamp_path(&file.sha256))?;
            guard.keep();
            Ok(())
        })();
        if sealed.is_err() {
            let _ = fs::remove_file(self.stamp_path(&file.sha256));
        }
    }

    /// Make `path` (a streamed blob, verified by [`Dp::stream_blob`], on the
    /// cache's file system) the cache's entry for `file`, without copying:
    /// a hard link, so the stream file and the entry share their bytes.
    /// Returns whether the entry was made; a cache on a file system without
    /// links just stays without it (the capture does not need it).
    pub fn adopt(&self, file: &ContentFile, path: &Path, blake3: &str) -> bool {
        let dest = self.path_of(&file.sha256);
        let linked = dest
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| match fs::remove_file(&dest) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => fs::hard_link(path, &dest),
            });
        if linked.is_err() {
            return false;
        }
        self.seal(file, Some(blake3));
        true
    }

    /// Remove the entry of blob `sha256` and its stamp (a read-back found
    /// its bytes damaged), so that the next run fetches it again.
    pub fn forget(&self, sha256: &str) -> io::Result<()> {
        for p in [self.stamp_path(sha256), self.path_of(sha256)] {
            match fs::remove_file(&p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the cached bytes of `file` hash to its SHA-256.
    pub fn verify(&self, file: &ContentFile) -> io::Result<bool> {
        Ok(self.verify_digests(file, false)?.is_some())
    }

    /// The cached bytes' digests if they hash to `file`'s SHA-256 (and its
    /// BLAKE3 too, computed in the same read, if `blake3`).
    fn verify_digests(&self, file: &ContentFile, blake3: bool) -> io::Result<Option<Finished>> {
        let (size, done) = digest_file(&self.path_of(&file.sha256), blake3)?;
        Ok((size == file.size && done.sha256 == file.sha256).then_some(done))
    }
}

/// What proves a cache entry unchanged since it was verified; see the
/// module comment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    sha256: String,
    size: u64,
    /// Seconds and nanoseconds.
    mtime: (i64, i64),
    /// Device and inode number.
    inode: (u64, u64),
    blake3: Option<String>,
}

impl Stamp {
    fn fields(&self) -> String {
        format!(
            "capmedia-cache-stamp 1\nsha256 {}\nsize {}\nmtime {} {}\ninode {} {}\nblake3 {}\n",
            self.sha256,
            self.size,
            self.mtime.0,
            self.mtime.1,
            self.inode.0,
            self.inode.1,
            self.blake3.as_deref().unwrap_or("-")
        )
    }

    fn seal_of(fields: &str) -> String {
        let mut h = blake3::Hasher::new_derive_key(STAMP_CONTEXT);
        h.update(fields.as_bytes());
        h.finalize().to_hex().to_string()
    }

    fn render(&self) -> String {
        let fields = self.fields();
        let seal = Stamp::seal_of(&fields);
        format!("{fields}seal {seal}\n")
    }

    /// A stamp as [`Stamp::render`] wrote it, its seal checked; `None` for
    /// anything else.
    fn parse(text: &str) -> Option<Stamp> {
        let (fields, seal_line) = text.strip_suffix('\n')?.rsplit_once('\n')?;
        let fields = format!("{fields}\n");
        if seal_line.strip_prefix("seal ")? != Stamp::seal_of(&fields) {
            return None;
        }
        let mut lines = fields.lines();
        if lines.next()? != "capmedia-cache-stamp 1" {
            return None;
        }
        let mut value = |key: &str| lines.next()?.strip_prefix(key)?.strip_prefix(' ');
        let sha256 = value("sha256")?.to_owned();
        let size = value("size")?.parse().ok()?;
        let (s, ns) = value("mtime")?.split_once(' ')?;
        let mtime = (s.parse().ok()?, ns.parse().ok()?);
        let (d, i) = value("inode")?.split_once(' ')?;
        let inode = (d.parse().ok()?, i.parse().ok()?);
        let blake3 = match value("blake3")? {
            "-" => None,
            b => Some(b.to_owned()),
        };
        let stamp = Stamp {
            sha256,
            size,
            mtime,
            inode,
            blake3,
        };
        // Exactly what render would write: nothing extra was accepted.
        (stamp.fields() == fields).then_some(stamp)
    }
}

/// SHA-256 of a blob and, when asked for, its BLAKE3: both from one pass
/// over the bytes, the two hashes on two cores.
struct Digests {
    sha256: Sha256,
    blake3: Option<blake3::Hasher>,
}

/// What [`Digests`] found, in upper-case (SHA-256, as DataLib writes it) and
/// lower-case (BLAKE3, as the manifest does) hex.
struct Finished {
    sha256: String,
    blake3: Option<String>,
}

impl Digests {
    fn new(blake3: bool) -> Self {
        Digests {
            sha256: Sha256::new(),
            blake3: blake3.then(blake3::Hasher::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        let Digests { sha256, blake3 } = self;
        match blake3 {
            // Small buffers are not worth a thread.
            Some(b) if data.len() >= 256 << 10 => thread::scope(|s| {
                s.spawn(|| b.update(data));
                sha256.update(data);
            }),
            Some(b) => {
                b.update(data);
                sha256.update(data);
            }
            None => sha256.update(data),
        }
    }

    fn finish(self) -> Finished {
        Finished {
            sha256: hex::encode_upper(self.sha256.finalize()),
            blake3: self.blake3.map(|b| b.finalize().to_hex().to_string()),
        }
    }
}

/// Size and upper-case hex SHA-256 of a local file, streamed.
pub(crate) fn sha256_file(path: &Path) -> io::Result<(u64, String)> {
    let (size, done) = digest_file(path, false)?;
    Ok((size, done.sha256))
}

/// Feed `len` bytes of `f` from `offset` into `d`; returns how many were
/// there.
fn digest_range(f: &File, offset: u64, len: u64, d: &mut Digests) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF.min(len as usize)];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        let piece = buf.get_mut(..n).unwrap_or_default();
        f.read_exact_at(piece, offset + done)?;
        d.update(piece);
        done += n as u64;
    }
    Ok(done)
}

/// Size and digests of a local file, streamed.
fn digest_file(path: &Path, blake3: bool) -> io::Result<(u64, Finished)> {
    let mut f = File::open(path)?;
    let mut d = Digests::new(blake3);
    let mut buf = vec![0u8; BUF];
    let mut size = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        d.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, d.finish()))
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

/// What a fetch reports as it goes, from the download threads
/// ([`Dp::fetch_events`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum FetchEvent<'a> {
    /// Bytes fetched and verified so far, of `total` (it goes back when a
    /// file is fetched again).
    Progress { done: u64, total: u64 },
    /// One file failed transiently and will be tried again after `wait`:
    /// `attempt` is the attempt about to start, of at most `attempts`.
    /// Its `Display` reads `retrying <file> (attempt 2 of 5): <reason>`.
    Retry {
        file: &'a MediaPath,
        package: &'a PackageId,
        attempt: u32,
        attempts: u32,
        reason: &'a str,
        wait: Duration,
    },
}

impl std::fmt::Display for FetchEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchEvent::Progress { done, total } => write!(f, "{done} of {total} bytes"),
            FetchEvent::Retry {
                file,
                attempt,
                attempts,
                reason,
                ..
            } => write!(
                f,
                "retrying {file} (attempt {attempt} of {attempts}): {reason}"
            ),
        }
    }
}

/// Shared progress of one `fetch`.
struct Progress<'a> {
    done: AtomicU64,
    total: u64,
    events: &'a (dyn Fn(FetchEvent<'_>) + Sync),
    cancel: &'a (dyn Fn() -> bool + Sync),
}

impl Progress<'_> {
    fn add(&self, n: u64) {
        let d = self.done.fetch_add(n, Ordering::Relaxed) + n;
        self.report(d);
    }
    fn sub(&self, n: u64) {
        let d = self.done.fetch_sub(n, Ordering::Relaxed).saturating_sub(n);
        self.report(d);
    }
    fn report(&self, done: u64) {
        (self.events)(FetchEvent::Progress {
            done: done.min(self.total),
            total: self.total,
        });
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
        let events = |e: FetchEvent<'_>| {
            if let FetchEvent::Progress { done, total } = e {
                progress(done, total);
            }
        };
        self.fetch_events(content, cache, &events, cancel)
    }

    /// The fetch on capmedia's progress-and-cancel convention
    /// (`capmedia_content::{Progress, Cancel}`): phase `fetch` as bytes are
    /// verified, each retry as a message (`retrying <file> (attempt 2 of 5):
    /// <reason>`) as it is decided, and a stop between chunks when asked.
    pub fn fetch_with(
        &self,
        content: &PackageContent,
        cache: &ContentCache,
        progress: &dyn capmedia_content::Progress,
        cancel: &dyn capmedia_content::Cancel,
    ) -> Result<Vec<FetchedFile>, DpError> {
        let events = |e: FetchEvent<'_>| match e {
            FetchEvent::Progress { done, total } => progress.update("fetch", done, total),
            retry => progress.message(&retry.to_string()),
        };
        self.fetch_events(content, cache, &events, &|| cancel.is_cancelled())
    }

    /// [`Dp::fetch_with_cancel`] reporting every [`FetchEvent`]: progress
    /// as bytes arrive, and each retry as it is decided (so that a caller
    /// can show `retrying <file> (attempt 2 of 5): <reason>`).
    pub fn fetch_events(
        &self,
        content: &PackageContent,
        cache: &ContentCache,
        events: &(dyn Fn(FetchEvent<'_>) + Sync),
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<Vec<FetchedFile>, DpError> {
        let mut unique: BTreeMap<&str, &ContentFile> = BTreeMap::new();
        for f in &content.files {
            unique.entry(f.sha256.as_str()).or_insert(f);
        }
        let mut jobs: Vec<&ContentFile> = unique.into_values().collect();
        // Largest first: the big WIM starts at once and the small files
        // fill the other threads around it, so no thread is left with a
        // big file at the end.
        jobs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.sha256.cmp(&b.sha256)));
        let total = jobs.iter().map(|f| f.size).sum();
        let prog = Progress {
            done: AtomicU64::new(0),
            total,
            events,
            cancel,
        };
        prog.report(0);
        // Per blob: its BLAKE3 (if computed) and whether it was trusted on
        // its stamp.
        let found: Mutex<BTreeMap<String, (Option<String>, bool)>> = Mutex::new(BTreeMap::new());
        parallel(&jobs, self.opts.concurrency, |f| {
            let (done, trusted) = self.fetch_one(content, f, cache, &prog)?;
            found
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(f.sha256.clone(), (done.blake3, trusted));
            Ok(())
        })?;
        let found = found.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok(content
            .files
            .iter()
            .map(|f| {
                let (blake3, trusted) = found.get(&f.sha256).cloned().unwrap_or((None, false));
                FetchedFile {
                    path: f.path.clone(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                    blake3,
                    local: cache.path_of(&f.sha256),
                    trusted,
                }
            })
            .collect())
    }

    /// Fetch one blob straight into `out` (a new, empty file the caller
    /// reads as it grows: a streamed capture), hashing it as it arrives, and
    /// return its BLAKE3 once its size and SHA-256 matched the DP's.
    ///
    /// `out` only grows, front to back: a large HTTP blob fetched as
    /// parallel ranges is appended part after part in order, and a retry
    /// after a transient failure resumes from the bytes `out` already holds
    /// (a byte range over HTTP, a seek on a path or SMB DP; a server that
    /// ignores `Range` resends the start, which is read and dropped).
    /// Unlike [`Dp::fetch`] a mismatch is not fetched again: a reader has
    /// already taken the bytes, so the blob fails at once (the reader's
    /// sink then commits nothing) with [`DpError::StreamMismatch`] naming the
    /// file. `progress(done)` is called with this blob's bytes so far. Put
    /// the blob into the cache afterwards with [`ContentCache::adopt`].
    pub fn stream_blob(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &mut File,
        progress: &(dyn Fn(u64) + Sync),
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<String, DpError> {
        let events = |e: FetchEvent<'_>| {
            if let FetchEvent::Progress { done, .. } = e {
                progress(done);
            }
        };
        self.stream_blob_events(content, file, out, &events, cancel)
    }

    /// [`Dp::stream_blob`] reporting every [`FetchEvent`]: this blob's
    /// bytes so far (of its size), and each retry as it is decided.
    pub fn stream_blob_events(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &mut File,
        events: &(dyn Fn(FetchEvent<'_>) + Sync),
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Result<String, DpError> {
        let prog = Progress {
            done: AtomicU64::new(0),
            total: file.size,
            events,
            cancel,
        };
        let failures = AtomicU32::new(0);
        let (written, done) = match self.backend.local_blob(&file.sha256) {
            Some(src) => self.copy_round(content, file, &src, out, &prog, &failures)?,
            None => self.stream_round(content, file, out, &prog, &failures)?,
        };
        if written != file.size || done.sha256 != file.sha256.to_ascii_uppercase() {
            let actual = mismatch(&done.sha256, written, file.size);
            return Err(DpError::StreamMismatch {
                dp: self.name.clone(),
                package: content.package.clone(),
                file: file.path.to_string(),
                expected: file.sha256.clone(),
                actual,
            });
        }
        done.blake3.ok_or_else(|| DpError::Cache {
            path: cache_tmp_path(out),
            what: self.cache_what(content, file),
            source: io::Error::other("a streamed fetch needs DpOptions::blake3"),
        })
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
            BackendError::Short(detail) => DpError::Incomplete {
                dp: self.name.clone(),
                package: content.package.clone(),
                file: file.path.to_string(),
                sha256: file.sha256.clone(),
                detail: format!(
                    "the DP's copy is shorter than the {} bytes DataLib records: {detail}",
                    file.size
                ),
            },
            e => self.err(e, format!("{} of package {}", file.path, content.package)),
        }
    }

    /// What a cache error was about, for its message.
    fn cache_what(&self, content: &PackageContent, file: &ContentFile) -> String {
        format!(
            "writing {} of package {} (SHA-256 {}) from DP {}",
            file.path, content.package, file.sha256, self.name
        )
    }

    /// Fetch one blob into the cache (or find it there) and return its
    /// digests, and whether the cache's copy was trusted on its stamp.
    fn fetch_one(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        cache: &ContentCache,
        prog: &Progress<'_>,
    ) -> Result<(Finished, bool), DpError> {
        if (prog.cancel)() {
            return Err(DpError::Cancelled);
        }
        let cache_err = |path: &Path, source: io::Error| DpError::Cache {
            path: path.to_owned(),
            what: self.cache_what(content, file),
            source,
        };
        if !self.opts.verify_cache {
            if let Some(t) = cache.trusted(file) {
                // A stamp without the BLAKE3 asked for: hash it once more.
                if t.blake3.is_some() || !self.opts.blake3 {
                    prog.add(file.size);
                    let done = Finished {
                        sha256: file.sha256.to_ascii_uppercase(),
                        blake3: t.blake3,
                    };
                    return Ok((done, true));
                }
            }
        }
        if cache.contains(file) {
            match cache.verify_digests(file, self.opts.blake3) {
                Ok(Some(done)) => {
                    cache.seal(file, done.blake3.as_deref());
                    prog.add(file.size);
                    return Ok((done, false));
                }
                // Not what its name says: fetch it again over it.
                Ok(None) => {}
                Err(e) => return Err(cache_err(&cache.path_of(&file.sha256), e)),
            }
        }
        let final_path = cache.path_of(&file.sha256);
        // Named with its owner, so a later run can tell it from a live
        // run's and remove it if this process dies.
        let tmp_path = cache
            .dir()
            .join("tmp")
            .join(capmedia_tempfile::temp_name(&file.sha256));
        let mut tmp_file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| cache_err(&tmp_path, e))?;
        let tmp = capmedia_tempfile::TempPath::new(tmp_path.clone());
        let mut mismatches = 0;
        let failures = AtomicU32::new(0);
        let done = loop {
            // One whole verification round: from byte 0, resuming within it.
            tmp_file
                .set_len(0)
                .and_then(|_| tmp_file.seek(SeekFrom::Start(0)).map(|_| ()))
                .map_err(|e| cache_err(tmp.path(), e))?;
            let (written, done) = match self.backend.local_blob(&file.sha256) {
                Some(src) => {
                    self.copy_round(content, file, &src, &mut tmp_file, prog, &failures)?
                }
                None => self.stream_round(content, file, &mut tmp_file, prog, &failures)?,
            };
            if written == file.size && done.sha256 == file.sha256 {
                break done;
            }
            prog.sub(written);
            mismatches += 1;
            if mismatches < 2 {
                let reason = format!(
                    "the bytes from {} did not match their SHA-256",
                    self.backend.blob_location(&file.sha256)
                );
                (prog.events)(FetchEvent::Retry {
                    file: &file.path,
                    package: &content.package,
                    attempt: 2,
                    attempts: 2,
                    reason: &reason,
                    wait: Duration::ZERO,
                });
            } else {
                let actual = mismatch(&done.sha256, written, file.size);
                return Err(DpError::HashMismatch {
                    dp: self.name.clone(),
                    package: content.package.clone(),
                    file: file.path.to_string(),
                    expected: file.sha256.clone(),
                    actual,
                });
            }
        };
        if let Some(parent) = final_path.parent() {
            fs::create_dir_all(parent).map_err(|e| cache_err(parent, e))?;
        }
        drop(tmp_file);
        fs::rename(&tmp_path, &final_path).map_err(|e| cache_err(&final_path, e))?;
        tmp.keep();
        cache.seal(file, done.blake3.as_deref());
        Ok((done, false))
    }

    /// Count a transient failure: wait before the next attempt, or give up
    /// with the reason once the retries are spent. `failures` counts the
    /// blob's failures so far, in all its parallel parts together.
    fn transient(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        prog: &Progress<'_>,
        failures: &AtomicU32,
        why: String,
    ) -> Result<(), DpError> {
        let failures = failures.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if failures > self.opts.retries {
            return Err(DpError::Transfer {
                dp: self.name.clone(),
                what: format!("{} of package {}", file.path, content.package),
                detail: why,
                attempts: failures,
            });
        }
        let wait = backoff(self.opts.backoff, failures);
        (prog.events)(FetchEvent::Retry {
            file: &file.path,
            package: &content.package,
            attempt: failures + 1,
            attempts: self.opts.retries.saturating_add(1),
            reason: &why,
            wait,
        });
        thread::sleep(wait);
        Ok(())
    }

    /// One verification round over a stream (HTTP, SMB, or a path blob that
    /// could not be opened as a file): passes resume where the last one
    /// broke off until the whole blob is in `out`. Returns the bytes written
    /// and their digests. A large HTTP blob goes as parallel byte ranges
    /// ([`Dp::ranged_round`]) unless another blob already does.
    fn stream_round(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &mut File,
        prog: &Progress<'_>,
        failures: &AtomicU32,
    ) -> Result<(u64, Finished), DpError> {
        let mut first = None;
        let part = self.opts.range_part;
        if part > 0
            && file.size >= self.opts.range_min
            && file.size > part
            && self.backend.parallel_ranges()
            && !self.ranged_busy.swap(true, Ordering::AcqRel)
        {
            let r = self.ranged_round(content, file, out, prog, failures);
            self.ranged_busy.store(false, Ordering::Release);
            match r? {
                ranged::Ranged::Done(written, done) => return Ok((written, done)),
                // The server ignored the range: its answer is the whole
                // blob, read as one stream below (no second request).
                ranged::Ranged::Whole(blob) => first = Some(blob),
            }
        }
        let mut hasher = PipelinedHasher::new(self.opts.blake3);
        let mut written: u64 = 0;
        loop {
            match self.one_pass(
                content,
                file,
                out,
                &mut hasher,
                &mut written,
                prog,
                &mut first,
            ) {
                Ok(()) => break,
                Err(Pass::Fatal(e)) => {
                    prog.sub(written);
                    return Err(*e);
                }
                Err(Pass::Transient(why)) => {
                    if let Err(e) = self.transient(content, file, prog, failures, why) {
                        prog.sub(written);
                        return Err(e);
                    }
                }
            }
        }
        Ok((written, hasher.finish()))
    }

    /// One verification round for a blob the backend has as a local file:
    /// the kernel copies it into `out` in chunks while a second thread
    /// reads each copied chunk back from `out` and hashes it. A transient
    /// failure resumes from `out`'s length (the bytes a failed copy put
    /// there are hashed from `out` first): `out` only grows, as a streamed
    /// capture's reader needs.
    fn copy_round(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        src: &File,
        out: &mut File,
        prog: &Progress<'_>,
        failures: &AtomicU32,
    ) -> Result<(u64, Finished), DpError> {
        let tmp_path = cache_tmp_path(out);
        let cache_err = |source: io::Error| DpError::Cache {
            path: tmp_path.clone(),
            what: self.cache_what(content, file),
            source,
        };
        let location = self.backend.blob_location(&file.sha256);
        let mut digests = Digests::new(self.opts.blake3);
        let mut written = 0u64;
        // Where the last round found the source's end, if short of the
        // size: finding it there again means the DP's copy is short.
        let mut ended_at: Option<u64> = None;
        loop {
            let reread = out.try_clone().map_err(cache_err)?;
            let (tx, rx) = mpsc::sync_channel::<(u64, u64)>(BUFFERS);
            let hashing = thread::spawn(move || -> (Digests, io::Result<()>) {
                let mut buf = vec![0u8; BUF];
                for (offset, len) in rx {
                    // In buffer-sized pieces: memory stays at one buffer
                    // per download whatever the chunk size.
                    let mut done = 0u64;
                    while done < len {
                        let n = (len - done).min(BUF as u64) as usize;
                        let piece = buf.get_mut(..n).unwrap_or_default();
                        if let Err(e) = reread.read_exact_at(piece, offset + done) {
                            return (digests, Err(e));
                        }
                        digests.update(piece);
                        done += n as u64;
                    }
                }
                (digests, Ok(()))
            });
            let copied: Result<(), Pass> = (|| {
                let mut from = src;
                from.seek(SeekFrom::Start(written))
                    .map_err(|e| Pass::Transient(format!("{location}: {e}")))?;
                out.seek(SeekFrom::Start(written))
                    .map_err(|e| Pass::Fatal(Box::new(cache_err(e))))?;
                loop {
                    if (prog.cancel)() {
                        return Err(Pass::Fatal(Box::new(DpError::Cancelled)));
                    }
                    // `io::copy` between files is `copy_file_range` on
                    // Linux, with its own fallback where that is refused.
                    let n = io::copy(&mut from.take(COPY_CHUNK), out).map_err(|e| {
                        match e.kind() {
                            // The cache's side: no retry will help.
                            io::ErrorKind::StorageFull
                            | io::ErrorKind::QuotaExceeded
                            | io::ErrorKind::ReadOnlyFilesystem => {
                                Pass::Fatal(Box::new(cache_err(e)))
                            }
                            _ => Pass::Transient(format!("{location}: {e}")),
                        }
                    })?;
                    if n == 0 {
                        if written >= file.size {
                            return Ok(());
                        }
                        // Short of the size DataLib records: a copy still
                        // being written, or a read that stopped early. Once
                        // more from here; found short again, it is short.
                        if ended_at == Some(written) {
                            let why = format!(
                                "its body ended after {written} bytes, and {location} ends there"
                            );
                            return Err(Pass::Fatal(Box::new(self.blob_err(
                                content,
                                file,
                                BackendError::Short(why),
                            ))));
                        }
                        ended_at = Some(written);
                        return Err(Pass::Transient(format!(
                            "{location}: the file ended after {written} of {} bytes",
                            file.size
                        )));
                    }
                    // The hashing thread only ends early on a read error,
                    // which `join` below reports.
                    if tx.send((written, n)).is_err() {
                        return Ok(());
                    }
                    written += n;
                    prog.add(n);
                    if written > file.size {
                        return Ok(());
                    }
                }
            })();
            drop(tx);
            let (d, hashed) = hashing.join().unwrap_or_else(|_| {
                (
                    Digests::new(self.opts.blake3),
                    Err(io::Error::other("the hashing thread panicked")),
                )
            });
            digests = d;
            let resumed = match (copied, hashed) {
                (Ok(()), Ok(())) => return Ok((written, digests.finish())),
                (Err(Pass::Fatal(e)), _) => Err(*e),
                (_, Err(e)) => Err(cache_err(e)),
                (Err(Pass::Transient(why)), Ok(())) => (|| {
                    // A copy that failed part way may have put bytes in
                    // `out` beyond those counted: they stay, hashed from
                    // `out`, and the next round resumes after them.
                    let have = out.metadata().map_err(cache_err)?.len();
                    if have > written {
                        let extra = digest_range(out, written, have - written, &mut digests)
                            .map_err(cache_err)?;
                        written += extra;
                        prog.add(extra);
                    }
                    self.transient(content, file, prog, failures, why)
                })(),
            };
            if let Err(e) = resumed {
                prog.sub(written);
                return Err(e);
            }
        }
    }

    /// Stream the rest of `file` from byte `*written` into `out`, hashing it.
    /// Returns when the expected size is reached (or exceeded: a longer body
    /// is read one buffer past the size so that verification fails) or the
    /// source ends. `first`, if given, is the blob already opened from
    /// byte `*written` (or whole).
    #[allow(clippy::too_many_arguments)]
    fn one_pass(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        out: &mut File,
        hasher: &mut PipelinedHasher,
        written: &mut u64,
        prog: &Progress<'_>,
        first: &mut Option<Blob>,
    ) -> Result<(), Pass> {
        let tmp_path = cache_tmp_path(out);
        let cache_err = |e: io::Error| {
            Pass::Fatal(Box::new(DpError::Cache {
                path: tmp_path.clone(),
                what: self.cache_what(content, file),
                source: e,
            }))
        };
        let blob = match first.take() {
            Some(b) => b,
            None => self
                .backend
                .open_blob(&file.sha256, *written, None)
                .map_err(|e| self.open_err(content, file, e, *written))?,
        };
        let mut reader = blob.reader;
        if blob.offset != *written {
            // The server ignored `Range` and sends the blob from its start:
            // the bytes `out` already has are read and dropped, never
            // written again. `out` only grows (a streamed capture's reader
            // has taken them), and what was hashed stays hashed.
            let skip = written.checked_sub(blob.offset).ok_or_else(|| {
                Pass::Transient(format!(
                    "{}: the server answered from byte {} when asked from {}",
                    self.backend.blob_location(&file.sha256),
                    blob.offset,
                    *written
                ))
            })?;
            self.skip(&mut reader, skip, hasher, prog, file)?;
        }
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
                "{}: the body ended after {} of {} bytes",
                self.backend.blob_location(&file.sha256),
                *written,
                file.size
            )));
        }
        Ok(())
    }

    /// What a failure to open a blob from byte `at` means for the pass.
    fn open_err(
        &self,
        content: &PackageContent,
        file: &ContentFile,
        e: BackendError,
        at: u64,
    ) -> Pass {
        match e {
            BackendError::Transient(why) => Pass::Transient(why),
            BackendError::Short(why) => {
                let why = format!("its body ended after {at} bytes, and {why}");
                Pass::Fatal(Box::new(self.blob_err(
                    content,
                    file,
                    BackendError::Short(why),
                )))
            }
            e => Pass::Fatal(Box::new(self.blob_err(content, file, e))),
        }
    }

    /// Read and drop the first `skip` bytes of `reader` (a server that
    /// ignored `Range` resent them), stopping on a cancel.
    fn skip(
        &self,
        reader: &mut dyn Read,
        skip: u64,
        hasher: &mut PipelinedHasher,
        prog: &Progress<'_>,
        file: &ContentFile,
    ) -> Result<(), Pass> {
        let mut buf = hasher.buffer();
        let mut left = skip;
        let r = loop {
            if left == 0 {
                break Ok(());
            }
            if (prog.cancel)() {
                break Err(Pass::Fatal(Box::new(DpError::Cancelled)));
            }
            let n = left.min(buf.len() as u64) as usize;
            match reader.read(buf.get_mut(..n).unwrap_or_default()) {
                Ok(0) => {
                    break Err(Pass::Transient(format!(
                        "{}: the server ignored the byte range and its body ended after {} \
                         bytes, before byte {skip}",
                        self.backend.blob_location(&file.sha256),
                        skip - left
                    )))
                }
                Ok(n) => left -= n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(Pass::Transient(e.to_string())),
            }
        };
        hasher.give_back(buf);
        r
    }
}

/// Buffers in flight per download: memory stays at `BUFFERS * BUF` per
/// download thread whatever the file size.
const BUFFERS: usize = 4;

enum HashMsg {
    Data(Vec<u8>, usize),
}

/// [`Digests`] computed on a helper thread from the buffers the download thread
/// has just written, so that hashing overlaps reading and writing (a second
/// core hashes while the first moves bytes). Buffers go round between the
/// two threads; none is allocated beyond [`BUFFERS`].
struct PipelinedHasher {
    tx: Option<mpsc::SyncSender<HashMsg>>,
    returned: mpsc::Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    allocated: usize,
    blake3: bool,
    handle: Option<thread::JoinHandle<Digests>>,
}

impl PipelinedHasher {
    fn new(blake3: bool) -> Self {
        let (tx, rx) = mpsc::sync_channel::<HashMsg>(BUFFERS);
        let (ret_tx, returned) = mpsc::channel::<Vec<u8>>();
        let handle = thread::spawn(move || {
            let mut d = Digests::new(blake3);
            for msg in rx {
                match msg {
                    HashMsg::Data(buf, n) => {
                        d.update(&buf[..n]);
                        let _ = ret_tx.send(buf);
                    }
                }
            }
            d
        });
        PipelinedHasher {
            tx: Some(tx),
            returned,
            spare: Vec::new(),
            allocated: 0,
            blake3,
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

    /// The digest of everything fed since the last reset.
    fn finish(mut self) -> Finished {
        self.tx = None;
        let blake3 = self.blake3;
        self.handle
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_else(|| Digests::new(blake3))
            .finish()
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

/// The path of an open cache file, for messages (its temporary name).
fn cache_tmp_path(f: &File) -> PathBuf {
    use std::os::fd::AsRawFd;
    fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
        .unwrap_or_else(|_| PathBuf::from("(temporary file)"))
}

pub(crate) fn backoff(base: Duration, failure: u32) -> Duration {
    base.saturating_mul(1u32 << failure.saturating_sub(1).min(6))
}

/// What a fetched file turned out to be, for a mismatch error: its SHA-256,
/// and its length when that is wrong too.
fn mismatch(sha256: &str, written: u64, size: u64) -> String {
    if written == size {
        sha256.to_owned()
    } else {
        format!("{sha256} over {written} bytes instead of {size}")
    }
}
