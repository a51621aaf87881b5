//! What a session holds beyond its connection, as plain data: its subscriptions, the messages
//! waiting for its client, the QoS 1 and 2 deliveries the client has not acknowledged yet, and
//! the QoS 2 publishes from the client still waiting for their PUBREL. A connection starts from
//! it and leaves it behind; a persistent session keeps it while the client is away (and it can
//! be stored as it is).

use super::overlap::Overlaps;
use super::Subscriptions;
use crate::delivery::Delivery;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// A QoS 1 or 2 delivery the client has not finished acknowledging, resent after a reconnect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unacknowledged {
    /// PUBLISH sent, PUBACK or PUBREC not received: the PUBLISH is resent with DUP set.
    Publish {
        /// Its packet id.
        packet_id: u16,
        /// The message.
        delivery: Delivery,
    },
    /// PUBREC received, PUBREL sent, PUBCOMP not received: the PUBREL is resent.
    Release {
        /// Its packet id.
        packet_id: u16,
    },
}

impl Unacknowledged {
    /// Its packet id.
    pub fn packet_id(&self) -> u16 {
        match self {
            Unacknowledged::Publish { packet_id, .. } | Unacknowledged::Release { packet_id } => {
                *packet_id
            }
        }
    }
}

/// A session's state, between connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Its subscriptions, by the door's subscription id.
    pub subscriptions: Subscriptions,
    /// Messages waiting to be sent, oldest first.
    pub queued: VecDeque<Delivery>,
    /// Deliveries in flight, in the order they were first sent.
    pub unacknowledged: Vec<Unacknowledged>,
    /// Packet ids of QoS 2 publishes from the client waiting for their PUBREL.
    pub incoming: BTreeSet<u16>,
    /// The last packet id the door used.
    pub last_packet_id: u16,
    /// Copies of messages still to come through overlapping subscriptions. Not stored: after a
    /// restart, the router sends no copy of a message from before it.
    #[serde(skip)]
    pub(crate) overlaps: Overlaps,
}
