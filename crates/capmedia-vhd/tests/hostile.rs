//! Malformed VHDs give typed errors, never panics.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Cursor, Read};

use capmedia_vhd::{VhdError, VhdReader, VhdType, VhdWriter};
use common::*;
use proptest::prelude::*;

fn small(t: VhdType) -> Vec<u8> {
    static CACHE: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let c = CACHE.get_or_init(|| [build(VhdType::Fixed), build(VhdType::Dynamic)]);
    c[usize::from(t == VhdType::Dynamic)].clone()
}

fn build(t: VhdType) -> Vec<u8> {
    let mut w = VhdWriter::create(Cursor::new(Vec::new()), &params(t, 1)).unwrap();
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

/// Recompute the footer (end and copy) and header checksums, so mutations
/// reach the checks behind them.
fn fix_checksums(b: &mut [u8], t: VhdType) {
    fn fix(b: &mut [u8], at: usize) {
        b[at..at + 4].fill(0);
        let sum = !b.iter().fold(0u32, |s, &x| s.wrapping_add(u32::from(x)));
        b[at..at + 4].copy_from_slice(&sum.to_be_bytes());
    }
    let n = b.len();
    fix(&mut b[n - 512..], 64);
    if t == VhdType::Dynamic && n >= 1536 {
        fix(&mut b[512..1536], 36);
    }
}

fn exercise(bytes: Vec<u8>) {
    if let Ok(mut r) = VhdReader::open(Cursor::new(bytes)) {
        let mut buf = vec![0u8; 1 << 20];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn mutated_metadata_never_panics(
        dynamic in any::<bool>(),
        edits in proptest::collection::vec((0usize..2560, any::<u8>()), 1..8),
        footer_edits in proptest::collection::vec((0usize..512, any::<u8>()), 0..4),
        fix in any::<bool>(),
    ) {
        let t = if dynamic { VhdType::Dynamic } else { VhdType::Fixed };
        let mut b = small(t);
        let n = b.len();
        for (at, v) in edits {
            b[at] = v;
        }
        for (at, v) in footer_edits {
            b[n - 512 + at] = v;
        }
        if fix {
            fix_checksums(&mut b, t);
        }
        exercise(b);
    }

    #[test]
    fn truncated_files_never_panic(dynamic in any::<bool>(), keep in 0usize..40_000) {
        let t = if dynamic { VhdType::Dynamic } else { VhdType::Fixed };
        let b = small(t);
        // Cut the middle out, keeping the footer at the end.
        let mut c = b[..keep.min(b.len() - 512)].to_vec();
        c.extend_from_slice(&b[b.len() - 512..]);
        exercise(c);
    }

    #[test]
    fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..3000)) {
        exercise(b);
    }
}

#[test]
fn specific_corruptions_name_the_field() {
    let good = small(VhdType::Dynamic);
    let open = |b: Vec<u8>| VhdReader::open(Cursor::new(b)).map(|_| ());

    let mut b = good.clone();
    b[520] ^= 1; // header data offset
    assert!(matches!(open(b), Err(VhdError::HeaderChecksum { .. })));

    let mut b = good.clone();
    b[512] = b'X';
    fix_checksums(&mut b, VhdType::Dynamic);
    assert!(matches!(open(b), Err(VhdError::HeaderCookie(_))));

    let mut b = good.clone();
    b[512 + 28..512 + 32].copy_from_slice(&1u32.to_be_bytes()); // max table entries
    fix_checksums(&mut b, VhdType::Dynamic);
    assert!(matches!(open(b), Err(VhdError::TableTooSmall { .. })));

    let mut b = good.clone();
    b[1536..1540].copy_from_slice(&0x00FF_FFFFu32.to_be_bytes()); // BAT[0]
    fix_checksums(&mut b, VhdType::Dynamic);
    assert!(matches!(
        open(b),
        Err(VhdError::BlockOutOfBounds { block: 0, .. })
    ));

    let mut b = good.clone();
    let n = b.len();
    b[n - 512 + 60..n - 512 + 64].copy_from_slice(&4u32.to_be_bytes());
    fix_checksums(&mut b, VhdType::Dynamic);
    assert!(matches!(open(b), Err(VhdError::Differencing)));

    let mut b = small(VhdType::Fixed);
    b.remove(0);
    assert!(matches!(open(b), Err(VhdError::FixedLength { .. })));

    assert!(matches!(open(vec![0; 100]), Err(VhdError::TooSmall(100))));
    assert!(matches!(
        open(vec![0; 1000]),
        Err(VhdError::FooterCookie(_))
    ));
}
