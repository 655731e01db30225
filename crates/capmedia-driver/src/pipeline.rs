//! The pipeline proper.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use capmedia_arch::{ArchError, ArchMismatch, WimImage};
use capmedia_content::{
    Arch, Capacity, EntryRole, EntrySource, MediaPath, MediaPlan, PackageId, PlanBuilder,
    PlanEntry, PlanError, Volume,
};
use capmedia_device::{DeviceTarget, Output, Overrides, SystemPaths};
use capmedia_dp::{ContentCache, ContentFile, Dp, DpError, DpOptions, PackageContent};
use capmedia_sink::{
    Cancel, CheckReport, ErrorKind, MediaSink, Progress, SinkError, VerifyRequest, WriteReport,
};
use capmedia_tempfile::TempPath;
use serde::Serialize;

use crate::bootwim::{self, BootWimError, DriverSummary, SmsTree, UefiCa, WimBootFile};
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
    /// Where generated files go (a fresh folder inside it, removed after;
    /// the system's temporary folder by default).
    pub staging: Option<PathBuf>,
    /// The content cache, reused across runs.
    pub cache_dir: PathBuf,
    /// Sink options (`yes`, `allow-fixed-disk`, `vhd-type`, ...). The
    /// driver reads `allow-fixed-disk` for its device checks, and `yes` as
    /// the confirmation to erase a device.
    pub options: BTreeMap<String, String>,
    /// Where sysfs, the mount table and `/dev` are read (tests fake them).
    pub system: SystemPaths,
    /// Which CA the EFI boot managers taken from the boot image are signed
    /// by (`_EX` files for 2023).
    pub uefi_ca: UefiCa,
    /// The reference computer's device list (Windows hardware or instance
    /// ids, `pnputil /enum-devices` or `lspci -nn` output): every network
    /// and mass-storage device must have a driver in the boot image.
    pub target_hwids: Option<PathBuf>,
    /// Devices that must have a driver in the boot image (`--require-hwid`).
    pub require_hwids: Vec<String>,
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
        source: Box<ArchError>,
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
    Loader {
        what: String,
        source: Box<ArchError>,
    },
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
    #[error(transparent)]
    Output(#[from] capmedia_device::OutputError),
    #[error("{given}{via} is a block device, and sink {sink} writes files, not devices; give a file path (or --sink usb-raw to write the drive)")]
    NotForDevices {
        sink: String,
        given: PathBuf,
        via: String,
    },
    #[error("writing {0} erases everything on it: confirm at the prompt or pass --yes")]
    NotConfirmed(String),
    #[error("DP {dp}: package {package}: {wim}: {source}")]
    BootImage {
        dp: String,
        package: PackageId,
        wim: String,
        source: Box<BootWimError>,
    },
    #[error("--target-hwids {path}: {reason}")]
    DeviceList { path: PathBuf, reason: String },
    #[error("the boot image {package} has no driver for {count} of the reference computer's devices: {devices}; add the drivers to the boot image (Configuration Manager: boot image properties, Drivers) and update its DPs")]
    NoDriver {
        package: PackageId,
        count: usize,
        devices: String,
    },
    #[error("writing the {path} BCD store: {source}")]
    Bcd {
        path: String,
        source: capmedia_bcd::BcdError,
    },
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

/// The boot image's drivers, as the report shows them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriverReport {
    #[serde(flatten)]
    pub summary: DriverSummary,
    /// Each device of `--target-hwids` / `--require-hwid` and the drivers
    /// that cover it.
    pub coverage: Option<capmedia_inf::CoverageReport>,
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
    /// The output as resolved (symlinks followed): a file or a device node.
    pub out: PathBuf,
    /// The drive written, when the output is one.
    pub device: Option<DeviceTarget>,
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
    /// Where the boot files came from: `--boot-files`, the package's own
    /// files, or the boot image itself.
    pub boot_files_from: String,
    /// The drivers in the boot image, and which covers each of the
    /// reference computer's devices when a device list was given.
    pub drivers: DriverReport,
    /// The Configuration Manager boot components in the boot image.
    pub sms: SmsTree,
    /// Ctrl-C came after the new media were in place: the run finished.
    #[serde(default)]
    pub interrupted_after_commit: bool,
    pub timings: Timings,
}

/// [`Events`] on the progress-and-cancel convention, for the fetch and the
/// sink.
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

/// Sink events that also add up the time spent in the sink's "verify"
/// progress phases (the read-back `capmedia_manifest` reports), for sinks
/// that read back inside `write`.
struct PhaseTimer<'a> {
    inner: SinkEvents<'a>,
    /// When the current verify phase began, and the verify time so far.
    verify: std::sync::Mutex<(Option<Instant>, std::time::Duration)>,
}

impl<'a> PhaseTimer<'a> {
    fn new(inner: SinkEvents<'a>) -> Self {
        PhaseTimer {
            inner,
            verify: std::sync::Mutex::new((None, std::time::Duration::ZERO)),
        }
    }

    /// Seconds spent in verify phases, up to now.
    fn verify_s(&self) -> f64 {
        self.verify
            .lock()
            .map(|g| (g.1 + g.0.map(|b| b.elapsed()).unwrap_or_default()).as_secs_f64())
            .unwrap_or(0.0)
    }
}

impl Progress for PhaseTimer<'_> {
    fn update(&self, phase: &str, done: u64, total: u64) {
        if let Ok(mut g) = self.verify.lock() {
            match (phase == "verify", g.0) {
                (true, None) => g.0 = Some(Instant::now()),
                (false, Some(began)) => {
                    g.1 += began.elapsed();
                    g.0 = None;
                }
                _ => {}
            }
        }
        self.inner.update(phase, done, total);
    }
    fn message(&self, text: &str) {
        self.inner.message(text);
    }
}

impl Cancel for PhaseTimer<'_> {
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
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
pub(crate) fn booting_image<'a>(
    images: &'a [WimImage],
    boot: Option<&'a WimImage>,
) -> Option<&'a WimImage> {
    boot.or_else(|| {
        let first = images.first()?;
        images.iter().all(|i| i.arch == first.arch).then_some(first)
    })
}

/// What every stage carries: the request, the sink, the user, the clock.
struct Run<'a> {
    req: &'a CaptureRequest,
    sink: &'a dyn MediaSink,
    sink_name: String,
    events: &'a dyn Events,
    t0: Instant,
    timings: Timings,
}

impl Run<'_> {
    /// Every stage boundary: stop here if the user asked to, else say
    /// which stage begins.
    fn enter(&self, stage: &str) -> Result<(), CaptureError> {
        check_cancel(self.events)?;
        self.events.stage(stage);
        Ok(())
    }

    fn sink_error(&self) -> impl Fn(SinkError) -> CaptureError + '_ {
        move |source| CaptureError::Sink {
            sink: self.sink_name.clone(),
            source,
        }
    }
}

/// The stage types print only their name: they hold the DP, the sink and
/// the request, which have their own reports.
macro_rules! stage_debug {
    ($($t:ident),*) => {$(
        impl std::fmt::Debug for $t<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )*};
}
stage_debug!(Resolved, Validated, Planned, Checked, Fetched, Written);

/// Stage 1: the output judged (a file, or a drive that may be erased) and
/// the package resolved on the DP, complete. Nothing is read but metadata.
pub struct Resolved<'a> {
    run: Run<'a>,
    output: Output,
    dp: Dp,
    content: PackageContent,
    wim: ContentFile,
    wim_name: String,
}

/// Stage 2: the architecture, read from the WIM's own XML (range reads) and
/// the UEFI loaders' PE headers, suits the target.
pub struct Validated<'a> {
    resolved: Resolved<'a>,
    image: WimImage,
    cache: ContentCache,
    boot_list: Vec<BootFileEntry>,
    /// Generated and staged files (MediaLabel.txt, autorun.inf, BCD stores,
    /// boot files from the WIM); removed on drop.
    staging: TempPath,
    /// Boot files taken from the boot image, staged during the fetch.
    from_image: Vec<WimBootFile>,
    boot_files_from: String,
    drivers: DriverReport,
    sms: SmsTree,
}

/// Stage 3: the medium's tree, every size known, no content read.
pub struct Planned<'a> {
    validated: Validated<'a>,
    entries: Vec<PlanEntry>,
    draft: MediaPlan,
    /// What the plan did on its own (BCD stores written), for the report.
    notes: Vec<String>,
}

/// Stage 4: the sink accepted the plan. A dry run ends here; writing a
/// drive needs [`Checked::confirm`] (the CLI asks here, once).
pub struct Checked<'a> {
    planned: Planned<'a>,
    report: CaptureReport,
    confirmed: bool,
}

/// Stage 5: every DP file in the cache, verified against the DP's SHA-256,
/// and every entry's BLAKE3 known: the final plan.
pub struct Fetched<'a> {
    checked: Checked<'a>,
    plan: MediaPlan,
    /// DP files taken from the cache on their stamps, unread: if the
    /// read-back finds the medium wrong, these are checked first.
    trusted: Vec<ContentFile>,
    /// DP files still to fetch, fetched while the sink writes them (a sink
    /// that reads streamed entries; see `crate::stream`).
    streams: Option<crate::stream::Streams>,
}

/// Stage 6: the sink wrote, read back and committed the outputs: from here
/// on the new media are in place and Ctrl-C no longer stops the run.
pub struct Written<'a> {
    fetched: Fetched<'a>,
    written: WriteReport,
    /// Seconds the sink spent reading back inside `write` (its "verify"
    /// progress phases), so the report's verify time is the read-back's
    /// real time even when the sink verifies before committing.
    read_back_s: f64,
}

/// Run the whole capture. `sink` is the sink named by the user. A drive is
/// written only when the request's options say `yes`.
pub fn capture(
    req: &CaptureRequest,
    sink: &dyn MediaSink,
    events: &dyn Events,
) -> Result<CaptureReport, CaptureError> {
    let checked = resolve(req, sink, events)?.validate()?.plan()?.check()?;
    if req.dry_run {
        return Ok(checked.into_report());
    }
    checked.fetch()?.write()?.verify()
}

/// Stage 1; see [`Resolved`]. The output is judged first, before the DP is
/// even opened: a wrong `--out` costs nothing.
pub fn resolve<'a>(
    req: &'a CaptureRequest,
    sink: &'a dyn MediaSink,
    events: &'a dyn Events,
) -> Result<Resolved<'a>, CaptureError> {
    let info = sink.describe();
    let run = Run {
        req,
        sink,
        sink_name: info.name.clone(),
        events,
        t0: Instant::now(),
        timings: Timings::default(),
    };
    run.enter("resolve")?;
    layout::check_label(&req.label).map_err(CaptureError::Label)?;
    let output = capmedia_device::resolve_output(
        &req.out,
        &req.system,
        Overrides {
            devices: info.writes_devices,
            allow_fixed_disk: req.options.get("allow-fixed-disk").map(String::as_str)
                == Some("true"),
        },
    )
    .map_err(|e| match e {
        capmedia_device::OutputError::BlockDevice { given, resolved } => {
            CaptureError::NotForDevices {
                sink: info.name.clone(),
                via: if given == resolved {
                    String::new()
                } else {
                    format!(" (-> {})", resolved.display())
                },
                given,
            }
        }
        e => CaptureError::Output(e),
    })?;
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
    let mut run = run;
    run.timings.resolve_s = run.t0.elapsed().as_secs_f64();
    Ok(Resolved {
        run,
        output,
        dp,
        content,
        wim,
        wim_name,
    })
}

impl<'a> Resolved<'a> {
    /// The output as resolved.
    pub fn output(&self) -> &Output {
        &self.output
    }

    fn out_path(&self) -> PathBuf {
        match &self.output {
            Output::File(p) => p.clone(),
            Output::Device(t) => t.path.clone(),
        }
    }

    /// Stage 2; see [`Validated`].
    pub fn validate(self) -> Result<Validated<'a>, CaptureError> {
        self.run.enter("validate")?;
        let (dp, content, wim_name) = (&self.dp, &self.content, &self.wim_name);
        // Only names blob paths; the folder is created just before fetching.
        // A warm cache's trusted copy is read instead of the DP.
        let req = self.run.req;
        let cache = ContentCache::at(&req.cache_dir);
        let info = capmedia_arch::read_wim(&mut dp.content_reader(content, &self.wim, &cache))
            .map_err(|source| CaptureError::Wim {
                dp: dp.name().to_owned(),
                package: content.package.clone(),
                wim: wim_name.clone(),
                source: Box::new(source),
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
        match self.run.req.target_arch {
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

        let staging_parent = req.staging.clone().unwrap_or_else(std::env::temp_dir);
        // What killed runs left there goes first (only capmedia's, only of
        // dead processes).
        let _ = capmedia_tempfile::remove_stale(&staging_parent);
        let staging = TempPath::create_dir_in(&staging_parent, "capmedia-staging")
            .map_err(CaptureError::Staging)?;

        // The boot image from the inside: its drivers and sms tree always,
        // its boot files when nothing else provides them. Range reads on
        // the DP: nothing is fetched yet.
        let image_err = |source: BootWimError| CaptureError::BootImage {
            dp: dp.name().to_owned(),
            package: content.package.clone(),
            wim: wim_name.clone(),
            source: Box::new(source),
        };
        let mut wim = capmedia_wim::Wim::open(dp.content_reader(content, &self.wim, &cache))
            .map_err(|e| image_err(e.into()))?;
        let tree = wim.image(image.index).map_err(|e| image_err(e.into()))?;
        let (drivers, summary) =
            bootwim::drivers(&mut wim, &tree, image.arch).map_err(image_err)?;
        let sms = bootwim::sms_tree(&tree, image.arch);
        let coverage = check_drivers(req, &content.package, &drivers)?;
        for (n, kind) in [(summary.net, "network"), (summary.storage, "mass-storage")] {
            if n == 0 {
                self.run.events.message(&format!(
                    "warning: the boot image holds no {kind} driver; a reference computer whose {kind} device Windows PE lacks a driver for cannot run the capture"
                ));
            }
        }
        let drivers = DriverReport { summary, coverage };

        let package_files = package_boot_files(content, &cache);
        let (boot_files, from_image, boot_files_from) = match (&req.boot_files, package_files) {
            (Some(d), _) => (
                BootFiles::Dir(d.clone()),
                Vec::new(),
                "--boot-files".to_owned(),
            ),
            (None, Some(p)) => (p, Vec::new(), "the boot image package".to_owned()),
            (None, None) => {
                let files =
                    bootwim::boot_files(&tree, image.arch, req.uefi_ca).map_err(image_err)?;
                let staged = staging.path().join("wim");
                let list = files
                    .iter()
                    .map(|f| (f.media.clone(), f.media.to_host_path(&staged), f.size))
                    .collect();
                (
                    BootFiles::Package(list),
                    files,
                    format!("the boot image ({wim_name}, image {})", image.index),
                )
            }
        };
        let boot_list = boot_files.entries()?;
        for loader in layout::uefi_loaders(&boot_list) {
            let what = format!("UEFI loader {}", loader.path);
            let pe = match from_image.iter().find(|f| f.media == loader.path) {
                Some(f) => bootwim::head(&mut wim, &tree, &f.wim_path, 64 << 10)
                    .map_err(image_err)
                    .and_then(|head| {
                        capmedia_arch::read_pe(&mut std::io::Cursor::new(head)).map_err(|source| {
                            CaptureError::Loader {
                                what: what.clone(),
                                source: Box::new(source),
                            }
                        })
                    })?,
                None => {
                    read_loader(dp, content, &cache, &boot_files, loader).map_err(|source| {
                        CaptureError::Loader {
                            what: what.clone(),
                            source: Box::new(source),
                        }
                    })?
                }
            };
            capmedia_arch::uefi_loader_suits_image(image.arch, loader.path.as_str(), pe.arch)
                .map_err(|source| CaptureError::Arch {
                    what: format!("{what} for {what_image}"),
                    source,
                })?;
        }
        drop(wim);
        Ok(Validated {
            resolved: self,
            image,
            cache,
            boot_list,
            staging,
            from_image,
            boot_files_from,
            drivers,
            sms,
        })
    }
}

impl<'a> Validated<'a> {
    /// The plan for `entries`, with the request's options (and `yes` once a
    /// drive is confirmed).
    fn make_plan(
        &self,
        entries: Vec<PlanEntry>,
        confirmed: bool,
    ) -> Result<MediaPlan, CaptureError> {
        self.make_plan_keyed(entries, confirmed, &[])
    }

    /// [`Validated::make_plan`], naming the entries of `keys` in the set id
    /// by the given key (a DP file's SHA-256) instead of their BLAKE3.
    fn make_plan_keyed(
        &self,
        entries: Vec<PlanEntry>,
        confirmed: bool,
        keys: &[(MediaPath, String)],
    ) -> Result<MediaPlan, CaptureError> {
        let req = self.resolved.run.req;
        let mut b = PlanBuilder::new(
            &req.label,
            &self.resolved.run.sink_name,
            self.resolved.out_path(),
        )
        .capacity(req.capacity)
        .target_arch(req.target_arch)
        .boot_arch(Some(self.image.arch))
        .source_date_epoch(req.source_date_epoch)
        .boot(layout::boot_spec(&self.boot_list));
        for (k, v) in &req.options {
            if k != "yes" {
                b = b.option(k, v);
            }
        }
        if confirmed {
            b = b.option("yes", "true");
        }
        for (path, key) in keys {
            b.content_key(path, key);
        }
        for e in entries {
            b.add_known(e);
        }
        Ok(b.build()?)
    }

    /// Stage 3; see [`Planned`].
    pub fn plan(self) -> Result<Planned<'a>, CaptureError> {
        let run = &self.resolved.run;
        run.enter("plan")?;
        let req = run.req;
        let staging = &self.staging;
        let mut entries = layout::boot_entries(&self.boot_list);
        entries.push(PlanEntry {
            path: MediaPath::new("sources/boot.wim").map_err(PlanError::from)?,
            source: EntrySource::File(self.cache.path_of(&self.resolved.wim.sha256)),
            size: self.resolved.wim.size,
            blake3: PENDING_HASH.to_owned(),
            role: EntryRole::BootImage,
            group: self.resolved.content.package.to_string(),
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
        // Boot files without BCD stores (ADK-built boot images often have
        // none): capmedia writes the Windows PE RAM-disk stores, dated from
        // SOURCE_DATE_EPOCH so the medium stays reproducible.
        let filetime = capmedia_regf::filetime_from_unix(
            i64::try_from(req.source_date_epoch).unwrap_or(i64::MAX),
        );
        let mut notes = Vec::new();
        for (path, firmware) in layout::missing_bcds(&self.boot_list) {
            let store = capmedia_bcd::pe_ramdisk_store(firmware, &req.label, filetime).map_err(
                |source| CaptureError::Bcd {
                    path: path.to_owned(),
                    source,
                },
            )?;
            // Staged under a flat name; placed at its media path.
            let mut e = generated(&path.replace('/', "_"), store)?;
            e.path = MediaPath::new(path).map_err(PlanError::from)?;
            entries.push(e);
            notes.push(format!(
                "{path}: the boot files have no BCD store; capmedia writes a Windows PE RAM-disk store ({})",
                match firmware {
                    capmedia_bcd::Firmware::Bios => "BIOS",
                    capmedia_bcd::Firmware::Uefi => "UEFI",
                }
            ));
        }
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
        let draft = self.make_plan(entries.clone(), false)?;
        Ok(Planned {
            validated: self,
            entries,
            draft,
            notes,
        })
    }
}

impl<'a> Planned<'a> {
    /// Stage 4; see [`Checked`]. The sink refuses here, before anything is
    /// fetched or written.
    pub fn check(self) -> Result<Checked<'a>, CaptureError> {
        let v = &self.validated;
        let r = &v.resolved;
        r.run.enter("check")?;
        let checked: CheckReport = r.run.sink.check(&self.draft).map_err(r.run.sink_error())?;
        for n in &checked.notes {
            r.run.events.message(n);
        }
        let boot_image = BootImageInfo {
            package: r.content.package.clone(),
            content: r.content.content.to_string(),
            wim: r.wim_name.clone(),
            size: r.wim.size,
            arch: v.image.arch,
            image_index: v.image.index,
            image_name: v.image.name.clone(),
        };
        let report = CaptureReport {
            dp: r.dp.name().to_owned(),
            out: r.out_path(),
            device: match &r.output {
                Output::Device(t) => Some((**t).clone()),
                Output::File(_) => None,
            },
            sink: r.run.sink_name.clone(),
            label: r.run.req.label.clone(),
            set_id: self.draft.set_id.clone(),
            dry_run: r.run.req.dry_run,
            target_arch: r.run.req.target_arch,
            boot_image,
            files: self
                .draft
                .entries
                .iter()
                .map(|e| PlannedFile {
                    path: e.path.clone(),
                    size: e.size,
                    source: describe_source(
                        e,
                        &r.content,
                        &r.dp,
                        &v.cache,
                        &v.from_image,
                        &r.wim_name,
                    ),
                })
                .collect(),
            content_bytes: self.draft.content_bytes(),
            volumes: checked.volumes.clone(),
            notes: self.notes.iter().chain(&checked.notes).cloned().collect(),
            outputs: Vec::new(),
            verified_by: None,
            boot_files_from: v.boot_files_from.clone(),
            drivers: v.drivers.clone(),
            sms: v.sms.clone(),
            interrupted_after_commit: false,
            timings: Timings::default(),
        };
        let confirmed = r.run.req.options.get("yes").map(String::as_str) == Some("true");
        Ok(Checked {
            planned: self,
            report,
            confirmed,
        })
    }
}

impl<'a> Checked<'a> {
    /// What a dry run prints: the plan, the volumes, the sink's notes.
    pub fn report(&self) -> &CaptureReport {
        &self.report
    }

    /// The drive about to be erased, if the output is one.
    pub fn device(&self) -> Option<&DeviceTarget> {
        self.report.device.as_ref()
    }

    /// Whether writing may go on without asking (a file, or a drive the
    /// request already confirmed).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed || self.device().is_none()
    }

    /// The user confirmed erasing the drive.
    pub fn confirm(&mut self) {
        self.confirmed = true;
    }

    /// End here (a dry run): the report, with the time taken.
    pub fn into_report(self) -> CaptureReport {
        let run = &self.planned.validated.resolved.run;
        let mut report = self.report;
        report.timings = run.timings.clone();
        report.timings.total_s = run.t0.elapsed().as_secs_f64();
        report
    }

    /// Stage 5; see [`Fetched`].
    pub fn fetch(self) -> Result<Fetched<'a>, CaptureError> {
        if let (Some(d), false) = (self.device(), self.confirmed) {
            return Err(CaptureError::NotConfirmed(d.info.describe()));
        }
        let p = &self.planned;
        let v = &p.validated;
        let r = &v.resolved;
        let events = r.run.events;
        r.run.enter("fetch")?;
        let t = Instant::now();
        let cache = ContentCache::open(&r.run.req.cache_dir)?;
        let sev = SinkEvents(events);
        // One pass: a sink that reads streamed entries gets the DP files as
        // they arrive (see `stream`); the boot files out of the WIM need the
        // whole WIM first, so that capture fetches before it writes.
        // `CAPMEDIA_STAGED=1` runs the stages one after another even so:
        // the benchmark's reference for what the overlap gains.
        // `--verify-cache` re-hashes the cache's entries where they are,
        // which the staged fetch does.
        let staged = std::env::var_os("CAPMEDIA_STAGED").is_some_and(|v| v == "1")
            || r.run.req.dp_options.verify_cache;
        let streaming = !staged && v.from_image.is_empty() && r.run.sink.describe().streams;
        let mut entries = p.entries.clone();
        let (fetched, streams) = if streaming {
            let mut fetched = Vec::new();
            let mut untrusted = BTreeMap::new();
            for f in &r.content.files {
                let local = v.cache.path_of(&f.sha256);
                // An entry whose stamp is missing is hashed again where
                // it is (no DP read) and, if it matches, sealed and used.
                let entry = cache
                    .trusted(f)
                    .filter(|t| t.blake3.is_some())
                    .or_else(|| cache.revalidate(f).ok().flatten());
                match entry {
                    Some(t) => fetched.push(capmedia_dp::FetchedFile {
                        path: f.path.clone(),
                        size: f.size,
                        sha256: f.sha256.clone(),
                        blake3: t.blake3,
                        local,
                        trusted: true,
                    }),
                    None => {
                        untrusted.insert(local, f.clone());
                    }
                }
            }
            // The El Torito images (etfsboot.com, efisys.bin) are no entry
            // of the tree but a file the ISO sink opens: one with the bytes
            // of a streamed entry is that stream (the plan's boot spec is
            // pointed at it below, as a staged plan's points at the same
            // cache file); any other is fetched (a few KiB to a few MiB)
            // before the sink starts.
            let streamed: std::collections::BTreeSet<&str> = entries
                .iter()
                .filter_map(|e| match &e.source {
                    EntrySource::File(p) => untrusted.get(p).map(|f| f.sha256.as_str()),
                    _ => None,
                })
                .collect();
            let spec = layout::boot_spec(&v.boot_list);
            let firmware: Vec<ContentFile> = [spec.bios, spec.uefi]
                .into_iter()
                .flatten()
                .filter_map(|b| untrusted.get(&b.source).cloned())
                .filter(|f| !streamed.contains(f.sha256.as_str()))
                .collect();
            if !firmware.is_empty() {
                let sub = PackageContent {
                    files: firmware,
                    ..r.content.clone()
                };
                fetched.extend(
                    r.dp.fetch_with(&sub, &cache, &sev, &sev)
                        .map_err(|e| match e {
                            DpError::Cancelled => CaptureError::Cancelled,
                            e => CaptureError::from(e),
                        })?,
                );
            }
            let streams = crate::stream::Streams::prepare(&cache, &untrusted, &mut entries)?;
            (fetched, Some(streams))
        } else {
            let fetched =
                r.dp.fetch_with(&r.content, &cache, &sev, &sev)
                    .map_err(|e| match e {
                        DpError::Cancelled => CaptureError::Cancelled,
                        e => CaptureError::from(e),
                    })?;
            (fetched, None)
        };
        if !v.from_image.is_empty() {
            // The boot files, out of the cached WIM whose SHA-256 the fetch
            // just verified (and each file's SHA-1 as it is decoded).
            let image_err = |source: BootWimError| CaptureError::BootImage {
                dp: r.dp.name().to_owned(),
                package: r.content.package.clone(),
                wim: r.wim_name.clone(),
                source: Box::new(source),
            };
            let local = v.cache.path_of(&r.wim.sha256);
            let file = std::fs::File::open(&local).map_err(CaptureError::Staging)?;
            let mut wim = capmedia_wim::Wim::open(file).map_err(|e| image_err(e.into()))?;
            let tree = wim.image(v.image.index).map_err(|e| image_err(e.into()))?;
            bootwim::stage(
                &mut wim,
                &tree,
                &v.from_image,
                &v.staging.path().join("wim"),
            )
            .map_err(image_err)?;
        }
        let fetch_s = t.elapsed().as_secs_f64();

        // The BLAKE3 the manifest promises, from the local bytes: known
        // from the fetch for DP content (or, streamed, once it arrived),
        // read here for the rest.
        r.run.enter("hash")?;
        let trusted: Vec<ContentFile> = r
            .content
            .files
            .iter()
            .filter(|c| fetched.iter().any(|f| f.trusted && f.sha256 == c.sha256))
            .cloned()
            .collect();
        // DP files are named in the set id by their SHA-256, known before a
        // streamed file's BLAKE3: a streamed and a cached capture of the
        // same content give the same media.
        let keys: BTreeMap<PathBuf, String> = r
            .content
            .files
            .iter()
            .map(|f| (v.cache.path_of(&f.sha256), f.sha256.to_ascii_lowercase()))
            .collect();
        let known: BTreeMap<PathBuf, String> = fetched
            .into_iter()
            .filter_map(|f| Some((f.local, f.blake3?)))
            .collect();
        let mut content_keys = Vec::new();
        let total: u64 = entries.iter().map(|e| e.size).sum();
        let mut done = 0u64;
        for e in &mut entries {
            check_cancel(events)?;
            match &e.source {
                EntrySource::Stream { path, .. } => {
                    if let Some(f) = streams.as_ref().and_then(|s| s.file_at(path)) {
                        content_keys.push((e.path.clone(), f.sha256.to_ascii_lowercase()));
                    }
                    continue;
                }
                EntrySource::File(path) => {
                    if let Some(k) = keys.get(path) {
                        content_keys.push((e.path.clone(), k.clone()));
                    }
                    if let Some(b) = known.get(path) {
                        e.blake3 = b.clone();
                        done += e.size;
                        events.progress("hash", done, total);
                        continue;
                    }
                }
                EntrySource::Inline(_) => {}
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
        let mut plan = v.make_plan_keyed(entries, self.confirmed, &content_keys)?;
        if let Some(streams) = &streams {
            for b in [&mut plan.boot.bios, &mut plan.boot.uefi]
                .into_iter()
                .flatten()
            {
                if let Some(p) = streams.stream_of(&b.source) {
                    b.source = p.to_path_buf();
                }
            }
        }
        let mut checked = self;
        checked.report.set_id = plan.set_id.clone();
        checked.planned.validated.resolved.run.timings.fetch_s = fetch_s;
        Ok(Fetched {
            checked,
            plan,
            trusted,
            streams,
        })
    }
}

impl<'a> Fetched<'a> {
    /// The final plan, every hash known.
    pub fn plan(&self) -> &MediaPlan {
        &self.plan
    }

    /// Stage 6; see [`Written`]. The sink's commit is the point of no
    /// return: before it, a cancel leaves old outputs as they were; after
    /// it, the run goes on to its report.
    pub fn write(mut self) -> Result<Written<'a>, CaptureError> {
        let streams = self.streams.take();
        let run = &self.checked.planned.validated.resolved.run;
        run.enter("write")?;
        let t = Instant::now();
        let sev = PhaseTimer::new(SinkEvents(run.events));
        let (written, fetch_s) = match &streams {
            None => (run.sink.write(&self.plan, &sev, &sev), None),
            Some(streams) => {
                let r = &self.checked.planned.validated.resolved;
                let cache = &self.checked.planned.validated.cache;
                let stop = std::sync::atomic::AtomicBool::new(false);
                let (written, fetched, fetch_s) = std::thread::scope(|scope| {
                    let fetcher = scope.spawn(|| {
                        let t = Instant::now();
                        let done = streams.pump(&r.dp, &r.content, cache, run.events, &stop);
                        (done, t.elapsed().as_secs_f64())
                    });
                    let written = run.sink.write(&self.plan, &sev, &sev);
                    // The sink is done either way: a fetch it no longer
                    // reads stops.
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    let (fetched, fetch_s) = fetcher.join().unwrap_or_else(|_| {
                        (
                            Err(CaptureError::Staging(std::io::Error::other(
                                "the fetch thread panicked",
                            ))),
                            0.0,
                        )
                    });
                    (written, fetched, fetch_s)
                });
                match (written, fetched) {
                    // The fetch's own error names the DP file and what was
                    // wrong with it; the sink only saw its stream end.
                    (Err(e), Err(f))
                        if !matches!(f, CaptureError::Cancelled) || run.events.cancelled() =>
                    {
                        drop(e);
                        return Err(f);
                    }
                    (Ok(_), Err(f)) if !matches!(f, CaptureError::Cancelled) => return Err(f),
                    (w, _) => (w, Some(fetch_s)),
                }
            }
        };
        if let Some(s) = streams {
            // The cache keeps its links to the verified streams. Past the
            // sink's commit this must not fail the run: a folder left over
            // is removed by the next run that opens the cache.
            let _ = s.remove();
        }
        if let Some(f) = fetch_s {
            self.checked.planned.validated.resolved.run.timings.fetch_s = f;
        }
        let run = &self.checked.planned.validated.resolved.run;
        let written = match written {
            Ok(w) => w,
            Err(mut e) => {
                if e.kind == ErrorKind::Corrupt {
                    if let Some(why) = self.damaged_cache() {
                        e.message = format!("{}; {why}", e.message);
                    }
                }
                return Err(run.sink_error()(e));
            }
        };
        let read_back_s = sev.verify_s();
        let write_s = (t.elapsed().as_secs_f64() - read_back_s).max(0.0);
        self.checked.planned.validated.resolved.run.timings.write_s = write_s;
        Ok(Written {
            fetched: self,
            written,
            read_back_s,
        })
    }
}

impl Fetched<'_> {
    /// See [`damaged_cache`].
    fn damaged_cache(&self) -> Option<String> {
        damaged_cache(&self.checked.planned.validated.cache, &self.trusted)
    }
}

/// After a read-back found the medium wrong: whether a cache entry trusted
/// on its stamp is the cause (its bytes no longer hash to the SHA-256 they
/// were verified against, e.g. changed in place with the mtime put back).
/// Those entries are removed from the cache so that the next run fetches
/// them again; the text says which.
fn damaged_cache(cache: &ContentCache, trusted: &[ContentFile]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    let damaged: Vec<String> = trusted
        .iter()
        .filter(|f| seen.insert(f.sha256.clone()))
        .filter(|f| !matches!(cache.verify(f), Ok(true)))
        .map(|f| {
            let path = cache.path_of(&f.sha256);
            let removed = match cache.forget(&f.sha256) {
                Ok(()) => "removed it".to_owned(),
                Err(e) => format!("could not remove it ({e}): remove it by hand"),
            };
            format!(
                "{} (cache file {}) no longer holds the bytes of SHA-256 {} it was verified \
                 against; capmedia {removed}",
                f.path,
                path.display(),
                f.sha256,
            )
        })
        .collect();
    (!damaged.is_empty()).then(|| {
        format!(
            "the content cache was damaged after it was verified: {}; run again to fetch \
             it anew (--verify-cache re-hashes every cache entry first)",
            damaged.join("; ")
        )
    })
}

impl Written<'_> {
    /// What the sink wrote.
    pub fn outputs(&self) -> &WriteReport {
        &self.written
    }

    /// Stage 7: read back against the manifest (unless the sink already
    /// did, before putting the outputs in place), and the report.
    pub fn verify(self) -> Result<CaptureReport, CaptureError> {
        let Written {
            fetched,
            written,
            read_back_s,
        } = self;
        let Fetched {
            checked, trusted, ..
        } = fetched;
        let Checked {
            planned,
            mut report,
            ..
        } = checked;
        let Validated {
            resolved,
            staging,
            cache,
            ..
        } = planned.validated;
        let mut run = resolved.run;
        // Past the commit: a Ctrl-C now is noted, not obeyed.
        run.events.stage("verify");
        let t = Instant::now();
        let sev = SinkEvents(run.events);
        if written.verified {
            report.verified_by = Some("sink".into());
        } else {
            let v = run
                .sink
                .verify(
                    &VerifyRequest::from(&written),
                    &sev,
                    &capmedia_sink::NeverCancel,
                )
                .map_err(run.sink_error())?;
            if let Some(bad) = v.volumes.iter().find(|v| !v.outcome.is_ok()) {
                let mut first = bad
                    .outcome
                    .problems
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                if let Some(why) = damaged_cache(&cache, &trusted) {
                    first = format!("{first}; {why}");
                }
                return Err(CaptureError::Verify {
                    output: bad.output.clone(),
                    count: bad.outcome.problems.len(),
                    first,
                });
            }
            report.verified_by = Some("driver".into());
        }
        run.timings.verify_s = if written.verified {
            read_back_s
        } else {
            t.elapsed().as_secs_f64()
        };
        for o in &written.outputs {
            let blake3 = if o.blake3.is_some() {
                o.blake3.clone()
            } else if o.path.is_file() {
                Some(
                    blake3_of(&EntrySource::File(o.path.clone()), &mut |_| {}).map_err(
                        |source| PlanError::Read {
                            path: o.path.clone(),
                            source,
                        },
                    )?,
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
        report.interrupted_after_commit = run.events.cancelled();
        staging.remove().map_err(CaptureError::Staging)?;
        run.timings.total_s = run.t0.elapsed().as_secs_f64();
        report.timings = run.timings;
        Ok(report)
    }
}

/// Where an entry comes from, for the plan a dry run prints: DP files by
/// their package path (the cache holds nothing yet), others by host path.
fn describe_source(
    e: &PlanEntry,
    content: &PackageContent,
    dp: &Dp,
    cache: &ContentCache,
    from_image: &[WimBootFile],
    wim_name: &str,
) -> String {
    if let Some(f) = from_image.iter().find(|f| f.media == e.path) {
        return format!(
            "DP {}: {} {wim_name}:{}",
            dp.name(),
            content.package,
            f.wim_path
        );
    }
    let from_dp = content
        .files
        .iter()
        .find(|f| e.source == EntrySource::File(cache.path_of(&f.sha256)));
    match (e.role, from_dp) {
        (EntryRole::Generated, _) if e.path.as_str().ends_with("bcd") => {
            "(generated: Windows PE RAM-disk BCD store)".into()
        }
        (EntryRole::Generated, _) => "(generated)".into(),
        (_, Some(f)) => format!("DP {}: {} {}", dp.name(), content.package, f.path),
        (_, None) => e.source.describe(),
    }
}

/// Check the reference computer's devices against the boot image's drivers
/// (`--target-hwids`, `--require-hwid`): refuse naming every device no
/// driver covers. `None` when no device was given.
fn check_drivers(
    req: &CaptureRequest,
    package: &PackageId,
    drivers: &[capmedia_inf::DriverInfo],
) -> Result<Option<capmedia_inf::CoverageReport>, CaptureError> {
    /// A device list is a few KiB; a bound keeps a wrong file from taking memory.
    const MAX_LIST: u64 = 16 << 20;
    let mut devices = Vec::new();
    if let Some(path) = &req.target_hwids {
        let bad = |reason: String| CaptureError::DeviceList {
            path: path.clone(),
            reason,
        };
        let f = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(f, MAX_LIST + 1), &mut bytes)
            .map_err(|e| bad(e.to_string()))?;
        if bytes.len() as u64 > MAX_LIST {
            return Err(bad(format!(
                "larger than {MAX_LIST} bytes: not a device list"
            )));
        }
        let list = capmedia_inf::parse_device_list(&bytes).map_err(|e| bad(e.to_string()))?;
        if list.devices.is_empty() {
            return Err(bad("holds no hardware id".into()));
        }
        devices.extend(list.devices);
    }
    devices.extend(
        req.require_hwids
            .iter()
            .map(|id| capmedia_inf::Device::from_id(id)),
    );
    if devices.is_empty() {
        return Ok(None);
    }
    let report = capmedia_inf::check_devices(&devices, drivers);
    let uncovered = report.uncovered();
    if !uncovered.is_empty() {
        return Err(CaptureError::NoDriver {
            package: package.clone(),
            count: uncovered.len(),
            devices: uncovered
                .iter()
                .map(|d| format!("{} ({})", d.device.hardware_id(), d.kind))
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Some(report))
}

/// The package's own boot files, if it carries them (everything but the WIM).
fn package_boot_files(content: &PackageContent, cache: &ContentCache) -> Option<BootFiles> {
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
    has_loader.then_some(BootFiles::Package(files))
}

/// A UEFI loader's PE header, from the local folder or by a range read on
/// the DP (the file need not be fetched yet).
fn read_loader(
    dp: &Dp,
    content: &PackageContent,
    cache: &ContentCache,
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
            capmedia_arch::read_pe(&mut dp.content_reader(content, file, cache))
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
