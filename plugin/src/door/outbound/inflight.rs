//! QoS 1 and 2 deliveries in flight to a client: the door's own packet ids, within the window
//! the client allows (MQTT 5 receive maximum) and the listener's `max_inflight_count`.

use std::collections::HashMap;

/// QoS 1 and 2 deliveries waiting for the client's acknowledgement.
#[derive(Debug)]
pub(super) struct Inflight {
    pub(super) window: usize,
    pub(super) next: u16,
    pub(super) waiting: HashMap<u16, Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// QoS 1, waiting for PUBACK.
    Ack,
    /// QoS 2, waiting for PUBREC.
    Received,
    /// QoS 2, PUBREL sent, waiting for PUBCOMP.
    Complete,
}

impl Inflight {
    pub(super) fn full(&self) -> bool {
        self.waiting.len() >= self.window
    }

    pub(super) fn allocate(&mut self, stage: Stage) -> u16 {
        loop {
            self.next = self.next.checked_add(1).unwrap_or(1);
            if !self.waiting.contains_key(&self.next) {
                self.waiting.insert(self.next, stage);
                return self.next;
            }
        }
    }

    /// Moves `pkid` on from `from` (to `to`, or done); false if it was not there.
    pub(super) fn advance(&mut self, pkid: u16, from: Stage, to: Option<Stage>) -> bool {
        if self.waiting.get(&pkid) != Some(&from) {
            return false;
        }
        match to {
            Some(stage) => self.waiting.insert(pkid, stage),
            None => self.waiting.remove(&pkid),
        };
        true
    }
}
