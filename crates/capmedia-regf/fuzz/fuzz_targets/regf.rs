//! The hive reader and the BCD reader on arbitrary bytes: they must return
//! (an error or a tree) without panicking, looping or allocating without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hive) = capmedia_regf::read(data) {
        // Whatever was read can be written again (names may be refused, never a panic).
        let _ = capmedia_regf::write(&hive.root, &capmedia_regf::WriteOptions::default());
        if let Ok(store) = capmedia_bcd::Store::from_key(&hive.root) {
            let _ = store.to_string();
        }
    }
});
