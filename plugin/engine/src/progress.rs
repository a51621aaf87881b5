//! What one input's dataflow tells whoever feeds it, and is told by it: how far the input has
//! settled, and whether it was abandoned.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One input's progress, shared by its dataflow's sink and accumulates and its feeder's owner.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// The entry position before which every input is fully processed.
    settled: AtomicU64,
    /// Set when the input's open windows and held results are to be dropped, not emitted.
    abandoned: AtomicBool,
}

impl Progress {
    /// Every input before entry position `position` is fully processed (never moves back).
    pub(crate) fn settle(&self, position: u64) {
        self.settled.fetch_max(position, Ordering::AcqRel);
    }

    /// The entry position before which every input is fully processed.
    pub(crate) fn settled(&self) -> u64 {
        self.settled.load(Ordering::Acquire)
    }

    /// From now on, open windows and held results are dropped.
    pub(crate) fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
    }

    /// Whether [`Progress::abandon`] was called.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }
}
