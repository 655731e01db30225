//! A vtable whose `check` function pointer is NULL: the host must refuse it
//! with a typed error instead of calling through it. Written by hand because
//! `export_sink!` always fills every function.

use capmedia_sink::abi::{HostCallbacks, SinkVTable, ABI_MAGIC, ABI_MAJOR, ABI_MINOR};

unsafe extern "C" fn never(_: *const HostCallbacks, _: *const u8, _: usize) -> i32 {
    // A host that called into this vtable despite the fault would reach here.
    99
}

static VERSION: &str = "0.3.1";

static VTABLE: SinkVTable = SinkVTable {
    magic: ABI_MAGIC,
    abi_major: ABI_MAJOR,
    abi_minor: ABI_MINOR,
    size: std::mem::size_of::<SinkVTable>() as u32,
    panic_unwind: 1,
    reserved: [0; 7],
    sdk_version_ptr: VERSION.as_ptr(),
    sdk_version_len: VERSION.len(),
    describe: Some(never),
    check: None,
    write: Some(never),
    verify: Some(never),
};

// SAFETY: the documented entry point; returns a pointer to static data.
#[unsafe(no_mangle)]
pub extern "C" fn capmedia_sink_entry() -> *const SinkVTable {
    &VTABLE
}
