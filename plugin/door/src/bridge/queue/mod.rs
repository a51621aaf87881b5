//! A bridge's store-and-forward queue: every message an `out` topic forwards at QoS 1 or 2 is
//! written here, on disk, before its publisher is acknowledged, and leaves only when the remote
//! acknowledged it. So an outage, a restart, `kill -9` or a power cut loses none of them.
//!
//! Writes from every connection and every bridge go to one writer thread ([`committer`]), which
//! commits whatever arrived while the previous commit was being synced with one `fsync` (group
//! commit): a connection waits for the commit that holds its messages before it acknowledges
//! them ([`Outbox`], [`Ticket`]). The bridge's link reads what was committed from a window of
//! recent messages kept in memory ([`Queue::take`]) or, when it fell further behind (an
//! outage), from disk ([`Queue::read_stored`]): memory does not grow with the queue.
//!
//! QoS 0 messages are not written: they wait in memory ([`volatile`]) while the link is up, and
//! while it is down only with `queue.qos0: true`.

pub mod committer;
pub mod record;
pub mod store;
pub mod volatile;

pub use record::Queued;
pub use store::BridgeStore;

use super::config::{QueueLimits, WhenFull};
use super::metrics::BridgeMetrics;
use committer::Op;
use record::{message_key, Key};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Why the queue could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The store failed (a full disk, an I/O error).
    #[error("bridge queue store {path}: {message}")]
    Store {
        /// The store's directory.
        path: String,
        /// What failed.
        message: String,
    },
    /// The writer thread is gone (the broker is stopping).
    #[error("the bridge queues are closed")]
    Closed,
}

/// Messages the window of recent messages holds at most.
const TAIL_MESSAGES: usize = 8192;
/// Bytes the window of recent messages holds at most.
const TAIL_BYTES: u64 = 4 << 20;

/// One bridge's queue.
pub struct Queue {
    name: Arc<str>,
    keyspace: fjall::Keyspace,
    committer: crossbeam_channel::Sender<Op>,
    path: String,
    max_messages: AtomicU64,
    max_bytes: AtomicU64,
    blocks: AtomicBool,
    /// Messages and bytes (encoded) on disk; changed by the committer only.
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Offered and not yet committed.
    pending_messages: AtomicU64,
    /// No message below this one is left (a lower bound).
    head: AtomicU64,
    /// The sequence number of the next message; the committer's.
    next: AtomicU64,
    /// Every message below this one is on disk (or gone).
    committed: AtomicU64,
    /// Messages up to this one were dropped or acknowledged when the oldest made room (0:
    /// none); a later acknowledgement of one of them is ignored.
    dropped_through: AtomicU64,
    /// QoS 2 messages the remote received and whose PUBCOMP is awaited.
    received: Mutex<std::collections::BTreeSet<u64>>,
    tail: Mutex<Tail>,
    /// New messages were committed.
    ready: tokio::sync::Notify,
    /// Room was made (for publishers that wait under `when_full: block`).
    room: tokio::sync::Notify,
    metrics: Arc<BridgeMetrics>,
}

/// The most recent committed messages, for a link that keeps up.
#[derive(Default)]
struct Tail {
    items: VecDeque<Stored>,
    bytes: u64,
}

/// A committed message: its sequence number, the message, and its size on disk.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its sequence number (its packet id on the wire derives from it).
    pub seq: u64,
    /// The message.
    pub message: Arc<Queued>,
    /// Bytes on disk.
    pub size: u64,
}

/// A message the remote has, to leave the queue ([`Queue::remove`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    /// Its sequence number.
    pub seq: u64,
    /// Its size on disk.
    pub size: u64,
    /// It was marked received (a QoS 2 message completed).
    pub marked: bool,
}

/// What [`Queue::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// Nothing committed from the cursor on.
    Nothing,
    /// Messages from the window in memory (added to the caller's list).
    Some,
    /// The cursor is behind the window: read from disk ([`Queue::read_stored`]).
    OnDisk,
}

impl Queue {
    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Messages on disk.
    pub fn len(&self) -> u64 {
        self.messages.load(Relaxed)
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.pending_messages.load(Relaxed) == 0
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// The bridge's counters.
    pub fn metrics(&self) -> &Arc<BridgeMetrics> {
        &self.metrics
    }

    /// Applies new limits (a reload).
    pub fn set_limits(&self, limits: &QueueLimits) {
        self.max_messages.store(limits.max_messages, Relaxed);
        self.max_bytes.store(limits.max_bytes, Relaxed);
        self.blocks
            .store(limits.when_full == WhenFull::Block, Relaxed);
        self.room.notify_waiters();
    }

    pub(super) fn limits(&self) -> QueueLimits {
        QueueLimits {
            max_bytes: self.max_bytes.load(Relaxed),
            max_messages: self.max_messages.load(Relaxed),
            qos0: false,
            when_full: if self.blocks.load(Relaxed) {
                WhenFull::Block
            } else {
                WhenFull::DropOldest
            },
        }
    }

    /// Whether publishers must wait before adding what they hold: the queue blocks when full,
    /// and is (counting what they hold). An empty queue takes anything.
    pub fn must_wait(&self) -> bool {
        if !self.blocks.load(Relaxed) {
            return false;
        }
        let stored = self.len();
        if stored == 0 {
            return false;
        }
        let limits = self.limits();
        let offered = stored.saturating_add(self.pending_messages.load(Relaxed));
        (limits.max_messages > 0 && offered > limits.max_messages)
            || (limits.max_bytes > 0 && self.bytes() >= limits.max_bytes)
    }

    /// Waits until [`Queue::must_wait`] no longer holds.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.must_wait() {
                return;
            }
            // Room is announced by the committer; the timeout covers a limit raised by a
            // reload between the check and the wait.
            let _ = tokio::time::timeout(std::time::Duration::from_millis(100), notified).await;
        }
    }

    /// Waits until a message was committed past `cursor` (returns at once if one was).
    pub async fn committed_past(&self, cursor: u64) {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.committed.load(Relaxed) > cursor.max(self.first()) {
                return;
            }
            notified.await;
        }
    }

    /// The sequence number after the last committed message.
    pub fn end(&self) -> u64 {
        self.committed.load(Relaxed)
    }

    /// The lowest sequence number that may still be queued.
    pub fn first(&self) -> u64 {
        self.head
            .load(Relaxed)
            .max(self.dropped_through.load(Relaxed).saturating_add(1))
    }

    /// Adds to `out` up to `max` committed messages from `cursor` on, from memory.
    pub fn take(&self, cursor: u64, max: usize, out: &mut Vec<Stored>) -> Taken {
        let cursor = cursor.max(self.first());
        if cursor >= self.committed.load(Relaxed) || max == 0 {
            return Taken::Nothing;
        }
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        match tail.items.front() {
            Some(front) if front.seq <= cursor => {
                let skip = usize::try_from(cursor - front.seq).unwrap_or(usize::MAX);
                out.extend(tail.items.iter().skip(skip).take(max).cloned());
                Taken::Some
            }
            _ => Taken::OnDisk,
        }
    }

    /// Reads up to `max` committed messages from `cursor` on from disk (blocking: call it off
    /// the async runtime). A message that cannot be read back is counted as dropped and
    /// skipped.
    pub fn read_stored(
        self: &Arc<Self>,
        cursor: u64,
        max: usize,
    ) -> Result<Vec<Stored>, QueueError> {
        let cursor = cursor.max(self.first());
        let end = self.committed.load(Relaxed);
        let mut out = Vec::new();
        if cursor >= end {
            return Ok(out);
        }
        let range = self.keyspace.range(message_key(cursor)..message_key(end));
        for item in range.take(max) {
            let (key, value) = item.into_inner().map_err(|e| self.error(e))?;
            let Key::Message(seq) = Key::read(&key) else {
                break;
            };
            match Queued::decode(&value) {
                Ok(message) => out.push(Stored {
                    seq,
                    message: Arc::new(message),
                    size: value.len() as u64,
                }),
                Err(e) => {
                    tracing::error!(bridge = %self.name, seq, "queued message unreadable, dropped: {e}");
                    self.acknowledge(seq, value.len() as u64);
                    self.metrics.count_dropped(1);
                }
            }
        }
        Ok(out)
    }

    /// When the oldest message still queued was queued (ms since the Unix epoch).
    pub fn oldest_queued_at(&self) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        let first = self.first();
        let (_, value) = self
            .keyspace
            .range(message_key(first)..=message_key(u64::MAX))
            .next()?
            .into_inner()
            .ok()?;
        Queued::decode(&value).ok().map(|m| m.queued_at)
    }

    /// The remote has message `seq` (PUBACK, PUBCOMP, or a QoS 0 write): it leaves the queue.
    pub fn acknowledge(self: &Arc<Self>, seq: u64, size: u64) {
        self.remove(vec![Removed {
            seq,
            size,
            marked: false,
        }]);
    }

    /// The remote has these messages: they (and their marks) leave the queue, with one
    /// operation of the writer.
    pub fn remove(self: &Arc<Self>, removed: Vec<Removed>) {
        if removed.is_empty() {
            return;
        }
        let _ = self.committer.send(Op::Acknowledge {
            queue: self.clone(),
            removed,
        });
    }

    /// The remote received QoS 2 message `seq` (PUBREC): marks it so, on disk, then sends
    /// `seq` to `marked` (the PUBREL may go).
    pub fn mark_received(
        self: &Arc<Self>,
        seq: u64,
        marked: tokio::sync::mpsc::UnboundedSender<u64>,
    ) {
        let _ = self.committer.send(Op::Received {
            queue: self.clone(),
            seq,
            marked,
        });
    }

    /// Whether message `seq` was received by the remote (a QoS 2 message awaiting PUBCOMP).
    pub fn is_received(&self, seq: u64) -> bool {
        self.received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&seq)
    }

    fn error(&self, e: impl std::fmt::Display) -> QueueError {
        QueueError::Store {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// Messages for bridges' queues gathered while a publisher's packets are handled, handed to
/// the writer together ([`Outbox::submit`]).
#[derive(Default)]
pub struct Outbox {
    items: Vec<(Arc<Queue>, Queued)>,
}

/// A submitted [`Outbox`]: done once its messages are on disk.
pub struct Ticket(tokio::sync::oneshot::Receiver<Result<(), QueueError>>);

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket")
    }
}

impl std::future::Future for Ticket {
    type Output = Result<(), QueueError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|written| written.unwrap_or(Err(QueueError::Closed)))
    }
}

impl Ticket {
    /// Waits until the messages are on disk.
    pub async fn wait(self) -> Result<(), QueueError> {
        self.await
    }

    /// Waits, blocking the thread, until the messages are on disk.
    pub fn wait_blocking(self) -> Result<(), QueueError> {
        self.0.blocking_recv().unwrap_or(Err(QueueError::Closed))
    }
}

impl Outbox {
    /// Adds `message` for `queue`.
    pub fn push(&mut self, queue: Arc<Queue>, message: Queued) {
        queue.pending_messages.fetch_add(1, Relaxed);
        self.items.push((queue, message));
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A queue that is full under `when_full: block`, if any: wait for its room before
    /// [`Outbox::submit`].
    pub fn full_queue(&self) -> Option<Arc<Queue>> {
        self.items
            .iter()
            .find(|(queue, _)| queue.must_wait())
            .map(|(queue, _)| queue.clone())
    }

    /// Hands everything to the writer; the ticket completes once it is on disk.
    pub fn submit(&mut self) -> Option<Ticket> {
        let committer = self.items.first()?.0.committer.clone();
        let (done, ticket) = tokio::sync::oneshot::channel();
        let items = std::mem::take(&mut self.items);
        if let Err(crossbeam_channel::SendError(Op::Append { items, .. })) =
            committer.send(Op::Append { items, done })
        {
            for (queue, _) in items {
                queue.pending_messages.fetch_sub(1, Relaxed);
            }
        }
        Some(Ticket(ticket))
    }
}

#[cfg(test)]
mod tests;
