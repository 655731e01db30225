//! The values that cross the plugin boundary (as JSON) and the safe trait.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use capmedia_content::{MediaPlan, Volume};
use capmedia_manifest::VerifyOutcome;
use serde::{Deserialize, Serialize};

/// What a sink says about itself. Build it with `..Default::default()`
/// so that fields the SDK adds later need no change to a sink's source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkInfo {
    /// The name given to `--sink`.
    pub name: String,
    pub version: String,
    /// What it writes, one line.
    pub description: String,
    /// The options it reads from [`MediaPlan::options`].
    #[serde(default)]
    pub options: Vec<SinkOption>,
    /// Whether it writes block devices (a USB drive). The driver refuses a
    /// device `--out` for a sink that does not, before the sink sees it;
    /// for one that does, it has already examined the device (whole disk,
    /// nothing mounted, removable or overridden) and the user confirmed.
    /// Absent in older sinks: they write files only.
    #[serde(default)]
    pub writes_devices: bool,
    /// Whether `write` takes plans with [`capmedia_content::EntrySource::Stream`]
    /// entries (ABI 1.1): it reads every entry through `EntrySource::open`
    /// to its end before its commit, and calls
    /// [`MediaPlan::settle_streams`] before it writes the manifest. The
    /// driver then fetches while the sink writes; other sinks get a plan
    /// whose every file is already fetched and verified.
    #[serde(default)]
    pub streams: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkOption {
    pub name: String,
    /// Accepted values, e.g. `fixed|dynamic`, or `true` for a flag.
    pub values: String,
    pub default: Option<String>,
    pub help: String,
}

/// What `check` found: the layout it would write, and anything the user
/// should see before writing (the target device, free room).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub volumes: Vec<Volume>,
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One file or device a sink wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    pub path: PathBuf,
    pub bytes: u64,
    /// 1-based volume number within the set.
    pub volume: u32,
    /// BLAKE3 of the whole output, when the sink computed it from the bytes
    /// it wrote (saves the host reading the output once more for its
    /// report). Absent from older sinks; the host then hashes the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
}

/// What `write` produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    pub sink: String,
    pub set_id: String,
    pub outputs: Vec<OutputFile>,
    /// Whether the sink already read every output back against its manifest
    /// before putting it in place.
    #[serde(default)]
    pub verified: bool,
}

impl WriteReport {
    /// The report of a sink that wrote the whole plan to one output.
    pub fn single(sink: &str, plan: &MediaPlan, path: PathBuf, bytes: u64, verified: bool) -> Self {
        WriteReport {
            sink: sink.to_owned(),
            set_id: plan.set_id.clone(),
            outputs: vec![OutputFile {
                path,
                bytes,
                volume: 1,
                blake3: None,
            }],
            verified,
        }
    }
}

/// Which outputs to read back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRequest {
    pub outputs: Vec<PathBuf>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl From<&WriteReport> for VerifyRequest {
    fn from(r: &WriteReport) -> Self {
        VerifyRequest {
            outputs: r.outputs.iter().map(|o| o.path.clone()).collect(),
            options: BTreeMap::new(),
        }
    }
}

/// The read-back of one output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeVerify {
    pub output: PathBuf,
    pub outcome: VerifyOutcome,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub volumes: Vec<VolumeVerify>,
}

impl VerifyReport {
    /// Read back every output of `request` with `read_back`.
    pub fn each(
        request: &VerifyRequest,
        mut read_back: impl FnMut(&std::path::Path) -> Result<VerifyOutcome, SinkError>,
    ) -> Result<Self, SinkError> {
        let mut volumes = Vec::new();
        for output in &request.outputs {
            volumes.push(VolumeVerify {
                output: output.clone(),
                outcome: read_back(output)?,
            });
        }
        Ok(VerifyReport { volumes })
    }

    pub fn is_ok(&self) -> bool {
        self.volumes.iter().all(|v| v.outcome.is_ok())
    }
}

/// The kind of a [`SinkError`], so the driver can choose an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The plan or target breaks a constraint; nothing was written.
    Refused,
    /// Reading or writing failed.
    Io,
    /// The user cancelled.
    Cancelled,
    /// A read-back found bytes that differ from the manifest.
    Corrupt,
    /// The sink does not handle this input (e.g. not its format).
    Unsupported,
    /// A bug: the sink panicked or broke the protocol.
    Internal,
}

/// An error a sink returns; crosses the boundary as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct SinkError {
    pub kind: ErrorKind,
    pub message: String,
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl SinkError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        SinkError {
            kind,
            message: message.into(),
        }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Refused, message)
    }
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, message)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Corrupt, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

/// The progress-and-cancel convention of every capmedia crate, also across
/// the plugin boundary: `phase` is `write` or `verify` for sinks. A sink that
/// sees `is_cancelled()` stops, removes its temporaries (dropping its
/// `output::OutputSet` does) and returns [`SinkError::cancelled`].
pub use capmedia_content::progress::{Cancel, NeverCancel, NoProgress, Progress};

/// A media sink: turns a [`MediaPlan`] into media of one kind.
///
/// Invariants every sink keeps:
/// - `check` writes no output and touches no target, and reads no source:
///   it decides from the sizes the plan states, because the driver calls it
///   before fetching. Everything that can refuse is refused there (sizes,
///   capacity, file-size limits, target).
/// - `write` runs the same checks again before its first byte: the plan it
///   gets has the real hashes, and the target may have changed since.
/// - `write` never truncates or deletes an existing output before its
///   replacement is complete and verified (temporary name, then rename), and
///   leaves no temporary file behind on failure or cancel.
/// - A sink never talks to the DP: every source in the plan is local.
/// - Same plan (including `source_date_epoch`) → byte-identical output.
pub trait MediaSink: Send + Sync {
    fn describe(&self) -> SinkInfo;
    fn check(&self, plan: &MediaPlan) -> Result<CheckReport, SinkError>;
    fn write(
        &self,
        plan: &MediaPlan,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<WriteReport, SinkError>;
    /// Read outputs back; stops with [`SinkError::cancelled`] when asked.
    fn verify(
        &self,
        request: &VerifyRequest,
        progress: &dyn Progress,
        cancel: &dyn Cancel,
    ) -> Result<VerifyReport, SinkError>;
}
