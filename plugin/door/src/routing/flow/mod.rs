//! Back-pressure from subscribers to publishers.
//!
//! Every publisher (a client connection, or a graph's result publisher) has a [`Gate`]. When a
//! subscriber's queue passes its limit while the subscriber is still reading, the subscriber
//! closes the gates of the publishers whose messages fill it; a publisher whose gate is closed
//! stops reading its socket (TCP pushes back on the device) until every subscriber that closed
//! it has room again. A subscriber that stops reading altogether opens the gates it closed and
//! drops what passes its limit instead, counted: one stalled client must not stop the others.

mod gate;

pub use gate::{Gate, Pace};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// What [`gate`] synchronises with: std's atomics and tokio's `Notify` here, shuttle's atomics
/// in the model check (`plugin/door/tests/gate_model.rs`), which compiles `gate.rs` against
/// its own `sync`.
mod sync {
    pub(super) use std::sync::atomic;
    pub(super) use tokio::sync::Notify;
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
