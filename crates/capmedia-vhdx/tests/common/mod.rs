//! Helpers shared by the integration tests: the block-layer sequence and
//! tools come from `capmedia_vdisk::testing` (shared with the VHD tests).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

pub use capmedia_vdisk::testing::*;
use capmedia_vhdx::{VhdxIds, VhdxParams, VhdxType, VhdxWriter};

pub fn vhdiinfo(path: &Path) -> String {
    ok("vhdiinfo", "libvhdi-utils", &[s(path)])
}

/// `qemu-img info` and `qemu-img check` of a VHDX: the size, no errors.
pub fn qemu_info_check(path: &Path, size: u64) {
    let info: serde_json::Value =
        serde_json::from_str(&qemu_ok(&["info", "-f", "vhdx", "--output=json", s(path)])).unwrap();
    assert_eq!(info["format"].as_str(), Some("vhdx"), "{info}");
    assert_eq!(info["virtual-size"].as_u64(), Some(size), "{info}");
    let out = qemu_ok(&["check", "-f", "vhdx", s(path)]);
    assert!(out.contains("No errors were found"), "{out}");
}

/// `qemu-img compare` of a VHDX against a raw image: identical.
pub fn qemu_identical(vhdx: &Path, raw: &Path) {
    capmedia_vdisk::testing::qemu_identical("vhdx", vhdx, raw);
}

/// The shared test sequence, for VHDX's 1 MiB blocks.
pub fn sequence(size: u64) -> Vec<Op> {
    capmedia_vdisk::testing::sequence(size, capmedia_vhdx::BLOCK_SIZE.into())
}

pub fn params(vhdx_type: VhdxType, min_size: u64) -> VhdxParams {
    VhdxParams {
        vhdx_type,
        min_size,
        ids: VhdxIds::from_seed("test set id"),
    }
}

/// Write `ops` through a [`VhdxWriter`] into `path`; returns the disk size.
pub fn write_vhdx(path: &Path, vhdx_type: VhdxType, min_size: u64, ops: &[Op]) -> u64 {
    let mut w = VhdxWriter::create(create(path), &params(vhdx_type, min_size)).unwrap();
    let size = w.size();
    apply(&mut w, ops);
    w.finish().unwrap().sync_all().unwrap();
    size
}
