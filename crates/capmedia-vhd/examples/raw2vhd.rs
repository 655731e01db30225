//! Copy a raw disk image into a VHD through [`VhdWriter`]: a tool for
//! benchmarks (against `qemu-img convert -O vpc`) and for checking by hand.
//!
//! `raw2vhd RAW OUT.vhd [fixed|dynamic]`; SOURCE_DATE_EPOCH sets the timestamp,
//! RAW2VHD_SYNC=1 adds an fsync at the end.

use std::fs::File;
use std::io::{Read, Write};

use capmedia_vhd::{unique_id_from_seed, VhdParams, VhdType, VhdWriter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(raw), Some(out)) = (args.get(1), args.get(2)) else {
        return Err("usage: raw2vhd RAW OUT.vhd [fixed|dynamic]".into());
    };
    let vhd_type: VhdType = args.get(3).map_or("dynamic", String::as_str).parse()?;
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut input = File::open(raw)?;
    let len = input.metadata()?.len();
    let params = VhdParams {
        vhd_type,
        min_size: len,
        source_date_epoch: epoch,
        unique_id: unique_id_from_seed(raw.as_bytes()),
    };
    let mut w = VhdWriter::create(File::create(out)?, &params)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
    }
    let size = w.size();
    let f = w.finish()?;
    // Like qemu-img convert, no fsync unless asked (RAW2VHD_SYNC=1).
    if std::env::var_os("RAW2VHD_SYNC").is_some() {
        f.sync_all()?;
    }
    eprintln!("{out}: {vhd_type} VHD of {size} bytes");
    Ok(())
}
