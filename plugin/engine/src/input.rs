//! The graph's input: the [`Feeder`] that stamps and queues messages on its callers' threads
//! for the workers' sources ([`super::source`]).
//!
//! The feeder owns the input frontier (the watermark): every message it queues has a time at
//! least the watermark's value when it is queued, and the watermark only grows. Each worker has
//! a [`Lane`](super::lane::Lane): its queue's bookkeeping, which lets its source move its frontier while the queue
//! is never empty (a backlog), and lets pushers wake a worker only when it sleeps.
//!
//! The feeder is shared: connections push from many tasks at once ([`Feeder::push_async`]),
//! result publishers and offline runs from plain threads ([`Feeder::push`]). [`Feeder::close`]
//! ends the input: the workers drain what is queued, close every window and stop.

use super::item::Item;
use super::lane::Lane;
use super::metrics::GraphMetrics;
use super::progress::Progress;
use super::time::{decode, encode};
use super::StatusHook;
use crossbeam_channel::{Sender, TrySendError};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use timely::scheduling::SyncActivator;
use tokio::sync::Notify;
use weir_model::data::DataModel;
use weir_model::data::Message;

pub use weir_graph::options::BackPressure;

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
#[derive(Debug)]
pub(super) struct InputState {
    /// The input frontier, as a dataflow time.
    pub(super) watermark: AtomicU64,
    /// Set once by [`Feeder::close`].
    pub(super) closed: AtomicBool,
    /// Pushes between their check of `closed` and their send.
    pub(super) pushing: AtomicUsize,
    /// Async pushers waiting for room.
    pub(super) waiting: AtomicUsize,
    /// Signalled by the workers when they took items while pushers wait.
    pub(super) room: Notify,
    /// One per worker, by worker index.
    pub(super) lanes: Vec<Lane>,
}

impl InputState {
    /// The state of an input feeding `workers` workers.
    pub(super) fn new(workers: usize) -> InputState {
        InputState {
            watermark: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            pushing: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
            lanes: (0..workers).map(|_| Lane::default()).collect(),
        }
    }
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
    progress: Arc<Progress>,
}

impl Feeder {
    pub(super) fn new(
        queues: Vec<Sender<Item>>,
        activators: Vec<SyncActivator>,
        state: Arc<InputState>,
        policy: BackPressure,
        node_id: Arc<str>,
        metrics: Arc<GraphMetrics>,
        progress: Arc<Progress>,
    ) -> Feeder {
        Feeder {
            queues,
            activators,
            state,
            next_seq: AtomicU64::new(0),
            policy,
            node_id,
            metrics,
            progress,
        }
    }

    /// Whether the graph holds items that only the frontier moving releases (an open window,
    /// a result waiting for its time): while it does, whoever moves the frontier with the clock
    /// should keep doing so; when it does not, there is nothing to tick for.
    pub fn is_holding(&self) -> bool {
        self.progress.is_holding()
    }

    /// Calls `hook` whenever the graph starts holding items while it held none (set once):
    /// a clock that stopped ticking because [`Feeder::is_holding`] said no starts again.
    pub fn on_hold(&self, hook: StatusHook) {
        self.progress.on_hold(hook);
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
    /// full queue, blocks the calling thread until there is room. A sleeping worker takes it
    /// once woken: follow pushes with [`Feeder::advance_to`] (or [`Feeder::wake`]).
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
            self.wake_all();
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
            let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
            let worker = (seq % self.queues.len() as u64) as usize;
            let lane = &state.lanes[worker];
            let epoch = lane.pushing();
            let frontier = state.watermark.load(Ordering::SeqCst);
            let mut time = encode(&message.timestamp);
            let late = time < frontier;
            if late {
                time = frontier;
                message.timestamp = decode(time, self.node_id.clone());
            }
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
                    lane.pushed(epoch);
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
                    let sent = lane.sent_one();
                    lane.pushed(epoch);
                    lane.checkpoint_if_due(sent, frontier, &state.watermark);
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
                Err(item) => {
                    lane.pushed(epoch);
                    Pushed::Closed(Box::new(item.into_message()))
                }
            }
        };
        if state.pushing.fetch_sub(1, Ordering::SeqCst) == 1 && state.closed.load(Ordering::SeqCst)
        {
            // A worker may be waiting for this push before it stops.
            self.wake_all();
        }
        outcome
    }

    /// Moves the frontier forward to `time` (never back) and wakes the workers that sleep.
    /// Windows that end before the frontier close.
    pub fn advance_to(&self, time: u64) {
        self.state.watermark.fetch_max(time, Ordering::SeqCst);
        self.wake();
    }

    /// Wakes the workers that sleep, to process what was queued.
    pub fn wake(&self) {
        for worker in 0..self.activators.len() {
            self.wake_worker(worker);
        }
    }

    /// Wakes worker `worker` if it sleeps (a busy worker looks at its queue and the watermark
    /// again before it sleeps).
    fn wake_worker(&self, worker: usize) {
        if self.state.lanes[worker]
            .asleep
            .swap(false, Ordering::SeqCst)
        {
            let _ = self.activators[worker].activate();
        }
    }

    /// Wakes every worker, asleep or not.
    fn wake_all(&self) {
        for activator in &self.activators {
            let _ = activator.activate();
        }
    }

    /// Ends the input: later pushes return [`Pushed::Closed`] with their message; the workers take what is queued,
    /// close every open window and stop.
    pub fn close(&self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.state.room.notify_waiters();
        self.wake_all();
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::{passthrough_on, Nowhere};

    /// Waits (at most 5 s) until `lane`'s worker says it sleeps.
    fn asleep(lane: &Lane) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !lane.asleep.load(Ordering::SeqCst) {
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        true
    }

    /// Waking worker `i` wakes worker `i` (it runs, finds nothing, and sleeps again), whatever
    /// order the workers started in: a push to a sleeping worker's queue is taken by that worker
    /// at once, not when another worker's progress happens to wake it.
    #[test]
    fn waking_a_worker_wakes_that_worker() {
        for _ in 0..10 {
            let (spec, options) = passthrough_on("wake", 4);
            let (feeder, running) =
                crate::start(spec, options, Arc::new(Nowhere)).expect("the graph starts");
            let mut failure = None;
            for worker in 0..4 {
                let lane = &feeder.state.lanes[worker];
                if !asleep(lane) {
                    failure = Some(format!("worker {worker} never slept after starting"));
                    break;
                }
                feeder.wake_worker(worker);
                if !asleep(lane) {
                    failure = Some(format!("waking worker {worker} woke another one"));
                    break;
                }
            }
            // The workers stop once the input is closed: close it before any assertion.
            drop(feeder);
            running.join().expect("the workers stop");
            assert_eq!(failure, None);
        }
    }

    /// A result waiting for its time makes the graph hold (and rings the hook once); the
    /// frontier passing that time releases it.
    #[test]
    fn a_result_waiting_for_its_time_holds_the_graph_until_the_frontier_passes() {
        use weir_model::hlc::Hlc;
        let (spec, options) = passthrough_on("hold", 2);
        let (feeder, running) =
            crate::start(spec, options, Arc::new(Nowhere)).expect("the graph starts");
        let (rang, rings) = crossbeam_channel::unbounded();
        feeder.on_hold(StatusHook::new(move || {
            let _ = rang.send(());
        }));
        assert!(!feeder.is_holding(), "an idle graph holds nothing");
        let stamp = Hlc::from_millis(1_000_000, 0, "test".into());
        let time = encode(&stamp);
        let pushed = feeder.push(Message::new(stamp, "t", "x"));
        assert!(matches!(pushed, Pushed::Queued), "{pushed:?}");
        feeder.wake();
        let rung = rings
            .recv_timeout(std::time::Duration::from_secs(5))
            .is_ok();
        let holding = feeder.is_holding();
        feeder.advance_to(time + 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while feeder.is_holding() && std::time::Instant::now() < deadline {
            std::thread::yield_now();
        }
        let released = !feeder.is_holding();
        drop(feeder);
        running.join().expect("the workers stop");
        assert!(rung, "the hook rang when the result started waiting");
        assert!(holding, "the graph holds the waiting result");
        assert!(
            released,
            "the frontier passing the result's time releases it"
        );
        assert!(rings.try_recv().is_err(), "the hook rang once");
    }
}
