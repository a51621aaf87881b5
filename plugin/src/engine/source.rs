//! The source operator of each worker: drains the worker's input queue into the dataflow and
//! holds the worker's input frontier at the watermark the [`super::Feeder`] moves.
//!
//! With the queue emptied, the frontier moves to the watermark read before draining. Under a
//! backlog the queue is never empty, so the source moves it by checkpoints (see
//! [`super::input::Lane`]): results leave the graph one queue's length behind its input, not
//! once the backlog is gone.

use super::input::{InputState, Lane};
use super::item::Item;
use super::metrics::GraphMetrics;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

/// How many items a source hands on per activation before yielding to the rest of the dataflow.
const SOURCE_BATCH: usize = 1024;

/// Where a source is in moving its frontier under a backlog.
#[derive(Debug, Clone, Copy)]
enum Checkpoint {
    /// None under way.
    Idle,
    /// Waiting for the pushes counted in epoch `old` to finish.
    Flipped { watermark: u64, old: usize },
    /// `left` more items to drain before the frontier moves to `watermark`.
    Draining { watermark: u64, left: usize },
}

impl Checkpoint {
    /// Moves on once the old epoch's pushes are done: the items they queued are among those
    /// now in `queue`.
    fn settle(self, lane: &Lane, queue: &Receiver<Item>) -> Checkpoint {
        match self {
            Checkpoint::Flipped { watermark, old } if lane.settled(old) => Checkpoint::Draining {
                watermark,
                left: queue.len(),
            },
            other => other,
        }
    }

    /// One item was drained; returns the watermark to move the frontier to once the last item
    /// of the checkpoint is.
    fn drained(&mut self) -> Option<u64> {
        if let Checkpoint::Draining { left, .. } = self {
            *left = left.saturating_sub(1);
        }
        self.reached()
    }

    /// The watermark to move to, when every item of the checkpoint was drained.
    fn reached(&mut self) -> Option<u64> {
        match *self {
            Checkpoint::Draining { watermark, left: 0 } => {
                *self = Checkpoint::Idle;
                Some(watermark)
            }
            _ => None,
        }
    }
}

/// The source operator of worker `worker`: drains `queue` into the dataflow. Sends its activator
/// on `activator` once built.
pub(super) fn source_stream<'scope>(
    scope: Scope<'scope, u64>,
    queue: Receiver<Item>,
    state: Arc<InputState>,
    activator: Sender<SyncActivator>,
    metrics: Arc<GraphMetrics>,
) -> StreamVec<'scope, u64, Item> {
    let worker = scope.worker();
    let index = worker.index();
    source(scope, "source", move |capability, info| {
        let _ = activator.send(worker.sync_activator_for(info.address.to_vec()));
        let again = worker.activator_for(info.address.clone());
        let mut capability = Some(capability);
        let mut checkpoint = Checkpoint::Idle;
        move |output| {
            let Some(cap) = capability.as_mut() else {
                return;
            };
            let lane = &state.lanes[index];
            let frontier = state.watermark.load(Ordering::SeqCst);
            // Read before draining: a close seen here with no push in progress means the
            // drain below takes every item there will ever be.
            let ending =
                state.closed.load(Ordering::SeqCst) && state.pushing.load(Ordering::SeqCst) == 0;
            checkpoint = checkpoint.settle(lane, &queue);
            let mut reached = checkpoint.reached();
            let mut handed = 0;
            let mut disconnected = false;
            while handed < SOURCE_BATCH {
                match queue.try_recv() {
                    Ok(mut item) => {
                        if item.time < *cap.time() {
                            item.time = *cap.time();
                            metrics.late.fetch_add(1, Ordering::Relaxed);
                        }
                        let at = cap.delayed(&item.time);
                        output.session(&at).give(item);
                        handed += 1;
                        reached = reached.or(checkpoint.drained());
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if handed > 0 && state.waiting.load(Ordering::SeqCst) > 0 {
                state.room.notify_waiters();
            }
            if handed == SOURCE_BATCH {
                // A backlog: move the frontier as far as a checkpoint allows, and take one if
                // none is under way.
                if let Some(watermark) = reached.filter(|w| w > cap.time()) {
                    cap.downgrade(&watermark);
                }
                if let Checkpoint::Idle = checkpoint {
                    let watermark = state.watermark.load(Ordering::SeqCst);
                    let old = lane.flip();
                    checkpoint = Checkpoint::Flipped { watermark, old };
                }
                again.activate();
                return;
            }
            if disconnected || ending {
                capability = None;
                return;
            }
            checkpoint = Checkpoint::Idle;
            if frontier > *cap.time() {
                cap.downgrade(&frontier);
            }
            // Sleep, unless something arrived or the watermark moved meanwhile.
            lane.asleep.store(true, Ordering::SeqCst);
            if !queue.is_empty() || state.watermark.load(Ordering::SeqCst) != frontier {
                lane.asleep.store(false, Ordering::SeqCst);
                again.activate();
            }
        }
    })
}
