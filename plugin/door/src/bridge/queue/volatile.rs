//! QoS 0 messages on their way to the remote: in memory only, as MQTT promises nothing more for
//! them. While the link is down they are kept only with `queue.qos0: true` (mosquitto's
//! `queue_qos0_messages`), within the queue's message limit and a memory bound; what does not
//! fit, or is not kept, is counted as dropped.

use super::Queued;
use crate::bridge::metrics::BridgeMetrics;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Bytes of QoS 0 messages kept at most, whatever the limits say (they are in memory).
const MAX_BYTES: u64 = 16 << 20;
/// Messages kept at most when the queue has no message limit.
const DEFAULT_MESSAGES: u64 = 100_000;

/// A bridge's QoS 0 messages.
pub struct Volatile {
    items: Mutex<Held>,
    /// Messages held (read without the lock).
    held: AtomicU64,
    connected: AtomicBool,
    keep_offline: AtomicBool,
    max_messages: AtomicU64,
    ready: tokio::sync::Notify,
    metrics: Arc<BridgeMetrics>,
}

#[derive(Default)]
struct Held {
    messages: VecDeque<Queued>,
    bytes: u64,
}

impl Volatile {
    /// An empty queue; `keep_offline` keeps messages while the link is down, at most
    /// `max_messages` (0: the default bound).
    pub fn new(keep_offline: bool, max_messages: u64, metrics: Arc<BridgeMetrics>) -> Volatile {
        let volatile = Volatile {
            items: Mutex::default(),
            held: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            keep_offline: AtomicBool::new(false),
            max_messages: AtomicU64::new(0),
            ready: tokio::sync::Notify::new(),
            metrics,
        };
        volatile.set_limits(keep_offline, max_messages);
        volatile
    }

    /// Applies new limits (a reload).
    pub fn set_limits(&self, keep_offline: bool, max_messages: u64) {
        self.keep_offline.store(keep_offline, Relaxed);
        let max = if max_messages == 0 {
            DEFAULT_MESSAGES
        } else {
            max_messages
        };
        self.max_messages.store(max, Relaxed);
    }

    /// The link is up (`true`) or down.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Relaxed);
        if !connected && !self.keep_offline.load(Relaxed) {
            let mut held = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let lost = held.messages.len() as u64;
            *held = Held::default();
            self.held.store(0, Relaxed);
            self.metrics.count_dropped(lost);
        }
    }

    /// Adds `message`, or counts it as dropped when the link is down and QoS 0 messages are not
    /// kept; the oldest make room when it is full.
    pub fn push(&self, message: Queued) {
        if !self.connected.load(Relaxed) && !self.keep_offline.load(Relaxed) {
            self.metrics.count_dropped(1);
            return;
        }
        let max = self.max_messages.load(Relaxed);
        let mut dropped = 0;
        let was_empty = {
            let mut held = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = held.messages.is_empty();
            held.bytes += size(&message);
            held.messages.push_back(message);
            while held.messages.len() as u64 > max || held.bytes > MAX_BYTES {
                let Some(old) = held.messages.pop_front() else {
                    break;
                };
                held.bytes -= size(&old);
                dropped += 1;
            }
            self.held.store(held.messages.len() as u64, Relaxed);
            was_empty
        };
        self.metrics.count_dropped(dropped);
        // The link takes everything when woken: only the first message of a batch wakes it.
        if was_empty {
            self.ready.notify_one();
        }
    }

    /// Moves every message held into `out`.
    pub fn take_all(&self, out: &mut VecDeque<Queued>) {
        if self.held.load(Relaxed) == 0 {
            return;
        }
        let mut held = self.items.lock().unwrap_or_else(|e| e.into_inner());
        held.bytes = 0;
        self.held.store(0, Relaxed);
        out.append(&mut held.messages);
    }

    /// Messages held.
    pub fn len(&self) -> u64 {
        self.held.load(Relaxed)
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until a message is added.
    pub async fn added(&self) {
        self.ready.notified().await;
    }
}

fn size(message: &Queued) -> u64 {
    (message.topic.len() + message.payload.len()) as u64
}
