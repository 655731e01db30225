//! Every parser of a server's SMB2 answers (header, NEGOTIATE,
//! SESSION_SETUP, TREE_CONNECT, CREATE, READ, QUERY_DIRECTORY) on
//! arbitrary bytes, as a whole message and as a body after a valid header.
#![no_main]

/// ASan keeps up to 256 MiB of freed memory in quarantine by default, which
/// alone crosses the `-rss_limit_mb=256` the project fuzzes with: a smaller
/// quarantine keeps the limit about the target's own memory.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"quarantine_size_mb=16".as_ptr()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    capmedia_smb2::parse_any(data);
});
