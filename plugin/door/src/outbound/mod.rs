//! A connection's writing half: everything the client is sent.
//!
//! It takes what the router delivers to the client's link as soon as it arrives (a reader that
//! falls behind in the router's log would skip messages), into the client's own bounded queue
//! ([`DeliveryQueue`]), and writes from the queue as fast as the client reads: QoS 0 at once,
//! QoS 1 and 2 within the in-flight window, each at the lower of the published and the granted
//! QoS, with the door's own packet ids. Replies decided by the reading half (acknowledgements,
//! SUBACK, PINGRESP) go in the same stream, in order.

mod control;
mod inflight;
mod link;

use super::codec::{byte_string, qos_of, Wire};
use super::control::{Control, PendingSubAck, Reply};
use super::delivery::Delivery;
use super::dispatch::now_millis;
use super::flow::{Held, Pace};
use super::logs::ReadPosition;
use super::message::properties_to_wire;
use super::queue::DeliveryQueue;
use super::session::context::SessionContext;
use super::session::overlap::Overlaps;
use super::session::state::{SessionState, Unacknowledged};
use super::session::Subscriptions;
use super::shared::Mailbox;
use super::Shared;
use crate::bridge::queue::{QueueError, Ticket};
use crate::router::FromRouter;
use crate::router::{Rx as LinkRx, Tx as LinkTx};
use crate::security::ClientRules;
use bytes::{Buf, BytesMut};
use inflight::{Inflight, Stage};
use link::Drain;
use rmqtt_codec::types::Publish as WirePublish;
use rmqtt_codec::v5::DisconnectReasonCode;
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

impl Finished {
    /// The end of a writing half that failed (panicked): nothing to keep.
    pub fn failed() -> Finished {
        Finished {
            why: Why::WriteFailed,
            session: SessionState::default(),
            link: None,
            mailbox: None,
        }
    }
}

/// Bytes encoded ahead of the socket.
const HIGH_WATER: usize = 64 * 1024;

/// A client that has written nothing for this long, with messages waiting, is stalled.
const STALL_AFTER: Duration = Duration::from_secs(1);

/// How often a client holding publishers back for its lag checks whether it caught up.
const LAG_CHECK: Duration = Duration::from_millis(10);

/// How long the last messages and the DISCONNECT may take to write when a connection ends.
const FINISH_PATIENCE: Duration = Duration::from_secs(3);

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

impl Why {
    /// Whether the broker ended the connection with a DISCONNECT of its own (the client may
    /// still be sending: the connection lingers).
    pub(super) fn broker_disconnected(self) -> bool {
        matches!(self, Why::Closed(Some(_)) | Why::TakenOver)
    }
}

/// What the writing half leaves when it ends.
pub(super) struct Finished {
    pub why: Why,
    /// The session as the connection leaves it (`incoming` is the reading half's).
    pub session: SessionState,
    /// The router link's receiving side, for a session that goes on.
    pub link: Option<LinkRx>,
    /// The session's mailbox, for a session that goes on.
    pub mailbox: Option<Mailbox>,
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
    /// Copies of messages still to come through overlapping subscriptions.
    overlaps: Overlaps,
    pub queue: DeliveryQueue<Delivery>,
    pub shared: Arc<Shared>,
    pub client_id: String,
    /// The connection's id (a publisher id: no-local subscriptions skip its own publishes).
    pub connection: u64,
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
    logs: HashMap<u32, ReadPosition>,
    /// The router's log got too far ahead of this client: its publishers are held back.
    lagging: bool,
    /// Notifications taken from the link, being handled (kept to reuse its allocation).
    arrived: Vec<FromRouter>,
    /// What a resumed session left in flight, written before anything else.
    resend: Vec<Unacknowledged>,
    /// Where the session's shared-subscription messages arrive.
    mailbox: Mailbox,
    /// Why the reading half ended, in words, for the DISCONNECT's reason string.
    farewell: Option<String>,
    /// What the ACL file lets this client read (`None`: anything).
    pub acl: Option<ClientRules>,
    /// Replies held until what bridges forward from the publishes they acknowledge is on disk
    /// (a ticket each), and the replies behind them, in order.
    durable: VecDeque<(Option<Ticket>, Vec<Reply>)>,
}

impl<W: AsyncWrite + Unpin> Outbound<W> {
    /// The writing half of the session `context` describes: it continues `session` and its
    /// `mailbox`, drains `link` and obeys `control`; `context.terms.window` QoS 1/2 deliveries
    /// may be in flight.
    pub fn new(
        context: &SessionContext,
        writer: W,
        wire: Wire,
        link: LinkRx,
        control: UnboundedReceiver<Control>,
        session: SessionState,
        mailbox: Mailbox,
    ) -> Self {
        let shared = context.shared.clone();
        let SessionState {
            subscriptions,
            queued,
            unacknowledged,
            last_packet_id,
            mut overlaps,
            ..
        } = session;
        overlaps.update(&subscriptions);
        let mut inflight = Inflight::new(usize::from(context.terms.window), last_packet_id);
        let resend = inflight.restore(unacknowledged);
        let mut outbound = Outbound {
            writer,
            wire,
            link,
            link_tx: context.link_tx.clone(),
            pace: context.pace.clone(),
            control,
            overlaps,
            subscriptions,
            queue: DeliveryQueue::from_items(shared.sessions.limits, queued, Delivery::size),
            shared,
            client_id: context.client_id.clone(),
            connection: context.connection,
            stop: context.stop.clone(),
            out: BytesMut::new(),
            needs_flush: false,
            inflight,
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
            resend,
            mailbox,
            farewell: None,
            acl: context.acl.clone(),
            durable: VecDeque::new(),
        };
        outbound.mailbox.live.store(true, Relaxed);
        let ids: Vec<u32> = outbound.subscriptions.keys().copied().collect();
        for id in ids {
            if let Some(subscription) = outbound.subscriptions.get(&id).cloned() {
                outbound.watch(id, &subscription);
            }
        }
        outbound
    }

    /// Serves the client until the connection ends.
    pub async fn run(mut self) -> Finished {
        self.resend();
        let why = loop {
            if let Some(why) = self.ending.take() {
                break why;
            }
            self.fill(HIGH_WATER);
            let writable = !self.out.is_empty() || self.needs_flush;
            let stall_at =
                (!self.stalled && self.backlogged()).then(|| self.last_progress + STALL_AFTER);
            let holding = !self.held.is_empty();
            let committing = self.durable.front().is_some_and(|(t, _)| t.is_some());
            // Unbiased: under a steady stream every branch is ready, and draining the link
            // must not starve writing to the socket (nor the other way round).
            tokio::select! {
                control = self.control.recv() => match control {
                    Some(control) => self.on_control(control),
                    None => self.ending = Some(Why::Closed(None)),
                },
                Some((id, arrival)) = self.mailbox.rx.recv() => self.shared_arrival(id, *arrival),
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
                _ = tokio::time::sleep(LAG_CHECK), if holding => self.lagging = self.behind(self.shared.routing.lag.low),
                written = front_ticket(&mut self.durable), if committing => self.committed(written),
            }
        };
        self.finish(why).await
    }

    /// The replies held for the first ticket may go (and those behind them without one); or,
    /// when the writes failed, the connection ends unacknowledged, so that the client sends
    /// its publishes again.
    fn committed(&mut self, written: Result<(), QueueError>) {
        if let Err(e) = written {
            tracing::error!(client = %self.client_id, "{e}: its publishes are not acknowledged, the connection ends");
            self.durable.clear();
            self.farewell = Some(format!("the broker could not keep its publishes: {e}"));
            self.ending = Some(Why::Closed(Some(DisconnectReasonCode::UnspecifiedError)));
            return;
        }
        if let Some(front) = self.durable.front_mut() {
            front.0 = None;
        }
        while let Some((None, _)) = self.durable.front() {
            if let Some((_, replies)) = self.durable.pop_front() {
                replies.into_iter().for_each(|reply| self.reply(reply));
            }
        }
    }

    /// Whether anything waits to be written or acknowledged.
    fn backlogged(&self) -> bool {
        !self.queue.is_empty() || !self.out.is_empty() || !self.inflight.is_empty()
    }

    /// Writes again what a resumed session left in flight: PUBLISH with DUP set, PUBREL.
    fn resend(&mut self) {
        for entry in std::mem::take(&mut self.resend) {
            match entry {
                Unacknowledged::Publish {
                    packet_id,
                    delivery,
                } => self.write_publish(&delivery, Some(packet_id), true),
                Unacknowledged::Release { packet_id } => {
                    self.wire.pubrel(packet_id, &mut self.out);
                    self.shared.operations.stats.packets_sent.inc();
                }
            }
        }
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
        let now = now_millis();
        while self.out.len() < limit {
            let Some(delivery) = self.queue.pop() else {
                break;
            };
            if delivery.expired(now) {
                self.shared.operations.stats.expired.inc();
                continue;
            }
            if delivery.qos > 0 && self.inflight.full() {
                let size = delivery.size();
                self.queue.push_front(delivery, size);
                break;
            }
            self.encode(delivery);
        }
        if !self.held.is_empty() && self.queue.has_room() && !self.lagging {
            self.held.release_all();
        }
    }

    fn encode(&mut self, delivery: Delivery) {
        let pkid = match delivery.qos {
            0 => None,
            1 => Some(self.inflight.allocate(Stage::Ack, delivery.clone())),
            _ => Some(self.inflight.allocate(Stage::Received, delivery.clone())),
        };
        self.write_publish(&delivery, pkid, false);
    }

    /// Encodes `delivery` as a PUBLISH with `pkid` (QoS 1/2); one the client cannot take
    /// (larger than its maximum packet size) is dropped and counted.
    fn write_publish(&mut self, delivery: &Delivery, pkid: Option<u16>, dup: bool) {
        let Some(topic) = byte_string(delivery.topic.clone()) else {
            return;
        };
        let properties = self
            .wire
            .version()
            .is_v5()
            .then(|| {
                properties_to_wire(
                    delivery.properties.as_deref(),
                    &delivery.identifiers,
                    delivery.remaining_expiry(now_millis()),
                )
            })
            .flatten();
        let publish = WirePublish {
            dup,
            retain: delivery.retain,
            qos: qos_of(delivery.qos),
            topic,
            packet_id: pkid.and_then(NonZeroU16::new),
            payload: delivery.payload.clone(),
            properties,
        };
        match self.wire.publish(publish, &mut self.out) {
            Ok(()) => {
                self.shared.operations.stats.publishes_sent.inc();
                self.shared.operations.stats.packets_sent.inc();
            }
            Err(e) => {
                if let Some(pkid) = pkid {
                    self.inflight.remove(pkid);
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
        self.shared.operations.stats.bytes_sent.inc_by(n as u64);
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
            let why = match self.farewell.take() {
                Some(why) => why,
                None => reason_string(reason),
            };
            self.wire.disconnect(reason, &why, &mut self.out);
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
                    .operations
                    .stats
                    .bytes_sent
                    .inc_by(out.len() as u64);
            }
        }
        self.stop.cancel();
        self.held.release_all();
        let session = SessionState {
            subscriptions: std::mem::take(&mut self.subscriptions),
            queued: self.queue.take_items(),
            unacknowledged: self.inflight.take_unacknowledged(),
            incoming: Default::default(),
            last_packet_id: self.inflight.next,
            overlaps: std::mem::take(&mut self.overlaps),
        };
        Finished {
            why,
            session,
            link: Some(self.link),
            mailbox: Some(self.mailbox),
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

/// Writes some of `out`, or flushes when it is empty (returning 0).
async fn write_some<W: AsyncWrite + Unpin>(writer: &mut W, out: &[u8]) -> std::io::Result<usize> {
    if out.is_empty() {
        writer.flush().await?;
        return Ok(0);
    }
    writer.write(out).await
}

/// Waits for the first held ticket (never ready when there is none).
async fn front_ticket(
    durable: &mut VecDeque<(Option<Ticket>, Vec<Reply>)>,
) -> Result<(), QueueError> {
    match durable.front_mut() {
        Some((Some(ticket), _)) => ticket.await,
        _ => std::future::pending().await,
    }
}
