//! Reading a volume back: `hadris-iso`'s reader behind
//! `capmedia_manifest::MediaReader`.

use std::io::{self, Read};
use std::path::Path;

use capmedia_content::MediaPath;
use capmedia_manifest::MediaReader;
use hadris_fs::sync::Volume;
use hadris_fs::{MountOptions, OpenOptions};
use hadris_iso::sync::IsoFs;
use hadris_storage::host::FileDevice;

/// A mounted ISO image; files are looked up in its Joliet tree (the most
/// capable tree the image has), so names keep their case.
pub struct IsoReader {
    volume: Volume<IsoFs<FileDevice>>,
}

impl std::fmt::Debug for IsoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsoReader").finish_non_exhaustive()
    }
}

impl IsoReader {
    /// Mount the image at `path` read-only.
    pub fn open(path: &Path) -> io::Result<IsoReader> {
        let file = std::fs::File::open(path)?;
        let dev = FileDevice::new(file)?;
        let fs = IsoFs::mount(dev, MountOptions::new()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a readable ISO 9660 image: {e}", path.display()),
            )
        })?;
        Ok(IsoReader {
            volume: Volume::new(fs),
        })
    }
}

impl MediaReader for IsoReader {
    fn open(&mut self, path: &MediaPath) -> io::Result<Option<Box<dyn Read + '_>>> {
        let p = format!("/{}", path.as_str());
        match self.volume.open(p.as_bytes(), OpenOptions::new().read()) {
            Ok(f) => Ok(Some(Box::new(f))),
            Err(e) if e.kind() == hadris_io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::other(format!("{}: {e}", path.as_str()))),
        }
    }
}
