//! The output folder: checks before writing, the lock that keeps two runs
//! apart, temporaries and their cleanup, and the final renames.

use std::fs::File;

use capmedia_directio::DirectFile;
use std::path::{Path, PathBuf};

use rustix::fs::{Access, FlockOperation};

use crate::layout::{is_set_member, is_set_temp};
use crate::{IsoError, IsoReader, SetLayout};

/// Room kept free beyond the set itself, for the file system's own
/// metadata.
const FREE_MARGIN: u64 = 4 << 20;

/// The folder `output` goes into, checked: it exists, is a folder, and is
/// writable, and `output` itself is not a folder.
pub fn output_dir(output: &Path) -> Result<PathBuf, IsoError> {
    if output.file_name().is_none() {
        return Err(IsoError::Refused(format!(
            "{} does not name an output file",
            output.display()
        )));
    }
    if output.is_dir() {
        return Err(IsoError::Refused(format!(
            "{} is a folder; give the path of the .iso file to write",
            output.display()
        )));
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(IsoError::Refused(format!(
            "the output folder {} does not exist; create it first",
            dir.display()
        )));
    }
    if rustix::fs::access(&dir, Access::WRITE_OK | Access::EXEC_OK).is_err() {
        return Err(IsoError::Refused(format!(
            "the output folder {} is not writable",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Refuse when the folder cannot hold the new set beside the old one.
pub fn check_free_space(set: &SetLayout) -> Result<(), IsoError> {
    let st = rustix::fs::statvfs(&set.dir).map_err(|e| IsoError::Io {
        what: format!("cannot query free space of {}", set.dir.display()),
        source: e.into(),
    })?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    // Stale temporaries of this set are removed before writing.
    let stale: u64 = set
        .volumes
        .first()
        .map(|v| stale_temps(&set.dir, &v.output))
        .unwrap_or_default()
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let need = set.total_bytes() + FREE_MARGIN;
    if free.saturating_add(stale) < need {
        return Err(IsoError::Refused(format!(
            "{} has {} bytes free, but the set needs {} (written beside any existing set before replacing it)",
            set.dir.display(),
            free,
            need
        )));
    }
    Ok(())
}

/// An exclusive `flock` on the output folder for the duration of a write,
/// so a run never removes another live run's temporaries. The kernel drops
/// it when the process dies, so a killed run leaves no stale lock.
#[derive(Debug)]
pub struct DirLock(#[allow(dead_code)] File);

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<DirLock, IsoError> {
        let f = File::open(dir).map_err(IsoError::io(format!("cannot open {}", dir.display())))?;
        rustix::fs::flock(&f, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
            IsoError::Refused(format!(
                "another capmedia run is writing into {}; try again when it has finished",
                dir.display()
            ))
        })?;
        Ok(DirLock(f))
    }
}

/// Temporaries of the set named after `output` found in `dir`.
fn stale_temps(dir: &Path, output: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| is_set_temp(output, n))
        })
        .map(|e| e.path())
        .collect()
}

/// Remove temporaries a killed run left behind (call with the lock held).
pub fn clean_stale_temps(dir: &Path, output: &Path) -> Result<(), IsoError> {
    for p in stale_temps(dir, output) {
        std::fs::remove_file(&p).map_err(IsoError::io(format!(
            "cannot remove stale temporary {}",
            p.display()
        )))?;
    }
    Ok(())
}

/// The temporaries of a write; whatever is still listed when this is
/// dropped (failure, cancel, panic) is removed.
#[derive(Debug, Default)]
pub struct Temps(Vec<PathBuf>);

impl Temps {
    /// Create a new temporary file (never an existing one), written past
    /// the page cache where the file system allows it.
    pub fn create(&mut self, path: &Path) -> Result<DirectFile, IsoError> {
        let f = DirectFile::create_new(path)
            .map_err(IsoError::io(format!("cannot create {}", path.display())))?;
        self.0.push(path.to_owned());
        Ok(f)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.0.iter().map(PathBuf::as_path)
    }

    /// Rename each temporary over its final name, then sync the folder.
    pub fn commit(&mut self, finals: &[PathBuf], dir: &Path) -> Result<(), IsoError> {
        let pairs: Vec<(PathBuf, PathBuf)> =
            self.0.iter().cloned().zip(finals.iter().cloned()).collect();
        for (tmp, fin) in pairs {
            std::fs::rename(&tmp, &fin).map_err(IsoError::io(format!(
                "cannot rename {} to {}",
                tmp.display(),
                fin.display()
            )))?;
            self.0.retain(|p| *p != tmp);
        }
        sync_dir(dir)
    }
}

impl Drop for Temps {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), IsoError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(IsoError::io(format!("cannot sync {}", dir.display())))
}

/// After the new set is in place: remove volumes of the old set that the
/// new one no longer has (same stem, `_N` suffix, or the single-volume
/// name), but only files that are capmedia media (they carry a manifest),
/// so an unrelated file that happens to match the pattern is never lost.
pub fn remove_old_volumes(dir: &Path, output: &Path, keep: &[PathBuf]) -> Result<(), IsoError> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let keep_names: Vec<_> = keep.iter().filter_map(|p| p.file_name()).collect();
    let mut removed = false;
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name();
        let Some(n) = name.to_str() else { continue };
        if !is_set_member(output, n) || keep_names.contains(&name.as_os_str()) {
            continue;
        }
        let path = e.path();
        let is_capmedia = IsoReader::open(&path)
            .ok()
            .is_some_and(|mut r| capmedia_manifest::read_manifest(&mut r).is_ok());
        if is_capmedia {
            std::fs::remove_file(&path).map_err(IsoError::io(format!(
                "cannot remove old volume {}",
                path.display()
            )))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}
