//! The MQTT 3.1.1 codec of Weir's listeners: rumqttd's own, made safe for messages that carry
//! MQTT 5 properties.
//!
//! rumqttd's router keeps the properties of a publish and hands them to every subscriber's
//! codec; its 3.1.1 codec panics on a packet with properties (the subscriber's connection
//! dies). A message from an MQTT 5 client, or a graph result carrying `__ts`, reaching a
//! 3.1.1 subscriber would do that. This codec drops the properties, which MQTT 3.1.1 cannot
//! carry, and writes the rest with rumqttd's codec.

use bytes::BytesMut;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{Error, Packet, Protocol};

/// rumqttd's MQTT 3.1.1 codec, dropping MQTT 5 properties on the way out.
#[derive(Debug, Clone)]
pub struct V4WithoutProperties;

impl Protocol for V4WithoutProperties {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        V4.read_mut(stream, max_size)
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        V4.write(without_properties(packet), write)
    }
}

/// The packet as MQTT 3.1.1 can carry it.
fn without_properties(packet: Packet) -> Packet {
    match packet {
        Packet::Connect(connect, _, will, _, login) => {
            Packet::Connect(connect, None, will, None, login)
        }
        Packet::ConnAck(ack, _) => Packet::ConnAck(ack, None),
        Packet::Publish(publish, _) => Packet::Publish(publish, None),
        Packet::PubAck(ack, _) => Packet::PubAck(ack, None),
        Packet::Subscribe(subscribe, _) => Packet::Subscribe(subscribe, None),
        Packet::SubAck(ack, _) => Packet::SubAck(ack, None),
        Packet::PubRec(rec, _) => Packet::PubRec(rec, None),
        Packet::PubRel(rel, _) => Packet::PubRel(rel, None),
        Packet::PubComp(comp, _) => Packet::PubComp(comp, None),
        Packet::Unsubscribe(unsubscribe, _) => Packet::Unsubscribe(unsubscribe, None),
        Packet::UnsubAck(ack, _) => Packet::UnsubAck(ack, None),
        Packet::Disconnect(disconnect, _) => Packet::Disconnect(disconnect, None),
        ping @ (Packet::PingReq(_) | Packet::PingResp(_)) => ping,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::{Publish, PublishProperties};

    #[test]
    fn a_publish_with_properties_is_written_without_them() {
        let properties = PublishProperties {
            user_properties: vec![("__ts".into(), "001700000000000:00000:n".into())],
            ..Default::default()
        };
        let packet = Packet::Publish(Publish::new("a/b", "x", false), Some(properties));
        let mut with = BytesMut::new();
        V4WithoutProperties.write(packet, &mut with).unwrap();
        let mut plain = BytesMut::new();
        V4.write(
            Packet::Publish(Publish::new("a/b", "x", false), None),
            &mut plain,
        )
        .unwrap();
        assert_eq!(with, plain);
    }
}
