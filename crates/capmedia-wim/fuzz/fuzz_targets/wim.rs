//! Fuzzes the WIM reader end to end: header, lookup table, solid and
//! pipable layouts, metadata (security data, dentries, streams), chunk
//! tables and, through them, each codec. The first byte picks the mode:
//! below 0xF0 the whole input is a WIM (the byte is part of it, so the
//! seeds are plain WIMs: `M` of `MSWIM`, `W` of `WLPWM`); 0xF1-0xF3 feed the
//! rest straight to the XPRESS, LZX or LZMS decompressor.
#![no_main]

use std::io::Cursor;

use capmedia_wim::{Limits, TreeLimits, Wim};
use capmedia_wimlib::{Codec, Decompressor};
use libfuzzer_sys::fuzz_target;

/// ASan keeps freed memory in a quarantine of 256 MiB by default, which
/// alone exceeds the project's `-rss_limit_mb=256` once a few hundred runs
/// have allocated and freed their chunk buffers and wimlib's decompressors
/// (live memory stays a few MiB). A smaller quarantine still catches
/// use-after-free of recent allocations.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"quarantine_size_mb=32:malloc_context_size=10".as_ptr()
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        Some(&m @ 0xF1..=0xF3) => {
            let codec = [Codec::Xpress, Codec::Lzx, Codec::Lzms][usize::from(m - 0xF1)];
            if let Ok(mut d) = Decompressor::new(codec, 32768) {
                let out_len = data.get(1).map_or(1, |b| usize::from(*b) * 128 + 1);
                let mut out = vec![0u8; out_len];
                let _ = d.decompress(data.get(2..).unwrap_or(&[]), &mut out);
            }
        }
        _ => wim(data),
    }
});

fn wim(data: &[u8]) {
    // Small caps keep each run fast; the checks are the same at any size.
    let limits = Limits {
        max_xml: 1 << 20,
        max_lookup_table: 1 << 20,
        max_metadata: 4 << 20,
        max_chunk_size: 1 << 18,
        tree: TreeLimits {
            max_entries: 10_000,
            max_depth: 64,
        },
    };
    let Ok(mut w) = Wim::open_parts_with_limits(vec![Cursor::new(data)], limits) else {
        return;
    };
    let _ = w.xml_text();
    for index in 1..=w.image_count().min(4) {
        let Ok(image) = w.image(index) else { continue };
        let _ = image.find("Windows/Boot/PCAT/bootmgr");
        for e in image.entries().iter().take(200) {
            let _ = image.path(e);
            if e.is_file() {
                let _ = w.extract_to(e, &mut std::io::sink());
            }
            for s in &e.streams {
                if let Ok(r) = w.open_named(s) {
                    let _ = r.copy_to(&mut std::io::sink());
                }
            }
        }
    }
}
