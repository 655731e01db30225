//! One convention for every long operation in capmedia, across crates and
//! across the plugin boundary (as gitoxide's plumbing takes a progress sink
//! and an interrupt flag): it takes a `&dyn Progress` to report to and a
//! `&dyn Cancel` to ask between chunks. A cancelled operation stops at the
//! next chunk, removes what it made, and returns its crate's "cancelled"
//! error.

use std::sync::atomic::{AtomicBool, Ordering};

/// Where an operation reports how far it is. `phase` names the work:
/// `fetch`, `hash`, `write`, `verify`.
///
/// `Sync` because operations report from worker threads.
pub trait Progress: Sync {
    fn update(&self, phase: &str, done: u64, total: u64);
    /// A line for the user (e.g. the device about to be written).
    fn message(&self, _text: &str) {}
}

/// Asked between chunks; `true` means stop.
pub trait Cancel: Sync {
    fn is_cancelled(&self) -> bool;
}

/// The interrupt flag a Ctrl-C handler sets.
impl Cancel for AtomicBool {
    fn is_cancelled(&self) -> bool {
        self.load(Ordering::SeqCst)
    }
}

/// A [`Progress`] that discards everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl Progress for NoProgress {
    fn update(&self, _: &str, _: u64, _: u64) {}
}

/// A [`Cancel`] that never cancels.
#[derive(Debug, Default, Clone, Copy)]
pub struct NeverCancel;
impl Cancel for NeverCancel {
    fn is_cancelled(&self) -> bool {
        false
    }
}
