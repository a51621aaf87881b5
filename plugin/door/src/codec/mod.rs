//! MQTT on the wire: the version from CONNECT, then every packet of that version decoded into
//! one version-free form ([`Inbound`]) and written back in the client's version ([`Wire`]).
//!
//! Packets are framed and checked by `rmqtt-codec` (MQTT 3.1, 3.1.1 and 5, with the size
//! limit applied before a packet is buffered); what the protocol asks beyond its checks (topic
//! names without wildcards, filters well formed) is checked by the door.

use bytes::BytesMut;
use bytestring::ByteString;
use rmqtt_codec::error::DecodeError;
use rmqtt_codec::types::{Publish, QoS};
use rmqtt_codec::{v3, v5};
use std::fmt;
use tokio_util::codec::Decoder;

pub mod aliases;
mod wire;

pub use wire::{byte_string, qos_of, Connack, Wire};

/// The MQTT version a client speaks, from its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1 (`MQIsdp`, level 3).
    V3_1,
    /// MQTT 3.1.1 (level 4).
    V3_1_1,
    /// MQTT 5 (level 5).
    V5,
}

impl Version {
    /// Whether this is MQTT 5.
    pub fn is_v5(self) -> bool {
        self == Version::V5
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V3_1 => "MQTT 3.1",
            Version::V3_1_1 => "MQTT 3.1.1",
            Version::V5 => "MQTT 5",
        })
    }
}

/// What the first bytes of a connection say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Not enough bytes yet.
    Incomplete,
    /// Not a CONNECT, or not MQTT at all.
    NotMqtt,
    /// A CONNECT of a protocol level Weir does not speak.
    UnsupportedLevel(u8),
    /// A CONNECT of this version.
    Connect(Version),
    /// A CONNECT of this version from a bridge: mosquitto's bridges set bit 7 of the protocol
    /// level (`try_private`), asking to be served as a bridge (no-local, retain as published).
    Bridge(Version),
}

/// Reads the protocol name and level of the CONNECT at the start of `buf` (without consuming).
///
/// ```
/// use weir_door::codec::{opening, Opening, Version};
/// let v311 = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00";
/// assert_eq!(opening(v311), Opening::Connect(Version::V3_1_1));
/// let v31 = b"\x10\x0e\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x00";
/// assert_eq!(opening(v31), Opening::Connect(Version::V3_1));
/// assert_eq!(opening(b"\x10\x0c\x00\x04MQTT\x07"), Opening::UnsupportedLevel(7));
/// assert_eq!(opening(b"GET / HTTP/1.1"), Opening::NotMqtt);
/// assert_eq!(opening(b"\x10"), Opening::Incomplete);
/// let bridge = b"\x10\x0c\x00\x04MQTT\x84\x02\x00\x3c\x00\x00";
/// assert_eq!(opening(bridge), Opening::Bridge(Version::V3_1_1));
/// ```
pub fn opening(buf: &[u8]) -> Opening {
    match plain_opening(buf) {
        Opening::UnsupportedLevel(level @ (0x83 | 0x84)) => {
            let Some(at) = level_offset(buf) else {
                return Opening::Incomplete;
            };
            let mut plain = buf[..=at].to_vec();
            plain[at] = level & 0x7f;
            match plain_opening(&plain) {
                Opening::Connect(version) => Opening::Bridge(version),
                other => other,
            }
        }
        other => other,
    }
}

/// Where the protocol level of the CONNECT at the start of `buf` is, once its header is there.
fn level_offset(buf: &[u8]) -> Option<usize> {
    let mut at = 1;
    while buf.get(at)? & 0x80 != 0 {
        at += 1;
    }
    let name_len = u16::from_be_bytes([*buf.get(at + 1)?, *buf.get(at + 2)?]);
    let level = at + 3 + usize::from(name_len);
    buf.get(level).map(|_| level)
}

/// Clears the bridge bit of the CONNECT at the start of `buf` (see [`Opening::Bridge`]), so
/// that the codec reads it as the plain version.
pub fn clear_bridge_bit(buf: &mut [u8]) {
    if let Some(at) = level_offset(buf) {
        buf[at] &= 0x7f;
    }
}

fn plain_opening(buf: &[u8]) -> Opening {
    let Some((&first, rest)) = buf.split_first() else {
        return Opening::Incomplete;
    };
    if first != 0x10 {
        return Opening::NotMqtt;
    }
    // Remaining length: 1 to 4 bytes.
    let mut at = 0;
    loop {
        match rest.get(at) {
            None => return Opening::Incomplete,
            Some(byte) if byte & 0x80 == 0 => break,
            Some(_) if at == 3 => return Opening::NotMqtt,
            Some(_) => at += 1,
        }
    }
    let header = &rest[at + 1..];
    let name_and_level = |name: &[u8]| {
        let end = 2 + name.len();
        match header.get(..=end) {
            None => None,
            Some(bytes) if &bytes[2..end] == name => Some(Some(bytes[end])),
            Some(_) => Some(None),
        }
    };
    let (Some(&len_hi), Some(&len_lo)) = (header.first(), header.get(1)) else {
        return Opening::Incomplete;
    };
    let name: &[u8] = match u16::from_be_bytes([len_hi, len_lo]) {
        4 => b"MQTT",
        6 => b"MQIsdp",
        _ => return Opening::NotMqtt,
    };
    match name_and_level(name) {
        None => Opening::Incomplete,
        Some(None) => Opening::NotMqtt,
        Some(Some(3)) if name == b"MQIsdp" => Opening::Connect(Version::V3_1),
        Some(Some(4)) if name == b"MQTT" => Opening::Connect(Version::V3_1_1),
        Some(Some(5)) if name == b"MQTT" => Opening::Connect(Version::V5),
        Some(Some(level)) => Opening::UnsupportedLevel(level),
    }
}

/// Subscription options, as MQTT 5 has them (MQTT 3 clients get the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionOptions {
    /// Requested QoS.
    pub qos: u8,
    /// Do not deliver the client's own publishes.
    pub no_local: bool,
    /// Keep the retain flag of messages as published.
    pub retain_as_published: bool,
    /// Retained messages on subscribe: 0 always, 1 for a new subscription, 2 never.
    pub retain_handling: u8,
}

/// A packet from a client, whatever its version.
#[derive(Debug)]
pub enum Inbound {
    /// PUBLISH.
    Publish(Box<Publish>),
    /// PUBACK for a delivery.
    PubAck(u16),
    /// PUBREC for a QoS 2 delivery.
    PubRec(u16),
    /// PUBREL for a QoS 2 publish.
    PubRel(u16),
    /// PUBCOMP for a QoS 2 delivery.
    PubComp(u16),
    /// SUBSCRIBE.
    Subscribe {
        /// Packet id.
        pkid: u16,
        /// Filters and options.
        filters: Vec<(ByteString, SubscriptionOptions)>,
        /// MQTT 5 subscription identifier.
        id: Option<u32>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Packet id.
        pkid: u16,
        /// Filters.
        filters: Vec<ByteString>,
    },
    /// PINGREQ.
    PingReq,
    /// DISCONNECT (MQTT 5: with its reason code and session expiry).
    Disconnect {
        /// Reason code (0 for MQTT 3).
        reason: u8,
        /// A new session expiry interval.
        session_expiry: Option<u32>,
    },
    /// A packet a client must not send after CONNECT (CONNECT again, AUTH, or a server's).
    Unexpected(&'static str),
}

/// A client connection's codec, after CONNECT.
#[derive(Debug)]
pub enum Codec {
    /// MQTT 3.1 and 3.1.1.
    V3(v3::Codec),
    /// MQTT 5.
    V5(v5::Codec),
}

impl Codec {
    /// A codec for `version` accepting packets up to `max_packet_size` bytes.
    pub fn new(version: Version, max_packet_size: u32) -> Codec {
        match version {
            Version::V5 => Codec::V5(v5::Codec::new(max_packet_size, 0)),
            _ => Codec::V3(v3::Codec::new(max_packet_size)),
        }
    }

    /// The next whole packet in `buf`, if any.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Inbound>, DecodeError> {
        Ok(match self {
            Codec::V3(codec) => codec.decode(buf)?.map(|(packet, _)| from_v3(packet)),
            Codec::V5(codec) => codec.decode(buf)?.map(|(packet, _)| from_v5(packet)),
        })
    }

    /// The CONNECT at the start of `buf`, if whole.
    pub fn decode_connect(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Option<ConnectPacket>, DecodeError> {
        Ok(match self {
            Codec::V3(codec) => match codec.decode(buf)? {
                Some((v3::Packet::Connect(connect), _)) => Some(ConnectPacket::V3(connect)),
                Some(_) => return Err(DecodeError::UnsupportedPacketType),
                None => None,
            },
            Codec::V5(codec) => match codec.decode(buf)? {
                Some((v5::Packet::Connect(connect), _)) => Some(ConnectPacket::V5(connect)),
                Some(_) => return Err(DecodeError::UnsupportedPacketType),
                None => None,
            },
        })
    }
}

/// A decoded CONNECT.
#[derive(Debug)]
pub enum ConnectPacket {
    /// MQTT 3.1 or 3.1.1.
    V3(Box<v3::Connect>),
    /// MQTT 5.
    V5(Box<v5::Connect>),
}

fn from_v3(packet: v3::Packet) -> Inbound {
    use v3::Packet as P;
    match packet {
        P::Publish(publish) => Inbound::Publish(publish),
        P::PublishAck { packet_id } => Inbound::PubAck(packet_id.get()),
        P::PublishReceived { packet_id } => Inbound::PubRec(packet_id.get()),
        P::PublishRelease { packet_id } => Inbound::PubRel(packet_id.get()),
        P::PublishComplete { packet_id } => Inbound::PubComp(packet_id.get()),
        P::Subscribe {
            packet_id,
            topic_filters,
        } => Inbound::Subscribe {
            pkid: packet_id.get(),
            filters: topic_filters
                .into_iter()
                .map(|(filter, qos)| (filter, default_options(qos)))
                .collect(),
            id: None,
        },
        P::Unsubscribe {
            packet_id,
            topic_filters,
        } => Inbound::Unsubscribe {
            pkid: packet_id.get(),
            filters: topic_filters,
        },
        P::PingRequest => Inbound::PingReq,
        P::Disconnect => Inbound::Disconnect {
            reason: 0,
            session_expiry: None,
        },
        P::Connect(_) => Inbound::Unexpected("a second CONNECT"),
        _ => Inbound::Unexpected("a packet only a server sends"),
    }
}

fn from_v5(packet: v5::Packet) -> Inbound {
    use v5::Packet as P;
    match packet {
        P::Publish(publish) => Inbound::Publish(publish),
        P::PublishAck(ack) => Inbound::PubAck(ack.packet_id.get()),
        P::PublishReceived(ack) => Inbound::PubRec(ack.packet_id.get()),
        P::PublishRelease(ack) => Inbound::PubRel(ack.packet_id.get()),
        P::PublishComplete(ack) => Inbound::PubComp(ack.packet_id.get()),
        P::Subscribe(subscribe) => Inbound::Subscribe {
            pkid: subscribe.packet_id.get(),
            filters: subscribe
                .topic_filters
                .into_iter()
                .map(|(filter, options)| {
                    let options = SubscriptionOptions {
                        qos: options.qos.value(),
                        no_local: options.no_local,
                        retain_as_published: options.retain_as_published,
                        retain_handling: options.retain_handling.into(),
                    };
                    (filter, options)
                })
                .collect(),
            id: subscribe.id.map(|id| id.get()),
        },
        P::Unsubscribe(unsubscribe) => Inbound::Unsubscribe {
            pkid: unsubscribe.packet_id.get(),
            filters: unsubscribe.topic_filters,
        },
        P::PingRequest => Inbound::PingReq,
        P::Disconnect(disconnect) => Inbound::Disconnect {
            reason: disconnect.reason_code.into(),
            session_expiry: disconnect.session_expiry_interval_secs,
        },
        P::Connect(_) => Inbound::Unexpected("a second CONNECT"),
        P::Auth(_) => Inbound::Unexpected("AUTH (enhanced authentication is not supported)"),
        _ => Inbound::Unexpected("a packet only a server sends"),
    }
}

fn default_options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: qos.value(),
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    }
}
