//! The door's counters: what `$SYS/broker/...` publishes and `/metrics` serves, registered
//! once each in Weir's metrics registry ([`Stats::register`]).
//!
//! Totals are relaxed atomics kept inline ([`InlineCounter`], [`InlineGauge`]) and bumped on
//! the per-packet path; a collector writes them at each scrape. Drops are also counted per client (`weir_client_dropped_total{client=
//! "..."}`): each client's counter is made on its first drop and kept after it disconnects, so
//! a scrape shows who lost what.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weir_model::metrics::{
    write_family, Collector, CountGauge, Counter, DescriptorEncoder, InlineCounter, InlineGauge,
    MetricType, Registry, NO_LABELS,
};

/// How many clients' drop counters are kept (the oldest go first).
const CLIENT_COUNTERS: usize = 10_000;

/// The broker's counters.
#[derive(Debug)]
pub struct Stats {
    /// When the broker started.
    pub started: Instant,
    /// Clients connected now.
    pub clients_connected: InlineGauge,
    /// Persistent sessions whose client is away, kept by the session registry as sessions
    /// park, resume and expire.
    pub sessions_offline: CountGauge,
    /// MQTT packets received.
    pub packets_received: InlineCounter,
    /// MQTT packets sent.
    pub packets_sent: InlineCounter,
    /// Bytes received from clients.
    pub bytes_received: InlineCounter,
    /// Bytes sent to clients.
    pub bytes_sent: InlineCounter,
    /// PUBLISH packets received from clients.
    pub publishes_received: InlineCounter,
    /// PUBLISH packets sent to clients.
    pub publishes_sent: InlineCounter,
    /// Subscriptions held by all sessions.
    pub subscriptions: InlineGauge,
    /// Retained messages held.
    pub retained: InlineGauge,
    /// Messages dropped, in total.
    pub dropped: InlineCounter,
    /// Publishes refused (to a `$` topic, or invalid).
    pub refused: InlineCounter,
    /// Messages not delivered to a client because their message expiry interval passed.
    pub expired: InlineCounter,
    /// Publishes the ACL refused.
    pub acl_denied_publishes: InlineCounter,
    /// Subscriptions the ACL refused.
    pub acl_denied_subscriptions: InlineCounter,
    /// Deliveries the ACL refused (a topic the subscriber may not read).
    pub acl_denied_deliveries: InlineCounter,
    /// What the saves to the store (`broker.persistence`) wrote.
    pub store: StoreStats,
    clients: Mutex<ClientDrops>,
}

/// What the saves of retained messages and sessions to the store wrote: a test or an operator
/// can see a save happen without reading the log.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Saves that reached the disk: autosaves, and the last one at shutdown.
    pub saves: Counter,
    /// Saves that failed (the error is in the log).
    pub save_errors: Counter,
    /// Retained messages in the store, as the last save that changed them wrote them.
    pub retained: CountGauge,
    /// Sessions in the store, as the last save wrote them.
    pub sessions: CountGauge,
}

impl StoreStats {
    /// A save wrote `sessions` sessions and, if they had changed, `retained` retained messages.
    pub fn saved(&self, retained: Option<usize>, sessions: usize) {
        if let Some(retained) = retained {
            self.retained.set(retained as u64);
        }
        self.sessions.set(sessions as u64);
        self.saves.inc();
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "weir_store_saves",
            "Saves of retained messages and sessions that reached the disk (autosaves and the last one at shutdown)",
            self.saves.clone(),
        );
        registry.register(
            "weir_store_save_errors",
            "Saves to the store that failed; the error is in the log",
            self.save_errors.clone(),
        );
        registry.register(
            "weir_store_retained",
            "Retained messages in the store, as the last save that changed them wrote them",
            self.retained.clone(),
        );
        registry.register(
            "weir_store_sessions",
            "Persistent sessions in the store, as the last save wrote them",
            self.sessions.clone(),
        );
    }
}

#[derive(Debug, Default)]
struct ClientDrops {
    counters: BTreeMap<String, (u64, Arc<AtomicU64>)>,
    registered: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            clients_connected: InlineGauge::default(),
            sessions_offline: CountGauge::default(),
            packets_received: InlineCounter::default(),
            packets_sent: InlineCounter::default(),
            bytes_received: InlineCounter::default(),
            bytes_sent: InlineCounter::default(),
            publishes_received: InlineCounter::default(),
            publishes_sent: InlineCounter::default(),
            subscriptions: InlineGauge::default(),
            retained: InlineGauge::default(),
            dropped: InlineCounter::default(),
            refused: InlineCounter::default(),
            expired: InlineCounter::default(),
            acl_denied_publishes: InlineCounter::default(),
            acl_denied_subscriptions: InlineCounter::default(),
            acl_denied_deliveries: InlineCounter::default(),
            store: StoreStats::default(),
            clients: Mutex::default(),
        }
    }
}

impl Stats {
    /// The drop counter of client `client_id`, registered if new.
    pub fn client_drops(&self, client_id: &str) -> Arc<AtomicU64> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.registered += 1;
        let order = clients.registered;
        if let Some((seen, counter)) = clients.counters.get_mut(client_id) {
            *seen = order;
            return counter.clone();
        }
        if clients.counters.len() >= CLIENT_COUNTERS {
            let oldest = clients
                .counters
                .iter()
                .min_by_key(|(_, (seen, _))| *seen)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                clients.counters.remove(&oldest);
            }
        }
        let counter = Arc::new(AtomicU64::new(0));
        clients
            .counters
            .insert(client_id.to_string(), (order, counter.clone()));
        counter
    }

    /// Counts `count` messages dropped for client `counter`'s owner.
    pub fn count_dropped(&self, counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Relaxed);
        self.dropped.inc_by(count);
    }

    /// Counts `count` messages dropped for `client_id` (its counter `counter`), logging why
    /// at the first drop and then at every power of two (`why` empty: already logged).
    pub fn report_dropped(&self, counter: &AtomicU64, count: u64, client_id: &str, why: &str) {
        let before = counter.load(Relaxed);
        self.count_dropped(counter, count);
        let after = before.saturating_add(count);
        if !why.is_empty() && (before == 0 || before.leading_zeros() != after.leading_zeros()) {
            tracing::warn!(
                client = %client_id,
                "message dropped: {why} ({after} dropped for this client so far)"
            );
        }
    }

    /// Seconds since start.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Registers every counter in `registry`, each with its name and help text: the
    /// per-packet totals and the per-client drops through a collector that reads them at each
    /// scrape, the store's saves and the offline sessions as registered metrics.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weir_door::stats::Stats;
    /// use weir_model::metrics::{text, Registry};
    ///
    /// let stats = Arc::new(Stats::default());
    /// let mut registry = Registry::default();
    /// stats.register(&mut registry);
    /// let counter = stats.client_drops("sensor-1");
    /// stats.count_dropped(&counter, 3);
    /// let text = text(&registry);
    /// assert!(text.contains("weir_dropped_total 3\n"));
    /// assert!(text.contains("weir_client_dropped_total{client=\"sensor-1\"} 3\n"));
    /// ```
    pub fn register(self: &Arc<Self>, registry: &mut Registry) {
        registry.register(
            "weir_sessions_offline",
            "Persistent sessions whose client is away",
            self.sessions_offline.clone(),
        );
        self.store.register(registry);
        registry.register_collector(Box::new(Arc::clone(self)));
    }

    /// Name, help and gauge of each level.
    fn gauges(&self) -> [(&'static str, &'static str, &InlineGauge); 3] {
        [
            (
                "weir_clients_connected",
                "Clients connected now.",
                &self.clients_connected,
            ),
            (
                "weir_subscriptions",
                "Subscriptions held by all sessions.",
                &self.subscriptions,
            ),
            (
                "weir_retained_messages",
                "Retained messages held.",
                &self.retained,
            ),
        ]
    }

    /// Name (without `_total`), help and counter of each total.
    fn counters(&self) -> [(&'static str, &'static str, &InlineCounter); 12] {
        [
            ("weir_packets_received", "MQTT packets received.", &self.packets_received),
            ("weir_packets_sent", "MQTT packets sent.", &self.packets_sent),
            ("weir_bytes_received", "Bytes received from clients.", &self.bytes_received),
            ("weir_bytes_sent", "Bytes sent to clients.", &self.bytes_sent),
            ("weir_publishes_received", "PUBLISH packets received from clients.", &self.publishes_received),
            ("weir_publishes_sent", "PUBLISH packets sent to clients.", &self.publishes_sent),
            (
                "weir_dropped",
                "Messages dropped for a client (queue full, session ended or expired, QoS 0 for an offline session, too large for the client, or the router's log overrun).",
                &self.dropped,
            ),
            ("weir_refused", "Publishes refused (a `$` topic or an invalid one).", &self.refused),
            (
                "weir_expired",
                "Messages not delivered to a client because their message expiry interval passed.",
                &self.expired,
            ),
            ("weir_acl_denied_publishes", "Publishes the ACL file refused.", &self.acl_denied_publishes),
            (
                "weir_acl_denied_subscriptions",
                "Subscriptions the ACL file refused.",
                &self.acl_denied_subscriptions,
            ),
            (
                "weir_acl_denied_deliveries",
                "Messages not delivered to a subscriber the ACL file does not let read their topic.",
                &self.acl_denied_deliveries,
            ),
        ]
    }
}

/// The broker's per-packet totals and its per-client drops, written at each scrape.
impl Collector for Stats {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        for (name, help, gauge) in self.gauges() {
            write_family(
                &mut encoder,
                name,
                help,
                MetricType::Gauge,
                [(NO_LABELS, gauge.get())],
            )?;
        }
        for (name, help, counter) in self.counters() {
            let total = [(NO_LABELS, counter.get())];
            write_family(&mut encoder, name, help, MetricType::Counter, total)?;
        }
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let series = clients
            .counters
            .iter()
            .map(|(client, (_, counter))| ([("client", client.as_str())], counter.load(Relaxed)));
        write_family(
            &mut encoder,
            "weir_client_dropped",
            "Messages dropped, per client.",
            MetricType::Counter,
            series,
        )
    }
}
