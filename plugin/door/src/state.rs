//! The door's state, which every connection shares, in three parts with one job each:
//! [`Routing`] (where a publish goes), [`Sessions`] (who is connected or parked, and on what
//! terms) and [`Operations`] (what an operator sees, and how the door runs and stops).

use super::control::Control;
use super::flow::Gates;
use super::router::Router;
use super::services::{self, ServiceRoute};
use super::session::Registry;
use super::stats::Stats;
use super::sys::{LocalMessage, Sys};
use super::{logs, queue, retained, shared, Ingress};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;
use weir_model::topic::TopicFilter;

/// What every connection shares.
pub(crate) struct Shared {
    /// Where a publish goes.
    pub(crate) routing: Routing,
    /// Who is connected or parked, and on what terms.
    pub(crate) sessions: Sessions,
    /// Counters, `$SYS`, ids and the door's life.
    pub(crate) operations: Operations,
}

/// Where a publish goes: the router and its flow control, the graphs, bridges and services
/// that take publishes before it, shared-subscription groups and retained messages.
pub(crate) struct Routing {
    /// rumqttd's router, behind its one module.
    pub(crate) router: Router,
    /// The publishers' gates, closed by full subscriber queues.
    pub(crate) gates: Gates,
    /// The router's logs, as far as the door follows them.
    pub(crate) logs: logs::Logs,
    /// How far a subscriber may fall behind in the router's logs.
    pub(crate) lag: logs::LagLimits,
    /// The graphs' sources, once set.
    pub(crate) graphs: OnceLock<Arc<dyn Ingress>>,
    /// The bridges' `out` topics, once set.
    pub(crate) bridges: OnceLock<Arc<crate::bridge::BridgeRoutes>>,
    /// Weir's services' request topics, once set.
    pub(crate) services: OnceLock<services::Services>,
    /// The retained messages.
    pub(crate) retained: retained::RetainedStore,
    /// The shared-subscription groups.
    pub(crate) groups: shared::Groups,
    /// Router links Weir itself holds (internal publishers).
    pub(crate) internal_links: AtomicU64,
    /// The next message's number ([`crate::tag::Tag::sequence`]).
    pub(crate) next_sequence: AtomicU64,
}

impl Routing {
    /// The graphs' sources, once set.
    pub(crate) fn graphs(&self) -> Option<&Arc<dyn Ingress>> {
        self.graphs.get()
    }

    /// The bridges' `out` topics, once set.
    pub(crate) fn bridges(&self) -> Option<&Arc<crate::bridge::BridgeRoutes>> {
        self.bridges.get()
    }

    /// The service answering publishes on `topic`, if any.
    pub(crate) fn service(&self, topic: &str) -> Option<&ServiceRoute> {
        self.services.get()?.route(topic)
    }
}

/// Who is connected or parked, and the terms every session gets.
pub(crate) struct Sessions {
    /// Every session, connected or parked.
    pub(crate) registry: Registry,
    /// How much a subscriber's queue holds.
    pub(crate) limits: queue::Limits,
    /// Whether an offline persistent session queues QoS 0 messages.
    pub(crate) queue_qos0_messages: bool,
    /// The longest keep-alive a client is granted.
    pub(crate) max_keep_alive: u16,
    /// How many clients may be connected at once.
    pub(crate) max_connections: usize,
}

/// What an operator sees (counters, `$SYS`) and how the door runs: ids, its runtime, and the
/// signal that it stops reading.
pub(crate) struct Operations {
    /// The broker's counters.
    pub(crate) stats: Arc<Stats>,
    /// The `$SYS` tree and its subscribers.
    pub(crate) sys: Sys,
    /// The next connection (or link) id.
    pub(crate) next_id: AtomicU64,
    /// Cancelled when the door stops reading (shutdown's first step).
    pub(crate) reading: CancellationToken,
    /// The connections' runtime.
    pub(crate) runtime: tokio::runtime::Handle,
}

impl Operations {
    /// A new id, unique in this process.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    /// Subscribes connection `connection` to `filter` in the door's own tree (door subscription
    /// `id`); returns the current values it matches. Nobody subscribed to `$SYS` means nobody
    /// kept its counters up to date: a subscription to `$SYS` reads them first.
    pub(crate) fn subscribe_local(
        &self,
        registry: &Registry,
        connection: u64,
        control: &UnboundedSender<Control>,
        id: u32,
        filter: TopicFilter,
    ) -> Vec<LocalMessage> {
        if super::sys::is_sys(&filter) && !self.sys.watched() {
            self.sys.update(&self.stats, registry);
        }
        self.sys.subscribe(connection, control, id, filter)
    }
}
