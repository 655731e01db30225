//! Reads a WIM's directory trees and streams any file's bytes: this crate's
//! one job.
//!
//! It reads what DISM and wimlib write: uncompressed, XPRESS, LZX and LZMS
//! resources, solid resources (`/Compress:recovery`, wimlib `--solid`,
//! ESD), pipable WIMs (`WLPWM` magic, header at the end) and split WIMs
//! (`.swm`, all parts given to [`Wim::open_parts`]). It reads from any
//! `Read + Seek`, so a boot image on an HTTP distribution point can be
//! looked into through a range reader before (or instead of) fetching it.
//!
//! - [`Wim::open`], [`Wim::open_parts`]: header, lookup table, metadata list.
//! - [`Wim::image`]: an image's tree ([`Image`], [`Entry`]);
//!   [`Image::find`] looks paths up case-insensitively.
//! - [`Wim::open_file`] (a [`StreamReader`], `io::Read`) and
//!   [`Wim::extract_to`]: a file's bytes, decoded chunk by chunk (memory
//!   bounded by the chunk size, capped at [`DEFAULT_MAX_CHUNK_SIZE`]) and
//!   checked against the SHA-1 the lookup table records
//!   ([`WimError::HashMismatch`]).
//! - [`read_header`], [`read_xml`]: the header and XML alone (what
//!   capmedia-arch uses), nothing decompressed.
//!
//! Hostile input ends in a typed [`WimError`]: every size is checked against
//! the file length and a [`Limits`] cap before anything is allocated; the
//! directory tree is read without recursion, each directory list once (a
//! loop is [`WimError::DirectoryLoop`]), with caps on entries and depth.
//!
//! ## Codecs: wimlib's, loaded at run time
//!
//! Decompression is wimlib's public decompressor API
//! (`wimlib_create_decompressor`, `wimlib_decompress`,
//! `wimlib_free_decompressor`), called through the tiny crate
//! `capmedia-wimlib`, which loads `libwim.so.15` with `libloading` when the
//! first compressed chunk is met. No well-kept pure-Rust crate decodes the
//! WIM variants of XPRESS, LZX and LZMS, and codecs are not written by hand
//! here. Everything else (header, resource and chunk tables including
//! 64-bit entries and solid resources, lookup table, metadata, pipable
//! layout, split parts) is safe Rust in this crate.
//!
//! **What capmedia needs at run time**: nothing for uncompressed WIMs; for
//! compressed ones wimlib's library `libwim.so.15` (Debian package
//! `libwim15`, installed with `wimtools`). Without it, reading a compressed
//! chunk fails with [`WimError::Codec`] naming the package.

mod error;
pub mod header;
mod image;
mod resource;
mod stream;
mod wim;

/// A SHA-1 digest, as the lookup table and dentries record streams.
pub type Sha1Hash = [u8; 20];

pub use capmedia_wimlib::{Codec, WimlibError};
pub use error::WimError;
pub use header::{read_header, read_xml, ResourceHeader, WimHeader};
pub use image::{
    Entry, Image, NamedStream, TreeLimits, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT,
};
pub use stream::StreamReader;
pub use wim::{sha1, Limits, Wim, DEFAULT_MAX_CHUNK_SIZE, DEFAULT_MAX_XML_SIZE};
