//! The one error type for reading WIM and PE files.
//!
//! Every malformed field has its own variant so callers (and tests) can tell
//! "this is not a WIM" from "this WIM lies about its XML size" without parsing
//! messages, and so a hostile file always ends in an error rather than a panic.

use std::io;

use thiserror::Error;

/// Why a WIM or PE file could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ArchError {
    /// Reading or seeking the underlying file failed.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The file has no bytes at all.
    #[error("the file is empty")]
    Empty,

    /// Neither a WIM (`MSWIM\0\0\0`, `WLPWM\0\0\0`) nor a PE (`MZ`) file.
    #[error("not a WIM or PE file (first bytes {found:02x?})")]
    UnknownFormat {
        /// Up to the first 8 bytes of the file.
        found: Vec<u8>,
    },

    // ---- WIM header ----
    /// The file does not start with `MSWIM\0\0\0` or `WLPWM\0\0\0`.
    #[error("not a WIM file: wrong magic {found:02x?} (expected \"MSWIM\\0\\0\\0\" or \"WLPWM\\0\\0\\0\")")]
    WrongMagic {
        /// Up to the first 8 bytes of the file.
        found: Vec<u8>,
    },

    /// The file is shorter than the 208-byte WIM header (or, for a pipable
    /// WIM, than the two copies of it).
    #[error("truncated WIM header: the file has {len} bytes, {needed} are needed")]
    TruncatedHeader {
        /// The file's length.
        len: u64,
        /// The bytes the header(s) need.
        needed: u64,
    },

    /// The header's own size field is not 208.
    #[error("WIM header declares size {declared}, expected 208")]
    BadHeaderSize {
        /// The value of the header-size field at 0x08.
        declared: u32,
    },

    /// A pipable WIM must end with a copy of its header (wimlib writes the
    /// final one there because a pipe cannot seek back); it does not.
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
        /// The images counted.
        image_count: u32,
    },

    // ---- XML resource ----
    /// The XML resource header is all zero: there is no XML to read.
    #[error("the WIM has no XML data resource")]
    XmlMissing,

    /// The XML resource is flagged compressed; it is always stored raw, so
    /// this is a corrupt or hostile file (and we never decompress).
    #[error("the WIM's XML data resource is flagged compressed (flags {flags:#04x})")]
    XmlCompressed {
        /// The resource flag byte.
        flags: u8,
    },

    /// The XML size is larger than any real WIM needs.
    #[error("absurd XML size {size} bytes (limit {limit})")]
    XmlTooLarge {
        /// The declared size.
        size: u64,
        /// The limit in force.
        limit: u64,
    },

    /// The XML resource lies (partly) beyond the end of the file.
    #[error("XML data at offset {offset}, size {size} lies beyond the end of the file ({file_len} bytes)")]
    XmlBeyondFile {
        /// Declared offset.
        offset: u64,
        /// Declared size.
        size: u64,
        /// The file's length.
        file_len: u64,
    },

    /// Stored and original sizes differ, which an uncompressed resource cannot do.
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

    /// The XML does not start with the UTF-16LE byte-order mark `FF FE`.
    #[error("XML data does not start with the UTF-16LE byte-order mark")]
    XmlMissingBom,

    /// An unpaired surrogate in the UTF-16 text.
    #[error("XML data is not valid UTF-16 (unpaired surrogate at byte {byte_offset})")]
    XmlInvalidUtf16 {
        /// Offset in the XML resource.
        byte_offset: u64,
    },

    /// The text is not well-formed XML.
    #[error("XML data is not well-formed: {0}")]
    XmlSyntax(String),

    /// The root element is not `<WIM>`.
    #[error("XML root element is <{found}>, expected <WIM>")]
    XmlNotWim {
        /// The root element's name.
        found: String,
    },

    /// An `<IMAGE>` has a missing, non-numeric, out-of-range or repeated `INDEX`.
    #[error("bad image INDEX {value:?} (the WIM has {image_count} images)")]
    BadImageIndex {
        /// The attribute's text, if any.
        value: Option<String>,
        /// The images in the XML.
        image_count: u32,
    },

    /// The header and the XML disagree on how many images there are.
    #[error("the WIM header counts {header} images but the XML describes {xml}")]
    ImageCountMismatch {
        /// Image count at 0x2C.
        header: u32,
        /// `<IMAGE>` elements.
        xml: u32,
    },

    /// An image has no `<WINDOWS><ARCH>`: its architecture cannot be known.
    #[error("image {index} has no <WINDOWS><ARCH> element: its architecture is unknown")]
    MissingArch {
        /// The image's index.
        index: u32,
    },

    /// `<ARCH>` holds a value that is not 0, 5, 6, 9 or 12.
    #[error("image {index} has unknown <ARCH> value {value:?} (known: 0 x86, 5 arm, 6 ia64, 9 x64, 12 arm64)")]
    UnknownArch {
        /// The image's index.
        index: u32,
        /// The element's text.
        value: String,
    },

    // ---- PE ----
    /// The file does not start with `MZ`.
    #[error("not a PE file: no \"MZ\" signature")]
    NotPe,

    /// The file is too short for a structure it must hold.
    #[error("truncated PE file: {what} needs {needed} bytes, the file has {len}")]
    PeTruncated {
        /// Which structure.
        what: &'static str,
        /// Bytes needed from the start of the file.
        needed: u64,
        /// The file's length.
        len: u64,
    },

    /// `e_lfanew` (at 0x3C) points outside the file.
    #[error("bad e_lfanew {e_lfanew:#x}: the PE header would lie beyond the file ({len} bytes)")]
    BadLfanew {
        /// The value at 0x3C.
        e_lfanew: u32,
        /// The file's length.
        len: u64,
    },

    /// No `PE\0\0` at `e_lfanew`.
    #[error("no \"PE\\0\\0\" signature at e_lfanew {e_lfanew:#x}")]
    NoPeSignature {
        /// The value at 0x3C.
        e_lfanew: u32,
    },

    /// The COFF header has no optional header, so this is no executable image.
    #[error("PE optional header is too small ({size} bytes): not an executable image")]
    NoOptionalHeader {
        /// SizeOfOptionalHeader.
        size: u16,
    },

    /// Optional-header magic other than 0x10B (PE32) or 0x20B (PE32+).
    #[error("unknown PE optional-header magic {magic:#06x}")]
    BadOptionalMagic {
        /// The magic value.
        magic: u16,
    },

    /// Any other WIM format error from capmedia-wim.
    #[error(transparent)]
    Wim(capmedia_wim::WimError),

    /// A machine type that is none of x86, x64, arm64, arm, ia64.
    #[error("unknown PE machine type {machine:#06x}")]
    UnknownMachine {
        /// The COFF machine field.
        machine: u16,
    },
}

impl From<capmedia_wim::WimError> for ArchError {
    /// capmedia-wim reads the header and XML; its errors keep the variants
    /// this crate has always returned for the same faults.
    fn from(e: capmedia_wim::WimError) -> Self {
        use capmedia_wim::WimError as W;
        match e {
            W::Io(e) => ArchError::Io(e),
            W::Empty => ArchError::Empty,
            W::WrongMagic { found } => ArchError::WrongMagic { found },
            W::TruncatedHeader { len, needed } => ArchError::TruncatedHeader { len, needed },
            W::BadHeaderSize { declared } => ArchError::BadHeaderSize { declared },
            W::PipableTrailerMissing => ArchError::PipableTrailerMissing,
            W::BadPartNumber { part, total } => ArchError::BadPartNumber { part, total },
            W::BadBootIndex {
                boot_index,
                image_count,
            } => ArchError::BadBootIndex {
                boot_index,
                image_count,
            },
            W::XmlMissing => ArchError::XmlMissing,
            W::XmlCompressed { flags } => ArchError::XmlCompressed { flags },
            W::XmlTooLarge { size, limit } => ArchError::XmlTooLarge { size, limit },
            W::XmlBeyondFile {
                offset,
                size,
                file_len,
            } => ArchError::XmlBeyondFile {
                offset,
                size,
                file_len,
            },
            W::XmlSizeMismatch { stored, original } => {
                ArchError::XmlSizeMismatch { stored, original }
            }
            W::XmlOddLength { size } => ArchError::XmlOddLength { size },
            W::XmlMissingBom => ArchError::XmlMissingBom,
            W::XmlInvalidUtf16 { byte_offset } => ArchError::XmlInvalidUtf16 { byte_offset },
            other => ArchError::Wim(other),
        }
    }
}
