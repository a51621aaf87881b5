//! The door's side of rumqttd's router: one local link per client, built and fed here. This
//! module is the only one that names rumqttd: the rest of the door hands it its own types
//! ([`Batch`]) and reads its own types back ([`FromRouter`]).
//!
//! The router matches topics, fans messages out and keeps retained messages; the door gives it
//! each client's publishes and subscriptions through the client's link and reads back what the
//! router delivers. Four router habits shape this module:
//! - it silently ignores a connection whose id contains `+ $ # /`, so client ids are escaped;
//! - `LinkTx::send` wakes the router once per call, so the publishes read from one socket read
//!   go in one batch with one wake-up ([`Batch`]);
//! - a link that is dropped is never cleaned up, so every link ends with a DISCONNECT
//!   ([`end`]);
//! - every hand-over (a link's packets, a reader being ready for more) is an event on one
//!   bounded queue, and a full queue blocks the sender until the router takes one. A tokio
//!   worker thread must not block there (on two cores, two such sends would stop every
//!   connection), so a hand-over made while the queue is nearly full moves off the worker
//!   first ([`tokio::task::block_in_place`]: the worker's other connections go on on
//!   another thread, and this connection reads nothing more until the router has taken it).

mod edge;

#[cfg(test)]
pub(crate) use edge::ping_bare;
pub use edge::{end, ping, subscribe_now, Batch, Forwarded, FromRouter};

use crate::DoorError;
use crate::RouterLimits;
use rumqttd::local::{LinkBuilder, LinkError, LinkRx, LinkTx};
use rumqttd::protocol::Packet;
use rumqttd::{Notification, RouterConfig};
use std::sync::Arc;
use std::time::Instant;

type LinkFactory =
    dyn Fn(&str, bool) -> Result<(LinkTx, LinkRx, Notification), Box<LinkError>> + Send + Sync;

/// The log targets of the router's code all start with this.
const LOG_TARGET: &str = "rumqttd::router";

/// The log target of the router's routing, where its per-message spans come from.
pub const ROUTING_LOG_TARGET: &str = "rumqttd::router::routing";

/// The spans the router opens for every message it handles, at error level (so that no level
/// filter turns them off), each formatting the message's topic for the log.
const PER_MESSAGE_SPANS: [&str; 4] = ["[>] incoming", "incoming_payload", "publish", "puback"];

/// Whether `meta` is one of the router's per-message spans (see [`PER_MESSAGE_SPANS`]), which a
/// log subscriber may turn off.
pub fn is_per_message_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span()
        && meta.target().starts_with(LOG_TARGET)
        && PER_MESSAGE_SPANS.contains(&meta.name())
}

/// Free places left in the router's event queue below which a hand-over leaves the worker
/// thread: more than the door's threads and Weir's own publishers can take between the look
/// and the send.
pub const QUEUE_MARGIN: usize = 64;

/// How full the router's event queue is, read through the door's own handle on it (a closure:
/// the queue's element type is private to rumqttd, so the sender cannot be named here).
#[derive(Clone)]
pub struct QueueGauge(Arc<dyn Fn() -> (usize, Option<usize>) + Send + Sync>);

impl QueueGauge {
    /// Events waiting in the queue, and its capacity (`None`: unbounded).
    pub fn load(&self) -> (usize, Option<usize>) {
        (self.0)()
    }

    /// Whether a send now could have to wait for the router.
    pub fn nearly_full(&self) -> bool {
        let (len, capacity) = self.load();
        capacity.is_some_and(|capacity| len.saturating_add(QUEUE_MARGIN) >= capacity)
    }

    /// A gauge that reads `queue`: `(events waiting, capacity)`.
    pub fn new(queue: impl Fn() -> (usize, Option<usize>) + Send + Sync + 'static) -> Self {
        QueueGauge(Arc::new(queue))
    }

    /// Runs `hand_over` (which may wait for room in the router's queue) where waiting blocks no
    /// tokio worker: off the worker when the queue is nearly full and this is one.
    fn hand_over<T>(&self, hand_over: impl FnOnce() -> T) -> T {
        let on_worker = || {
            tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
                runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
            })
        };
        // The gauge first: it takes the queue's lock, which the send takes next anyway; the
        // runtime's handle is looked up (an Arc cloned) only when the queue is nearly full.
        if self.nearly_full() && on_worker() {
            tokio::task::block_in_place(hand_over)
        } else {
            hand_over()
        }
    }
}

/// The router stopped: nothing can be handed to it any more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the router stopped")]
pub struct RouterGone;

/// A running router, and how to attach to it.
#[derive(Clone)]
pub struct Router {
    links: Arc<LinkFactory>,
    queue: QueueGauge,
    /// Tests: a hand-over for connection `id` whose packets go nowhere (see
    /// `tests::router_queue`).
    #[cfg(test)]
    pub(crate) bare_tx: Arc<dyn Fn(usize) -> LinkTx + Send + Sync>,
}

/// A client's attachment to the router.
pub struct Link {
    /// Publishes and subscriptions go in here.
    pub tx: Tx,
    /// Deliveries and acknowledgements come out here.
    pub rx: Rx,
}

/// The door's side of a link, towards the router.
pub struct Tx {
    link: LinkTx,
    queue: QueueGauge,
}

impl Tx {
    /// Tests: holds the link's buffer, which the router waits for when it takes a hand-over
    /// of this link (see `tests::router_queue`).
    #[cfg(test)]
    pub(crate) fn hold_buffer(&self) -> impl Drop + '_ {
        self.link.buffer()
    }
}

/// The door's side of a link, from the router.
pub struct Rx {
    link: LinkRx,
    queue: QueueGauge,
}

impl Rx {
    /// The next delivery or acknowledgement, waiting for one.
    pub async fn next(&mut self) -> Result<Option<FromRouter>, RouterGone> {
        match self.link.next().await {
            Ok(notification) => Ok(notification.map(FromRouter::from)),
            Err(_) => Err(RouterGone),
        }
    }

    /// The next delivery or acknowledgement, waiting at most until `deadline` (blocking):
    /// `Ok(None)` when none came in time.
    pub fn recv_deadline(&mut self, deadline: Instant) -> Result<Option<FromRouter>, RouterGone> {
        match self.link.recv_deadline(deadline) {
            Ok(notification) => Ok(notification.map(FromRouter::from)),
            Err(LinkError::RecvTimeout(_)) => Ok(None),
            Err(_) => Err(RouterGone),
        }
    }

    /// The router's id for this link.
    pub fn id(&self) -> usize {
        self.link.id()
    }

    /// Tells the router that this link reads again (after it paused it).
    pub fn ready(&self) -> Result<(), RouterGone> {
        self.queue
            .hand_over(|| self.link.ready().map_err(|_| RouterGone))
    }
}

impl Router {
    /// Starts the router on its own thread, with room for `links` links.
    pub fn spawn(limits: RouterLimits, links: usize) -> Router {
        let config = RouterConfig {
            max_connections: links,
            max_outgoing_packet_count: limits.max_outgoing_packet_count,
            max_segment_size: limits.max_segment_size,
            max_segment_count: limits.max_segment_count,
            ..Default::default()
        };
        let router_tx = rumqttd::Router::new(0, config).spawn();
        let gauge_tx = router_tx.clone();
        let queue = QueueGauge::new(move || (gauge_tx.len(), gauge_tx.capacity()));
        #[cfg(test)]
        let bare_tx = {
            let router_tx = router_tx.clone();
            move |id| LinkTx::new(id, router_tx.clone(), Default::default())
        };
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
            queue,
            #[cfg(test)]
            bare_tx: Arc::new(bare_tx),
        }
    }

    /// How full the router's event queue is.
    pub fn queue(&self) -> &QueueGauge {
        &self.queue
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
        let queue = self.queue.clone();
        Ok(Link {
            tx: Tx {
                link: tx,
                queue: queue.clone(),
            },
            rx: Rx { link: rx, queue },
        })
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

/// Sends one packet to the router, with what the link's buffer holds: off a tokio worker if
/// the router's queue is nearly full (see the module's notes).
fn send(link: &mut Tx, packet: Packet) -> Result<(), RouterGone> {
    let Tx { link, queue } = link;
    queue.hand_over(|| send_now(link, packet))
}

/// `LinkTx::send` is async in signature only: it queues the packet and notifies the router
/// synchronously (waiting only if the router's event queue is full), so it completes on its
/// first poll.
fn send_now(link: &mut LinkTx, packet: Packet) -> Result<(), RouterGone> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut context = Context::from_waker(Waker::noop());
    let sent = std::pin::pin!(link.send(packet));
    match sent.poll(&mut context) {
        Poll::Ready(result) => result.map(drop).map_err(|_| RouterGone),
        // Not reached: the send has no await point. Were it ever to wait, the packet is in
        // the link's buffer and the router takes it with the link's next hand-over.
        Poll::Pending => Ok(()),
    }
}
