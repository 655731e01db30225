//! Writes the fuzz seed corpus (`fuzz/corpus/vhdx`): small fixed and dynamic
//! VHDX files in the fuzz target's sparse encoding (see
//! `fuzz/fuzz_targets/vhdx.rs`): `flags u8, len u32`, then one record
//! `offset u32, n u16, bytes` per run of non-zero 512-byte sectors.
//!
//! `cargo run -p capmedia-vhdx --example fuzz_seeds -- OUT_DIR`

use std::io::{Cursor, Seek, SeekFrom, Write};

use capmedia_vhdx::{VhdxIds, VhdxParams, VhdxType, VhdxWriter};

fn encode(file: &[u8], reseal: bool) -> Vec<u8> {
    let mut out = vec![u8::from(reseal)];
    out.extend_from_slice(&(file.len() as u32).to_le_bytes());
    let mut at = 0;
    while at < file.len() {
        let sector = &file[at..(at + 512).min(file.len())];
        if sector.iter().all(|&b| b == 0) {
            at += 512;
            continue;
        }
        // A run of non-zero sectors, trimmed of trailing zeros, < 64 KiB.
        let mut end = at;
        while end < file.len() && end - at < 60 * 1024 {
            let s = &file[end..(end + 512).min(file.len())];
            if s.iter().all(|&b| b == 0) {
                break;
            }
            end += s.len();
        }
        let mut run = &file[at..end];
        while let [rest @ .., 0] = run {
            run = rest;
        }
        out.extend_from_slice(&(at as u32).to_le_bytes());
        out.extend_from_slice(&(run.len() as u16).to_le_bytes());
        out.extend_from_slice(run);
        at = end;
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: fuzz_seeds OUT_DIR")?;
    for (name, t, size) in [
        ("dynamic-8m", VhdxType::Dynamic, 8u64 << 20),
        ("fixed-6m", VhdxType::Fixed, 6 << 20),
    ] {
        let params = VhdxParams {
            vhdx_type: t,
            min_size: size,
            ids: VhdxIds::from_seed(name),
        };
        let mut w = VhdxWriter::create(Cursor::new(Vec::new()), &params)?;
        w.write_all(&[0x55; 700])?;
        w.seek(SeekFrom::Start(5 << 20))?;
        w.write_all(&[0xAA; 1000])?;
        let file = w.finish()?.into_inner();
        std::fs::write(format!("{dir}/{name}"), encode(&file, false))?;
        std::fs::write(format!("{dir}/{name}-reseal"), encode(&file, true))?;
    }
    Ok(())
}
