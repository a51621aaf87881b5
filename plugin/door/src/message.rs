//! A message inside the door ([`Publish`] and its [`Properties`]), and its other forms: graph
//! messages both ways, and MQTT 5 properties to and from the wire.
//!
//! Coming in, the message's timestamp is the MQTT 5 user property `__ts` when present, valid and
//! not further ahead of the broker's clock than it trusts (the clock then observes it, so later
//! local stamps are greater), else the broker's clock.
//! `__ts` is taken out of the user properties: the timestamp carries it. Going out, `__ts` is
//! written from the item's timestamp after the other user properties, whose order and
//! duplicates are kept, as are payload and content type. Bytes are shared, never copied.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_model::data::Message;
use weir_model::hlc::{Hlc, HlcClock, ParseHlcError};

/// The user property that carries a message's hybrid-logical-clock timestamp.
pub const TIMESTAMP_PROPERTY: &str = "__ts";

/// A publish inside the door: topic, payload and retain flag (its [`Properties`] go beside it,
/// its QoS and publisher in its [`crate::tag::Tag`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The topic (valid UTF-8, no wildcards).
    pub topic: Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The retain flag.
    pub retain: bool,
}

impl Publish {
    /// A publish from its parts.
    ///
    /// ```
    /// use weir_door::message::Publish;
    /// let publish = Publish::new("sensors/1", "21.5", false);
    /// assert_eq!((&publish.topic[..], &publish.payload[..]), (&b"sensors/1"[..], &b"21.5"[..]));
    /// ```
    pub fn new(topic: impl Into<Bytes>, payload: impl Into<Bytes>, retain: bool) -> Publish {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            retain,
        }
    }
}

/// The MQTT 5 properties a message carries through the door to its subscribers (the topic
/// alias and subscription identifiers are per connection and added when it is written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Properties {
    /// 1: the payload is UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// Seconds the message lives, as the publisher set it (see [`crate::delivery::Delivery::expires_at`]).
    pub message_expiry_interval: Option<u32>,
    /// The payload's content type.
    pub content_type: Option<String>,
    /// Where a response goes.
    pub response_topic: Option<String>,
    /// What ties a response to its request.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order, duplicates kept.
    pub user_properties: Vec<(String, String)>,
}

impl Properties {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// Where an incoming message's timestamp came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A valid `__ts` user property.
    Property,
    /// The broker's clock: the message had no `__ts`.
    Clock,
    /// The broker's clock, because `__ts` was not valid (count and report it).
    Invalid(ParseHlcError),
    /// The broker's clock, because `__ts` was further ahead of it than the clock trusts
    /// (count and report it).
    Ahead(Hlc),
}

impl Stamp {
    /// Why the message's own timestamp was not used, if it had one.
    pub fn distrust(&self, max_skew_ms: u64) -> Option<String> {
        match self {
            Stamp::Invalid(error) => Some(error.to_string()),
            Stamp::Ahead(hlc) => Some(format!(
                "__ts `{hlc}` is more than {max_skew_ms} ms ahead of the broker's clock (engine.max_clock_skew_ms)"
            )),
            Stamp::Property | Stamp::Clock => None,
        }
    }
}

/// A router publish as a graph message, and where its timestamp came from.
///
/// ```
/// use weir_door::message::{Properties, Publish};
/// use weir_model::hlc::HlcClock;
/// use weir_door::message::{message_from_publish, Stamp};
///
/// let publish = Publish::new("sensors/gw1/temperature", "{}", false);
/// let properties = Properties {
///     user_properties: vec![("__ts".into(), "001700000000123:00004:gw1".into())],
///     ..Default::default()
/// };
/// let (message, stamp) = message_from_publish(&publish, Some(&properties), &mut HlcClock::new("weir"));
/// assert_eq!(stamp, Stamp::Property);
/// assert_eq!(message.timestamp.to_string(), "001700000000123:00004:gw1");
/// assert!(message.user_properties.is_empty());
/// ```
pub fn message_from_publish(
    publish: &Publish,
    properties: Option<&Properties>,
    clock: &mut HlcClock,
) -> (Message, Stamp) {
    let mut timestamp = None;
    let mut invalid = None;
    let mut user_properties = Vec::new();
    if let Some(properties) = properties {
        user_properties.reserve(properties.user_properties.len());
        for (key, value) in &properties.user_properties {
            if key == TIMESTAMP_PROPERTY && timestamp.is_none() {
                match Hlc::parse(value) {
                    Ok(hlc) => timestamp = Some(hlc),
                    Err(error) => invalid = Some(error),
                }
            } else {
                user_properties.push((Bytes::from(key.clone()), Bytes::from(value.clone())));
            }
        }
    }
    let (timestamp, stamp) = match (timestamp, invalid) {
        (Some(hlc), _) if !clock.trusts(&hlc) => (clock.now(), Stamp::Ahead(hlc)),
        (Some(hlc), _) => {
            clock.observe(&hlc);
            (hlc, Stamp::Property)
        }
        (None, Some(error)) => (clock.now(), Stamp::Invalid(error)),
        (None, None) => (clock.now(), Stamp::Clock),
    };
    let message = Message {
        timestamp,
        topic: publish.topic.clone(),
        content_type: properties
            .and_then(|p| p.content_type.clone())
            .map(Bytes::from),
        payload: publish.payload.clone(),
        user_properties,
        schema: None,
    };
    (message, stamp)
}

/// MQTT 5 properties as decoded from a client (the topic alias is the door's business and was
/// taken out before).
pub fn properties_from_wire(wire: rmqtt_codec::v5::PublishProperties) -> Properties {
    let text = |s: bytestring::ByteString| s.to_string();
    Properties {
        payload_format_indicator: wire.is_utf8_payload.then_some(1),
        message_expiry_interval: wire.message_expiry_interval.map(|i| i.get()),
        response_topic: wire.response_topic.map(text),
        correlation_data: wire.correlation_data,
        user_properties: wire
            .user_properties
            .into_iter()
            .map(|(key, value)| (text(key), text(value)))
            .collect(),
        content_type: wire.content_type.map(text),
    }
}

/// A delivery's properties in the wire form for an MQTT 5 client, with its subscription
/// identifiers and the message expiry interval it has left (replacing the one it was published
/// with); `None` when there is nothing to send.
pub fn properties_to_wire(
    properties: Option<&Properties>,
    subscription_identifiers: &[u32],
    remaining_expiry: Option<u32>,
) -> Option<rmqtt_codec::v5::PublishProperties> {
    let subscription_ids: Vec<std::num::NonZeroU32> = subscription_identifiers
        .iter()
        .filter_map(|&id| std::num::NonZeroU32::new(id))
        .collect();
    if properties.is_none() && subscription_ids.is_empty() {
        return None;
    }
    let text = |s: &String| bytestring::ByteString::from(s.as_str());
    let mut wire = rmqtt_codec::v5::PublishProperties {
        subscription_ids,
        ..Default::default()
    };
    if let Some(p) = properties {
        wire.correlation_data = p.correlation_data.clone();
        wire.message_expiry_interval = remaining_expiry
            .or(p.message_expiry_interval)
            .map(|secs| secs.max(1))
            .and_then(std::num::NonZeroU32::new);
        wire.content_type = p.content_type.as_ref().map(text);
        wire.user_properties = p
            .user_properties
            .iter()
            .map(|(key, value)| (text(key), text(value)))
            .collect();
        wire.is_utf8_payload = p.payload_format_indicator == Some(1);
        wire.response_topic = p.response_topic.as_ref().map(text);
    }
    Some(wire)
}

/// A graph result as a publish on `topic`, with its content type, user properties and `__ts`.
/// User properties that are not valid UTF-8 (a module may make any bytes) are replaced
/// lossily, since MQTT strings are UTF-8. The message is taken apart: its payload moves.
///
/// ```
/// use weir_door::message::publish_from_message;
/// use weir_model::{data::Message, hlc::Hlc};
///
/// let message = Message::new(Hlc::from_millis(1_700_000_000_123, 4, "gw1".into()), "in", "21.5");
/// let (publish, properties) = publish_from_message(message, "out".into(), false);
/// assert_eq!(&publish.payload[..], b"21.5");
/// assert_eq!(
///     properties.user_properties,
///     [("__ts".to_string(), "001700000000123:00004:gw1".to_string())]
/// );
/// ```
pub fn publish_from_message(message: Message, topic: Bytes, retain: bool) -> (Publish, Properties) {
    let text = |bytes: Bytes| match String::from_utf8(Vec::from(bytes)) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    };
    let mut user_properties = Vec::with_capacity(message.user_properties.len() + 1);
    for (key, value) in message.user_properties {
        if key != TIMESTAMP_PROPERTY.as_bytes() {
            user_properties.push((text(key), text(value)));
        }
    }
    user_properties.push((
        TIMESTAMP_PROPERTY.into(),
        timestamp_text(&message.timestamp),
    ));
    let properties = Properties {
        user_properties,
        content_type: message.content_type.map(text),
        ..Default::default()
    };
    (Publish::new(topic, message.payload, retain), properties)
}

/// `timestamp` in its `__ts` form, written into one allocation of the right size.
fn timestamp_text(timestamp: &Hlc) -> String {
    use std::fmt::Write;
    // 15 digits of milliseconds, `:`, 5 of counter, `:`, the node id.
    let mut text = String::with_capacity(22 + timestamp.node_id.len());
    let _ = write!(text, "{timestamp}");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(user: &[(&str, &str)], content_type: Option<&str>) -> Properties {
        Properties {
            user_properties: user
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            content_type: content_type.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_keeps_payload_content_type_and_property_order() {
        let publish = Publish::new("in/a", "payload", false);
        let properties = props(
            &[
                ("k", "1"),
                ("__ts", "001700000000123:00004:gw1"),
                ("k", "2"),
                ("z", ""),
            ],
            Some("application/json"),
        );
        let mut clock = HlcClock::new("weir");
        let (message, stamp) = message_from_publish(&publish, Some(&properties), &mut clock);
        assert_eq!(stamp, Stamp::Property);
        assert_eq!(&message.payload[..], b"payload");
        let (out, out_properties) = publish_from_message(message, "out/a".into(), true);
        assert_eq!(
            (&out.topic[..], &out.payload[..], out.retain),
            (&b"out/a"[..], &b"payload"[..], true)
        );
        assert_eq!(
            out_properties.content_type.as_deref(),
            Some("application/json")
        );
        assert_eq!(
            out_properties.user_properties,
            props(
                &[
                    ("k", "1"),
                    ("k", "2"),
                    ("z", ""),
                    ("__ts", "001700000000123:00004:gw1")
                ],
                None
            )
            .user_properties
        );
    }

    #[test]
    fn a_missing_or_invalid_timestamp_comes_from_the_clock() {
        let publish = Publish::new("in", "x", false);
        let mut clock = HlcClock::new("weir");
        let (first, stamp) = message_from_publish(&publish, None, &mut clock);
        assert_eq!(stamp, Stamp::Clock);
        assert_eq!(&*first.timestamp.node_id, "weir");
        let bad = props(&[("__ts", "yesterday")], None);
        let (second, stamp) = message_from_publish(&publish, Some(&bad), &mut clock);
        assert!(matches!(stamp, Stamp::Invalid(_)), "{stamp:?}");
        assert!(
            second.timestamp > first.timestamp,
            "ties are broken by the counter"
        );
        // The invalid value is not kept as a user property either.
        assert!(second.user_properties.is_empty());
    }

    #[test]
    fn a_remote_timestamp_moves_the_local_clock_forward_within_the_trusted_skew() {
        let mut clock = HlcClock::new("weir");
        let ahead = clock.now().millis() + 30_000;
        let near = format!("{ahead:015}:00007:remote");
        let near = props(&[("__ts", near.as_str())], None);
        let (first, stamp) =
            message_from_publish(&Publish::new("in", "x", false), Some(&near), &mut clock);
        assert_eq!((stamp, first.timestamp.millis()), (Stamp::Property, ahead));
        let (later, _) = message_from_publish(&Publish::new("in", "y", false), None, &mut clock);
        assert!(later.timestamp.millis() >= ahead);
    }

    #[test]
    fn a_timestamp_far_ahead_is_not_trusted_and_does_not_move_the_clock() {
        let mut clock = HlcClock::new("weir");
        let far = props(&[("__ts", "900000000000000:00007:remote")], None);
        let (message, stamp) =
            message_from_publish(&Publish::new("in", "x", false), Some(&far), &mut clock);
        assert!(matches!(stamp, Stamp::Ahead(_)), "{stamp:?}");
        assert!(stamp
            .distrust(60_000)
            .unwrap()
            .contains("ahead of the broker's clock"));
        assert!(message.timestamp.millis() < 900_000_000_000_000);
        let (later, _) = message_from_publish(&Publish::new("in", "y", false), None, &mut clock);
        assert!(later.timestamp.millis() < 900_000_000_000_000);
    }
}
