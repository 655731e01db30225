//! Which files in the output folder belong to a set. Everything else about
//! the output (checks, lock, temporaries, commit) is the SDK's output
//! protocol, `capmedia_sink::output`.

use std::path::{Path, PathBuf};

use capmedia_sink::output::{check_output, check_room, output_folder, OutputKind};

use crate::layout::is_set_member;
use crate::{IsoError, IsoReader, SetLayout};

/// The folder `output` goes into, checked (see
/// [`capmedia_sink::output::output_folder`]).
pub fn output_dir(output: &Path) -> Result<PathBuf, IsoError> {
    Ok(output_folder(output)?)
}

/// Refuse when a volume's name is taken by something that is not a file,
/// or when the folder cannot hold the new set beside the old one.
pub fn check_free_space(set: &SetLayout) -> Result<(), IsoError> {
    for v in &set.volumes {
        check_output(&v.output, OutputKind::File, 0)?;
    }
    Ok(check_room(&set.dir, set.total_bytes())?)
}

/// Volumes of an old set that the new one (`keep`) no longer has (same
/// stem, `_N` suffix, or the single-volume name), but only files that are
/// capmedia media (they carry a manifest), so an unrelated file that
/// happens to match the pattern is never lost. Removed after the commit.
pub fn old_volumes(dir: &Path, output: &Path, keep: &[PathBuf]) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let keep_names: Vec<_> = keep.iter().filter_map(|p| p.file_name()).collect();
    let mut old = Vec::new();
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
            old.push(path);
        }
    }
    old
}
