//! The pipeline proper.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use capmedia_arch::{ArchError, ArchMismatch, WimImage};
use capmedia_content::{
    Arch, Capacity, EntryRole, EntrySource, MediaPath, MediaPlan, PackageId, PlanBuilder,
    PlanEntry, PlanError, Volume,
};
use capmedia_dp::{ContentCache, Dp, DpError, DpOptions, PackageContent};
use capmedia_sink::{
    Cancel, CheckReport, ErrorKind, MediaSink, Progress, SinkError, VerifyRequest,
};
use serde::Serialize;

use crate::layout::{self, BootFileEntry, BootFiles, LayoutError};

/// The BLAKE3 a plan entry carries until its bytes are hashed after the
/// fetch: as long as a real one, so the manifest (and so each volume's
/// size) that the sink checks is the size it writes.
pub(crate) const PENDING_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// What to build. Mirrors `capmedia capture`'s options.
#[derive(Debug, Clone)]
pub struct CaptureRequest {
    /// DP location: a path to `SCCMContentLib` or an `http(s)://` URL.
    pub dp: String,
    pub dp_options: DpOptions,
    pub boot_image: PackageId,
    pub out: PathBuf,
    pub target_arch: Option<Arch>,
    pub capacity: Capacity,
    pub label: String,
    pub boot_files: Option<PathBuf>,
    pub media_template: Option<PathBuf>,
    pub autorun: bool,
    /// Where generated files go (a fresh folder inside it, removed after).
    pub staging: Option<PathBuf>,
    /// The content cache, reused across runs.
    pub cache_dir: PathBuf,
    /// Sink options (`yes`, `allow-fixed-disk`, `vhd-type`, ...).
    pub options: BTreeMap<String, String>,
    pub source_date_epoch: u64,
    /// Plan and check only: fetch nothing, write nothing.
    pub dry_run: bool,
}

/// How the pipeline talks to its user. `Sync` because fetch reports from
/// download threads.
pub trait Events: Sync {
    /// A stage begins: resolve, validate, plan, check, fetch, hash, write, verify.
    fn stage(&self, stage: &str);
    fn progress(&self, phase: &str, done: u64, total: u64);
    fn message(&self, text: &str);
    /// Whether the user asked to stop (Ctrl-C).
    fn cancelled(&self) -> bool;
}

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Boxed: DP errors carry much context, and every `Result` of the
    /// pipeline would otherwise be that large.
    #[error(transparent)]
    Dp(Box<DpError>),
    #[error("DP {dp}: package {package} holds no {wim}: it is not a boot image package")]
    NotBootImage {
        dp: String,
        package: PackageId,
        wim: String,
    },
    #[error("DP {dp}: package {package}: {wim}: {source}")]
    Wim {
        dp: String,
        package: PackageId,
        wim: String,
        source: ArchError,
    },
    #[error("DP {dp}: package {package}: {wim} has {count} images and no boot index, and they differ in architecture; cannot tell which one boots")]
    NoBootImage {
        dp: String,
        package: PackageId,
        wim: String,
        count: usize,
    },
    #[error("{what}: {source}")]
    Arch { what: String, source: ArchMismatch },
    #[error("{what}: cannot read its PE header: {source}")]
    Loader { what: String, source: ArchError },
    #[error("DP {dp}: boot image package {package} carries no boot files (bootmgr, efi/boot/...); give --boot-files DIR, a Windows PE Media folder from the ADK")]
    NoBootFiles { dp: String, package: PackageId },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("the media plan is invalid: {0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Label(String),
    #[error("--media-template {path}: {reason}")]
    Template { path: PathBuf, reason: String },
    #[error("sink {sink}: {source}")]
    Sink { sink: String, source: SinkError },
    #[error("interrupted: existing outputs are untouched and temporary files were removed")]
    Cancelled,
    #[error("read-back of {output} found {count} problem(s): {first}")]
    Verify {
        output: PathBuf,
        count: usize,
        first: String,
    },
    #[error("staging folder: {0}")]
    Staging(std::io::Error),
}

impl From<DpError> for CaptureError {
    fn from(e: DpError) -> Self {
        CaptureError::Dp(Box::new(e))
    }
}

impl CaptureError {
    /// Whether the user stopped the run.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, CaptureError::Cancelled)
            || matches!(self, CaptureError::Sink { source, .. } if source.kind == ErrorKind::Cancelled)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BootImageInfo {
    pub package: PackageId,
    pub content: String,
    pub wim: String,
    pub size: u64,
    pub arch: Arch,
    pub image_index: u32,
    pub image_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    pub path: MediaPath,
    pub size: u64,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OutputReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub volume: u32,
    /// BLAKE3 of the whole output file (absent for devices).
    pub blake3: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub resolve_s: f64,
    pub fetch_s: f64,
    pub write_s: f64,
    pub verify_s: f64,
    pub total_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub dp: String,
    pub sink: String,
    pub label: String,
    pub set_id: String,
    pub dry_run: bool,
    pub target_arch: Option<Arch>,
    pub boot_image: BootImageInfo,
    pub files: Vec<PlannedFile>,
    pub content_bytes: u64,
    pub volumes: Vec<Volume>,
    pub notes: Vec<String>,
    pub outputs: Vec<OutputReport>,
    /// How the outputs were read back: "sink" (before they were put in
    /// place) or "driver" (after).
    pub verified_by: Option<String>,
    pub timings: Timings,
}

/// The sink's view of [`Events`].
struct SinkEvents<'a>(&'a dyn Events);

impl Progress for SinkEvents<'_> {
    fn update(&self, phase: &str, done: u64, total: u64) {
        self.0.progress(phase, done, total);
    }
    fn message(&self, text: &str) {
        self.0.message(text);
    }
}

impl Cancel for SinkEvents<'_> {
    fn is_cancelled(&self) -> bool {
        self.0.cancelled()
    }
}

fn sink_err(sink: &dyn MediaSink) -> impl Fn(SinkError) -> CaptureError + '_ {
    move |source| CaptureError::Sink {
        sink: sink.describe().name,
        source,
    }
}

fn check_cancel(events: &dyn Events) -> Result<(), CaptureError> {
    if events.cancelled() {
        Err(CaptureError::Cancelled)
    } else {
        Ok(())
    }
}

/// The image that boots: the boot index, or the only image, or any image
/// when all share one architecture (split WIMs carry no boot index).
fn booting_image<'a>(images: &'a [WimImage], boot: Option<&'a WimImage>) -> Option<&'a WimImage> {
    boot.or_else(|| {
        let first = images.first()?;
        images.iter().all(|i| i.arch == first.arch).then_some(first)
    })
}

/// Run the whole capture. `sink` is the sink named by the user.
pub fn capture(
    req: &CaptureRequest,
    sink: &dyn MediaSink,
    events: &dyn Events,
) -> Result<CaptureReport, CaptureError> {
    let t0 = Instant::now();
    let mut timings = Timings::default();
    let sink_name = sink.describe().name;
    layout::check_label(&req.label).map_err(CaptureError::Label)?;

    // -- resolve: the package on the DP, complete, before anything else.
    events.stage("resolve");
    // The fetch computes each file's BLAKE3 for the manifest in the same
    // pass as its SHA-256: the hash stage then reads no DP content again.
    let dp = Dp::open(
        &req.dp,
        DpOptions {
            blake3: true,
            ..req.dp_options.clone()
        },
    )?;
    let content = dp.resolve(&req.boot_image)?;
    dp.check_present(&content)?;
    let wim_name = content.package.boot_wim_name();
    let wim = capmedia_dp::boot_wim(&content)
        .ok_or_else(|| CaptureError::NotBootImage {
            dp: dp.name().to_owned(),
            package: content.package.clone(),
            wim: wim_name.clone(),
        })?
        .clone();
    timings.resolve_s = t0.elapsed().as_secs_f64();
    check_cancel(events)?;

    // -- validate: the architecture, from the WIM's own XML (range reads).
    events.stage("validate");
    let info =
        capmedia_arch::read_wim(&mut dp.remote_reader(&content, &wim)).map_err(|source| {
            CaptureError::Wim {
                dp: dp.name().to_owned(),
                package: content.package.clone(),
                wim: wim_name.clone(),
                source,
            }
        })?;
    let image = booting_image(&info.images, info.boot_image())
        .ok_or_else(|| CaptureError::NoBootImage {
            dp: dp.name().to_owned(),
            package: content.package.clone(),
            wim: wim_name.clone(),
            count: info.images.len(),
        })?
        .clone();
    let what_image = format!(
        "boot image {} ({}, image {}{})",
        content.package,
        wim_name,
        image.index,
        image
            .name
            .as_deref()
            .map(|n| format!(" \"{n}\""))
            .unwrap_or_default()
    );
    match req.target_arch {
        Some(t) => capmedia_arch::image_suits_target(t, image.arch),
        None if !image.arch.is_supported() => {
            Err(ArchMismatch::UnsupportedImage { image: image.arch })
        }
        None => Ok(()),
    }
    .map_err(|source| CaptureError::Arch {
        what: what_image.clone(),
        source,
    })?;

    // Only names blob paths; the folder is created just before fetching.
    let cache = ContentCache::at(&req.cache_dir);
    let boot_files = match &req.boot_files {
        Some(d) => BootFiles::Dir(d.clone()),
        None => package_boot_files(&dp, &content, &cache)?,
    };
    let boot_list = boot_files.entries()?;
    for loader in layout::uefi_loaders(&boot_list) {
        let what = format!("UEFI loader {}", loader.path);
        let pe = read_loader(&dp, &content, &boot_files, loader).map_err(|source| {
            CaptureError::Loader {
                what: what.clone(),
                source,
            }
        })?;
        capmedia_arch::uefi_loader_suits_image(image.arch, loader.path.as_str(), pe.arch).map_err(
            |source| CaptureError::Arch {
                what: format!("{what} for {what_image}"),
                source,
            },
        )?;
    }
    check_cancel(events)?;

    // -- plan: the medium's tree, every size known, no content read yet.
    events.stage("plan");
    let staging = match &req.staging {
        Some(d) => tempfile::Builder::new()
            .prefix("capmedia-staging-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("capmedia-staging-")
            .tempdir(),
    }
    .map_err(CaptureError::Staging)?;
    let mut entries = layout::boot_entries(&boot_list);
    entries.push(PlanEntry {
        path: MediaPath::new("sources/boot.wim").map_err(PlanError::from)?,
        source: EntrySource::File(cache.path_of(&wim.sha256)),
        size: wim.size,
        blake3: PENDING_HASH.to_owned(),
        role: EntryRole::BootImage,
        group: content.package.to_string(),
    });
    let mut template = Vec::new();
    if let Some(t) = &req.media_template {
        if !t.is_dir() {
            return Err(CaptureError::Template {
                path: t.clone(),
                reason: "not a folder".into(),
            });
        }
        template = capmedia_content::walk_tree(t)?;
    }
    let generated = |name: &str, data: Vec<u8>| -> Result<PlanEntry, CaptureError> {
        let p = staging.path().join(name);
        std::fs::write(&p, &data).map_err(CaptureError::Staging)?;
        Ok(PlanEntry {
            path: MediaPath::new(name).map_err(PlanError::from)?,
            source: EntrySource::File(p),
            size: data.len() as u64,
            blake3: PENDING_HASH.to_owned(),
            role: EntryRole::Generated,
            group: "media".into(),
        })
    };
    entries.push(generated(
        "MediaLabel.txt",
        layout::media_label_txt(&req.label),
    )?);
    if req.autorun {
        let exe = template
            .iter()
            .find(|e| {
                e.path
                    .as_str()
                    .to_ascii_lowercase()
                    .ends_with("/tsmbautorun.exe")
            })
            .map(|e| e.path.clone());
        entries.push(generated(
            "autorun.inf",
            layout::autorun_inf(&req.label, exe.as_ref()),
        )?);
    }
    entries.extend(template.iter().map(|e| PlanEntry {
        path: e.path.clone(),
        source: EntrySource::File(e.local.clone()),
        size: e.size,
        blake3: PENDING_HASH.to_owned(),
        role: EntryRole::Template,
        group: "template".into(),
    }));
    let make_plan = |entries: Vec<PlanEntry>| -> Result<MediaPlan, CaptureError> {
        let mut b = PlanBuilder::new(&req.label, &sink_name, &req.out)
            .capacity(req.capacity)
            .target_arch(req.target_arch)
            .boot_arch(Some(image.arch))
            .source_date_epoch(req.source_date_epoch)
            .boot(layout::boot_spec(&boot_list));
        for (k, v) in &req.options {
            b = b.option(k, v);
        }
        for e in entries {
            b.add_known(e);
        }
        Ok(b.build()?)
    };
    let draft = make_plan(entries.clone())?;

    // -- check: the sink refuses here, before anything is fetched or written.
    events.stage("check");
    let sink_error = sink_err(sink);
    let checked: CheckReport = sink.check(&draft).map_err(&sink_error)?;
    for n in &checked.notes {
        events.message(n);
    }
    let boot_image = BootImageInfo {
        package: content.package.clone(),
        content: content.content.to_string(),
        wim: wim_name.clone(),
        size: wim.size,
        arch: image.arch,
        image_index: image.index,
        image_name: image.name.clone(),
    };
    let mut report = CaptureReport {
        dp: dp.name().to_owned(),
        sink: sink_name.clone(),
        label: req.label.clone(),
        set_id: draft.set_id.clone(),
        dry_run: req.dry_run,
        target_arch: req.target_arch,
        boot_image,
        files: draft
            .entries
            .iter()
            .map(|e| PlannedFile {
                path: e.path.clone(),
                size: e.size,
                source: describe_source(e, &content, &dp, &cache),
            })
            .collect(),
        content_bytes: draft.content_bytes(),
        volumes: checked.volumes.clone(),
        notes: checked.notes.clone(),
        outputs: Vec::new(),
        verified_by: None,
        timings: Timings::default(),
    };
    if req.dry_run {
        timings.total_s = t0.elapsed().as_secs_f64();
        report.timings = timings;
        return Ok(report);
    }
    check_cancel(events)?;

    // -- fetch: every file verified against the DP's SHA-256, into the cache.
    events.stage("fetch");
    let t = Instant::now();
    let cache = ContentCache::open(&req.cache_dir)?;
    let fetched = dp
        .fetch_with_cancel(
            &content,
            &cache,
            &|done, total| events.progress("fetch", done, total),
            &|| events.cancelled(),
        )
        .map_err(|e| match e {
            DpError::Cancelled => CaptureError::Cancelled,
            e => CaptureError::from(e),
        })?;
    timings.fetch_s = t.elapsed().as_secs_f64();
    check_cancel(events)?;

    // -- hash: the BLAKE3 the manifest promises, from the local bytes:
    // known from the fetch for DP content, read here for the rest.
    events.stage("hash");
    let known: BTreeMap<PathBuf, String> = fetched
        .into_iter()
        .filter_map(|f| Some((f.local, f.blake3?)))
        .collect();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let mut done = 0u64;
    for e in &mut entries {
        check_cancel(events)?;
        if let EntrySource::File(p) = &e.source {
            if let Some(b) = known.get(p) {
                e.blake3 = b.clone();
                done += e.size;
                events.progress("hash", done, total);
                continue;
            }
        }
        e.blake3 = blake3_of(&e.source, &mut |n| {
            done += n;
            events.progress("hash", done, total);
        })
        .map_err(|source| PlanError::Read {
            path: PathBuf::from(e.source.describe()),
            source,
        })?;
    }
    let plan = make_plan(entries)?;
    report.set_id = plan.set_id.clone();

    // -- write.
    events.stage("write");
    let t = Instant::now();
    let sev = SinkEvents(events);
    let written = sink.write(&plan, &sev, &sev).map_err(&sink_error)?;
    timings.write_s = t.elapsed().as_secs_f64();

    // -- verify: read back against the manifest, unless the sink already
    // did so before putting the outputs in place.
    events.stage("verify");
    let t = Instant::now();
    if written.verified {
        report.verified_by = Some("sink".into());
    } else {
        let v = sink
            .verify(&VerifyRequest::from(&written), &sev)
            .map_err(&sink_error)?;
        if let Some(bad) = v.volumes.iter().find(|v| !v.outcome.is_ok()) {
            return Err(CaptureError::Verify {
                output: bad.output.clone(),
                count: bad.outcome.problems.len(),
                first: bad
                    .outcome
                    .problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            });
        }
        report.verified_by = Some("driver".into());
    }
    timings.verify_s = t.elapsed().as_secs_f64();

    for o in &written.outputs {
        let blake3 = if o.blake3.is_some() {
            o.blake3.clone()
        } else if o.path.is_file() {
            Some(
                blake3_of(&EntrySource::File(o.path.clone()), &mut |_| {}).map_err(|source| {
                    PlanError::Read {
                        path: o.path.clone(),
                        source,
                    }
                })?,
            )
        } else {
            None
        };
        report.outputs.push(OutputReport {
            path: o.path.clone(),
            bytes: o.bytes,
            volume: o.volume,
            blake3,
        });
    }
    drop(staging);
    timings.total_s = t0.elapsed().as_secs_f64();
    report.timings = timings;
    Ok(report)
}

/// Where an entry comes from, for the plan a dry run prints: DP files by
/// their package path (the cache holds nothing yet), others by host path.
fn describe_source(
    e: &PlanEntry,
    content: &PackageContent,
    dp: &Dp,
    cache: &ContentCache,
) -> String {
    let from_dp = content
        .files
        .iter()
        .find(|f| e.source == EntrySource::File(cache.path_of(&f.sha256)));
    match (e.role, from_dp) {
        (EntryRole::Generated, _) => "(generated)".into(),
        (_, Some(f)) => format!("DP {}: {} {}", dp.name(), content.package, f.path),
        (_, None) => e.source.describe(),
    }
}

/// The package's own boot files, if it carries them (everything but the WIM).
fn package_boot_files(
    dp: &Dp,
    content: &PackageContent,
    cache: &ContentCache,
) -> Result<BootFiles, CaptureError> {
    let wim = content.package.boot_wim_name();
    let files: Vec<_> = content
        .files
        .iter()
        .filter(|f| !f.path.as_str().eq_ignore_ascii_case(&wim))
        .map(|f| (f.path.clone(), cache.path_of(&f.sha256), f.size))
        .collect();
    let has_loader = files.iter().any(|(p, _, _)| {
        let p = p.as_str().to_ascii_lowercase();
        p == "bootmgr" || p == "bootmgr.efi" || p.starts_with("efi/boot/")
    });
    if !has_loader {
        return Err(CaptureError::NoBootFiles {
            dp: dp.name().to_owned(),
            package: content.package.clone(),
        });
    }
    Ok(BootFiles::Package(files))
}

/// A UEFI loader's PE header, from the local folder or by a range read on
/// the DP (the file need not be fetched yet).
fn read_loader(
    dp: &Dp,
    content: &PackageContent,
    boot: &BootFiles,
    loader: &BootFileEntry,
) -> Result<capmedia_arch::PeInfo, ArchError> {
    match boot {
        BootFiles::Dir(_) => {
            let mut f = std::fs::File::open(&loader.local)?;
            capmedia_arch::read_pe(&mut f)
        }
        BootFiles::Package(_) => {
            let file = content
                .files
                .iter()
                .find(|f| f.path == loader.path)
                .ok_or(ArchError::NotPe)?;
            capmedia_arch::read_pe(&mut dp.remote_reader(content, file))
        }
    }
}

fn blake3_of(src: &EntrySource, progress: &mut dyn FnMut(u64)) -> std::io::Result<String> {
    Ok(capmedia_content::blake3_stream(src.open()?, progress)?.1)
}

/// The default content cache: `$XDG_CACHE_HOME/capmedia` or `~/.cache/capmedia`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("capmedia")
}
