//! The source operator of each worker: drains the worker's input queue into the dataflow and
//! holds the worker's input frontier at the watermark the [`super::Feeder`] moves.
//!
//! With the queue emptied, the frontier moves to the watermark read before draining. Under a
//! backlog the queue is never empty, so the source moves it by the checkpoints the pushers take
//! (see [`super::input::Lane`]): results leave the graph a few dozen items behind its input,
//! about once a turn, not once the backlog is gone. A turn (a batch taken through every
//! operator) is kept near [`TURN`] by halving or doubling the batch, so a slow module's results
//! leave in small steps too.

use super::input::InputState;
use super::item::{DataflowTime, Item};
use super::metrics::GraphMetrics;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

/// The most items a source hands on per activation before yielding to the rest of the dataflow.
const MAX_BATCH: usize = 1024;

/// The batch a source starts with: small, so that a slow module's first results do not wait
/// for a large first batch.
const FIRST_BATCH: usize = 16;

/// How long one turn of the dataflow (a batch taken through every operator) should last under
/// a backlog: a slow module gets smaller batches, so its results leave in steps of this length.
const TURN: Duration = Duration::from_millis(10);

/// The checkpoints a source waits on to move its frontier under a backlog (taken by the
/// pushers, see [`super::input::Lane`]).
#[derive(Debug)]
struct Checkpoints {
    /// Settled checkpoints, oldest first: each watermark and the count of drained items at
    /// which every item stamped below it has been drained.
    draining: VecDeque<(u64, u64)>,
    /// Items this source has drained.
    drained: u64,
}

impl Checkpoints {
    fn new() -> Checkpoints {
        Checkpoints {
            draining: VecDeque::with_capacity(64),
            drained: 0,
        }
    }

    /// The highest watermark whose items have all been drained, if any was not yet returned.
    fn reached(&mut self) -> Option<u64> {
        let mut reached = None;
        while let Some(&(watermark, at)) = self.draining.front() {
            if at > self.drained {
                break;
            }
            self.draining.pop_front();
            reached = Some(watermark);
        }
        reached
    }
}

/// The size of a source's batches under a backlog, fitted so that a turn lasts about [`TURN`].
#[derive(Debug)]
struct Pace {
    batch: usize,
    /// When the last turn that ended with a full batch handed it on.
    handed_at: Option<Instant>,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            batch: FIRST_BATCH,
            handed_at: None,
        }
    }

    /// At the start of an activation: halves the batch when the last full batch took the rest
    /// of the dataflow longer than a turn, doubles it when it took less than a quarter.
    fn start(&mut self) -> usize {
        if let Some(handed_at) = self.handed_at.take() {
            let turn = handed_at.elapsed();
            if turn > TURN {
                self.batch = (self.batch / 2).max(1);
            } else if turn < TURN / 4 {
                self.batch = (self.batch * 2).min(MAX_BATCH);
            }
        }
        self.batch
    }

    /// A full batch was handed on (a backlog).
    fn full(&mut self) {
        self.handed_at = Some(Instant::now());
    }
}

/// The source operator of worker `worker`: drains `queue` into the dataflow. Sends its activator,
/// with the worker's index, on `activator` once built.
///
/// With times that carry entry positions, an item enters at its input position (its `seq`) and
/// the source's capability follows the next position it can take. The feeder deals positions
/// to the workers in turn (worker `i` of `n` takes `i`, `i + n`, ...), and a partitioned input
/// has one pusher, so a worker's positions arrive in order: after position `p` the next it can
/// take is `p + n`. One that arrives below the capability (a second pusher overtaking) enters
/// at the capability's position instead.
pub(super) fn source_stream<'scope, T: DataflowTime>(
    scope: Scope<'scope, T>,
    queue: Receiver<Item>,
    state: Arc<InputState>,
    activator: Sender<(usize, SyncActivator)>,
    metrics: Arc<GraphMetrics>,
) -> StreamVec<'scope, T, Item<T>> {
    let worker = scope.worker();
    let index = worker.index();
    let peers = worker.peers() as u64;
    source(scope, "source", move |capability, info| {
        let _ = activator.send((index, worker.sync_activator_for(info.address.to_vec())));
        let again = worker.activator_for(info.address.clone());
        let mut capability = Some(capability);
        let mut checkpoints = Checkpoints::new();
        let mut pace = Pace::new();
        // The least position this worker can still take.
        let mut next_entry = index as u64;
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
            lane.take_settled(&mut checkpoints.draining);
            let batch = pace.start();
            let mut handed = 0;
            let mut disconnected = false;
            while handed < batch {
                match queue.try_recv() {
                    Ok(item) => {
                        let held = *cap.time();
                        let mut event = item.time;
                        if event < held.event() {
                            event = held.event();
                            metrics.late.fetch_add(1, Ordering::Relaxed);
                        }
                        let time = T::at(event, item.seq.max(held.entry()));
                        let at = cap.delayed(&time);
                        output.session(&at).give(item.at(time));
                        next_entry = next_entry.max(time.entry().saturating_add(peers));
                        handed += 1;
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            checkpoints.drained += handed as u64;
            let reached = checkpoints.reached();
            if handed > 0 && state.waiting.load(Ordering::SeqCst) > 0 {
                state.room.notify_waiters();
            }
            if handed == batch {
                // A backlog: move the frontier as far as the checkpoints allow.
                let watermark = reached.unwrap_or(0).max(cap.time().event());
                downgrade(cap, T::at(watermark, next_entry));
                pace.full();
                again.activate();
                return;
            }
            if disconnected || ending {
                capability = None;
                return;
            }
            downgrade(cap, T::at(frontier.max(cap.time().event()), next_entry));
            // Sleep, unless something arrived or the watermark moved meanwhile.
            lane.asleep.store(true, Ordering::SeqCst);
            if !queue.is_empty() || state.watermark.load(Ordering::SeqCst) != frontier {
                lane.asleep.store(false, Ordering::SeqCst);
                again.activate();
            }
        }
    })
}

/// Moves `cap` to `time` when that is later (never back).
fn downgrade<T: DataflowTime>(cap: &mut timely::dataflow::operators::Capability<T>, time: T) {
    if time != *cap.time() && cap.time().less_equal(&time) {
        cap.downgrade(&time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_reached_once_its_items_are_drained() {
        let mut checkpoints = Checkpoints::new();
        checkpoints.draining.extend([(10, 3), (20, 4), (30, 9)]);
        checkpoints.drained = 2;
        assert_eq!(checkpoints.reached(), None);
        checkpoints.drained = 4;
        assert_eq!(checkpoints.reached(), Some(20));
        assert_eq!(checkpoints.reached(), None);
        checkpoints.drained = 9;
        assert_eq!(checkpoints.reached(), Some(30));
    }

    #[test]
    fn a_turn_longer_than_the_goal_halves_the_batch_down_to_one() {
        let mut pace = Pace::new();
        assert_eq!(pace.start(), FIRST_BATCH);
        for expected in [FIRST_BATCH / 2, FIRST_BATCH / 4] {
            pace.handed_at = Some(Instant::now() - 2 * TURN);
            assert_eq!(pace.start(), expected);
        }
        for _ in 0..20 {
            pace.handed_at = Some(Instant::now() - 2 * TURN);
            pace.start();
        }
        assert_eq!(pace.start(), 1);
    }
}
