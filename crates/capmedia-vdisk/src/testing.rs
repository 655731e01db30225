//! Helpers for the VHD and VHDX integration tests (feature `testing`): one
//! write sequence that exercises the block layer, its in-memory model, a raw
//! image of it for `qemu-img compare`, and outside tools that fail, never
//! skip, when missing.
#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run `tool` with `args`; fails (never skips) when it is missing, naming
/// the Debian package.
pub fn run(tool: &str, package: &str, args: &[&str]) -> Output {
    match Command::new(tool).args(args).output() {
        Ok(o) => o,
        Err(e) => {
            panic!("cannot run {tool} ({e}): apt-get install -y {package} to run these tests")
        }
    }
}

/// [`run`], which must succeed; its standard output.
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

pub fn qemu_img(args: &[&str]) -> Output {
    run("qemu-img", "qemu-utils", args)
}

pub fn qemu_ok(args: &[&str]) -> String {
    ok("qemu-img", "qemu-utils", args)
}

/// `qemu-img compare` of an image in `format` against a raw image:
/// identical. Not `-s`: strict mode also compares allocation.
pub fn qemu_identical(format: &str, image: &Path, raw: &Path) {
    let cmp = qemu_ok(&["compare", "-f", format, "-F", "raw", s(image), s(raw)]);
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
#[derive(Debug, Clone)]
pub struct Op {
    pub offset: u64,
    pub data: Vec<u8>,
}

const MIB: u64 = 1 << 20;

/// Writes that exercise the cases that matter for a disk of `size` bytes in
/// blocks of `block` (1 or 2 MiB): zero-only blocks, unaligned writes
/// straddling block boundaries, overwrites (also with zeros), a zero write
/// into a placed block, the last bytes of the disk.
pub fn sequence(size: u64, block: u64) -> Vec<Op> {
    let op = |offset: u64, data: Vec<u8>| Op { offset, data };
    let zeros = |n: u64| vec![0u8; n as usize];
    vec![
        op(0, pattern(1, 100_000)),
        op(8 * MIB, zeros(2 * MIB)),
        op(10 * MIB - 100, zeros(4 * MIB)),
        op(6 * MIB - 1000, pattern(2, 5000)),
        op(50, pattern(3, 1000)),
        op(12 * MIB + 7, pattern(4, (3 * MIB + 11) as usize)),
        op(12 * MIB + 100, zeros(300)),
        op(20 * MIB + 5, zeros(17)),
        op(20 * MIB + 1_000_000, pattern(5, 3)),
        op(block - 1, pattern(6, 2)),
        op(size - 700, pattern(7, 700)),
        op(30 * MIB, pattern(8, (2 * MIB) as usize)),
        op(30 * MIB, zeros(2 * MIB)),
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

/// A new, empty host file at `path`, opened for reading and writing (the
/// writers read back what a disk-layout library reads).
pub fn create(path: &Path) -> File {
    File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap()
}

/// Write `ops` into a raw image of `size` bytes.
pub fn write_raw(path: &Path, size: u64, ops: &[Op]) {
    let mut f = File::create(path).unwrap();
    apply(&mut f, ops);
    f.set_len(size).unwrap();
}

/// Everything `r` gives, read `chunk` bytes at a time.
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

/// A temporary folder (removed when the guard drops) and its path.
pub fn tmp() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_path_buf();
    (d, p)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The sink tests' plan: the entries of a capture medium (`bootmgr`, an EFI
/// loader, an empty `boot/bcd`, a `wim_bytes` WIM written into `dir`, a
/// generated label file) for sink `sink` writing `out`, with `options`.
pub fn capture_plan(
    dir: &Path,
    out: &Path,
    sink: &str,
    options: &[(&str, &str)],
    capacity: capmedia_content::Capacity,
    wim_bytes: usize,
) -> capmedia_content::MediaPlan {
    use capmedia_content::{EntryRole, PlanBuilder};
    let wim = dir.join("boot.wim");
    std::fs::write(&wim, pattern(11, wim_bytes)).unwrap();
    let mut b = PlanBuilder::new("Configuration Manager", sink, out)
        .source_date_epoch(1_700_000_000)
        .capacity(capacity);
    for (k, v) in options {
        b = b.option(k, v);
    }
    b.add_bytes("bootmgr", pattern(12, 4097), EntryRole::Boot, "boot")
        .unwrap();
    b.add_bytes(
        "efi/boot/bootx64.efi",
        pattern(13, 12_345),
        EntryRole::Boot,
        "boot",
    )
    .unwrap();
    b.add_bytes("boot/bcd", vec![], EntryRole::Boot, "boot")
        .unwrap();
    b.add_file("sources/boot.wim", &wim, EntryRole::BootImage, "boot")
        .unwrap();
    b.add_bytes(
        "MediaLabel.txt",
        b"label=Configuration Manager\n".to_vec(),
        EntryRole::Generated,
        "generated",
    )
    .unwrap();
    b.build().unwrap()
}

/// Temporary files a sink left in `dir` (`*.tmp`).
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        .collect()
}
