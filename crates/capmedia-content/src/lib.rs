//! The content model shared by every capmedia crate.
//!
//! Plain data with validation at construction: package and content ids, package
//! kinds, architectures, media paths, media capacities and the [`MediaPlan`] that
//! the driver hands to a sink. Nothing here does I/O except [`PlanBuilder`], which
//! stats and hashes the local files it is given.

mod arch;
mod capacity;
mod hash;
mod ids;
mod media_path;
mod plan;
pub mod progress;
pub mod stream;

pub use arch::{Arch, ArchParseError};
pub use capacity::{Capacity, CapacityParseError};
pub use hash::blake3_stream;
pub use ids::{ContentId, IdError, PackageId, PackageKind};
pub use media_path::{MediaPath, MediaPathError};
pub use plan::{
    walk_tree, BootFile, BootSpec, EntryRole, EntrySource, MediaPlan, PlanBuilder, PlanEntry,
    PlanError, TreeFile, Volume, MANIFEST_PATH,
};
pub use progress::{Cancel, NeverCancel, NoProgress, Progress};
