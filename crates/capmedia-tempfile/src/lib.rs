//! Temporary files and folders that survive their writer's death safely.
//!
//! One job, one scheme for the whole of capmedia (as `gix-tempfile` is for
//! gitoxide): output temporaries beside a medium, the driver's staging
//! folder and the content cache's partial downloads are all named
//!
//! ```text
//! .<final name>.capmedia-tmp.<pid>-<start>.<n>
//! ```
//!
//! where `<pid>-<start>` is the owner: its process id and its start time
//! (clock ticks since boot, from `/proc/<pid>/stat`), so a reused pid is not
//! mistaken for the owner. A [`TempPath`] removes its file or folder when
//! dropped (failure, cancel, panic) unless it was kept; a run killed with
//! SIGKILL cannot do that, so every run calls [`remove_stale`] on the folders
//! it writes in, which removes what dead owners left and never touches a
//! live run's temporaries.
//!
//! Written here rather than taken from `tempfile`: that crate's random names
//! carry no owner, so a later run cannot tell a crashed run's leftovers from
//! a concurrent run's files.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What every capmedia temporary name contains.
pub const MARK: &str = ".capmedia-tmp.";

/// The owner of a temporary: a process, told apart from a later process
/// with the same pid by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Start time in clock ticks since boot; 0 where `/proc` is missing.
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn current() -> Owner {
        static ME: OnceLock<Owner> = OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: start_time(pid).unwrap_or(0),
            }
        })
    }

    /// Whether this owner still runs. Without `/proc` nothing can be told,
    /// and a temporary is then never taken for stale.
    pub fn is_alive(&self) -> bool {
        if !Path::new("/proc/self/stat").exists() {
            return true;
        }
        match start_time(self.pid) {
            Some(start) => self.start == 0 || start == self.start,
            None => false,
        }
    }

    fn tag(&self) -> String {
        format!("{}-{}", self.pid, self.start)
    }
}

/// Field 22 of `/proc/<pid>/stat`: the process' start time. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// from the last `)`.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")" come field 3 (state) onwards; field 22 is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// A temporary's name, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempName {
    /// The name the temporary becomes (or stands in for).
    pub final_name: String,
    pub owner: Owner,
}

/// The temporary name for `final_name` owned by this process. Each call
/// gives a new name.
pub fn temp_name(final_name: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(".{final_name}{MARK}{}.{n}", Owner::current().tag())
}

/// The temporary path beside `final_path` (same folder, so a rename
/// commits it).
pub fn temp_path_for(final_path: &Path) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capmedia".to_owned());
    final_path.with_file_name(temp_name(&name))
}

/// Parse a temporary's name; `None` for anything that is not one.
pub fn parse(name: &OsStr) -> Option<TempName> {
    let name = name.to_str()?;
    let (final_part, owner_part) = name.strip_prefix('.')?.rsplit_once(MARK)?;
    let (tag, seq) = owner_part.split_once('.')?;
    let (pid, start) = tag.split_once('-')?;
    if final_part.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) || seq.is_empty() {
        return None;
    }
    Some(TempName {
        final_name: final_part.to_owned(),
        owner: Owner {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        },
    })
}

/// The temporaries in `dir` whose owners are dead, with their sizes (a
/// folder counts the files in it).
pub fn stale_in(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| parse(&e.file_name()).is_some_and(|t| !t.owner.is_alive()))
        .map(|e| {
            let p = e.path();
            let size = tree_size(&p);
            (p, size)
        })
        .collect()
}

fn tree_size(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| tree_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

/// Remove every temporary in `dir` whose owner is dead (a run killed
/// before it could clean up). Returns what was removed.
pub fn remove_stale(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for (p, _) in stale_in(dir) {
        remove_any(&p)?;
        removed.push(p);
    }
    Ok(removed)
}

/// Remove a file or a folder tree; gone already is fine.
pub fn remove_any(p: &Path) -> io::Result<()> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// A temporary file or folder of this process: removed on drop unless
/// [`TempPath::keep`] was called (it was renamed into place, or handed on).
#[derive(Debug)]
pub struct TempPath {
    path: Option<PathBuf>,
}

impl TempPath {
    /// Take charge of `path` (already created by the caller).
    pub fn new(path: PathBuf) -> TempPath {
        TempPath { path: Some(path) }
    }

    /// A new empty folder named for `final_name` inside `dir`.
    pub fn create_dir_in(dir: &Path, final_name: &str) -> io::Result<TempPath> {
        let p = dir.join(temp_name(final_name));
        fs::create_dir(&p)?;
        Ok(TempPath::new(p))
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// Stop owning the path: it is not removed on drop.
    pub fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }

    /// Remove it now, reporting errors (drop ignores them).
    pub fn remove(mut self) -> io::Result<()> {
        match self.path.take() {
            Some(p) => remove_any(&p),
            None => Ok(()),
        }
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = remove_any(&p);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = temp_name("out.iso");
        let t = parse(OsStr::new(&n)).unwrap();
        assert_eq!(t.final_name, "out.iso");
        assert_eq!(t.owner, Owner::current());
        assert!(t.owner.is_alive());
        // Names with the mark inside still parse by the last mark.
        let n = temp_name("a.capmedia-tmp.b");
        assert_eq!(
            parse(OsStr::new(&n)).unwrap().final_name,
            "a.capmedia-tmp.b"
        );
        for bad in [
            "out.iso",
            ".out.iso.capmedia-tmp.",
            ".x.capmedia-tmp.1-2",
            ".x.capmedia-tmp.a-2.3",
        ] {
            assert!(parse(OsStr::new(bad)).is_none(), "{bad}");
        }
    }

    #[test]
    fn dead_owners_are_stale_live_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        // A child that has exited: its pid no longer runs (or runs with
        // another start time).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = format!(".out.img{MARK}{pid}-{}.0", 1);
        fs::write(dir.path().join(&dead), b"partial").unwrap();
        fs::create_dir(dir.path().join(format!(".staging{MARK}{pid}-1.1"))).unwrap();
        fs::write(dir.path().join(format!(".staging{MARK}{pid}-1.1/f")), b"x").unwrap();
        let live = dir.path().join(temp_name("out.img"));
        fs::write(&live, b"mine").unwrap();
        fs::write(dir.path().join("out.img"), b"old").unwrap();
        let stale = stale_in(dir.path());
        assert_eq!(stale.len(), 2, "{stale:?}");
        assert_eq!(stale.iter().map(|s| s.1).sum::<u64>(), 8);
        remove_stale(dir.path()).unwrap();
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        assert_eq!(left.len(), 2);
        assert!(live.exists());
        assert!(dir.path().join("out.img").exists());
    }

    #[test]
    fn temp_path_removes_on_drop_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let t = TempPath::create_dir_in(dir.path(), "staging").unwrap();
        let p = t.path().to_owned();
        fs::write(p.join("x"), b"1").unwrap();
        drop(t);
        assert!(!p.exists());
        let t = TempPath::create_dir_in(dir.path(), "staging").unwrap();
        let p = t.keep();
        assert!(p.exists());
    }
}
