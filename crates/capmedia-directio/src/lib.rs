//! Writing a medium and reading it back past the page cache.
//!
//! Media files are large, written once and read back once for
//! verification. Through the page cache every byte is first copied into a
//! freshly allocated cache page and later written back by the kernel; the
//! read-back then checks the cache, not the medium. With `O_DIRECT` the
//! bytes go from our buffers to the device, the read-back reads the device,
//! and the process's memory stays flat. With [`DirectFile::read_behind`] the
//! read-back's reads of the device happen beside the writes, each run as
//! soon as it is on the device, into pages the read-back then uses and
//! drops (see `ReadBehind`). (Measured on the project's build machine: 1 GiB
//! written and synced in about 1 s direct against 1.2 to 5 s buffered.)
//!
//! `O_DIRECT` wants offsets, lengths and buffer addresses aligned to the
//! device's logical block. [`DirectFile`] takes any offset and length:
//! sequential writes are gathered in an aligned buffer and written in big
//! aligned runs by a background thread (so the caller prepares the next run
//! while the device takes this one); a run that starts or ends inside a
//! block merges in the block's bytes from the medium first; reads go
//! through an aligned read-ahead window. Where the file system refuses
//! `O_DIRECT` (tmpfs, some FUSE file systems) the file is opened normally
//! and every call goes straight to `pread`/`pwrite`: same results, page
//! cache used.
//!
//! This crate is written by hand because no maintained crate offers
//! unaligned positional I/O over `O_DIRECT`; it is safe code only (the
//! alignment comes from offsetting into a larger `Vec`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc;
use std::thread;

/// Alignment of every direct transfer: the largest logical block size in
/// use (4 KiB disks); 512-byte devices accept it as well.
pub const ALIGN: u64 = 4096;
/// Bytes gathered before a direct write is issued.
const RUN: usize = 4 << 20;
/// Bytes read per direct read (the read-ahead window).
const WINDOW: usize = 4 << 20;
/// Writer threads, each with one run in flight: a device (and the VM
/// disk this was measured on) takes queued writes faster than one after
/// the other, as the kernel's own writeback of buffered writes does
/// (512 MiB written and synced with Python's pwrite here: 1.27-1.81 s
/// with one write in flight, 1.13-1.39 s with four; cp + sync
/// 1.06-1.17 s). In whole captures four writers gained nothing over two
/// (five interleaved rounds each, within the noise), so two, for memory.
/// Runs in flight never overlap: they are consecutive pieces of one
/// gathered stretch, and every new stretch drains them first.
const WRITERS: usize = 2;
/// Runs queued for the writers besides the ones they are writing: with
/// the one being gathered, at most `WRITERS + BUFFERS + 1` runs are in
/// memory.
const BUFFERS: usize = 1;

/// A `Vec<u8>` with a `len`-byte slice starting at an [`ALIGN`]ed address.
struct Aligned {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Aligned {
        let raw = vec![0u8; len + ALIGN as usize];
        let start = raw.as_ptr().align_offset(ALIGN as usize);
        Aligned { raw, start, len }
    }
    fn get(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
    fn get_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

fn down(x: u64) -> u64 {
    x - x % ALIGN
}

fn up(x: u64) -> u64 {
    x.div_ceil(ALIGN) * ALIGN
}

/// Read as much of `buf` at `at` as the file has; the rest is zeroed (a
/// block past the end of a file reads as zeros, as it will once written).
fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], at + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[got..].fill(0);
    Ok(got)
}

/// [`WINDOW`] bytes of the medium from `at` (aligned).
struct Window {
    buf: Aligned,
    at: u64,
}

/// Read windows kept at once (metadata, the file being read, and the one
/// before it).
const WINDOWS: usize = 3;

/// A window being read by a helper thread.
struct Prefetch {
    at: u64,
    handle: thread::JoinHandle<(Aligned, io::Result<usize>)>,
}

impl Prefetch {
    fn start(file: File, at: u64, mut buf: Aligned) -> Prefetch {
        let handle = thread::spawn(move || {
            let r = read_full_at(&file, buf.get_mut(), at);
            (buf, r)
        });
        Prefetch { at, handle }
    }

    /// The buffer, and whether it now holds the window.
    fn finish(self) -> (Option<Aligned>, bool) {
        match self.handle.join() {
            Ok((buf, r)) => (Some(buf), r.is_ok()),
            Err(_) => (None, false),
        }
    }
}

/// A write handed to the background thread.
struct Job {
    at: u64,
    buf: Aligned,
    len: usize,
    /// Where to report the run once it is on the medium (read-behind).
    behind: Option<mpsc::Sender<(u64, u64)>>,
}

/// The read-behind thread: asks the kernel to read each run the writers
/// have put on the medium back into the page cache
/// (`POSIX_FADV_WILLNEED`), while the writers go on with the next runs.
///
/// A verified medium is written once and read back once. One after the
/// other, the read-back adds its whole time; the device (and the VM disk
/// this was measured on) takes reads queued beside the writes at little
/// extra cost: 512 MiB written past the page cache, synced and read back
/// took 2.40-3.05 s one after the other, 1.92-2.29 s with the read-behind
/// (Python `pwrite`/`posix_fadvise`, four interleaved rounds; cp + sync
/// 1.12-1.27 s). The read-back proper ([`DirectFile::open_read_behind`])
/// then finds the pages in memory. They hold the medium's bytes: a run is
/// read only after its direct write completed, and a direct write drops
/// the cached pages of its range before and again after it reaches the
/// medium (the kernel's second invalidation is there for pages a read
/// brought in meanwhile), so a range written again (a FAT, a directory),
/// even while its earlier bytes were being read behind, is read from the
/// medium again.
struct ReadBehind {
    tx: Option<mpsc::Sender<(u64, u64)>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl ReadBehind {
    fn start(file: File) -> ReadBehind {
        let (tx, rx) = mpsc::channel::<(u64, u64)>();
        let handle = thread::spawn(move || {
            for (at, len) in rx {
                // Advice: a refusal only costs the overlap, the read-back
                // then reads the medium itself.
                let _ = rustix::fs::fadvise(
                    &file,
                    at,
                    std::num::NonZeroU64::new(len),
                    rustix::fs::Advice::WillNeed,
                );
            }
        });
        ReadBehind {
            tx: Some(tx),
            handle: Some(handle),
        }
    }
}

impl Drop for ReadBehind {
    fn drop(&mut self) {
        // The thread ends once the writers' senders are gone too (the
        // writer threads are joined first); joined, so no handle on the
        // medium (a device held with O_EXCL) outlives this one. Advice
        // returns once the reads are queued, so this waits little.
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The background writer: takes aligned runs, writes them, hands the
/// buffers back with the first error, if any.
struct Writer {
    tx: Option<mpsc::SyncSender<Job>>,
    back: mpsc::Receiver<(Aligned, io::Result<()>)>,
    handles: Vec<thread::JoinHandle<()>>,
    in_flight: usize,
    error: Option<io::Error>,
}

impl Writer {
    fn new(file: File) -> io::Result<Writer> {
        let (tx, rx) = mpsc::sync_channel::<Job>(BUFFERS);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let (back_tx, back) = mpsc::channel();
        let mut handles = Vec::with_capacity(WRITERS);
        for _ in 0..WRITERS {
            let file = file.try_clone()?;
            let rx = std::sync::Arc::clone(&rx);
            let back_tx = back_tx.clone();
            handles.push(thread::spawn(move || loop {
                // The lock is held only to take the next job, not while
                // writing it, so the writers' writes overlap.
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                let Ok(job) = job else { break };
                let r = file.write_all_at(&job.buf.get()[..job.len], job.at);
                if let (Ok(()), Some(behind)) = (&r, &job.behind) {
                    let _ = behind.send((job.at, job.len as u64));
                }
                if back_tx.send((job.buf, r)).is_err() {
                    break;
                }
            }));
        }
        Ok(Writer {
            tx: Some(tx),
            back,
            handles,
            in_flight: 0,
            error: None,
        })
    }

    fn note(&mut self, (buf, r): (Aligned, io::Result<()>), spare: &mut Vec<Aligned>) {
        self.in_flight -= 1;
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
        spare.push(buf);
    }

    fn send(&mut self, job: Job, spare: &mut Vec<Aligned>) -> io::Result<()> {
        let Some(tx) = &self.tx else {
            return Err(io::Error::other("the direct writer has stopped"));
        };
        if let Err(mpsc::SendError(job)) = tx.send(job) {
            spare.push(job.buf);
            return Err(io::Error::other("the direct writer has stopped"));
        }
        self.in_flight += 1;
        while let Ok(done) = self.back.try_recv() {
            self.note(done, spare);
        }
        Ok(())
    }

    /// Wait until every run sent has been written; the first error since
    /// the last drain, if any.
    fn drain(&mut self, spare: &mut Vec<Aligned>) -> io::Result<()> {
        while self.in_flight > 0 {
            match self.back.recv() {
                Ok(done) => self.note(done, spare),
                Err(_) => {
                    self.in_flight = 0;
                    self.error
                        .get_or_insert_with(|| io::Error::other("the direct writer stopped"));
                }
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.tx = None;
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// A file or block device opened for direct I/O where possible; any offset
/// and length work. See the crate docs.
///
/// Data written is on the medium (or at least in the device's hands) only
/// after [`DirectFile::flush_all`] (or `Write::flush`); follow with
/// `sync_all` on [`DirectFile::file`] to make it durable.
pub struct DirectFile {
    file: File,
    direct: bool,
    /// The run being gathered: `stage.get()[..staged]` holds the bytes of
    /// `[stage_at, stage_at + staged)`; `stage_at` is aligned.
    stage: Option<Aligned>,
    stage_at: u64,
    staged: usize,
    spare: Vec<Aligned>,
    writer: Option<Writer>,
    /// Read windows, most recently used last: a reader that alternates
    /// between metadata and file data keeps both in memory.
    windows: Vec<Window>,
    /// The window after the last one loaded, being read in the background
    /// while the caller works through the current one.
    prefetch: Option<Prefetch>,
    /// Where the last window loaded starts, to tell sequential reading.
    last_window: Option<u64>,
    /// One past the last byte written through this handle or present at
    /// open: the logical length (direct writes of a tail block run past it).
    len: u64,
    pos: u64,
    /// Set by [`DirectFile::read_behind`].
    behind: Option<ReadBehind>,
    /// A read-back handle ([`DirectFile::open_read_behind`]) reads through
    /// the page cache in windows, as direct reads do (a file system reader
    /// asks for a cluster at a time: 131,000 `pread`s for 512 MiB), and
    /// drops the file's cached pages when it goes.
    read_back: bool,
}

impl std::fmt::Debug for DirectFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectFile")
            .field("direct", &self.direct)
            .field("len", &self.len)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl DirectFile {
    /// Open `path` with `opts` plus `O_DIRECT`, or without it where the file
    /// system refuses it.
    ///
    /// `CAPMEDIA_DIRECT_IO=0` in the environment turns direct I/O off (for
    /// a file system where it is slow, or to compare).
    /// `flags` are further `open(2)` flags (e.g. `O_EXCL` for a device):
    /// `OpenOptions` keeps one set of custom flags, so they are given here.
    pub fn open_with(path: &Path, opts: &OpenOptions, flags: i32) -> io::Result<DirectFile> {
        let mut plain = opts.clone();
        plain.custom_flags(flags);
        if std::env::var_os("CAPMEDIA_DIRECT_IO").is_some_and(|v| v == "0") {
            return Self::from_file(plain.open(path)?, false);
        }
        let mut direct_opts = opts.clone();
        direct_opts.custom_flags(flags | libc::O_DIRECT);
        let (file, direct) = match direct_opts.open(path) {
            Ok(f) => (f, true),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                // `create_new` may have created it before the flag was
                // refused: open what is there now, without recreating.
                let mut again = plain;
                if path.exists() {
                    again.create_new(false).create(false);
                }
                (again.open(path)?, false)
            }
            Err(e) => return Err(e),
        };
        Self::from_file(file, direct)
    }

    /// Create `path`, which must not exist, for reading and writing.
    pub fn create_new(path: &Path) -> io::Result<DirectFile> {
        let mut o = OpenOptions::new();
        o.read(true).write(true).create_new(true);
        Self::open_with(path, &o, 0)
    }

    /// Open an existing file or device read-only.
    pub fn open_read(path: &Path) -> io::Result<DirectFile> {
        let mut o = OpenOptions::new();
        o.read(true);
        Self::open_with(path, &o, 0)
    }

    /// Open an existing file or device for reading and writing.
    pub fn open_rw(path: &Path, flags: i32) -> io::Result<DirectFile> {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        Self::open_with(path, &o, flags)
    }

    /// Use `file` as it is; `direct` says whether it was opened with
    /// `O_DIRECT` (then every transfer is aligned).
    pub fn from_file(file: File, direct: bool) -> io::Result<DirectFile> {
        let len = file_len(&file)?;
        let writer = if direct {
            Some(Writer::new(file.try_clone()?)?)
        } else {
            None
        };
        Ok(DirectFile {
            file,
            direct,
            stage: None,
            stage_at: 0,
            staged: 0,
            spare: Vec::new(),
            writer,
            windows: Vec::new(),
            prefetch: None,
            last_window: None,
            len,
            pos: 0,
            behind: None,
            read_back: false,
        })
    }

    /// From now on, read each run back into the page cache as soon as it
    /// is on the medium, beside the writes (see [`ReadBehind`]); the
    /// read-back then opens the medium with
    /// [`DirectFile::open_read_behind`]. `bytes` is about how much will be
    /// written: where that is more than half the memory the kernel has
    /// available, the first pages would leave the cache before the
    /// read-back reached them and be read twice, so there is no
    /// read-behind (returns false) and the read-back reads the medium
    /// itself. Without direct I/O the pages are in memory already and this
    /// does nothing.
    pub fn read_behind(&mut self, bytes: u64) -> io::Result<bool> {
        if self.direct && self.behind.is_none() && fits_in_memory(bytes) {
            self.behind = Some(ReadBehind::start(self.file.try_clone()?));
        }
        Ok(self.behind.is_some())
    }

    /// Open a medium written with [`DirectFile::read_behind`] for its
    /// read-back: through the page cache, so the pages read behind the
    /// writer serve it and what is missing (all of it, where there was no
    /// read-behind) is read from the medium, in the same windows as direct
    /// reads. Each window's pages are dropped from the cache once copied,
    /// and the rest when the handle goes, so the cache does not keep the
    /// medium.
    pub fn open_read_behind(path: &Path) -> io::Result<DirectFile> {
        let mut f = Self::from_file(File::open(path)?, false)?;
        f.read_back = true;
        Ok(f)
    }

    /// Whether transfers bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The logical length: the file's length at open, grown by writes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The underlying file (for `sync_all`, `metadata`); call
    /// [`DirectFile::flush_all`] first.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Write `buf` at `at`.
    pub fn write_at(&mut self, mut buf: &[u8], mut at: u64) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.len = self.len.max(at + buf.len() as u64);
        if !self.direct {
            return self.file.write_all_at(buf, at);
        }
        self.drop_window_over(at, at + buf.len() as u64);
        self.cancel_prefetch();
        while !buf.is_empty() {
            let contiguous = self.stage.is_some() && at == self.stage_at + self.staged as u64;
            if !contiguous {
                self.flush_stage()?;
                self.start_stage(at)?;
            }
            let Some(stage) = self.stage.as_mut() else {
                return Err(io::Error::other("no stage"));
            };
            let room = RUN - self.staged;
            let n = room.min(buf.len());
            stage.get_mut()[self.staged..self.staged + n].copy_from_slice(&buf[..n]);
            self.staged += n;
            buf = &buf[n..];
            at += n as u64;
            if self.staged == RUN {
                self.send_stage()?;
            }
        }
        Ok(())
    }

    /// Read into `buf` at `at`; returns the bytes read (fewer only at the
    /// end of the file).
    pub fn read_at(&mut self, buf: &mut [u8], at: u64) -> io::Result<usize> {
        if !self.direct && !self.read_back {
            let mut got = 0;
            while got < buf.len() {
                match self.file.read_at(&mut buf[got..], at + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(got);
        }
        // Bytes still gathered or being written must be on the medium
        // before the medium is read.
        let end = at + buf.len() as u64;
        if self.stage.is_some() && at < self.stage_at + self.staged as u64 && self.stage_at < end {
            self.flush_stage()?;
        }
        self.drain()?;
        let mut got = 0usize;
        while got < buf.len() {
            let p = at + got as u64;
            if p >= self.len {
                break;
            }
            let w = match self
                .windows
                .iter()
                .position(|w| p >= w.at && p < w.at + WINDOW as u64)
            {
                Some(i) => {
                    let w = self.windows.remove(i);
                    self.windows.push(w);
                    self.windows.len() - 1
                }
                None => self.load_window(p)?,
            };
            let w = &self.windows[w];
            let off = (p - w.at) as usize;
            let n = (WINDOW - off)
                .min(buf.len() - got)
                .min((self.len - p).min(usize::MAX as u64) as usize);
            buf[got..got + n].copy_from_slice(&w.buf.get()[off..off + n]);
            got += n;
        }
        Ok(got)
    }

    /// Read the window holding `p` (replacing the least recently used) and
    /// return its index. Past the medium's end it reads zeros up to the
    /// logical length (holes, and the tail not yet written).
    fn load_window(&mut self, p: u64) -> io::Result<usize> {
        // Windows on multiples of their size: nearby metadata reads fall
        // into one window, and sequential reads never overlap two.
        let at = p - p % WINDOW as u64;
        let end = at + WINDOW as u64;
        // A window must never hold older bytes than the stage has.
        if self.stage.is_some() && at < self.stage_at + self.staged as u64 && self.stage_at < end {
            self.flush_stage()?;
        }
        self.drain()?;
        let mut spare = if self.windows.len() >= WINDOWS {
            Some(self.windows.remove(0).buf)
        } else {
            None
        };
        let mut ready = None;
        if let Some(pf) = self.prefetch.take() {
            let wanted = pf.at == at;
            match pf.finish() {
                (Some(buf), true) if wanted => ready = Some(buf),
                (Some(buf), _) => spare = spare.or(Some(buf)),
                (None, _) => {}
            }
        }
        let buf = match ready {
            Some(buf) => buf,
            None => {
                let mut buf = spare.take().unwrap_or_else(|| Aligned::new(WINDOW));
                read_full_at(&self.file, buf.get_mut(), at)?;
                buf
            }
        };
        if self.read_back {
            // The window holds these bytes now: the cache need not.
            let _ = rustix::fs::fadvise(
                &self.file,
                at,
                std::num::NonZeroU64::new(WINDOW as u64),
                rustix::fs::Advice::DontNeed,
            );
        }
        // Reading on: fetch the next window while this one is used.
        let sequential = self.last_window.is_some_and(|l| l + WINDOW as u64 == at);
        if sequential && end < self.len {
            let next = spare.take().unwrap_or_else(|| Aligned::new(WINDOW));
            self.prefetch = Some(Prefetch::start(self.file.try_clone()?, end, next));
        }
        self.last_window = Some(at);
        self.windows.push(Window { buf, at });
        Ok(self.windows.len() - 1)
    }

    /// Forget a window being read ahead (a write may change its bytes).
    fn cancel_prefetch(&mut self) {
        if let Some(pf) = self.prefetch.take() {
            let _ = pf.finish();
        }
    }

    fn drop_window_over(&mut self, start: u64, end: u64) {
        self.windows
            .retain(|w| !(start < w.at + WINDOW as u64 && w.at < end));
    }

    fn buffer(&mut self) -> Aligned {
        self.spare.pop().unwrap_or_else(|| Aligned::new(RUN))
    }

    /// Begin gathering at `at`: the bytes of its block before `at` come
    /// from the medium.
    fn start_stage(&mut self, at: u64) -> io::Result<()> {
        self.drain()?;
        let mut stage = self.buffer();
        let base = down(at);
        let head = (at - base) as usize;
        if head > 0 {
            read_full_at(&self.file, &mut stage.get_mut()[..ALIGN as usize], base)?;
        }
        self.stage = Some(stage);
        self.stage_at = base;
        self.staged = head;
        Ok(())
    }

    /// Hand the whole stage (a multiple of [`ALIGN`]) to the writer.
    fn send_stage(&mut self) -> io::Result<()> {
        let Some(buf) = self.stage.take() else {
            return Ok(());
        };
        let job = Job {
            at: self.stage_at,
            len: self.staged,
            buf,
            behind: self.behind.as_ref().and_then(|b| b.tx.clone()),
        };
        self.stage_at += self.staged as u64;
        self.staged = 0;
        let Some(w) = self.writer.as_mut() else {
            return Err(io::Error::other("no direct writer"));
        };
        w.send(job, &mut self.spare)?;
        // Keep gathering right after it.
        let next = self.buffer();
        self.stage = Some(next);
        Ok(())
    }

    /// Write out what is gathered; a last partial block is completed with
    /// the medium's bytes after it.
    fn flush_stage(&mut self) -> io::Result<()> {
        let Some(mut stage) = self.stage.take() else {
            return Ok(());
        };
        if self.staged == 0 {
            self.spare.push(stage);
            return Ok(());
        }
        let end = self.stage_at + self.staged as u64;
        let padded = (up(end) - self.stage_at) as usize;
        if padded > self.staged {
            // The medium's bytes after `end` in the last block: wait for
            // runs in flight (they may hold that block), then read it.
            self.drain()?;
            let last = down(end);
            let mut block = Aligned::new(ALIGN as usize);
            read_full_at(&self.file, block.get_mut(), last)?;
            let from = (end - last) as usize;
            let base = (last - self.stage_at) as usize;
            stage.get_mut()[base + from..base + ALIGN as usize]
                .copy_from_slice(&block.get()[from..]);
        }
        self.staged = padded;
        self.stage = Some(stage);
        self.send_stage()?;
        if let Some(s) = self.stage.take() {
            self.spare.push(s);
        }
        Ok(())
    }

    fn drain(&mut self) -> io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.drain(&mut self.spare),
            None => Ok(()),
        }
    }

    /// Put everything written so far on the medium and trim a regular
    /// file to its logical length (direct writes end on a block boundary).
    pub fn flush_all(&mut self) -> io::Result<()> {
        if !self.direct {
            return Ok(());
        }
        self.flush_stage()?;
        self.drain()?;
        // Writing is usually over now (the read-back follows): give the
        // run buffers back rather than hold them next to read windows.
        self.spare.clear();
        let meta = self.file.metadata()?;
        if meta.is_file() && meta.len() > self.len {
            self.file.set_len(self.len)?;
        }
        Ok(())
    }

    /// Make the file `len` bytes long (regular files), after putting what
    /// was written on the medium.
    pub fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.flush_all()?;
        self.file.set_len(len)?;
        self.len = len;
        self.windows.clear();
        self.cancel_prefetch();
        Ok(())
    }

    /// [`DirectFile::flush_all`], then `fsync`.
    pub fn sync_all(&mut self) -> io::Result<()> {
        self.flush_all()?;
        self.file.sync_all()
    }

    /// The file, with everything written on the medium.
    pub fn into_file(mut self) -> io::Result<File> {
        self.flush_all()?;
        self.writer = None;
        self.behind = None;
        // A second handle: `self` (and its `Drop`) goes with this one.
        self.file.try_clone()
    }
}

/// Whether `bytes` fit in half the memory the kernel reports available
/// (`MemAvailable` in `/proc/meminfo`); yes where that cannot be read.
fn fits_in_memory(bytes: u64) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return true;
    };
    let kib = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok());
    match kib {
        Some(kib) => bytes <= kib.saturating_mul(1024) / 2,
        None => true,
    }
}

/// A regular file's length, or a block device's size (seek to its end).
fn file_len(file: &File) -> io::Result<u64> {
    let meta = file.metadata()?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut f = file;
    let end = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    Ok(end)
}

impl Write for DirectFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at(buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flush_all()
    }
}

impl Read for DirectFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for DirectFile {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = p.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad seek"))?;
        Ok(self.pos)
    }
}

impl Drop for DirectFile {
    fn drop(&mut self) {
        // Best effort: a caller that wants errors calls `flush_all`.
        let _ = self.flush_all();
        self.cancel_prefetch();
        if self.read_back {
            let _ = rustix::fs::fadvise(
                &self.file,
                0,
                None::<std::num::NonZeroU64>,
                rustix::fs::Advice::DontNeed,
            );
        }
    }
}
