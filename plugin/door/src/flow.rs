//! Back-pressure from subscribers to publishers.
//!
//! Every publisher (a client connection, or a graph's result publisher) has a [`Gate`]. When a
//! subscriber's queue passes its limit while the subscriber is still reading, the subscriber
//! closes the gates of the publishers whose messages fill it; a publisher whose gate is closed
//! stops reading its socket (TCP pushes back on the device) until every subscriber that closed
//! it has room again. A subscriber that stops reading altogether opens the gates it closed and
//! drops what passes its limit instead, counted: one stalled client must not stop the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

/// A publisher's gate: open unless some subscriber holds it closed.
#[derive(Debug, Default)]
pub struct Gate {
    holders: AtomicUsize,
    opened: Notify,
}

impl Gate {
    /// Whether the publisher may go on.
    pub fn is_open(&self) -> bool {
        self.holders.load(Ordering::Acquire) == 0
    }

    /// Waits until the gate is open.
    pub async fn opened(&self) {
        loop {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.is_open() {
                return;
            }
            opened.await;
        }
    }

    fn close(&self) {
        self.holders.fetch_add(1, Ordering::AcqRel);
    }

    fn release(&self) {
        if self.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.opened.notify_waiters();
        }
    }
}

/// Every publisher's gate, by publisher id.
#[derive(Debug, Default)]
pub struct Gates {
    gates: Mutex<HashMap<u64, Weak<Gate>>>,
}

impl Gates {
    /// Registers publisher `id` and returns its gate (open).
    pub fn register(&self, id: u64) -> Arc<Gate> {
        let gate = Arc::new(Gate::default());
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        // The gates of publishers gone are swept now and then, not on every registration.
        if gates.len() >= 64 && gates.len().is_power_of_two() {
            gates.retain(|_, gate| gate.strong_count() > 0);
        }
        gates.insert(id, Arc::downgrade(&gate));
        gate
    }

    fn find(&self, id: u64) -> Option<Arc<Gate>> {
        let gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.get(&id)?.upgrade()
    }
}

/// The gates one subscriber holds closed; all released when it has room again, stalls, or goes.
///
/// ```
/// use weir_door::flow::{Gates, Held};
/// let gates = Gates::default();
/// let gate = gates.register(7);
/// let mut held = Held::default();
/// held.hold(&gates, 7);
/// held.hold(&gates, 7); // once per publisher
/// assert!(!gate.is_open());
/// held.release_all();
/// assert!(gate.is_open());
/// ```
#[derive(Debug, Default)]
pub struct Held {
    gates: HashMap<u64, Arc<Gate>>,
}

impl Held {
    /// Closes publisher `id`'s gate, unless this subscriber already holds it. Returns whether
    /// it closed it now.
    pub fn hold(&mut self, gates: &Gates, id: u64) -> bool {
        if self.gates.contains_key(&id) {
            return false;
        }
        let Some(gate) = gates.find(id) else {
            return false;
        };
        gate.close();
        self.gates.insert(id, gate);
        true
    }

    /// Whether it holds any gate.
    pub fn is_empty(&self) -> bool {
        self.gates.is_empty()
    }

    /// Opens every gate it holds.
    pub fn release_all(&mut self) {
        for (_, gate) in self.gates.drain() {
            gate.release();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release_all();
    }
}

/// One batch of a publisher's messages in the router at a time.
///
/// The router handles the events of all links in turns of up to 500, and serves subscribers
/// between turns: a publisher that queued many batches could append more than a filter's log
/// keeps before any subscriber reads. So each batch ends with a PINGREQ, and the next batch
/// goes once the router answered it (a round trip of the router's loop).
#[derive(Debug, Default)]
pub struct Pace {
    outstanding: AtomicU32,
    answered: Notify,
}

impl Pace {
    /// A batch (ending with a PINGREQ) went to the router.
    pub fn sent(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// The router answered a PINGREQ. False when no batch was waiting for it (the answer is
    /// someone else's).
    pub fn answered(&self) -> bool {
        let taken = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.answered.notify_waiters();
        }
        taken
    }

    /// Waits until the router answered every batch sent.
    pub async fn settled(&self) {
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            answered.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_held_by_two_subscribers_opens_when_both_release() {
        let gates = Gates::default();
        let gate = gates.register(1);
        let (mut a, mut b) = (Held::default(), Held::default());
        assert!(a.hold(&gates, 1));
        assert!(b.hold(&gates, 1));
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.opened().await }
        });
        a.release_all();
        assert!(!gate.is_open());
        drop(b);
        waiter.await.unwrap();
        assert!(gate.is_open());
    }

    #[test]
    fn an_unknown_or_gone_publisher_is_not_held() {
        let gates = Gates::default();
        let mut held = Held::default();
        assert!(!held.hold(&gates, 3));
        drop(gates.register(3));
        assert!(!held.hold(&gates, 3));
        assert!(held.is_empty());
    }
}
