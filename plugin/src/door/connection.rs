//! One client connection, from its first byte to its last: TLS, CONNECT and its refusals, the
//! client id (assigned, or taken over from another connection), the router link, then the
//! reading half ([`super::inbound`]) on this task and the writing half ([`super::outbound`]) on
//! another, and at the end the will, the session kept or dropped, and the link ended.

use super::codec::{opening, Codec, Opening, Version, Wire};
use super::config::ListenerConfig;
use super::connect::{authenticate, ConnectRequest, Granted, Refusal, Will};
use super::dispatch::{self, Accepted};
use super::flow::Pace;
use super::inbound::{self, End, Inbound, TOPIC_ALIAS_MAXIMUM};
use super::outbound::{Finished, Outbound, Why};
use super::router::{self, Batch, Link};
use super::session::{expiry, Claim, SavedSession, Subscription, Subscriptions};
use super::sys::LocalMessage;
use super::tag::Tag;
use super::{DoorError, Shared};
use bytes::{Bytes, BytesMut};
use rmqtt_codec::error::DecodeError;
use rmqtt_codec::v5::{DisconnectReasonCode, PublishAckReason, SubscribeAckReason};
use rumqttd::local::LinkTx;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_util::sync::CancellationToken;

/// What a connection's reading half (and the door) tells its writing half.
#[derive(Debug)]
pub enum Control {
    /// Replies to write, in order.
    Reply(Vec<Reply>),
    /// Subscriptions added or replaced, by door subscription id.
    Subscribed(Vec<(u32, Subscription)>),
    /// Subscriptions removed.
    Unsubscribed(Vec<u32>),
    /// A SUBACK to write once the router has confirmed its subscriptions.
    AwaitSubAck(PendingSubAck),
    /// The client acknowledged a QoS 1 delivery.
    PubAck(u16),
    /// The client received a QoS 2 delivery.
    PubRec(u16),
    /// The client completed a QoS 2 delivery.
    PubComp(u16),
    /// A `$SYS` message for the client.
    Local(LocalMessage),
    /// The reading half ended: tell the client `reason` (MQTT 5) and close.
    Close(Option<DisconnectReasonCode>),
    /// Another connection took the client id.
    TakenOver,
    /// The broker shuts down: deliver what the router holds, then disconnect.
    Shutdown,
}

/// A reply the reading half decided on.
#[derive(Debug)]
pub enum Reply {
    /// PUBACK.
    PubAck(u16, PublishAckReason),
    /// PUBREC.
    PubRec(u16, PublishAckReason),
    /// PUBCOMP (whether the packet id was known).
    PubComp(u16, bool),
    /// PINGRESP.
    PingResp,
    /// UNSUBACK (whether each subscription existed).
    UnsubAck(u16, Vec<bool>),
}

/// A SUBACK waiting for the router.
#[derive(Debug)]
pub struct PendingSubAck {
    /// The client's packet id (`None`: a resumed session's subscriptions, acknowledged to
    /// nobody).
    pub pkid: Option<u16>,
    /// Granted QoS or refusal, per filter.
    pub granted: Vec<Result<u8, SubscribeAckReason>>,
    /// Router confirmations still to come.
    pub router_acks: usize,
    /// Retained `$SYS` values to send after the SUBACK.
    pub local: Vec<LocalMessage>,
}

/// How long a taken-over connection has to go before the new one gives up.
const TAKEOVER_PATIENCE: Duration = Duration::from_secs(5);

/// Serves one accepted connection.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
) {
    match &listener.tls {
        None => {
            let (reader, writer) = stream.into_split();
            run(reader, writer, peer, listener, shared).await;
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            match tokio::time::timeout(listener.connect_timeout, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let (reader, writer) = tokio::io::split(stream);
                    run(reader, writer, peer, listener, shared).await;
                }
                Ok(Err(e)) => {
                    tracing::info!(listener = %listener.name, %peer, "TLS handshake failed: {e}")
                }
                Err(_) => {
                    tracing::info!(listener = %listener.name, %peer, "TLS handshake timed out")
                }
            }
        }
    }
}

/// A client that passed CONNECT.
struct Client {
    request: ConnectRequest,
    client_id: String,
    assigned: bool,
}

async fn run<R, W>(
    mut reader: R,
    mut writer: W,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let read = read_connect(&mut reader, &mut buf, &listener, &shared);
    let (client, codec) = match tokio::time::timeout(listener.connect_timeout, read).await {
        Ok(Ok(client)) => client,
        Ok(Err(Some((version, refusal)))) => {
            tracing::info!(listener = %listener.name, %peer, "connection refused: {refusal}");
            let mut out = BytesMut::new();
            Wire::new(version, 0).connack(refusal.connack(), &mut out);
            let _ = writer.write_all(&out).await;
            let _ = writer.shutdown().await;
            return;
        }
        Ok(Err(None)) => return,
        Err(_) => {
            tracing::info!(listener = %listener.name, %peer, "no CONNECT within {:?}", listener.connect_timeout);
            return;
        }
    };
    let connection = shared.next_id();
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let ended = CancellationToken::new();
    let Some(resumed) = claim(&shared, &client, connection, &control_tx, &ended).await else {
        refuse_late(&mut writer, client.request.version, Refusal::ServerBusy).await;
        ended.cancel();
        return;
    };
    let link = match attach(&shared, &client).await {
        Ok(link) => link,
        Err(e) => {
            tracing::error!(client = %client.client_id, "{e}");
            shared.registry.release(&client.client_id, connection, None);
            refuse_late(&mut writer, client.request.version, Refusal::ServerBusy).await;
            ended.cancel();
            return;
        }
    };
    let granted = Granted {
        session_present: resumed.is_some(),
        assigned_client_id: client.assigned.then(|| client.client_id.clone()),
        receive_maximum: listener.max_inflight,
        max_packet_size: listener.max_packet_size,
        topic_alias_maximum: TOPIC_ALIAS_MAXIMUM,
    };
    let mut wire = Wire::new(client.request.version, client.request.max_packet_size);
    let mut out = BytesMut::new();
    wire.connack(granted.connack(), &mut out);
    if writer.write_all(&out).await.is_err() {
        let mut tx = link.tx;
        router::end(&mut tx);
        shared.registry.release(&client.client_id, connection, None);
        ended.cancel();
        return;
    }
    shared.stats.packets_sent.fetch_add(1, Relaxed);
    shared.stats.bytes_sent.fetch_add(out.len() as u64, Relaxed);
    shared.stats.clients_connected.fetch_add(1, Relaxed);
    tracing::info!(
        client = %client.client_id,
        "client `{}` connected from {peer} on `{}` ({}, keep-alive {}s, {} session{})",
        client.client_id,
        listener.name,
        client.request.version,
        client.request.keep_alive,
        if client.request.persistent() { "persistent" } else { "clean" },
        if granted.session_present { " resumed" } else { "" },
    );
    let session = Session {
        shared,
        listener,
        client,
        connection,
        control: control_tx,
        ended,
    };
    let halves = Halves {
        reader,
        writer,
        buf,
        codec,
        wire,
    };
    session.run(halves, link, control_rx, resumed).await;
}

/// Reads and checks the CONNECT. `Err(Some(..))`: refuse with a CONNACK; `Err(None)`: just
/// close (not MQTT, or malformed).
async fn read_connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    listener: &ListenerConfig,
    shared: &Shared,
) -> Result<(Client, Codec), Option<(Version, Refusal)>> {
    let version = loop {
        match opening(buf) {
            Opening::Connect(version) => break version,
            Opening::UnsupportedLevel(_) => {
                return Err(Some((Version::V3_1_1, Refusal::UnsupportedVersion)))
            }
            Opening::NotMqtt => return Err(None),
            Opening::Incomplete => read_more(reader, buf, shared).await.ok_or(None)?,
        }
    };
    let mut codec = Codec::new(version, listener.max_packet_size);
    let packet = loop {
        match codec.decode_connect(buf) {
            Ok(Some(packet)) => break packet,
            Ok(None) => read_more(reader, buf, shared).await.ok_or(None)?,
            Err(DecodeError::InvalidClientId) => return Err(Some((version, Refusal::BadClientId))),
            Err(e) => {
                tracing::info!(listener = %listener.name, "malformed CONNECT: {e}");
                return Err(None);
            }
        }
    };
    shared.stats.packets_received.fetch_add(1, Relaxed);
    let request = ConnectRequest::from_packet(packet, version);
    let refuse = |refusal| Err(Some((version, refusal)));
    if request.auth_method.is_some() {
        return refuse(Refusal::BadAuthMethod);
    }
    if let Err(refusal) = authenticate(
        &listener.auth,
        request.username.as_deref(),
        request.password.as_deref(),
    ) {
        return refuse(refusal);
    }
    if shared.stats.clients_connected.load(Relaxed) >= shared.max_connections as u64 {
        return refuse(Refusal::ServerBusy);
    }
    let (client_id, assigned) = match (request.client_id.is_empty(), version) {
        (false, _) => (request.client_id.clone(), false),
        // MQTT 3.1 has no assigned ids; MQTT 3.1.1 only with a clean session.
        (true, Version::V3_1) => return refuse(Refusal::BadClientId),
        (true, Version::V3_1_1) if !request.clean_start => return refuse(Refusal::BadClientId),
        (true, _) => (format!("weir-{:016x}", random_id()), true),
    };
    Ok((
        Client {
            request,
            client_id,
            assigned,
        },
        codec,
    ))
}

/// Reads more bytes; `None` when the socket closed.
async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    shared: &Shared,
) -> Option<()> {
    buf.reserve(4096);
    match reader.read_buf(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            shared.stats.bytes_received.fetch_add(n as u64, Relaxed);
            Some(())
        }
    }
}

fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// Takes the client id, taking it over from another connection if needed. `None` when the
/// other connection would not go.
async fn claim(
    shared: &Shared,
    client: &Client,
    connection: u64,
    control: &UnboundedSender<Control>,
    ended: &CancellationToken,
) -> Option<Option<SavedSession>> {
    for _ in 0..3 {
        let claim = shared.registry.claim(
            &client.client_id,
            connection,
            control,
            ended,
            client.request.clean_start,
        );
        match claim {
            Claim::Granted { resumed } => return Some(resumed),
            Claim::TakeOver { ended: other } => {
                tracing::info!(client = %client.client_id, "client id taken over by a new connection");
                if tokio::time::timeout(TAKEOVER_PATIENCE, other.cancelled())
                    .await
                    .is_err()
                {
                    tracing::warn!(client = %client.client_id, "the previous connection did not close within {TAKEOVER_PATIENCE:?}");
                }
            }
        }
    }
    None
}

/// Attaches the client to the router: persistent sessions keep their place in the router's
/// logs while away. A persistent session that starts clean first clears what the router kept.
async fn attach(shared: &Shared, client: &Client) -> Result<Link, DoorError> {
    let router = shared.router.clone();
    let id = client.client_id.clone();
    let (clean_start, persistent) = (client.request.clean_start, client.request.persistent());
    tokio::task::spawn_blocking(move || {
        if clean_start && persistent {
            let mut old = router.link(&id, true)?;
            router::end(&mut old.tx);
        }
        router.link(&id, !persistent)
    })
    .await
    .map_err(|_| DoorError::RouterGone)?
}

async fn refuse_late<W: AsyncWrite + Unpin>(writer: &mut W, version: Version, refusal: Refusal) {
    let mut out = BytesMut::new();
    Wire::new(version, 0).connack(refusal.connack(), &mut out);
    let _ = writer.write_all(&out).await;
    let _ = writer.shutdown().await;
}

/// The socket's two halves, with what was read past CONNECT and the client's codecs.
struct Halves<R, W> {
    reader: R,
    writer: W,
    buf: BytesMut,
    codec: Codec,
    wire: Wire,
}

/// A connected client's session, from CONNACK to the end.
struct Session {
    shared: Arc<Shared>,
    listener: Arc<ListenerConfig>,
    client: Client,
    connection: u64,
    control: UnboundedSender<Control>,
    ended: CancellationToken,
}

impl Session {
    async fn run<R, W>(
        self,
        halves: Halves<R, W>,
        link: Link,
        control_rx: mpsc::UnboundedReceiver<Control>,
        resumed: Option<SavedSession>,
    ) where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = &self.shared;
        let subscriptions = resumed.map(|saved| saved.subscriptions).unwrap_or_default();
        if !subscriptions.is_empty() {
            shared.stats.sessions_offline.fetch_sub(1, Relaxed);
        }
        shared
            .stats
            .subscriptions
            .fetch_add(subscriptions.len() as u64, Relaxed);
        let Link { tx, rx } = link;
        let link_tx = Arc::new(Mutex::new(tx));
        self.restore(&subscriptions, &link_tx);
        let stop = CancellationToken::new();
        let gate = shared.gates.register(self.connection);
        let pace = Arc::new(Pace::default());
        let (filters, next_subscription) = Inbound::<R>::filters_of(&subscriptions);
        let request = &self.client.request;
        let Halves {
            reader,
            writer,
            buf,
            codec,
            wire,
        } = halves;
        let outbound = Outbound::new(
            writer,
            wire,
            rx,
            link_tx.clone(),
            pace.clone(),
            control_rx,
            subscriptions,
            request.receive_maximum.min(self.listener.max_inflight),
            shared.clone(),
            self.client.client_id.clone(),
            stop.clone(),
        );
        let writing = tokio::spawn(outbound.run());
        let inbound = Inbound {
            reader,
            buf,
            codec,
            link: link_tx.clone(),
            control: self.control.clone(),
            gate,
            pace,
            shared: shared.clone(),
            connection: self.connection,
            client_id: self.client.client_id.clone(),
            keep_alive: request.keep_alive,
            receive_maximum: self.listener.max_inflight,
            stop: stop.clone(),
            filters,
            next_subscription,
            batch: Batch::default(),
            replies: Vec::new(),
            aliases: Default::default(),
            awaiting_release: Default::default(),
        };
        let end = inbound.run().await;
        let reason = match &end {
            End::Violation { reason, .. } => Some(*reason),
            End::KeepAlive => Some(DisconnectReasonCode::KeepAliveTimeout),
            _ => None,
        };
        if !matches!(end, End::Stopped) {
            let _ = self.control.send(Control::Close(reason));
        }
        let finished = match writing.await {
            Ok(finished) => finished,
            Err(e) => {
                tracing::error!(client = %self.client.client_id, "the connection's writer failed: {e}");
                Finished {
                    why: Why::WriteFailed,
                    subscriptions: Subscriptions::new(),
                    queued: 0,
                }
            }
        };
        self.end(end, finished, link_tx).await;
    }

    /// Gives a resumed session's subscriptions back to the router and `$SYS`.
    fn restore(&self, subscriptions: &Subscriptions, link: &Arc<Mutex<LinkTx>>) {
        if subscriptions.is_empty() {
            return;
        }
        let mut router_acks = 0;
        {
            let mut link = link.lock().unwrap_or_else(|e| e.into_inner());
            router_acks += inbound::resubscribe(subscriptions, &mut link);
        }
        for (id, subscription) in subscriptions {
            if subscription.is_local() {
                if let Ok(filter) = crate::topic::TopicFilter::new(&subscription.filter) {
                    self.shared
                        .sys
                        .subscribe(self.connection, &self.control, *id, filter);
                }
            }
        }
        let _ = self.control.send(Control::AwaitSubAck(PendingSubAck {
            pkid: None,
            granted: Vec::new(),
            router_acks,
            local: Vec::new(),
        }));
    }

    async fn end(self, end: End, finished: Finished, link: Arc<Mutex<LinkTx>>) {
        let shared = &self.shared;
        let client_id = &self.client.client_id;
        let session_expiry = match end {
            End::Disconnect {
                session_expiry: Some(expiry),
                ..
            } if self.client.request.session_expiry > 0 => expiry,
            _ => self.client.request.session_expiry,
        };
        let publish_will = match (&end, finished.why) {
            (_, Why::Shutdown) => false,
            (End::Disconnect { with_will, .. }, _) => *with_will,
            (End::Stopped, Why::Closed(_)) => false,
            _ => true,
        };
        let subscriptions = finished.subscriptions;
        shared
            .stats
            .subscriptions
            .fetch_sub(subscriptions.len() as u64, Relaxed);
        let saved = (session_expiry > 0).then(|| SavedSession {
            subscriptions,
            expires_at: expiry(session_expiry, Instant::now()),
        });
        if saved.is_some() {
            shared.stats.sessions_offline.fetch_add(1, Relaxed);
            if finished.queued > 0 {
                // A persistent session should have kept them; say so.
                let counter = shared.stats.client_drops(client_id);
                shared.stats.count_dropped(&counter, finished.queued as u64);
                tracing::warn!(client = %client_id, "{} queued messages lost with the connection", finished.queued);
            }
        }
        let will = self.client.request.will.clone().filter(|_| publish_will);
        {
            let mut link = link.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(will) = will
                .as_ref()
                .filter(|will| will.delay == 0 || saved.is_none())
            {
                publish_will_now(shared, will, self.connection, &mut link);
            }
            router::end(&mut link);
        }
        if let Some(will) = will.filter(|will| will.delay > 0 && saved.is_some()) {
            let delay = will.delay.min(session_expiry);
            delay_will(
                shared.clone(),
                client_id.clone(),
                self.connection,
                will,
                delay,
            );
        }
        shared.registry.release(client_id, self.connection, saved);
        shared.sys.forget(self.connection);
        shared.stats.clients_connected.fetch_sub(1, Relaxed);
        self.ended.cancel();
        let how = match finished.why {
            Why::TakenOver => "taken over by a new connection".to_string(),
            Why::Shutdown => "disconnected: the broker is shutting down".to_string(),
            Why::WriteFailed => "gone (the socket refused a write)".to_string(),
            Why::RouterGone => "disconnected: the router dropped its link".to_string(),
            Why::Closed(_) => end.to_string(),
        };
        tracing::info!(client = %client_id, "client `{client_id}` {how}");
    }
}

/// Publishes `will` through the leaving client's own link.
fn publish_will_now(shared: &Shared, will: &Will, connection: u64, link: &mut LinkTx) {
    let mut batch = Batch::default();
    let waiting = dispatch::dispatch(
        shared,
        &mut batch,
        Accepted {
            topic: &will.topic,
            publish: dispatch::publish(
                Bytes::from(will.topic.clone()),
                will.payload.clone(),
                will.retain,
            ),
            properties: will.properties.clone(),
            tag: Tag {
                qos: will.qos,
                retain: will.retain,
                publisher: connection,
            },
            origin: None,
        },
    );
    if let (Some(graphs), false) = (shared.graphs(), waiting.is_empty()) {
        // A will is rare and small: waiting for a full graph queue here is bounded by the
        // graph's progress.
        let graphs = graphs.clone();
        shared
            .runtime
            .spawn(async move { graphs.push_async(waiting).await });
    }
    let _ = batch.flush(link);
}

/// Publishes `will` after `delay` seconds, unless the client comes back first.
fn delay_will(shared: Arc<Shared>, client_id: String, connection: u64, will: Will, delay: u32) {
    let cancel = shared.registry.delay_will(&client_id, connection);
    let runtime = shared.runtime.clone();
    runtime.spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = shared.reading.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(u64::from(delay))) => {}
        }
        shared.registry.will_done(&client_id, connection);
        let router = shared.router.clone();
        let name = format!("weir-will-{connection}");
        let link = tokio::task::spawn_blocking(move || router.link(&name, true)).await;
        if let Ok(Ok(mut link)) = link {
            publish_will_now(&shared, &will, connection, &mut link.tx);
            router::end(&mut link.tx);
        }
    });
}
