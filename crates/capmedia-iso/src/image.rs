//! One volume as a `hadris_fs::Tree` plus `IsoOptions`, the exact size
//! `hadris_iso::plan` gives it, and writing it to a file.

use std::io;

use capmedia_directio::DirectFile;

use capmedia_content::{EntrySource, MediaPlan, PlanEntry};
use capmedia_sink::{Cancel, Progress};
use hadris_fs::{Content, DateTime, Node, Tree};
use hadris_io::{Error as HError, ErrorKind as HKind, ErrorType};
use hadris_iso::{BootEntry, ElTorito, IsoId, IsoLevel, IsoOptions};
use hadris_storage::{BlockIndex, BlockSize};

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
/// inline bytes are small by construction.
fn entry_content(e: &PlanEntry, ph: Option<&Placeholders>) -> Result<Content, IsoError> {
    match &e.source {
        EntrySource::File(p) => host_content(p, e.size, ph),
        EntrySource::Inline(b) => Ok(Content::bytes(b.clone())),
        // hadris-iso takes a host file's length when it opens it, so the ISO
        // sink does not declare `streams` and never gets these; `check` lays
        // them out by their planned size all the same.
        EntrySource::Stream { path, size } => match ph {
            Some(ph) => ph.sized(*size),
            None => Err(IsoError::Refused(format!(
                "{}: the iso-set sink takes only fetched files, not streamed ones",
                path.display()
            ))),
        },
    }
}

/// Sparse files standing in for sources during layout: the driver checks a
/// plan before it fetches the content, so a source may not exist yet, and
/// planning needs only lengths. hadris-iso takes lengths only from real
/// files (its length-only content kinds are private or refused when
/// planning), so each stand-in is a sparse file of the planned size: no
/// data, no disk space, removed with the folder after `check`.
#[derive(Debug)]
pub struct Placeholders {
    dir: tempfile::TempDir,
    next: std::cell::Cell<u64>,
}

impl Placeholders {
    pub fn new() -> Result<Self, IsoError> {
        Ok(Placeholders {
            dir: tempfile::Builder::new()
                .prefix("capmedia-iso-layout-")
                .tempdir()
                .map_err(IsoError::io("creating a layout folder".to_owned()))?,
            next: std::cell::Cell::new(0),
        })
    }

    fn sized(&self, size: u64) -> Result<Content, IsoError> {
        let n = self.next.get();
        self.next.set(n + 1);
        let p = self.dir.path().join(n.to_string());
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
    placeholders: Option<&Placeholders>,
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
                    ImageSource::Host(p) => host_content(p, img.size, placeholders)?,
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

/// The exact image size `hadris_iso` will write.
pub fn exact_size(img: &VolumeImage) -> Result<u64, IsoError> {
    let report =
        hadris_iso::plan(&img.tree, &img.options).map_err(|e| IsoError::Layout(e.to_string()))?;
    Ok(report.size())
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

/// An output file as a 2048-byte block device that reports progress and
/// stops at the first write after a cancel request.
struct OutDevice<'m, 'a> {
    file: &'m mut DirectFile,
    len: u64,
    hashing: &'m mut Hashing,
    meter: &'m mut Meter<'a>,
}

pub(crate) const BLOCK: u32 = 2048;
pub(crate) const BLOCK_SIZE: BlockSize = match BlockSize::new(BLOCK) {
    Some(b) => b,
    None => panic!("2048 is a valid block size"),
};

impl ErrorType for OutDevice<'_, '_> {
    type Error = io::Error;
}

impl hadris_storage::sync::BlockDevice for OutDevice<'_, '_> {
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
        self.hashing.written(at, buf);
        self.file
            .write_at(buf, at)
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

/// BLAKE3 of an image as written, while the writer goes front to back
/// (gaps it skips read as zeros); `None` once it writes behind itself.
struct Hashing {
    hash: Option<blake3::Hasher>,
    to: u64,
}

impl Hashing {
    fn written(&mut self, at: u64, buf: &[u8]) {
        let Some(h) = self.hash.as_mut() else {
            return;
        };
        if at < self.to {
            self.hash = None;
            return;
        }
        zeros(h, at - self.to);
        h.update(buf);
        self.to = at + buf.len() as u64;
    }

    /// The hash of an image of `size` bytes.
    fn finish(mut self, size: u64) -> Option<String> {
        let mut h = self.hash.take()?;
        if size < self.to {
            return None;
        }
        zeros(&mut h, size - self.to);
        Some(h.finalize().to_hex().to_string())
    }
}

/// Feed `n` zero bytes to `h`.
fn zeros(h: &mut blake3::Hasher, mut n: u64) {
    static Z: [u8; 64 * 1024] = [0; 64 * 1024];
    while n > 0 {
        let k = n.min(Z.len() as u64) as usize;
        h.update(&Z[..k]);
        n -= k as u64;
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

/// Write `img` into `file` (new and empty), make its length the image size
/// and sync it.
pub fn write_image(
    img: &VolumeImage,
    file: &mut DirectFile,
    meter: &mut Meter<'_>,
) -> Result<Written, IsoError> {
    let mut hashing = Hashing {
        hash: Some(blake3::Hasher::new()),
        to: 0,
    };
    let dev = OutDevice {
        file,
        len: 0,
        hashing: &mut hashing,
        meter,
    };
    let result = hadris_iso::sync::write(dev, &img.tree, &img.options);
    if meter.cancelled {
        return Err(IsoError::Cancelled);
    }
    let report = result.map_err(|e| IsoError::Write(e.to_string()))?;
    let size = report.size();
    // Blocks the writer left as holes (system area, gaps) read as zeros;
    // the file must still be as long as the image.
    file.flush_all().map_err(IsoError::io("write"))?;
    if file.file().metadata().map_err(IsoError::io("stat"))?.len() != size {
        file.set_len(size).map_err(IsoError::io("resize"))?;
    }
    file.sync_all().map_err(IsoError::io("sync"))?;
    Ok(Written {
        size,
        blake3: hashing.finish(size),
    })
}
