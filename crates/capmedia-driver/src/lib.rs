//! The capture pipeline, as a library: everything `capmedia capture` does
//! between parsing its arguments and printing its report.
//!
//! resolve (DP) → validate (architecture, from the WIM and the PE loaders) →
//! lay out (the medium's tree, §4 of the product notes) → sink `check` →
//! fetch (verified, cached) → sink `write` → verify → report.
//!
//! Every step that can refuse runs before the sink writes its first byte:
//! the DP is resolved and its content checked present, the architecture is
//! read from the WIM by range reads, and the sink checks a plan with every
//! size known, all before any content is fetched in full.

mod layout;
mod pipeline;

pub use layout::{BootFiles, LayoutError};
pub use pipeline::{
    capture, default_cache_dir, BootImageInfo, CaptureError, CaptureReport, CaptureRequest, Events,
    OutputReport, PlannedFile, Timings,
};
