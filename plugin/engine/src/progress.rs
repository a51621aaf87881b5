//! What one input's dataflow tells whoever feeds it, and is told by it: how far the input has
//! settled, whether it holds anything only time releases, and whether it was abandoned.

use crate::StatusHook;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// One input's progress, shared by its dataflow's sink and accumulates and its feeder's owner.
#[derive(Default)]
pub(crate) struct Progress {
    /// The entry position before which every input is fully processed.
    settled: AtomicU64,
    /// Set when the input's open windows and held results are to be dropped, not emitted.
    abandoned: AtomicBool,
    /// Operators holding items that only the frontier moving releases (open windows, results
    /// waiting for their time).
    holding: AtomicUsize,
    /// Called when the first operator starts holding: whoever moves the frontier should tick.
    on_hold: OnceLock<StatusHook>,
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

    /// Whether some operator holds items that only the frontier moving releases.
    pub(crate) fn is_holding(&self) -> bool {
        self.holding.load(Ordering::SeqCst) > 0
    }

    /// Calls `hook` each time an operator starts holding while none did (set once).
    pub(crate) fn on_hold(&self, hook: StatusHook) {
        let _ = self.on_hold.set(hook);
    }
}

/// One operator's part in [`Progress::is_holding`]: set after each activation, released when
/// the operator is dropped.
pub(crate) struct Hold {
    progress: Arc<Progress>,
    holding: bool,
}

impl Hold {
    pub(crate) fn new(progress: Arc<Progress>) -> Hold {
        Hold {
            progress,
            holding: false,
        }
    }

    /// Says whether the operator holds items now (only a change touches the shared count).
    pub(crate) fn set(&mut self, holding: bool) {
        if holding == self.holding {
            return;
        }
        self.holding = holding;
        if holding {
            if self.progress.holding.fetch_add(1, Ordering::SeqCst) == 0 {
                if let Some(hook) = self.progress.on_hold.get() {
                    hook.call();
                }
            }
        } else {
            self.progress.holding.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.set(false);
    }
}
