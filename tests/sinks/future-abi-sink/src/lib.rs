//! A library that exports a vtable from a future ABI major (2.0), as a plugin
//! built against a newer SDK would. The host must refuse it and name both
//! versions. Written by hand because `export_sink!` always emits this SDK's
//! ABI.

use capmedia_sink::abi::{HostCallbacks, SinkVTable, ABI_MAGIC};

unsafe extern "C" fn never(_: *const HostCallbacks, _: *const u8, _: usize) -> i32 {
    // A host that loaded this plugin despite the ABI mismatch would reach here.
    99
}

static VERSION: &str = "2.0.0";

static VTABLE: SinkVTable = SinkVTable {
    magic: ABI_MAGIC,
    abi_major: 2,
    abi_minor: 3,
    size: std::mem::size_of::<SinkVTable>() as u32,
    panic_unwind: 1,
    reserved: [0; 7],
    sdk_version_ptr: VERSION.as_ptr(),
    sdk_version_len: VERSION.len(),
    describe: Some(never),
    check: Some(never),
    write: Some(never),
    verify: Some(never),
};

// SAFETY: the documented entry point; returns a pointer to static data.
#[unsafe(no_mangle)]
pub extern "C" fn capmedia_sink_entry() -> *const SinkVTable {
    &VTABLE
}
