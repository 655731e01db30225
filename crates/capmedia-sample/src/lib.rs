//! The bundled sample distribution point.
//!
//! A real `SCCMContentLib` (written by `capmedia-dp`'s content-library
//! builder) holding two boot image packages, x64 and x86. Like a real
//! Configuration Manager boot image package, each holds only its
//! `boot.<PKGID>.wim`: an LZX-compressed, bootable WIM shaped like a real
//! boot image (`capmedia_testboot::write_boot_image_tree`: boot managers
//! under `Windows/Boot/...`, `_EX` ones, fonts, `boot.sdi`, a network and a
//! storage driver INF, a `kernel32.dll` with the package's PE machine), made
//! with `wimlib-imagex` by `cargo xtask sample-wims` and committed in `data/`
//! so the sample needs no tool. Its boot programs are `capmedia-testboot`'s:
//! they print [`MARKER`] instead of starting Windows. It has no BCD stores,
//! as ADK-built boot images often have none: capmedia writes them.
//!
//! `cargo xtask demo` and the end-to-end tests build media from it.

use std::path::{Path, PathBuf};

use capmedia_content::{Arch, PackageId};
use capmedia_dp::{build_library, BuildOptions, PackageSource};

/// What the sample's boot programs print on the serial console.
pub const MARKER: &str = "capmedia sample boot program: booted";

/// The x64 boot image package.
pub const X64_PACKAGE: &str = "PS100001";
/// The x86 boot image package.
pub const X86_PACKAGE: &str = "PS100002";

/// The x64 boot image (see the crate documentation).
pub const X64_WIM: &[u8] = include_bytes!("../data/boot-x64.wim");
/// The x86 boot image.
pub const X86_WIM: &[u8] = include_bytes!("../data/boot-x86.wim");

#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("writing the sample package folders in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("building the sample content library: {0}")]
    Build(#[from] capmedia_dp::BuildError),
}

/// Where the sample was written.
#[derive(Debug, Clone)]
pub struct SampleDp {
    /// The `SCCMContentLib` folder: what `--dp` takes.
    pub content_lib: PathBuf,
    /// Package id and architecture of each boot image package.
    pub packages: Vec<(PackageId, Arch)>,
}

/// Write the sample DP under `dir` (`dir/SCCMContentLib`, plus the package
/// source folders in `dir/packages`). Same bytes every time.
pub fn write_sample_dp(dir: &Path) -> Result<SampleDp, SampleError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SampleError::Io {
            path: path.clone(),
            source,
        }
    };
    let mut folders = Vec::new();
    for (id, arch, wim) in [
        (X64_PACKAGE, Arch::X64, X64_WIM),
        (X86_PACKAGE, Arch::X86, X86_WIM),
    ] {
        let id: PackageId = id.parse().map_err(|e| SampleError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        let folder = dir.join("packages").join(id.as_str());
        if folder.exists() {
            std::fs::remove_dir_all(&folder).map_err(io(&folder))?;
        }
        // Like a real boot image package: the WIM alone.
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        std::fs::write(folder.join(id.boot_wim_name()), wim).map_err(io(&folder))?;
        folders.push((id, arch, folder));
    }
    let content_lib = dir.join("SCCMContentLib");
    if content_lib.exists() {
        std::fs::remove_dir_all(&content_lib).map_err(io(&content_lib))?;
    }
    let sources: Vec<PackageSource<'_>> = folders
        .iter()
        .map(|(id, _, folder)| PackageSource {
            id: id.clone(),
            version: 1,
            folder,
        })
        .collect();
    build_library(&content_lib, &sources, &BuildOptions::default())?;
    Ok(SampleDp {
        content_lib,
        packages: folders.into_iter().map(|(id, a, _)| (id, a)).collect(),
    })
}
