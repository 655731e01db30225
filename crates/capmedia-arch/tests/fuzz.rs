//! Mutation fuzzing: the WIM and PE parsers over >= 100,000 inputs derived
//! from real WIM and PE bytes (bit flips, truncations, splices, hostile header
//! fields, garbage in the XML) must never panic, only return typed errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

use capmedia_arch::{inspect_reader, read_pe, read_wim, Arch};
use common::*;

const CASES: u64 = 120_000;

/// xorshift64*: a small seeded PRNG, so every run tries the same inputs and a
/// failure names a reproducible case number.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Real WIMs (from wimlib) and PE files, plus synthetic ones.
fn seeds() -> Vec<Vec<u8>> {
    require_wimlib();
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &std::path::Path| s.to_str().unwrap().to_owned();
    let t86 = windows_tree(dir.path(), "t86", Arch::X86);
    let t64 = windows_tree(dir.path(), "t64", Arch::X64);
    let ta = windows_tree(dir.path(), "ta", Arch::Arm64);
    let d = dir.path();
    wimlib(&[
        "capture",
        &p(&t64),
        &p(&d.join("a.wim")),
        "x64 image",
        "--boot",
    ]);
    wimlib(&["append", &p(&ta), &p(&d.join("a.wim")), "arm64 image"]);
    wimlib(&[
        "capture",
        &p(&t86),
        &p(&d.join("p.wim")),
        "pipable",
        "--pipable",
        "--boot",
    ]);
    wimlib(&["capture", &p(&ta), &p(&d.join("s.wim")), "solid", "--solid"]);
    // A split WIM's first part is small when the big file lands in part 2.
    std::fs::write(
        t64.join("big.bin"),
        (0..1_500_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    wimlib(&[
        "capture",
        &p(&t64),
        &p(&d.join("big.wim")),
        "split",
        "--compress=none",
    ]);
    wimlib(&["split", &p(&d.join("big.wim")), &p(&d.join("big.swm")), "1"]);
    let mut seeds = Vec::new();
    for f in ["a.wim", "p.wim", "s.wim", "big.swm"] {
        let b = std::fs::read(d.join(f)).unwrap();
        assert!(
            b.len() < 64 * 1024,
            "{f} is {} bytes: too big to be a quick seed",
            b.len()
        );
        assert!(
            read_wim(&mut Cursor::new(&b)).is_ok(),
            "seed {f} must parse"
        );
        seeds.push(b);
    }
    for arch in Arch::ALL {
        seeds.push(pe_stub(machine_of(arch)));
    }
    seeds.push(synth_wim(
        &utf16_bom(&wim_xml(&[("a", 0), ("b", 9), ("c", 12)])),
        3,
        2,
    ));
    seeds.push(synth_pipable(&utf16_bom(&wim_xml(&[("a", 5)])), 1, 1));
    seeds
}

const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    7,
    0x7F,
    0xFF,
    208,
    0x7FFF,
    0xFFFF,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    1 << 40,
    (1 << 56) - 1,
    u64::MAX,
];

/// Offsets of header fields a hostile file would target (WIM header, PE header).
const FIELDS: [usize; 16] = [
    0x08, 0x0C, 0x10, 0x28, 0x2A, 0x2C, 0x48, 0x4F, 0x50, 0x58, 0x78, // WIM
    0x3C, 0x84, 0x94, 0x98, 0xDC, // PE (our stub's layout)
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>], input: &mut Vec<u8>) {
    let len = input.len();
    match rng.below(8) {
        // Bit flips.
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !input.is_empty() {
                    let i = rng.below(input.len());
                    input[i] ^= 1 << rng.below(8);
                }
            }
        }
        // Truncation.
        1 => input.truncate(rng.below(len + 1)),
        // Splice: our prefix, another seed's suffix.
        2 => {
            let other = &seeds[rng.below(seeds.len())];
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        // A header field (at the front, or in a pipable WIM's trailing copy)
        // set to an interesting or random value.
        3 => {
            let base = if rng.below(3) == 0 {
                len.saturating_sub(208)
            } else {
                0
            };
            let off = base + FIELDS[rng.below(FIELDS.len())];
            let width = [1, 2, 4, 8][rng.below(4)];
            let value = match rng.below(4) {
                0 => rng.next(),
                1 => len as u64 + rng.below(3) as u64 - 1,
                _ => INTERESTING[rng.below(INTERESTING.len())],
            };
            let bytes = value.to_le_bytes();
            for (k, byte) in bytes.iter().enumerate().take(width) {
                if let Some(b) = input.get_mut(off + k) {
                    *b = *byte;
                }
            }
        }
        // UTF-16 garbage: XML metacharacters, surrogates, digits.
        4 => {
            const UNITS: [u16; 12] = [
                b'<' as u16,
                b'>' as u16,
                b'"' as u16,
                b'&' as u16,
                b'/' as u16,
                b'9' as u16,
                0xD800,
                0xDC00,
                0xFEFF,
                0,
                b'A' as u16,
                0xFFFF,
            ];
            for _ in 0..1 + rng.below(4) {
                if len >= 2 {
                    let i = rng.below(len - 1);
                    let u = UNITS[rng.below(UNITS.len())].to_le_bytes();
                    input[i] = u[0];
                    input[i + 1] = u[1];
                }
            }
        }
        // Insert or delete a run of bytes (shifts everything after it).
        5 => {
            let at = rng.below(len + 1);
            if rng.below(2) == 0 {
                let n = 1 + rng.below(16);
                let fill = rng.next() as u8;
                input.splice(at..at, std::iter::repeat_n(fill, n));
            } else {
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at..end);
            }
        }
        // Random bytes over a random window.
        6 => {
            for _ in 0..1 + rng.below(32) {
                if !input.is_empty() {
                    let i = rng.below(input.len());
                    input[i] = rng.next() as u8;
                }
            }
        }
        // Duplicate a chunk of itself somewhere else.
        _ => {
            if len > 2 {
                let a = rng.below(len);
                let n = 1 + rng.below((len - a).min(64));
                let chunk = input[a..a + n].to_vec();
                let at = rng.below(len - n + 1);
                input[at..at + n].copy_from_slice(&chunk);
            }
        }
    }
}

/// The variant name of a result, to see how deep the fuzzer gets (for a
/// fault capmedia-wim found, `ArchError::Wim(..)`, the name of its own).
fn outcome<T, E: std::fmt::Debug>(r: &Result<T, E>) -> String {
    match r {
        Ok(_) => "Ok".into(),
        Err(e) => {
            let text = format!("{e:?}");
            text.strip_prefix("Wim(")
                .unwrap_or(&text)
                .split([' ', '(', '{'])
                .next()
                .unwrap_or("")
                .to_owned()
        }
    }
}

#[test]
fn parsers_never_panic_on_mutated_inputs() {
    let seeds = seeds();
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut input = Vec::new();
    for case in 0..CASES {
        input.clear();
        input.extend_from_slice(&seeds[rng.below(seeds.len())]);
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &seeds, &mut input);
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            let w = read_wim(&mut Cursor::new(&input));
            let p = read_pe(&mut Cursor::new(&input));
            let i = inspect_reader(&mut Cursor::new(&input), "fuzz");
            (outcome(&w), outcome(&p), outcome(&i))
        }));
        match result {
            Ok((w, p, _)) => {
                *outcomes.entry(format!("wim {w}")).or_default() += 1;
                *outcomes.entry(format!("pe {p}")).or_default() += 1;
            }
            Err(_) => {
                let path = std::env::temp_dir().join(format!("capmedia-arch-fuzz-case-{case}.bin"));
                std::fs::write(&path, &input).unwrap();
                panic!(
                    "parser panicked on case {case}; input saved to {}",
                    path.display()
                );
            }
        }
    }
    // The mutations must reach past the magic check into the XML and PE
    // checks, or this test proves little.
    eprintln!("{CASES} cases: {outcomes:#?}");
    for must in [
        "wim Ok",
        "wim XmlSyntax",
        "wim XmlBeyondFile",
        "wim XmlTooLarge",
        "wim XmlInvalidUtf16",
        "wim UnknownArch",
        "wim TruncatedHeader",
        "pe Ok",
        "pe BadLfanew",
        "pe UnknownMachine",
    ] {
        assert!(
            outcomes.contains_key(must),
            "no case reached {must}: {outcomes:#?}"
        );
    }
}
