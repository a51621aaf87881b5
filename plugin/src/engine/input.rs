//! The graph's input: the [`Feeder`] that stamps and queues messages on the caller's thread,
//! and the source operator that drains the queues inside each worker.
//!
//! The feeder owns the input frontier (the watermark): every message it queues has a time at
//! least the watermark's value when it is queued, and the watermark only grows. A worker reads
//! the watermark, then drains its queue, then downgrades its source capability to what it read,
//! so no queued message is ever behind its worker's capability.

use super::item::Item;
use super::metrics::GraphMetrics;
use super::time::{decode, encode};
use crate::data::DataModel;
use crate::data::Message;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;

/// What the feeder does when a worker's input queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackPressure {
    /// Wait for room (the MQTT side slows down; nothing is lost).
    #[default]
    Block,
    /// Drop the message and count it.
    Drop,
}

/// What happened to a message given to [`Feeder::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued at its own time.
    Queued,
    /// Queued, stamped up to the frontier because it was older.
    Late,
    /// Dropped: the queue was full and the policy is [`BackPressure::Drop`].
    Dropped,
    /// The graph has stopped.
    Closed,
}

/// Stamps messages and queues them for the graph's workers. One per graph, on one thread.
pub struct Feeder {
    queues: Vec<Sender<Item>>,
    activators: Vec<SyncActivator>,
    watermark: Arc<AtomicU64>,
    frontier: u64,
    next_seq: u64,
    policy: BackPressure,
    node_id: Arc<str>,
    metrics: Arc<GraphMetrics>,
}

impl Feeder {
    pub(super) fn new(
        queues: Vec<Sender<Item>>,
        activators: Vec<SyncActivator>,
        watermark: Arc<AtomicU64>,
        policy: BackPressure,
        node_id: Arc<str>,
        metrics: Arc<GraphMetrics>,
    ) -> Feeder {
        Feeder {
            queues,
            activators,
            frontier: watermark.load(Ordering::Acquire),
            watermark,
            next_seq: 0,
            policy,
            node_id,
            metrics,
        }
    }

    /// The input frontier: messages older than this are late.
    pub fn frontier(&self) -> u64 {
        self.frontier
    }

    /// Queues `message` at its timestamp, or at the frontier if it is older (then its timestamp
    /// becomes the frontier's, and it is counted as late).
    pub fn push(&mut self, mut message: Message) -> Pushed {
        let mut time = encode(&message.timestamp);
        let late = time < self.frontier;
        if late {
            time = self.frontier;
            message.timestamp = decode(time, self.node_id.clone());
        }
        let seq = self.next_seq;
        let item = Item {
            seq,
            time,
            arm: false,
            data: DataModel::Message(message),
        };
        let worker = (seq % self.queues.len() as u64) as usize;
        let sent = match self.policy {
            BackPressure::Drop => match self.queues[worker].try_send(item) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => {
                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    return Pushed::Dropped;
                }
                Err(TrySendError::Disconnected(_)) => Err(()),
            },
            BackPressure::Block => match self.queues[worker].try_send(item) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(item)) => {
                    // Make sure the worker is awake to make room, then wait for it.
                    let _ = self.activators[worker].activate();
                    self.queues[worker].send(item).map_err(drop)
                }
                Err(TrySendError::Disconnected(_)) => Err(()),
            },
        };
        if sent.is_err() {
            return Pushed::Closed;
        }
        self.next_seq += 1;
        self.metrics.received.fetch_add(1, Ordering::Relaxed);
        if late {
            self.metrics.late.fetch_add(1, Ordering::Relaxed);
            Pushed::Late
        } else {
            Pushed::Queued
        }
    }

    /// Moves the frontier forward to `time` (never back) and wakes the workers. Windows that end
    /// before the frontier close.
    pub fn advance_to(&mut self, time: u64) {
        if time > self.frontier {
            self.frontier = time;
            self.watermark.store(time, Ordering::Release);
        }
        self.wake();
    }

    /// Wakes the workers to process what was queued.
    pub fn wake(&self) {
        for activator in &self.activators {
            let _ = activator.activate();
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        // The queues disconnect when `queues` drops; the workers must notice it.
        self.queues.clear();
        self.wake();
    }
}

/// How many items a source hands on per activation before yielding to the rest of the dataflow.
const SOURCE_BATCH: usize = 1024;

/// The source operator of one worker: drains `queue` into the dataflow and holds the input
/// frontier at the watermark. Sends its activator on `activator` once built.
pub(super) fn source_stream<'scope>(
    scope: Scope<'scope, u64>,
    queue: Receiver<Item>,
    watermark: Arc<AtomicU64>,
    activator: Sender<SyncActivator>,
    metrics: Arc<GraphMetrics>,
) -> StreamVec<'scope, u64, Item> {
    let worker = scope.worker();
    source(scope, "source", move |capability, info| {
        let _ = activator.send(worker.sync_activator_for(info.address.to_vec()));
        let again = worker.activator_for(info.address.clone());
        let mut capability = Some(capability);
        move |output| {
            let Some(cap) = capability.as_mut() else {
                return;
            };
            let frontier = watermark.load(Ordering::Acquire);
            let mut handed = 0;
            loop {
                match queue.try_recv() {
                    Ok(mut item) => {
                        if item.time < *cap.time() {
                            // Not reachable through `Feeder`, which never queues behind the
                            // watermark; kept so that a time is never given below the capability.
                            item.time = *cap.time();
                            metrics.late.fetch_add(1, Ordering::Relaxed);
                        }
                        let at = cap.delayed(&item.time);
                        output.session(&at).give(item);
                        handed += 1;
                        if handed == SOURCE_BATCH {
                            again.activate();
                            return;
                        }
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        capability = None;
                        return;
                    }
                }
            }
            if frontier > *cap.time() {
                cap.downgrade(&frontier);
            }
        }
    })
}
