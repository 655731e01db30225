//! Reading a volume back: `hadris-iso`'s reader behind
//! `capmedia_manifest::MediaReader`.

use std::io::{self, Read};
use std::path::Path;

use capmedia_content::MediaPath;
use capmedia_directio::DirectFile;
use capmedia_manifest::MediaReader;
use hadris_fs::sync::Volume;
use hadris_fs::{MountOptions, OpenOptions};
use hadris_io::{Error as HError, ErrorKind as HKind, ErrorType};
use hadris_iso::sync::IsoFs;
use hadris_storage::{BlockIndex, BlockSize};

/// A mounted ISO image; files are looked up in its Joliet tree (the most
/// capable tree the image has), so names keep their case.
pub struct IsoReader {
    volume: Volume<IsoFs<InDevice>>,
}

/// An image read past the page cache (the read-back checks the medium,
/// not the cache), as a read-only 2048-byte block device.
struct InDevice {
    file: DirectFile,
}

impl ErrorType for InDevice {
    type Error = io::Error;
}

impl hadris_storage::sync::BlockDevice for InDevice {
    fn block_size(&self) -> BlockSize {
        crate::image::BLOCK_SIZE
    }

    fn block_count(&self) -> u64 {
        self.file.len() / u64::from(crate::image::BLOCK)
    }

    fn writable(&self) -> bool {
        false
    }

    fn read_blocks(&mut self, first: BlockIndex, buf: &mut [u8]) -> Result<(), HError<io::Error>> {
        crate::image::read_exact(&mut self.file, first, buf)
    }

    fn write_blocks(&mut self, _first: BlockIndex, _buf: &[u8]) -> Result<(), HError<io::Error>> {
        Err(HError::new(
            HKind::Unsupported,
            "the image is open read-only",
        ))
    }

    fn flush(&mut self) -> Result<(), HError<io::Error>> {
        Ok(())
    }
}

impl std::fmt::Debug for IsoReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsoReader").finish_non_exhaustive()
    }
}

impl IsoReader {
    /// Mount the image at `path` read-only.
    pub fn open(path: &Path) -> io::Result<IsoReader> {
        Self::from_file(DirectFile::open_read(path)?, path)
    }

    /// Mount the image open in `file` (named `path` in errors).
    pub fn from_file(file: DirectFile, path: &Path) -> io::Result<IsoReader> {
        let dev = InDevice { file };
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
