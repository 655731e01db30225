//! The `iso-set` sink: a capture-media plan as a set of bootable ISO 9660
//! images (level 3 + Joliet), split by media size, written beside the
//! target under temporary names and put in place only when the whole set is
//! written, synced and read back.
//!
//! The ISO writing itself is `hadris-iso`, which streams host files in
//! 64 KiB chunks and reads no clock; this crate decides what goes on which
//! volume, builds the El Torito setup (BIOS `etfsboot.com`, EFI `efisys.bin`
//! or a FAT image it builds from `efi/boot/boot*.efi`), and keeps an existing
//! set safe.

mod efiboot;
mod hash;
mod image;
mod layout;
mod output;
mod reader;

use std::path::{Path, PathBuf};

use capmedia_content::{stream, Capacity, EntrySource, MediaPlan, Volume};
use capmedia_directio::DirectFile;
use capmedia_manifest::Manifest;
use capmedia_sink::output::{OutputKind, OutputSet};
use capmedia_sink::{
    Cancel, CheckReport, MediaSink, OutputFile, Progress, SinkError, SinkInfo, SinkOption,
    VerifyReport, VerifyRequest, VolumeVerify, WriteReport,
};

pub use layout::{volume_id, volume_paths};
pub use reader::IsoReader;

use image::{Boot, BootImage, ImageSource, Overlays, VolumeImage};

/// The sink's name on the command line.
pub const NAME: &str = "iso-set";

/// Why a set cannot be checked, written or verified.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("{0}")]
    Refused(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {message}")]
    Source { path: PathBuf, message: String },
    #[error("{path} changed since the plan was made: {planned} bytes planned, {actual} now")]
    SourceChanged {
        path: PathBuf,
        planned: u64,
        actual: u64,
    },
    #[error("SOURCE_DATE_EPOCH {0} is out of range")]
    BadEpoch(u64),
    #[error("laying out the ISO image: {0}")]
    Layout(String),
    #[error("writing the ISO image: {0}")]
    Write(String),
    #[error("building the EFI boot image: {0}")]
    EfiImage(String),
    #[error("{0}")]
    Corrupt(String),
    /// From the SDK's output protocol, kind kept.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

impl IsoError {
    /// A closure turning an `io::Error` into [`IsoError::Io`] saying what
    /// was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> IsoError {
        let what = what.into();
        move |source| IsoError::Io { what, source }
    }
}

impl From<IsoError> for SinkError {
    fn from(e: IsoError) -> Self {
        let msg = e.to_string();
        match e {
            IsoError::Refused(_) | IsoError::BadEpoch(_) | IsoError::Layout(_) => {
                SinkError::refused(msg)
            }
            IsoError::Cancelled => SinkError::cancelled(),
            IsoError::Corrupt(_) => SinkError::corrupt(msg),
            IsoError::Io { .. }
            | IsoError::Source { .. }
            | IsoError::SourceChanged { .. }
            | IsoError::Write(_)
            | IsoError::EfiImage(_) => SinkError::io(msg),
            IsoError::Sink(e) => e,
        }
    }
}

/// One volume of a laid-out set.
#[derive(Debug)]
pub struct PlannedVolume {
    pub number: u32,
    pub count: u32,
    pub output: PathBuf,
    /// Indices into `plan.entries`.
    pub entries: Vec<usize>,
    /// Exact image size in bytes.
    pub size: u64,
    pub volume_id: String,
    image: VolumeImage,
    /// Where streamed entries and the final manifest go (for writing).
    overlays: Overlays,
}

/// A set laid out and checked, ready to write.
#[derive(Debug)]
pub struct SetLayout {
    pub volumes: Vec<PlannedVolume>,
    /// The folder the set is written into.
    pub dir: PathBuf,
    /// The stand-ins the tree names, kept while it is written.
    _placeholders: image::Placeholders,
}

impl SetLayout {
    pub fn total_bytes(&self) -> u64 {
        self.volumes.iter().map(|v| v.size).sum()
    }

    /// The layout as `capmedia_content::Volume`s.
    pub fn to_volumes(&self, plan: &MediaPlan) -> Vec<Volume> {
        self.volumes
            .iter()
            .map(|v| Volume {
                number: v.number,
                count: v.count,
                output: v.output.clone(),
                entries: v
                    .entries
                    .iter()
                    .map(|&i| plan.entries[i].path.clone())
                    .collect(),
                used: v.size,
                capacity: plan.capacity,
            })
            .collect()
    }
}

/// The `iso-set` sink.
#[derive(Debug, Default, Clone, Copy)]
pub struct IsoSetSink;

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
}

/// Where a boot image file can go in the tree: the path of the plan entry
/// that is the same host file, else `preferred` when it clashes with
/// nothing, else a path under `capmedia-boot/`.
fn place_boot_image(
    plan: &MediaPlan,
    source: Option<&Path>,
    preferred: &str,
    name: &str,
) -> (String, bool) {
    // A one-pass plan names a boot image with a streamed entry's bytes by
    // that stream.
    if let Some(e) = plan.entries.iter().find(|e| {
        e.role.is_boot_volume()
            && matches!(&e.source,
                EntrySource::File(p) | EntrySource::Stream { path: p, .. }
                    if Some(p.as_path()) == source)
    }) {
        return (e.path.as_str().to_owned(), true);
    }
    let clashes = |candidate: &str| {
        let c = candidate.to_ascii_lowercase();
        plan.entries.iter().any(|e| {
            let k = e.path.case_key();
            k == c || k.starts_with(&format!("{c}/")) || c.starts_with(&format!("{k}/"))
        })
    };
    if !clashes(preferred) {
        return (preferred.to_owned(), false);
    }
    for n in 0.. {
        let p = if n == 0 {
            format!("capmedia-boot/{name}")
        } else {
            format!("capmedia-boot{n}/{name}")
        };
        if !clashes(&p) {
            return (p, false);
        }
    }
    unreachable!("some capmedia-boot folder is free")
}

/// The El Torito setup the plan asks for.
fn resolve_boot(plan: &MediaPlan, content: bool) -> Result<Boot, IsoError> {
    let mut boot = Boot::default();
    if let Some(b) = &plan.boot.bios {
        let (path, in_plan) =
            place_boot_image(plan, Some(&b.source), "boot/etfsboot.com", "etfsboot.com");
        boot.bios = Some(BootImage {
            path,
            content: ImageSource::Host(b.source.clone()),
            in_plan,
            load_sectors: Some(b.load_sectors.unwrap_or(8)),
            size: b.size,
        });
    }
    if let Some(u) = &plan.boot.uefi {
        let (path, in_plan) = place_boot_image(
            plan,
            Some(&u.source),
            "efi/microsoft/boot/efisys.bin",
            "efisys.bin",
        );
        boot.uefi = Some(BootImage {
            path,
            content: ImageSource::Host(u.source.clone()),
            in_plan,
            load_sectors: u.load_sectors,
            size: u.size,
        });
    } else {
        let loaders = efiboot::loaders(plan);
        if !loaders.is_empty() {
            let bytes = efiboot::build(plan, &loaders, content)?;
            let (path, _) =
                place_boot_image(plan, None, "efi/microsoft/boot/efisys.bin", "efisys.bin");
            boot.uefi = Some(BootImage {
                path,
                content: ImageSource::Bytes(std::sync::Arc::new(bytes)),
                in_plan: false,
                load_sectors: None,
                size: 0,
            });
        }
    }
    for img in [&boot.bios, &boot.uefi].into_iter().flatten() {
        // A boot image with the bytes of a streamed entry outside the boot
        // volume's files is read whole: wait until that stream is verified.
        if let (ImageSource::Host(p), false, true) = (&img.content, img.in_plan, content) {
            if plan
                .entries
                .iter()
                .any(|e| matches!(&e.source, EntrySource::Stream { path, .. } if path == p))
            {
                stream_blake3(p, img.size).map_err(|err| IsoError::Source {
                    path: p.clone(),
                    message: err.to_string(),
                })?;
            }
        }
        if let ImageSource::Host(p) = &img.content {
            if img.size == 0 {
                return Err(IsoError::Refused(format!(
                    "boot image {} is empty",
                    p.display()
                )));
            }
        }
    }
    Ok(boot)
}

/// Lay out and check a plan: everything that can refuse refuses here,
/// before any byte is written. Reads no source: only the sizes the plan
/// states (the driver checks before it fetches).
pub fn prepare(plan: &MediaPlan) -> Result<SetLayout, IsoError> {
    prepare_with(plan, false)
}

/// [`prepare`], with the generated EFI image holding the real loaders when
/// `content` is set (for writing).
fn prepare_with(plan: &MediaPlan, content: bool) -> Result<SetLayout, IsoError> {
    plan.validate()
        .map_err(|e| IsoError::Refused(format!("invalid plan: {e}")))?;
    let dir = output::output_dir(&plan.output)?;
    for e in &plan.entries {
        for c in e.path.components() {
            if c.encode_utf16().count() > 64 {
                return Err(IsoError::Refused(format!(
                    "{}: the name {c:?} is longer than the 64 characters Joliet allows",
                    e.path
                )));
            }
        }
    }
    let cap = plan.capacity.bytes();
    if let Some(cap) = cap {
        for e in &plan.entries {
            let need = layout::FIXED_OVERHEAD + layout::file_cost(&e.path, e.size);
            if need > cap {
                return Err(IsoError::Refused(format!(
                    "{} is {} bytes ({}), larger than one medium ({}); files are never split: choose a larger media size (at least {})",
                    e.path,
                    e.size,
                    mib(e.size),
                    plan.capacity,
                    Capacity::smallest_preset_for(need).0
                )));
            }
        }
    }
    let boot = resolve_boot(plan, content)?;
    let placeholders = image::Placeholders::new(!content)?;
    let ph = &placeholders;

    // Volume 1 with only what must be on it: refuse early, with the room it
    // needs.
    let (boot_idx, _) = layout::groups(plan);
    let boot_only = build_volume(plan, &boot_idx, 1, 1, Some(&boot), ph)?;
    let boot_size = image::exact_size(&boot_only)?;
    if !plan.capacity.holds(boot_size) {
        let (preset, _) = Capacity::smallest_preset_for(boot_size);
        return Err(IsoError::Refused(format!(
            "the boot content needs {boot_size} bytes ({}) on volume 1, but the media size holds {}; the smallest media size that fits is {preset}",
            mib(boot_size),
            plan.capacity
        )));
    }

    let mut budget = cap;
    for _ in 0..8 {
        let bins = layout::pack(plan, budget, boot.extra_bytes());
        let count = u32::try_from(bins.len())
            .map_err(|_| IsoError::Refused("too many volumes".to_owned()))?;
        let paths = layout::volume_paths(&plan.output, count);
        let mut volumes = Vec::new();
        let mut overshoot = 0u64;
        for (i, (entries, output)) in bins.into_iter().zip(paths).enumerate() {
            let number = i as u32 + 1;
            let b = (number == 1).then_some(&boot);
            let img = build_volume(plan, &entries, number, count, b, ph)?;
            let report = image::layout_report(&img)?;
            let size = report.size();
            let overlays = if content {
                Overlays::of(plan, &entries, &report)?
            } else {
                Overlays::default()
            };
            if let Some(cap) = cap {
                overshoot = overshoot.max(size.saturating_sub(cap));
            }
            volumes.push(PlannedVolume {
                number,
                count,
                output,
                entries,
                size,
                volume_id: layout::volume_id(&plan.label, number, count),
                image: img,
                overlays,
            });
        }
        if overshoot == 0 {
            let set = SetLayout {
                volumes,
                dir,
                _placeholders: placeholders,
            };
            output::check_free_space(&set)?;
            return Ok(set);
        }
        budget = budget.map(|b| b.saturating_sub(overshoot + 64 * layout::SECTOR));
    }
    Err(IsoError::Refused(format!(
        "could not lay the content out on media of {}; choose a larger media size",
        plan.capacity
    )))
}

fn build_volume(
    plan: &MediaPlan,
    entries: &[usize],
    number: u32,
    count: u32,
    boot: Option<&Boot>,
    placeholders: &image::Placeholders,
) -> Result<VolumeImage, IsoError> {
    let manifest = Manifest::for_volume(
        plan,
        number,
        count,
        entries.iter().map(|&i| &plan.entries[i].path),
    )
    .to_bytes();
    image::volume_image(
        plan,
        layout::entries(plan, entries),
        manifest,
        &layout::volume_id(&plan.label, number, count),
        boot,
        placeholders,
    )
}

/// Write the set: temporaries beside the target, synced, read back, then
/// renamed over the old set; old volumes the new set no longer has are
/// removed last.
pub fn write_set(
    plan: &MediaPlan,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<WriteReport, IsoError> {
    let mut out = OutputSet::begin(&plan.output, OutputKind::File, 0)?;
    let set = prepare_with(plan, true)?;
    if cancel.is_cancelled() {
        return Err(IsoError::Cancelled);
    }
    // The device flush of a volume (on this machine's virtual disk, the
    // host writing what O_DIRECT left in its cache: 0.3-0.6 s for 512 MiB)
    // runs beside the writing of the next volumes and the read-back; every
    // one has ended before the commit.
    std::thread::scope(|scope| {
        let mut syncs = Vec::new();
        let r = write_and_read_back(plan, &set, &mut out, progress, cancel, &mut |f, p| {
            syncs.push((p, scope.spawn(move || f.sync_all())));
        });
        for (p, h) in syncs {
            let synced = h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the sync thread panicked")));
            if r.is_ok() {
                synced.map_err(IsoError::io(format!("sync {}", p.display())))?;
            }
        }
        let hashes = r?;
        if cancel.is_cancelled() {
            return Err(IsoError::Cancelled);
        }
        let finals: Vec<PathBuf> = set.volumes.iter().map(|v| v.output.clone()).collect();
        let old = output::old_volumes(&set.dir, &plan.output, &finals);
        out.commit(&old)?;
        Ok(WriteReport {
            sink: NAME.to_owned(),
            set_id: plan.set_id.clone(),
            outputs: set
                .volumes
                .iter()
                .zip(hashes)
                .map(|(v, blake3)| OutputFile {
                    path: v.output.clone(),
                    bytes: v.size,
                    volume: v.number,
                    blake3,
                })
                .collect(),
            verified: true,
        })
    })
}

/// Write every volume of `set` under its temporary name (each handed to
/// `sync` once written), then read every one back; the image hashes.
fn write_and_read_back(
    plan: &MediaPlan,
    set: &SetLayout,
    out: &mut OutputSet,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
    sync: &mut dyn FnMut(std::fs::File, PathBuf),
) -> Result<Vec<Option<String>>, IsoError> {
    let mut temps = Vec::new();
    let mut hashes = Vec::new();
    let mut meter = image::Meter {
        progress,
        cancel,
        done: 0,
        total: set.total_bytes(),
        cancelled: false,
    };
    for v in &set.volumes {
        progress.message(&format!(
            "writing volume {} of {}: {} ({})",
            v.number,
            v.count,
            v.output.display(),
            mib(v.size)
        ));
        let tmp = out.create_file(&v.output)?;
        let mut file = DirectFile::open_rw(&tmp, 0)
            .map_err(IsoError::io(format!("cannot open {}", tmp.display())))?;
        file.read_behind(v.size)
            .map_err(IsoError::io(format!("cannot open {}", tmp.display())))?;
        temps.push(tmp);
        let manifest = || final_manifest(plan, v);
        let written = image::write_image(
            &v.image,
            v.size,
            plan,
            &v.overlays,
            &manifest,
            &mut file,
            &mut meter,
        )?;
        let size = written.size;
        hashes.push(written.blake3);
        let handle = file.file().try_clone().map_err(IsoError::io(format!(
            "cannot sync {}",
            tmp_path(&temps).display()
        )))?;
        sync(handle, tmp_path(&temps));
        if size != v.size || !plan.capacity.holds(size) {
            return Err(IsoError::Corrupt(format!(
                "volume {} came out at {size} bytes, not the {} planned (media size {})",
                v.number, v.size, plan.capacity
            )));
        }
    }
    // Read every volume back before anything of the old set is touched.
    let total: u64 = plan.content_bytes();
    let mut done = 0u64;
    for (v, tmp) in set.volumes.iter().zip(&temps) {
        if cancel.is_cancelled() {
            return Err(IsoError::Cancelled);
        }
        // Written with read-behind: the pages read back beside the writes
        // serve this read-back (capmedia-directio).
        let file = DirectFile::open_read_behind(tmp)
            .map_err(IsoError::io(format!("{}", tmp.display())))?;
        let outcome = verify_file(file, tmp, &Offset(progress, done, total), cancel)?;
        done += outcome.bytes_checked;
        let m = &outcome.manifest;
        if m.set_id != plan.set_id || m.volume != v.number || m.volumes != v.count {
            return Err(IsoError::Corrupt(format!(
                "volume {}: its manifest names volume {} of {} of set {}",
                v.number, m.volume, m.volumes, m.set_id
            )));
        }
        if let Some(p) = outcome.problems.first() {
            return Err(IsoError::Corrupt(format!(
                "volume {} read back wrong: {p} ({} problems)",
                v.number,
                outcome.problems.len()
            )));
        }
    }
    Ok(hashes)
}

/// The last temporary written.
fn tmp_path(temps: &[PathBuf]) -> PathBuf {
    temps.last().cloned().unwrap_or_default()
}

/// The manifest of volume `v` with the real BLAKE3 of its streamed
/// entries, once each stream is verified (their placeholders have the same
/// length, so it takes the place laid out).
fn final_manifest(plan: &MediaPlan, v: &PlannedVolume) -> Result<Vec<u8>, IsoError> {
    let mut m = Manifest::for_volume(
        plan,
        v.number,
        v.count,
        v.entries.iter().map(|&i| &plan.entries[i].path),
    );
    for &i in &v.entries {
        let e = &plan.entries[i];
        let EntrySource::Stream { path, size } = &e.source else {
            continue;
        };
        let b3 = stream_blake3(path, *size).map_err(|err| IsoError::Source {
            path: path.clone(),
            message: format!("{}: {err}", e.path),
        })?;
        for f in m.files.iter_mut().filter(|f| f.path == e.path) {
            f.blake3.clone_from(&b3);
        }
    }
    Ok(m.to_bytes())
}

/// The BLAKE3 of a verified stream; one the writer did not read to its end
/// (an empty file has no extent) is waited for.
fn stream_blake3(path: &Path, size: u64) -> std::io::Result<String> {
    if let Some(b) = stream::finished_blake3(path)? {
        return Ok(b);
    }
    let mut r = stream::StreamReader::open(path, size)?;
    std::io::copy(&mut r, &mut std::io::sink())?;
    stream::finished_blake3(path)?
        .ok_or_else(|| std::io::Error::other("its content was not verified"))
}

/// Read one ISO back against its manifest.
pub fn verify_one(
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<capmedia_manifest::VerifyOutcome, IsoError> {
    let file = DirectFile::open_read(path).map_err(IsoError::io(format!("{}", path.display())))?;
    verify_file(file, path, progress, cancel)
}

/// [`verify_one`] over `file`, open on `path`.
fn verify_file(
    file: DirectFile,
    path: &Path,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<capmedia_manifest::VerifyOutcome, IsoError> {
    let mut r =
        IsoReader::from_file(file, path).map_err(IsoError::io(format!("{}", path.display())))?;
    capmedia_manifest::verify(&mut r, progress, cancel).map_err(|e| match e {
        capmedia_manifest::ManifestError::Cancelled => IsoError::Cancelled,
        e => IsoError::Corrupt(format!("{}: {e}", path.display())),
    })
}

/// Progress of one volume's read-back as part of the whole set's.
struct Offset<'a>(&'a dyn Progress, u64, u64);

impl Progress for Offset<'_> {
    fn update(&self, phase: &str, done: u64, _: u64) {
        self.0.update(phase, self.1 + done, self.2);
    }
}

/// The other volumes of the set `path` belongs to, found beside it by name
/// (`<stem>_<n>.<ext>`), for a verify request naming one volume.
fn siblings(path: &Path, count: u32) -> Vec<PathBuf> {
    let (stem, ext) = layout::stem_ext(path);
    let base = match stem.rsplit_once('_') {
        Some((b, d)) if !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()) => b.to_owned(),
        _ => stem,
    };
    layout::volume_paths(&path.with_file_name(format!("{base}.{ext}")), count)
}

impl MediaSink for IsoSetSink {
    fn describe(&self) -> SinkInfo {
        SinkInfo {
            name: NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            description: "bootable ISO 9660 + Joliet image set (El Torito BIOS and UEFI), split by media size".to_owned(),
            options: vec![SinkOption {
                name: "media-size".to_owned(),
                values: "cd|dvd|dvd-dl|unlimited|<bytes>".to_owned(),
                default: Some("unlimited".to_owned()),
                help: "taken from the plan's capacity; sets of several volumes are named <stem>_<n>.iso".to_owned(),
            }],
            // Streamed entries are laid out over stand-ins and their bytes
            // put in place as they arrive (`image::Overlays`).
            streams: true,
            ..Default::default()
        }
    }

    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError> {
        let set = prepare(plan)?;
        let mut notes = Vec::new();
        if set.volumes.len() > 1 {
            notes.push(format!(
                "the content needs {} volumes of {}",
                set.volumes.len(),
                plan.capacity
            ));
        }
        for v in &set.volumes {
            if v.output.exists() {
                notes.push(format!(
                    "{} exists; it is replaced only after the new set is written and verified",
                    v.output.display()
                ));
            }
        }
        Ok(CheckReport {
            volumes: set.to_volumes(plan),
            notes,
        })
    }

    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError> {
        Ok(write_set(plan, progress, cancel)?)
    }

    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError> {
        let mut queue: Vec<PathBuf> = request.outputs.clone();
        let mut report = VerifyReport::default();
        let mut i = 0;
        while i < queue.len() {
            let path = queue[i].clone();
            i += 1;
            let outcome = verify_one(&path, progress, cancel)?;
            if request.outputs.len() == 1 && outcome.manifest.volumes > 1 && i == 1 {
                for s in siblings(&path, outcome.manifest.volumes) {
                    if !queue.contains(&s) {
                        if !s.exists() {
                            return Err(SinkError::corrupt(format!(
                                "{} is volume {} of {}, but {} is missing",
                                path.display(),
                                outcome.manifest.volume,
                                outcome.manifest.volumes,
                                s.display()
                            )));
                        }
                        queue.push(s);
                    }
                }
            }
            report.volumes.push(VolumeVerify {
                output: path,
                outcome,
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use capmedia_content::{EntryRole, PlanBuilder};
    use capmedia_sink::{NeverCancel, NoProgress};

    /// A streamed file laid out before the manifest (a root file sorting
    /// before `capmedia.json`) gets its manifest made when the writer
    /// reaches it; one after (in a folder, laid out after the root's
    /// files) gets it patched at the end. Both give the real hash, and the
    /// image's BLAKE3 is the file's.
    #[test]
    fn the_manifest_is_made_in_place_or_patched_after_the_streams() {
        let t = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let src = t.path().join("src.bin");
        std::fs::write(&src, &data).unwrap();
        for (name, late) in [("aaa.bin", false), ("sub/a.bin", true)] {
            let out = t.path().join(format!("{late}.iso"));
            let mut b = PlanBuilder::new("L", NAME, &out).source_date_epoch(1_700_000_000);
            b.add_file(name, &src, EntryRole::Package, "p").unwrap();
            let mut plan = b.build().unwrap();
            let b3 = plan.entries[0].blake3.clone();
            let s = t.path().join(format!("stream-{late}"));
            std::fs::copy(&src, &s).unwrap();
            stream::finish_ok(&s, &b3).unwrap();
            plan.entries[0].source = EntrySource::Stream {
                path: s,
                size: data.len() as u64,
            };
            plan.entries[0].blake3 = "0".repeat(64);
            let set = prepare_with(&plan, true).unwrap();
            assert_eq!(set.volumes[0].overlays.manifest_late, late, "{name}");
            drop(set);
            let r = write_set(&plan, &NoProgress, &NeverCancel).unwrap();
            let bytes = std::fs::read(&out).unwrap();
            assert_eq!(
                r.outputs[0].blake3.as_deref(),
                Some(blake3::hash(&bytes).to_hex().as_str())
            );
            let mut rd = IsoReader::open(&out).unwrap();
            let m = capmedia_manifest::read_manifest(&mut rd).unwrap();
            assert_eq!(m.files[0].blake3, b3, "{name}");
        }
    }
}
