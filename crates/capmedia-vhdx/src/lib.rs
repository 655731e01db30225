//! The VHDX format (Microsoft [MS-VHDX], version 1), fixed and dynamic, and
//! the `vhdx` sink: the disk Hyper-V generation 2 machines boot by UEFI.
//!
//! Written by hand because no maintained crate writes VHDX (the crates on
//! crates.io only read it), and the subset a new, non-differencing disk needs
//! is small. [`VhdxWriter`] is a `Read + Write + Seek` over the *virtual* disk,
//! so capmedia-disk writes its partition table and FAT32 into it as into a
//! raw image, and the VHDX structures stay here. [`VhdxReader`] reads a VHDX
//! back through the same disk code, validating every structure first, so
//! `verify` checks the medium as written. Output is reproducible: the ids
//! come from a caller's seed ([`VhdxIds::from_seed`]), the file has no
//! timestamps, and dynamic blocks are laid out in the order of their first
//! non-zero write.

mod error;
mod format;
mod reader;
#[cfg(feature = "sink")]
mod sink;
mod writer;

pub use error::VhdxError;
pub use format::{
    virtual_size_for, Header, Region, VhdxType, BLOCK_SIZE, CREATOR, LOGICAL_SECTOR, MAX_SIZE,
    PHYSICAL_SECTOR,
};
pub use reader::{detect, VhdxInfo, VhdxReader};
#[cfg(feature = "sink")]
pub use sink::{verify_vhdx, VhdxSink, OPT_PARTITION_SCHEME, OPT_VHDX_TYPE, SINK_NAME};
pub use writer::{VhdxIds, VhdxParams, VhdxWriter};
