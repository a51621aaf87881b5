//! Packets written in a client's version: every reply, delivery and refusal the door sends,
//! within what the client negotiated (its maximum packet size, topic aliases, and whether it
//! takes reason strings).

use super::aliases::{Alias, TopicAliases};
use super::{Codec, Version};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rmqtt_codec::error::EncodeError;
use rmqtt_codec::types::{Publish, QoS};
use rmqtt_codec::{v3, v5};
use std::num::NonZeroU16;
use tokio_util::codec::Encoder;

/// Writes packets in a client's version.
#[derive(Debug)]
pub struct Wire {
    version: Version,
    codec: Codec,
    aliases: TopicAliases,
    /// Whether acknowledgements may carry reason strings.
    problem_information: bool,
}

/// A packet id (never zero: ids come from the client or the door's allocator).
fn id(pkid: u16) -> NonZeroU16 {
    NonZeroU16::new(pkid).unwrap_or(NonZeroU16::MIN)
}

impl Wire {
    /// Writes `version` packets no larger than `max_packet_size` (0: no limit), without topic
    /// aliases or reason strings on acknowledgements (for refusals).
    pub fn new(version: Version, max_packet_size: u32) -> Wire {
        let codec = match version {
            Version::V5 => {
                let mut codec = v5::Codec::new(0, 0);
                codec.set_max_outbound_size(max_packet_size);
                Codec::V5(codec)
            }
            _ => Codec::V3(v3::Codec::new(0)),
        };
        Wire {
            version,
            codec,
            aliases: TopicAliases::default(),
            problem_information: false,
        }
    }

    /// Writes what a client negotiated in its CONNECT: its version, maximum packet size, and,
    /// for MQTT 5, its topic alias maximum and whether it takes reason strings.
    pub fn negotiated(
        version: Version,
        max_packet_size: u32,
        topic_alias_maximum: u16,
        problem_information: bool,
    ) -> Wire {
        let mut wire = Wire::new(version, max_packet_size);
        if version.is_v5() {
            wire.aliases = TopicAliases::new(topic_alias_maximum);
            wire.problem_information = problem_information;
        }
        wire
    }

    /// The client's version.
    pub fn version(&self) -> Version {
        self.version
    }

    fn write(
        &mut self,
        v3: impl FnOnce() -> v3::Packet,
        v5: impl FnOnce() -> v5::Packet,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        match &mut self.codec {
            Codec::V3(codec) => codec.encode(v3(), out),
            Codec::V5(codec) => codec.encode(v5(), out),
        }
    }

    /// PUBLISH, through a topic alias where the client takes them. Fails (writing nothing)
    /// when it is larger than the client accepts.
    pub fn publish(&mut self, mut publish: Publish, out: &mut BytesMut) -> Result<(), EncodeError> {
        let mark = out.len();
        let written = match &mut self.codec {
            Codec::V3(codec) => {
                publish.properties = None;
                codec.encode(v3::Packet::Publish(Box::new(publish)), out)
            }
            Codec::V5(codec) => {
                let alias = self.aliases.lookup(&publish.topic);
                let topic = match alias {
                    Alias::Known(_) => std::mem::take(&mut publish.topic),
                    Alias::New(_) => publish.topic.clone(),
                    Alias::None => ByteString::new(),
                };
                if let Alias::Known(n) | Alias::New(n) = alias {
                    publish
                        .properties
                        .get_or_insert_with(Default::default)
                        .topic_alias = NonZeroU16::new(n);
                }
                let written = codec.encode(v5::Packet::Publish(Box::new(publish)), out);
                if let (Ok(()), Alias::New(n)) = (&written, alias) {
                    self.aliases.assign(topic, n);
                }
                written
            }
        };
        if written.is_err() {
            out.truncate(mark);
        }
        written
    }

    /// PUBACK (`reason` is MQTT 5's; MQTT 3 has none).
    pub fn puback(&mut self, pkid: u16, reason: v5::PublishAckReason, out: &mut BytesMut) {
        let explain = self.problem_information;
        let _ = self.write(
            || v3::Packet::PublishAck {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishAck(ack(pkid, reason, explain)),
            out,
        );
    }

    /// PUBREC.
    pub fn pubrec(&mut self, pkid: u16, reason: v5::PublishAckReason, out: &mut BytesMut) {
        let explain = self.problem_information;
        let _ = self.write(
            || v3::Packet::PublishReceived {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishReceived(ack(pkid, reason, explain)),
            out,
        );
    }

    /// PUBREL.
    pub fn pubrel(&mut self, pkid: u16, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::PublishRelease {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishRelease(ack2(pkid, v5::PublishAck2Reason::Success)),
            out,
        );
    }

    /// PUBCOMP (`found`: whether the packet id was known).
    pub fn pubcomp(&mut self, pkid: u16, found: bool, out: &mut BytesMut) {
        let reason = if found {
            v5::PublishAck2Reason::Success
        } else {
            v5::PublishAck2Reason::PacketIdNotFound
        };
        let _ = self.write(
            || v3::Packet::PublishComplete {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishComplete(ack2(pkid, reason)),
            out,
        );
    }

    /// SUBACK: for each filter, the granted QoS or the refusal.
    pub fn suback(
        &mut self,
        pkid: u16,
        granted: &[Result<u8, v5::SubscribeAckReason>],
        out: &mut BytesMut,
    ) {
        let explain = self.problem_information;
        let _ = self.write(
            || v3::Packet::SubscribeAck {
                packet_id: id(pkid),
                status: granted
                    .iter()
                    .map(|g| match g {
                        Ok(qos) => v3::SubscribeReturnCode::Success(qos_of(*qos)),
                        Err(_) => v3::SubscribeReturnCode::Failure,
                    })
                    .collect(),
            },
            || {
                v5::Packet::SubscribeAck(v5::SubscribeAck {
                    packet_id: id(pkid),
                    properties: Vec::new(),
                    reason_string: explain
                        .then(|| granted.iter().find_map(|g| g.err()))
                        .flatten()
                        .map(|reason| ByteString::from_static(subscribe_refusal(reason))),
                    status: granted
                        .iter()
                        .map(|g| match g {
                            Ok(0) => v5::SubscribeAckReason::GrantedQos0,
                            Ok(1) => v5::SubscribeAckReason::GrantedQos1,
                            Ok(_) => v5::SubscribeAckReason::GrantedQos2,
                            Err(reason) => *reason,
                        })
                        .collect(),
                })
            },
            out,
        );
    }

    /// UNSUBACK: for each filter, whether a subscription existed.
    pub fn unsuback(&mut self, pkid: u16, existed: &[bool], out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::UnsubscribeAck {
                packet_id: id(pkid),
            },
            || {
                v5::Packet::UnsubscribeAck(v5::UnsubscribeAck {
                    packet_id: id(pkid),
                    properties: Vec::new(),
                    reason_string: None,
                    status: existed
                        .iter()
                        .map(|&existed| {
                            if existed {
                                v5::UnsubscribeAckReason::Success
                            } else {
                                v5::UnsubscribeAckReason::NoSubscriptionExisted
                            }
                        })
                        .collect(),
                })
            },
            out,
        );
    }

    /// PINGRESP.
    pub fn pingresp(&mut self, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::PingResponse,
            || v5::Packet::PingResponse,
            out,
        );
    }

    /// DISCONNECT from the server, with `why` as its reason string: MQTT 5 only (MQTT 3
    /// servers just close).
    pub fn disconnect(&mut self, reason: v5::DisconnectReasonCode, why: &str, out: &mut BytesMut) {
        if let Codec::V5(codec) = &mut self.codec {
            let disconnect = v5::Disconnect {
                reason_code: reason,
                session_expiry_interval_secs: None,
                server_reference: None,
                reason_string: Some(ByteString::from(why)),
                user_properties: Vec::new(),
            };
            let _ = codec.encode(v5::Packet::Disconnect(disconnect), out);
        }
    }

    /// CONNACK.
    pub fn connack(&mut self, ack: Connack, out: &mut BytesMut) {
        match &mut self.codec {
            Codec::V3(codec) => {
                let packet = v3::Packet::ConnectAck(v3::ConnectAck {
                    return_code: ack.v3_code,
                    // MQTT 3.1 has no session present flag.
                    session_present: ack.session_present && self.version == Version::V3_1_1,
                });
                let _ = codec.encode(packet, out);
            }
            Codec::V5(codec) => {
                let _ = codec.encode(v5::Packet::ConnectAck(Box::new(ack.v5)), out);
            }
        }
    }
}

/// A CONNACK in both forms; [`Wire::connack`] writes the client's.
#[derive(Debug)]
pub struct Connack {
    /// MQTT 3 return code.
    pub v3_code: v3::ConnectAckReason,
    /// Session present.
    pub session_present: bool,
    /// MQTT 5 CONNACK.
    pub v5: v5::ConnectAck,
}

fn ack(pkid: u16, reason: v5::PublishAckReason, explain: bool) -> v5::PublishAck {
    let refused = !matches!(
        reason,
        v5::PublishAckReason::Success | v5::PublishAckReason::NoMatchingSubscribers
    );
    v5::PublishAck {
        packet_id: id(pkid),
        reason_code: reason,
        properties: Vec::new(),
        reason_string: (explain && refused)
            .then(|| ByteString::from_static(publish_refusal(reason))),
    }
}

/// Why a publish was refused, in words (MQTT 5 reason string).
fn publish_refusal(reason: v5::PublishAckReason) -> &'static str {
    match reason {
        v5::PublishAckReason::NotAuthorized => {
            "not authorised to publish on this topic (topics starting with `$` are the broker's)"
        }
        v5::PublishAckReason::TopicNameInvalid => "invalid topic name",
        v5::PublishAckReason::PacketIdentifierInUse => "packet identifier in use",
        v5::PublishAckReason::QuotaExceeded => "quota exceeded",
        v5::PublishAckReason::PayloadFormatInvalid => "payload format invalid",
        _ => "the publish was refused",
    }
}

/// Why a subscription was refused, in words (MQTT 5 reason string).
fn subscribe_refusal(reason: v5::SubscribeAckReason) -> &'static str {
    match reason {
        v5::SubscribeAckReason::TopicFilterInvalid => "invalid topic filter",
        v5::SubscribeAckReason::NotAuthorized => "not authorised to subscribe to this filter",
        v5::SubscribeAckReason::QuotaExceeded => "no room for another subscription",
        v5::SubscribeAckReason::SharedSubscriptionNotSupported => {
            "shared subscriptions are not supported here"
        }
        _ => "the subscription was refused",
    }
}

fn ack2(pkid: u16, reason: v5::PublishAck2Reason) -> v5::PublishAck2 {
    v5::PublishAck2 {
        packet_id: id(pkid),
        reason_code: reason,
        properties: Vec::new(),
        reason_string: None,
    }
}

/// QoS from its number (above 2 is 2).
pub fn qos_of(qos: u8) -> QoS {
    match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Bytes as a UTF-8 string, if they are one (topics from the router always are).
pub fn byte_string(bytes: Bytes) -> Option<ByteString> {
    ByteString::try_from(bytes).ok()
}
