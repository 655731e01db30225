//! Hostile input: every malformed WIM ends in a typed error, never a panic,
//! an endless loop or an unbounded allocation.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Cursor;

use capmedia_wim::{sha1, Limits, TreeLimits, Wim, WimError};
use common::*;

/// Opens and reads everything: every image, every file, every stream.
fn walk_all(bytes: &[u8], limits: Limits) -> Result<u64, WimError> {
    let mut w = Wim::open_parts_with_limits(vec![Cursor::new(bytes)], limits)?;
    w.xml_text()?;
    let mut total = 0;
    for i in 1..=w.image_count() {
        let img = w.image(i)?;
        for e in img.entries() {
            if e.is_file() {
                total += w.extract_to(e, &mut std::io::sink())?;
            }
        }
    }
    Ok(total)
}

/// A real WIM of a small tree (a few chunks per file), so the many walks
/// below stay quick.
fn real_wim(opts: &[&str]) -> Vec<u8> {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t");
    for (p, data) in [
        ("Windows/Boot/PCAT/bootmgr", noise(1, 70_000)),
        ("Windows/Boot/EFI/bootmgfw.efi", text(2, 150_000)),
        ("Windows/System32/a.txt", text(3, 5_000)),
        ("Windows/System32/empty", Vec::new()),
    ] {
        std::fs::create_dir_all(t.join(p).parent().unwrap()).unwrap();
        std::fs::write(t.join(p), data).unwrap();
    }
    let wim = dir.path().join("x.wim");
    let mut args = vec!["capture", t.to_str().unwrap(), wim.to_str().unwrap(), "x"];
    args.extend_from_slice(opts);
    wimlib(&args);
    std::fs::read(wim).unwrap()
}

// ---- synthetic WIMs ----

/// A dentry: (name, attributes, subdir offset, main hash).
fn dentry(name: &str, attrs: u32, subdir: u64, hash: [u8; 20]) -> Vec<u8> {
    let name16: Vec<u8> = name.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let mut d = vec![0u8; 102];
    d[8..12].copy_from_slice(&attrs.to_le_bytes());
    d[16..24].copy_from_slice(&subdir.to_le_bytes());
    d[64..84].copy_from_slice(&hash);
    d[100..102].copy_from_slice(&(name16.len() as u16).to_le_bytes());
    d.extend_from_slice(&name16);
    if !name16.is_empty() {
        d.extend_from_slice(&[0, 0]);
    }
    while !d.len().is_multiple_of(8) {
        d.push(0);
    }
    let len = d.len() as u64;
    d[0..8].copy_from_slice(&len.to_le_bytes());
    d
}

const DIR: u32 = 0x10;

/// An uncompressed WIM with one image whose metadata is `meta`, plus the
/// given blobs (stored raw).
fn synth(meta: &[u8], blobs: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![0u8; 208];
    let mut table = Vec::new();
    let mut add = |v: &mut Vec<u8>, data: &[u8], flags: u8| {
        let off = v.len() as u64;
        v.extend_from_slice(data);
        let mut e = vec![0u8; 50];
        e[0..7].copy_from_slice(&(data.len() as u64).to_le_bytes()[..7]);
        e[7] = flags;
        e[8..16].copy_from_slice(&off.to_le_bytes());
        e[16..24].copy_from_slice(&(data.len() as u64).to_le_bytes());
        e[24..26].copy_from_slice(&1u16.to_le_bytes());
        e[26..30].copy_from_slice(&1u32.to_le_bytes());
        e[30..50].copy_from_slice(&sha1(data));
        table.extend(e);
    };
    add(&mut v, meta, 0x02);
    for b in blobs {
        add(&mut v, b, 0);
    }
    let lt_off = v.len() as u64;
    v.extend_from_slice(&table);
    let xml_off = v.len() as u64;
    let xml: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<WIM><IMAGE INDEX=\"1\"></IMAGE></WIM>"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        )
        .collect();
    v.extend_from_slice(&xml);
    let h = &mut v[..208];
    h[0..8].copy_from_slice(b"MSWIM\0\0\0");
    h[0x08..0x0C].copy_from_slice(&208u32.to_le_bytes());
    h[0x0C..0x10].copy_from_slice(&0x10D00u32.to_le_bytes());
    h[0x28..0x2A].copy_from_slice(&1u16.to_le_bytes());
    h[0x2A..0x2C].copy_from_slice(&1u16.to_le_bytes());
    h[0x2C..0x30].copy_from_slice(&1u32.to_le_bytes());
    let reshdr = |h: &mut [u8], at: usize, off: u64, size: u64| {
        h[at..at + 7].copy_from_slice(&size.to_le_bytes()[..7]);
        h[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
        h[at + 16..at + 24].copy_from_slice(&size.to_le_bytes());
    };
    reshdr(h, 0x30, lt_off, table.len() as u64);
    reshdr(h, 0x48, xml_off, xml.len() as u64);
    v
}

/// Security data (empty) + root dentry at 8 listing at `root_list`.
fn meta_with(root_list: u64, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![8, 0, 0, 0, 0, 0, 0, 0];
    m.extend(dentry("", DIR, root_list, [0; 20]));
    m.extend_from_slice(rest);
    m
}

#[test]
fn synthetic_wim_reads() {
    // root(8, 104 bytes) -> list at 112: file "a" with data, end.
    let data = b"hello wim";
    let mut list = dentry("a", 0, 0, sha1(data));
    list.extend([0u8; 8]);
    let meta = meta_with(112, &list);
    let wim = synth(&meta, &[data]);
    assert_eq!(walk_all(&wim, Limits::default()).unwrap(), 9);
}

#[test]
fn directory_loop_is_an_error() {
    // root -> list at 112: dir "d" whose children are the same list.
    let mut list = dentry("d", DIR, 112, [0; 20]);
    list.extend([0u8; 8]);
    let wim = synth(&meta_with(112, &list), &[]);
    assert!(matches!(
        walk_all(&wim, Limits::default()),
        Err(WimError::DirectoryLoop { offset: 112, .. })
    ));
    // A child pointing back at the root's own dentry region: also caught.
    let mut list = dentry("d", DIR, 8, [0; 20]);
    list.extend([0u8; 8]);
    let wim = synth(&meta_with(112, &list), &[]);
    let r = walk_all(&wim, Limits::default());
    assert!(r.is_err(), "{r:?}");
}

#[test]
fn depth_and_entry_caps() {
    // A chain d/d/d/... 50 deep: each list holds one dir pointing to the next.
    let mut rest = Vec::new();
    let base = 112u64;
    let one = dentry("d", DIR, 0, [0; 20]).len() as u64 + 8;
    for i in 0..50u64 {
        let next = if i == 49 { 0 } else { base + (i + 1) * one };
        rest.extend(dentry("d", DIR, next, [0; 20]));
        rest.extend([0u8; 8]);
    }
    let wim = synth(&meta_with(base, &rest), &[]);
    assert!(walk_all(&wim, Limits::default()).is_ok());
    let tight = |max_entries, max_depth| Limits {
        tree: TreeLimits {
            max_entries,
            max_depth,
        },
        ..Limits::default()
    };
    assert!(matches!(
        walk_all(&wim, tight(1000, 10)),
        Err(WimError::TooDeep { limit: 10, .. })
    ));
    assert!(matches!(
        walk_all(&wim, tight(20, 1000)),
        Err(WimError::TooManyEntries { limit: 20, .. })
    ));
}

#[test]
fn bad_dentries() {
    // Length field pointing past the end.
    let mut d = dentry("a", 0, 0, [0; 20]);
    d[0..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let wim = synth(&meta_with(112, &d), &[]);
    assert!(matches!(
        walk_all(&wim, Limits::default()),
        Err(WimError::BadMetadata { .. })
    ));
    // Name longer than the dentry.
    let mut d = dentry("a", 0, 0, [0; 20]);
    d[100..102].copy_from_slice(&500u16.to_le_bytes());
    let wim = synth(&meta_with(112, &d), &[]);
    assert!(matches!(
        walk_all(&wim, Limits::default()),
        Err(WimError::BadMetadata { .. })
    ));
    // Extra stream entries beyond the metadata.
    let mut d = dentry("a", 0, 0, [0; 20]);
    d[96..98].copy_from_slice(&5u16.to_le_bytes());
    let wim = synth(&meta_with(112, &d), &[]);
    assert!(matches!(
        walk_all(&wim, Limits::default()),
        Err(WimError::BadMetadata { .. })
    ));
    // Security data longer than the metadata.
    let mut m = meta_with(0, &[]);
    m[0..4].copy_from_slice(&100_000u32.to_le_bytes());
    assert!(matches!(
        walk_all(&synth(&m, &[]), Limits::default()),
        Err(WimError::BadMetadata { .. })
    ));
    // A file whose stream is in no lookup table.
    let mut list = dentry("a", 0, 0, [7; 20]);
    list.extend([0u8; 8]);
    assert!(matches!(
        walk_all(&synth(&meta_with(112, &list), &[]), Limits::default()),
        Err(WimError::MissingBlob { .. })
    ));
    // The root is a file.
    let mut m = vec![8, 0, 0, 0, 0, 0, 0, 0];
    m.extend(dentry("", 0, 0, [0; 20]));
    assert!(matches!(
        walk_all(&synth(&m, &[]), Limits::default()),
        Err(WimError::BadMetadata { .. })
    ));
}

#[test]
fn corrupt_data_is_a_hash_mismatch() {
    let data = noise(9, 5000);
    let mut list = dentry("a", 0, 0, sha1(&data));
    list.extend([0u8; 8]);
    let meta = meta_with(112, &list);
    let mut wim = synth(&meta, &[&data]);
    let at = 208 + meta.len() + 100;
    wim[at] ^= 1;
    assert!(matches!(
        walk_all(&wim, Limits::default()),
        Err(WimError::HashMismatch { .. })
    ));
    // Corrupt metadata: its own hash is checked too.
    let mut wim = synth(&meta, &[&data]);
    wim[208 + 4] ^= 1;
    assert!(matches!(
        walk_all(&wim, Limits::default()),
        Err(WimError::HashMismatch { .. })
    ));
}

#[test]
fn truncations_of_real_wims() {
    for opts in [
        &["--compress=lzx"][..],
        &["--solid"][..],
        &["--pipable"][..],
        &["--compress=none"][..],
    ] {
        let wim = real_wim(opts);
        assert!(walk_all(&wim, Limits::default()).is_ok());
        let step = (wim.len() / 97).max(1);
        for len in (0..wim.len()).step_by(step) {
            let r = walk_all(&wim[..len], Limits::default());
            assert!(r.is_err(), "{opts:?} truncated to {len}: {r:?}");
        }
    }
}

#[test]
fn corruption_of_real_wims_never_panics() {
    // Flip bytes throughout compressed WIMs: errors or (where the byte is
    // unused) success, never a panic; data that changes is caught by SHA-1.
    for opts in [
        &["--compress=lzx"][..],
        &["--solid"][..],
        &["--compress=xpress"][..],
    ] {
        let wim = real_wim(opts);
        let good = walk_all(&wim, Limits::default()).unwrap();
        let step = (wim.len() / 300).max(1);
        for at in (0..wim.len()).step_by(step) {
            let mut bad = wim.clone();
            bad[at] ^= 0x5A;
            if let Ok(n) = walk_all(&bad, Limits::default()) {
                assert_eq!(n, good);
            }
        }
    }
}

#[test]
fn header_fields_that_lie() {
    let wim = real_wim(&["--compress=lzx"]);
    let set = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut w = wim.clone();
        f(&mut w);
        walk_all(&w, Limits::default())
    };
    // Lookup table larger than any limit.
    let r = set(&|w| w[0x30 + 16..0x30 + 24].copy_from_slice(&(1u64 << 60).to_le_bytes()));
    assert!(matches!(r, Err(WimError::ResourceTooLarge { .. })), "{r:?}");
    // Lookup table beyond the file.
    let r = set(&|w| w[0x30 + 8..0x30 + 16].copy_from_slice(&(1u64 << 40).to_le_bytes()));
    assert!(
        matches!(r, Err(WimError::ResourceBeyondFile { .. })),
        "{r:?}"
    );
    // Chunk sizes: not a power of two; beyond the cap.
    for cs in [3000u32, 1 << 30, 0] {
        let r = set(&|w| w[0x14..0x18].copy_from_slice(&cs.to_le_bytes()));
        assert!(
            matches!(r, Err(WimError::BadChunkSize { .. })),
            "{cs}: {r:?}"
        );
    }
    // Unknown compression flag.
    let r = set(&|w| w[0x10..0x14].copy_from_slice(&0x2u32.to_le_bytes()));
    assert!(
        matches!(r, Err(WimError::UnknownCompression { .. })),
        "{r:?}"
    );
    // More images than metadata resources.
    let r = set(&|w| w[0x2C..0x30].copy_from_slice(&5u32.to_le_bytes()));
    assert!(matches!(r, Err(WimError::MissingMetadata { .. })), "{r:?}");
    // Split-WIM numbers.
    let r = set(&|w| w[0x28..0x2A].copy_from_slice(&0u16.to_le_bytes()));
    assert!(matches!(r, Err(WimError::BadPartNumber { .. })), "{r:?}");
    // Not a WIM, empty.
    assert!(matches!(
        walk_all(b"MZ\x90\0", Limits::default()),
        Err(WimError::WrongMagic { .. })
    ));
    assert!(matches!(
        walk_all(b"", Limits::default()),
        Err(WimError::Empty)
    ));
}

#[test]
fn metadata_larger_than_the_limit() {
    let wim = real_wim(&["--compress=lzx"]);
    let limits = Limits {
        max_metadata: 100,
        ..Limits::default()
    };
    assert!(matches!(
        walk_all(&wim, limits),
        Err(WimError::ResourceTooLarge { .. })
    ));
}
