//! The hive reader and the BCD reader on arbitrary bytes: they must return
//! (an error or a tree) without panicking, looping or allocating without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn check(data: &[u8]) {
    if let Ok(hive) = capmedia_regf::read(data) {
        // Whatever was read can be written again (names may be refused, never a panic).
        let _ = capmedia_regf::write(&hive.root, &capmedia_regf::WriteOptions::default());
        if let Ok(store) = capmedia_bcd::Store::from_key(&hive.root) {
            let _ = store.to_string();
            let _ = store.to_hive(0);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most mutations break the base block checksum and stop there; repair
    // it so they also reach the bins and cells.
    if data.len() >= 4096 {
        let mut v = data.to_vec();
        let mut x = 0u32;
        for c in v[..508].chunks_exact(4) {
            x ^= u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        let x = match x {
            0 => 1,
            0xFFFF_FFFF => 0xFFFF_FFFE,
            x => x,
        };
        v[508..512].copy_from_slice(&x.to_le_bytes());
        check(&v);
    }
});
