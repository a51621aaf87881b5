//! A connection's reading half: packets from the client, handled in order.
//!
//! Publishes are checked (topic, `$` refused, aliases, QoS 2 duplicates), offered to the graphs
//! and batched for the router; everything decoded from one socket read reaches the router with
//! one wake-up, before the acknowledgements of that read are written. Reading stops while the
//! publisher's gate is closed (a subscriber's queue is full) and while a graph's queue has no
//! room under `back_pressure: block`: the client's socket then fills and TCP slows the device.

mod end;
mod subscriptions;

use end::malformed;
pub(super) use end::End;

use super::codec::{Codec, Inbound as Packet};
use super::control::{Control, Reply};
use super::dispatch::{self, Accepted};
use super::flow::{Gate, Pace};
use super::logs::FilterLog;
use super::message::{Properties, Publish};
use super::router::Batch;
use super::services::{ServiceRequest, ServiceRoute};
use super::session::context::{Carried, SessionContext};
use super::session::is_local_namespace;
use super::tag::Tag;
use super::Shared;
use crate::bridge::queue::Outbox;
use crate::router::Tx as LinkTx;
use crate::security::ClientRules;
use bytes::BytesMut;
use bytestring::ByteString;
use rmqtt_codec::types::Publish as WirePublish;
use rmqtt_codec::v5::{DisconnectReasonCode, PublishAckReason};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// How often a connection waiting for slow readers checks on them.
const LAG_CHECK: Duration = Duration::from_millis(5);

/// Bytes read from a socket at a time: at most, under a steady stream.
const MAX_READ: usize = 64 * 1024;

/// Bytes read from a socket at a time: at least, and what an idle connection holds.
const MIN_READ: usize = 1024;

/// The reading half's state.
pub(super) struct Inbound<R> {
    reader: R,
    buf: BytesMut,
    codec: Codec,
    link: Arc<Mutex<LinkTx>>,
    control: UnboundedSender<Control>,
    gate: Arc<Gate>,
    pace: Arc<Pace>,
    shared: Arc<Shared>,
    connection: u64,
    client_id: String,
    keep_alive: u16,
    receive_maximum: u16,
    /// Topic aliases the client may set.
    topic_alias_maximum: u16,
    /// Stops reading when cancelled (the writing half ended).
    stop: CancellationToken,
    /// The session's subscriptions: filter → door subscription id.
    filters: HashMap<String, u32>,
    next_subscription: u32,
    batch: Batch,
    replies: Vec<Reply>,
    aliases: HashMap<u16, ByteString>,
    /// How much the next read asks for (see [`Inbound::make_room`]).
    read_hint: usize,
    /// A log this connection published to whose slowest reader is too far behind.
    behind: Option<Arc<FilterLog>>,
    /// What the ACL file lets this client do (`None`: anything).
    acl: Option<ClientRules>,
    awaiting_release: HashSet<u16>,
    /// Where the session's shared-subscription messages go, and whether it is connected.
    mailbox: tokio::sync::mpsc::UnboundedSender<crate::shared::SharedDelivery>,
    live: Arc<std::sync::atomic::AtomicBool>,
    /// Messages for bridges' queues, on disk before the publishes that carry them are
    /// acknowledged.
    outbox: Outbox,
    /// The client is a bridge (mosquitto's `try_private`).
    bridge: bool,
}

/// Whether the gate stopped the handling of a read's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Every whole packet in the buffer was handled.
    No,
    /// The gate closed with packets perhaps left in the buffer.
    MidBuffer,
}

/// What handling one packet asks of the loop.
enum Next {
    Continue,
    End(End),
}

impl<R: AsyncRead + Unpin> Inbound<R> {
    /// The reading half of the session `context` describes: it reads `reader` (`buf` holds
    /// what was read past CONNECT), decodes with `codec`, tells the writing half through
    /// `control`, waits at `gate`, and carries on `carried` from the session.
    pub fn new(
        context: SessionContext,
        reader: R,
        buf: BytesMut,
        codec: Codec,
        control: UnboundedSender<Control>,
        gate: Arc<Gate>,
        carried: Carried,
    ) -> Inbound<R> {
        let SessionContext {
            shared,
            client_id,
            connection,
            link_tx,
            pace,
            stop,
            acl,
            terms,
        } = context;
        Inbound {
            reader,
            buf,
            codec,
            link: link_tx,
            control,
            gate,
            pace,
            shared,
            connection,
            client_id,
            keep_alive: terms.keep_alive,
            receive_maximum: terms.receive_maximum,
            topic_alias_maximum: terms.topic_alias_maximum,
            stop,
            filters: carried.filters,
            next_subscription: carried.next_subscription,
            batch: Batch::default(),
            replies: Vec::new(),
            aliases: HashMap::new(),
            read_hint: 1024,
            behind: None,
            acl,
            awaiting_release: carried.awaiting_release,
            mailbox: carried.mailbox,
            live: carried.live,
            outbox: Outbox::default(),
            bridge: terms.bridge,
        }
    }

    /// Reads and handles packets until the connection ends; returns why, and the packet ids of
    /// the client's QoS 2 publishes still waiting for their PUBREL (the session keeps them).
    /// Reads and handles the client's packets until the connection ends; returns why, the
    /// QoS 2 packet ids still awaiting release, and the reading half (see
    /// the connection's linger).
    pub async fn run(mut self) -> (End, HashSet<u16>, R) {
        let end = self.serve().await;
        (end, self.awaiting_release, self.reader)
    }

    async fn serve(&mut self) -> End {
        let keep_alive =
            (self.keep_alive > 0).then(|| Duration::from_millis(u64::from(self.keep_alive) * 1500));
        loop {
            let held = match self.handle_buffered().await {
                Ok(held) => held,
                Err(end) => {
                    self.flush().await;
                    return end;
                }
            };
            self.flush().await;
            // Held mid-buffer, the rest of the buffer is handled once the gate opens, even if
            // it opened again meanwhile: the client may have sent all it had, and a read would
            // wait for more.
            if held == Held::MidBuffer || !self.gate.is_open() {
                // The keep-alive does not run while the door is not reading.
                tokio::select! {
                    _ = self.gate.opened() => continue,
                    _ = self.stop.cancelled() => return End::Stopped,
                    _ = self.shared.operations.reading.cancelled() => return End::Stopped,
                }
            }
            self.make_room();
            let read = async {
                match keep_alive {
                    Some(limit) => tokio::time::timeout(limit, self.reader.read_buf(&mut self.buf))
                        .await
                        .ok(),
                    None => Some(self.reader.read_buf(&mut self.buf).await),
                }
            };
            let read = tokio::select! {
                biased;
                _ = self.stop.cancelled() => return End::Stopped,
                _ = self.shared.operations.reading.cancelled() => return End::Stopped,
                read = read => read,
            };
            match read {
                None => return End::KeepAlive,
                Some(Ok(0)) | Some(Err(_)) => return End::Closed,
                Some(Ok(n)) => {
                    self.shared.operations.stats.bytes_received.inc_by(n as u64);
                    self.read_hint = n
                        .saturating_mul(2)
                        .max(self.read_hint / 2)
                        .clamp(MIN_READ, MAX_READ);
                }
            }
        }
    }

    /// Waits (reading nothing) until the slowest reader of `log` is back under the low lag
    /// limit, checking every [`LAG_CHECK`]: the readers' tasks need the time.
    async fn wait_for_readers(&mut self, log: &FilterLog) {
        let low = self.shared.routing.lag.low;
        while log.slowest_lag() > low {
            tokio::select! {
                _ = tokio::time::sleep(LAG_CHECK) => {}
                _ = self.stop.cancelled() => return,
                _ = self.shared.operations.reading.cancelled() => return,
            }
        }
    }

    /// Makes room in the buffer for the next read, as large as recent reads call for: a busy
    /// connection reads up to [`MAX_READ`] at a time, an idle one holds [`MIN_READ`] (the
    /// buffer of a burst is let go once reads are small again).
    fn make_room(&mut self) {
        let want = self.read_hint;
        if self.buf.is_empty() && self.buf.capacity() > 4 * want {
            self.buf = BytesMut::with_capacity(want);
        } else if self.buf.capacity() - self.buf.len() < want / 2 {
            self.buf.reserve(want);
        }
    }

    /// Handles every whole packet in the buffer while the gate is open; says whether the gate
    /// stopped it before the buffer's end.
    async fn handle_buffered(&mut self) -> Result<Held, End> {
        while self.gate.is_open() {
            let packet = match self.codec.decode(&mut self.buf) {
                Ok(Some(packet)) => packet,
                Ok(None) => return Ok(Held::No),
                Err(e) => return Err(malformed(e)),
            };
            self.shared.operations.stats.packets_received.inc();
            if let Next::End(end) = self.handle(packet).await {
                return Err(end);
            }
        }
        Ok(Held::MidBuffer)
    }

    /// Hands the batch to the router (once it took the previous one), then writes the
    /// acknowledgements of what it held.
    async fn flush(&mut self) {
        self.hand_to_router().await;
        if !self.outbox.is_empty() {
            self.wait_for_room().await;
        }
        self.send_replies();
        if let Some(log) = self.behind.take() {
            self.wait_for_readers(&log).await;
        }
    }

    /// Hands the batch to the router (once it took the previous one, or at once when the
    /// connection is ending: what the door read still goes on; the link ends after this).
    async fn hand_to_router(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        tokio::select! {
            _ = self.pace.settled() => {}
            _ = self.stop.cancelled() => {}
        }
        self.batch.ping();
        self.pace.sent();
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        if self.batch.flush(&mut link).is_err() {
            tracing::error!(client = %self.client_id, "the router is gone: publishes lost");
        }
    }

    /// Waits, reading nothing, while a bridge's queue that blocks when full is full.
    async fn wait_for_room(&mut self) {
        while let Some(full) = self.outbox.full_queue() {
            tokio::select! {
                _ = full.room() => {}
                _ = self.stop.cancelled() => return,
            }
        }
    }

    /// Hands the replies decided so far to the writing half. When bridges forward some of
    /// the publishes they acknowledge, those go to their queues now, and the writing half
    /// holds the replies until they are on disk (reading goes on meanwhile: the client's own
    /// in-flight window bounds what waits).
    fn send_replies(&mut self) {
        let replies = std::mem::take(&mut self.replies);
        match self.outbox.submit() {
            Some(ticket) => {
                let _ = self.control.send(Control::DurableReply(ticket, replies));
            }
            None if !replies.is_empty() => {
                let _ = self.control.send(Control::Reply(replies));
            }
            None => {}
        }
    }

    async fn handle(&mut self, packet: Packet) -> Next {
        match packet {
            Packet::Publish(publish) => return self.publish(publish).await,
            Packet::PubAck(pkid) => self.tell_writer(Control::PubAck(pkid)),
            Packet::PubRec(pkid) => self.tell_writer(Control::PubRec(pkid)),
            Packet::PubComp(pkid) => self.tell_writer(Control::PubComp(pkid)),
            Packet::PubRel(pkid) => {
                let found = self.awaiting_release.remove(&pkid);
                self.replies.push(Reply::PubComp(pkid, found));
            }
            Packet::Subscribe { pkid, filters, id } => {
                return Box::pin(self.subscribe(pkid, filters, id)).await;
            }
            Packet::Unsubscribe { pkid, filters } => self.unsubscribe(pkid, filters),
            Packet::PingReq => self.replies.push(Reply::PingResp),
            Packet::Disconnect {
                reason,
                session_expiry,
            } => {
                return Next::End(End::Disconnect {
                    with_will: reason == 0x04,
                    session_expiry,
                })
            }
            Packet::Unexpected(what) => {
                return Next::End(End::Violation {
                    what: what.to_string(),
                    reason: DisconnectReasonCode::ProtocolError,
                })
            }
        }
        Next::Continue
    }

    fn tell_writer(&mut self, control: Control) {
        // Replies already decided go first, in the order their packets came.
        self.send_replies();
        let _ = self.control.send(control);
    }

    async fn publish(&mut self, mut publish: Box<WirePublish>) -> Next {
        self.shared.operations.stats.publishes_received.inc();
        let qos = publish.qos.value();
        let pkid = publish.packet_id.map_or(0, |id| id.get());
        if qos == 2 && self.awaiting_release.contains(&pkid) {
            // A resent QoS 2 publish: acknowledged again, delivered once.
            self.replies
                .push(Reply::PubRec(pkid, PublishAckReason::Success));
            return Next::Continue;
        }
        let topic = match self.resolve_topic(&mut publish) {
            Ok(topic) => topic,
            Err(end) => return Next::End(end),
        };
        if let Err(what) = check_topic_name(&topic) {
            return Next::End(End::Violation {
                what,
                reason: DisconnectReasonCode::TopicNameInvalid,
            });
        }
        if is_reserved(&topic) {
            self.shared.operations.stats.refused.inc();
            tracing::debug!(client = %self.client_id, topic = %topic, "publish to a reserved `$` topic refused");
            self.acknowledge(qos, pkid, PublishAckReason::NotAuthorized);
            return Next::Continue;
        }
        if let Some(acl) = &mut self.acl {
            if !acl.may_write(&topic) {
                self.shared.operations.stats.acl_denied_publishes.inc();
                tracing::debug!(client = %self.client_id, topic = %topic, "publish denied by the ACL");
                self.acknowledge(qos, pkid, PublishAckReason::NotAuthorized);
                return Next::Continue;
            }
        }
        if qos == 2 && self.awaiting_release.len() >= usize::from(self.receive_maximum) {
            return Next::End(End::Violation {
                what: "more QoS 2 publishes in flight than its receive maximum".into(),
                reason: DisconnectReasonCode::ReceiveMaximumExceeded,
            });
        }
        let WirePublish {
            retain,
            payload,
            properties,
            ..
        } = *publish;
        let properties = properties.map(super::message::properties_from_wire);
        if let Some(service) = self.shared.routing.service(&topic) {
            return self
                .request(service.clone(), payload, properties, qos, pkid)
                .await;
        }
        let accepted = Accepted {
            topic: &topic,
            publish: Publish::new(topic.clone().into_bytes(), payload, retain),
            properties,
            tag: Tag {
                qos,
                retain,
                publisher: self.connection,
                expires_at: None,
                // Numbered by dispatch.
                sequence: 0,
            },
            origin: None,
            bridge: None,
        };
        let dispatch::Dispatched { waiting, behind } =
            dispatch::dispatch(&self.shared, &mut self.batch, &mut self.outbox, accepted);
        if behind.is_some() {
            self.behind = behind;
        }
        if !waiting.is_empty() {
            // A graph's queue is full: what this read brought so far goes on, then the
            // connection waits for the graph (and reads nothing meanwhile).
            self.flush().await;
            if let Some(graphs) = self.shared.routing.graphs() {
                // Boxed by the ingress: a rare wait whose state would otherwise enlarge every
                // connection.
                tokio::select! {
                    _ = graphs.push_async(waiting) => {}
                    _ = self.stop.cancelled() => return Next::End(End::Stopped),
                }
            }
        }
        if qos == 2 {
            self.awaiting_release.insert(pkid);
        }
        self.acknowledge(qos, pkid, PublishAckReason::Success);
        if self.batch.is_full() {
            if self.outbox.is_empty() {
                self.flush().await;
            } else {
                // The acknowledgements wait for the read's one commit to bridges' queues.
                self.hand_to_router().await;
            }
        }
        Next::Continue
    }

    /// Hands a request to the service on its topic (waiting, reading nothing, while the
    /// service is busy), then acknowledges it.
    async fn request(
        &mut self,
        service: ServiceRoute,
        payload: bytes::Bytes,
        properties: Option<Properties>,
        qos: u8,
        pkid: u16,
    ) -> Next {
        let request = ServiceRequest {
            client_id: self.client_id.as_str().into(),
            payload,
            properties,
        };
        let reason = match service.requests.try_send(request) {
            Ok(()) => PublishAckReason::Success,
            Err(TrySendError::Full(request)) => {
                self.flush().await;
                tokio::select! {
                    sent = service.requests.send(request) => match sent {
                        Ok(()) => PublishAckReason::Success,
                        Err(_) => PublishAckReason::ImplementationSpecificError,
                    },
                    _ = self.stop.cancelled() => return Next::End(End::Stopped),
                }
            }
            Err(TrySendError::Closed(_)) => PublishAckReason::ImplementationSpecificError,
        };
        if qos == 2 && reason == PublishAckReason::Success {
            self.awaiting_release.insert(pkid);
        }
        self.acknowledge(qos, pkid, reason);
        Next::Continue
    }

    fn acknowledge(&mut self, qos: u8, pkid: u16, reason: PublishAckReason) {
        match qos {
            1 => self.replies.push(Reply::PubAck(pkid, reason)),
            2 => self.replies.push(Reply::PubRec(pkid, reason)),
            _ => {}
        }
    }

    /// The publish's topic, through its MQTT 5 topic alias if it has one.
    fn resolve_topic(&mut self, publish: &mut WirePublish) -> Result<ByteString, End> {
        let alias = publish
            .properties
            .as_mut()
            .and_then(|p| p.topic_alias.take());
        let Some(alias) = alias.map(|a| a.get()) else {
            return Ok(publish.topic.clone());
        };
        if alias > self.topic_alias_maximum {
            return Err(End::Violation {
                what: format!(
                    "topic alias {alias} above the maximum {}",
                    self.topic_alias_maximum
                ),
                reason: DisconnectReasonCode::TopicAliasInvalid,
            });
        }
        if publish.topic.is_empty() {
            return self
                .aliases
                .get(&alias)
                .cloned()
                .ok_or_else(|| End::Violation {
                    what: format!("topic alias {alias} used before it was set"),
                    reason: DisconnectReasonCode::ProtocolError,
                });
        }
        self.aliases.insert(alias, publish.topic.clone());
        Ok(publish.topic.clone())
    }
}

/// Whether `topic` is a bridge's state (`$SYS/broker/connection/<client id>/state`), the one
/// `$` topic clients may publish to, as mosquitto allows it for bridges' notifications.
/// Whether clients may not publish to `topic`: the broker's own namespaces (`$SYS/...` but for
/// a bridge's connection state, `$weir/...`) and `$share/...`. Other `$` topics are open, as
/// in mosquitto.
fn is_reserved(topic: &str) -> bool {
    (is_local_namespace(topic) && !is_bridge_state(topic))
        || topic.split('/').next() == Some("$share")
}

fn is_bridge_state(topic: &str) -> bool {
    topic
        .strip_prefix("$SYS/broker/connection/")
        .and_then(|rest| rest.strip_suffix("/state"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// A topic name may not be empty or hold wildcards or NUL.
fn check_topic_name(topic: &str) -> Result<(), String> {
    weir_model::topic::check_topic_name(topic).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_bridge_s_own_state_topic_is_open_to_clients() {
        assert!(super::is_bridge_state(
            "$SYS/broker/connection/gw1.cloud/state"
        ));
        assert!(!super::is_bridge_state("$SYS/broker/connection//state"));
        assert!(!super::is_bridge_state("$SYS/broker/connection/a/b/state"));
        assert!(!super::is_bridge_state("$SYS/broker/uptime"));
    }

    #[test]
    fn the_broker_s_own_namespaces_and_share_are_reserved_other_dollar_topics_are_open() {
        for reserved in ["$SYS/broker/uptime", "$SYS", "$weir/status/g", "$share/g/t"] {
            assert!(super::is_reserved(reserved), "{reserved}");
        }
        for open in [
            "$SYS/broker/connection/gw1/state",
            "$app/x",
            "$aws/things/t/shadow/update",
            "$SYSTEM/x",
            "$weirdo",
            "plain",
        ] {
            assert!(!super::is_reserved(open), "{open}");
        }
    }
}
