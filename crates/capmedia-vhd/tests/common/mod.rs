//! Helpers shared by the integration tests: the block-layer sequence and
//! tools come from `capmedia_vdisk::testing` (shared with the VHDX tests).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

pub use capmedia_vdisk::testing::*;
use capmedia_vhd::{unique_id_from_seed, VhdParams, VhdType, VhdWriter};

/// The shared test sequence, for VHD's 2 MiB blocks.
pub fn sequence(size: u64) -> Vec<Op> {
    capmedia_vdisk::testing::sequence(size, capmedia_vhd::BLOCK_SIZE.into())
}

pub fn params(vhd_type: VhdType, min_size: u64) -> VhdParams {
    VhdParams {
        vhd_type,
        min_size,
        source_date_epoch: 1_700_000_000,
        unique_id: unique_id_from_seed(b"test set id"),
    }
}

/// Write `ops` through a [`VhdWriter`] into `path`; returns the disk size.
pub fn write_vhd(path: &Path, vhd_type: VhdType, min_size: u64, ops: &[Op]) -> u64 {
    let mut w = VhdWriter::create(create(path), &params(vhd_type, min_size)).unwrap();
    let size = w.size();
    apply(&mut w, ops);
    w.finish().unwrap().sync_all().unwrap();
    size
}
