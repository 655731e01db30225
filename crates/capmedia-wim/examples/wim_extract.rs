//! Extract every file of one image of a WIM into a folder, streaming each
//! file chunk by chunk (for benchmarks and by hand):
//! `cargo run --release -p capmedia-wim --example wim_extract -- WIM INDEX OUT [PART.swm...]`
//! Reparse points (symbolic links) are skipped; hard links become copies.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use capmedia_wim::Wim;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [wim, index, out, more @ ..] = args.as_slice() else {
        return Err("usage: wim_extract WIM INDEX OUT [PART.swm...]".into());
    };
    let index: u32 = index.parse()?;
    let out = PathBuf::from(out);
    let t0 = Instant::now();
    let mut parts = vec![File::open(wim)?];
    for p in more {
        parts.push(File::open(p)?);
    }
    let mut wim = Wim::open_parts(parts)?;
    let image = wim.image(index)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    std::fs::create_dir_all(&out)?;
    for (path, e) in image.walk() {
        let dest = out.join(&path);
        if e.is_dir {
            std::fs::create_dir_all(&dest)?;
        } else if e.is_file() {
            let mut w = BufWriter::with_capacity(256 * 1024, File::create(&dest)?);
            bytes += wim.extract_to(e, &mut w)?;
            w.flush()?;
            files += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{files} files, {bytes} bytes in {secs:.2}s ({:.1} MiB/s)",
        bytes as f64 / secs / 1048576.0
    );
    Ok(())
}
