//! The VHD format (Microsoft Virtual Hard Disk 1.0), fixed and dynamic.
//!
//! No maintained crate writes VHD, and the format is small. [`VhdWriter`] is a
//! `Read + Write + Seek` over the *virtual* disk, so a disk-layout library
//! (partition table, FAT32) writes into it as into a raw image, and the VHD
//! structures stay in this crate. [`VhdReader`] reads a VHD back through the
//! same code, validating every field first, so `verify` checks the medium as
//! written. Output is reproducible: the timestamp comes from
//! `SOURCE_DATE_EPOCH`, the unique id from a caller's seed, and dynamic blocks
//! are laid out in the order of their first non-zero write.

mod error;
mod format;
mod reader;
#[cfg(feature = "sink")]
mod sink;
mod writer;

pub use error::VhdError;
pub use format::{
    unique_id_from_seed, virtual_size_for, Footer, Geometry, VhdType, BLOCK_SIZE, CREATOR_APP,
    MAX_SIZE,
};
pub use reader::{detect, VhdInfo, VhdReader};
#[cfg(feature = "sink")]
pub use sink::{
    disk_error, read_back_and_commit, verify_container, verify_vhd, verify_virtual_disk,
    NewContainer, VhdSink, OPT_PARTITION_SCHEME, OPT_VHD_TYPE, SINK_NAME,
};
pub use writer::{VhdParams, VhdWriter};
