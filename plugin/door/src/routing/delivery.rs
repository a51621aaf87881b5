//! A message on its way to one client, in the form a session keeps it: what is written to the
//! client, what waits in its queue while it is connected or away, and what is resent after a
//! reconnect. Plain data (serde), so that a session can be stored as it is.

use crate::message::Properties;
use crate::router::Forwarded;
use crate::session::Subscription;
use crate::tag::Tag;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

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
    /// The subscription identifier of the subscription it matched.
    pub identifier: Option<u32>,
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
        let skipped = match (self.offset, subscription.next_offset) {
            (Some(offset), Some(expected)) if offset > expected => offset - expected,
            _ => 0,
        };
        if let Some(offset) = self.offset {
            subscription.next_offset = Some(offset.saturating_add(1));
        }
        let options = subscription.options;
        let own = me.is_some() && self.tag.map(|tag| tag.publisher) == me;
        if options.no_local && own {
            return (None, skipped);
        }
        // The router's edge gives none rather than empty ones.
        let properties = self.properties.map(Box::new);
        let published_retained = self.tag.is_some_and(|tag| tag.retain);
        let delivery = Delivery {
            topic: self.topic,
            payload: self.payload,
            qos: self.tag.map_or(0, |tag| tag.qos).min(options.qos),
            retain: self.retain || (options.retain_as_published && published_retained),
            properties,
            identifier: subscription.identifier,
            expires_at: self.tag.and_then(|tag| tag.expires_at),
        };
        (Some(delivery), skipped)
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
