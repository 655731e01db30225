//! One volume as a `hadris_fs::Tree` plus `IsoOptions`, the exact size
//! `hadris_iso::plan` gives it, and writing it to a file.

use std::io;

use capmedia_directio::DirectFile;

use capmedia_content::stream::StreamReader;
use capmedia_content::{EntrySource, MediaPlan, PlanEntry};
use capmedia_sink::{Cancel, Progress};
use hadris_fs::{Content, DateTime, Node, Tree};
use hadris_io::{Error as HError, ErrorKind as HKind, ErrorType};
use hadris_iso::{BootEntry, ElTorito, IsoId, IsoLevel, IsoOptions};
use hadris_storage::{BlockIndex, BlockSize};

use crate::hash::ImageHash;
use crate::IsoError;

/// A boot image placed in the file tree of volume 1 for El Torito.
#[derive(Debug, Clone)]
pub struct BootImage {
    /// Tree path (no leading slash).
    pub path: String,
    pub content: ImageSource,
    /// Whether the file is already in the plan (then it is not added again).
    pub in_plan: bool,
    pub load_sectors: Option<u16>,
    /// The planned size of a host image (the file may not exist yet when
    /// `check` runs).
    pub size: u64,
}

/// Where a boot image's bytes come from.
#[derive(Debug, Clone)]
pub enum ImageSource {
    Host(std::path::PathBuf),
    /// The FAT image built for the EFI entry (small: it holds EFI loaders).
    Bytes(std::sync::Arc<Vec<u8>>),
}

/// The El Torito setup of volume 1.
#[derive(Debug, Clone, Default)]
pub struct Boot {
    pub bios: Option<BootImage>,
    pub uefi: Option<BootImage>,
}

impl Boot {
    pub fn is_empty(&self) -> bool {
        self.bios.is_none() && self.uefi.is_none()
    }

    /// Bytes the boot images add to volume 1 when not already in the plan,
    /// plus the catalog.
    pub fn extra_bytes(&self) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let mut n = crate::layout::SECTOR;
        for img in [&self.bios, &self.uefi].into_iter().flatten() {
            if !img.in_plan {
                n += crate::layout::sectors(img.len()) + 512;
            }
        }
        n
    }
}

impl BootImage {
    pub fn len(&self) -> u64 {
        match &self.content {
            ImageSource::Host(_) => self.size,
            ImageSource::Bytes(b) => b.len() as u64,
        }
    }
}

/// Tree content for a plan entry: host files are streamed by the writer,
/// inline bytes are small by construction, and a streamed entry (still
/// being fetched) is a stand-in of its planned size whose bytes the output
/// replaces with the stream's as they arrive (see [`Overlays`]).
fn entry_content(e: &PlanEntry, ph: &Placeholders) -> Result<Content, IsoError> {
    match &e.source {
        EntrySource::File(p) => host_content(p, e.size, ph.layout_only.then_some(ph)),
        EntrySource::Inline(b) => Ok(Content::bytes(b.clone())),
        // hadris-iso takes a host file's length when it opens it, and a
        // stream grows: it lays the stand-in out and writes its zeros.
        EntrySource::Stream { size, .. } => ph.sized(*size),
    }
}

/// Sparse files standing in for sources: for layout, the driver checks a
/// plan before it fetches the content, so a source may not exist yet, and
/// planning needs only lengths; for writing, a streamed entry's file is
/// still growing. hadris-iso takes lengths only from real files (its
/// length-only content kinds are private or refused when planning), so
/// each stand-in is a sparse file of the planned size: no data, no disk
/// space, removed with the folder.
#[derive(Debug)]
pub struct Placeholders {
    /// Made on the first stand-in kept in a folder.
    dir: std::cell::OnceCell<StandinDir>,
    /// The writer's stand-ins, open for as long as it may read them.
    memfds: std::cell::RefCell<Vec<std::os::fd::OwnedFd>>,
    next: std::cell::Cell<u64>,
    /// Every host file is a stand-in (`check`), not only streamed ones.
    layout_only: bool,
}

/// Where the stand-ins are.
#[derive(Debug)]
enum StandinDir {
    /// For layout: nothing reads them.
    Layout(tempfile::TempDir),
    /// For writing where memory files are refused: the system's temporary
    /// folder, under an owner-tagged name a later run removes if this one
    /// is killed.
    Write(capmedia_tempfile::TempPath),
}

impl Placeholders {
    pub fn new(layout_only: bool) -> Result<Self, IsoError> {
        Ok(Placeholders {
            dir: std::cell::OnceCell::new(),
            memfds: std::cell::RefCell::new(Vec::new()),
            next: std::cell::Cell::new(0),
            layout_only,
        })
    }

    fn dir(&self) -> Result<&std::path::Path, IsoError> {
        if self.dir.get().is_none() {
            let made = if self.layout_only {
                tempfile::Builder::new()
                    .prefix("capmedia-iso-layout-")
                    .tempdir()
                    .map(StandinDir::Layout)
            } else {
                let tmp = std::env::temp_dir();
                // A killed run's stand-ins hold no data but a name.
                let _ = capmedia_tempfile::remove_stale(&tmp);
                capmedia_tempfile::TempPath::create_dir_in(&tmp, "capmedia-iso-standins")
                    .map(StandinDir::Write)
            };
            let made = made.map_err(IsoError::io("creating a layout folder".to_owned()))?;
            let _ = self.dir.set(made);
        }
        Ok(match self.dir.get() {
            Some(StandinDir::Layout(d)) => d.path(),
            Some(StandinDir::Write(d)) => d.path(),
            None => std::path::Path::new(""),
        })
    }

    /// A stand-in the writer reads: a sparse memory file (`memfd`), by its
    /// `/proc/self/fd` name, as hadris opens files by path. Reading its
    /// holes costs a copy of zeros (6 GB/s here; a sparse file on ext4
    /// fills the page cache at under 0.4 GB/s, slower than the medium);
    /// it holds no data, needs no folder, and vanishes with the process
    /// however it ends. `None` where the system has no memory files.
    fn memfd(&self, size: u64) -> Option<std::path::PathBuf> {
        use std::os::fd::AsRawFd;
        let fd = rustix::fs::memfd_create("capmedia-iso-standin", rustix::fs::MemfdFlags::CLOEXEC)
            .ok()?;
        rustix::fs::ftruncate(&fd, size).ok()?;
        let path = std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        std::fs::metadata(&path).ok().filter(|m| m.len() == size)?;
        self.memfds.borrow_mut().push(fd);
        Some(path)
    }

    fn sized(&self, size: u64) -> Result<Content, IsoError> {
        if !self.layout_only {
            if let Some(p) = self.memfd(size) {
                return hadris_fs::host::file(&p).map_err(|err| IsoError::Layout(err.to_string()));
            }
        }
        let n = self.next.get();
        self.next.set(n + 1);
        let p = self.dir()?.join(n.to_string());
        let f = std::fs::File::create(&p)
            .map_err(IsoError::io("creating a layout placeholder".to_owned()))?;
        f.set_len(size)
            .map_err(IsoError::io("sizing a layout placeholder".to_owned()))?;
        hadris_fs::host::file(&p).map_err(|err| IsoError::Layout(err.to_string()))
    }
}

/// A host file as tree content; for layout only (`placeholders` given), a
/// stand-in of the planned size.
fn host_content(
    p: &std::path::Path,
    size: u64,
    placeholders: Option<&Placeholders>,
) -> Result<Content, IsoError> {
    if let Some(ph) = placeholders {
        return ph.sized(size);
    }
    let c = hadris_fs::host::file(p).map_err(|err| IsoError::Source {
        path: p.to_path_buf(),
        message: err.to_string(),
    })?;
    if c.len() != size {
        return Err(IsoError::SourceChanged {
            path: p.to_path_buf(),
            planned: size,
            actual: c.len(),
        });
    }
    Ok(c)
}

/// Everything needed to lay out one volume.
#[derive(Debug)]
pub struct VolumeImage {
    pub tree: Tree,
    pub options: IsoOptions,
}

/// The time every timestamp on the medium gets.
pub fn epoch_time(plan: &MediaPlan) -> Result<DateTime, IsoError> {
    i64::try_from(plan.source_date_epoch)
        .ok()
        .and_then(|s| DateTime::from_unix_seconds(s).ok())
        .ok_or(IsoError::BadEpoch(plan.source_date_epoch))
}

/// Build the tree and options of one volume.
pub fn volume_image<'a>(
    plan: &MediaPlan,
    entries: impl Iterator<Item = &'a PlanEntry>,
    manifest: Vec<u8>,
    volume_id: &str,
    boot: Option<&Boot>,
    placeholders: &Placeholders,
) -> Result<VolumeImage, IsoError> {
    let mut tree = Tree::new();
    let insert = |tree: &mut Tree, path: &str, content: Content| {
        tree.insert(path, Node::file(content))
            .map_err(|err| IsoError::Layout(format!("{path}: {err}")))
    };
    for e in entries {
        insert(&mut tree, e.path.as_str(), entry_content(e, placeholders)?)?;
    }
    insert(
        &mut tree,
        capmedia_content::MANIFEST_PATH,
        Content::bytes(manifest),
    )?;
    let time = epoch_time(plan)?;
    let mut options = IsoOptions::new()
        .with_id(IsoId::Volume, volume_id)
        .with_id(IsoId::Application, "CAPMEDIA")
        .with_id(IsoId::VolumeSet, &plan.set_id.to_ascii_uppercase())
        .with_level(IsoLevel::L3)
        .with_joliet()
        .with_time(time);
    if let Some(boot) = boot.filter(|b| !b.is_empty()) {
        let mut et = ElTorito::new();
        for (img, bios) in [(&boot.bios, true), (&boot.uefi, false)] {
            let Some(img) = img else { continue };
            if !img.in_plan {
                let content = match &img.content {
                    ImageSource::Host(p) => host_content(
                        p,
                        img.size,
                        placeholders.layout_only.then_some(placeholders),
                    )?,
                    ImageSource::Bytes(b) => Content::bytes(b.as_slice()),
                };
                insert(&mut tree, &img.path, content)?;
            }
            let entry = if bios {
                BootEntry::bios(&img.path).with_load_size(img.load_sectors.unwrap_or(8))
            } else {
                let e = BootEntry::uefi(&img.path);
                match img.load_sectors {
                    Some(n) => e.with_load_size(n),
                    None => e,
                }
            };
            et = et.with_entry(entry);
        }
        options = options.with_el_torito(et);
    }
    Ok(VolumeImage { tree, options })
}

/// What `hadris_iso` will write: the exact size, and where each file goes.
pub fn layout_report(img: &VolumeImage) -> Result<hadris_fs::Report, IsoError> {
    hadris_iso::plan(&img.tree, &img.options).map_err(|e| IsoError::Layout(e.to_string()))
}

/// The exact image size `hadris_iso` will write.
pub fn exact_size(img: &VolumeImage) -> Result<u64, IsoError> {
    Ok(layout_report(img)?.size())
}

/// The ranges of a volume whose bytes the output takes from elsewhere than
/// the tree: each extent of a streamed entry (read from its stream as the
/// writer reaches it), and the manifest (final only once the volume's
/// streams are verified).
#[derive(Debug, Default)]
pub struct Overlays {
    /// Ascending, disjoint.
    pub pieces: Vec<Overlay>,
    /// The manifest's range (offset, length) when the volume streams.
    pub manifest: Option<(u64, u64)>,
    /// A streamed extent lies after the manifest: the manifest is written
    /// as planned (placeholder hashes) and patched after the last block,
    /// the image hash keeping its range for the end ([`crate::hash`]).
    /// Otherwise its final bytes are made when the writer reaches it.
    pub manifest_late: bool,
}

/// One range of the image from elsewhere.
#[derive(Debug)]
pub struct Overlay {
    pub at: u64,
    pub len: u64,
    pub what: OverlayKind,
}

#[derive(Debug)]
pub enum OverlayKind {
    /// Bytes from `file_offset` of plan entry `entry`'s stream.
    Stream {
        entry: usize,
        file_offset: u64,
    },
    Manifest,
}

impl Overlays {
    /// The overlays of a volume holding `entries` of `plan`, laid out as
    /// `report` says; none when no entry streams.
    pub fn of(
        plan: &MediaPlan,
        entries: &[usize],
        report: &hadris_fs::Report,
    ) -> Result<Overlays, IsoError> {
        let mut pieces = Vec::new();
        for &i in entries {
            let e = &plan.entries[i];
            if !e.source.is_stream() || e.size == 0 {
                continue;
            }
            let extents = report.extents(e.path.as_str()).unwrap_or(&[]);
            if extents.iter().map(|x| x.len()).sum::<u64>() != e.size {
                return Err(IsoError::Layout(format!(
                    "{}: the layout places {} of its {} bytes",
                    e.path,
                    extents.iter().map(|x| x.len()).sum::<u64>(),
                    e.size
                )));
            }
            for x in extents {
                pieces.push(Overlay {
                    at: x.offset(),
                    len: x.len(),
                    what: OverlayKind::Stream {
                        entry: i,
                        file_offset: x.file_offset(),
                    },
                });
            }
        }
        if pieces.is_empty() {
            return Ok(Overlays::default());
        }
        let m = match report.extents(capmedia_content::MANIFEST_PATH) {
            Some([x]) => (x.offset(), x.len()),
            _ => {
                return Err(IsoError::Layout(
                    "the manifest is not one extent of the layout".to_owned(),
                ))
            }
        };
        let manifest_late = pieces.iter().any(|p| p.at > m.0);
        pieces.push(Overlay {
            at: m.0,
            len: m.1,
            what: OverlayKind::Manifest,
        });
        pieces.sort_by_key(|p| p.at);
        if pieces.windows(2).any(|w| w[0].at + w[0].len > w[1].at) {
            return Err(IsoError::Layout("overlapping file extents".to_owned()));
        }
        Ok(Overlays {
            pieces,
            manifest: Some(m),
            manifest_late,
        })
    }
}

/// Shared write progress across the volumes of a set.
pub struct Meter<'a> {
    pub progress: &'a dyn Progress,
    pub cancel: &'a dyn Cancel,
    pub done: u64,
    pub total: u64,
    pub cancelled: bool,
}

impl std::fmt::Debug for Meter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("done", &self.done)
            .field("total", &self.total)
            .finish()
    }
}

/// An output file as a 2048-byte block device that reports progress,
/// stops at the first write after a cancel request, and puts the
/// overlays' bytes in place of the tree's stand-ins.
struct OutDevice<'m, 'a, 'f> {
    file: &'m mut DirectFile,
    len: u64,
    hashing: &'m mut ImageHash,
    meter: &'m mut Meter<'a>,
    fill: &'m mut Fill<'f>,
}

/// The state of the overlays while the writer goes front to back.
pub(crate) struct Fill<'m> {
    plan: &'m MediaPlan,
    overlays: &'m Overlays,
    /// The first overlay not yet behind the writer.
    next: usize,
    /// Open streams by plan entry, with the bytes read from each.
    readers: std::collections::HashMap<usize, (StreamReader, u64)>,
    manifest: &'m dyn Fn() -> Result<Vec<u8>, IsoError>,
    manifest_bytes: Option<Vec<u8>>,
    scratch: Vec<u8>,
    /// The error behind a failed write, kept typed.
    failed: Option<IsoError>,
}

impl std::fmt::Debug for Fill<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fill").field("next", &self.next).finish()
    }
}

impl Fill<'_> {
    /// `buf`, written at byte `at`, with the overlays' bytes in place; the
    /// result is in `self.scratch` when any overlay touches it.
    fn apply(&mut self, at: u64, buf: &[u8]) -> Result<bool, IsoError> {
        let end = at + buf.len() as u64;
        let pieces = &self.overlays.pieces;
        while pieces.get(self.next).is_some_and(|p| p.at + p.len <= at) {
            self.next += 1;
        }
        let mut touched = false;
        let mut i = self.next;
        while let Some(p) = pieces.get(i).filter(|p| p.at < end) {
            i += 1;
            if !touched {
                self.scratch.clear();
                self.scratch.extend_from_slice(buf);
                touched = true;
            }
            let from = p.at.max(at);
            let to = (p.at + p.len).min(end);
            let dst = &mut self.scratch[(from - at) as usize..(to - at) as usize];
            match p.what {
                OverlayKind::Stream { entry, file_offset } => {
                    let e = &self.plan.entries[entry];
                    let EntrySource::Stream { path, size } = &e.source else {
                        continue;
                    };
                    let (reader, pos) = match self.readers.entry(entry) {
                        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                        std::collections::hash_map::Entry::Vacant(v) => {
                            let r = StreamReader::open(path, *size).map_err(|err| {
                                IsoError::Source {
                                    path: path.clone(),
                                    message: format!("{}: {err}", e.path),
                                }
                            })?;
                            v.insert((r, 0))
                        }
                    };
                    let want = file_offset + (from - p.at);
                    if *pos != want {
                        return Err(IsoError::Write(format!(
                            "{}: the writer asked for byte {want} of the stream at byte {pos}",
                            e.path
                        )));
                    }
                    // Blocks until the bytes arrived; the last one only once
                    // the file's SHA-256 matched.
                    io::Read::read_exact(reader, dst).map_err(|err| IsoError::Source {
                        path: path.clone(),
                        message: format!("{}: {err}", e.path),
                    })?;
                    *pos += dst.len() as u64;
                }
                OverlayKind::Manifest if !self.overlays.manifest_late => {
                    if self.manifest_bytes.is_none() {
                        // Every stream of the volume lies before: all read,
                        // so all verified.
                        self.manifest_bytes = Some(checked_manifest((self.manifest)()?, p.len)?);
                    }
                    let m = self.manifest_bytes.as_deref().unwrap_or_default();
                    let off = (from - p.at) as usize;
                    dst.copy_from_slice(&m[off..off + dst.len()]);
                }
                // Written as planned, patched at the end.
                OverlayKind::Manifest => {}
            }
        }
        Ok(touched)
    }
}

/// The final manifest, which must take exactly its planned place.
fn checked_manifest(bytes: Vec<u8>, planned: u64) -> Result<Vec<u8>, IsoError> {
    if bytes.len() as u64 != planned {
        return Err(IsoError::Corrupt(format!(
            "the manifest came out at {} bytes, not the {planned} its place holds",
            bytes.len()
        )));
    }
    Ok(bytes)
}

pub(crate) const BLOCK: u32 = 2048;
pub(crate) const BLOCK_SIZE: BlockSize = match BlockSize::new(BLOCK) {
    Some(b) => b,
    None => panic!("2048 is a valid block size"),
};

impl ErrorType for OutDevice<'_, '_, '_> {
    type Error = io::Error;
}

impl hadris_storage::sync::BlockDevice for OutDevice<'_, '_, '_> {
    fn block_size(&self) -> BlockSize {
        BLOCK_SIZE
    }

    fn block_count(&self) -> u64 {
        self.len / u64::from(BLOCK)
    }

    fn max_block_count(&self) -> u64 {
        u64::MAX / u64::from(BLOCK)
    }

    fn writable(&self) -> bool {
        true
    }

    fn read_blocks(&mut self, first: BlockIndex, buf: &mut [u8]) -> Result<(), HError<io::Error>> {
        read_exact(self.file, first, buf)
    }

    fn write_blocks(&mut self, first: BlockIndex, buf: &[u8]) -> Result<(), HError<io::Error>> {
        if self.meter.cancelled || self.meter.cancel.is_cancelled() {
            self.meter.cancelled = true;
            return Err(HError::new(HKind::Busy, "cancelled"));
        }
        let at = first.get() * u64::from(BLOCK);
        let touched = match self.fill.apply(at, buf) {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string();
                self.fill.failed = Some(e);
                return Err(HError::device(
                    io::Error::other(msg),
                    "filling a streamed file",
                ));
            }
        };
        let bytes = if touched {
            self.fill.scratch.as_slice()
        } else {
            buf
        };
        self.hashing.written(at, bytes);
        self.file
            .write_at(bytes, at)
            .map_err(|e| HError::device(e, "writing the image failed"))?;
        self.len = self.len.max(at + buf.len() as u64);
        self.meter.done += buf.len() as u64;
        self.meter.progress.update(
            "write",
            self.meter.done.min(self.meter.total),
            self.meter.total,
        );
        Ok(())
    }

    fn flush(&mut self) -> Result<(), HError<io::Error>> {
        // On the medium, not yet durable: `write_image` syncs once, after
        // sizing the file.
        self.file
            .flush_all()
            .map_err(|e| HError::device(e, "writing the image failed"))
    }
}

/// Fill `buf` from block `first` of `file`; an image shorter than that is
/// an error, as for `read_exact`.
pub(crate) fn read_exact(
    file: &mut DirectFile,
    first: BlockIndex,
    buf: &mut [u8],
) -> Result<(), HError<io::Error>> {
    let at = first.get() * u64::from(BLOCK);
    match file.read_at(buf, at) {
        Ok(n) if n == buf.len() => Ok(()),
        Ok(n) => Err(HError::device(
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the image ends {n} bytes into a read at {at}"),
            ),
            "reading the image failed",
        )),
        Err(e) => Err(HError::device(e, "reading the image failed")),
    }
}

/// An image written: its size and, when the writer went front to back, the
/// BLAKE3 of its bytes.
#[derive(Debug)]
pub struct Written {
    pub size: u64,
    pub blake3: Option<String>,
}

/// Write `img` (`size` bytes as laid out) into `file` (new and empty),
/// with `overlays` in place (`manifest` makes the volume's final manifest
/// once its streams are verified), and make its length the image size. It
/// is on the device, not yet durable: the caller syncs it (beside the
/// read-back) before it commits.
#[allow(clippy::too_many_arguments)]
pub fn write_image(
    img: &VolumeImage,
    size: u64,
    plan: &MediaPlan,
    overlays: &Overlays,
    manifest: &dyn Fn() -> Result<Vec<u8>, IsoError>,
    file: &mut DirectFile,
    meter: &mut Meter<'_>,
) -> Result<Written, IsoError> {
    let late = overlays
        .manifest
        .filter(|_| overlays.manifest_late)
        .map(|(at, len)| (at, at + len));
    let mut hashing = ImageHash::new(size, late);
    let mut fill = Fill {
        plan,
        overlays,
        next: 0,
        readers: std::collections::HashMap::new(),
        manifest,
        manifest_bytes: None,
        scratch: Vec::new(),
        failed: None,
    };
    let result = {
        let dev = OutDevice {
            file,
            len: 0,
            hashing: &mut hashing,
            meter,
            fill: &mut fill,
        };
        hadris_iso::sync::write(dev, &img.tree, &img.options)
    };
    if meter.cancelled {
        return Err(IsoError::Cancelled);
    }
    if let Some(e) = fill.failed.take() {
        return Err(e);
    }
    let report = result.map_err(|e| IsoError::Write(e.to_string()))?;
    if report.size() != size {
        return Err(IsoError::Corrupt(format!(
            "the image came out at {} bytes, not the {size} laid out",
            report.size()
        )));
    }
    drop(fill);
    if let (true, Some((at, len))) = (overlays.manifest_late, overlays.manifest) {
        // Every stream of the volume was read to its end, so verified.
        let bytes = checked_manifest(manifest()?, len)?;
        file.write_at(&bytes, at).map_err(IsoError::io("write"))?;
        hashing.patch(at, &bytes);
    }
    // Blocks the writer left as holes (system area, gaps) read as zeros;
    // the file must still be as long as the image.
    file.flush_all().map_err(IsoError::io("write"))?;
    if file.file().metadata().map_err(IsoError::io("stat"))?.len() != size {
        file.set_len(size).map_err(IsoError::io("resize"))?;
    }
    Ok(Written {
        size,
        blake3: hashing.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::Placeholders;

    /// The writer's stand-ins are memory files: nothing on a disk, nothing
    /// under /dev, and they read as zeros of the planned size.
    #[test]
    fn write_stand_ins_are_sparse_memory_files() {
        let ph = Placeholders::new(false).unwrap();
        let p = ph.memfd(3 << 20).expect("memfd_create on Linux");
        assert!(p.starts_with("/proc/self/fd"), "{}", p.display());
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 3 << 20);
        assert!(bytes.iter().all(|&b| b == 0));
        assert!(ph.dir.get().is_none(), "no folder made");
    }
}
