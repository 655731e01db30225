//! Malformed VHDX files give typed errors, never panics or huge allocations.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Cursor, Read};

use capmedia_vhdx::{VhdxError, VhdxReader, VhdxType, VhdxWriter};
use common::*;
use proptest::prelude::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
/// Where the structures are in the files this crate writes.
const HEADERS: [usize; 2] = [64 * KIB, 128 * KIB];
const REGIONS: [usize; 2] = [192 * KIB, 256 * KIB];
const METADATA: usize = 2 * MIB;
const BAT: usize = 3 * MIB;

fn small(t: VhdxType) -> Vec<u8> {
    static CACHE: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let c = CACHE.get_or_init(|| [build(VhdxType::Fixed), build(VhdxType::Dynamic)]);
    c[usize::from(t == VhdxType::Dynamic)].clone()
}

fn build(t: VhdxType) -> Vec<u8> {
    let mut w = VhdxWriter::create(Cursor::new(Vec::new()), &params(t, 8 << 20)).unwrap();
    apply(
        &mut w,
        &[
            Op {
                offset: 0,
                data: pattern(1, 5000),
            },
            Op {
                offset: 5 << 20,
                data: pattern(2, 5000),
            },
        ],
    );
    w.finish().unwrap().into_inner()
}

/// CRC-32C as the headers and region tables use it (the crc crate's
/// CRC_32_ISCSI is what the crate uses; this is an independent bitwise one).
fn crc32c(b: &[u8]) -> u32 {
    let mut c = !0u32;
    for &x in b {
        c ^= u32::from(x);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn reseal(b: &mut [u8], at: usize, len: usize) {
    b[at + 4..at + 8].fill(0);
    let sum = crc32c(&b[at..at + len]);
    b[at + 4..at + 8].copy_from_slice(&sum.to_le_bytes());
}

/// Recompute both headers' and region tables' checksums, so mutations reach
/// the checks behind them.
fn fix_checksums(b: &mut [u8]) {
    for h in HEADERS {
        reseal(b, h, 4096);
    }
    for r in REGIONS {
        reseal(b, r, 64 * KIB);
    }
}

fn exercise(bytes: Vec<u8>) {
    if let Ok(mut r) = VhdxReader::open(Cursor::new(bytes)) {
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

/// Offsets of the fields that matter: headers, region tables, metadata table
/// and items, the BAT's start.
fn interesting() -> impl Strategy<Value = usize> {
    prop_oneof![
        (0usize..128).prop_map(|o| HEADERS[0] + o),
        (0usize..128).prop_map(|o| HEADERS[1] + o),
        (0usize..96).prop_map(|o| REGIONS[0] + o),
        (0usize..96).prop_map(|o| REGIONS[1] + o),
        (0usize..224).prop_map(|o| METADATA + o),
        (0usize..48).prop_map(|o| METADATA + 64 * KIB + o),
        (0usize..96).prop_map(|o| BAT + o),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_structures_never_panic(
        dynamic in any::<bool>(),
        edits in proptest::collection::vec((interesting(), any::<u8>()), 1..8),
        fix in any::<bool>(),
    ) {
        let t = if dynamic { VhdxType::Dynamic } else { VhdxType::Fixed };
        let mut b = small(t);
        for (at, v) in edits {
            b[at] = v;
        }
        if fix {
            fix_checksums(&mut b);
        }
        exercise(b);
    }

    #[test]
    fn truncated_files_never_panic(dynamic in any::<bool>(), keep in 0usize..(10 << 20)) {
        let t = if dynamic { VhdxType::Dynamic } else { VhdxType::Fixed };
        let mut b = small(t);
        b.truncate(keep);
        exercise(b);
    }

    #[test]
    fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..3000)) {
        exercise(b);
    }
}

fn open(b: Vec<u8>) -> Result<(), VhdxError> {
    VhdxReader::open(Cursor::new(b)).map(|_| ())
}

fn set(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

#[test]
fn the_written_files_open() {
    for t in [VhdxType::Fixed, VhdxType::Dynamic] {
        open(small(t)).unwrap();
    }
}

#[test]
fn specific_corruptions_name_the_field() {
    let good = small(VhdxType::Dynamic);

    assert!(matches!(open(vec![0; 100]), Err(VhdxError::TooSmall(100))));
    assert!(matches!(
        open(vec![0; 3 << 20]),
        Err(VhdxError::FileSignature(_))
    ));

    // One bad header: the other one is used.
    let mut b = good.clone();
    b[HEADERS[1] + 20] ^= 1;
    open(b.clone()).unwrap();
    b[HEADERS[0] + 20] ^= 1;
    assert!(matches!(open(b), Err(VhdxError::NoValidHeader(_))));

    let mut b = good.clone();
    set(&mut b, HEADERS[0] + 48, &[1; 16]); // log GUID
    set(&mut b, HEADERS[1] + 48, &[1; 16]);
    fix_checksums(&mut b);
    assert!(matches!(open(b), Err(VhdxError::LogNotEmpty(_))));

    let mut b = good.clone();
    set(&mut b, HEADERS[1] + 66, &2u16.to_le_bytes()); // version, current header
    fix_checksums(&mut b);
    assert!(matches!(open(b), Err(VhdxError::Version(2))));

    // One bad region table: the other one is used.
    let mut b = good.clone();
    b[REGIONS[0] + 100] ^= 1;
    open(b.clone()).unwrap();
    b[REGIONS[1] + 100] ^= 1;
    assert!(matches!(open(b), Err(VhdxError::NoValidRegionTable(_))));

    // The BAT region's offset moved outside the file (entry 0 is the BAT).
    let mut b = good.clone();
    for r in REGIONS {
        set(&mut b, r + 16 + 16, &(1u64 << 40).to_le_bytes());
    }
    fix_checksums(&mut b);
    assert!(matches!(
        open(b),
        Err(VhdxError::NoValidRegionTable(_)) | Err(VhdxError::BadRegion { .. })
    ));

    // Region count past the limit.
    let mut b = good.clone();
    for r in REGIONS {
        set(&mut b, r + 8, &5000u32.to_le_bytes());
    }
    fix_checksums(&mut b);
    assert!(
        matches!(open(b), Err(VhdxError::NoValidRegionTable(e)) if matches!(*e, VhdxError::RegionCount(5000)))
    );

    let mut b = good.clone();
    b[METADATA] = b'X';
    assert!(matches!(open(b), Err(VhdxError::MetadataSignature)));

    // Metadata item 0 is the file parameters, at 64 KiB: block size 3 MiB.
    let mut b = good.clone();
    set(&mut b, METADATA + 64 * KIB, &(3u32 << 20).to_le_bytes());
    assert!(matches!(open(b), Err(VhdxError::BlockSize(_))));

    // HasParent.
    let mut b = good.clone();
    b[METADATA + 64 * KIB + 4] = 2;
    assert!(matches!(open(b), Err(VhdxError::Differencing)));

    // Virtual disk size (item 1, at 64 KiB + 8): not whole sectors.
    let mut b = good.clone();
    set(&mut b, METADATA + 64 * KIB + 8, &1000u64.to_le_bytes());
    assert!(matches!(open(b), Err(VhdxError::DiskSize(1000))));

    // Virtual disk size larger than the BAT can map.
    let mut b = good.clone();
    set(&mut b, METADATA + 64 * KIB + 8, &(1u64 << 40).to_le_bytes());
    assert!(matches!(open(b), Err(VhdxError::BatTooSmall { .. })));

    // Item 1's offset out of the region.
    let mut b = good.clone();
    set(&mut b, METADATA + 64 + 16, &u32::MAX.to_le_bytes());
    assert!(matches!(open(b), Err(VhdxError::BadMetadataItem { .. })));

    // Logical sector size 1000.
    let mut b = good.clone();
    set(&mut b, METADATA + 64 * KIB + 32, &1000u32.to_le_bytes());
    assert!(matches!(open(b), Err(VhdxError::SectorSize(1000))));

    // BAT entry 0: fully present at 1 TiB; then inside the metadata region;
    // then partially present; then state 5.
    let entry = |state: u64, mib: u64| (state | (mib << 20)).to_le_bytes();
    for (e, ok) in [
        (entry(6, 1 << 20), false),
        (entry(6, 2), false),
        (entry(6, 0), false),
    ] {
        let mut b = good.clone();
        set(&mut b, BAT, &e);
        assert!(matches!(open(b), Err(VhdxError::BlockOutOfBounds { block: 0, .. })) != ok);
    }
    let mut b = good.clone();
    set(&mut b, BAT, &entry(7, 4));
    assert!(matches!(open(b), Err(VhdxError::Differencing)));
    let mut b = good.clone();
    set(&mut b, BAT, &entry(5, 4));
    assert!(matches!(
        open(b),
        Err(VhdxError::BatState { index: 0, state: 5 })
    ));
}
