//! The graph's input: the [`Feeder`] that stamps and queues messages on its callers' threads,
//! and the source operator that drains the queues inside each worker.
//!
//! The feeder owns the input frontier (the watermark): every message it queues has a time at
//! least the watermark's value when it is queued, and the watermark only grows. A worker reads
//! the watermark, then drains its queue, then downgrades its source capability to what it read.
//! A message queued concurrently with a frontier move can still arrive behind its worker's
//! capability; the source then stamps it up to the capability and counts it as late.
//!
//! The feeder is shared: connections push from many tasks at once ([`Feeder::push_async`]),
//! result publishers and offline runs from plain threads ([`Feeder::push`]). [`Feeder::close`]
//! ends the input: the workers drain what is queued, close every window and stop.

use super::item::Item;
use super::metrics::GraphMetrics;
use super::time::{decode, encode};
use crate::data::DataModel;
use crate::data::Message;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;
use tokio::sync::Notify;

/// What the feeder does when a worker's input queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackPressure {
    /// Wait for room (the publishers feeding the graph slow down; nothing is lost).
    #[default]
    Block,
    /// Drop the message and count it.
    Drop,
}

/// What happened to a message given to the feeder.
#[derive(Debug, PartialEq)]
pub enum Pushed {
    /// Queued at its own time.
    Queued,
    /// Queued, stamped up to the frontier because it was older.
    Late,
    /// Dropped: the queue was full and the policy is [`BackPressure::Drop`].
    Dropped,
    /// The graph's input is closed: the message is given back (for the graph's replacement,
    /// if any).
    Closed(Box<Message>),
}

/// State shared by the feeder and the workers' sources.
#[derive(Debug, Default)]
pub(super) struct InputState {
    /// The input frontier, as a dataflow time.
    watermark: AtomicU64,
    /// Set once by [`Feeder::close`].
    closed: AtomicBool,
    /// Pushes between their check of `closed` and their send.
    pushing: AtomicUsize,
    /// Async pushers waiting for room.
    waiting: AtomicUsize,
    /// Signalled by the workers when they took items while pushers wait.
    room: Notify,
}

/// Stamps messages and queues them for the graph's workers. One per graph, shared.
pub struct Feeder {
    queues: Vec<Sender<Item>>,
    activators: Vec<SyncActivator>,
    state: Arc<InputState>,
    next_seq: AtomicU64,
    policy: BackPressure,
    node_id: Arc<str>,
    metrics: Arc<GraphMetrics>,
}

impl Feeder {
    pub(super) fn new(
        queues: Vec<Sender<Item>>,
        activators: Vec<SyncActivator>,
        state: Arc<InputState>,
        policy: BackPressure,
        node_id: Arc<str>,
        metrics: Arc<GraphMetrics>,
    ) -> Feeder {
        Feeder {
            queues,
            activators,
            state,
            next_seq: AtomicU64::new(0),
            policy,
            node_id,
            metrics,
        }
    }

    /// The input frontier: messages older than this are late.
    pub fn frontier(&self) -> u64 {
        self.state.watermark.load(Ordering::Acquire)
    }

    /// The graph's back-pressure policy.
    pub fn policy(&self) -> BackPressure {
        self.policy
    }

    /// Queues `message` at its timestamp, or at the frontier if it is older (then its timestamp
    /// becomes the frontier's, and it is counted as late). With [`BackPressure::Block`] and a
    /// full queue, blocks the calling thread until there is room.
    pub fn push(&self, message: Message) -> Pushed {
        self.send(message, |queue, item| {
            queue.send(item).map_err(|e| Box::new(e.into_inner()))
        })
    }

    /// As [`Feeder::push`], but with [`BackPressure::Block`] and a full queue, waits for room
    /// without blocking the thread.
    pub async fn push_async(&self, message: Message) -> Pushed {
        let mut message = message;
        loop {
            match self.try_push(message) {
                Ok(pushed) => return pushed,
                Err(back) => message = *back,
            }
            self.state.waiting.fetch_add(1, Ordering::SeqCst);
            let room = self.state.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let outcome = self.try_push(message);
            match outcome {
                Ok(pushed) => {
                    self.state.waiting.fetch_sub(1, Ordering::SeqCst);
                    return pushed;
                }
                Err(back) => message = *back,
            }
            self.wake();
            room.await;
            self.state.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Queues `message` if there is room. With [`BackPressure::Block`] and a full queue, gives
    /// the message back (nothing is counted).
    pub fn try_push(&self, message: Message) -> Result<Pushed, Box<Message>> {
        let mut refused = None;
        let pushed = self.send(message, |queue, item| match queue.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item)) => {
                refused = Some(());
                Err(Box::new(item))
            }
            Err(TrySendError::Disconnected(item)) => Err(Box::new(item)),
        });
        match (refused, pushed) {
            (Some(()), Pushed::Closed(message)) => Err(message),
            (_, pushed) => Ok(pushed),
        }
    }

    /// Stamps `message`, then queues it with `blocking_send` (under [`BackPressure::Block`]).
    fn send(
        &self,
        mut message: Message,
        blocking_send: impl FnOnce(&Sender<Item>, Item) -> Result<(), Box<Item>>,
    ) -> Pushed {
        let state = &self.state;
        state.pushing.fetch_add(1, Ordering::SeqCst);
        let outcome = if state.closed.load(Ordering::SeqCst) {
            Pushed::Closed(Box::new(message))
        } else {
            let frontier = state.watermark.load(Ordering::Acquire);
            let mut time = encode(&message.timestamp);
            let late = time < frontier;
            if late {
                time = frontier;
                message.timestamp = decode(time, self.node_id.clone());
            }
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let worker = (seq % self.queues.len() as u64) as usize;
            let item = Item {
                seq,
                time,
                arm: false,
                data: DataModel::Message(message),
            };
            let queue = &self.queues[worker];
            let sent = match (self.policy, queue.try_send(item)) {
                (_, Ok(())) => Ok(()),
                (BackPressure::Drop, Err(TrySendError::Full(_))) => {
                    self.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                    state.pushing.fetch_sub(1, Ordering::SeqCst);
                    return Pushed::Dropped;
                }
                (BackPressure::Block, Err(TrySendError::Full(item))) => {
                    // Make sure the worker is awake to make room, then wait for it.
                    let _ = self.activators[worker].activate();
                    blocking_send(queue, item)
                }
                (_, Err(TrySendError::Disconnected(item))) => Err(Box::new(item)),
            };
            match sent {
                Ok(()) => {
                    self.metrics.received.fetch_add(1, Ordering::Relaxed);
                    if late {
                        self.metrics.late.fetch_add(1, Ordering::Relaxed);
                        Pushed::Late
                    } else {
                        Pushed::Queued
                    }
                }
                // The workers are gone, or (for `try_push`) the queue is full: the caller
                // tells the two apart.
                Err(item) => Pushed::Closed(Box::new(item.into_message())),
            }
        };
        if state.pushing.fetch_sub(1, Ordering::SeqCst) == 1 && state.closed.load(Ordering::SeqCst)
        {
            // A worker may be waiting for this push before it stops.
            self.wake();
        }
        outcome
    }

    /// Moves the frontier forward to `time` (never back) and wakes the workers. Windows that end
    /// before the frontier close.
    pub fn advance_to(&self, time: u64) {
        self.state.watermark.fetch_max(time, Ordering::AcqRel);
        self.wake();
    }

    /// Wakes the workers to process what was queued.
    pub fn wake(&self) {
        for activator in &self.activators {
            let _ = activator.activate();
        }
    }

    /// Ends the input: later pushes return [`Pushed::Closed`] with their message; the workers take what is queued,
    /// close every open window and stop.
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.state.room.notify_waiters();
        self.wake();
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.close();
    }
}

/// How many items a source hands on per activation before yielding to the rest of the dataflow.
const SOURCE_BATCH: usize = 1024;

/// The source operator of one worker: drains `queue` into the dataflow and holds the input
/// frontier at the watermark. Sends its activator on `activator` once built.
pub(super) fn source_stream<'scope>(
    scope: Scope<'scope, u64>,
    queue: Receiver<Item>,
    state: Arc<InputState>,
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
            let frontier = state.watermark.load(Ordering::Acquire);
            // Read before draining: a close seen here with no push in progress means the
            // drain below takes every item there will ever be.
            let ending =
                state.closed.load(Ordering::SeqCst) && state.pushing.load(Ordering::SeqCst) == 0;
            let mut handed = 0;
            let mut disconnected = false;
            loop {
                match queue.try_recv() {
                    Ok(mut item) => {
                        if item.time < *cap.time() {
                            item.time = *cap.time();
                            metrics.late.fetch_add(1, Ordering::Relaxed);
                        }
                        let at = cap.delayed(&item.time);
                        output.session(&at).give(item);
                        handed += 1;
                        if handed == SOURCE_BATCH {
                            again.activate();
                            break;
                        }
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if handed > 0 && state.waiting.load(Ordering::SeqCst) > 0 {
                state.room.notify_waiters();
            }
            if handed == SOURCE_BATCH {
                return;
            }
            if disconnected || ending {
                capability = None;
                return;
            }
            if frontier > *cap.time() {
                cap.downgrade(&frontier);
            }
        }
    })
}
