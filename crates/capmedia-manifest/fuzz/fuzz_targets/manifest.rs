//! capmedia.json over arbitrary bytes: parse it; what parses must write
//! and parse back to the same manifest, and a read-back against a medium
//! holding only that manifest (every listed file missing) must not panic.
#![no_main]

use std::io::{self, Read};

use capmedia_content::MediaPath;
use capmedia_manifest::{verify, Manifest, MediaReader};

/// ASan keeps up to 256 MiB of freed memory in quarantine by default, which
/// alone crosses the `-rss_limit_mb=256` the project fuzzes with: a smaller
/// quarantine keeps the limit about the target's own memory.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"quarantine_size_mb=16".as_ptr()
}

/// A medium holding `capmedia.json` and nothing else.
struct OnlyManifest<'a>(&'a [u8]);

impl MediaReader for OnlyManifest<'_> {
    fn open(&mut self, path: &MediaPath) -> io::Result<Option<Box<dyn Read + '_>>> {
        Ok((path.as_str() == capmedia_content::MANIFEST_PATH)
            .then(|| Box::new(self.0) as Box<dyn Read>))
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::parse(data) else {
        return;
    };
    let again = Manifest::parse(&m.to_bytes()).expect("a written manifest parses");
    assert_eq!(again, m);
    let outcome = verify(&mut OnlyManifest(data), &mut |_, _| {}).expect("it parsed once");
    assert_eq!(outcome.problems.len(), m.files.len());
});
