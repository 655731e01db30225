//! The NTLM answer to an arbitrary challenge message (what an HTTP DP
//! sends back in `WWW-Authenticate: NTLM <token>`).
#![no_main]

/// ASan keeps up to 256 MiB of freed memory in quarantine by default, which
/// alone crosses the `-rss_limit_mb=256` the project fuzzes with: a smaller
/// quarantine keeps the limit about the target's own memory.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"quarantine_size_mb=16".as_ptr()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    capmedia_dp::fuzzing::ntlm_challenge(data);
});
