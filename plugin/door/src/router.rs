//! The door's side of rumqttd's router: one local link per client, built and fed here.
//!
//! The router matches topics, fans messages out and keeps retained messages; the door gives it
//! each client's publishes and subscriptions through the client's link and reads back what the
//! router delivers. Three router habits shape this module:
//! - it silently ignores a connection whose id contains `+ $ # /`, so client ids are escaped;
//! - `LinkTx::send` wakes the router once per call, so the publishes read from one socket read
//!   go in one batch with one wake-up ([`Batch`]);
//! - a link that is dropped is never cleaned up, so every link ends with a DISCONNECT
//!   ([`end`]).

use super::DoorError;
use rumqttd::local::{LinkBuilder, LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{Disconnect, DisconnectReasonCode, Packet};
use rumqttd::{Notification, RouterConfig};
use std::sync::Arc;

type LinkFactory =
    dyn Fn(&str, bool) -> Result<(LinkTx, LinkRx, Notification), Box<LinkError>> + Send + Sync;

/// The router stopped: nothing can be handed to it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the router stopped")]
pub struct RouterGone;

/// A running router, and how to attach to it.
#[derive(Clone)]
pub struct Router {
    links: Arc<LinkFactory>,
}

/// A client's attachment to the router.
pub struct Link {
    /// Publishes and subscriptions go in here.
    pub tx: LinkTx,
    /// Deliveries and acknowledgements come out here.
    pub rx: LinkRx,
}

impl Router {
    /// Starts the router on its own thread.
    pub fn spawn(config: RouterConfig) -> Router {
        let router_tx = rumqttd::Router::new(0, config).spawn();
        let links = move |id: &str, clean: bool| {
            LinkBuilder::new(id, router_tx.clone())
                .clean_session(clean)
                // Clients publish to topics nobody subscribed to yet.
                .dynamic_filters(true)
                .build()
                .map_err(Box::new)
        };
        Router {
            links: Arc::new(links),
        }
    }

    /// Attaches client `client_id` (escaped here) with a clean or persistent session. Blocks
    /// until the router answers.
    pub fn link(&self, client_id: &str, clean: bool) -> Result<Link, DoorError> {
        let id = router_id(client_id);
        // The router's CONNACK carries nothing the door needs: the door keeps its own
        // record of sessions.
        let (tx, rx, _connack) = (self.links)(&id, clean).map_err(|e| DoorError::Router {
            client_id: client_id.to_string(),
            message: e.to_string(),
        })?;
        Ok(Link { tx, rx })
    }
}

/// The router's id for a client: `%`, `+`, `$`, `#` and `/` percent-encoded.
///
/// ```
/// use weir_door::router::router_id;
/// assert_eq!(router_id("sensor/1+#$%"), "sensor%2F1%2B%23%24%25");
/// assert_eq!(router_id("plain-id"), "plain-id");
/// ```
pub fn router_id(client_id: &str) -> String {
    let mut id = String::with_capacity(client_id.len());
    for c in client_id.chars() {
        match c {
            '%' | '+' | '$' | '#' | '/' => id.push_str(&format!("%{:02X}", c as u32)),
            c => id.push(c),
        }
    }
    id
}

/// Packets for the router, handed over with one wake-up.
#[derive(Default)]
pub struct Batch {
    packets: Vec<Packet>,
    bytes: usize,
}

/// A batch this large goes to the router before more is added: the router appends a whole
/// batch in one turn, and a filter's log must hold what all publishers append in a turn.
const FULL_MESSAGES: usize = 64;
const FULL_BYTES: usize = 32 * 1024;

impl Batch {
    /// Adds a packet.
    pub fn push(&mut self, packet: Packet) {
        if let Packet::Publish(publish, _) = &packet {
            self.bytes += publish.topic.len() + publish.payload.len();
        }
        self.packets.push(packet);
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// Whether the batch should go now (see [`FULL_MESSAGES`], [`FULL_BYTES`]).
    pub fn is_full(&self) -> bool {
        self.packets.len() >= FULL_MESSAGES || self.bytes >= FULL_BYTES
    }

    /// Hands everything to the router through `link`. Fails when the router is gone.
    pub fn flush(&mut self, link: &mut LinkTx) -> Result<(), RouterGone> {
        self.bytes = 0;
        let Some(last) = self.packets.pop() else {
            return Ok(());
        };
        if !self.packets.is_empty() {
            link.buffer().extend(self.packets.drain(..));
        }
        send(link, last)
    }
}

/// Sends one packet to the router. `LinkTx::send` is async in signature only: it queues the
/// packet and notifies the router synchronously (waiting only if the router's event queue is
/// full), so it completes on its first poll.
pub fn send(link: &mut LinkTx, packet: Packet) -> Result<(), RouterGone> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut context = Context::from_waker(Waker::noop());
    let sent = std::pin::pin!(link.send(packet));
    match sent.poll(&mut context) {
        Poll::Ready(result) => result.map(drop).map_err(|_| RouterGone),
        Poll::Pending => unreachable!("LinkTx::send has no await point"),
    }
}

/// Ends a link: the router forgets the connection (keeping a persistent session's state).
pub fn end(link: &mut LinkTx) {
    let disconnect = Disconnect {
        reason_code: DisconnectReasonCode::NormalDisconnection,
    };
    let _ = send(link, Packet::Disconnect(disconnect, None));
}
