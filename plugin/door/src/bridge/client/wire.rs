//! MQTT as a bridge speaks it, in the client's role: packets written in the bridge's version
//! and packets from the remote read into one version-free form ([`FromRemote`]).
//!
//! `rmqtt-codec` frames and encodes every packet but the MQTT 3 CONNECT, which it always writes
//! as 3.1.1: that one is written here, so that a bridge can speak MQTT 3.1 (`MQIsdp`, level 3)
//! and set mosquitto's bridge bit (bit 7 of the level) for `try_private`.

use crate::bridge::config::Protocol;
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use rmqtt_codec::error::{DecodeError, EncodeError};
use rmqtt_codec::types::{Publish, QoS};
use rmqtt_codec::{v3, v5};
use std::num::{NonZeroU16, NonZeroU32};
use tokio_util::codec::{Decoder, Encoder};

/// What a CONNECT says.
#[derive(Clone)]
pub struct ConnectParams {
    /// Client id.
    pub client_id: String,
    /// Clean session / clean start.
    pub clean_start: bool,
    /// Keep-alive, in seconds.
    pub keep_alive: u16,
    /// Username and password.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// The will: topic and payload, published retained at QoS 1.
    pub will: Option<(String, Bytes)>,
    /// Set the bridge bit (MQTT 3 only).
    pub bridge: bool,
    /// MQTT 5: messages the remote may send unacknowledged.
    pub receive_maximum: u16,
    /// MQTT 5: the largest packet the bridge accepts.
    pub max_packet_size: Option<u32>,
}

impl std::fmt::Debug for ConnectParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectParams")
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("bridge", &self.bridge)
            .finish_non_exhaustive()
    }
}

/// A packet from the remote.
#[derive(Debug)]
pub enum FromRemote {
    /// CONNACK.
    ConnAck(ConnAck),
    /// PUBLISH.
    Publish(Box<Publish>),
    /// PUBACK, with its reason (0 in MQTT 3).
    PubAck(u16, u8),
    /// PUBREC, with its reason.
    PubRec(u16, u8),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBACK: the packet id and a return code per filter (0x80 and above: refused).
    SubAck(u16, Vec<u8>),
    /// UNSUBACK.
    UnsubAck(u16),
    /// PINGRESP.
    PingResp,
    /// DISCONNECT (MQTT 5), with its reason and reason string.
    Disconnect(u8, Option<String>),
    /// A packet a server does not send.
    Unexpected(&'static str),
}

/// A CONNACK, whatever the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    /// The remote kept the bridge's session.
    pub session_present: bool,
    /// The return code (MQTT 3) or reason code (MQTT 5); 0 is success.
    pub code: u8,
    /// MQTT 5's reason string.
    pub reason: Option<String>,
    /// The remote's receive maximum (MQTT 5).
    pub receive_maximum: Option<u16>,
    /// The largest packet the remote accepts (MQTT 5).
    pub max_packet_size: Option<u32>,
    /// The highest QoS the remote supports (MQTT 5; 2 otherwise).
    pub max_qos: u8,
    /// Whether the remote takes retained messages (MQTT 5).
    pub retain_available: bool,
    /// The keep-alive the remote wants (MQTT 5).
    pub server_keep_alive: Option<u16>,
}

impl ConnAck {
    /// What the code means.
    pub fn meaning(&self, protocol: Protocol) -> &'static str {
        if protocol.is_v5() {
            match self.code {
                0 => "success",
                0x80 => "unspecified error",
                0x81 => "malformed packet",
                0x82 => "protocol error",
                0x83 => "implementation specific error",
                0x84 => "unsupported protocol version",
                0x85 => "client identifier not valid",
                0x86 => "bad user name or password",
                0x87 => "not authorized",
                0x88 => "server unavailable",
                0x89 => "server busy",
                0x8A => "banned",
                0x8C => "bad authentication method",
                0x90 => "topic name invalid",
                0x95 => "packet too large",
                0x97 => "quota exceeded",
                0x99 => "payload format invalid",
                0x9A => "retain not supported",
                0x9B => "QoS not supported",
                0x9C => "use another server",
                0x9D => "server moved",
                0x9F => "connection rate exceeded",
                _ => "unknown reason",
            }
        } else {
            match self.code {
                0 => "connection accepted",
                1 => "unacceptable protocol version",
                2 => "identifier rejected",
                3 => "server unavailable",
                4 => "bad user name or password",
                5 => "not authorized",
                _ => "unknown return code",
            }
        }
    }

    /// Whether the remote refused the protocol version (so a `try_private` bridge tries
    /// again without the bridge bit).
    pub fn refused_version(&self) -> bool {
        self.code == 1 || self.code == 0x84
    }
}

/// Writes and reads a bridge's packets.
#[derive(Debug)]
pub struct BridgeWire {
    protocol: Protocol,
    v3: v3::Codec,
    v5: v5::Codec,
}

fn id(pkid: u16) -> NonZeroU16 {
    NonZeroU16::new(pkid).unwrap_or(NonZeroU16::MIN)
}

fn qos(qos: u8) -> QoS {
    match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

impl BridgeWire {
    /// Packets of `protocol`, none larger than `max_in` bytes accepted (0: any).
    pub fn new(protocol: Protocol, max_in: u32) -> BridgeWire {
        BridgeWire {
            protocol,
            v3: v3::Codec::new(max_in),
            v5: v5::Codec::new(max_in, 0),
        }
    }

    /// Sends nothing larger than `max` bytes (the remote's maximum packet size).
    pub fn set_max_out(&mut self, max: u32) {
        self.v5.set_max_outbound_size(max);
    }

    /// The next whole packet in `buf`, if any.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<FromRemote>, DecodeError> {
        Ok(if self.protocol.is_v5() {
            self.v5.decode(buf)?.map(|(packet, _)| from_v5(packet))
        } else {
            self.v3.decode(buf)?.map(|(packet, _)| from_v3(packet))
        })
    }

    fn write(
        &mut self,
        v3: impl FnOnce() -> v3::Packet,
        v5: impl FnOnce() -> v5::Packet,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if self.protocol.is_v5() {
            self.v5.encode(v5(), out)
        } else {
            self.v3.encode(v3(), out)
        }
    }

    /// CONNECT.
    pub fn connect(
        &mut self,
        params: &ConnectParams,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if !self.protocol.is_v5() {
            write_v3_connect(self.protocol, params, out);
            return Ok(());
        }
        let last_will = params.will.as_ref().map(|(topic, payload)| v5::LastWill {
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: ByteString::from(topic.as_str()),
            message: payload.clone(),
            will_delay_interval_sec: None,
            correlation_data: None,
            message_expiry_interval: None,
            content_type: None,
            user_properties: Vec::new(),
            is_utf8_payload: None,
            response_topic: None,
        });
        let connect = v5::Connect {
            clean_start: params.clean_start,
            keep_alive: params.keep_alive,
            // A kept session lives until the bridge comes back.
            session_expiry_interval_secs: if params.clean_start { 0 } else { u32::MAX },
            auth_method: None,
            auth_data: None,
            request_problem_info: true,
            request_response_info: false,
            receive_max: NonZeroU16::new(params.receive_maximum),
            topic_alias_max: 0,
            user_properties: Vec::new(),
            max_packet_size: params.max_packet_size.and_then(NonZeroU32::new),
            last_will,
            client_id: ByteString::from(params.client_id.as_str()),
            username: params.username.as_deref().map(ByteString::from),
            password: params.password.clone().map(Bytes::from),
            cert: None,
        };
        self.v5.encode(v5::Packet::Connect(Box::new(connect)), out)
    }

    /// PUBLISH. Fails (writing nothing) when it is larger than the remote accepts.
    pub fn publish(&mut self, mut publish: Publish, out: &mut BytesMut) -> Result<(), EncodeError> {
        if !self.protocol.is_v5() {
            publish.properties = None;
        }
        let mark = out.len();
        let written = if self.protocol.is_v5() {
            self.v5.encode(v5::Packet::Publish(Box::new(publish)), out)
        } else {
            self.v3.encode(v3::Packet::Publish(Box::new(publish)), out)
        };
        if written.is_err() {
            out.truncate(mark);
        }
        written
    }

    /// PUBACK.
    pub fn puback(&mut self, pkid: u16, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::PublishAck {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishAck(ack(pkid)),
            out,
        );
    }

    /// PUBREC.
    pub fn pubrec(&mut self, pkid: u16, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::PublishReceived {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishReceived(ack(pkid)),
            out,
        );
    }

    /// PUBREL.
    pub fn pubrel(&mut self, pkid: u16, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::PublishRelease {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishRelease(ack2(pkid)),
            out,
        );
    }

    /// PUBCOMP.
    pub fn pubcomp(&mut self, pkid: u16, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::PublishComplete {
                packet_id: id(pkid),
            },
            || v5::Packet::PublishComplete(ack2(pkid)),
            out,
        );
    }

    /// SUBSCRIBE to `filters` (filter, QoS). MQTT 5 subscriptions are no-local and
    /// retain-as-published, as a bridge's are.
    pub fn subscribe(
        &mut self,
        pkid: u16,
        filters: &[(String, u8)],
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.write(
            || v3::Packet::Subscribe {
                packet_id: id(pkid),
                topic_filters: filters
                    .iter()
                    .map(|(f, q)| (ByteString::from(f.as_str()), qos(*q)))
                    .collect(),
            },
            || {
                v5::Packet::Subscribe(v5::Subscribe {
                    packet_id: id(pkid),
                    id: None,
                    user_properties: Vec::new(),
                    topic_filters: filters
                        .iter()
                        .map(|(f, q)| {
                            let options = v5::SubscriptionOptions {
                                qos: qos(*q),
                                no_local: true,
                                retain_as_published: true,
                                retain_handling: v5::RetainHandling::AtSubscribe,
                            };
                            (ByteString::from(f.as_str()), options)
                        })
                        .collect(),
                })
            },
            out,
        )
    }

    /// UNSUBSCRIBE from `filters`.
    pub fn unsubscribe(
        &mut self,
        pkid: u16,
        filters: &[String],
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let filters: Vec<ByteString> = filters
            .iter()
            .map(|f| ByteString::from(f.as_str()))
            .collect();
        let for_v5 = filters.clone();
        self.write(
            || v3::Packet::Unsubscribe {
                packet_id: id(pkid),
                topic_filters: filters,
            },
            || {
                v5::Packet::Unsubscribe(v5::Unsubscribe {
                    packet_id: id(pkid),
                    user_properties: Vec::new(),
                    topic_filters: for_v5,
                })
            },
            out,
        )
    }

    /// PINGREQ.
    pub fn pingreq(&mut self, out: &mut BytesMut) {
        let _ = self.write(|| v3::Packet::PingRequest, || v5::Packet::PingRequest, out);
    }

    /// DISCONNECT (MQTT 5: normal disconnection, so the remote does not publish the will).
    pub fn disconnect(&mut self, out: &mut BytesMut) {
        let _ = self.write(
            || v3::Packet::Disconnect,
            || {
                v5::Packet::Disconnect(v5::Disconnect {
                    reason_code: v5::DisconnectReasonCode::NormalDisconnection,
                    session_expiry_interval_secs: None,
                    server_reference: None,
                    reason_string: None,
                    user_properties: Vec::new(),
                })
            },
            out,
        );
    }
}

fn ack(pkid: u16) -> v5::PublishAck {
    v5::PublishAck {
        packet_id: id(pkid),
        reason_code: v5::PublishAckReason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

fn ack2(pkid: u16) -> v5::PublishAck2 {
    v5::PublishAck2 {
        packet_id: id(pkid),
        reason_code: v5::PublishAck2Reason::Success,
        properties: Vec::new(),
        reason_string: None,
    }
}

/// An MQTT 3.1 or 3.1.1 CONNECT, with the bridge bit when asked.
fn write_v3_connect(protocol: Protocol, params: &ConnectParams, out: &mut BytesMut) {
    let (name, level): (&[u8], u8) = match protocol {
        Protocol::V3_1 => (b"MQIsdp", 3),
        _ => (b"MQTT", 4),
    };
    let mut flags = 0u8;
    let mut body = BytesMut::new();
    put_bytes(&mut body, name);
    body.put_u8(if params.bridge { level | 0x80 } else { level });
    let flags_at = body.len();
    body.put_u8(0);
    body.put_u16(params.keep_alive);
    put_bytes(&mut body, params.client_id.as_bytes());
    if params.clean_start {
        flags |= 0x02;
    }
    if let Some((topic, payload)) = &params.will {
        flags |= 0x04 | (1 << 3) | 0x20;
        put_bytes(&mut body, topic.as_bytes());
        put_bytes(&mut body, payload);
    }
    if let Some(username) = &params.username {
        flags |= 0x80;
        put_bytes(&mut body, username.as_bytes());
    }
    if let Some(password) = &params.password {
        flags |= 0x40;
        put_bytes(&mut body, password.as_bytes());
    }
    body[flags_at] = flags;
    out.put_u8(0x10);
    let mut length = body.len();
    loop {
        let mut byte = (length % 128) as u8;
        length /= 128;
        if length > 0 {
            byte |= 0x80;
        }
        out.put_u8(byte);
        if length == 0 {
            break;
        }
    }
    out.extend_from_slice(&body);
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
    out.extend_from_slice(&bytes[..bytes.len().min(usize::from(u16::MAX))]);
}

fn from_v3(packet: v3::Packet) -> FromRemote {
    use v3::Packet as P;
    match packet {
        P::ConnectAck(ack) => FromRemote::ConnAck(ConnAck {
            session_present: ack.session_present,
            code: ack.return_code.into(),
            reason: None,
            receive_maximum: None,
            max_packet_size: None,
            max_qos: 2,
            retain_available: true,
            server_keep_alive: None,
        }),
        P::Publish(publish) => FromRemote::Publish(publish),
        P::PublishAck { packet_id } => FromRemote::PubAck(packet_id.get(), 0),
        P::PublishReceived { packet_id } => FromRemote::PubRec(packet_id.get(), 0),
        P::PublishRelease { packet_id } => FromRemote::PubRel(packet_id.get()),
        P::PublishComplete { packet_id } => FromRemote::PubComp(packet_id.get()),
        P::SubscribeAck { packet_id, status } => FromRemote::SubAck(
            packet_id.get(),
            status
                .into_iter()
                .map(|s| match s {
                    v3::SubscribeReturnCode::Success(q) => q.value(),
                    v3::SubscribeReturnCode::Failure => 0x80,
                })
                .collect(),
        ),
        P::UnsubscribeAck { packet_id } => FromRemote::UnsubAck(packet_id.get()),
        P::PingResponse => FromRemote::PingResp,
        _ => FromRemote::Unexpected("a packet only a client sends"),
    }
}

fn from_v5(packet: v5::Packet) -> FromRemote {
    use v5::Packet as P;
    let text = |s: Option<ByteString>| s.map(|s| s.to_string());
    match packet {
        P::ConnectAck(ack) => FromRemote::ConnAck(ConnAck {
            session_present: ack.session_present,
            code: ack.reason_code.into(),
            reason: text(ack.reason_string),
            receive_maximum: Some(ack.receive_max.get()),
            max_packet_size: ack.max_packet_size,
            max_qos: ack.max_qos.value(),
            retain_available: ack.retain_available,
            server_keep_alive: ack.server_keepalive_sec,
        }),
        P::Publish(publish) => FromRemote::Publish(publish),
        P::PublishAck(ack) => FromRemote::PubAck(ack.packet_id.get(), ack.reason_code.into()),
        P::PublishReceived(ack) => FromRemote::PubRec(ack.packet_id.get(), ack.reason_code.into()),
        P::PublishRelease(ack) => FromRemote::PubRel(ack.packet_id.get()),
        P::PublishComplete(ack) => FromRemote::PubComp(ack.packet_id.get()),
        P::SubscribeAck(ack) => FromRemote::SubAck(
            ack.packet_id.get(),
            ack.status.into_iter().map(u8::from).collect(),
        ),
        P::UnsubscribeAck(ack) => FromRemote::UnsubAck(ack.packet_id.get()),
        P::PingResponse => FromRemote::PingResp,
        P::Disconnect(d) => FromRemote::Disconnect(d.reason_code.into(), text(d.reason_string)),
        P::Auth(_) => FromRemote::Unexpected("AUTH (enhanced authentication is not supported)"),
        _ => FromRemote::Unexpected("a packet only a client sends"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(bridge: bool) -> ConnectParams {
        ConnectParams {
            client_id: "gw1".into(),
            clean_start: false,
            keep_alive: 60,
            username: Some("u".into()),
            password: Some("p".into()),
            will: Some((
                "$SYS/broker/connection/gw1/state".into(),
                Bytes::from_static(b"0"),
            )),
            bridge,
            receive_maximum: 100,
            max_packet_size: None,
        }
    }

    #[test]
    fn a_v3_connect_reads_back_with_the_door_s_codec() {
        for protocol in [Protocol::V3_1, Protocol::V3_1_1] {
            let mut out = BytesMut::new();
            BridgeWire::new(protocol, 0)
                .connect(&params(false), &mut out)
                .unwrap();
            let (packet, _) = v3::Codec::new(0).decode(&mut out).unwrap().unwrap();
            let v3::Packet::Connect(connect) = packet else {
                panic!("not a CONNECT: {packet:?}");
            };
            assert_eq!(connect.client_id, "gw1");
            assert!(!connect.clean_session);
            assert_eq!(connect.username.as_deref(), Some("u"));
            let will = connect.last_will.unwrap();
            assert_eq!((will.qos, will.retain), (QoS::AtLeastOnce, true));
            assert_eq!(&will.message[..], b"0");
        }
    }

    #[test]
    fn the_bridge_bit_is_set_on_the_level() {
        let mut out = BytesMut::new();
        BridgeWire::new(Protocol::V3_1_1, 0)
            .connect(&params(true), &mut out)
            .unwrap();
        // Fixed header (2 bytes), name length (2), "MQTT" (4), then the level.
        assert_eq!(out[8], 0x84);
    }

    #[test]
    fn a_v5_connect_keeps_the_session_when_asked() {
        let mut out = BytesMut::new();
        BridgeWire::new(Protocol::V5, 0)
            .connect(&params(false), &mut out)
            .unwrap();
        let (packet, _) = v5::Codec::new(0, 0).decode(&mut out).unwrap().unwrap();
        let v5::Packet::Connect(connect) = packet else {
            panic!("not a CONNECT");
        };
        assert_eq!(connect.session_expiry_interval_secs, u32::MAX);
        assert_eq!(connect.receive_max.map(|r| r.get()), Some(100));
    }
}
