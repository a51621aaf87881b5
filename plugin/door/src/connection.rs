//! One client connection, from its first byte to its last: TLS, CONNECT and its refusals, the
//! client id (assigned, or taken over from another connection), the router link, then the
//! reading half ([`super::inbound`]) on this task and the writing half ([`super::outbound`]) on
//! another, and at the end the will, the session kept or dropped, and the link ended.

use super::codec::{Codec, Wire};
use super::config::ListenerConfig;
use super::connect::{Granted, Refusal};
use super::control::Control;
use super::flow::Pace;
use super::handshake::{attach, claim, read_connect, refuse, Client, Identity};
use super::inbound::{End, Inbound};
use super::outbound::{Finished, Outbound, Why};
use super::router::{self, Link};
use super::session::context::{Carried, SessionContext, Terms};
use super::session::parked::{self, Parked};
use super::session::state::{SessionState, Unacknowledged};
use super::session::{expiry, Subscriptions};
use super::shared::Mailbox;
use super::tls::{common_name, TlsSource};
#[cfg(feature = "websockets")]
use super::websocket;
use super::will::{delay_will, publish_will_now};
use super::Shared;
use crate::router::Tx as LinkTx;
use crate::security::ClientRules;
use bytes::BytesMut;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Serves one accepted connection.
///
/// The TLS and WebSocket paths are boxed: their handshakes hold a lot of state, and the
/// future of every plain connection (most of them, idle for hours) would otherwise be as large.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
) {
    match &listener.tls {
        None if !listener.websockets => {
            let (reader, writer) = stream.into_split();
            run(
                reader,
                writer,
                peer,
                listener,
                shared,
                Identity::Credentials,
            )
            .await;
        }
        None => {
            let identity = Identity::Credentials;
            Box::pin(over_websocket(stream, peer, listener, shared, identity)).await
        }
        Some(tls) => Box::pin(over_tls(stream, tls.clone(), peer, listener, shared)).await,
    }
}

/// Serves MQTT (or WebSocket, on a `websockets` listener) inside TLS.
async fn over_tls(
    stream: TcpStream,
    tls: Arc<TlsSource>,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
    let stream = match tokio::time::timeout(listener.connect_timeout, acceptor.accept(stream)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(listener = %listener.name, %peer, "TLS handshake failed: {e}");
            return;
        }
        Err(_) => {
            tracing::info!(listener = %listener.name, %peer, "TLS handshake timed out");
            return;
        }
    };
    let identity = if tls.settings().use_identity_as_username {
        let certificate = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first());
        Identity::Certificate(certificate.and_then(common_name))
    } else {
        Identity::Credentials
    };
    if listener.websockets {
        over_websocket(stream, peer, listener, shared, identity).await
    } else {
        let (reader, writer) = tokio::io::split(stream);
        run(reader, writer, peer, listener, shared, identity).await;
    }
}

/// Serves MQTT carried in WebSocket frames on `stream`.
async fn over_websocket<S>(
    stream: S,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
    identity: Identity,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "websockets")]
    if let Some(stream) = websocket::upgrade(stream, &listener, peer).await {
        let (reader, writer) = tokio::io::split(stream);
        run(reader, writer, peer, listener, shared, identity).await;
    }
    // The configuration refuses such a listener; a library user who made one gets this.
    #[cfg(not(feature = "websockets"))]
    {
        drop((stream, shared, identity));
        tracing::warn!(listener = %listener.name, %peer, "connection closed: WebSocket listeners need the `websockets` feature, which this weir was built without");
    }
}

async fn run<R, W>(
    mut reader: R,
    mut writer: W,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
    identity: Identity,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(1024);
    let read = read_connect(&mut reader, &mut buf, &listener, &shared, identity);
    let read = tokio::time::timeout(listener.connect_timeout, read);
    let read = tokio::select! {
        read = read => read,
        // Shutting down: no new clients.
        _ = shared.operations.reading.cancelled() => return,
    };
    let (client, codec) = match read {
        Ok(Ok(client)) => client,
        Ok(Err(Some((version, refusal)))) => {
            tracing::info!(listener = %listener.name, %peer, "connection refused: {refusal}");
            refuse(&mut writer, version, refusal).await;
            return;
        }
        Ok(Err(None)) => return,
        Err(_) => {
            tracing::info!(listener = %listener.name, %peer, "no CONNECT within {:?}", listener.connect_timeout);
            return;
        }
    };
    let Some(welcome) = Box::pin(welcome(&mut writer, client, peer, listener, shared)).await else {
        return;
    };
    let Welcome {
        session,
        link,
        wire,
        control,
        state,
        mailbox,
    } = welcome;
    let halves = Halves {
        reader,
        writer,
        buf,
        codec,
        wire,
    };
    session.run(halves, link, control, state, mailbox).await;
}

/// What a connection has once its client is accepted.
struct Welcome {
    session: Session,
    link: Link,
    wire: Wire,
    control: mpsc::UnboundedReceiver<Control>,
    /// The session it continues (empty for a new one).
    state: SessionState,
    /// Where the session's shared-subscription messages arrive.
    mailbox: Mailbox,
}

/// Takes the client id, attaches the client to the router and writes the CONNACK; `None` when
/// the client was refused or went.
async fn welcome<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut client: Client,
    peer: SocketAddr,
    listener: Arc<ListenerConfig>,
    shared: Arc<Shared>,
) -> Option<Welcome> {
    let connection = shared.operations.next_id();
    let (control_tx, control) = mpsc::unbounded_channel();
    let ended = CancellationToken::new();
    let Some(resumed) = claim(&shared, &client, connection, &control_tx, &ended).await else {
        refuse(writer, client.request.version, Refusal::ServerBusy).await;
        ended.cancel();
        return None;
    };
    let session_present = resumed.is_some();
    let (link, state, mailbox) = match resumed {
        Some(Parked {
            state,
            link,
            mailbox,
        }) => (link, state, mailbox),
        None => match attach(&shared, &client).await {
            Ok(link) => (link, SessionState::default(), Mailbox::default()),
            Err(e) => {
                tracing::error!(client = %client.client_id, "{e}");
                shared
                    .sessions
                    .registry
                    .release(&client.client_id, connection, None);
                refuse(writer, client.request.version, Refusal::ServerBusy).await;
                ended.cancel();
                return None;
            }
        },
    };
    let (keep_alive, server_keep_alive) = client
        .request
        .keep_alive_under(shared.sessions.max_keep_alive);
    client.request.keep_alive = keep_alive;
    let granted = Granted {
        session_present,
        assigned_client_id: client.assigned.then(|| client.client_id.clone()),
        receive_maximum: listener.max_inflight,
        max_packet_size: listener.max_packet_size,
        topic_alias_maximum: listener.max_topic_alias,
        server_keep_alive,
        response_information: client.request.response_information_for(&client.client_id),
    };
    let mut wire = client.request.wire();
    let mut out = BytesMut::new();
    wire.connack(granted.connack(), &mut out);
    // Counted before the CONNACK goes: a client connecting right after this one's CONNACK
    // must find it counted (max_connections).
    shared.operations.stats.clients_connected.inc();
    let written = writer.write_all(&out).await;
    let welcome = Welcome {
        session: Session {
            shared,
            listener,
            client,
            connection,
            control: control_tx,
            ended,
        },
        link,
        wire,
        control,
        state,
        mailbox,
    };
    if written.is_err() {
        welcome.gone_before_connack().await;
        return None;
    }
    welcome.connected(out.len(), peer, session_present);
    Some(welcome)
}

impl Welcome {
    /// Counts the CONNACK of `connack_len` bytes and logs the connection.
    fn connected(&self, connack_len: usize, peer: SocketAddr, session_present: bool) {
        let Session {
            shared,
            listener,
            client,
            ..
        } = &self.session;
        shared.operations.stats.packets_sent.inc();
        shared
            .operations
            .stats
            .bytes_sent
            .inc_by(connack_len as u64);
        let request = &client.request;
        tracing::info!(
            client = %client.client_id,
            "client `{}` connected from {peer} on `{}` ({}, keep-alive {}s, {} session{})",
            client.client_id,
            listener.name,
            request.version,
            request.keep_alive,
            if request.persistent() { "persistent" } else { "clean" },
            if session_present { " resumed" } else { "" },
        );
    }

    /// Ends a session whose client went before its CONNACK: a persistent session stays parked,
    /// a clean one leaves the router.
    async fn gone_before_connack(self) {
        self.session.shared.operations.stats.clients_connected.dec();
        let Welcome {
            session,
            link,
            state,
            mailbox,
            ..
        } = self;
        let Session {
            shared,
            listener,
            client,
            connection,
            ended,
            ..
        } = session;
        if client.request.persistent() {
            let expires_at = expiry(client.request.session_expiry, Instant::now());
            let rules = listener.auth.acl.clone().map(|source| {
                ClientRules::new(
                    source,
                    &client.client_id,
                    client.request.username.as_deref(),
                )
            });
            let parked = parked::park(
                shared.clone(),
                client.client_id.clone(),
                state,
                link,
                mailbox,
                expires_at,
                rules,
            );
            if let Some(unkept) =
                shared
                    .sessions
                    .registry
                    .release(&client.client_id, connection, Some(parked))
            {
                parked::discard(&shared, &client.client_id, unkept).await;
            }
        } else {
            let mut tx = link.tx;
            router::end(&mut tx);
            shared
                .routing
                .groups
                .leave_all(&client.client_id, &state.subscriptions);
            shared
                .sessions
                .registry
                .release(&client.client_id, connection, None);
        }
        ended.cancel();
    }
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
        mut state: SessionState,
        mailbox: Mailbox,
    ) where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let shared = &self.shared;
        shared
            .operations
            .stats
            .subscriptions
            .inc_by(state.subscriptions.len() as u64);
        self.restore(&state.subscriptions);
        let Link { tx, rx } = link;
        let link_tx = Arc::new(Mutex::new(tx));
        let gate = shared.routing.gates.register(self.connection);
        let carried = Carried::take(&mut state, &mailbox);
        let request = &self.client.request;
        let context = SessionContext {
            shared: shared.clone(),
            client_id: self.client.client_id.clone(),
            connection: self.connection,
            link_tx: link_tx.clone(),
            pace: Arc::new(Pace::default()),
            stop: CancellationToken::new(),
            acl: self.rules(),
            terms: Terms {
                keep_alive: request.keep_alive,
                receive_maximum: self.listener.max_inflight,
                window: request.receive_maximum.min(self.listener.max_inflight),
                topic_alias_maximum: self.listener.max_topic_alias,
                bridge: request.bridge,
            },
        };
        let Halves {
            reader,
            writer,
            buf,
            codec,
            wire,
        } = halves;
        let outbound = Outbound::new(&context, writer, wire, rx, control_rx, state, mailbox);
        let writing = tokio::spawn(outbound.run());
        let inbound = Inbound::new(
            context,
            reader,
            buf,
            codec,
            self.control.clone(),
            gate,
            carried,
        );
        let (end, incoming, reader) = inbound.run().await;
        if !matches!(end, End::Stopped) {
            let _ = self
                .control
                .send(Control::Close(end.reason(), end.to_string()));
        }
        let mut finished = writing.await.unwrap_or_else(|e| {
            tracing::error!(client = %self.client.client_id, "the connection's writer failed: {e}");
            Finished::failed()
        });
        if finished.why.broker_disconnected() {
            tokio::spawn(linger(reader));
        }
        finished.session.incoming = incoming.into_iter().collect();
        Box::pin(self.end(end, finished, link_tx)).await;
    }

    /// This client's view of the listener's ACL file, if it has one.
    fn rules(&self) -> Option<ClientRules> {
        let source = self.listener.auth.acl.clone()?;
        let request = &self.client.request;
        Some(ClientRules::new(
            source,
            &self.client.client_id,
            request.username.as_deref(),
        ))
    }

    /// Gives a resumed session's `$SYS` subscriptions back to `$SYS` (its router
    /// subscriptions stayed on its link).
    fn restore(&self, subscriptions: &Subscriptions) {
        for (id, subscription) in subscriptions {
            if subscription.is_local() {
                if let Ok(filter) = weir_model::topic::TopicFilter::new(&subscription.filter) {
                    self.shared.operations.subscribe_local(
                        &self.shared.sessions.registry,
                        self.connection,
                        &self.control,
                        *id,
                        filter,
                    );
                }
            }
        }
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
        let Finished {
            why,
            session: state,
            link: link_rx,
            mailbox,
        } = finished;
        shared
            .operations
            .stats
            .subscriptions
            .dec_by(state.subscriptions.len() as u64);
        let persistent = session_expiry > 0;
        let will = self.client.request.will.clone().filter(|_| publish_will);
        if let Some(will) = will.as_ref().filter(|will| will.delay == 0 || !persistent) {
            let mut link = link.lock().unwrap_or_else(|e| e.into_inner());
            publish_will_now(shared, will, self.connection, &mut link);
        }
        let link_tx =
            Arc::try_unwrap(link).map(|link| link.into_inner().unwrap_or_else(|e| e.into_inner()));
        let parked = match (persistent, link_tx, link_rx, mailbox) {
            (true, Ok(tx), Some(rx), Some(mailbox)) => {
                let expires_at = expiry(session_expiry, Instant::now());
                let link = Link { tx, rx };
                Some(parked::park(
                    shared.clone(),
                    client_id.clone(),
                    state,
                    link,
                    mailbox,
                    expires_at,
                    self.rules(),
                ))
            }
            (_, link_tx, _, _) => {
                if let Ok(mut tx) = link_tx {
                    router::end(&mut tx);
                }
                shared
                    .routing
                    .groups
                    .leave_all(client_id, &state.subscriptions);
                self.lost(&state, persistent);
                None
            }
        };
        if let Some(will) = will.filter(|will| will.delay > 0 && persistent) {
            let delay = will.delay.min(session_expiry);
            delay_will(
                shared.clone(),
                client_id.clone(),
                self.connection,
                will,
                delay,
            );
        }
        if let Some(unkept) = shared
            .sessions
            .registry
            .release(client_id, self.connection, parked)
        {
            parked::discard(shared, client_id, unkept).await;
        }
        shared.operations.sys.forget(self.connection);
        shared.operations.stats.clients_connected.dec();
        self.ended.cancel();
        let how = match why {
            Why::TakenOver => "taken over by a new connection".to_string(),
            Why::Shutdown => "disconnected: the broker is shutting down".to_string(),
            Why::WriteFailed => "gone (the socket refused a write)".to_string(),
            Why::RouterGone => "disconnected: the router dropped its link".to_string(),
            Why::Closed(_) => end.to_string(),
        };
        tracing::info!(client = %client_id, "client `{client_id}` {how}");
    }

    /// Counts what a session that ends with its connection had not delivered.
    fn lost(&self, state: &SessionState, persistent: bool) {
        let unacknowledged = state
            .unacknowledged
            .iter()
            .filter(|u| matches!(u, Unacknowledged::Publish { .. }))
            .count();
        let lost = (state.queued.len() + unacknowledged) as u64;
        if lost == 0 {
            return;
        }
        let client_id = &self.client.client_id;
        let why = if persistent {
            "the persistent session could not be kept"
        } else {
            "the client's clean session ended with its connection"
        };
        let counter = self.shared.operations.stats.client_drops(client_id);
        self.shared
            .operations
            .stats
            .report_dropped(&counter, lost, client_id, why);
    }
}

/// How long a connection the broker ended reads what its client still sends.
const LINGER: Duration = Duration::from_secs(1);

/// Reads and drops what the client still sends, for at most [`LINGER`] or until it closes its
/// side, then closes the socket. The DISCONNECT is written and the writing side shut: closing
/// with unread data would reset the connection, and a client that was still publishing would
/// get a broken pipe before it read the reason.
async fn linger<R: AsyncRead + Unpin>(mut reader: R) {
    let mut scratch = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while matches!(reader.read(&mut scratch).await, Ok(read) if read > 0) {}
    })
    .await;
}
