//! Write a content library from plain folders, as a DP lays one out.
//!
//! Tests and the bundled sample need real `PkgLib`/`DataLib`/`FileLib`
//! trees without a Configuration Manager site. The INIs are UTF-16LE with a
//! BOM and CRLF, as a DP writes them, so readers are exercised on the real
//! encoding.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use capmedia_content::{ContentId, MediaPath, PackageId};

use crate::ini::encode_utf16le_crlf;

/// One package to put in the library: the files under `folder` become the
/// package's tree.
#[derive(Debug, Clone)]
pub struct PackageSource<'a> {
    pub id: PackageId,
    pub version: u32,
    pub folder: &'a Path,
}

/// How the INIs are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IniEncoding {
    /// As a DP writes them.
    #[default]
    Utf16Le,
    /// As a re-saved copy might be: UTF-8 with BOM, CRLF.
    Utf8Bom,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Put every second distinct file in `<this>/FileLib` instead, as on a
    /// library spanning two drives.
    pub second_filelib_root: Option<PathBuf>,
    pub encoding: IniEncoding,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltLibrary {
    pub root: PathBuf,
    pub contents: Vec<ContentId>,
    /// Distinct files (blobs) written to FileLib, over all roots.
    pub blobs: usize,
    /// Sum of the package sizes (shared files counted in each package).
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {reason}", path.display())]
    BadName { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Files of a folder, sorted by media path, with their host paths.
fn walk(folder: &Path) -> Result<Vec<(MediaPath, PathBuf)>, BuildError> {
    let files = capmedia_content::walk_tree(folder).map_err(|e| match e {
        capmedia_content::PlanError::Read { path, source } => BuildError::Io { path, source },
        e => BuildError::BadName {
            path: folder.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    let mut out: Vec<_> = files.into_iter().map(|f| (f.path, f.local)).collect();
    out.sort();
    Ok(out)
}

/// Windows FILETIME (100 ns since 1601) of a file's modification time.
fn filetime(path: &Path) -> u64 {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| (d.as_secs() + 11_644_473_600) * 10_000_000 + u64::from(d.subsec_nanos() / 100))
        .unwrap_or(0)
}

/// Build a content library under `root` (the `SCCMContentLib` folder) from
/// one folder per package. Files shared between packages are stored once in
/// FileLib, whose `<HASH>.INI` lists every package using it.
pub fn build_library(
    root: &Path,
    packages: &[PackageSource<'_>],
    opts: &BuildOptions,
) -> Result<BuiltLibrary, BuildError> {
    let encode = |text: &str| -> Vec<u8> {
        match opts.encoding {
            IniEncoding::Utf16Le => encode_utf16le_crlf(text),
            IniEncoding::Utf8Bom => {
                let mut v = vec![0xEF, 0xBB, 0xBF];
                v.extend_from_slice(text.replace('\n', "\r\n").as_bytes());
                v
            }
        }
    };
    let write = |path: &Path, text: &str| -> Result<(), BuildError> {
        if let Some(p) = path.parent() {
            fs::create_dir_all(p).map_err(io_err(p))?;
        }
        fs::write(path, encode(text)).map_err(io_err(path))
    };
    let pkglib = root.join("PkgLib");
    let datalib = root.join("DataLib");
    let filelibs: Vec<PathBuf> = std::iter::once(root.join("FileLib"))
        .chain(opts.second_filelib_root.iter().map(|r| r.join("FileLib")))
        .collect();
    for d in [&pkglib, &datalib].into_iter().chain(filelibs.iter()) {
        fs::create_dir_all(d).map_err(io_err(d))?;
    }

    // hash -> (FileLib index, packages using it)
    let mut blobs: BTreeMap<String, (usize, Vec<PackageId>)> = BTreeMap::new();
    let mut contents = Vec::new();
    let mut bytes = 0u64;
    for pkg in packages {
        let cid = ContentId {
            package: pkg.id.clone(),
            version: pkg.version,
        };
        write(
            &pkglib.join(format!("{}.INI", pkg.id)),
            &format!("[Packages]\n{cid}=\n"),
        )?;
        write(&datalib.join(format!("{cid}.INI")), "[Content]\n")?;
        let tree = datalib.join(cid.to_string());
        fs::create_dir_all(&tree).map_err(io_err(&tree))?;
        for (media, host) in walk(pkg.folder)? {
            let (size, hash) = crate::fetch::sha256_file(&host).map_err(io_err(&host))?;
            bytes += size;
            let ini = media.to_host_path(&tree);
            let ini = ini.with_file_name(format!("{}.INI", media.file_name()));
            write(
                &ini,
                &format!(
                    "[File]\nSize={size}\nTimeModified={}\nAttributes=32\nHash={hash}\n",
                    filetime(&host)
                ),
            )?;
            let next = blobs.len();
            let entry = blobs
                .entry(hash.clone())
                .or_insert_with(|| (next % filelibs.len(), Vec::new()));
            if !entry.1.contains(&pkg.id) {
                entry.1.push(pkg.id.clone());
            }
            let dir = filelibs[entry.0].join(&hash[..4]);
            let blob = dir.join(&hash);
            if !blob.exists() {
                fs::create_dir_all(&dir).map_err(io_err(&dir))?;
                let tmp = dir.join(format!("{hash}.tmp"));
                fs::copy(&host, &tmp).map_err(io_err(&host))?;
                fs::rename(&tmp, &blob).map_err(io_err(&blob))?;
            }
        }
        contents.push(cid);
    }
    for (hash, (idx, users)) in &blobs {
        let mut text = String::from("[Packages]\n");
        for u in users {
            text.push_str(&format!("{u}=\n"));
        }
        write(
            &filelibs[*idx].join(&hash[..4]).join(format!("{hash}.INI")),
            &text,
        )?;
    }
    Ok(BuiltLibrary {
        root: root.to_owned(),
        contents,
        blobs: blobs.len(),
        bytes,
    })
}
