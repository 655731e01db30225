//! The two ways to reach a content library, behind one trait.
//!
//! A backend only knows how to list a folder, read a small file, and stat or
//! stream a FileLib blob. Everything about the library's meaning (PkgLib,
//! DataLib, verification, retries, the cache) lives above it, so both
//! backends behave the same.

use std::fmt::Debug;
use std::fs::File;
use std::io::Read;

use crate::error::BackendError;
use crate::listing::ListingEntry;

/// The top folders of `SCCMContentLib`, by their canonical spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lib {
    PkgLib,
    DataLib,
}

impl Lib {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lib::PkgLib => "PkgLib",
            Lib::DataLib => "DataLib",
        }
    }
}

/// A stream of a FileLib blob, starting at `offset` (which may be 0 even if
/// more was asked for, when a server ignores `Range`).
pub(crate) struct Blob {
    pub reader: Box<dyn Read + Send>,
    pub offset: u64,
    /// The server ignored the byte range asked for (HTTP 200): the stream
    /// holds the whole blob from byte 0 to its end, whatever length was
    /// asked for (the caller skips and stops as it needs).
    pub whole: bool,
}

pub(crate) trait Backend: Send + Sync + Debug {
    /// List `lib/rel...`; every name has passed [`crate::check_name`].
    fn list(&self, lib: Lib, rel: &[&str]) -> Result<Vec<ListingEntry>, BackendError>;
    /// Read a small file `lib/rel...` whole, refusing more than `limit` bytes.
    fn read_small(&self, lib: Lib, rel: &[&str], limit: u64) -> Result<Vec<u8>, BackendError>;
    /// The size of FileLib blob `hash` (64 upper-case hex digits), `None` if absent.
    fn stat_blob(&self, hash: &str) -> Result<Option<u64>, BackendError>;
    /// Stream blob `hash` from `offset`, at most `len` bytes if given.
    fn open_blob(&self, hash: &str, offset: u64, len: Option<u64>) -> Result<Blob, BackendError>;
    /// How the FileLib path of `hash` reads, for messages.
    fn blob_location(&self, hash: &str) -> String;
    /// Blob `hash` as an open local file, when the backend has one (the
    /// fetch then lets the kernel copy it). `None` means "stream it with
    /// [`Backend::open_blob`]", which also reports why it cannot be read.
    fn local_blob(&self, _hash: &str) -> Option<File> {
        None
    }
    /// Whether a large blob is worth fetching as several byte ranges at
    /// once (HTTP: one connection is held to one TCP flow's rate; SMB
    /// already keeps several READs in flight on one stream).
    fn parallel_ranges(&self) -> bool {
        false
    }
}
