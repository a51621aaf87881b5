//! Remote to here: the packets the remote sends, handled in order; its publishes renamed by
//! the `in` lines and handed to the bridge's local publisher, acknowledged once handed over.

use super::{Acks, Outcome, Session};
use crate::bridge::client::wire::FromRemote;
use crate::bridge::local::{Incoming, Work};
use crate::bridge::topics;
use crate::message::properties_from_wire;
use bytes::{Bytes, BytesMut};
use rmqtt_codec::types::Publish;
use std::time::Instant;

impl Session<'_> {
    /// Handles every whole packet in `inbuf`, then hands what came in to the local publisher.
    pub(super) fn handle_buffered(&mut self, inbuf: &mut BytesMut) -> Option<Outcome> {
        loop {
            match self.wire.decode(inbuf) {
                Ok(Some(packet)) => {
                    if let Some(outcome) = self.handle(packet) {
                        return Some(outcome);
                    }
                }
                Ok(None) => break,
                Err(e) => return Some(Outcome::Lost(format!("a malformed packet: {e}"))),
            }
        }
        if !self.incoming.is_empty() {
            let messages = std::mem::take(&mut self.incoming);
            self.in_flight_in += messages.len();
            let done = self.delivered.0.clone();
            self.link.local.send(Work::Publish { messages, done });
        }
        None
    }

    pub(super) fn handle(&mut self, packet: FromRemote) -> Option<Outcome> {
        match packet {
            FromRemote::PubAck(pkid, reason) => self.complete(pkid, reason),
            FromRemote::PubRec(pkid, reason) if reason >= 0x80 => self.complete(pkid, reason),
            FromRemote::PubRec(pkid, _) => self.received(pkid),
            FromRemote::PubComp(pkid) => self.complete(pkid, 0),
            FromRemote::Publish(publish) => self.incoming(publish),
            FromRemote::PubRel(pkid) => {
                self.awaiting_release.remove(&pkid);
                self.wire.pubcomp(pkid, &mut self.out);
            }
            FromRemote::SubAck(pkid, codes) => self.subscribed(pkid, codes),
            FromRemote::UnsubAck(pkid) => {
                self.window.remove(pkid);
                self.unsubscribed(pkid);
            }
            FromRemote::PingResp => {}
            FromRemote::Disconnect(reason, text) => {
                let text = text.map(|t| format!(": {t}")).unwrap_or_default();
                return Some(Outcome::Lost(format!(
                    "the remote disconnected the bridge (reason {reason:#04x}{text})"
                )));
            }
            FromRemote::ConnAck(_) => {
                return Some(Outcome::Lost("the remote sent a second CONNACK".into()))
            }
            FromRemote::Unexpected(what) => {
                return Some(Outcome::Lost(format!("the remote sent {what}")))
            }
        }
        None
    }

    /// A message from the remote: renamed by the `in` lines, for the local publisher.
    pub(super) fn incoming(&mut self, publish: Box<Publish>) {
        self.link.metrics.count_received();
        self.last_activity = Instant::now();
        let qos = publish.qos.value();
        let pkid = publish.packet_id.map_or(0, |id| id.get());
        if qos == 2 && self.awaiting_release.contains(&pkid) {
            // Sent again before its PUBREL: received once.
            self.wire.pubrec(pkid, &mut self.out);
            return;
        }
        let Some(local) = topics::inward(&self.link.config.topics, &publish.topic) else {
            tracing::debug!(bridge = %self.link.config.name, topic = %publish.topic, "a message on a topic no `in` line maps: dropped");
            self.link.metrics.count_dropped(1);
            self.acknowledge_incoming(vec![(pkid, qos)]);
            return;
        };
        if qos == 2 {
            self.awaiting_release.insert(pkid);
        }
        let Publish {
            retain,
            payload,
            properties,
            ..
        } = *publish;
        self.incoming.push(Incoming {
            topic: Bytes::from(local),
            payload,
            qos,
            retain,
            properties: properties.map(properties_from_wire),
            pkid,
        });
    }

    /// Messages from the remote were handed over: acknowledged, in order.
    pub(super) fn acknowledge_incoming(&mut self, acks: Acks) {
        for (pkid, qos) in acks {
            self.in_flight_in = self.in_flight_in.saturating_sub(1);
            match qos {
                1 => self.wire.puback(pkid, &mut self.out),
                2 => self.wire.pubrec(pkid, &mut self.out),
                _ => {}
            }
        }
    }

    pub(super) fn subscribed(&mut self, pkid: u16, codes: Vec<u8>) {
        self.window.remove(pkid);
        let Some(at) = self.subscribed.iter().position(|(id, _)| *id == pkid) else {
            return;
        };
        let (_, filters) = self.subscribed.swap_remove(at);
        for (filter, code) in filters.iter().zip(codes) {
            if code >= 0x80 {
                tracing::warn!(bridge = %self.link.config.name, "the remote refused the subscription to `{filter}` (return code {code:#04x}): nothing comes in on it");
            }
        }
    }
}
