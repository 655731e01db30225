//! The C ABI between the host and a sink plugin.
//!
//! Rust has no stable ABI, so a plugin built with another compiler must meet
//! the host on plain C terms:
//!
//! - The plugin exports one symbol, [`ENTRY_SYMBOL`], an `extern "C" fn()`
//!   returning a pointer to a static [`SinkVTable`].
//! - The vtable starts with [`ABI_MAGIC`], the ABI major and minor, and its own
//!   size. Fields are only ever appended: a new minor adds fields at the end,
//!   and a host reads a field only when `size` says the plugin has it. A new
//!   major may change anything, so a host refuses any major but its own.
//! - Every value crosses as UTF-8 JSON bytes (pointer + length). Results and
//!   errors travel back through [`HostCallbacks`], which copy the bytes, so no
//!   allocation ever changes hands.
//! - Every function returns a plain status code ([`STATUS_OK`], ...).
//! - Panics never cross: the plugin side catches them and returns
//!   [`STATUS_PANIC`]. A plugin built with `panic = "abort"` cannot catch them,
//!   so it says so in `panic_unwind` and the host refuses it.

use std::ffi::c_void;

/// `"CAPMSINK"` read as a little-endian u64.
pub const ABI_MAGIC: u64 = u64::from_le_bytes(*b"CAPMSINK");
pub const ABI_MAJOR: u16 = 1;
/// 1.1: `SinkInfo::streams` and `EntrySource::Stream` entries in the plans
/// of sinks that declare it.
pub const ABI_MINOR: u16 = 1;

/// The one symbol a plugin exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"capmedia_sink_entry\0";

/// The call succeeded and delivered its result through `HostCallbacks::result`.
pub const STATUS_OK: i32 = 0;
/// The sink returned an error, delivered through `HostCallbacks::error`.
pub const STATUS_ERROR: i32 = 1;
/// The sink panicked; a description was delivered through `HostCallbacks::error`.
pub const STATUS_PANIC: i32 = 2;
/// The request could not be decoded (host and plugin disagree on the schema).
pub const STATUS_BAD_REQUEST: i32 = 3;
/// The host's callback table is missing or too small.
pub const STATUS_BAD_HOST: i32 = 4;

/// The type of [`ENTRY_SYMBOL`].
pub type EntryFn = unsafe extern "C" fn() -> *const SinkVTable;

/// One call of a sink: host callbacks, then the request's JSON bytes.
pub type CallFn =
    unsafe extern "C" fn(host: *const HostCallbacks, ptr: *const u8, len: usize) -> i32;

/// What a plugin exports. `#[repr(C)]`; fields are only appended.
#[repr(C)]
#[derive(Debug)]
pub struct SinkVTable {
    /// [`ABI_MAGIC`].
    pub magic: u64,
    pub abi_major: u16,
    pub abi_minor: u16,
    /// `size_of::<SinkVTable>()` as the plugin was compiled.
    pub size: u32,
    /// 1 when the plugin was built with `panic = "unwind"`, 0 for "abort".
    pub panic_unwind: u8,
    pub reserved: [u8; 7],
    /// The SDK version the plugin was built with (UTF-8, not NUL-terminated).
    pub sdk_version_ptr: *const u8,
    pub sdk_version_len: usize,
    /// Request: `null`. Result: [`crate::SinkInfo`].
    ///
    /// The four functions are `Option`s because the bytes come from a foreign
    /// library: a NULL there must be representable (a bare Rust `fn` pointer
    /// that is NULL is undefined behaviour before it is ever called). The
    /// layout is the same as a C function pointer; the host refuses a vtable
    /// with any of them NULL.
    pub describe: Option<CallFn>,
    /// Request: [`crate::content::MediaPlan`]. Result: [`crate::CheckReport`].
    pub check: Option<CallFn>,
    /// Request: [`crate::content::MediaPlan`]. Result: [`crate::WriteReport`].
    pub write: Option<CallFn>,
    /// Request: [`crate::VerifyRequest`]. Result: [`crate::VerifyReport`].
    pub verify: Option<CallFn>,
}

// SAFETY: the vtable is immutable static data: function pointers and a pointer
// to a static string, all valid for the life of the loaded library.
unsafe impl Sync for SinkVTable {}

/// Callbacks the host passes into every call. The plugin may call them from
/// any thread until the call returns; the host makes them thread-safe.
#[repr(C)]
#[derive(Debug)]
pub struct HostCallbacks {
    /// `size_of::<HostCallbacks>()` as the host was compiled.
    pub size: u32,
    /// Opaque host state, passed back to every callback.
    pub ctx: *mut c_void,
    /// The call's result as JSON; the host copies the bytes.
    pub result: extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
    /// The call's error as a JSON [`crate::SinkError`]; the host copies the bytes.
    pub error: extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
    /// Progress of `phase` (UTF-8): `done` of `total` bytes.
    pub progress: extern "C" fn(
        ctx: *mut c_void,
        phase_ptr: *const u8,
        phase_len: usize,
        done: u64,
        total: u64,
    ),
    /// A line for the user (UTF-8).
    pub message: extern "C" fn(ctx: *mut c_void, ptr: *const u8, len: usize),
    /// Non-zero when the user asked to stop.
    pub cancelled: extern "C" fn(ctx: *mut c_void) -> u8,
}

/// Bytes handed over by pointer and length, as a slice.
///
/// # Safety
/// `ptr` must be valid for reads of `len` bytes for `'a` (or `len` is 0).
pub(crate) unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}
