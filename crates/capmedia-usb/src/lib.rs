//! The `usb-raw` sink: capture media as a whole bootable disk (one FAT32
//! partition, MBR or GPT) written to a USB drive or to a raw image file.
//!
//! The disk itself comes from `capmedia-disk`; this crate decides where it
//! goes and keeps that safe:
//! - a block device is examined first (sysfs, mount table, swaps; see
//!   [`device`]) and named to the user by model, size and bus; internal,
//!   mounted and system disks are refused, and erasing needs `yes`;
//! - an image file is written beside its target under a temporary name,
//!   synced, read back and only then renamed over the old one;
//! - every medium is read back against its `capmedia.json`, bypassing the
//!   page cache for devices.

pub use capmedia_device as device;

use std::fs::{self, File, OpenOptions};

use capmedia_directio::DirectFile;
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use capmedia_content::{Capacity, MediaPlan, Volume};
use capmedia_disk::{
    check_plan, min_disk_size, verify_while_syncing, write_disk, DiskError, DiskLayout, DiskReader,
    HashingReader, PartitionScheme,
};
use capmedia_sink::output::{check_output, OutputKind, OutputSet};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, Progress, SinkError, SinkInfo, SinkOption, VerifyReport,
    VerifyRequest, WriteReport,
};

pub use device::{Bus, DeviceInfo, DeviceTarget, Mount, Output, SystemPaths};

/// The sink's name, as given to `--sink`.
pub const NAME: &str = "usb-raw";

/// The `usb-raw` sink.
#[derive(Debug, Clone, Default)]
pub struct UsbRawSink {
    system: SystemPaths,
}

/// Where the disk goes, as `check` found it.
#[derive(Debug, Clone)]
enum Target {
    Image { path: PathBuf, size: u64 },
    Device { path: PathBuf },
}

/// Everything `check` decided; `write` acts on it.
#[derive(Debug, Clone)]
struct Prepared {
    target: Target,
    layout: DiskLayout,
    notes: Vec<String>,
}

fn disk_err(e: DiskError) -> SinkError {
    match e {
        DiskError::Cancelled => SinkError::cancelled(),
        DiskError::Io(e) => SinkError::io(e.to_string()),
        DiskError::Source { .. } | DiskError::SourceChanged { .. } => SinkError::io(e.to_string()),
        DiskError::NoFatPartition(_) => SinkError::corrupt(e.to_string()),
        DiskError::NotFat32(_) | DiskError::PartitionTable(_) => SinkError::internal(e.to_string()),
        _ => SinkError::refused(e.to_string()),
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> SinkError {
    SinkError::io(format!("{what} {}: {e}", path.display()))
}

impl UsbRawSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// A sink reading sysfs, the mount table and swaps from elsewhere
    /// (tests use fake trees).
    pub fn with_system(system: SystemPaths) -> Self {
        UsbRawSink { system }
    }

    fn scheme(plan: &MediaPlan) -> Result<PartitionScheme, SinkError> {
        match plan.option("partition-scheme") {
            None => Ok(PartitionScheme::Mbr),
            Some(s) => s.parse().map_err(disk_err),
        }
    }

    /// Resolve the output with the same rules the driver applies
    /// (`capmedia-device`), so the sink is safe on its own too; a device
    /// must be writable, and writing it (not checking it) needs `yes`.
    fn resolve(&self, plan: &MediaPlan, for_write: bool) -> Result<Output, SinkError> {
        let out = device::resolve_output(
            &plan.output,
            &self.system,
            device::Overrides {
                devices: true,
                allow_fixed_disk: plan.flag("allow-fixed-disk"),
            },
        )
        .map_err(|e| SinkError::refused(e.to_string()))?;
        if let Output::Device(t) = &out {
            if for_write && !plan.flag("yes") {
                return Err(SinkError::refused(format!(
                    "refusing to write {}: writing it erases everything on it: pass yes to confirm",
                    t.info.describe()
                )));
            }
            if let Err(e) = rustix::fs::access(
                &t.path,
                rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK,
            ) {
                return Err(SinkError::refused(format!(
                    "cannot open {} for writing: {e}",
                    t.path.display()
                )));
            }
        }
        Ok(out)
    }

    fn prepare(&self, plan: &MediaPlan, for_write: bool) -> Result<Prepared, SinkError> {
        let scheme = Self::scheme(plan)?;
        if let Some(preset) = plan.capacity.disc_preset() {
            return Err(SinkError::refused(format!(
                "--media-size {preset} is a disc's capacity, not a USB drive's: give the stick's size in bytes with K/M/G (e.g. --media-size 16G), or leave it out for an image just large enough; for a drive, its own size is used"
            )));
        }
        check_plan(plan).map_err(disk_err)?;
        let mut notes = Vec::new();
        let (target, size) = if let Output::Device(t) = self.resolve(plan, for_write)? {
            let DeviceTarget { path, info, .. } = *t;
            if let Some(cap) = plan.capacity.bytes() {
                if cap < info.size {
                    notes.push(format!(
                        "media size {cap} bytes is ignored for a device: the whole {} is used",
                        device::human_size(info.size)
                    ));
                }
            }
            notes.push(format!(
                "target device {}: {}; everything on it will be erased",
                path.display(),
                info.describe()
            ));
            let size = info.size;
            (Target::Device { path }, size)
        } else {
            let size = match plan.capacity {
                Capacity::Bytes(b) => b / 512 * 512,
                Capacity::Unlimited => min_disk_size(plan),
            };
            // The data actually written must fit on the file system holding
            // the image (the rest stays sparse).
            let out = &plan.output;
            check_output(out, OutputKind::File, plan.content_bytes())?;
            notes.push(format!("target image {} of {size} bytes", out.display()));
            (
                Target::Image {
                    path: out.clone(),
                    size,
                },
                size,
            )
        };
        let layout = DiskLayout::new(size, scheme).map_err(disk_err)?;
        layout.check_fits(plan).map_err(disk_err)?;
        notes.push(format!(
            "{} partition table, FAT32 with {}-byte clusters, label {:?}",
            scheme,
            layout.fat.cluster_bytes(),
            String::from_utf8_lossy(&capmedia_disk::fat_label(&plan.label)).trim_end()
        ));
        Ok(Prepared {
            target,
            layout,
            notes,
        })
    }

    fn volume(plan: &MediaPlan, p: &Prepared) -> Volume {
        Volume::whole(
            plan,
            plan.content_bytes(),
            Capacity::Bytes(p.layout.disk_bytes),
        )
    }

    fn write_image(
        &self,
        plan: &MediaPlan,
        path: &Path,
        size: u64,
        scheme: PartitionScheme,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<String, SinkError> {
        let mut set = OutputSet::begin(path, OutputKind::File, plan.content_bytes())?;
        let tmp_path = set.create_file(path)?;
        OpenOptions::new()
            .write(true)
            .open(&tmp_path)
            .and_then(|f| f.set_len(size))
            .map_err(|e| io_err("cannot size", &tmp_path, e))?;
        // Written past the page cache (see capmedia-directio); `set` owns
        // the temporary and removes it on failure.
        let mut out =
            DirectFile::open_rw(&tmp_path, 0).map_err(|e| io_err("cannot open", &tmp_path, e))?;
        // The read-back's reads go beside the writes (capmedia-directio).
        out.read_behind(size)
            .map_err(|e| io_err("cannot open", &tmp_path, e))?;
        write_disk(&mut out, size, plan, scheme, progress, cancel).map_err(disk_err)?;
        // Every run on the medium (and the writer thread gone); the fsync
        // then runs beside the read-back, and both must pass before commit.
        let file = out
            .into_file()
            .map_err(|e| io_err("cannot write", &tmp_path, e))?;
        let (verified, synced) =
            verify_while_syncing(&file, || verify_image(&tmp_path, progress, cancel));
        drop(file);
        let (outcome, blake3) = verified?;
        synced.map_err(|e| io_err("cannot sync", &tmp_path, e))?;
        if !outcome.is_ok() {
            return Err(corrupt(&tmp_path, &outcome));
        }
        if cancel.is_cancelled() {
            return Err(SinkError::cancelled());
        }
        // A rename: the bytes hashed are the output's.
        set.commit(&[])?;
        Ok(blake3)
    }

    fn write_device(
        &self,
        plan: &MediaPlan,
        path: &Path,
        scheme: PartitionScheme,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<u64, SinkError> {
        // O_EXCL on a block device: the kernel refuses it while anything
        // (a mount, device-mapper) holds the device, closing the window
        // between the check and the write.
        let mut f = DirectFile::open_rw(path, libc::O_EXCL)
            .map_err(|e| io_err("cannot open (exclusively)", path, e))?;
        let size = f.len();
        f.read_behind(plan.content_bytes())
            .map_err(|e| io_err("cannot open", path, e))?;
        write_disk(&mut f, size, plan, scheme, progress, cancel).map_err(|e| match e {
            DiskError::Cancelled => SinkError::cancelled(),
            e => SinkError::io(format!(
                "writing {} failed part-way ({e}); the drive must be written again",
                path.display()
            )),
        })?;
        f.sync_all().map_err(|e| io_err("cannot sync", path, e))?;
        // Written through the page cache (direct I/O off), the cache holds
        // what was written, not what the drive holds: drop it, read again.
        let direct = f.is_direct();
        drop(f);
        let outcome = if direct {
            verify_written(path, progress, cancel)?
        } else {
            verify_path(path, true, progress, cancel)?
        };
        if !outcome.is_ok() {
            return Err(corrupt(path, &outcome));
        }
        Ok(size)
    }
}

fn corrupt(path: &Path, o: &capmedia_manifest::VerifyOutcome) -> SinkError {
    let list: Vec<String> = o.problems.iter().take(5).map(|p| p.to_string()).collect();
    SinkError::corrupt(format!(
        "read-back of {} found {} bad file(s): {}",
        path.display(),
        o.problems.len(),
        list.join("; ")
    ))
}

/// Read a medium back against its manifest, past the page cache where the
/// file system allows it (the bytes come from the drive, not from memory).
/// Where it does not, a device's cached pages are dropped first.
fn verify_path(
    path: &Path,
    is_device: bool,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<capmedia_manifest::VerifyOutcome, SinkError> {
    let f = DirectFile::open_read(path).map_err(|e| io_err("cannot open", path, e))?;
    if is_device && !f.is_direct() {
        drop_cache(f.file());
    }
    verify_disk(f, path, progress, cancel)
}

/// The read-back of a drive just written with read-behind: the pages read
/// back beside the writes serve it (see capmedia-directio).
fn verify_written(
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<capmedia_manifest::VerifyOutcome, SinkError> {
    let f = DirectFile::open_read_behind(path).map_err(|e| io_err("cannot open", path, e))?;
    verify_disk(f, path, progress, cancel)
}

/// [`verify_written`] for a new image file, which also returns the image's
/// BLAKE3 for the report, taken from the same reads (capmedia-disk's
/// `HashingReader`): no second pass over the image.
fn verify_image(
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<(capmedia_manifest::VerifyOutcome, String), SinkError> {
    let f = DirectFile::open_read_behind(path).map_err(|e| io_err("cannot open", path, e))?;
    let mut hashing = HashingReader::new(f).map_err(|e| io_err("reading", path, e))?;
    let outcome = verify_disk(&mut hashing, path, progress, cancel)?;
    if !outcome.is_ok() || cancel.is_cancelled() {
        // Not reported: no need to read the rest.
        return Ok((outcome, String::new()));
    }
    let (blake3, _) = hashing.finish().map_err(|e| io_err("reading", path, e))?;
    Ok((outcome, blake3))
}

fn verify_disk<T: io::Read + io::Seek>(
    disk: T,
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<capmedia_manifest::VerifyOutcome, SinkError> {
    let mut reader = DiskReader::open_read_ahead(disk).map_err(disk_err)?;
    capmedia_manifest::verify(&mut reader, progress, cancel).map_err(|e| match e {
        capmedia_manifest::ManifestError::Io(e) => io_err("reading", path, e),
        capmedia_manifest::ManifestError::Cancelled => SinkError::cancelled(),
        e => SinkError::corrupt(format!("{}: {e}", path.display())),
    })
}

/// Flush and evict the device's cached pages (best effort: the read-back
/// stays correct without it, only less strict).
fn drop_cache(f: &File) {
    let _ = f.sync_all();
    let _ = rustix::fs::fadvise(f, 0, None::<NonZeroU64>, rustix::fs::Advice::DontNeed);
}

impl MediaSink for UsbRawSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "a bootable FAT32 disk (MBR or GPT) written to a removable drive or a raw image file".to_owned(),
            options: vec![
                SinkOption {
                    name: "partition-scheme".into(),
                    values: "mbr|gpt".into(),
                    default: Some("mbr".into()),
                    help: "mbr: one active FAT32 partition; gpt: one EFI System Partition".into(),
                },
                SinkOption {
                    name: "allow-fixed-disk".into(),
                    values: "true".into(),
                    default: None,
                    help: "also write a disk that is not removable and not on USB, or a partition".into(),
                },
                SinkOption {
                    name: "yes".into(),
                    values: "true".into(),
                    default: None,
                    help: "confirm erasing the target device".into(),
                },
            ],
            writes_devices: true,
            streams: true,
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        let p = self.prepare(plan, false)?;
        Ok(CheckReport {
            volumes: vec![Self::volume(plan, &p)],
            notes: p.notes,
        })
    }

    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        let p = self.prepare(plan, true)?;
        for n in &p.notes {
            progress.message(n);
        }
        if cancel.is_cancelled() {
            return Err(SinkError::cancelled());
        }
        let scheme = p.layout.scheme;
        // An image's BLAKE3 comes from its read-back; a device's whole
        // size is not worth hashing (the report leaves it out).
        let (bytes, blake3) = match &p.target {
            Target::Image { path, size } => {
                let h = self.write_image(plan, path, *size, scheme, progress, cancel)?;
                (*size, Some(h))
            }
            Target::Device { path, .. } => (
                self.write_device(plan, path, scheme, progress, cancel)?,
                None,
            ),
        };
        let mut report = WriteReport::single(NAME, plan, plan.output.clone(), bytes, true);
        for o in &mut report.outputs {
            o.blake3.clone_from(&blake3);
        }
        Ok(report)
    }

    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        VerifyReport::each(request, |out| {
            let is_device = fs::metadata(out)
                .map(|m| m.file_type().is_block_device())
                .map_err(|e| io_err("cannot open", out, e))?;
            verify_path(out, is_device, progress, cancel)
        })
    }
}
