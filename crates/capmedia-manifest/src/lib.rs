//! The manifest every capmedia medium carries at `/capmedia.json`, and the
//! read-back check against it.
//!
//! The manifest names the set (a content-derived id), which volume of how many
//! this is, and every file on the volume with its size and BLAKE3. A runner
//! asking for "volume n" and `capmedia verify` both read it. Sinks supply a
//! [`MediaReader`] for their format; the comparison lives here once.

use std::io::{self, Read};

use capmedia_content::{Cancel, MediaPath, MediaPlan, Progress, MANIFEST_PATH};
use serde::{Deserialize, Serialize};

/// The `format` value of manifests this crate writes.
pub const FORMAT: &str = "capmedia-manifest/1";

/// A manifest larger than this is refused unread: even 100,000 files make
/// about 15 MiB of JSON.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub set_id: String,
    pub label: String,
    /// 1-based number of this volume.
    pub volume: u32,
    /// How many volumes the set has.
    pub volumes: u32,
    pub source_date_epoch: u64,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: MediaPath,
    pub size: u64,
    pub blake3: String,
}

/// Why a manifest could not be read or a medium could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("the medium has no {MANIFEST_PATH}: it was not written by capmedia, or its writing did not finish")]
    Missing,
    #[error(
        "{MANIFEST_PATH} is {0} bytes, more than the {MAX_MANIFEST_BYTES} a manifest may have"
    )]
    TooLarge(u64),
    #[error("{MANIFEST_PATH} is not a capmedia manifest: {0}")]
    Malformed(String),
    #[error("volume {volume} of {volumes} is impossible")]
    BadVolume { volume: u32, volumes: u32 },
    #[error("reading the medium: {0}")]
    Io(#[from] io::Error),
    #[error("cancelled")]
    Cancelled,
}

impl Manifest {
    /// The manifest of volume `volume` of `volumes`, listing `paths` (which
    /// must be entries of `plan`) in plan order.
    pub fn for_volume<'a>(
        plan: &MediaPlan,
        volume: u32,
        volumes: u32,
        paths: impl IntoIterator<Item = &'a MediaPath>,
    ) -> Manifest {
        let wanted: std::collections::HashSet<&MediaPath> = paths.into_iter().collect();
        Manifest {
            format: FORMAT.to_owned(),
            set_id: plan.set_id.clone(),
            label: plan.label.clone(),
            volume,
            volumes,
            source_date_epoch: plan.source_date_epoch,
            files: plan
                .entries
                .iter()
                .filter(|e| wanted.contains(&e.path))
                .map(|e| ManifestFile {
                    path: e.path.clone(),
                    size: e.size,
                    blake3: e.blake3.clone(),
                })
                .collect(),
        }
    }

    /// The manifest of a single-volume medium holding the whole plan.
    pub fn for_plan(plan: &MediaPlan) -> Manifest {
        Self::for_volume(plan, 1, 1, plan.entries.iter().map(|e| &e.path))
    }

    /// The bytes written to the medium: pretty JSON with a final newline, so
    /// an administrator can read it; deterministic for reproducible media.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len() as u64));
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if m.format != FORMAT {
            return Err(ManifestError::Malformed(format!(
                "format {:?}, expected {FORMAT:?}",
                m.format
            )));
        }
        if m.volume == 0 || m.volume > m.volumes {
            return Err(ManifestError::BadVolume {
                volume: m.volume,
                volumes: m.volumes,
            });
        }
        Ok(m)
    }

    /// Total size of the files listed.
    pub fn bytes(&self) -> u64 {
        // Sizes come from the medium: a hostile manifest may list sizes
        // that overflow when added (found by fuzzing).
        self.files
            .iter()
            .fold(0u64, |a, f| a.saturating_add(f.size))
    }
}

/// Read access to the files of one medium, in whatever format it has.
pub trait MediaReader {
    /// Open a file by media path; `Ok(None)` when it does not exist.
    fn open(&mut self, path: &MediaPath) -> io::Result<Option<Box<dyn Read + '_>>>;
}

/// A file whose bytes on the medium are not those the manifest promises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum FileProblem {
    Missing {
        path: MediaPath,
    },
    SizeDiffers {
        path: MediaPath,
        expected: u64,
        actual: u64,
    },
    HashDiffers {
        path: MediaPath,
        expected: String,
        actual: String,
    },
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Missing { path } => write!(f, "{path}: missing"),
            FileProblem::SizeDiffers {
                path,
                expected,
                actual,
            } => {
                write!(f, "{path}: {actual} bytes, manifest says {expected}")
            }
            FileProblem::HashDiffers { path, .. } => {
                write!(f, "{path}: content differs (BLAKE3 mismatch)")
            }
        }
    }
}

/// What a read-back found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyOutcome {
    pub manifest: Manifest,
    pub files_checked: usize,
    pub bytes_checked: u64,
    pub problems: Vec<FileProblem>,
}

impl VerifyOutcome {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Read the manifest from a medium.
pub fn read_manifest(reader: &mut dyn MediaReader) -> Result<Manifest, ManifestError> {
    let path =
        MediaPath::new(MANIFEST_PATH).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    let Some(r) = reader.open(&path)? else {
        return Err(ManifestError::Missing);
    };
    let mut buf = Vec::new();
    r.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut buf)?;
    Manifest::parse(&buf)
}

/// Read every file the medium's manifest lists and compare size and BLAKE3,
/// reporting phase `verify` (bytes read of `manifest.bytes()`) and stopping
/// with [`ManifestError::Cancelled`] between chunks when asked.
pub fn verify(
    reader: &mut dyn MediaReader,
    progress: &dyn Progress,
    cancel: &dyn Cancel,
) -> Result<VerifyOutcome, ManifestError> {
    let manifest = read_manifest(reader)?;
    let total = manifest.bytes();
    let mut done = 0u64;
    let mut problems = Vec::new();
    for f in &manifest.files {
        if cancel.is_cancelled() {
            return Err(ManifestError::Cancelled);
        }
        let Some(r) = reader.open(&f.path)? else {
            problems.push(FileProblem::Missing {
                path: f.path.clone(),
            });
            continue;
        };
        let mut r = Cancellable { inner: r, cancel };
        let (n, actual) = match capmedia_content::blake3_stream(&mut r, &mut |k| {
            done += k;
            progress.update("verify", done, total);
        }) {
            Err(_) if cancel.is_cancelled() => return Err(ManifestError::Cancelled),
            r => r?,
        };
        if n != f.size {
            problems.push(FileProblem::SizeDiffers {
                path: f.path.clone(),
                expected: f.size,
                actual: n,
            });
        } else if actual != f.blake3 {
            problems.push(FileProblem::HashDiffers {
                path: f.path.clone(),
                expected: f.blake3.clone(),
                actual,
            });
        }
    }
    Ok(VerifyOutcome {
        files_checked: manifest.files.len(),
        bytes_checked: done,
        manifest,
        problems,
    })
}

/// A reader that fails once cancelled, so a long file stops at the next
/// chunk. Not `Interrupted`: read loops retry that kind.
struct Cancellable<'a, R> {
    inner: R,
    cancel: &'a dyn Cancel,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        self.inner.read(buf)
    }
}

/// A [`MediaReader`] over a folder on the host: for media trees copied out,
/// and for sinks that write folders.
#[derive(Debug)]
pub struct DirReader(pub std::path::PathBuf);

impl MediaReader for DirReader {
    fn open(&mut self, path: &MediaPath) -> io::Result<Option<Box<dyn Read + '_>>> {
        match std::fs::File::open(path.to_host_path(&self.0)) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
