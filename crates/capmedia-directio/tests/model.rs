#![allow(clippy::unwrap_used)]

//! `DirectFile` against a plain byte vector: any sequence of writes, reads,
//! flushes and seeks gives the same bytes, direct or not.

use std::io::{Read, Seek, SeekFrom, Write};

use capmedia_directio::DirectFile;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Write { at: u64, len: usize, seed: u8 },
    Read { at: u64, len: usize },
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    // Offsets around block and run boundaries, lengths from 1 byte to
    // more than one run.
    let at = prop_oneof![
        0u64..20_000,
        (0u64..6).prop_map(|k| k * 4096),
        (0u64..3).prop_map(|k| (4 << 20) * k + 4090),
        0u64..(9 << 20),
    ];
    let len = prop_oneof![1usize..5000, 4096usize..4097, 1usize..(5 << 20)];
    prop_oneof![
        4 => (at.clone(), len.clone(), any::<u8>()).prop_map(|(at, len, seed)| Op::Write { at, len, seed }),
        2 => (at, len).prop_map(|(at, len)| Op::Read { at, len }),
        1 => Just(Op::Flush),
    ]
}

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn run(ops: &[Op], direct: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("medium");
    let mut f = if direct {
        DirectFile::create_new(&path).unwrap()
    } else {
        DirectFile::from_file(std::fs::File::create_new(&path).unwrap(), false).unwrap()
    };
    let mut model: Vec<u8> = Vec::new();
    for op in ops {
        match *op {
            Op::Write { at, len, seed } => {
                let data = bytes(len, seed);
                f.write_at(&data, at).unwrap();
                let end = at as usize + len;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[at as usize..end].copy_from_slice(&data);
            }
            Op::Read { at, len } => {
                let mut buf = vec![0xAAu8; len];
                let n = f.read_at(&mut buf, at).unwrap();
                let want = model
                    .get(at as usize..)
                    .map_or(&[][..], |m| &m[..m.len().min(len)]);
                assert_eq!(n, want.len(), "read length at {at}");
                assert!(buf[..n] == *want, "read bytes at {at}");
            }
            Op::Flush => f.flush_all().unwrap(),
        }
    }
    assert_eq!(f.len(), model.len() as u64);
    drop(f.into_file().unwrap());
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk.len(), model.len());
    assert!(on_disk == model, "file bytes differ from the model");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn direct_matches_the_model(ops in prop::collection::vec(op(), 1..24)) {
        run(&ops, true);
    }
    #[test]
    fn buffered_matches_the_model(ops in prop::collection::vec(op(), 1..12)) {
        run(&ops, false);
    }
}

#[test]
fn a_stream_of_unaligned_writes_reads_back_through_std_io() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream");
    let mut f = DirectFile::create_new(&path).unwrap();
    let mut model = Vec::new();
    for i in 0..3000usize {
        let chunk = bytes(1 + (i * 7919) % 9000, i as u8);
        f.write_all(&chunk).unwrap();
        model.extend_from_slice(&chunk);
    }
    f.flush().unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut back = Vec::new();
    f.read_to_end(&mut back).unwrap();
    assert!(back == model);
    f.sync_all().unwrap();
    assert!(std::fs::read(&path).unwrap() == model);
}

#[test]
fn ext4_or_tmpfs_alike_direct_is_reported() {
    // Whatever the file system of the temp dir, the handle says what it
    // did, and a direct handle really carries O_DIRECT.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flag");
    let f = DirectFile::create_new(&path).unwrap();
    let flags = std::fs::read_to_string(format!(
        "/proc/self/fdinfo/{}",
        std::os::fd::AsRawFd::as_raw_fd(f.file())
    ))
    .unwrap();
    let line = flags.lines().find(|l| l.starts_with("flags:")).unwrap();
    let bits = u32::from_str_radix(line.trim_start_matches("flags:").trim(), 8).unwrap();
    assert_eq!(bits & libc_o_direct() != 0, f.is_direct());
}

/// O_DIRECT on x86-64 and aarch64 Linux.
fn libc_o_direct() -> u32 {
    if cfg!(target_arch = "aarch64") {
        0o200000
    } else {
        0o40000
    }
}

/// The read-back of a medium written with `read_behind` sees the medium's
/// bytes, also where a range was written again after its first bytes were
/// read into the page cache (a FAT, a directory): the direct write drops
/// the cached pages of its range. The whole file is read through the cache
/// between the writes, so this does not depend on how far the kernel got
/// with the read-behind.
#[test]
fn read_behind_then_rewrite_reads_the_new_bytes() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("medium");
    let mut f = DirectFile::create_new(&path).unwrap();
    assert_eq!(f.read_behind(9 << 20).unwrap(), f.is_direct());
    let mut model = bytes(9 << 20, 1);
    f.write_at(&model, 0).unwrap();
    f.flush_all().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), model, "first write");
    let again = bytes((5 << 20) + 7, 2);
    f.write_at(&again, 4090).unwrap();
    model[4090..4090 + again.len()].copy_from_slice(&again);
    f.sync_all().unwrap();
    drop(f);
    assert!(
        read_back(&path) == model,
        "the read-back saw stale cached bytes"
    );
}

/// The whole medium at `path` as the sinks' read-back reads it.
fn read_back(path: &std::path::Path) -> Vec<u8> {
    let mut back = DirectFile::open_read_behind(path).unwrap();
    let mut got = Vec::new();
    back.read_to_end(&mut got).unwrap();
    got
}

/// A medium of more than half the memory available gets no read-behind
/// (its first pages would leave the cache before the read-back came to
/// them); the read-back then reads the medium itself, the same bytes.
#[test]
fn no_read_behind_beyond_memory_and_the_read_back_reads_the_medium() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("medium");
    let mut f = DirectFile::create_new(&path).unwrap();
    assert!(!f.read_behind(u64::MAX).unwrap());
    let model = bytes((5 << 20) + 3, 9);
    f.write_at(&model, 0).unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert!(read_back(&path) == model, "the read-back differs");
}
