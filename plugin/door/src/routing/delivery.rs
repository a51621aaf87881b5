//! A message on its way to one client, in the form a session keeps it: what is written to the
//! client, what waits in its queue while it is connected or away, and what is resent after a
//! reconnect. Plain data (serde), so that a session can be stored as it is.

use crate::message::Properties;
use crate::router::Forwarded;
use crate::session::Subscription;
use crate::tag::Tag;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// The MQTT 5 subscription identifiers a delivery carries: one for each subscription it
/// matched that has one (a client whose subscriptions overlap gets one copy carrying them all).
///
/// Stored as a sequence, which postcard writes as it writes an `Option<u32>` while it holds at
/// most one (a length of 0 or 1, then the value): a session stored when a delivery carried one
/// identifier at most reads back unchanged.
pub type Identifiers = SmallVec<[u32; 2]>;

/// A message for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The topic.
    pub topic: Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it goes at: the lower of the published and the granted one.
    pub qos: u8,
    /// The retain flag it goes with.
    pub retain: bool,
    /// Its MQTT 5 properties, if any.
    pub properties: Option<Box<Properties>>,
    /// The subscription identifiers of the subscriptions it matched (those that have one).
    pub identifiers: Identifiers,
    /// When it expires (ms since the Unix epoch), from its message expiry interval.
    pub expires_at: Option<u64>,
}

impl Delivery {
    /// Bytes of topic and payload, as queue limits count them.
    pub fn size(&self) -> usize {
        self.topic.len() + self.payload.len()
    }
}

/// A router delivery taken apart: the door's tag, the subscription it names, and the message.
pub(crate) struct Arrival {
    /// The door subscription id the router returned, if it did.
    pub subscription: Option<u32>,
    /// The offset of the message in the router's log of the filter.
    pub offset: Option<u64>,
    /// The door's tag (published QoS, retain, publisher).
    pub tag: Option<Tag>,
    /// Topic, payload and the router's retain flag (set for retained messages sent on
    /// subscribe).
    pub topic: Bytes,
    pub payload: Bytes,
    pub retain: bool,
    pub properties: Option<Properties>,
}

impl Arrival {
    /// Takes a router delivery apart.
    pub fn of(forwarded: Forwarded) -> Arrival {
        let Forwarded {
            subscription,
            offset,
            publish,
            properties,
            tag,
        } = forwarded;
        Arrival {
            subscription,
            offset,
            tag,
            topic: publish.topic,
            payload: publish.payload,
            retain: publish.retain,
            properties,
        }
    }

    /// The message for the client of `subscription` (connection `me`), and how many messages
    /// the router's log skipped before it (it moves the subscription's expected offset on).
    /// No message when the subscription is no-local and `me` published it.
    pub fn deliver(
        self,
        subscription: &mut Subscription,
        me: Option<u64>,
    ) -> (Option<Delivery>, u64) {
        let skipped = self.advance(subscription);
        (self.delivery_for([&*subscription], me), skipped)
    }

    /// Moves `subscription`'s expected offset past this message; returns how many messages
    /// the router's log skipped before it.
    pub fn advance(&self, subscription: &mut Subscription) -> u64 {
        let skipped = match (self.offset, subscription.next_offset) {
            (Some(offset), Some(expected)) if offset > expected => offset - expected,
            _ => 0,
        };
        if let Some(offset) = self.offset {
            subscription.next_offset = Some(offset.saturating_add(1));
        }
        skipped
    }

    /// The one message for the client (connection `me`) of `subscriptions`, all of which
    /// match it: at the highest QoS they grant, with each one's identifier. Subscriptions that
    /// are no-local do not count for a message `me` published; none left, no message.
    pub fn delivery_for<'a>(
        self,
        subscriptions: impl IntoIterator<Item = &'a Subscription>,
        me: Option<u64>,
    ) -> Option<Delivery> {
        let own = me.is_some() && self.tag.map(|tag| tag.publisher) == me;
        let published_retained = self.tag.is_some_and(|tag| tag.retain);
        let published_qos = self.tag.map_or(0, |tag| tag.qos);
        let mut granted = None;
        let mut retain = self.retain;
        let mut identifiers = Identifiers::new();
        for subscription in subscriptions {
            let options = subscription.options;
            if options.no_local && own {
                continue;
            }
            let qos = published_qos.min(options.qos);
            granted = Some(granted.map_or(qos, |g: u8| g.max(qos)));
            retain |= options.retain_as_published && published_retained;
            identifiers.extend(subscription.identifier);
        }
        Some(Delivery {
            topic: self.topic,
            payload: self.payload,
            qos: granted?,
            retain,
            // The router's edge gives none rather than empty ones.
            properties: self.properties.map(Box::new),
            identifiers,
            expires_at: self.tag.and_then(|tag| tag.expires_at),
        })
    }
}

/// Whether `acl` (the client's rules, if it has an ACL) lets its client receive `delivery`;
/// a refusal is counted in `stats`.
pub(crate) fn readable(
    acl: &mut Option<crate::security::ClientRules>,
    stats: &crate::stats::Stats,
    delivery: &Delivery,
) -> bool {
    let Some(acl) = acl else {
        return true;
    };
    let topic = std::str::from_utf8(&delivery.topic).unwrap_or_default();
    if acl.may_read(topic) {
        return true;
    }
    stats.acl_denied_deliveries.inc();
    false
}

impl Delivery {
    /// Whether it has expired at `now` (ms since the Unix epoch).
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Its message expiry interval left at `now`, in whole seconds rounded up.
    pub fn remaining_expiry(&self, now: u64) -> Option<u32> {
        self.expires_at
            .map(|at| u32::try_from(at.saturating_sub(now).div_ceil(1000)).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(qos: u8, no_local: bool, identifier: Option<u32>) -> Subscription {
        let mut subscription = Subscription::to("a/#");
        subscription.options.qos = qos;
        subscription.options.no_local = no_local;
        subscription.identifier = identifier;
        subscription
    }

    fn arrival(qos: u8, publisher: u64) -> Arrival {
        Arrival {
            subscription: None,
            offset: None,
            tag: Some(Tag {
                qos,
                retain: false,
                publisher,
                expires_at: None,
                sequence: 0,
            }),
            topic: Bytes::from_static(b"a/b"),
            payload: Bytes::from_static(b"x"),
            retain: false,
            properties: None,
        }
    }

    #[test]
    fn one_delivery_for_several_subscriptions_takes_the_highest_qos_and_every_identifier() {
        let subs = [
            subscription(0, false, Some(1)),
            subscription(2, true, Some(2)),
            subscription(1, false, None),
            subscription(1, false, Some(4)),
        ];
        let delivery = arrival(2, 9).delivery_for(&subs, Some(7)).unwrap();
        assert_eq!(delivery.qos, 2);
        assert_eq!(delivery.identifiers.as_slice(), [1, 2, 4]);
        // Its own publish: the no-local subscription does not count.
        let delivery = arrival(2, 7).delivery_for(&subs, Some(7)).unwrap();
        assert_eq!(delivery.qos, 1);
        assert_eq!(delivery.identifiers.as_slice(), [1, 4]);
        // Only no-local subscriptions matched its own publish: nothing.
        assert!(arrival(2, 7).delivery_for(&subs[1..2], Some(7)).is_none());
    }

    #[test]
    fn a_delivery_stored_with_one_identifier_at_most_reads_back() {
        /// A delivery as sessions were stored before it carried several identifiers.
        #[derive(Serialize)]
        struct Stored {
            topic: Bytes,
            payload: Bytes,
            qos: u8,
            retain: bool,
            properties: Option<Box<Properties>>,
            identifier: Option<u32>,
            expires_at: Option<u64>,
        }
        for identifier in [None, Some(1), Some(268_435_455)] {
            let stored = Stored {
                topic: Bytes::from_static(b"a/b"),
                payload: Bytes::from_static(b"x"),
                qos: 1,
                retain: true,
                properties: None,
                identifier,
                expires_at: Some(5),
            };
            let bytes = postcard::to_allocvec(&stored).unwrap();
            let read: Delivery = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(read.identifiers.as_slice(), identifier.as_slice());
            assert_eq!((read.qos, read.retain, read.expires_at), (1, true, Some(5)));
        }
    }
}
