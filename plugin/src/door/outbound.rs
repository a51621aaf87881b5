//! A connection's writing half: everything the client is sent.
//!
//! It takes what the router delivers to the client's link as soon as it arrives (a reader that
//! falls behind in the router's log would skip messages), into the client's own bounded queue
//! ([`DeliveryQueue`]), and writes from the queue as fast as the client reads: QoS 0 at once,
//! QoS 1 and 2 within the in-flight window, each at the lower of the published and the granted
//! QoS, with the door's own packet ids. Replies decided by the reading half (acknowledgements,
//! SUBACK, PINGRESP) go in the same stream, in order.

use super::codec::{byte_string, qos_of, Wire};
use super::connection::{Control, PendingSubAck, Reply};
use super::flow::{Held, Pace};
use super::logs::FilterLog;
use super::message::properties_to_wire;
use super::queue::{Admitted, DeliveryQueue};
use super::router;
use super::session::{router_filter, Subscription, Subscriptions};
use super::sys::LocalMessage;
use super::tag::Tag;
use super::Shared;
use bytes::{Buf, Bytes, BytesMut};
use rmqtt_codec::types::Publish as WirePublish;
use rmqtt_codec::v5::DisconnectReasonCode;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, PingReq, PublishProperties};
use rumqttd::{Forward, Notification};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Bytes encoded ahead of the socket.
const HIGH_WATER: usize = 64 * 1024;

/// A client that has written nothing for this long, with messages waiting, is stalled.
const STALL_AFTER: Duration = Duration::from_secs(1);

/// How often a client holding publishers back for its lag checks whether it caught up.
const LAG_CHECK: Duration = Duration::from_millis(10);

/// How long the last messages and the DISCONNECT may take to write when a connection ends.
const FINISH_PATIENCE: Duration = Duration::from_secs(3);

/// A message waiting to be written to the client.
#[derive(Debug)]
pub(super) struct Delivery {
    topic: Bytes,
    payload: Bytes,
    qos: u8,
    retain: bool,
    properties: Option<PublishProperties>,
    identifier: Option<u32>,
}

/// Why the writing half ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// The reading half ended (telling the client `reason`, in MQTT 5).
    Closed(Option<DisconnectReasonCode>),
    /// Another connection took the client id over.
    TakenOver,
    /// The broker is shutting down.
    Shutdown,
    /// The socket refused a write.
    WriteFailed,
    /// The router dropped the link.
    RouterGone,
}

/// What the writing half leaves when it ends.
pub(super) struct Finished {
    pub why: Why,
    pub subscriptions: Subscriptions,
    /// Messages still queued (lost with the connection).
    pub queued: usize,
}

/// QoS 1 and 2 deliveries waiting for the client's acknowledgement.
#[derive(Debug)]
struct Inflight {
    window: usize,
    next: u16,
    waiting: HashMap<u16, Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// QoS 1, waiting for PUBACK.
    Ack,
    /// QoS 2, waiting for PUBREC.
    Received,
    /// QoS 2, PUBREL sent, waiting for PUBCOMP.
    Complete,
}

impl Inflight {
    fn full(&self) -> bool {
        self.waiting.len() >= self.window
    }

    fn allocate(&mut self, stage: Stage) -> u16 {
        loop {
            self.next = self.next.checked_add(1).unwrap_or(1);
            if !self.waiting.contains_key(&self.next) {
                self.waiting.insert(self.next, stage);
                return self.next;
            }
        }
    }

    /// Moves `pkid` on from `from` (to `to`, or done); false if it was not there.
    fn advance(&mut self, pkid: u16, from: Stage, to: Option<Stage>) -> bool {
        if self.waiting.get(&pkid) != Some(&from) {
            return false;
        }
        match to {
            Some(stage) => self.waiting.insert(pkid, stage),
            None => self.waiting.remove(&pkid),
        };
        true
    }
}

/// The shutdown barrier: the router has delivered everything when one of its answers to our
/// pings comes with nothing delivered since the previous one.
#[derive(Debug, Default)]
struct Drain {
    answered: u32,
    delivered: bool,
}

/// The writing half's state.
pub(super) struct Outbound<W> {
    pub writer: W,
    pub wire: Wire,
    pub link: LinkRx,
    pub link_tx: Arc<Mutex<LinkTx>>,
    pub pace: Arc<Pace>,
    pub control: UnboundedReceiver<Control>,
    pub subscriptions: Subscriptions,
    pub queue: DeliveryQueue<Delivery>,
    pub shared: Arc<Shared>,
    pub client_id: String,
    /// Cancelled when this half ends, to stop the reading half.
    pub stop: CancellationToken,
    out: BytesMut,
    needs_flush: bool,
    inflight: Inflight,
    pending_subacks: VecDeque<PendingSubAck>,
    held: Held,
    stalled: bool,
    last_progress: Instant,
    drops: Option<Arc<AtomicU64>>,
    drain: Option<Drain>,
    ending: Option<Why>,
    /// The router log behind each router subscription, to see how far behind this client is.
    logs: HashMap<u32, Arc<FilterLog>>,
    /// The router's log got too far ahead of this client: its publishers are held back.
    lagging: bool,
    /// Notifications taken from the link, being handled (kept to reuse its allocation).
    arrived: Vec<Notification>,
}

impl<W: AsyncWrite + Unpin> Outbound<W> {
    /// A writing half; `window` QoS 1/2 deliveries may be in flight.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        writer: W,
        wire: Wire,
        link: LinkRx,
        link_tx: Arc<Mutex<LinkTx>>,
        pace: Arc<Pace>,
        control: UnboundedReceiver<Control>,
        subscriptions: Subscriptions,
        window: u16,
        shared: Arc<Shared>,
        client_id: String,
        stop: CancellationToken,
    ) -> Self {
        Outbound {
            writer,
            wire,
            link,
            link_tx,
            pace,
            control,
            subscriptions,
            queue: DeliveryQueue::new(shared.limits),
            shared,
            client_id,
            stop,
            out: BytesMut::with_capacity(HIGH_WATER),
            needs_flush: false,
            inflight: Inflight {
                window: usize::from(window.max(1)),
                next: 0,
                waiting: HashMap::new(),
            },
            pending_subacks: VecDeque::new(),
            held: Held::default(),
            stalled: false,
            last_progress: Instant::now(),
            drops: None,
            drain: None,
            ending: None,
            logs: HashMap::new(),
            lagging: false,
            arrived: Vec::new(),
        }
    }

    /// Serves the client until the connection ends.
    pub async fn run(mut self) -> Finished {
        let why = loop {
            if let Some(why) = self.ending.take() {
                break why;
            }
            self.fill(HIGH_WATER);
            let writable = !self.out.is_empty() || self.needs_flush;
            let stall_at =
                (!self.stalled && self.backlogged()).then(|| self.last_progress + STALL_AFTER);
            let holding = !self.held.is_empty();
            // Unbiased: under a steady stream every branch is ready, and draining the link
            // must not starve writing to the socket (nor the other way round).
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(control) => self.on_control(control),
                    None => self.ending = Some(Why::Closed(None)),
                },
                notification = self.link.next() => match notification {
                    Ok(Some(notification)) => self.on_notifications(notification),
                    Ok(None) => {}
                    Err(_) => self.ending = Some(Why::RouterGone),
                },
                written = write_some(&mut self.writer, &self.out), if writable => match written {
                    Ok(n) => self.wrote(n),
                    Err(_) => self.ending = Some(Why::WriteFailed),
                },
                _ = tokio::time::sleep_until(stall_at.unwrap_or_else(Instant::now)), if stall_at.is_some() => self.stall(),
                // Publishers held back are let go once this client caught up, even when
                // nothing more arrives.
                _ = tokio::time::sleep(LAG_CHECK), if holding => self.lagging = self.behind(self.shared.lag.low),
            }
        };
        self.finish(why).await
    }

    /// Whether anything waits to be written or acknowledged.
    fn backlogged(&self) -> bool {
        !self.queue.is_empty() || !self.out.is_empty() || !self.inflight.waiting.is_empty()
    }

    /// Encodes queued deliveries into the output buffer, up to `limit` bytes, within the
    /// in-flight window.
    fn fill(&mut self, limit: usize) {
        // Deliveries wait while a SUBACK does: they may belong to its subscriptions.
        if self
            .pending_subacks
            .front()
            .is_some_and(|p| p.router_acks > 0)
        {
            return;
        }
        while self.out.len() < limit {
            let Some(delivery) = self.queue.pop() else {
                break;
            };
            if delivery.qos > 0 && self.inflight.full() {
                let size = delivery.topic.len() + delivery.payload.len();
                self.queue.push_front(delivery, size);
                break;
            }
            self.encode(delivery);
        }
        if !self.held.is_empty() && self.queue.has_room() && !self.lagging {
            self.held.release_all();
        }
    }

    /// Whether this client is more than `bytes` behind in any of its router logs.
    fn behind(&self, bytes: u64) -> bool {
        self.logs.iter().any(|(id, log)| {
            let position = self
                .subscriptions
                .get(id)
                .and_then(|s| s.next_offset)
                .unwrap_or(u64::MAX);
            log.messages().saturating_sub(position) * log.average_size() > bytes
        })
    }

    fn encode(&mut self, delivery: Delivery) {
        let Some(topic) = byte_string(delivery.topic) else {
            return;
        };
        let stage = match delivery.qos {
            0 => None,
            1 => Some(Stage::Ack),
            _ => Some(Stage::Received),
        };
        let pkid = stage.map(|stage| self.inflight.allocate(stage));
        let properties = match (self.wire.version().is_v5(), delivery.properties) {
            (false, _) => None,
            (true, Some(properties)) => Some(properties_to_wire(properties, delivery.identifier)),
            (true, None) => delivery
                .identifier
                .map(|id| properties_to_wire(PublishProperties::default(), Some(id))),
        };
        let publish = WirePublish {
            dup: false,
            retain: delivery.retain,
            qos: qos_of(delivery.qos),
            topic,
            packet_id: pkid.and_then(NonZeroU16::new),
            payload: delivery.payload,
            properties,
        };
        match self.wire.publish(publish, &mut self.out) {
            Ok(()) => {
                self.shared.stats.publishes_sent.fetch_add(1, Relaxed);
                self.shared.stats.packets_sent.fetch_add(1, Relaxed);
            }
            Err(e) => {
                if let Some(pkid) = pkid {
                    self.inflight.waiting.remove(&pkid);
                }
                self.dropped(
                    1,
                    &format!("a message larger than the client accepts ({e})"),
                );
            }
        }
    }

    fn wrote(&mut self, n: usize) {
        if n == 0 {
            self.needs_flush = false;
            return;
        }
        self.out.advance(n);
        self.needs_flush = true;
        self.shared.stats.bytes_sent.fetch_add(n as u64, Relaxed);
        self.progress();
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
        if self.stalled {
            self.stalled = false;
            tracing::info!(client = %self.client_id, "client reads again");
        }
    }

    fn stall(&mut self) {
        self.stalled = true;
        self.held.release_all();
        tracing::warn!(
            client = %self.client_id,
            "client stopped reading ({} messages queued): messages past its queue limit are dropped",
            self.queue.len()
        );
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Reply(replies) => replies.into_iter().for_each(|reply| self.reply(reply)),
            Control::Subscribed(added) => {
                for (id, mut subscription) in added {
                    if let Some(existing) = self.subscriptions.get(&id) {
                        subscription.next_offset = existing.next_offset;
                    }
                    self.watch(id, &subscription);
                    self.subscriptions.insert(id, subscription);
                }
            }
            Control::Unsubscribed(ids) => {
                for id in ids {
                    self.subscriptions.remove(&id);
                    self.logs.remove(&id);
                }
            }
            Control::AwaitSubAck(pending) => {
                self.pending_subacks.push_back(pending);
                self.complete_subacks();
            }
            Control::PubAck(pkid) => self.acknowledged(pkid, Stage::Ack, None),
            Control::PubRec(pkid) => {
                if self
                    .inflight
                    .advance(pkid, Stage::Received, Some(Stage::Complete))
                {
                    self.wire.pubrel(pkid, &mut self.out);
                    self.shared.stats.packets_sent.fetch_add(1, Relaxed);
                    self.progress();
                }
            }
            Control::PubComp(pkid) => self.acknowledged(pkid, Stage::Complete, None),
            Control::Local(message) => self.local(message),
            Control::Close(reason) => self.ending = Some(Why::Closed(reason)),
            Control::TakenOver => self.ending = Some(Why::TakenOver),
            Control::Shutdown => {
                self.drain = Some(Drain::default());
                self.ping_router();
            }
        }
    }

    /// Follows the router log behind subscription `id`.
    fn watch(&mut self, id: u32, subscription: &Subscription) {
        if subscription.is_local() {
            return;
        }
        if let Some(log) = self.shared.logs.log(router_filter(&subscription.filter)) {
            self.logs.insert(id, log);
        }
    }

    fn acknowledged(&mut self, pkid: u16, stage: Stage, to: Option<Stage>) {
        if self.inflight.advance(pkid, stage, to) {
            self.progress();
        }
    }

    fn reply(&mut self, reply: Reply) {
        let out = &mut self.out;
        match reply {
            Reply::PubAck(pkid, reason) => self.wire.puback(pkid, reason, out),
            Reply::PubRec(pkid, reason) => self.wire.pubrec(pkid, reason, out),
            Reply::PubComp(pkid, found) => self.wire.pubcomp(pkid, found, out),
            Reply::PingResp => self.wire.pingresp(out),
            Reply::UnsubAck(pkid, existed) => self.wire.unsuback(pkid, &existed, out),
        }
        self.shared.stats.packets_sent.fetch_add(1, Relaxed);
    }

    /// Writes the SUBACKs whose router subscriptions are all confirmed, in order, each followed
    /// by the retained `$SYS` values it brings.
    fn complete_subacks(&mut self) {
        while self
            .pending_subacks
            .front()
            .is_some_and(|p| p.router_acks == 0)
        {
            let Some(done) = self.pending_subacks.pop_front() else {
                break;
            };
            if let Some(pkid) = done.pkid {
                self.wire.suback(pkid, &done.granted, &mut self.out);
                self.shared.stats.packets_sent.fetch_add(1, Relaxed);
            }
            for message in done.local {
                self.local(message);
            }
        }
    }

    fn local(&mut self, message: LocalMessage) {
        let Some(subscription) = self.subscriptions.get(&message.subscription) else {
            return;
        };
        let delivery = Delivery {
            topic: message.topic,
            payload: message.payload,
            qos: 0,
            retain: message.retain,
            properties: None,
            identifier: subscription.identifier,
        };
        self.enqueue(delivery, None);
    }

    /// Takes the control messages already sent (the router can be ahead of them).
    fn catch_up(&mut self) {
        while let Ok(control) = self.control.try_recv() {
            self.on_control(control);
        }
    }

    /// Takes `first` and everything else the router has handed over already, tells the router
    /// at once when it may hand more (it waits for that before it serves this client again),
    /// then handles them in order.
    fn on_notifications(&mut self, first: Notification) {
        let mut batch = std::mem::take(&mut self.arrived);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match now(self.link.next()) {
                Some(Ok(Some(notification))) => batch.push(notification),
                Some(Ok(None)) => {}
                Some(Err(_)) => {
                    self.ending = Some(Why::RouterGone);
                    break;
                }
                None => break,
            }
        }
        let unscheduled = batch
            .iter()
            .filter(|n| matches!(n, Notification::Unschedule))
            .count();
        for _ in 0..unscheduled {
            if self.link.ready().is_err() {
                self.ending = Some(Why::RouterGone);
            }
        }
        for notification in batch.drain(..) {
            self.on_notification(notification);
        }
        self.arrived = batch;
    }

    fn on_notification(&mut self, notification: Notification) {
        match notification {
            Notification::Forward(forward) => {
                if let Some(drain) = &mut self.drain {
                    drain.delivered = true;
                }
                self.forward(forward);
            }
            Notification::DeviceAck(ack) => match Packet::from(ack) {
                Packet::SubAck(..) => self.router_suback(),
                Packet::PingResp(_) => self.router_pong(),
                _ => {}
            },
            Notification::Unschedule => {
                // Answered (`ready`) when the batch arrived.
                if let Some(drain) = &mut self.drain {
                    drain.delivered = true;
                }
            }
            Notification::Disconnect(..) => self.ending = Some(Why::RouterGone),
            _ => {}
        }
    }

    fn router_suback(&mut self) {
        if !self.pending_subacks.iter().any(|p| p.router_acks > 0) {
            self.catch_up();
        }
        match self.pending_subacks.iter_mut().find(|p| p.router_acks > 0) {
            Some(pending) => pending.router_acks -= 1,
            None => {
                tracing::debug!(client = %self.client_id, "an unexpected SUBACK from the router")
            }
        }
        // The router's logs behind this client's subscriptions exist now.
        for log in self.logs.values() {
            log.ready();
        }
        self.complete_subacks();
    }

    /// The router answered a PINGREQ: the reading half's batch, or the shutdown barrier's.
    fn router_pong(&mut self) {
        if self.pace.answered() {
            return;
        }
        let Some(drain) = &mut self.drain else {
            return;
        };
        if drain.answered > 0 && !drain.delivered {
            self.ending = Some(Why::Shutdown);
            return;
        }
        drain.answered += 1;
        drain.delivered = false;
        self.ping_router();
    }

    fn ping_router(&mut self) {
        let mut link = self.link_tx.lock().unwrap_or_else(|e| e.into_inner());
        if router::send(&mut link, Packet::PingReq(PingReq)).is_err() {
            self.ending = Some(Why::Shutdown);
        }
    }

    fn forward(&mut self, forward: Forward) {
        let Forward {
            cursor,
            publish,
            mut properties,
            ..
        } = forward;
        let tag = Tag::detach(&mut properties);
        let ids = properties
            .as_mut()
            .map(|p| std::mem::take(&mut p.subscription_identifiers))
            .unwrap_or_default();
        // A resumed session's first deliveries can come before the router has the ids again.
        let id = match ids.first() {
            Some(&id) => id as u32,
            None => match self.subscription_for(&publish.topic) {
                Some(id) => id,
                None => return,
            },
        };
        if !self.subscriptions.contains_key(&id) {
            self.catch_up();
        }
        let Some(subscription) = self.subscriptions.get_mut(&id) else {
            // Unsubscribed since the router sent it.
            return;
        };
        let skipped = match (cursor, subscription.next_offset) {
            (Some((_, offset)), Some(expected)) if offset > expected => offset - expected,
            _ => 0,
        };
        if let Some((_, offset)) = cursor {
            subscription.next_offset = Some(offset.saturating_add(1));
        }
        let delivery = Delivery {
            topic: publish.topic,
            payload: publish.payload,
            qos: tag.map_or(0, |tag| tag.qos).min(subscription.options.qos),
            retain: publish.retain,
            properties: properties.filter(|p| *p != PublishProperties::default()),
            identifier: subscription.identifier,
        };
        if skipped > 0 {
            let filter = subscription.filter.clone();
            tracing::warn!(
                client = %self.client_id,
                filter,
                "the router's log for `{filter}` overran this client by {skipped} messages: dropped (raise broker.router.max_segment_count)"
            );
            self.dropped(skipped, "");
        }
        if let Some((_, offset)) = cursor {
            self.follow(id, offset);
        }
        self.enqueue(delivery, tag.map(|tag| tag.publisher));
    }

    /// The router subscription whose filter matches `topic`, for a delivery that does not say.
    fn subscription_for(&self, topic: &[u8]) -> Option<u32> {
        let topic = std::str::from_utf8(topic).ok()?;
        self.subscriptions
            .iter()
            .filter(|(_, s)| !s.is_local())
            .find(|(_, s)| {
                crate::topic::TopicFilter::new(router_filter(&s.filter))
                    .is_ok_and(|filter| filter.matches(topic))
            })
            .map(|(id, _)| *id)
    }

    /// Notes how far behind the router's log for subscription `id` this client is, now that
    /// it received the message at `offset`.
    fn follow(&mut self, id: u32, offset: u64) {
        let Some(log) = self.logs.get(&id) else {
            return;
        };
        let lag = log.messages().saturating_sub(offset + 1) * log.average_size();
        if lag > self.shared.lag.high {
            self.lagging = true;
        } else if self.lagging && lag < self.shared.lag.low {
            self.lagging = self.behind(self.shared.lag.low);
        }
    }

    fn enqueue(&mut self, delivery: Delivery, publisher: Option<u64>) {
        if !self.backlogged() {
            self.last_progress = Instant::now();
        }
        let size = delivery.topic.len() + delivery.payload.len();
        match self.queue.push(delivery, size, self.stalled) {
            Admitted::Queued if !self.lagging => {}
            Admitted::Queued | Admitted::OverLimit => {
                if let Some(publisher) = publisher {
                    self.held.hold(&self.shared.gates, publisher);
                }
            }
            Admitted::Dropped => self.dropped(1, "its queue is full"),
        }
    }

    /// Counts `count` messages lost for this client, logging the first and then every power
    /// of two (`why` empty: already logged).
    fn dropped(&mut self, count: u64, why: &str) {
        let counter = self
            .drops
            .get_or_insert_with(|| self.shared.stats.client_drops(&self.client_id));
        let before = counter.load(Relaxed);
        self.shared.stats.count_dropped(counter, count);
        let after = before + count;
        if !why.is_empty() && (before == 0 || before.leading_zeros() != after.leading_zeros()) {
            tracing::warn!(
                client = %self.client_id,
                "message dropped: {why} ({after} dropped for this client so far)"
            );
        }
    }

    /// Writes what the end calls for, closes the socket, and stops the reading half.
    async fn finish(mut self, why: Why) -> Finished {
        let reason = match why {
            Why::Closed(reason) => reason,
            Why::TakenOver => Some(DisconnectReasonCode::SessionTakenOver),
            Why::Shutdown => Some(DisconnectReasonCode::ServerShuttingDown),
            Why::WriteFailed | Why::RouterGone => None,
        };
        if why == Why::Shutdown {
            self.pending_subacks.clear();
            self.fill(usize::MAX);
        }
        if let Some(reason) = reason {
            self.wire
                .disconnect(reason, &reason_string(reason), &mut self.out);
        }
        if why != Why::WriteFailed {
            let out = std::mem::take(&mut self.out);
            let written = tokio::time::timeout(FINISH_PATIENCE, async {
                self.writer.write_all(&out).await?;
                self.writer.shutdown().await
            })
            .await;
            if let Ok(Ok(())) = written {
                self.shared
                    .stats
                    .bytes_sent
                    .fetch_add(out.len() as u64, Relaxed);
            }
        }
        self.stop.cancel();
        self.held.release_all();
        Finished {
            why,
            queued: self.queue.clear(),
            subscriptions: std::mem::take(&mut self.subscriptions),
        }
    }
}

/// What a server DISCONNECT says, in words.
fn reason_string(reason: DisconnectReasonCode) -> String {
    match reason {
        DisconnectReasonCode::SessionTakenOver => "another connection took this client id".into(),
        DisconnectReasonCode::ServerShuttingDown => "the broker is shutting down".into(),
        DisconnectReasonCode::KeepAliveTimeout => {
            "nothing received for 1.5 times the keep-alive".into()
        }
        other => format!("{other:?}"),
    }
}

/// Notifications taken from the link at once, at most.
const MAX_BATCH: usize = 16 * 1024;

/// The output of `future` if it is ready now. A link's `next` is ready while the link holds
/// notifications; dropping it when pending loses nothing (the router's wake-up signal stays
/// in its channel).
fn now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

/// Writes some of `out`, or flushes when it is empty (returning 0).
async fn write_some<W: AsyncWrite + Unpin>(writer: &mut W, out: &[u8]) -> std::io::Result<usize> {
    if out.is_empty() {
        writer.flush().await?;
        return Ok(0);
    }
    writer.write(out).await
}
