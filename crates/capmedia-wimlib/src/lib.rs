//! Calls wimlib's decompressors: this crate's one job.
//!
//! WIM resources are compressed in chunks with XPRESS (Huffman), LZX or LZMS
//! in Microsoft's own variants. No well-kept pure-Rust crate decodes all
//! three the way DISM writes them (the LZX crates on crates.io decode the
//! CAB variant, and none decodes LZMS), and writing codecs by hand is out.
//! wimlib, the reference implementation, exposes exactly the primitive
//! needed in its public API ("compression and decompression functions" in
//! `wimlib.h`):
//!
//! - `wimlib_create_decompressor(ctype, max_block_size, &dec)`
//! - `wimlib_decompress(in, in_size, out, out_size, dec)`
//! - `wimlib_free_decompressor(dec)`
//!
//! The library is opened at run time with `libloading` from `libwim.so.15`
//! (Debian package `libwim15`, which `wimtools` depends on), so capmedia
//! starts and reads uncompressed WIMs without it; only a compressed WIM
//! needs it, and its absence is a typed [`WimlibError::LibraryMissing`]
//! naming the package.
//!
//! Threads: a [`Decompressor`] is owned by one reader and used through
//! `&mut self`, so it is never used by two threads at once; it may move
//! between threads (wimlib keeps no thread-local state in it).
#![allow(unsafe_code)] // FFI into libwim: the one reason this crate exists.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use thiserror::Error;

/// The shared object names tried, in order.
pub const LIBRARY_NAMES: &[&str] = &["libwim.so.15", "libwim.so"];
/// The Debian package that provides the library.
pub const DEBIAN_PACKAGE: &str = "libwim15";

/// wimlib's compression types (`enum wimlib_compression_type`), which are
/// also the values WIM solid-resource headers store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// XPRESS (Huffman variant).
    Xpress,
    /// LZX (WIM variant).
    Lzx,
    /// LZMS.
    Lzms,
}

impl Codec {
    /// wimlib's number for the codec.
    pub fn ctype(self) -> i32 {
        match self {
            Codec::Xpress => 1,
            Codec::Lzx => 2,
            Codec::Lzms => 3,
        }
    }

    /// The codec's name as wimlib-imagex spells it.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Xpress => "xpress",
            Codec::Lzx => "lzx",
            Codec::Lzms => "lzms",
        }
    }
}

/// Why decompression could not happen.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum WimlibError {
    /// `libwim.so.15` could not be opened.
    #[error("reading a compressed WIM needs wimlib's library libwim.so.15: install the Debian package `{package}` (apt-get install -y {package}); loading it failed: {reason}")]
    LibraryMissing {
        /// The Debian package to install.
        package: &'static str,
        /// The loader's message.
        reason: String,
    },
    /// The library lacks one of the three functions.
    #[error("libwim has no symbol {symbol}: {reason}")]
    SymbolMissing {
        /// The function name.
        symbol: &'static str,
        /// The loader's message.
        reason: String,
    },
    /// `wimlib_create_decompressor` refused (bad block size for the codec, or no memory).
    #[error("wimlib could not create a {codec} decompressor for blocks of {max_block_size} bytes (wimlib error {code})")]
    CreateFailed {
        /// The codec name.
        codec: &'static str,
        /// The block size asked for.
        max_block_size: usize,
        /// wimlib's error code.
        code: i32,
    },
    /// Output larger than the decompressor was created for.
    #[error("block of {size} bytes exceeds the decompressor's maximum {max}")]
    BlockTooLarge {
        /// Requested output size.
        size: usize,
        /// The decompressor's limit.
        max: usize,
    },
    /// The compressed data is invalid.
    #[error("{codec} data is invalid (wimlib could not decompress a chunk of {compressed} bytes into {uncompressed})")]
    Corrupt {
        /// The codec name.
        codec: &'static str,
        /// Input size.
        compressed: usize,
        /// Expected output size.
        uncompressed: usize,
    },
}

type CreateFn = unsafe extern "C" fn(i32, usize, *mut *mut c_void) -> i32;
type DecompressFn =
    unsafe extern "C" fn(*const c_void, usize, *mut c_void, usize, *mut c_void) -> i32;
type FreeFn = unsafe extern "C" fn(*mut c_void);

/// The opened library and its three functions.
struct Library {
    create: CreateFn,
    decompress: DecompressFn,
    free: FreeFn,
    // Kept last and alive as long as any function pointer above may be called.
    _lib: libloading::Library,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("libwim")
    }
}

fn load() -> Result<Library, WimlibError> {
    let mut reasons = Vec::new();
    for name in LIBRARY_NAMES {
        // SAFETY: libwim's initialisers only set up its own tables (CPU
        // feature detection); loading it has no other side effect.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => return bind(lib),
            Err(e) => reasons.push(format!("{name}: {e}")),
        }
    }
    Err(WimlibError::LibraryMissing {
        package: DEBIAN_PACKAGE,
        reason: reasons.join("; "),
    })
}

fn bind(lib: libloading::Library) -> Result<Library, WimlibError> {
    fn sym<T: Copy>(lib: &libloading::Library, name: &'static str) -> Result<T, WimlibError> {
        let cname = format!("{name}\0");
        // SAFETY: the type T given at each call below is the C prototype of
        // that function in wimlib.h (size_t = usize, enum = int).
        match unsafe { lib.get::<T>(cname.as_bytes()) } {
            Ok(s) => Ok(*s),
            Err(e) => Err(WimlibError::SymbolMissing {
                symbol: name,
                reason: e.to_string(),
            }),
        }
    }
    Ok(Library {
        create: sym::<CreateFn>(&lib, "wimlib_create_decompressor")?,
        decompress: sym::<DecompressFn>(&lib, "wimlib_decompress")?,
        free: sym::<FreeFn>(&lib, "wimlib_free_decompressor")?,
        _lib: lib,
    })
}

fn library() -> Result<Arc<Library>, WimlibError> {
    static LIB: OnceLock<Result<Arc<Library>, WimlibError>> = OnceLock::new();
    LIB.get_or_init(|| load().map(Arc::new)).clone()
}

/// Whether libwim can be loaded (for diagnostics such as `capmedia doctor`).
pub fn available() -> Result<(), WimlibError> {
    library().map(|_| ())
}

/// One wimlib decompressor for one codec and maximum block size.
#[derive(Debug)]
pub struct Decompressor {
    lib: Arc<Library>,
    ptr: NonNull<c_void>,
    codec: Codec,
    max_block_size: usize,
}

// SAFETY: a wimlib decompressor is plain heap memory with no thread
// affinity; `decompress` takes `&mut self`, so it is never used by two
// threads at once. It is deliberately not `Sync`.
unsafe impl Send for Decompressor {}

impl Decompressor {
    /// Creates a decompressor for blocks of at most `max_block_size` bytes.
    pub fn new(codec: Codec, max_block_size: usize) -> Result<Self, WimlibError> {
        let lib = library()?;
        let mut raw: *mut c_void = std::ptr::null_mut();
        // SAFETY: `raw` is a valid out-pointer; wimlib validates ctype and
        // the block size and writes a pointer only on success.
        let code = unsafe { (lib.create)(codec.ctype(), max_block_size, &mut raw) };
        match NonNull::new(raw) {
            Some(ptr) if code == 0 => Ok(Decompressor {
                lib,
                ptr,
                codec,
                max_block_size,
            }),
            _ => Err(WimlibError::CreateFailed {
                codec: codec.name(),
                max_block_size,
                code,
            }),
        }
    }

    /// The codec.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The largest block this decompressor accepts.
    pub fn max_block_size(&self) -> usize {
        self.max_block_size
    }

    /// Decompresses `input` into exactly `output.len()` bytes.
    ///
    /// `input` must be shorter than `output`: a WIM stores a chunk that
    /// does not shrink raw, so such input is never compressed data, and
    /// wimlib's LZMS decoder faults (SIGBUS) on it for outputs of one or two
    /// bytes (found by fuzzing; wimlib itself never calls it so).
    pub fn decompress(&mut self, input: &[u8], output: &mut [u8]) -> Result<(), WimlibError> {
        if input.is_empty() || input.len() >= output.len() {
            return Err(WimlibError::Corrupt {
                codec: self.codec.name(),
                compressed: input.len(),
                uncompressed: output.len(),
            });
        }
        if output.len() > self.max_block_size {
            return Err(WimlibError::BlockTooLarge {
                size: output.len(),
                max: self.max_block_size,
            });
        }
        // SAFETY: both slices are valid for their lengths; wimlib reads at
        // most `input.len()` bytes and writes at most `output.len()` bytes
        // (it checks against the block size it was created with, checked
        // above too), and `self.ptr` is a live decompressor we own.
        let code = unsafe {
            (self.lib.decompress)(
                input.as_ptr().cast(),
                input.len(),
                output.as_mut_ptr().cast(),
                output.len(),
                self.ptr.as_ptr(),
            )
        };
        if code == 0 {
            Ok(())
        } else {
            Err(WimlibError::Corrupt {
                codec: self.codec.name(),
                compressed: input.len(),
                uncompressed: output.len(),
            })
        }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from wimlib_create_decompressor and is freed
        // exactly once, here.
        unsafe { (self.lib.free)(self.ptr.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        for codec in [Codec::Xpress, Codec::Lzx, Codec::Lzms] {
            let mut d = Decompressor::new(codec, 32768).unwrap();
            let mut out = vec![0u8; 32768];
            // All-0xFF is no valid Huffman table for any of the three codecs.
            assert!(d.decompress(&[0xFF; 100], &mut out).is_err());
            assert!(matches!(
                d.decompress(&[0; 10], &mut vec![0u8; 65536]),
                Err(WimlibError::BlockTooLarge { .. })
            ));
        }
    }

    #[test]
    fn input_not_shorter_than_output_is_refused() {
        // This input (4 bytes into 1) made libwim's LZMS decoder fault.
        let mut d = Decompressor::new(Codec::Lzms, 32768).unwrap();
        for out in 1..=4 {
            assert!(matches!(
                d.decompress(&[0xEC, 0, 0, 0], &mut vec![0u8; out]),
                Err(WimlibError::Corrupt { .. })
            ));
        }
        assert!(d.decompress(&[], &mut [0u8; 8]).is_err());
    }

    #[test]
    fn refuses_bad_block_sizes() {
        assert!(matches!(
            Decompressor::new(Codec::Xpress, 1 << 30),
            Err(WimlibError::CreateFailed { .. })
        ));
    }
}
