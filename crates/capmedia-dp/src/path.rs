//! The path backend: a mounted `SCCMContentLib$` share or a copy of it, plus
//! further roots holding the rest of a FileLib that spans drives.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, Blob, Lib};
use crate::error::BackendError;
use crate::listing::{check_name, ListingEntry, MAX_LISTING_ENTRIES};

/// Every path is resolved (symlinks followed) before use and must stay
/// inside one of `roots`, the canonical library roots: a symlink in a
/// library (`DataLib\x -> /etc`) is refused, never followed out.
#[derive(Debug)]
pub(crate) struct PathBackend {
    pkglib: PathBuf,
    datalib: PathBuf,
    filelibs: Vec<PathBuf>,
    roots: Vec<PathBuf>,
}

/// Open `path` for reading only if it is a regular file: a FIFO (or a
/// device) as an INI or blob would block `open` or `read` forever. The type
/// is checked before opening, the open cannot block (`O_NONBLOCK`) nor
/// follow a symlink swapped in meanwhile (`O_NOFOLLOW`; `path` is already
/// resolved), and the opened file is checked again.
fn open_regular(path: &Path) -> Result<File, BackendError> {
    let not_regular = |what: &str| {
        BackendError::Other(format!(
            "{} is {what}, not a regular file; refusing to read it",
            path.display()
        ))
    };
    let kind = |m: &fs::Metadata| {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            "a FIFO"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device"
        } else if t.is_dir() {
            "a folder"
        } else if t.is_symlink() {
            "a symlink"
        } else {
            "not a regular file"
        }
    };
    let meta = fs::symlink_metadata(path).map_err(BackendError::from_io)?;
    if !meta.is_file() {
        return Err(not_regular(kind(&meta)));
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(BackendError::from_io)?;
    let meta = f.metadata().map_err(BackendError::from_io)?;
    if !meta.is_file() {
        return Err(not_regular(kind(&meta)));
    }
    Ok(f)
}

/// `dir/name`, matching `name` ASCII-case-insensitively if the exact
/// spelling is absent: Windows shares are case-insensitive, but a copy on a
/// Linux file system is not.
fn child_ci(dir: &Path, name: &str) -> Option<PathBuf> {
    let exact = dir.join(name);
    if exact.exists() {
        return Some(exact);
    }
    fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .map(|e| e.path())
}

impl PathBackend {
    /// `root` is the `SCCMContentLib` folder; each extra root is another
    /// drive's `SCCMContentLib` (holding a `FileLib`) or a `FileLib` itself.
    pub(crate) fn new(root: &Path, extra_roots: &[PathBuf]) -> Result<Self, String> {
        let meta = fs::metadata(root).map_err(|e| format!("{}: {e}", root.display()))?;
        if !meta.is_dir() {
            return Err(format!("{} is not a folder", root.display()));
        }
        let canon = |p: &Path| fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()));
        let mut roots = vec![canon(root)?];
        for extra in extra_roots {
            roots.push(canon(extra)?);
        }
        let inside = |p: PathBuf| -> Result<PathBuf, String> {
            let c = canon(&p)?;
            if roots.iter().any(|r| c.starts_with(r)) {
                Ok(c)
            } else {
                Err(format!(
                    "{} leads to {}, outside the content library",
                    p.display(),
                    c.display()
                ))
            }
        };
        let need = |name: &str| {
            child_ci(root, name).ok_or_else(|| {
                format!(
                    "{} has no {name} folder; give the SCCMContentLib folder itself",
                    root.display()
                )
            })
        };
        let pkglib = inside(need("PkgLib")?)?;
        let datalib = inside(need("DataLib")?)?;
        let mut filelibs = vec![inside(need("FileLib")?)?];
        for extra in extra_roots {
            match child_ci(extra, "FileLib") {
                Some(f) => filelibs.push(inside(f)?),
                None if extra.is_dir() => filelibs.push(inside(extra.clone())?),
                None => return Err(format!("{} is not a folder", extra.display())),
            }
        }
        Ok(PathBackend {
            pkglib,
            datalib,
            filelibs,
            roots,
        })
    }

    fn dir(&self, lib: Lib, rel: &[&str]) -> PathBuf {
        let mut p = match lib {
            Lib::PkgLib => self.pkglib.clone(),
            Lib::DataLib => self.datalib.clone(),
        };
        p.extend(rel);
        p
    }

    /// `path` resolved, if it stays inside the library.
    fn confine(&self, path: &Path) -> Result<PathBuf, BackendError> {
        let c = fs::canonicalize(path).map_err(BackendError::from_io)?;
        if self.roots.iter().any(|r| c.starts_with(r)) {
            return Ok(c);
        }
        let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
        Err(BackendError::Unsafe {
            name: path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            reason: format!(
                "{} leads to {}, outside the content library ({})",
                path.display(),
                c.display(),
                roots.join(", ")
            ),
        })
    }

    fn blob_path(&self, hash: &str) -> Option<PathBuf> {
        let prefix = hash.get(..4)?;
        for fl in &self.filelibs {
            for (pre, name) in [
                (prefix.to_owned(), hash.to_owned()),
                (prefix.to_ascii_lowercase(), hash.to_ascii_lowercase()),
            ] {
                let p = fl.join(&pre).join(&name);
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        None
    }
}

impl Backend for PathBackend {
    fn list(&self, lib: Lib, rel: &[&str]) -> Result<Vec<ListingEntry>, BackendError> {
        let dir = self.confine(&self.dir(lib, rel))?;
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(BackendError::from_io)? {
            let entry = entry.map_err(BackendError::from_io)?;
            if out.len() >= MAX_LISTING_ENTRIES {
                return Err(BackendError::Other(format!(
                    "{} has more than {MAX_LISTING_ENTRIES} entries; no DP folder holds that many",
                    dir.display()
                )));
            }
            let raw = entry.file_name();
            let name = raw.to_str().ok_or_else(|| BackendError::Unsafe {
                name: raw.to_string_lossy().into_owned(),
                reason: "is not valid UTF-8".into(),
            })?;
            check_name(name).map_err(|r| BackendError::Unsafe {
                name: name.to_owned(),
                reason: r.into(),
            })?;
            // Follow symlinks like a share would, but only inside the
            // library: one that leads out is refused.
            let meta = if entry
                .file_type()
                .map_err(BackendError::from_io)?
                .is_symlink()
            {
                let target = self.confine(&entry.path()).map_err(|e| match e {
                    BackendError::Unsafe { reason, .. } => BackendError::Unsafe {
                        name: name.to_owned(),
                        reason: format!("is a symlink that {reason}"),
                    },
                    e => e,
                })?;
                fs::metadata(target).map_err(BackendError::from_io)?
            } else {
                entry.metadata().map_err(BackendError::from_io)?
            };
            out.push(ListingEntry {
                name: name.to_owned(),
                is_dir: meta.is_dir(),
                size: meta.is_file().then_some(meta.len()),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn read_small(&self, lib: Lib, rel: &[&str], limit: u64) -> Result<Vec<u8>, BackendError> {
        let path = self.confine(&self.dir(lib, rel))?;
        let f = open_regular(&path)?;
        let mut buf = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(BackendError::from_io)?;
        if buf.len() as u64 > limit {
            return Err(BackendError::Other(format!(
                "{} is larger than {limit} bytes",
                path.display()
            )));
        }
        Ok(buf)
    }

    fn stat_blob(&self, hash: &str) -> Result<Option<u64>, BackendError> {
        match self.blob_path(hash) {
            Some(p) => fs::metadata(self.confine(&p)?)
                .map(|m| Some(m.len()))
                .map_err(BackendError::from_io),
            None => {
                // Tell "absent" from "cannot look": a FileLib we may not read
                // is an access problem, not missing content.
                for fl in &self.filelibs {
                    if let Err(e) = fs::read_dir(fl) {
                        return Err(BackendError::from_io(e));
                    }
                }
                Ok(None)
            }
        }
    }

    fn open_blob(&self, hash: &str, offset: u64, len: Option<u64>) -> Result<Blob, BackendError> {
        let path = self.blob_path(hash).ok_or(BackendError::NotFound)?;
        let mut f = open_regular(&self.confine(&path)?)?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))
                .map_err(BackendError::from_io)?;
        }
        let reader: Box<dyn Read + Send> = match len {
            Some(n) => Box::new(f.take(n)),
            None => Box::new(f),
        };
        Ok(Blob {
            reader,
            offset,
            whole: false,
        })
    }

    fn local_blob(&self, hash: &str) -> Option<File> {
        open_regular(&self.confine(&self.blob_path(hash)?).ok()?).ok()
    }

    fn blob_location(&self, hash: &str) -> String {
        let prefix = hash.get(..4).unwrap_or(hash);
        let roots: Vec<String> = self
            .filelibs
            .iter()
            .map(|f| f.join(prefix).join(hash).display().to_string())
            .collect();
        roots.join(" or ")
    }
}
