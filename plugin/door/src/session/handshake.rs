//! From a new connection's first byte to its CONNACK: the CONNECT read and checked (or refused
//! with a CONNACK in the client's version), the client id taken (assigned, or taken over from
//! another connection), and the client attached to the router.

use crate::codec::{clear_bridge_bit, opening, Codec, Opening, Version, Wire};
use crate::config::ListenerConfig;
use crate::connect::{authenticate, ConnectRequest, Refusal};
use crate::control::Control;
use crate::router::Link;
use crate::session::parked::{self, Parked};
use crate::session::Claim;
use crate::{DoorError, Shared};
use bytes::BytesMut;
use rmqtt_codec::error::DecodeError;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// How long a taken-over connection has to go before the new one gives up.
const TAKEOVER_PATIENCE: Duration = Duration::from_secs(5);

/// A client that passed CONNECT.
pub(crate) struct Client {
    pub request: ConnectRequest,
    pub client_id: String,
    pub assigned: bool,
}

/// Where a client's identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Identity {
    /// The username and password in its CONNECT.
    Credentials,
    /// Its TLS certificate (`use_identity_as_username`): the common name, if it had a
    /// verified certificate with one.
    Certificate(Option<String>),
}

/// Reads and checks the CONNECT. `Err(Some(..))`: refuse with a CONNACK; `Err(None)`: just
/// close (not MQTT, or malformed).
pub(crate) async fn read_connect<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    listener: &ListenerConfig,
    shared: &Shared,
    identity: Identity,
) -> Result<(Client, Codec), Option<(Version, Refusal)>> {
    let (version, bridge) = loop {
        match opening(buf) {
            Opening::Connect(version) => break (version, false),
            Opening::Bridge(version) => {
                clear_bridge_bit(buf);
                break (version, true);
            }
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
    shared.operations.stats.packets_received.inc();
    let mut request = ConnectRequest::from_packet(packet, version);
    request.bridge = bridge;
    let refuse = |refusal| Err(Some((version, refusal)));
    if request.auth_method.is_some() {
        return refuse(Refusal::BadAuthMethod);
    }
    match identity {
        Identity::Credentials => {
            if let Err(refusal) = authenticate(
                &listener.auth,
                request.username.as_deref(),
                request.password.as_deref(),
            ) {
                return refuse(refusal);
            }
        }
        // The certificate, verified in the handshake, says who the client is (as mosquitto's
        // use_identity_as_username: no password is asked).
        Identity::Certificate(Some(name)) => {
            request.username = Some(name);
            request.password = None;
        }
        Identity::Certificate(None) => return refuse(Refusal::NotAuthorized),
    }
    if shared.operations.stats.clients_connected.get() >= shared.sessions.max_connections as u64 {
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
    // A CONNECT is small: read it in small steps rather than give every connection a large
    // buffer (what is read past it stays in `buf` for the session).
    if buf.capacity() - buf.len() < 256 {
        buf.reserve(1024);
    }
    match reader.read_buf(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            shared.operations.stats.bytes_received.inc_by(n as u64);
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

/// Takes the client id, taking it over from another connection if needed, and the parked
/// session the client continues, if any (a clean start discards it). `None` when the other
/// connection would not go.
pub(crate) async fn claim(
    shared: &Shared,
    client: &Client,
    connection: u64,
    control: &UnboundedSender<Control>,
    ended: &CancellationToken,
) -> Option<Option<Parked>> {
    for _ in 0..3 {
        let claim = shared.sessions.registry.claim(
            &client.client_id,
            connection,
            control,
            ended,
            client.request.clean_start,
            client.request.session_expiry,
        );
        match claim {
            Claim::Granted { resumed, discarded } => {
                if let Some(discarded) = discarded {
                    parked::discard(shared, &client.client_id, discarded).await;
                }
                return Some(match resumed {
                    Some(handle) => handle.resume().await,
                    None => None,
                });
            }
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

/// Attaches the client to the router with a new link (the router keeps no session: a
/// persistent session keeps its link while parked).
pub(crate) async fn attach(shared: &Shared, client: &Client) -> Result<Link, DoorError> {
    let router = shared.routing.router.clone();
    let id = client.client_id.clone();
    tokio::task::spawn_blocking(move || router.link(&id, true))
        .await
        .map_err(|_| DoorError::RouterGone)?
}

/// Writes the CONNACK of `refusal` in `version`, then closes the connection.
pub(crate) async fn refuse<W: AsyncWrite + Unpin>(
    writer: &mut W,
    version: Version,
    refusal: Refusal,
) {
    let mut out = BytesMut::new();
    Wire::new(version, 0).connack(refusal.connack(), &mut out);
    let _ = writer.write_all(&out).await;
    let _ = writer.shutdown().await;
}
