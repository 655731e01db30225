//! The one JSON shape of every `--json` output, and its JSON Schemas.
//!
//! Every document is an object `{"capmedia": 1, "command": "...", "ok":
//! true|false, ...}`: `capmedia` is the envelope's version (bumped only when
//! a field changes meaning or goes away), `command` the subcommand (`dp
//! list` for `capmedia dp list`), `ok` whether it succeeded, and the rest the
//! command's own fields. A failure is `{"ok": false, "error": {...}}` with the
//! same exit code as without `--json`.
//!
//! The schemas in `docs/schema/<command>.json` are generated from the types
//! here (`capmedia __schemas DIR`); a test regenerates them and fails when
//! the shipped ones differ. Payload types that live in other crates are
//! described here by schema-only mirrors of their fields; the test suite
//! validates every real output against the schemas, so a mirror that drifts
//! from what is printed fails the tests.

use std::path::{Path, PathBuf};

use schemars::{JsonSchema, Schema};
use serde::Serialize;

/// The envelope's version.
pub const VERSION: u32 = 1;

/// The commands that print JSON, by the name `command` carries and the
/// file name of their schema (`dp list` → `dp-list.json`).
pub const COMMANDS: [&str; 7] = [
    "capture",
    "verify",
    "inspect",
    "devices",
    "plugins",
    "dp list",
    "cache list",
];

/// Every `--json` document.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Envelope<T> {
    /// The version of this envelope: 1.
    pub capmedia: u32,
    /// The command that printed it: capture, verify, inspect, devices,
    /// plugins, dp list, cache list.
    pub command: String,
    /// Whether the command succeeded (the exit code is 0 exactly when it is
    /// true).
    pub ok: bool,
    /// The command's own fields.
    #[serde(flatten)]
    pub body: T,
}

/// Print `body` as the command's JSON document on stdout.
pub fn print<T: Serialize>(command: &str, ok: bool, body: T) -> anyhow::Result<()> {
    let doc = Envelope {
        capmedia: VERSION,
        command: command.to_owned(),
        ok,
        body,
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// The body of a failed command.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Failure {
    pub error: ErrorInfo,
}

/// Why a command failed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorInfo {
    /// What kind of failure: `refused` (a rule or the target says no;
    /// nothing was written), `dp` (the distribution point or its package),
    /// `arch` (the architecture rule or an unreadable WIM/PE), `plan` (the
    /// media's content), `usage` (options the command cannot honour; exit
    /// 2), `boot-image` (the boot image's own files), `drivers` (a device
    /// without a driver), `io`, `corrupt` (a read-back found damage),
    /// `unsupported` (not a format capmedia reads), `plugin`, `cancelled`
    /// (Ctrl-C; exit 130), `internal`, or `error` (anything else).
    pub kind: String,
    /// The message, as the text output prints it.
    pub message: String,
    /// The distribution point concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dp: Option<String>,
    /// The package concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    /// The file, output or device concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// What to do next, when capmedia can tell (e.g. the `dp list` command
    /// that shows a DP's packages); the text output prints it after the
    /// message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ErrorInfo {
    /// Classify an error from its typed causes.
    pub fn from_error(e: &anyhow::Error) -> ErrorInfo {
        use capmedia_driver::CaptureError as C;
        let mut info = ErrorInfo {
            kind: "error".into(),
            message: crate::one_line(e),
            dp: None,
            package: None,
            file: None,
            hint: None,
        };
        for cause in e.chain() {
            if cause.downcast_ref::<crate::UsageError>().is_some() {
                info.kind = "usage".into();
                break;
            }
            if let Some(c) = cause.downcast_ref::<C>() {
                let (kind, dp, package, file): (&str, _, _, Option<PathBuf>) = match c {
                    C::Dp(_) => ("dp", None, None, None),
                    C::NotBootImage { dp, package, wim }
                    | C::Wim {
                        dp, package, wim, ..
                    }
                    | C::NoBootImage {
                        dp, package, wim, ..
                    } => (
                        if matches!(c, C::NotBootImage { .. }) {
                            "dp"
                        } else {
                            "arch"
                        },
                        Some(dp.clone()),
                        Some(package.to_string()),
                        Some(wim.into()),
                    ),
                    C::Arch { .. } | C::Loader { .. } => ("arch", None, None, None),
                    C::Layout(_) | C::Plan(_) | C::Label(_) => ("plan", None, None, None),
                    C::Template { path, .. } => ("plan", None, None, Some(path.clone())),
                    C::Bcd { path, .. } => ("plan", None, None, Some(path.into())),
                    C::Sink { source, .. } => (sink_kind(source.kind), None, None, None),
                    C::Cancelled => ("cancelled", None, None, None),
                    C::Verify { output, .. } => ("corrupt", None, None, Some(output.clone())),
                    C::Staging(_) => ("io", None, None, None),
                    C::Output(_) => ("refused", None, None, None),
                    C::NotForDevices { given, .. } => ("refused", None, None, Some(given.clone())),
                    C::NotConfirmed(what) => ("refused", None, None, Some(what.into())),
                    C::BootImage {
                        dp, package, wim, ..
                    } => (
                        "boot-image",
                        Some(dp.clone()),
                        Some(package.to_string()),
                        Some(wim.into()),
                    ),
                    C::DeviceList { path, .. } => ("usage", None, None, Some(path.clone())),
                    C::NoDriver { package, .. } => {
                        ("drivers", None, Some(package.to_string()), None)
                    }
                };
                info.kind = kind.into();
                info.dp = info.dp.or(dp);
                info.package = info.package.or(package);
                info.file = info.file.or(file);
                break;
            }
            if let Some(s) = cause.downcast_ref::<capmedia_sink::SinkError>() {
                info.kind = sink_kind(s.kind).into();
                break;
            }
            if cause.downcast_ref::<capmedia_dp::DpError>().is_some() {
                info.kind = "dp".into();
                break;
            }
            if cause.downcast_ref::<std::io::Error>().is_some() {
                info.kind = "io".into();
                break;
            }
        }
        info
    }

    /// Fill what the command knows about its inputs where the error did not
    /// say.
    pub fn concerning(
        mut self,
        dp: Option<&str>,
        package: Option<&str>,
        file: Option<&Path>,
    ) -> Self {
        self.dp = self.dp.or(dp.map(str::to_owned));
        self.package = self.package.or(package.map(str::to_owned));
        self.file = self.file.or(file.map(Path::to_path_buf));
        self
    }
}

pub fn sink_kind(k: capmedia_sink::ErrorKind) -> &'static str {
    use capmedia_sink::ErrorKind as K;
    match k {
        K::Refused => "refused",
        K::Io => "io",
        K::Cancelled => "cancelled",
        K::Corrupt => "corrupt",
        K::Unsupported => "unsupported",
        K::Internal => "internal",
    }
}

// ------------------------------------------------------------- bodies

/// `capmedia verify`: each output, read back.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifyBody {
    pub outputs: Vec<VerifiedOutput>,
}

/// One output of `capmedia verify`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifiedOutput {
    /// The output as given.
    pub path: PathBuf,
    /// Every volume read back and matching its manifest.
    pub ok: bool,
    /// The sink that read it (`folder` for a media tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// What each volume's read-back found (empty when it could not be read).
    pub volumes: Vec<VolumeMirror>,
    /// Why it could not be read back at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorInfo>,
}

/// `capmedia dp list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DpListBody {
    pub dp: String,
    pub packages: Vec<PackageRow>,
}

/// One package of a DP.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PackageRow {
    /// The package id, e.g. PS100005.
    pub package: String,
    /// The content id with its version, e.g. PS100005.2.
    pub content: Option<String>,
    pub version: Option<u32>,
    /// boot-image, os-image, package, ...
    pub kind: String,
    /// Total bytes of its files.
    pub size: u64,
    pub files: u64,
    /// Why the package cannot be used, when it cannot.
    pub problem: Option<String>,
    /// For a boot image package: the image it boots, read from the WIM's
    /// header and XML by range reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_image: Option<BootImageRow>,
    /// For a boot image package whose WIM could not be read: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_image_problem: Option<String>,
}

/// The image a boot image package boots (`capmedia_driver::BootImageSummary`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct BootImageRow {
    /// `boot.<PKGID>.wim`.
    pub wim: String,
    /// The booting image's index in the WIM.
    pub image_index: u32,
    pub image_name: Option<String>,
    /// x86, x64, arm64, ...
    pub arch: String,
    /// Windows PE's version, e.g. 10.0.26100.1, when the WIM records it.
    pub winpe_version: Option<String>,
}

/// `capmedia cache list`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CacheListBody {
    /// The cache folder.
    pub cache: PathBuf,
    /// Total bytes of its blobs.
    pub bytes: u64,
    pub blobs: Vec<CacheBlob>,
}

/// One verified blob of the cache (named by its SHA-256).
#[derive(Debug, Serialize, JsonSchema)]
pub struct CacheBlob {
    pub path: PathBuf,
    pub bytes: u64,
    /// When it was last fetched or read, in seconds since 1970 (UTC).
    pub last_used: Option<u64>,
}

/// `capmedia plugins`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PluginsBody {
    pub sinks: Vec<SinkRow>,
    /// Libraries that were found but could not be loaded.
    pub errors: Vec<String>,
    /// The folders searched, in order.
    pub searched: Vec<PathBuf>,
}

/// One sink plugin.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SinkRow {
    pub name: String,
    pub version: String,
    /// The plugin ABI, MAJOR.MINOR.
    pub abi: String,
    /// The SDK version it was built with.
    pub sdk: String,
    pub path: PathBuf,
    pub description: String,
}

/// `capmedia devices`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DevicesBody<D> {
    pub drives: Vec<D>,
    /// Which firmware a usb-raw medium boots on (MBR: BIOS and UEFI; GPT:
    /// UEFI only).
    pub firmware: String,
}

/// `capmedia inspect --bcd`, or `inspect` of a BCD store.
#[derive(Debug, Serialize, JsonSchema)]
pub struct StoresBody<S> {
    /// Always `bcd`.
    pub kind: String,
    pub stores: Vec<StoreEntry<S>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StoreEntry<S> {
    /// The store's file, or its path on the medium.
    pub file: String,
    pub store: S,
}

// ----------------------------------------- schema-only mirrors of payloads

/// Any JSON object (the detail of a payload from another crate).
type Object = serde_json::Map<String, serde_json::Value>;

/// `capmedia_driver::CaptureReport`, flattened into the capture document.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct CaptureMirror {
    /// The DP as given.
    dp: String,
    /// The output as resolved (symlinks followed): a file or a device node.
    out: PathBuf,
    /// The drive written, when the output is one.
    device: Option<Object>,
    sink: String,
    label: String,
    /// The media set's id, stored in every volume's capmedia.json.
    set_id: String,
    /// Nothing was fetched or written.
    dry_run: bool,
    target_arch: Option<String>,
    boot_image: BootImageMirror,
    /// Every file of the media plan.
    files: Vec<PlannedFileMirror>,
    content_bytes: u64,
    volumes: Vec<PlanVolumeMirror>,
    /// What the sink says about the output (sizes, rounding, the target).
    notes: Vec<String>,
    /// The files written (empty in a dry run).
    outputs: Vec<OutputMirror>,
    /// How the outputs were read back: "sink" or "driver".
    verified_by: Option<String>,
    /// Ctrl-C came after the new media were in place: the run finished.
    interrupted_after_commit: bool,
    timings: TimingsMirror,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct BootImageMirror {
    package: String,
    content: String,
    wim: String,
    size: u64,
    arch: String,
    image_index: u32,
    image_name: Option<String>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct PlannedFileMirror {
    /// The path on the medium.
    path: String,
    size: u64,
    /// Where it comes from.
    source: String,
}

/// One volume of the plan.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct PlanVolumeMirror {
    number: u32,
    count: u32,
    output: PathBuf,
    entries: Vec<String>,
    /// Bytes the volume's image takes, metadata included (never more than
    /// `capacity`).
    used: u64,
    /// `"unlimited"` or `{"bytes": N}`.
    capacity: serde_json::Value,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct OutputMirror {
    path: PathBuf,
    bytes: u64,
    volume: u32,
    /// BLAKE3 of the whole output file (absent for devices).
    blake3: Option<String>,
}

/// Seconds per stage; `verify_s` is the read-back's own time.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct TimingsMirror {
    resolve_s: f64,
    fetch_s: f64,
    write_s: f64,
    verify_s: f64,
    total_s: f64,
}

/// One volume's read-back (`capmedia_sink::VolumeVerify`).
#[derive(Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct VolumeMirror {
    /// The volume's file.
    pub output: PathBuf,
    pub outcome: OutcomeMirror,
}

/// `capmedia_manifest::VerifyOutcome`.
#[derive(Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct OutcomeMirror {
    /// The volume's capmedia.json.
    pub manifest: Object,
    pub files_checked: u64,
    pub bytes_checked: u64,
    /// Each file that differs: `{"problem": "missing" | "size-differs" |
    /// "hash-differs" | ..., "path": ...}`.
    pub problems: Vec<Object>,
}

impl VolumeMirror {
    pub fn of(v: &capmedia_sink::VolumeVerify) -> anyhow::Result<VolumeMirror> {
        Ok(serde_json::from_value(serde_json::to_value(v)?)?)
    }
}

/// `capmedia_arch::Inspection`, tagged by `kind`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct InspectionMirror {
    /// `wim` or `pe`.
    kind: String,
    /// The file as given.
    path: String,
}

/// `capmedia_device::Drive`.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct DriveMirror {
    /// The device node, e.g. /dev/sdb.
    path: PathBuf,
    by_id: Option<PathBuf>,
    vendor_model: String,
    size: u64,
    size_human: String,
    bus: String,
    removable: bool,
    internal: bool,
    mounts: Vec<Object>,
    /// Why capmedia would refuse it (empty: it may be written).
    refusals: Vec<String>,
}

/// A success or a failure of one command.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Doc<T> {
    Ok(Envelope<T>),
    Failed(Envelope<Failure>),
}

/// `inspect` prints either a WIM/PE inspection or BCD stores.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum InspectBody {
    File(InspectionMirror),
    Stores(StoresBody<Object>),
}

/// The schema of one command's documents, with `command` fixed to its name
/// and `ok` to its branch.
pub fn schema(command: &str) -> Option<serde_json::Value> {
    let s: Schema = match command {
        "capture" => schemars::schema_for!(Doc<CaptureMirror>),
        "verify" => schemars::schema_for!(Doc<VerifyBody>),
        "inspect" => schemars::schema_for!(Doc<InspectBody>),
        "devices" => schemars::schema_for!(Doc<DevicesBody<DriveMirror>>),
        "plugins" => schemars::schema_for!(Doc<PluginsBody>),
        "dp list" => schemars::schema_for!(Doc<DpListBody>),
        "cache list" => schemars::schema_for!(Doc<CacheListBody>),
        _ => return None,
    };
    let mut v = s.to_value();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "$id".into(),
            format!(
                "https://capmedia.invalid/schema/{}.json",
                file_stem(command)
            )
            .into(),
        );
        o.insert(
            "description".into(),
            format!("The `capmedia {command} --json` document (envelope version {VERSION}).")
                .into(),
        );
    }
    // Pin the envelope's constants in both branches (inline, or behind a
    // `$ref` into `$defs`).
    let refs: Vec<Option<String>> = v
        .get("anyOf")
        .and_then(|b| b.as_array())
        .map(|b| {
            b.iter()
                .map(|x| {
                    x.get("$ref")
                        .and_then(|r| r.as_str())
                        .and_then(|r| r.strip_prefix("#/$defs/"))
                        .map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    for (i, r) in refs.iter().enumerate() {
        let branch = match r {
            Some(name) => v.get_mut("$defs").and_then(|d| d.get_mut(name.as_str())),
            None => v
                .get_mut("anyOf")
                .and_then(|b| b.as_array_mut())
                .and_then(|b| b.get_mut(i)),
        };
        if let Some(p) = branch
            .and_then(|b| b.get_mut("properties"))
            .and_then(|p| p.as_object_mut())
        {
            p.insert("capmedia".into(), serde_json::json!({ "const": VERSION }));
            p.insert("command".into(), serde_json::json!({ "const": command }));
            if i == 1 {
                p.insert("ok".into(), serde_json::json!({ "const": false }));
            }
        }
    }
    Some(v)
}

/// `dp list` → `dp-list`.
pub fn file_stem(command: &str) -> String {
    command.replace(' ', "-")
}

/// Write every command's schema into `dir` as `<command>.json`.
pub fn write_schemas(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for c in COMMANDS {
        if let Some(v) = schema(c) {
            let mut text = serde_json::to_string_pretty(&v)?;
            text.push('\n');
            std::fs::write(dir.join(format!("{}.json", file_stem(c))), text)?;
        }
    }
    Ok(())
}
