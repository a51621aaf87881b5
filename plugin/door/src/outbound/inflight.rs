//! QoS 1 and 2 deliveries in flight to a client: the door's own packet ids, within the window
//! the client allows (MQTT 5 receive maximum) and the listener's `max_inflight_count`. Each
//! keeps its message until acknowledged, so that a session can resend it after a reconnect.

use crate::delivery::Delivery;
use crate::session::state::Unacknowledged;
use std::collections::HashMap;

/// QoS 1 and 2 deliveries waiting for the client's acknowledgement.
#[derive(Debug)]
pub(super) struct Inflight {
    pub(super) window: usize,
    pub(super) next: u16,
    waiting: HashMap<u16, Waiting>,
    sequence: u64,
}

#[derive(Debug)]
struct Waiting {
    stage: Stage,
    /// Order of first sending.
    sequence: u64,
    /// The message, until the client received it (QoS 1: acknowledged; QoS 2: PUBREC).
    delivery: Option<Delivery>,
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
    /// A window of `window` deliveries, continuing the packet ids after `last`.
    pub(super) fn new(window: usize, last: u16) -> Inflight {
        Inflight {
            window: window.max(1),
            next: last,
            waiting: HashMap::new(),
            sequence: 0,
        }
    }

    pub(super) fn full(&self) -> bool {
        self.waiting.len() >= self.window
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// A packet id for `delivery`, which waits in `stage`.
    pub(super) fn allocate(&mut self, stage: Stage, delivery: Delivery) -> u16 {
        loop {
            self.next = self.next.checked_add(1).unwrap_or(1);
            if !self.waiting.contains_key(&self.next) {
                self.insert(self.next, stage, Some(delivery));
                return self.next;
            }
        }
    }

    fn insert(&mut self, pkid: u16, stage: Stage, delivery: Option<Delivery>) {
        self.sequence += 1;
        let sequence = self.sequence;
        self.waiting.insert(
            pkid,
            Waiting {
                stage,
                sequence,
                delivery,
            },
        );
    }

    /// Forgets `pkid` (its message could not be written).
    pub(super) fn remove(&mut self, pkid: u16) {
        self.waiting.remove(&pkid);
    }

    /// Moves `pkid` on from `from` (to `to`, or done); false if it was not there.
    pub(super) fn advance(&mut self, pkid: u16, from: Stage, to: Option<Stage>) -> bool {
        let Some(waiting) = self.waiting.get_mut(&pkid) else {
            return false;
        };
        if waiting.stage != from {
            return false;
        }
        match to {
            Some(stage) => {
                waiting.stage = stage;
                waiting.delivery = None;
            }
            None => {
                self.waiting.remove(&pkid);
            }
        }
        true
    }

    /// Takes back what a session left in flight: each is resent (`Publish` with DUP) in its
    /// original order, before anything new.
    pub(super) fn restore(&mut self, unacknowledged: Vec<Unacknowledged>) -> Vec<Unacknowledged> {
        for entry in &unacknowledged {
            let stage = match entry {
                Unacknowledged::Publish { delivery, .. } if delivery.qos == 1 => Stage::Ack,
                Unacknowledged::Publish { .. } => Stage::Received,
                Unacknowledged::Release { .. } => Stage::Complete,
            };
            let delivery = match entry {
                Unacknowledged::Publish { delivery, .. } => Some(delivery.clone()),
                Unacknowledged::Release { .. } => None,
            };
            self.insert(entry.packet_id(), stage, delivery);
        }
        unacknowledged
    }

    /// A copy of what is in flight, in the order it was first sent.
    pub(super) fn unacknowledged(&self) -> Vec<Unacknowledged> {
        let mut waiting: Vec<(&u16, &Waiting)> = self.waiting.iter().collect();
        waiting.sort_by_key(|(_, w)| w.sequence);
        waiting
            .into_iter()
            .map(|(&packet_id, w)| match &w.delivery {
                Some(delivery) => Unacknowledged::Publish {
                    packet_id,
                    delivery: delivery.clone(),
                },
                None => Unacknowledged::Release { packet_id },
            })
            .collect()
    }

    /// What is still in flight, in the order it was first sent.
    pub(super) fn take_unacknowledged(&mut self) -> Vec<Unacknowledged> {
        let mut waiting: Vec<(u16, Waiting)> = self.waiting.drain().collect();
        waiting.sort_by_key(|(_, w)| w.sequence);
        waiting
            .into_iter()
            .map(|(packet_id, w)| match w.delivery {
                Some(delivery) => Unacknowledged::Publish {
                    packet_id,
                    delivery,
                },
                None => Unacknowledged::Release { packet_id },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn delivery(qos: u8, payload: &'static str) -> Delivery {
        Delivery {
            topic: Bytes::from_static(b"t"),
            payload: Bytes::from_static(payload.as_bytes()),
            qos,
            retain: false,
            properties: None,
            identifiers: Default::default(),
            expires_at: None,
        }
    }

    #[test]
    fn what_is_unacknowledged_comes_back_in_sending_order() {
        let mut inflight = Inflight::new(10, u16::MAX - 1);
        let a = inflight.allocate(Stage::Ack, delivery(1, "a"));
        let b = inflight.allocate(Stage::Received, delivery(2, "b"));
        let c = inflight.allocate(Stage::Ack, delivery(1, "c"));
        assert_eq!((a, b, c), (u16::MAX, 1, 2));
        assert!(inflight.advance(a, Stage::Ack, None));
        assert!(inflight.advance(b, Stage::Received, Some(Stage::Complete)));
        let left = inflight.take_unacknowledged();
        assert_eq!(
            left,
            vec![
                Unacknowledged::Release { packet_id: b },
                Unacknowledged::Publish {
                    packet_id: c,
                    delivery: delivery(1, "c")
                },
            ]
        );
        let mut again = Inflight::new(10, c);
        let resent = again.restore(left);
        assert_eq!(resent.len(), 2);
        assert!(again.advance(b, Stage::Complete, None));
        assert!(again.advance(c, Stage::Ack, None));
        assert!(again.is_empty());
    }
}
