//! The capmedia sink SDK.
//!
//! A sink implements the safe [`MediaSink`] trait and exports it with
//! [`export_sink!`]; the host loads it with [`host::PluginRegistry`] (feature
//! `host`). Between the two lies a small C ABI ([`abi`]): one exported symbol
//! returning a `#[repr(C)]` vtable, JSON for every value, plain status codes.
//!
//! This crate is the only one in capmedia that holds `unsafe` code, all of it
//! at the plugin boundary.

#[allow(unsafe_code)]
pub mod abi;
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod export;
#[cfg(feature = "host")]
#[allow(unsafe_code)]
pub mod host;
pub mod output;
mod types;

pub use capmedia_content as content;
pub use capmedia_manifest as manifest;
pub use types::*;
