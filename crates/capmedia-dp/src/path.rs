//! The path backend: a mounted `SCCMContentLib$` share or a copy of it, plus
//! further roots holding the rest of a FileLib that spans drives.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::backend::{Backend, Blob, Lib};
use crate::error::BackendError;
use crate::listing::{check_name, ListingEntry};

#[derive(Debug)]
pub(crate) struct PathBackend {
    pkglib: PathBuf,
    datalib: PathBuf,
    filelibs: Vec<PathBuf>,
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
        let need = |name: &str| {
            child_ci(root, name).ok_or_else(|| {
                format!(
                    "{} has no {name} folder; give the SCCMContentLib folder itself",
                    root.display()
                )
            })
        };
        let pkglib = need("PkgLib")?;
        let datalib = need("DataLib")?;
        let mut filelibs = vec![need("FileLib")?];
        for extra in extra_roots {
            match child_ci(extra, "FileLib") {
                Some(f) => filelibs.push(f),
                None if extra.is_dir() => filelibs.push(extra.clone()),
                None => return Err(format!("{} is not a folder", extra.display())),
            }
        }
        Ok(PathBackend {
            pkglib,
            datalib,
            filelibs,
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
        let dir = self.dir(lib, rel);
        let mut out = Vec::new();
        for entry in fs::read_dir(&dir).map_err(BackendError::from_io)? {
            let entry = entry.map_err(BackendError::from_io)?;
            let raw = entry.file_name();
            let name = raw.to_str().ok_or_else(|| BackendError::Unsafe {
                name: raw.to_string_lossy().into_owned(),
                reason: "is not valid UTF-8".into(),
            })?;
            check_name(name).map_err(|r| BackendError::Unsafe {
                name: name.to_owned(),
                reason: r.into(),
            })?;
            // Follow symlinks like a share would, but only for the type.
            let meta = fs::metadata(entry.path()).map_err(BackendError::from_io)?;
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
        let path = self.dir(lib, rel);
        let f = File::open(&path).map_err(BackendError::from_io)?;
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
            Some(p) => fs::metadata(p)
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
        let mut f = File::open(path).map_err(BackendError::from_io)?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset))
                .map_err(BackendError::from_io)?;
        }
        let reader: Box<dyn Read + Send> = match len {
            Some(n) => Box::new(f.take(n)),
            None => Box::new(f),
        };
        Ok(Blob { reader, offset })
    }

    fn local_blob(&self, hash: &str) -> Option<File> {
        File::open(self.blob_path(hash)?).ok()
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
