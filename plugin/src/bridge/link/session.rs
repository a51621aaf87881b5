//! One connection of a bridge to its remote, from CONNECT to its end.
//!
//! Once the remote accepted the bridge, the session subscribes to the `in` topics, says it is
//! up, and streams the queue: QoS 1 and 2 messages within the in-flight window (the lower of
//! `max_inflight` and the remote's receive maximum), in order, from memory while it keeps up
//! and from disk after an outage, each leaving the queue when the remote acknowledges it; QoS 0
//! messages as they come. What the remote sends on the `in` topics goes to the bridge's local
//! publisher and is acknowledged once handed over. A keep-alive ping goes out when the link
//! has been quiet for half the keep-alive, and a link silent for a whole keep-alive is dead.

use super::window::{pkid_of, InFlight, Stage, Window};
use super::{Link, LinkState, PRIMARY_PROBE};
use crate::bridge::client::wire::{BridgeWire, ConnAck, ConnectParams, FromRemote};
use crate::bridge::client::{dial, Stream};
use crate::bridge::config::{Address, Start};
use crate::bridge::local::{Incoming, Work};
use crate::bridge::metrics::ConnectResult;
use crate::bridge::queue::{Outbox, QueueError, Queued, Stored, Taken};
use crate::bridge::topics;
use crate::door::message::{properties_from_wire, properties_to_wire};
use crate::door::now_millis;
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use rmqtt_codec::types::{Publish, QoS};
use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU16;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a connection (TCP, TLS, CONNECT to CONNACK) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes written ahead of the socket before the session stops taking more from the queue.
const OUT_HIGH: usize = 256 * 1024;
/// Messages from the remote handed to the local publisher and not yet acknowledged, past
/// which the session stops reading its socket.
const IN_HIGH: usize = 1000;
/// Messages read from disk at a time.
const DISK_BATCH: usize = 512;
/// QoS 2 messages in flight at most on an MQTT 3 link, whose remote cannot announce a receive
/// maximum: below mosquitto's `max_inflight_messages` (20), past which it disconnects a
/// client; a QoS 2 message holds its place there until its PUBREL.
const V3_QOS2_INFLIGHT: u16 = 16;

/// Messages from the remote handed over: (packet id, QoS) each, in order.
type Acks = Vec<(u16, u8)>;

/// How a session ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Stopped (a clean disconnect).
    Stopped,
    /// Idle past the lazy start's timeout (a clean disconnect).
    Idle,
    /// The primary answers again (a clean disconnect from the secondary).
    Primary,
    /// The remote refused the bridge bit: try again at once without it.
    RetryPlain,
    /// Never connected: why.
    Failed(String),
    /// Connected, then lost: why.
    Lost(String),
}

/// Connects to `address` (the `index`th) and serves the connection until it ends.
pub(super) async fn run(
    link: &Link,
    address: &Address,
    index: usize,
    state: &mut LinkState,
) -> Outcome {
    let config = &link.config;
    let failed = |why: String| {
        link.metrics.count_connect(ConnectResult::Failed);
        Outcome::Failed(why)
    };
    let stream = match dial(
        address,
        config.bind_address,
        link.tls.clone(),
        CONNECT_TIMEOUT,
    )
    .await
    {
        Ok(stream) => stream,
        Err(e) => return failed(e.to_string()),
    };
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut wire = BridgeWire::new(config.protocol, config.max_packet_size.unwrap_or(0));
    let bridge_bit = state.try_private && !config.protocol.is_v5();
    let mut out = BytesMut::new();
    if let Err(e) = wire.connect(&connect_params(link, bridge_bit), &mut out) {
        return failed(format!("CONNECT cannot be written: {e}"));
    }
    if let Err(e) = writer.write_all(&out).await {
        return failed(format!("{address}: {e}"));
    }
    let mut inbuf = BytesMut::with_capacity(4096);
    let connack = match read_connack(&mut reader, &mut wire, &mut inbuf).await {
        Ok(connack) => connack,
        Err(why) => return failed(format!("{address}: {why}")),
    };
    if connack.code != 0 {
        link.metrics.count_connect(ConnectResult::Refused);
        if bridge_bit && connack.refused_version() {
            tracing::info!(bridge = %config.name, "{address} refused the bridge protocol level (try_private): connecting as a plain client");
            state.try_private = false;
            return Outcome::RetryPlain;
        }
        let reason = connack
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return Outcome::Failed(format!(
            "{address} refused the connection: CONNACK {:#04x} ({}){reason}",
            connack.code,
            connack.meaning(config.protocol)
        ));
    }
    link.metrics.count_connect(ConnectResult::Success);
    link.connected(state, address);
    let mut session = Session::new(link, wire, &connack, index, state.sent_before);
    let outcome = session.serve(reader, writer, inbuf).await;
    state.sent_before = state.sent_before.max(session.sent_before);
    session.disconnected();
    outcome
}

fn connect_params(link: &Link, bridge_bit: bool) -> ConnectParams {
    let config = &link.config;
    let remote_will = config.notifications.enabled && !config.notifications.local_only;
    ConnectParams {
        client_id: config.client_id.clone(),
        clean_start: config.clean_start,
        keep_alive: config.keepalive_s,
        username: config.username.clone(),
        password: config.password.as_ref().map(|p| p.0.clone()),
        will: remote_will.then(|| (config.notification_topic(), Bytes::from_static(b"0"))),
        bridge: bridge_bit,
        receive_maximum: config.max_inflight,
        max_packet_size: config.max_packet_size,
    }
}

/// Reads until the CONNACK (or fails: closed, timed out, another packet).
async fn read_connack(
    reader: &mut ReadHalf<Box<dyn Stream>>,
    wire: &mut BridgeWire,
    inbuf: &mut BytesMut,
) -> Result<ConnAck, String> {
    let read = async {
        loop {
            match wire.decode(inbuf) {
                Ok(Some(FromRemote::ConnAck(connack))) => return Ok(connack),
                Ok(Some(other)) => return Err(format!("expected CONNACK, got {other:?}")),
                Ok(None) => {}
                Err(e) => return Err(format!("malformed CONNACK: {e}")),
            }
            match reader.read_buf(inbuf).await {
                Ok(0) => return Err("the connection closed before CONNACK".to_string()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, read)
        .await
        .unwrap_or_else(|_| Err(format!("no CONNACK within {CONNECT_TIMEOUT:?}")))
}

/// What happened while the session waited.
enum Event {
    Stop,
    Wrote(std::io::Result<usize>),
    Read(std::io::Result<usize>),
    Marked(u64),
    Delivered(Vec<(u16, u8)>),
    FromDisk(Result<Vec<Stored>, QueueError>),
    Queued,
    Tick,
}

/// A connected session.
struct Session<'a> {
    link: &'a Link,
    wire: BridgeWire,
    out: BytesMut,
    window: Window,
    /// The next message to send.
    cursor: u64,
    /// Messages taken from the queue, not yet sent.
    staged: VecDeque<Stored>,
    qos0: VecDeque<Queued>,
    disk: Option<JoinHandle<Result<Vec<Stored>, QueueError>>>,
    session_present: bool,
    /// Messages below this one may have been sent before: they go with DUP.
    dup_below: u64,
    sent_before: u64,
    max_qos: u8,
    retain_out: bool,
    keep_alive: Duration,
    index: usize,
    marked: (mpsc::UnboundedSender<u64>, mpsc::UnboundedReceiver<u64>),
    delivered: (mpsc::UnboundedSender<Acks>, mpsc::UnboundedReceiver<Acks>),
    incoming: Vec<Incoming>,
    in_flight_in: usize,
    awaiting_release: HashSet<u16>,
    subscribed: Vec<(u16, Vec<String>)>,
    last_received: Instant,
    last_sent: Instant,
    last_activity: Instant,
    ping_sent: Option<Instant>,
    probe: Option<JoinHandle<bool>>,
    next_probe: Instant,
    refusals_logged: u64,
}

impl<'a> Session<'a> {
    fn new(
        link: &'a Link,
        mut wire: BridgeWire,
        connack: &ConnAck,
        index: usize,
        sent_before: u64,
    ) -> Session<'a> {
        let config = &link.config;
        let window = connack
            .receive_maximum
            .map_or(config.max_inflight, |r| r.min(config.max_inflight));
        if let Some(max) = connack.max_packet_size {
            wire.set_max_out(max);
        }
        let qos2_window = match connack.receive_maximum {
            Some(_) => window,
            None => window.min(V3_QOS2_INFLIGHT),
        };
        let keep_alive = connack.server_keep_alive.unwrap_or(config.keepalive_s);
        let now = Instant::now();
        Session {
            link,
            wire,
            out: BytesMut::with_capacity(8192),
            window: Window::new(usize::from(window), usize::from(qos2_window)),
            cursor: link.queue.first(),
            staged: VecDeque::new(),
            qos0: VecDeque::new(),
            disk: None,
            session_present: connack.session_present,
            dup_below: sent_before,
            sent_before,
            max_qos: connack.max_qos,
            retain_out: config.outgoing_retain && connack.retain_available,
            keep_alive: Duration::from_secs(u64::from(keep_alive)),
            index,
            marked: mpsc::unbounded_channel(),
            delivered: mpsc::unbounded_channel(),
            incoming: Vec::new(),
            in_flight_in: 0,
            awaiting_release: HashSet::new(),
            subscribed: Vec::new(),
            last_received: now,
            last_sent: now,
            last_activity: now,
            ping_sent: None,
            probe: None,
            next_probe: now + PRIMARY_PROBE,
            refusals_logged: 0,
        }
    }

    async fn serve(
        &mut self,
        mut reader: ReadHalf<Box<dyn Stream>>,
        mut writer: WriteHalf<Box<dyn Stream>>,
        mut inbuf: BytesMut,
    ) -> Outcome {
        self.connected();
        let mut tick = tokio::time::interval(self.tick_period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Packets that came with the CONNACK.
        if let Some(outcome) = self.handle_buffered(&mut inbuf) {
            return outcome;
        }
        loop {
            self.fill();
            let event = self
                .next_event(&mut reader, &mut writer, &mut inbuf, &mut tick)
                .await;
            let outcome = match event {
                Event::Stop => Some(Outcome::Stopped),
                Event::Wrote(Ok(_)) => None,
                Event::Wrote(Err(e)) => Some(Outcome::Lost(e.to_string())),
                Event::Read(Ok(0)) => {
                    Some(Outcome::Lost("the remote closed the connection".into()))
                }
                Event::Read(Ok(_)) => {
                    self.last_received = Instant::now();
                    self.ping_sent = None;
                    self.handle_buffered(&mut inbuf)
                }
                Event::Read(Err(e)) => Some(Outcome::Lost(e.to_string())),
                Event::Marked(seq) => {
                    self.release(seq);
                    None
                }
                Event::Delivered(acks) => {
                    self.acknowledge_incoming(acks);
                    None
                }
                Event::FromDisk(read) => self.read_from_disk(read),
                Event::Queued => None,
                Event::Tick => self.tick(),
            };
            if let Some(outcome) = outcome {
                if matches!(outcome, Outcome::Stopped | Outcome::Idle | Outcome::Primary) {
                    self.say_goodbye(&mut writer).await;
                }
                return outcome;
            }
        }
    }

    async fn next_event(
        &mut self,
        reader: &mut ReadHalf<Box<dyn Stream>>,
        writer: &mut WriteHalf<Box<dyn Stream>>,
        inbuf: &mut BytesMut,
        tick: &mut tokio::time::Interval,
    ) -> Event {
        let reading = self.in_flight_in < IN_HIGH;
        let wants_queue = self.wants_queue();
        let link = self.link;
        let disk = async {
            match self.disk.as_mut() {
                Some(handle) => handle.await.unwrap_or(Err(QueueError::Closed)),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = link.stop.cancelled() => Event::Stop,
            written = writer.write_buf(&mut self.out), if !self.out.is_empty() => Event::Wrote(written),
            read = reader.read_buf(inbuf), if reading => Event::Read(read),
            Some(seq) = self.marked.1.recv() => Event::Marked(seq),
            Some(acks) = self.delivered.1.recv() => Event::Delivered(acks),
            read = disk => Event::FromDisk(read),
            _ = link.queue.committed_past(self.cursor), if wants_queue => Event::Queued,
            _ = link.volatile.added(), if self.out.len() < OUT_HIGH => Event::Queued,
            _ = tick.tick() => Event::Tick,
        }
    }

    fn tick_period(&self) -> Duration {
        let quarter = self.keep_alive / 4;
        if quarter.is_zero() {
            PRIMARY_PROBE
        } else {
            quarter.clamp(Duration::from_millis(100), PRIMARY_PROBE)
        }
    }

    /// Whether the session would take more from the queue now.
    fn wants_queue(&self) -> bool {
        self.window.has_room()
            && self.out.len() < OUT_HIGH
            && self.disk.is_none()
            && self.staged.is_empty()
    }

    /// The link is up: counters, notifications, subscriptions, retained messages.
    fn connected(&mut self) {
        let link = self.link;
        link.metrics.set_connected(true);
        link.volatile.set_connected(true);
        link.notify_local(true);
        self.subscribe();
        let notifications = &link.config.notifications;
        if notifications.enabled && !notifications.local_only {
            self.notify_remote(b"1");
        }
        self.queue_retained();
    }

    /// Publishes the link's state on the remote, retained, at QoS 0: a QoS 1 publish would
    /// take a place in the remote's in-flight quota, which a resumed session may have full
    /// until its first PUBRELs (mosquitto disconnects a client that exceeds it).
    fn notify_remote(&mut self, state: &'static [u8]) {
        let publish = Publish {
            dup: false,
            retain: true,
            qos: QoS::AtMostOnce,
            topic: ByteString::from(self.link.config.notification_topic()),
            packet_id: None,
            payload: Bytes::from_static(state),
            properties: None,
        };
        let _ = self.wire.publish(publish, &mut self.out);
    }

    /// SUBSCRIBE to the remote filters of the `in` lines (and UNSUBSCRIBE from those of the
    /// `out`-only lines, as mosquitto's `bridge_attempt_unsubscribe`).
    fn subscribe(&mut self) {
        let config = &self.link.config;
        let filters: Vec<(String, u8)> = config
            .topics
            .iter()
            .filter(|rule| rule.direction.inward())
            .map(|rule| (rule.remote_filter().to_string(), rule.qos))
            .collect();
        if !filters.is_empty() {
            let pkid = self.window.control_pkid(self.cursor);
            if self.wire.subscribe(pkid, &filters, &mut self.out).is_ok() {
                let names = filters.into_iter().map(|(f, _)| f).collect();
                self.subscribed.push((pkid, names));
            }
        }
        let outward: Vec<String> = config
            .topics
            .iter()
            .filter(|rule| !rule.direction.inward())
            .map(|rule| rule.remote_filter().to_string())
            .collect();
        if config.attempt_unsubscribe && !outward.is_empty() {
            let pkid = self.window.control_pkid(self.cursor);
            let _ = self.wire.unsubscribe(pkid, &outward, &mut self.out);
        }
    }

    /// Queues the retained messages the `out` lines match, as mosquitto's bridge does on
    /// each connection, so that the remote has them.
    fn queue_retained(&self) {
        let link = self.link;
        let mut seen = HashSet::new();
        let mut outbox = Outbox::default();
        for rule in link.config.topics.iter().filter(|r| r.direction.out()) {
            let Ok(filter) = crate::topic::TopicFilter::new(rule.local_filter()) else {
                continue;
            };
            for retained in link.door.retained(&filter) {
                let Ok(topic) = std::str::from_utf8(&retained.topic) else {
                    continue;
                };
                let Some((remote, qos)) = topics::outward(&link.config.topics, topic) else {
                    continue;
                };
                if !seen.insert(remote.clone()) {
                    continue;
                }
                let queued = Queued {
                    topic: Bytes::from(remote),
                    payload: retained.payload,
                    qos: retained.qos.min(qos),
                    retain: true,
                    properties: retained.properties,
                    queued_at: now_millis(),
                };
                if queued.qos == 0 {
                    link.volatile.push(queued);
                } else {
                    outbox.push(link.queue.clone(), queued);
                }
            }
        }
        // Retained locally already: the writes need not be awaited.
        drop(outbox.submit());
    }

    /// Moves what waits into the socket's buffer: QoS 0 messages, then queued ones within the
    /// window.
    fn fill(&mut self) {
        if self.out.len() < OUT_HIGH {
            self.link.volatile.take_all(&mut self.qos0);
            while self.out.len() < OUT_HIGH {
                let Some(message) = self.qos0.pop_front() else {
                    break;
                };
                self.send_qos0(message);
            }
        }
        while self.window.has_room() && self.out.len() < OUT_HIGH {
            if self.staged.is_empty() && !self.stage() {
                break;
            }
            let Some(next) = self.staged.front() else {
                break;
            };
            if next.seq < self.link.queue.first() {
                // Dropped from a full queue meanwhile.
                self.staged.pop_front();
                continue;
            }
            let qos = next.message.qos.min(self.max_qos);
            if !self.window.is_free(pkid_of(next.seq)) || !self.window.has_room_for(qos) {
                break;
            }
            let Some(stored) = self.staged.pop_front() else {
                break;
            };
            self.cursor = stored.seq + 1;
            self.send_stored(stored);
        }
    }

    /// Takes the next messages from the queue's memory, or starts reading them from disk;
    /// whether some were taken.
    fn stage(&mut self) -> bool {
        if self.disk.is_some() {
            return false;
        }
        let mut taken = Vec::new();
        match self.link.queue.take(self.cursor, DISK_BATCH, &mut taken) {
            Taken::Nothing => false,
            Taken::Some => {
                self.staged.extend(taken);
                !self.staged.is_empty()
            }
            Taken::OnDisk => {
                let queue = self.link.queue.clone();
                let cursor = self.cursor;
                self.disk = Some(tokio::task::spawn_blocking(move || {
                    queue.read_stored(cursor, DISK_BATCH)
                }));
                false
            }
        }
    }

    fn read_from_disk(&mut self, read: Result<Vec<Stored>, QueueError>) -> Option<Outcome> {
        self.disk = None;
        match read {
            Ok(messages) => {
                self.staged
                    .extend(messages.into_iter().filter(|m| m.seq >= self.cursor));
                None
            }
            Err(e) => Some(Outcome::Lost(format!("the queue cannot be read: {e}"))),
        }
    }

    fn send_qos0(&mut self, message: Queued) {
        let remaining = match remaining_expiry(&message) {
            Ok(remaining) => remaining,
            Err(()) => {
                self.link.metrics.count_expired();
                return;
            }
        };
        let publish = self.publish_of(&message, 0, None, false, remaining);
        match self.wire.publish(publish, &mut self.out) {
            Ok(()) => {
                self.link.metrics.count_sent(1);
                self.mark_sent(true);
            }
            Err(e) => self.refused_by_size(&message, &e.to_string()),
        }
    }

    /// Sends queued message `stored` (PUBREL for one the remote already received).
    fn send_stored(&mut self, stored: Stored) {
        let (seq, pkid) = (stored.seq, pkid_of(stored.seq));
        let queue = &self.link.queue;
        if queue.is_received(seq) {
            if self.session_present {
                self.wire.pubrel(pkid, &mut self.out);
                let entry = InFlight {
                    stored,
                    qos: 2,
                    stage: Stage::Released,
                };
                self.window.insert(pkid, entry);
            } else {
                // The remote delivered it before it lost the session.
                queue.acknowledge(seq, stored.size);
                self.link.metrics.count_sent(1);
            }
            return;
        }
        let remaining = match remaining_expiry(&stored.message) {
            Ok(remaining) => remaining,
            Err(()) => {
                queue.acknowledge(seq, stored.size);
                self.link.metrics.count_expired();
                return;
            }
        };
        let qos = stored.message.qos.min(self.max_qos);
        let dup = self.session_present && seq < self.dup_below && qos > 0;
        let id = (qos > 0).then_some(pkid);
        let publish = self.publish_of(&stored.message, qos, id, dup, remaining);
        if let Err(e) = self.wire.publish(publish, &mut self.out) {
            queue.acknowledge(seq, stored.size);
            self.refused_by_size(&stored.message, &e.to_string());
            return;
        }
        self.sent_before = self.sent_before.max(seq + 1);
        self.mark_sent(true);
        if qos == 0 {
            queue.acknowledge(seq, stored.size);
            self.link.metrics.count_sent(1);
        } else {
            let entry = InFlight {
                stored,
                qos,
                stage: Stage::Sent,
            };
            self.window.insert(pkid, entry);
        }
    }

    fn publish_of(
        &self,
        message: &Queued,
        qos: u8,
        pkid: Option<u16>,
        dup: bool,
        remaining: Option<u32>,
    ) -> Publish {
        let properties = if self.link.config.protocol.is_v5() {
            properties_to_wire(message.properties.as_deref(), None, remaining)
        } else {
            None
        };
        Publish {
            dup,
            retain: message.retain && self.retain_out,
            qos: match qos {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => QoS::ExactlyOnce,
            },
            topic: ByteString::try_from(message.topic.clone()).unwrap_or_default(),
            packet_id: pkid.and_then(NonZeroU16::new),
            payload: message.payload.clone(),
            properties,
        }
    }

    /// A message larger than the remote accepts: dropped and counted.
    fn refused_by_size(&mut self, message: &Queued, why: &str) {
        self.link.metrics.count_dropped(1);
        self.log_refusal(message, why);
    }

    fn log_refusal(&mut self, message: &Queued, why: &str) {
        self.refusals_logged += 1;
        if self.refusals_logged.is_power_of_two() {
            tracing::warn!(
                bridge = %self.link.config.name,
                topic = %String::from_utf8_lossy(&message.topic),
                "message not delivered to the remote, dropped: {why} ({} so far)",
                self.refusals_logged
            );
        }
    }

    fn mark_sent(&mut self, activity: bool) {
        let now = Instant::now();
        self.last_sent = now;
        if activity {
            self.last_activity = now;
        }
    }

    /// Handles every whole packet in `inbuf`, then hands what came in to the local publisher.
    fn handle_buffered(&mut self, inbuf: &mut BytesMut) -> Option<Outcome> {
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

    fn handle(&mut self, packet: FromRemote) -> Option<Outcome> {
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

    /// The remote has message `pkid` (PUBACK or PUBCOMP; a reason of 0x80 or more: it refused
    /// it).
    fn complete(&mut self, pkid: u16, reason: u8) {
        let Some(entry) = self.window.remove(pkid) else {
            return;
        };
        self.link
            .queue
            .acknowledge(entry.stored.seq, entry.stored.size);
        if reason >= 0x80 {
            self.link.metrics.count_dropped(1);
            let why = format!("the remote answered reason {reason:#04x}");
            self.log_refusal(&entry.stored.message.clone(), &why);
        } else {
            self.link.metrics.count_sent(1);
        }
    }

    /// PUBREC: the mark goes to disk first, then the PUBREL ([`Session::release`]).
    fn received(&mut self, pkid: u16) {
        let Some(entry) = self.window.get_mut(pkid) else {
            return;
        };
        match entry.stage {
            Stage::Sent => {
                entry.stage = Stage::Marking;
                let seq = entry.stored.seq;
                self.link.queue.mark_received(seq, self.marked.0.clone());
            }
            Stage::Marking => {}
            Stage::Released => self.wire.pubrel(pkid, &mut self.out),
        }
    }

    /// The mark of message `seq` is on disk: PUBREL.
    fn release(&mut self, seq: u64) {
        let pkid = pkid_of(seq);
        if let Some(entry) = self.window.get_mut(pkid) {
            if entry.stored.seq == seq && entry.stage == Stage::Marking {
                entry.stage = Stage::Released;
                self.wire.pubrel(pkid, &mut self.out);
            }
        }
    }

    /// A message from the remote: renamed by the `in` lines, for the local publisher.
    fn incoming(&mut self, publish: Box<Publish>) {
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
    fn acknowledge_incoming(&mut self, acks: Vec<(u16, u8)>) {
        for (pkid, qos) in acks {
            self.in_flight_in = self.in_flight_in.saturating_sub(1);
            match qos {
                1 => self.wire.puback(pkid, &mut self.out),
                2 => self.wire.pubrec(pkid, &mut self.out),
                _ => {}
            }
        }
    }

    fn subscribed(&mut self, pkid: u16, codes: Vec<u8>) {
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

    /// Keep-alive, lazy start's idle timeout, and the primary's probe.
    fn tick(&mut self) -> Option<Outcome> {
        let now = Instant::now();
        if !self.keep_alive.is_zero() {
            let half = self.keep_alive / 2;
            if self.ping_sent.is_some() && now - self.last_received >= self.keep_alive {
                return Some(Outcome::Lost(format!(
                    "nothing from the remote for {:?} (keep-alive)",
                    self.keep_alive
                )));
            }
            let quiet = now - self.last_received >= half || now - self.last_sent >= half;
            if self.ping_sent.is_none() && quiet {
                self.wire.pingreq(&mut self.out);
                self.ping_sent = Some(now);
                self.mark_sent(false);
            }
        }
        if let Start::Lazy { idle_timeout, .. } = self.link.config.start {
            let idle = self.window.is_empty()
                && self.link.queue.is_empty()
                && self.link.volatile.is_empty()
                && self.in_flight_in == 0;
            if idle && now - self.last_activity >= idle_timeout {
                return Some(Outcome::Idle);
            }
        }
        self.probe_primary(now)
    }

    /// While on a secondary address (`round_robin: false`), checks every [`PRIMARY_PROBE`]
    /// whether the primary accepts connections.
    fn probe_primary(&mut self, now: Instant) -> Option<Outcome> {
        let config = &self.link.config;
        if config.round_robin || self.index == 0 {
            return None;
        }
        if let Some(probe) = &self.probe {
            if !probe.is_finished() {
                return None;
            }
            let probe = self.probe.take()?;
            let answered = futures_util::FutureExt::now_or_never(probe)
                .and_then(Result::ok)
                .unwrap_or(false);
            if answered {
                return Some(Outcome::Primary);
            }
        }
        if now >= self.next_probe {
            self.next_probe = now + PRIMARY_PROBE;
            let primary = config.addresses[0].clone();
            let bind = config.bind_address;
            self.probe = Some(tokio::spawn(async move {
                dial(&primary, bind, None, Duration::from_secs(2))
                    .await
                    .is_ok()
            }));
        }
        None
    }

    /// A clean end: the state notification, DISCONNECT (so the remote keeps the will to
    /// itself), then the socket flushed.
    async fn say_goodbye(&mut self, writer: &mut WriteHalf<Box<dyn Stream>>) {
        let config = &self.link.config;
        if config.notifications.enabled && !config.notifications.local_only {
            self.notify_remote(b"0");
        }
        self.wire.disconnect(&mut self.out);
        let flush = async {
            writer.write_all(&self.out).await?;
            writer.shutdown().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
    }

    /// The link is down.
    fn disconnected(&mut self) {
        if let Some(disk) = self.disk.take() {
            disk.abort();
        }
        if let Some(probe) = self.probe.take() {
            probe.abort();
        }
        let link = self.link;
        link.metrics.count_dropped(self.qos0.len() as u64);
        self.qos0.clear();
        link.metrics.set_connected(false);
        link.volatile.set_connected(false);
        link.notify_local(false);
    }
}

/// The message expiry interval `message` has left (`Err`: it has expired).
fn remaining_expiry(message: &Queued) -> Result<Option<u32>, ()> {
    let Some(at) = message.expires_at() else {
        return Ok(None);
    };
    let now = now_millis();
    if at <= now {
        return Err(());
    }
    Ok(Some(
        u32::try_from((at - now).div_ceil(1000)).unwrap_or(u32::MAX),
    ))
}
