//! The messages sent to the remote and not yet acknowledged, by packet id.
//!
//! A queued message's packet id is a function of its sequence number ([`pkid_of`]), so a
//! message resent after a restart carries the id it had before, and the remote's session
//! recognises it (a QoS 2 message is then completed, not delivered again). The few packets of
//! the link's own (SUBSCRIBE, UNSUBSCRIBE, the state notification) take ids far from those of
//! the window; a message whose id is still taken waits until it is free.

use crate::bridge::queue::Stored;
use std::collections::{HashMap, HashSet};

/// The packet id of message `seq`: 1 to 65535, in turn (65,535 messages apart, two messages
/// have the same id).
pub fn pkid_of(seq: u64) -> u16 {
    (seq % 65535) as u16 + 1
}

/// Where a QoS 1 or 2 message is in its exchange with the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// PUBLISH sent.
    Sent,
    /// PUBREC received; its mark is being written before the PUBREL goes.
    Marking,
    /// PUBREL sent.
    Released,
}

/// A message in flight.
#[derive(Debug)]
pub struct InFlight {
    /// The message.
    pub stored: Stored,
    /// The QoS it went at.
    pub qos: u8,
    /// Where it is.
    pub stage: Stage,
}

/// The messages in flight and the link's own packet ids.
#[derive(Debug, Default)]
pub struct Window {
    capacity: usize,
    /// QoS 2 messages in flight at most.
    qos2_capacity: usize,
    qos2: usize,
    entries: HashMap<u16, InFlight>,
    control: HashSet<u16>,
    next_control: u64,
}

impl Window {
    /// At most `capacity` messages in flight, `qos2_capacity` of them at QoS 2.
    pub fn new(capacity: usize, qos2_capacity: usize) -> Window {
        Window {
            capacity: capacity.max(1),
            qos2_capacity: qos2_capacity.clamp(1, capacity.max(1)),
            ..Default::default()
        }
    }

    /// Whether another message may go.
    pub fn has_room(&self) -> bool {
        self.entries.len() < self.capacity
    }

    /// Whether another message of `qos` may go.
    pub fn has_room_for(&self, qos: u8) -> bool {
        self.has_room() && (qos < 2 || self.qos2 < self.qos2_capacity)
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `pkid` is free.
    pub fn is_free(&self, pkid: u16) -> bool {
        !self.entries.contains_key(&pkid) && !self.control.contains(&pkid)
    }

    /// Message `pkid` went.
    pub fn insert(&mut self, pkid: u16, entry: InFlight) {
        if entry.qos == 2 {
            self.qos2 += 1;
        }
        self.entries.insert(pkid, entry);
    }

    /// Message `pkid`.
    pub fn get_mut(&mut self, pkid: u16) -> Option<&mut InFlight> {
        self.entries.get_mut(&pkid)
    }

    /// Message `pkid` is done; `None` when it was not in flight (a control packet's id is
    /// freed instead).
    pub fn remove(&mut self, pkid: u16) -> Option<InFlight> {
        let entry = self.entries.remove(&pkid);
        match &entry {
            Some(entry) if entry.qos == 2 => self.qos2 -= 1,
            Some(_) => {}
            None => {
                self.control.remove(&pkid);
            }
        }
        entry
    }

    /// An id for a packet of the link's own, away from those of the messages from `cursor`
    /// on.
    pub fn control_pkid(&mut self, cursor: u64) -> u16 {
        loop {
            self.next_control += 1;
            let pkid = pkid_of(cursor.wrapping_add(32_768).wrapping_add(self.next_control));
            if self.is_free(pkid) {
                self.control.insert(pkid);
                return pkid;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_cycle_through_every_id() {
        assert_eq!(pkid_of(1), 2);
        assert_eq!(pkid_of(65534), 65535);
        assert_eq!(pkid_of(65535), 1);
        assert_eq!(pkid_of(65535 * 7 + 9), pkid_of(9));
    }

    #[test]
    fn control_ids_stay_clear_of_the_window() {
        let mut window = Window::new(100, 16);
        let id = window.control_pkid(1);
        assert!(!(1..=101).map(pkid_of).any(|p| p == id));
        assert!(!window.is_free(id));
        assert!(window.remove(id).is_none());
        assert!(window.is_free(id));
    }
}
