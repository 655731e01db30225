//! The plugin side of the ABI: what [`crate::export_sink!`] expands to calls
//! these functions, which decode the request, call the safe [`MediaSink`],
//! catch panics and hand the result back through the host's callbacks.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{de::DeserializeOwned, Serialize};

use crate::abi::{
    bytes, HostCallbacks, SinkVTable, ABI_MAGIC, ABI_MAJOR, ABI_MINOR, STATUS_BAD_HOST,
    STATUS_BAD_REQUEST, STATUS_ERROR, STATUS_OK, STATUS_PANIC,
};
use crate::{Cancel, MediaSink, Progress, SinkError};

/// The SDK version compiled into every plugin.
pub static SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A vtable for a plugin. `panic_unwind` must be evaluated in the plugin's
/// own crate (the macro passes `cfg!(panic = "unwind")`), since that is where
/// the panic strategy of the final library is decided.
pub const fn vtable(
    panic_unwind: bool,
    describe: crate::abi::CallFn,
    check: crate::abi::CallFn,
    write: crate::abi::CallFn,
    verify: crate::abi::CallFn,
) -> SinkVTable {
    SinkVTable {
        magic: ABI_MAGIC,
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        size: std::mem::size_of::<SinkVTable>() as u32,
        panic_unwind: panic_unwind as u8,
        reserved: [0; 7],
        sdk_version_ptr: SDK_VERSION.as_ptr(),
        sdk_version_len: SDK_VERSION.len(),
        describe: Some(describe),
        check: Some(check),
        write: Some(write),
        verify: Some(verify),
    }
}

/// The host's callbacks, checked once per call.
struct Host<'a>(&'a HostCallbacks);

// SAFETY: the ABI contract makes the host's callbacks thread-safe for the
// duration of the call, and `Host` never outlives the call.
unsafe impl Sync for Host<'_> {}

impl Host<'_> {
    fn send(&self, f: extern "C" fn(*mut std::ffi::c_void, *const u8, usize), data: &[u8]) {
        f(self.0.ctx, data.as_ptr(), data.len());
    }

    fn error(&self, e: &SinkError) {
        let json = serde_json::to_vec(e).unwrap_or_else(|_| b"{}".to_vec());
        self.send(self.0.error, &json);
    }
}

impl Progress for Host<'_> {
    fn update(&self, phase: &str, done: u64, total: u64) {
        (self.0.progress)(self.0.ctx, phase.as_ptr(), phase.len(), done, total);
    }
    fn message(&self, text: &str) {
        self.send(self.0.message, text.as_bytes());
    }
}

impl Cancel for Host<'_> {
    fn is_cancelled(&self) -> bool {
        (self.0.cancelled)(self.0.ctx) != 0
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The safe body of one call, given the sink and the decoded request.
pub type CallBody<Req, Res> =
    fn(&dyn MediaSink, Req, &dyn Progress, &dyn Cancel) -> Result<Res, SinkError>;

/// Run one call: decode `Req`, run `f`, deliver `Res` or the error.
///
/// # Safety
/// `host` is null or points to a `HostCallbacks` valid for the call; `ptr`
/// is valid for reads of `len` bytes.
pub unsafe fn call<Req, Res>(
    sink: fn() -> &'static dyn MediaSink,
    host: *const HostCallbacks,
    ptr: *const u8,
    len: usize,
    f: CallBody<Req, Res>,
) -> i32
where
    Req: DeserializeOwned,
    Res: Serialize,
{
    if host.is_null() {
        return STATUS_BAD_HOST;
    }
    // SAFETY: non-null, and valid for the call by the caller's contract.
    let host = unsafe { &*host };
    if (host.size as usize) < std::mem::size_of::<HostCallbacks>() {
        return STATUS_BAD_HOST;
    }
    let host = Host(host);
    // SAFETY: guaranteed by the caller.
    let request = unsafe { bytes(ptr, len) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let req: Req = match serde_json::from_slice(request) {
            Ok(r) => r,
            Err(e) => {
                host.error(&SinkError::internal(format!(
                    "the sink could not decode the host's request ({e}); host and plugin were built with incompatible SDK versions"
                )));
                return STATUS_BAD_REQUEST;
            }
        };
        match f(sink(), req, &host, &host) {
            Ok(res) => match serde_json::to_vec(&res) {
                Ok(json) => {
                    host.send(host.0.result, &json);
                    STATUS_OK
                }
                Err(e) => {
                    host.error(&SinkError::internal(format!("encoding the result: {e}")));
                    STATUS_ERROR
                }
            },
            Err(e) => {
                host.error(&e);
                STATUS_ERROR
            }
        }
    }));
    match outcome {
        Ok(status) => status,
        Err(p) => {
            // Report the panic without risking a second one.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                host.error(&SinkError::internal(format!(
                    "the sink panicked: {}",
                    panic_text(p.as_ref())
                )))
            }));
            STATUS_PANIC
        }
    }
}

/// Export a [`MediaSink`] as a capmedia plugin.
///
/// Put this once in a `cdylib` crate, with an expression that builds the
/// sink (evaluated once, on first use):
///
/// ```ignore
/// capmedia_sink::export_sink!(my_crate::MySink::default());
/// ```
///
/// The library must be built with `panic = "unwind"` (the default); the host
/// refuses plugins built with `panic = "abort"`.
#[macro_export]
macro_rules! export_sink {
    ($make:expr) => {
        // The plugin boundary is the one place `unsafe` is allowed.
        #[doc(hidden)]
        #[allow(unsafe_code)]
        mod __capmedia_sink_export {
            use super::*;
            use $crate::abi::{CallFn, HostCallbacks, SinkVTable};
            use $crate::export::call;
            use $crate::{
                content::MediaPlan, Cancel, MediaSink, Progress, SinkError, VerifyRequest,
            };

            fn sink() -> &'static dyn MediaSink {
                static SINK: ::std::sync::OnceLock<::std::boxed::Box<dyn MediaSink>> =
                    ::std::sync::OnceLock::new();
                SINK.get_or_init(|| ::std::boxed::Box::new($make)).as_ref()
            }

            unsafe extern "C" fn describe(h: *const HostCallbacks, p: *const u8, n: usize) -> i32 {
                // SAFETY: the host upholds the ABI contract for `h`, `p`, `n`.
                unsafe {
                    call(
                        sink,
                        h,
                        p,
                        n,
                        |s, (): (), _: &dyn Progress, _: &dyn Cancel| {
                            Ok::<_, SinkError>(s.describe())
                        },
                    )
                }
            }
            unsafe extern "C" fn check(h: *const HostCallbacks, p: *const u8, n: usize) -> i32 {
                // SAFETY: the host upholds the ABI contract for `h`, `p`, `n`.
                unsafe { call(sink, h, p, n, |s, plan: MediaPlan, _, _| s.check(&plan)) }
            }
            unsafe extern "C" fn write(h: *const HostCallbacks, p: *const u8, n: usize) -> i32 {
                // SAFETY: the host upholds the ABI contract for `h`, `p`, `n`.
                unsafe {
                    call(sink, h, p, n, |s, plan: MediaPlan, pr, c| {
                        s.write(&plan, pr, c)
                    })
                }
            }
            unsafe extern "C" fn verify(h: *const HostCallbacks, p: *const u8, n: usize) -> i32 {
                // SAFETY: the host upholds the ABI contract for `h`, `p`, `n`.
                unsafe {
                    call(sink, h, p, n, |s, r: VerifyRequest, pr, c| {
                        s.verify(&r, pr, c)
                    })
                }
            }

            static VTABLE: SinkVTable = $crate::export::vtable(
                cfg!(panic = "unwind"),
                describe as CallFn,
                check as CallFn,
                write as CallFn,
                verify as CallFn,
            );

            // SAFETY: the exported name is the documented entry point; it
            // takes nothing and returns a pointer to immutable static data.
            #[unsafe(no_mangle)]
            pub extern "C" fn capmedia_sink_entry() -> *const SinkVTable {
                &VTABLE
            }
        }
    };
}
