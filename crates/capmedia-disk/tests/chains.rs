//! Hostile FAT volumes: cluster chains that loop or do not match a file's
//! size. Images are made by mkfs.fat and mtools (nobody here wrote them),
//! then damaged by hand. The read-back runs in a thread with a generous
//! deadline so that a regression (an endless chain walk) fails the test
//! instead of hanging it.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use capmedia_content::MediaPath;
use capmedia_disk::{DiskError, DiskReader};
use capmedia_manifest::MediaReader;

fn run(tool: &str, package: &str, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}): apt-get install -y {package}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The figures of a FAT32 boot sector the tests need.
struct Bpb {
    cluster: u64,
    fat: u64,
    data: u64,
    root: u32,
}

fn bpb(img: &[u8]) -> Bpb {
    let u16_at = |i: usize| u64::from(u16::from_le_bytes([img[i], img[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes([img[i], img[i + 1], img[i + 2], img[i + 3]]);
    let bps = u16_at(11);
    let reserved = u16_at(14);
    let fats = u64::from(img[16]);
    let fat_sectors = u64::from(u32_at(36));
    Bpb {
        cluster: bps * u64::from(img[13]),
        fat: reserved * bps,
        data: (reserved + fats * fat_sectors) * bps,
        root: u32_at(44),
    }
}

fn get_fat(img: &[u8], b: &Bpb, c: u32) -> u32 {
    let at = (b.fat + u64::from(c) * 4) as usize;
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap()) & 0x0FFF_FFFF
}

/// Set FAT entry `c` in every FAT copy.
fn set_fat(img: &mut [u8], b: &Bpb, c: u32, v: u32) {
    let fat_bytes = (b.data - b.fat) / u64::from(img[16]);
    for copy in 0..u64::from(img[16]) {
        let at = (b.fat + copy * fat_bytes + u64::from(c) * 4) as usize;
        img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

fn chain(img: &[u8], b: &Bpb, first: u32) -> Vec<u32> {
    let mut out = vec![first];
    loop {
        let n = get_fat(img, b, *out.last().unwrap());
        if n >= 0x0FFF_FFF8 {
            return out;
        }
        assert!(out.len() < 100_000, "test image chain loops already");
        out.push(n);
    }
}

/// First cluster of the entry with 8.3 name `short` (11 bytes, padded) in
/// the folder starting at `dir`.
fn find(img: &[u8], b: &Bpb, dir: u32, short: &[u8; 11]) -> u32 {
    for c in chain(img, b, dir) {
        let at = (b.data + u64::from(c - 2) * b.cluster) as usize;
        for e in img[at..at + b.cluster as usize].chunks_exact(32) {
            if &e[..11] == short {
                let hi = u32::from(u16::from_le_bytes([e[20], e[21]]));
                let lo = u32::from(u16::from_le_bytes([e[26], e[27]]));
                return hi << 16 | lo;
            }
        }
    }
    panic!("no {:?} in the test image", String::from_utf8_lossy(short));
}

/// A 40 MiB FAT32 superfloppy with 512-byte clusters: a root folder of
/// several clusters, a 5-cluster file, and a folder of several clusters.
fn image(dir: &Path) -> Vec<u8> {
    let img = dir.join("fat.img");
    File::create(&img).unwrap().set_len(40 << 20).unwrap();
    let p = img.to_str().unwrap();
    run(
        "mkfs.fat",
        "dosfstools",
        &["-F", "32", "-s", "1", "-n", "CHAINS", p],
    );
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("BIG.BIN"), vec![7u8; 2500]).unwrap();
    run(
        "mcopy",
        "mtools",
        &["-i", p, src.join("BIG.BIN").to_str().unwrap(), "::/BIG.BIN"],
    );
    run("mmd", "mtools", &["-i", p, "::/SUB"]);
    for i in 0..40 {
        let f = src.join(format!("a rather long file name number {i}.txt"));
        fs::write(&f, format!("file {i}")).unwrap();
        let f = f.to_str().unwrap();
        run("mcopy", "mtools", &["-i", p, f, "::/"]);
        run("mcopy", "mtools", &["-i", p, f, "::/SUB/"]);
    }
    fs::read(&img).unwrap()
}

/// Open `img` and look up a missing file, in a thread: the result, or a
/// test failure if it does not end within 60 s.
fn open_and_look_up(img: Vec<u8>) -> Result<(), DiskError> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let r = (|| {
            let mut reader = DiskReader::open(std::io::Cursor::new(img))?;
            let missing = MediaPath::new("sources/missing.wim").unwrap();
            assert!(reader.open(&missing).unwrap().is_none());
            let missing = MediaPath::new("SUB/missing.txt").unwrap();
            assert!(reader.open(&missing).unwrap().is_none());
            let mut data = Vec::new();
            reader
                .open(&MediaPath::new("BIG.BIN").unwrap())
                .unwrap()
                .unwrap()
                .read_to_end(&mut data)
                .unwrap();
            assert_eq!(data, vec![7u8; 2500]);
            Ok(())
        })();
        let _ = tx.send(r);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(r) => r,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("the read-back did not end within 60 s: a cluster chain walk has no bound")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the read-back thread panicked"),
    }
}

fn corrupt(e: Result<(), DiskError>, needle: &str) {
    match e {
        Err(DiskError::Corrupt(msg)) => assert!(msg.contains(needle), "{msg}"),
        other => panic!("expected DiskError::Corrupt naming {needle:?}, got {other:?}"),
    }
}

#[test]
fn intact_image_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(dir.path());
    let b = bpb(&img);
    assert!(
        chain(&img, &b, b.root).len() > 2,
        "root should span clusters"
    );
    open_and_look_up(img).unwrap();
}

#[test]
fn looping_root_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image(dir.path());
    let b = bpb(&img);
    let root = chain(&img, &b, b.root);
    // Full clusters only, so that no end-of-folder entry stops a walker
    // that lacks bounds: the second root cluster leads back to the first.
    set_fat(&mut img, &b, root[1], root[0]);
    corrupt(open_and_look_up(img), "root folder");
}

#[test]
fn looping_file_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image(dir.path());
    let b = bpb(&img);
    let first = find(&img, &b, b.root, b"BIG     BIN");
    let c = chain(&img, &b, first);
    assert_eq!(c.len(), 5);
    set_fat(&mut img, &b, c[2], c[0]);
    corrupt(open_and_look_up(img), "BIG     BIN");
}

#[test]
fn short_file_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image(dir.path());
    let b = bpb(&img);
    let first = find(&img, &b, b.root, b"BIG     BIN");
    let c = chain(&img, &b, first);
    set_fat(&mut img, &b, c[2], 0x0FFF_FFFF);
    corrupt(open_and_look_up(img), "need 5 clusters but the chain has 3");
}

#[test]
fn looping_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image(dir.path());
    let b = bpb(&img);
    let sub = find(&img, &b, b.root, b"SUB        ");
    let c = chain(&img, &b, sub);
    assert!(c.len() > 2);
    let last = *c.last().unwrap();
    set_fat(&mut img, &b, last, c[0]);
    corrupt(open_and_look_up(img), "SUB/");
}

#[test]
fn folder_pointing_at_the_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image(dir.path());
    let b = bpb(&img);
    // Make SUB's entry point at the root's first cluster: a folder that
    // contains itself.
    let root = chain(&img, &b, b.root);
    let at = (b.data + u64::from(root[0] - 2) * b.cluster) as usize;
    let e = img[at..at + b.cluster as usize]
        .chunks_exact(32)
        .position(|e| &e[..11] == b"SUB        ")
        .unwrap();
    let e = at + e * 32;
    img[e + 20..e + 22].copy_from_slice(&((b.root >> 16) as u16).to_le_bytes());
    img[e + 26..e + 28].copy_from_slice(&(b.root as u16).to_le_bytes());
    corrupt(open_and_look_up(img), "reached twice");
}

#[test]
fn chain_leaving_the_volume_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut img = image(dir.path());
    let b = bpb(&img);
    let first = find(&img, &b, b.root, b"BIG     BIN");
    set_fat(&mut img, &b, first, 0x0FFF_FF00);
    corrupt(open_and_look_up(img), "outside the data area");
}
