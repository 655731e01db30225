//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use capmedia_vhdx::{VhdxIds, VhdxParams, VhdxType, VhdxWriter};

/// Run `tool` with `args`; fails (never skips) when it is missing.
pub fn run(tool: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(o) => o,
        Err(e) => {
            panic!("cannot run {tool} ({e}): apt-get install -y {package} to run these tests")
        }
    }
}

pub fn ok(tool: &str, package: &str, args: &[&str]) -> String {
    let o = run(tool, package, args);
    assert!(
        o.status.success(),
        "{tool} {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn qemu_ok(args: &[&str]) -> String {
    ok("qemu-img", "qemu-utils", args)
}

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

/// `qemu-img compare` of a VHDX against a raw image: identical. Not `-s`:
/// strict mode also compares allocation.
pub fn qemu_identical(vhdx: &Path, raw: &Path) {
    let cmp = qemu_ok(&["compare", "-f", "vhdx", "-F", "raw", s(vhdx), s(raw)]);
    assert!(cmp.contains("identical"), "{cmp}");
}

/// Bytes that are never all zero over a sector, different per seed.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8 | 1
        })
        .collect()
}

/// One write of a test sequence.
pub struct Op {
    pub offset: u64,
    pub data: Vec<u8>,
}

const MIB: u64 = 1 << 20;

/// Writes that exercise the cases that matter: zero-only blocks, unaligned
/// writes straddling 1 MiB block boundaries, overwrites (also with zeros),
/// a zero write into an allocated block, the last bytes of the disk.
pub fn sequence(size: u64) -> Vec<Op> {
    vec![
        Op {
            offset: 0,
            data: pattern(1, 100_000),
        },
        Op {
            offset: 8 * MIB,
            data: vec![0; 2 * MIB as usize],
        },
        Op {
            offset: 10 * MIB - 100,
            data: vec![0; 4 * MIB as usize],
        },
        Op {
            offset: 6 * MIB - 1000,
            data: pattern(2, 5000),
        },
        Op {
            offset: 50,
            data: pattern(3, 1000),
        },
        Op {
            offset: 12 * MIB + 7,
            data: pattern(4, (3 * MIB + 11) as usize),
        },
        Op {
            offset: 12 * MIB + 100,
            data: vec![0; 300],
        },
        Op {
            offset: 20 * MIB + 5,
            data: vec![0; 17],
        },
        Op {
            offset: 20 * MIB + 1_000_000,
            data: pattern(5, 3),
        },
        Op {
            offset: MIB - 1,
            data: pattern(6, 2),
        },
        Op {
            offset: size - 700,
            data: pattern(7, 700),
        },
        Op {
            offset: 30 * MIB,
            data: pattern(8, (2 * MIB) as usize),
        },
        Op {
            offset: 30 * MIB,
            data: vec![0; (2 * MIB) as usize],
        },
    ]
}

pub fn apply<W: Write + Seek>(w: &mut W, ops: &[Op]) {
    for op in ops {
        w.seek(SeekFrom::Start(op.offset)).unwrap();
        w.write_all(&op.data).unwrap();
    }
}

/// The disk the sequence leaves, in memory.
pub fn model(size: u64, ops: &[Op]) -> Vec<u8> {
    let mut m = vec![0u8; size as usize];
    for op in ops {
        let at = op.offset as usize;
        m[at..at + op.data.len()].copy_from_slice(&op.data);
    }
    m
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
    let f = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap();
    let mut w = VhdxWriter::create(f, &params(vhdx_type, min_size)).unwrap();
    let size = w.size();
    apply(&mut w, ops);
    w.finish().unwrap().sync_all().unwrap();
    size
}

/// Write `ops` into a raw image of `size` bytes.
pub fn write_raw(path: &Path, size: u64, ops: &[Op]) {
    let mut f = File::create(path).unwrap();
    apply(&mut f, ops);
    f.set_len(size).unwrap();
}

pub fn read_all<R: Read>(mut r: R, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

pub fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    (d, p)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
