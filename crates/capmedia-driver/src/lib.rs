//! The capture pipeline, as a library: everything `capmedia capture` does
//! between parsing its arguments and printing its report.
//!
//! Named stages with a type between each (see [`capture`]):
//! [`resolve`] (the output judged: file or drive; the package on the DP) →
//! [`Resolved::validate`] (architecture, from the WIM and the PE loaders) →
//! [`Validated::plan`] (the medium's tree, §4 of the product notes) →
//! [`Planned::check`] (the sink's refusals) → [`Checked::fetch`] (verified,
//! cached; a drive must be confirmed first) → [`Fetched::write`] (the
//! sink's commit) → [`Written::verify`] → report. A cancel is honoured at
//! every boundary up to the commit.
//!
//! Every step that can refuse runs before the sink writes its first byte:
//! the DP is resolved and its content checked present, the architecture is
//! read from the WIM by range reads, and the sink checks a plan with every
//! size known, all before any content is fetched in full.

mod bootlist;
pub mod bootwim;
mod dpinfo;
mod layout;
mod pipeline;
mod stream;

pub use bootlist::{boot_image_summaries, BootImageListing};
pub use bootwim::{BootImageContents, BootWimError, DriverSummary, SmsTree, UefiCa, WimBootFile};
pub use capmedia_device::{DeviceTarget, Output, SystemPaths};
pub use dpinfo::{boot_image_summary, package_boot_image, BootImageSummary};
pub use layout::{check_label, BootFiles, LayoutError};
pub use pipeline::{
    capture, default_cache_dir, resolve, BootImageInfo, CaptureError, CaptureReport,
    CaptureRequest, Checked, DriverReport, Events, Fetched, OutputReport, Planned, PlannedFile,
    Resolved, Timings, Validated, Written,
};
