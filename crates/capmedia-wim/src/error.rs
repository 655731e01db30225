//! The one error type for reading WIMs.
//!
//! Every malformed structure has its own variant, so callers and tests can
//! tell "not a WIM" from "a WIM that lies about a size" without parsing
//! messages, and hostile input always ends in an error, never a panic.

use std::io;

use capmedia_wimlib::WimlibError;
use thiserror::Error;

/// Why a WIM could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WimError {
    /// Reading or seeking the underlying file failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The file has no bytes at all.
    #[error("the file is empty")]
    Empty,

    /// The file does not start with `MSWIM\0\0\0` or `WLPWM\0\0\0`.
    #[error("not a WIM file: wrong magic {found:02x?} (expected \"MSWIM\\0\\0\\0\" or \"WLPWM\\0\\0\\0\")")]
    WrongMagic {
        /// Up to the first 8 bytes of the file.
        found: Vec<u8>,
    },

    /// The file is shorter than the 208-byte header (or two of them, pipable).
    #[error("truncated WIM header: the file has {len} bytes, {needed} are needed")]
    TruncatedHeader {
        /// The file's length.
        len: u64,
        /// The bytes the header(s) need.
        needed: u64,
    },

    /// The header's size field is not 208.
    #[error("WIM header declares size {declared}, expected 208")]
    BadHeaderSize {
        /// The value at 0x08.
        declared: u32,
    },

    /// A pipable WIM must end with a copy of its header; it does not.
    #[error("pipable WIM has no header copy at its end (the stream is incomplete)")]
    PipableTrailerMissing,

    /// Part number 0, total 0, or part beyond total.
    #[error("bad split-WIM part numbers: part {part} of {total}")]
    BadPartNumber {
        /// Part number at 0x28.
        part: u16,
        /// Total parts at 0x2A.
        total: u16,
    },

    /// The boot index names an image that does not exist.
    #[error("boot index {boot_index} is beyond the image count {image_count}")]
    BadBootIndex {
        /// The boot index at 0x78.
        boot_index: u32,
        /// The images in the WIM.
        image_count: u32,
    },

    /// The header's compression flags name no codec we know.
    #[error("unknown compression in WIM header flags {flags:#x}")]
    UnknownCompression {
        /// The header flags.
        flags: u32,
    },

    /// A chunk size that is not a power of two, or beyond the cap.
    #[error("unsupported chunk size {size} (must be a power of two from 4096 to {limit})")]
    BadChunkSize {
        /// The declared chunk size.
        size: u64,
        /// The largest accepted.
        limit: u32,
    },

    // ---- split WIMs ----
    /// A part of a split WIM was opened alone.
    #[error("this is part {part} of a {total}-part split WIM: open all parts together (Wim::open_parts)")]
    SplitNeedsAllParts {
        /// This part's number.
        part: u16,
        /// The set's size.
        total: u16,
    },

    /// The parts given do not form one complete set.
    #[error("split WIM parts do not form one set: {reason}")]
    BadPartSet {
        /// What is wrong.
        reason: String,
    },

    // ---- XML ----
    /// The XML resource header is all zero.
    #[error("the WIM has no XML data resource")]
    XmlMissing,

    /// The XML resource is flagged compressed; it is always stored raw.
    #[error("the WIM's XML data resource is flagged compressed (flags {flags:#04x})")]
    XmlCompressed {
        /// The resource flag byte.
        flags: u8,
    },

    /// The XML is larger than the limit.
    #[error("absurd XML size {size} bytes (limit {limit})")]
    XmlTooLarge {
        /// The declared size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },

    /// The XML lies (partly) beyond the end of the file.
    #[error("XML data at offset {offset}, size {size} lies beyond the end of the file ({file_len} bytes)")]
    XmlBeyondFile {
        /// Declared offset.
        offset: u64,
        /// Declared size.
        size: u64,
        /// The file's length.
        file_len: u64,
    },

    /// Stored and original sizes of the (uncompressed) XML differ.
    #[error("XML resource sizes disagree: stored {stored}, original {original}")]
    XmlSizeMismatch {
        /// Size in the WIM.
        stored: u64,
        /// Uncompressed size.
        original: u64,
    },

    /// UTF-16 data must have an even number of bytes.
    #[error("XML data has odd length {size}, not UTF-16")]
    XmlOddLength {
        /// The size in bytes.
        size: u64,
    },

    /// The XML does not start with the UTF-16LE byte-order mark.
    #[error("XML data does not start with the UTF-16LE byte-order mark")]
    XmlMissingBom,

    /// An unpaired surrogate in the XML.
    #[error("XML data is not valid UTF-16 (unpaired surrogate at byte {byte_offset})")]
    XmlInvalidUtf16 {
        /// Offset in the XML resource.
        byte_offset: u64,
    },

    // ---- resources ----
    /// A resource lies (partly) beyond the end of its file.
    #[error(
        "{what} at offset {offset}, size {size} lies beyond the end of the file ({file_len} bytes)"
    )]
    ResourceBeyondFile {
        /// Which resource.
        what: &'static str,
        /// Declared offset.
        offset: u64,
        /// Declared size in the file.
        size: u64,
        /// The file's length.
        file_len: u64,
    },

    /// A resource is larger than the limit for its kind.
    #[error("{what} of {size} bytes exceeds the limit of {limit}")]
    ResourceTooLarge {
        /// Which resource.
        what: &'static str,
        /// Its (uncompressed) size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },

    /// A resource's header, chunk table or chunk is inconsistent.
    #[error("corrupt resource at offset {offset}: {reason}")]
    BadResource {
        /// The resource's offset in its file.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// The codec failed (data corrupt) or libwim is missing.
    #[error(transparent)]
    Codec(#[from] WimlibError),

    // ---- lookup table ----
    /// The lookup (blob) table is inconsistent.
    #[error("corrupt lookup table entry {entry}: {reason}")]
    BadLookupTable {
        /// The 0-based entry.
        entry: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// Fewer metadata resources than the header's image count.
    #[error("the WIM header counts {header} images but only {found} metadata resources exist")]
    MissingMetadata {
        /// Image count at 0x2C.
        header: u32,
        /// Metadata resources found.
        found: u32,
    },

    /// An image index outside 1..=image_count.
    #[error("no image {index} (the WIM has {image_count})")]
    NoSuchImage {
        /// The index asked for.
        index: u32,
        /// The images in the WIM.
        image_count: u32,
    },

    // ---- metadata ----
    /// The metadata resource (security data, dentries) is malformed.
    #[error("corrupt metadata of image {image} at offset {offset}: {reason}")]
    BadMetadata {
        /// The image.
        image: u32,
        /// Offset in the uncompressed metadata.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },

    /// More directory entries than the limit.
    #[error("image {image} has more than {limit} directory entries")]
    TooManyEntries {
        /// The image.
        image: u32,
        /// The limit in force.
        limit: usize,
    },

    /// Directories nested deeper than the limit.
    #[error("image {image} nests directories deeper than {limit}")]
    TooDeep {
        /// The image.
        image: u32,
        /// The limit in force.
        limit: usize,
    },

    /// Two directories claim the same child list: a loop or a shared subtree.
    #[error("image {image}: directory list at offset {offset} is reached twice (loop)")]
    DirectoryLoop {
        /// The image.
        image: u32,
        /// The subdirectory offset.
        offset: u64,
    },

    // ---- streams ----
    /// A stream's hash is in no lookup table of the WIM (or its parts).
    #[error("stream {hash} is not in the WIM's lookup table")]
    MissingBlob {
        /// SHA-1, hex.
        hash: String,
    },

    /// The data read does not have the SHA-1 the lookup table records.
    #[error("SHA-1 mismatch: expected {expected}, read {actual}")]
    HashMismatch {
        /// SHA-1 from the lookup table, hex.
        expected: String,
        /// SHA-1 of the data, hex.
        actual: String,
    },

    /// The entry has no data to stream (a directory).
    #[error("{path} is a directory")]
    IsDirectory {
        /// The entry's path.
        path: String,
    },
}

impl WimError {
    /// Wraps this error for an `io::Read` implementation; [`WimError::from_io`]
    /// gets it back.
    pub fn into_io(self) -> io::Error {
        match self {
            WimError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }

    /// Unwraps an error made by [`WimError::into_io`].
    pub fn from_io(e: io::Error) -> WimError {
        if e.get_ref().is_some_and(|inner| inner.is::<WimError>()) {
            match e.into_inner().map(|b| b.downcast::<WimError>()) {
                Some(Ok(w)) => *w,
                Some(Err(other)) => WimError::Io(io::Error::other(other)),
                None => WimError::Io(io::Error::other("unknown")),
            }
        } else {
            WimError::Io(e)
        }
    }
}
