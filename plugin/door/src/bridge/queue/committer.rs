//! The one thread that writes the bridges' queues: it takes whatever arrived while it was
//! busy, writes it in one batch, syncs it to disk once (group commit), and only then answers
//! the publishers waiting for it and shows the messages to the links. Acknowledgements ride
//! along without a sync of their own: one lost in a crash only means a message is sent again.
//!
//! A queue that passes its limits under `when_full: drop-oldest` loses its oldest messages
//! here, right after the commit that filled it, each counted.

use super::record::{message_key, received_key, Key, Queued, NEXT_KEY};
use super::{Queue, QueueError, Removed, Stored, TAIL_BYTES, TAIL_MESSAGES};
use crate::bridge::config::WhenFull;
use fjall::{Database, PersistMode};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Operations taken in one commit at most (a larger backlog goes in several).
const GROUP: usize = 4096;

/// What the writer is asked to do.
pub enum Op {
    /// Queue messages; `done` once they are on disk.
    Append {
        /// The messages and their queues.
        items: Vec<(Arc<Queue>, Queued)>,
        /// Told when they are on disk.
        done: oneshot::Sender<Result<(), QueueError>>,
    },
    /// The remote has these messages: remove them (and their marks).
    Acknowledge {
        /// Their queue.
        queue: Arc<Queue>,
        /// The messages.
        removed: Vec<Removed>,
    },
    /// The remote received QoS 2 message `seq`: mark it, then say so on `marked`.
    Received {
        /// Its queue.
        queue: Arc<Queue>,
        /// The message.
        seq: u64,
        /// Told `seq` once the mark is on disk.
        marked: mpsc::UnboundedSender<u64>,
    },
    /// Sync everything, then answer (at shutdown).
    Sync(oneshot::Sender<()>),
}

/// Runs the writer until every sender is gone.
pub fn run(db: Database, path: String, ops: crossbeam_channel::Receiver<Op>) {
    while let Ok(first) = ops.recv() {
        let mut group = Vec::with_capacity(64);
        group.push(first);
        while group.len() < GROUP {
            match ops.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let mut commit = Commit::default();
        let result = commit
            .write(&db, &mut group)
            .map_err(|e| QueueError::Store {
                path: path.clone(),
                message: e.to_string(),
            });
        if let Err(e) = &result {
            tracing::error!("{e}: the publishers of these messages are not acknowledged");
        }
        commit.finish(group, result);
    }
    if let Err(e) = db.persist(PersistMode::SyncAll) {
        tracing::error!("bridge queue store {path}: the last sync failed: {e}");
    }
}

/// One group's writes.
#[derive(Default)]
struct Commit {
    appended: Vec<(Arc<Queue>, Stored)>,
    touched: Vec<Arc<Queue>>,
    durable: bool,
}

impl Commit {
    fn write(&mut self, db: &Database, group: &mut [Op]) -> fjall::Result<()> {
        let mut batch = db.batch();
        for op in group.iter_mut() {
            match op {
                Op::Append { items, .. } => {
                    self.durable = true;
                    for (queue, message) in items.drain(..) {
                        let seq = queue.next.fetch_add(1, Relaxed);
                        let value = message.encode();
                        let size = value.len() as u64;
                        batch.insert(&queue.keyspace, message_key(seq), value);
                        queue.pending_messages.fetch_sub(1, Relaxed);
                        self.touch(&queue);
                        let message = Arc::new(message);
                        self.appended.push((queue, Stored { seq, message, size }));
                    }
                }
                Op::Acknowledge { queue, removed } => {
                    remove(&mut batch, queue, removed);
                    self.touch(queue);
                }
                Op::Received { queue, seq, .. } => {
                    self.durable = true;
                    batch.insert(&queue.keyspace, received_key(*seq), []);
                    queue
                        .received
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(*seq);
                }
                Op::Sync(_) => self.durable = true,
            }
        }
        for queue in &self.touched {
            let next = queue.next.load(Relaxed);
            batch.insert(&queue.keyspace, NEXT_KEY, next.to_be_bytes());
        }
        batch.commit()?;
        for (queue, stored) in &self.appended {
            queue.messages.fetch_add(1, Relaxed);
            queue.bytes.fetch_add(stored.size, Relaxed);
        }
        for queue in &self.touched {
            if queue.limits().when_full == WhenFull::DropOldest {
                drop_oldest(db, queue)?;
            }
        }
        if self.durable {
            db.persist(PersistMode::SyncAll)?;
        }
        Ok(())
    }

    fn touch(&mut self, queue: &Arc<Queue>) {
        if !self.touched.iter().any(|q| Arc::ptr_eq(q, queue)) {
            self.touched.push(queue.clone());
        }
    }

    /// Answers the group's publishers, shows the new messages to the links and wakes
    /// publishers waiting for room.
    fn finish(self, group: Vec<Op>, result: Result<(), QueueError>) {
        if result.is_ok() {
            for queue in &self.touched {
                show(
                    queue,
                    self.appended.iter().filter(|(q, _)| Arc::ptr_eq(q, queue)),
                );
            }
        }
        for queue in &self.touched {
            queue.ready.notify_one();
            queue.room.notify_waiters();
        }
        for op in group {
            match op {
                Op::Append { done, .. } => {
                    let _ = done.send(result.clone());
                }
                Op::Received { seq, marked, .. } if result.is_ok() => {
                    let _ = marked.send(seq);
                }
                Op::Sync(done) => {
                    let _ = done.send(());
                }
                _ => {}
            }
        }
    }
}

/// Removes what the remote has from `queue` (a message dropped meanwhile was removed then).
fn remove(batch: &mut fjall::OwnedWriteBatch, queue: &Queue, removed: &[Removed]) {
    let dropped_through = queue.dropped_through.load(Relaxed);
    let (mut messages, mut bytes) = (0, 0);
    for done in removed.iter().filter(|done| done.seq > dropped_through) {
        batch.remove_weak(&queue.keyspace, message_key(done.seq));
        if done.marked {
            let mut received = queue.received.lock().unwrap_or_else(|e| e.into_inner());
            if received.remove(&done.seq) {
                batch.remove(&queue.keyspace, received_key(done.seq));
            }
        }
        messages += 1;
        bytes += done.size;
        if queue.head.load(Relaxed) == done.seq {
            queue.head.store(done.seq + 1, Relaxed);
        }
    }
    queue.messages.fetch_sub(messages, Relaxed);
    queue.bytes.fetch_sub(bytes, Relaxed);
}

/// Adds `appended` (committed, in order) to `queue`'s window of recent messages, with one
/// lock, and says they are committed.
fn show<'a>(queue: &Queue, appended: impl Iterator<Item = &'a (Arc<Queue>, Stored)>) {
    let mut tail = queue.tail.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = None;
    for (_, stored) in appended {
        tail.bytes += stored.size;
        tail.items.push_back(stored.clone());
        last = Some(stored.seq);
    }
    let first = queue.first();
    while tail.items.len() > TAIL_MESSAGES
        || tail.bytes > TAIL_BYTES
        || tail.items.front().is_some_and(|s| s.seq < first)
    {
        let Some(old) = tail.items.pop_front() else {
            break;
        };
        tail.bytes -= old.size;
    }
    if let Some(last) = last {
        queue.committed.store(last + 1, Relaxed);
    }
}

/// Removes the oldest messages of `queue` until it is within its limits, counting each.
fn drop_oldest(db: &Database, queue: &Queue) -> fjall::Result<()> {
    let limits = queue.limits();
    let (mut messages, mut bytes) = (queue.len(), queue.bytes());
    if !limits.exceeded(messages, bytes) {
        return Ok(());
    }
    let mut batch = db.batch();
    let mut last = None;
    let mut dropped = 0u64;
    let first = queue.first();
    for item in queue
        .keyspace
        .range(message_key(first)..=message_key(u64::MAX))
    {
        if !limits.exceeded(messages, bytes) {
            break;
        }
        let (key, value) = item.into_inner()?;
        let Key::Message(seq) = Key::read(&key) else {
            break;
        };
        batch.remove_weak(&queue.keyspace, key);
        if queue
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq)
        {
            batch.remove(&queue.keyspace, received_key(seq));
        }
        messages -= 1;
        bytes = bytes.saturating_sub(value.len() as u64);
        dropped += 1;
        last = Some(seq);
    }
    batch.commit()?;
    if let Some(last) = last {
        queue.messages.store(messages, Relaxed);
        queue.bytes.store(bytes, Relaxed);
        queue.dropped_through.store(last, Relaxed);
        queue.head.store(last + 1, Relaxed);
        queue.metrics.count_dropped(dropped);
        let total = queue.metrics.dropped();
        let before = total - dropped;
        if before == 0 || before.ilog2() != total.ilog2() {
            tracing::warn!(
                bridge = %queue.name,
                "queue full ({messages} messages, {bytes} bytes): the {dropped} oldest dropped to make room, {total} in all (queue.when_full: drop-oldest)"
            );
        }
    }
    Ok(())
}
