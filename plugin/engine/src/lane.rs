//! A worker's [`Lane`]: what the feeder's pushers and one worker's source share about the
//! worker's queue, lock-free: checkpoints that let the source move its frontier while its
//! queue never empties, and whether the source sleeps.
//!
//! Its atomics and lock come from [`super::sync`]: std's in Weir, loom's in the model-checked
//! test (`plugin/engine/tests/lane_model.rs`), which compiles this file against them.

use super::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use super::sync::Mutex;
use super::time::COUNTER_BITS;
use std::collections::VecDeque;

/// Pushes into a lane between two checkpoints, at most.
pub(super) const CHECKPOINT_EVERY: u64 = 32;

/// Watermark progress between two checkpoints, at most (5 ms).
pub(super) const CHECKPOINT_SPAN: u64 = 5 << COUNTER_BITS;

/// Settled checkpoints a lane keeps for its source, at most.
const MAX_SETTLED: usize = 1024;

/// `Lane::flipping` when no checkpoint is under way.
const IDLE: usize = 0;
/// `Lane::flipping` while one pusher takes or settles a checkpoint.
const BUSY: usize = 3;

/// What the feeder and one worker's source share about the worker's queue.
///
/// **Checkpoints.** A source whose queue never empties cannot move its frontier to the
/// watermark: an item stamped against an older watermark may still be queued behind. So the
/// pushers take checkpoints, every [`CHECKPOINT_EVERY`] items and every 5 ms of watermark
/// progress: one reads the watermark `w` and flips `epoch`; once the pushes counted in the old
/// epoch are done (the last one out notices), the count of items sent `n`, plus the pushes of
/// the new epoch under way, bounds the place in the queue of every item stamped below `w`
/// (a push counts itself before it reads the watermark and checks the epoch again after).
/// The source moves its frontier to `w` once it has drained that many items: results leave
/// while the queue is still full, a few dozen items behind the input rather than a queue's
/// length.
///
/// **Sleep.** A source that found its queue empty and the watermark unchanged sets `asleep`
/// and looks once more; a pusher or a frontier move wakes it only when `asleep` was set, so a
/// busy worker is not woken per message.
#[derive(Debug, Default)]
pub(super) struct Lane {
    /// The epoch new pushes count themselves in (0 or 1).
    pub(super) epoch: AtomicUsize,
    /// Pushes in progress, by epoch: from before their read of the watermark to their send.
    pub(super) pushing: [AtomicUsize; 2],
    /// The source sleeps until woken.
    pub(super) asleep: AtomicBool,
    /// Items sent into the queue.
    sent: AtomicU64,
    /// The watermark from which a checkpoint is due.
    due: AtomicU64,
    /// [`IDLE`], [`BUSY`], or 1 + the old epoch of a checkpoint waiting for its pushes.
    flipping: AtomicUsize,
    /// The watermark of the checkpoint waiting for its pushes.
    flipped_at: AtomicU64,
    /// Settled checkpoints for the source, oldest first: (watermark, items sent).
    settled: Mutex<Vec<(u64, u64)>>,
    /// Whether `settled` holds any.
    has_settled: AtomicBool,
}

impl Lane {
    /// Counts a push in the current epoch; returns the epoch to pass to [`Lane::pushed`].
    pub(super) fn pushing(&self) -> usize {
        loop {
            let epoch = self.epoch.load(Ordering::SeqCst);
            self.pushing[epoch].fetch_add(1, Ordering::SeqCst);
            if self.epoch.load(Ordering::SeqCst) == epoch {
                return epoch;
            }
            self.pushed(epoch);
        }
    }

    /// The push counted in `epoch` is done (after [`Lane::sent_one`] if it queued its item).
    pub(super) fn pushed(&self, epoch: usize) {
        if self.pushing[epoch].fetch_sub(1, Ordering::SeqCst) == 1
            && self.flipping.load(Ordering::SeqCst) == epoch + 1
        {
            self.settle(epoch);
        }
    }

    /// The push counted in an epoch queued its item; returns the items sent so far.
    pub(super) fn sent_one(&self) -> u64 {
        self.sent.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Takes a checkpoint at the current watermark if one is due (after `sent` items, or with
    /// the watermark at `frontier`) and none is under way.
    pub(super) fn checkpoint_if_due(&self, sent: u64, frontier: u64, watermark: &AtomicU64) {
        let due =
            sent.is_multiple_of(CHECKPOINT_EVERY) || frontier >= self.due.load(Ordering::Relaxed);
        if !due
            || self
                .flipping
                .compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        let at = watermark.load(Ordering::SeqCst);
        let old = self.epoch.load(Ordering::SeqCst);
        self.flipped_at.store(at, Ordering::SeqCst);
        self.epoch.store(1 - old, Ordering::SeqCst);
        self.due
            .store(at.saturating_add(CHECKPOINT_SPAN), Ordering::Relaxed);
        self.flipping.store(old + 1, Ordering::SeqCst);
        if self.pushing[old].load(Ordering::SeqCst) == 0 {
            self.settle(old);
        }
    }

    /// The pushes counted in `old` are done: hands the checkpoint to the source, with the
    /// place in the queue every item stamped below its watermark is at or before.
    fn settle(&self, old: usize) {
        if self
            .flipping
            .compare_exchange(old + 1, BUSY, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        // The pushes under way first, then the items sent: a push of the new epoch that
        // queued its item is then counted in one or the other (in both at worst, which only
        // loosens the bound). Read the other way round, one that counted itself sent and
        // done between the two reads was missed, and an old item queued behind it was placed
        // beyond the checkpoint (found by tests/lane_model.rs).
        let under_way = self.pushing[1 - old].load(Ordering::SeqCst) as u64;
        let within = under_way + self.sent.load(Ordering::SeqCst);
        let at = self.flipped_at.load(Ordering::SeqCst);
        if let Ok(mut settled) = self.settled.lock() {
            // A source that stopped taking them leaves at most this many behind.
            if settled.len() < MAX_SETTLED {
                settled.push((at, within));
                self.has_settled.store(true, Ordering::SeqCst);
            }
        }
        self.flipping.store(IDLE, Ordering::SeqCst);
    }

    /// Moves the settled checkpoints into `into`, oldest first.
    pub(super) fn take_settled(&self, into: &mut VecDeque<(u64, u64)>) {
        // One load per activation when there is nothing (a source may run once per message).
        if !self.has_settled.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(mut settled) = self.settled.lock() {
            self.has_settled.store(false, Ordering::SeqCst);
            into.extend(settled.drain(..));
        }
    }
}
