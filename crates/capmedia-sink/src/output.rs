//! The output protocol every sink uses for files and folders: the one
//! place that keeps "nothing existing is lost" (ARCHITECTURE.md).
//!
//! 1. [`check_output`] (from `check`, reading no content): the output names
//!    a file (or, for folder sinks, a folder) in an existing, writable
//!    folder; an existing output is of that kind; the folder has room for
//!    the new output beside the old one (stale temporaries count as room).
//! 2. [`OutputSet::begin`] (from `write`): the same checks again, a lock
//!    against a second run on the same output, and the removal of every
//!    temporary that a dead run left in the folder (any sink's, found by
//!    `capmedia-tempfile`'s naming).
//! 3. [`OutputSet::create_file`] / [`OutputSet::create_dir`]: a temporary
//!    beside each final name. Whatever is still uncommitted when the set is
//!    dropped (error, cancel, panic) is removed.
//! 4. [`OutputSet::commit`]: data and folder `fsync` (errors are errors),
//!    the replaced file's permissions and owner kept, then one rename per
//!    output (a folder is swapped in atomically), a folder `fsync`, and only
//!    then the removal of old outputs the new set no longer has.
//!
//! Block devices never go through here: they are written in place, after
//! the driver's device checks and the user's confirmation.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use capmedia_tempfile::TempPath;
use rustix::fs::{Access, FlockOperation};

use crate::SinkError;

/// Room kept free beyond the output itself, for the file system's own
/// metadata.
const FREE_MARGIN: u64 = 4 << 20;

/// What a sink writes at an output path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    File,
    Folder,
}

fn io_err<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |e| SinkError::io(format!("{what} {}: {e}", p.display()))
}

/// The folder `output` goes into, checked: `output` names something, the
/// folder exists, is a folder and is writable.
pub fn output_folder(output: &Path) -> Result<PathBuf, SinkError> {
    if output.file_name().is_none() {
        return Err(SinkError::refused(format!(
            "{} does not name an output file",
            output.display()
        )));
    }
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(SinkError::refused(format!(
            "the output folder {} does not exist; create it first",
            dir.display()
        )));
    }
    if let Err(e) = rustix::fs::access(&dir, Access::WRITE_OK | Access::EXEC_OK) {
        return Err(SinkError::refused(format!(
            "cannot write in the output folder {}: {e}",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Refuse an output path whose existing entry is not of `kind`.
fn check_existing(output: &Path, kind: OutputKind) -> Result<(), SinkError> {
    let Ok(m) = fs::symlink_metadata(output) else {
        return Ok(());
    };
    let ok = match kind {
        OutputKind::File => m.is_file(),
        OutputKind::Folder => m.is_dir(),
    };
    if ok {
        return Ok(());
    }
    let what = if m.is_dir() {
        "a folder"
    } else if m.is_file() {
        "a file"
    } else if m.file_type().is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    };
    let want = match kind {
        OutputKind::File => "the path of the file to write",
        OutputKind::Folder => "the path of the folder to write",
    };
    Err(SinkError::refused(format!(
        "{} is {what}; give {want}",
        output.display()
    )))
}

/// Step 1 of the protocol: everything about the output's place that can
/// refuse, from sizes alone. `need` is what the new output(s) will occupy
/// on the folder's file system. Returns the folder.
pub fn check_output(output: &Path, kind: OutputKind, need: u64) -> Result<PathBuf, SinkError> {
    let dir = output_folder(output)?;
    check_existing(output, kind)?;
    check_room(&dir, need)?;
    Ok(dir)
}

/// Refuse a folder with less than `need` bytes free (plus a margin), where
/// temporaries of dead runs, which `begin` removes, count as free.
pub fn check_room(dir: &Path, need: u64) -> Result<(), SinkError> {
    let st = rustix::fs::statvfs(dir)
        .map_err(|e| SinkError::io(format!("cannot query free space of {}: {e}", dir.display())))?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let stale: u64 = capmedia_tempfile::stale_in(dir).iter().map(|s| s.1).sum();
    let need = need.saturating_add(FREE_MARGIN);
    if free.saturating_add(stale) < need {
        return Err(SinkError::refused(format!(
            "{} has {free} bytes free, but the output needs {need} (it is written beside any existing output before replacing it)",
            dir.display()
        )));
    }
    Ok(())
}

/// An exclusive lock on one output name, so two runs never write (or clean
/// up) the same output at once. The lock is a `flock` on
/// `.<name>.capmedia-lock` beside the output: the kernel drops it when the
/// process dies, so a killed run leaves no lock held (only an empty file
/// that the next run takes over and removes).
#[derive(Debug)]
pub struct OutputLock {
    path: PathBuf,
    file: Option<File>,
}

impl OutputLock {
    pub fn acquire(output: &Path) -> Result<OutputLock, SinkError> {
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = output.with_file_name(format!(".{name}.capmedia-lock"));
        // A run that finished unlinks the file while holding the lock; if we
        // opened it just before, our lock is on an unlinked inode: retry.
        for _ in 0..8 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .open(&path)
                .map_err(io_err("cannot create the lock file", &path))?;
            rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).map_err(|_| {
                SinkError::refused(format!(
                    "another capmedia run is writing {}; try again when it has finished",
                    output.display()
                ))
            })?;
            let held = file
                .metadata()
                .map_err(io_err("cannot stat the lock file", &path))?;
            match fs::metadata(&path) {
                Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => {
                    return Ok(OutputLock {
                        path,
                        file: Some(file),
                    })
                }
                _ => continue,
            }
        }
        Err(SinkError::refused(format!(
            "could not lock {}: its lock file keeps changing",
            output.display()
        )))
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock, then release it.
        let _ = fs::remove_file(&self.path);
        self.file.take();
    }
}

#[derive(Debug)]
struct Item {
    tmp: TempPath,
    final_path: PathBuf,
    kind: OutputKind,
}

/// Steps 2–4 of the protocol; see the module documentation.
#[derive(Debug)]
pub struct OutputSet {
    dir: PathBuf,
    items: Vec<Item>,
    _lock: OutputLock,
}

impl OutputSet {
    /// Check again (the world may have changed since `check`), lock the
    /// output, and remove dead runs' temporaries from its folder.
    pub fn begin(output: &Path, kind: OutputKind, need: u64) -> Result<OutputSet, SinkError> {
        let dir = output_folder(output)?;
        check_existing(output, kind)?;
        let lock = OutputLock::acquire(output)?;
        capmedia_tempfile::remove_stale(&dir).map_err(|e| {
            SinkError::io(format!(
                "cannot remove a dead run's temporary in {}: {e}",
                dir.display()
            ))
        })?;
        check_room(&dir, need)?;
        Ok(OutputSet {
            dir,
            items: Vec::new(),
            _lock: lock,
        })
    }

    /// The folder the outputs go into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty temporary file that becomes `final_path` at commit
    /// (`final_path` must lie in the set's folder). The caller opens it for
    /// writing (e.g. with direct I/O).
    pub fn create_file(&mut self, final_path: &Path) -> Result<PathBuf, SinkError> {
        self.same_folder(final_path)?;
        check_existing(final_path, OutputKind::File)?;
        let tmp = capmedia_tempfile::temp_path_for(final_path);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("cannot create", &tmp))?;
        self.items.push(Item {
            tmp: TempPath::new(tmp.clone()),
            final_path: final_path.to_owned(),
            kind: OutputKind::File,
        });
        Ok(tmp)
    }

    /// A new, empty temporary folder that becomes `final_path` at commit.
    pub fn create_dir(&mut self, final_path: &Path) -> Result<PathBuf, SinkError> {
        self.same_folder(final_path)?;
        check_existing(final_path, OutputKind::Folder)?;
        let tmp = capmedia_tempfile::temp_path_for(final_path);
        fs::create_dir(&tmp).map_err(io_err("cannot create", &tmp))?;
        self.items.push(Item {
            tmp: TempPath::new(tmp.clone()),
            final_path: final_path.to_owned(),
            kind: OutputKind::Folder,
        });
        Ok(tmp)
    }

    fn same_folder(&self, p: &Path) -> Result<(), SinkError> {
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if parent != self.dir {
            return Err(SinkError::internal(format!(
                "{} is not in the output folder {}",
                p.display(),
                self.dir.display()
            )));
        }
        Ok(())
    }

    /// The commit point: after this returns `Ok`, the new outputs are in
    /// place. `remove_after` are old outputs the new set replaces by
    /// absence (volumes an old, larger set had), removed last.
    pub fn commit(mut self, remove_after: &[PathBuf]) -> Result<(), SinkError> {
        for item in &self.items {
            sync_tree(item.tmp.path())?;
            keep_mode_and_owner(item.tmp.path(), &item.final_path)?;
        }
        sync_dir(&self.dir)?;
        for item in std::mem::take(&mut self.items) {
            let tmp = item.tmp.path().to_owned();
            match item.kind {
                OutputKind::Folder if item.final_path.is_dir() => {
                    // Swap the folders in one step, then remove the old one,
                    // which now sits at the temporary name (and is removed
                    // by the guard even if this fails).
                    rustix::fs::renameat_with(
                        rustix::fs::CWD,
                        &tmp,
                        rustix::fs::CWD,
                        &item.final_path,
                        rustix::fs::RenameFlags::EXCHANGE,
                    )
                    .map_err(|e| {
                        SinkError::io(format!(
                            "cannot swap {} into place: {e}",
                            item.final_path.display()
                        ))
                    })?;
                    item.tmp.remove().map_err(io_err(
                        "the new folder is in place, but the old one could not be removed from",
                        &tmp,
                    ))?;
                }
                _ => {
                    fs::rename(&tmp, &item.final_path).map_err(|e| {
                        SinkError::io(format!(
                            "cannot rename {} to {}: {e}",
                            tmp.display(),
                            item.final_path.display()
                        ))
                    })?;
                    item.tmp.keep();
                }
            }
        }
        sync_dir(&self.dir)?;
        if !remove_after.is_empty() {
            for p in remove_after {
                match fs::remove_file(p) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        return Err(SinkError::io(format!(
                            "the new outputs are in place, but the old {} could not be removed: {e}",
                            p.display()
                        )))
                    }
                    _ => {}
                }
            }
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err("cannot sync the folder", dir))
}

/// `fsync` a file, or every file and folder of a tree.
fn sync_tree(p: &Path) -> Result<(), SinkError> {
    let m = fs::symlink_metadata(p).map_err(io_err("cannot stat", p))?;
    if m.is_dir() {
        for e in fs::read_dir(p).map_err(io_err("cannot list", p))? {
            let e = e.map_err(io_err("cannot list", p))?;
            sync_tree(&e.path())?;
        }
    } else if !m.is_file() {
        return Ok(());
    }
    File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(io_err("cannot sync", p))
}

/// Give the new output the permissions and owner of the one it replaces.
fn keep_mode_and_owner(tmp: &Path, final_path: &Path) -> Result<(), SinkError> {
    let Ok(old) = fs::symlink_metadata(final_path) else {
        return Ok(());
    };
    let new = fs::symlink_metadata(tmp).map_err(io_err("cannot stat", tmp))?;
    fs::set_permissions(tmp, fs::Permissions::from_mode(old.mode() & 0o7777))
        .map_err(io_err("cannot set the permissions of", tmp))?;
    if (old.uid(), old.gid()) != (new.uid(), new.gid()) {
        std::os::unix::fs::chown(tmp, Some(old.uid()), Some(old.gid())).map_err(|e| {
            SinkError::io(format!(
                "cannot give {} the owner of {} (uid {}, gid {}): {e}",
                tmp.display(),
                final_path.display(),
                old.uid(),
                old.gid()
            ))
        })?;
        // chown clears set-id bits; put them back.
        fs::set_permissions(tmp, fs::Permissions::from_mode(old.mode() & 0o7777))
            .map_err(io_err("cannot set the permissions of", tmp))?;
    }
    Ok(())
}
