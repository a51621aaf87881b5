//! Weir's MQTT broker, the front door: its own MQTT connection layer over rumqttd's router,
//! with [`security`] (passwords, ACLs) and [`bridge`]s to remote brokers. It builds without
//! WebAssembly, dataflow or Kafka: graphs reach it only through the [`Ingress`] it offers
//! publishes to, and it depends on no Weir crate but `weir-model`.
//!
//! Weir accepts connections, speaks MQTT 3.1, 3.1.1 and 5 on any listener (the version comes
//! from CONNECT), authenticates, and attaches each client to rumqttd's router through a local
//! link. The router matches topics, fans out and keeps retained messages; the door does what
//! the router cannot do from outside: wills, `$SYS`, QoS as MQTT defines it, graph sources, and
//! flow control with no silent loss. See `docs/architecture.md` for the design and why.
//!
//! The path of one publish:
//! 1. [`connection`] reads it from the socket ([`codec`] decodes it in the client's version) and
//!    [`inbound`] checks it (topic, `$` refused, aliases, QoS 2 duplicates);
//! 2. it is offered to the graphs whose sources match ([`ingress`]): queued on the connection's
//!    task, or waited for when a graph's queue is full under `back_pressure: block`;
//! 3. unless a graph intercepts it, it goes to the router with a [`tag`] (published QoS, retain,
//!    publisher) on the publisher's link, batched with the other publishes of the same read;
//! 4. the router appends it to the log of every matching filter and forwards it to each
//!    subscriber's link;
//! 5. each subscriber's [`outbound`] task drains its link at once into its own bounded
//!    [`queue`], takes the tag out, delivers at min(published, granted) QoS with its own packet
//!    ids, and writes to the socket as fast as the client reads. A queue past its limit closes
//!    the publisher's gate ([`flow`]): the publisher's connection stops reading its socket until
//!    there is room. A client that stopped reading loses what passes its limit, counted per
//!    client ([`stats`]); so is anything the router's log skipped.

pub mod bridge;
pub mod codec;
pub mod config;
pub mod connect;
mod connection;
mod control;
mod inbound;
mod listener;
pub mod message;
pub mod operations;
mod outbound;
pub mod routing;
pub mod security;
pub mod session;
mod state;
pub mod tls;
#[cfg(feature = "websockets")]
mod websocket;

// Each part's modules, also at the paths they had before the door was grouped by part.
pub use operations::{stats, sys};
use routing::dispatch;
pub use routing::{
    delivery, flow, ingress, logs, publisher, retained, router, services, shared, tag,
};
use session::{handshake, saved, will};
pub use session::{queue, store};

pub use config::{AuthConfig, DoorConfig, ListenerConfig, PersistenceConfig, RouterLimits};
pub use ingress::Ingress;
pub use publisher::InternalPublisher;
pub use services::{ServiceRequest, ServiceRoute};

use flow::Gates;
use router::Router;
use session::Registry;
use state::{Operations, Routing, Sessions, Shared};
use stats::Stats;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use sys::Sys;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the door could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum DoorError {
    /// A listener's address cannot be bound.
    #[error("listener `{name}` cannot bind {address}: {source}")]
    Bind {
        /// The listener.
        name: String,
        /// Its address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The router refused a link.
    #[error("the router refused the link of `{client_id}`: {message}")]
    Router {
        /// The client (or internal publisher).
        client_id: String,
        /// What it said.
        message: String,
    },
    /// The router is gone.
    #[error("the router stopped")]
    RouterGone,
    /// A thread or the runtime could not start.
    #[error("cannot start the connection layer: {0}")]
    Start(#[from] std::io::Error),
    /// A TLS certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The store cannot be used.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A bridge's queue cannot take a message.
    #[error(transparent)]
    Bridge(#[from] crate::bridge::queue::QueueError),
}

/// What Weir itself publishes through the door, from any thread: graph results (through
/// [`InternalPublisher`]s) and its own `$` topics.
#[derive(Clone)]
pub struct DoorHandle(Arc<Shared>);

impl DoorHandle {
    /// A publisher for Weir's own messages (a graph's results), named `name`, attached to the
    /// router. Results of graph `origin` do not re-enter it (unless it allows loops).
    pub fn publisher(
        &self,
        name: &str,
        origin: Option<&str>,
    ) -> Result<InternalPublisher, DoorError> {
        InternalPublisher::new(self.0.clone(), name, origin)
    }

    /// Sets `$` topic `topic` (such as `$weir/status/<graph>`) to `payload`: kept by the door,
    /// sent to its subscribers if it changed and, retained, to each new subscriber. Clients
    /// cannot publish there.
    pub fn set_local(&self, topic: String, payload: bytes::Bytes) {
        self.0.operations.sys.set_all([(topic, payload)]);
    }

    /// A publisher for what bridge `bridge` brings in, named `name`: its publishes do not go
    /// back out through that bridge.
    pub fn bridge_publisher(
        &self,
        name: &str,
        bridge: &str,
    ) -> Result<InternalPublisher, DoorError> {
        let mut publisher = InternalPublisher::new(self.0.clone(), name, None)?;
        publisher.set_bridge(bridge);
        Ok(publisher)
    }

    /// The retained messages whose topics match `filter` now.
    pub fn retained(&self, filter: &weir_model::topic::TopicFilter) -> Vec<retained::Retained> {
        self.0
            .routing
            .retained
            .matching(filter, dispatch::now_millis())
    }

    /// The broker's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.0.operations.stats.clone()
    }

    /// The connection layer's runtime (for tasks that live beside the connections).
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.0.operations.runtime.clone()
    }
}

/// Milliseconds since the Unix epoch (the door's clock for expiry).
pub fn now_millis() -> u64 {
    dispatch::now_millis()
}

/// Router connections kept for Weir itself (wills, graph results), beyond `max_connections`.
const INTERNAL_LINKS: usize = 256;

/// The running connection layer.
pub struct Door {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    listeners: Vec<(Arc<ListenerConfig>, std::net::TcpListener)>,
    connections: TaskTracker,
    sys_interval: Duration,
    /// The store and how often it is written.
    store: Option<(Arc<store::Store>, Duration)>,
}

impl Door {
    /// Binds every listener (failing with the listener's name), starts the router and the
    /// connection runtime. Connections are accepted from [`Door::open`] on.
    pub fn start(config: DoorConfig) -> Result<Door, DoorError> {
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for listener in config.listeners {
            let bound = listener::bind(&listener)?;
            listeners.push((Arc::new(listener), bound));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name("weir-door")
            .enable_all()
            .build()?;
        // Clients, their shared-subscription groups (a router link each), and Weir's own.
        let links = config
            .max_connections
            .saturating_mul(2)
            .saturating_add(INTERNAL_LINKS);
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            routing: Routing {
                router: Router::spawn(config.router, links),
                gates: Gates::default(),
                logs: logs::Logs::default(),
                lag: logs::LagLimits::for_router(
                    config.router.max_segment_size,
                    config.router.max_segment_count,
                ),
                graphs: OnceLock::new(),
                bridges: OnceLock::new(),
                services: OnceLock::new(),
                retained: retained::RetainedStore::default(),
                groups: shared::Groups::default(),
                internal_links: AtomicU64::new(0),
                next_sequence: AtomicU64::new(0),
            },
            sessions: Sessions {
                registry: Registry::counting_parked(stats.sessions_offline.clone()),
                limits: queue::Limits {
                    messages: config.max_queued_messages,
                    bytes: config.max_queued_bytes,
                },
                queue_qos0_messages: config.queue_qos0_messages,
                max_keep_alive: config.max_keep_alive,
                max_connections: config.max_connections,
            },
            operations: Operations {
                stats,
                sys: Sys::default(),
                next_id: AtomicU64::new(1),
                reading: CancellationToken::new(),
                runtime: runtime.handle().clone(),
            },
        });
        let store = match &config.persistence {
            Some(persistence) => {
                let store = Arc::new(store::Store::open(&persistence.dir)?);
                let kept = store.load_retained()?;
                let count = shared
                    .routing
                    .retained
                    .restore(kept, dispatch::now_millis());
                shared.operations.stats.retained.set(count as u64);
                let sessions = store.load_sessions()?;
                let restored = runtime.block_on(saved::restore(&shared, sessions));
                let in_store = &shared.operations.stats.store;
                in_store.retained.set(count as u64);
                in_store.sessions.set(restored as u64);
                tracing::info!(
                    "store {}: {count} retained messages and {restored} sessions restored",
                    store.path().display()
                );
                Some((store, persistence.autosave_interval))
            }
            None => None,
        };
        Ok(Door {
            shared,
            runtime: Some(runtime),
            listeners,
            connections: TaskTracker::new(),
            sys_interval: config.sys_interval,
            store,
        })
    }

    /// The broker's counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.shared.operations.stats.clone()
    }

    /// A handle for Weir's own publishers and `$` topics, usable from any thread.
    pub fn handle(&self) -> DoorHandle {
        DoorHandle(self.shared.clone())
    }

    /// Sends publishes on the `out` topics of `bridges` to their queues (before
    /// [`Door::open`], so that no publish is missed).
    pub fn set_bridges(&self, bridges: Arc<crate::bridge::BridgeRoutes>) {
        let _ = self.shared.routing.bridges.set(bridges);
    }

    /// Sends publishes on the sources of `graphs` to them (from now on: those of Weir's own
    /// publishers too; clients' once [`Door::open`] accepts them).
    pub fn set_graphs(&self, graphs: Arc<dyn Ingress>) {
        let _ = self.shared.routing.graphs.set(graphs);
    }

    /// Starts accepting connections; publishes on the sources of `graphs` go to them, and
    /// publishes on a service's request topic to that service.
    pub fn open(&mut self, graphs: Arc<dyn Ingress>, services: Vec<ServiceRoute>) {
        let _ = self.shared.routing.graphs.set(graphs);
        let _ = self
            .shared
            .routing
            .services
            .set(services::Services::new(services));
        let runtime = self.shared.operations.runtime.clone();
        for (config, listener) in self.listeners.drain(..) {
            let shared = self.shared.clone();
            let connections = self.connections.clone();
            runtime.spawn(async move {
                match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener::accept(listener, config, shared, connections).await,
                    Err(e) => tracing::error!(listener = %config.name, "cannot accept: {e}"),
                }
            });
        }
        let shared = self.shared.clone();
        let interval = self.sys_interval;
        runtime.spawn(async move { housekeeping(shared, interval).await });
        if let Some((store, every)) = self.store.clone() {
            let shared = self.shared.clone();
            runtime.spawn(async move { autosave(shared, store, every).await });
        }
    }

    /// Shutdown, first step: stop accepting connections and stop reading from clients (their
    /// publishes wait in their sockets; graphs get no more input from them).
    pub fn stop_reading(&self) {
        self.shared.operations.reading.cancel();
    }

    /// Shutdown, last step: delivers what the router still holds for each client, disconnects
    /// every client (MQTT 5: DISCONNECT 0x8B "server shutting down") and waits for them to go,
    /// at most `patience`.
    pub fn disconnect_all(&mut self, patience: Duration) {
        self.shared.operations.reading.cancel();
        for control in self.shared.sessions.registry.live() {
            let _ = control.send(control::Control::Shutdown);
        }
        self.connections.close();
        let connections = self.connections.clone();
        if let Some(runtime) = &self.runtime {
            let done = runtime
                .block_on(async { tokio::time::timeout(patience, connections.wait()).await });
            if done.is_err() {
                tracing::warn!(
                    "{} client connections did not close within {patience:?}",
                    self.connections.len()
                );
            }
        }
        if let (Some((store, _)), Some(runtime)) = (&self.store, &self.runtime) {
            let snapshot = runtime.block_on(saved::snapshot(&self.shared));
            saved::write(&self.shared, store, snapshot);
        } else {
            let (sessions, _, queued) = self.shared.sessions.registry.offline();
            if queued > 0 {
                tracing::warn!(
                    "{queued} messages queued for {sessions} offline sessions are lost at exit: without `persistence`, sessions are kept in memory only"
                );
            }
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_millis(100));
        }
    }
}

/// Writes what is to be kept to `store` every `every` when it changed, until the door stops
/// reading (the last save is [`Door::disconnect_all`]'s).
async fn autosave(shared: Arc<Shared>, store: Arc<store::Store>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    // Unknown at first: the store may hold sessions from before the restart.
    let mut saved_sessions = None;
    loop {
        tokio::select! {
            _ = shared.operations.reading.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snapshot = saved::snapshot(&shared).await;
        if snapshot.changes_nothing(saved_sessions) {
            continue;
        }
        let (shared, store) = (shared.clone(), store.clone());
        saved_sessions =
            tokio::task::spawn_blocking(move || saved::write(&shared, &store, snapshot))
                .await
                .ok()
                .flatten();
    }
}

/// Publishes `$SYS` every `sys_interval` while someone subscribes to it (zero: never, and this
/// task ends at once). With no subscriber it sleeps until one comes (whose subscription reads
/// the counters itself).
async fn housekeeping(shared: Arc<Shared>, sys_interval: Duration) {
    if sys_interval.is_zero() {
        return;
    }
    let operations = &shared.operations;
    let mut tick = tokio::time::interval(sys_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = operations.reading.cancelled() => return,
            _ = tick.tick() => {}
        }
        if !operations.sys.watched() {
            tokio::select! {
                _ = operations.reading.cancelled() => return,
                _ = operations.sys.watcher_came() => {}
            }
            tick.reset();
            continue;
        }
        operations
            .sys
            .update(&operations.stats, &shared.sessions.registry);
    }
}

#[cfg(test)]
mod tests;
