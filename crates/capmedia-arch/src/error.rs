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

    // ---- WIM header (the rest: `Wim`) ----
    /// The boot index names an image that does not exist.
    #[error("boot index {boot_index} is beyond the image count {image_count}")]
    BadBootIndex {
        /// The boot index at 0x78.
        boot_index: u32,
        /// The images counted.
        image_count: u32,
    },

    // ---- XML resource (its bytes: `Wim`) ----
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

    /// A WIM header or XML resource fault found by capmedia-wim (wrong
    /// magic, a truncated header, a lying XML size, ...).
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
    /// capmedia-wim reads the header and XML: its faults stay its own
    /// variants ([`ArchError::Wim`]), except the few this crate also finds
    /// by itself (I/O, an empty file, a boot index beyond the images).
    fn from(e: capmedia_wim::WimError) -> Self {
        use capmedia_wim::WimError as W;
        match e {
            W::Io(e) => ArchError::Io(e),
            W::Empty => ArchError::Empty,
            W::BadBootIndex {
                boot_index,
                image_count,
            } => ArchError::BadBootIndex {
                boot_index,
                image_count,
            },
            other => ArchError::Wim(other),
        }
    }
}
