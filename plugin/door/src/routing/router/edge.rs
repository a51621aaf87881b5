//! The router's edge: what the door hands the router and what it hands back, in the door's own
//! types, converted to and from rumqttd's here and nowhere else. Conversions move fields (topic,
//! payload and properties are shared or moved, never copied).

use super::{RouterGone, Tx};
use crate::message::{Properties, Publish};
use crate::tag::Tag;
use rumqttd::protocol::{
    Filter, Packet, PingReq, PublishProperties, QoS, RetainForwardRule, Subscribe,
    SubscribeProperties, Unsubscribe,
};
use rumqttd::{Forward, Notification};

/// What the router hands a link.
#[derive(Debug)]
// Deliveries are nearly all of what arrives: boxing them would allocate once per message.
#[allow(clippy::large_enum_variant)]
pub enum FromRouter {
    /// A message for one of the link's subscriptions.
    Deliver(Forwarded),
    /// A subscription of the link is in place.
    SubAck,
    /// The answer to a ping: everything handed over before it was taken.
    Pong,
    /// The router paused the link until it says it reads again ([`super::Rx::ready`]).
    Unschedule,
    /// The router dropped the link.
    Disconnected,
    /// Nothing the door acts on.
    Other,
}

/// A message the router forwards on one of a link's subscriptions.
#[derive(Debug)]
pub struct Forwarded {
    /// The door's id of the subscription it matched, when the router names it.
    pub subscription: Option<u32>,
    /// Its offset in the router's log of that subscription's filter.
    pub offset: Option<u64>,
    /// Topic, payload and the router's retain flag.
    pub publish: Publish,
    /// Its properties; `None` when it has none (never empty ones).
    pub properties: Option<Properties>,
    /// The door's tag, as the door published it (`None` for a message the door did not tag).
    pub tag: Option<Tag>,
}

impl From<Notification> for FromRouter {
    fn from(notification: Notification) -> Self {
        match notification {
            Notification::Forward(forward) => FromRouter::Deliver(Forwarded::from(forward)),
            Notification::DeviceAck(ack) => match Packet::from(ack) {
                Packet::SubAck(..) => FromRouter::SubAck,
                Packet::PingResp(_) => FromRouter::Pong,
                _ => FromRouter::Other,
            },
            Notification::Unschedule => FromRouter::Unschedule,
            Notification::Disconnect(..) => FromRouter::Disconnected,
            _ => FromRouter::Other,
        }
    }
}

impl From<Forward> for Forwarded {
    fn from(forward: Forward) -> Self {
        let Forward {
            cursor,
            publish,
            properties,
            ..
        } = forward;
        let (subscription, tag, properties) = match properties {
            Some(p) => (
                p.subscription_identifiers.first().map(|&id| id as u32),
                p.carried.and_then(Tag::from_words),
                Some(Properties {
                    payload_format_indicator: p.payload_format_indicator,
                    message_expiry_interval: p.message_expiry_interval,
                    content_type: p.content_type,
                    response_topic: p.response_topic,
                    correlation_data: p.correlation_data,
                    user_properties: p.user_properties,
                })
                .filter(|p| !p.is_empty()),
            ),
            None => (None, None, None),
        };
        Forwarded {
            subscription,
            offset: cursor.map(|(_, offset)| offset),
            publish: Publish {
                topic: publish.topic,
                payload: publish.payload,
                retain: publish.retain,
            },
            properties,
            tag,
        }
    }
}

fn router_properties(p: Properties, tag: Tag) -> PublishProperties {
    PublishProperties {
        carried: Some(tag.to_words()),
        payload_format_indicator: p.payload_format_indicator,
        message_expiry_interval: p.message_expiry_interval,
        topic_alias: None,
        response_topic: p.response_topic,
        correlation_data: p.correlation_data,
        user_properties: p.user_properties,
        subscription_identifiers: Vec::new(),
        content_type: p.content_type,
    }
}

/// Packets for the router, handed over with one wake-up.
#[derive(Default)]
pub struct Batch {
    packets: Vec<Packet>,
    bytes: usize,
}

/// A batch this large goes to the router before more is added: the router appends a whole
/// batch in one turn, and a filter's log must hold what all publishers append in a turn.
const FULL_MESSAGES: usize = 64;
const FULL_BYTES: usize = 32 * 1024;

impl Batch {
    /// Adds a publish (at QoS 0: the door keeps QoS itself) with the door's `tag`.
    pub fn publish(&mut self, publish: Publish, properties: Option<Properties>, tag: Tag) {
        self.bytes += publish.topic.len() + publish.payload.len();
        let publish =
            rumqttd::protocol::Publish::new(publish.topic, publish.payload, publish.retain);
        let properties = router_properties(properties.unwrap_or_default(), tag);
        self.packets
            .push(Packet::Publish(publish, Some(properties)));
    }

    /// Adds the router subscription behind door subscription `id`: always at QoS 0 (the door
    /// delivers at the right QoS itself), tagged with `id` so that every delivery names its
    /// subscription.
    pub fn subscribe(&mut self, id: u32, filter: String) {
        self.packets.push(subscribe(id, filter));
    }

    /// Adds the removal of the router subscriptions to `filters`.
    pub fn unsubscribe(&mut self, filters: Vec<String>) {
        let unsubscribe = Unsubscribe { pkid: 1, filters };
        self.packets.push(Packet::Unsubscribe(unsubscribe, None));
    }

    /// Adds a ping: the router answers it ([`FromRouter::Pong`]) once it took what came before.
    pub fn ping(&mut self) {
        self.packets.push(Packet::PingReq(PingReq));
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Whether the batch should go now (see [`FULL_MESSAGES`], [`FULL_BYTES`]).
    pub fn is_full(&self) -> bool {
        self.packets.len() >= FULL_MESSAGES || self.bytes >= FULL_BYTES
    }

    /// Hands everything to the router through `link`. Fails when the router is gone.
    pub fn flush(&mut self, link: &mut Tx) -> Result<(), RouterGone> {
        self.bytes = 0;
        let Some(last) = self.packets.pop() else {
            return Ok(());
        };
        if !self.packets.is_empty() {
            link.link.buffer().extend(self.packets.drain(..));
        }
        super::send(link, last)
    }
}

fn subscribe(id: u32, filter: String) -> Packet {
    let subscribe = Subscribe {
        pkid: 1,
        filters: vec![Filter {
            path: filter,
            qos: QoS::AtMostOnce,
            nolocal: false,
            preserve_retain: false,
            // The door keeps retained messages; the router has none to forward.
            retain_forward_rule: RetainForwardRule::Never,
        }],
    };
    let properties = SubscribeProperties {
        id: Some(id as usize),
        user_properties: Vec::new(),
    };
    Packet::Subscribe(subscribe, Some(properties))
}

/// Subscribes `link` to `filter` as door subscription `id` (see [`Batch::subscribe`]).
pub fn subscribe_now(link: &mut Tx, id: u32, filter: String) -> Result<(), RouterGone> {
    super::send(link, subscribe(id, filter))
}

/// Pings the router on `link` (see [`Batch::ping`]).
pub fn ping(link: &mut Tx) -> Result<(), RouterGone> {
    super::send(link, Packet::PingReq(PingReq))
}

/// Ends a link: the router forgets the connection (keeping a persistent session's state).
pub fn end(link: &mut Tx) {
    use rumqttd::protocol::{Disconnect, DisconnectReasonCode};
    let disconnect = Disconnect {
        reason_code: DisconnectReasonCode::NormalDisconnection,
    };
    let _ = super::send(link, Packet::Disconnect(disconnect, None));
}

/// Tests: a ping handed over on a link made by `Router::bare_tx`, waiting for room in the
/// router's queue.
#[cfg(test)]
pub(crate) fn ping_bare(link: &mut rumqttd::local::LinkTx) {
    let _ = super::send_now(link, Packet::PingReq(PingReq));
}
