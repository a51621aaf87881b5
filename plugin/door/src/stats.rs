//! The door's counters: what `$SYS/broker/...` publishes and `/metrics` serves, registered
//! once each in Weir's metrics registry ([`Stats::register`]).
//!
//! Totals are prometheus-client counters and gauges (relaxed atomics) bumped on the
//! per-packet path. Drops are also counted per client (`weir_client_dropped_total{client=
//! "..."}`): each client's counter is made on its first drop and kept after it disconnects, so
//! a scrape shows who lost what.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weir_model::metrics::{
    write_family, Collector, CountGauge, Counter, DescriptorEncoder, MetricType, Registry,
};

/// How many clients' drop counters are kept (the oldest go first).
const CLIENT_COUNTERS: usize = 10_000;

/// The broker's counters.
#[derive(Debug)]
pub struct Stats {
    /// When the broker started.
    pub started: Instant,
    /// Clients connected now.
    pub clients_connected: CountGauge,
    /// Persistent sessions whose client is away, kept by the session registry as sessions
    /// park, resume and expire.
    pub sessions_offline: CountGauge,
    /// MQTT packets received.
    pub packets_received: Counter,
    /// MQTT packets sent.
    pub packets_sent: Counter,
    /// Bytes received from clients.
    pub bytes_received: Counter,
    /// Bytes sent to clients.
    pub bytes_sent: Counter,
    /// PUBLISH packets received from clients.
    pub publishes_received: Counter,
    /// PUBLISH packets sent to clients.
    pub publishes_sent: Counter,
    /// Subscriptions held by all sessions.
    pub subscriptions: CountGauge,
    /// Retained messages held.
    pub retained: CountGauge,
    /// Messages dropped, in total.
    pub dropped: Counter,
    /// Publishes refused (to a `$` topic, or invalid).
    pub refused: Counter,
    /// Messages not delivered to a client because their message expiry interval passed.
    pub expired: Counter,
    /// Publishes the ACL refused.
    pub acl_denied_publishes: Counter,
    /// Subscriptions the ACL refused.
    pub acl_denied_subscriptions: Counter,
    /// Deliveries the ACL refused (a topic the subscriber may not read).
    pub acl_denied_deliveries: Counter,
    /// What the saves to the store (`broker.persistence`) wrote.
    pub store: StoreStats,
    clients: Arc<Mutex<ClientDrops>>,
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
            clients_connected: CountGauge::default(),
            sessions_offline: CountGauge::default(),
            packets_received: Counter::default(),
            packets_sent: Counter::default(),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
            publishes_received: Counter::default(),
            publishes_sent: Counter::default(),
            subscriptions: CountGauge::default(),
            retained: CountGauge::default(),
            dropped: Counter::default(),
            refused: Counter::default(),
            expired: Counter::default(),
            acl_denied_publishes: Counter::default(),
            acl_denied_subscriptions: Counter::default(),
            acl_denied_deliveries: Counter::default(),
            store: StoreStats::default(),
            clients: Arc::default(),
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

    /// Registers every counter in `registry`, each with its name and help text.
    ///
    /// ```
    /// use weir_door::stats::Stats;
    /// use weir_model::metrics::{text, Registry};
    ///
    /// let stats = Stats::default();
    /// let mut registry = Registry::default();
    /// stats.register(&mut registry);
    /// let counter = stats.client_drops("sensor-1");
    /// stats.count_dropped(&counter, 3);
    /// let text = text(&registry);
    /// assert!(text.contains("weir_dropped_total 3\n"));
    /// assert!(text.contains("weir_client_dropped_total{client=\"sensor-1\"} 3\n"));
    /// ```
    pub fn register(&self, registry: &mut Registry) {
        let gauges = [
            (
                "clients_connected",
                "Clients connected now",
                &self.clients_connected,
            ),
            (
                "sessions_offline",
                "Persistent sessions whose client is away",
                &self.sessions_offline,
            ),
            (
                "subscriptions",
                "Subscriptions held by all sessions",
                &self.subscriptions,
            ),
            (
                "retained_messages",
                "Retained messages held",
                &self.retained,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(format!("weir_{name}"), help, gauge.clone());
        }
        for (name, help, counter) in self.counters() {
            registry.register(format!("weir_{name}"), help, counter.clone());
        }
        self.store.register(registry);
        registry.register_collector(Box::new(ClientDropsCollector(self.clients.clone())));
    }

    /// Name (without `_total`), help and counter of each total.
    fn counters(&self) -> [(&'static str, &'static str, &Counter); 12] {
        [
            ("packets_received", "MQTT packets received", &self.packets_received),
            ("packets_sent", "MQTT packets sent", &self.packets_sent),
            ("bytes_received", "Bytes received from clients", &self.bytes_received),
            ("bytes_sent", "Bytes sent to clients", &self.bytes_sent),
            ("publishes_received", "PUBLISH packets received from clients", &self.publishes_received),
            ("publishes_sent", "PUBLISH packets sent to clients", &self.publishes_sent),
            (
                "dropped",
                "Messages dropped for a client (queue full, session ended or expired, QoS 0 for an offline session, too large for the client, or the router's log overrun)",
                &self.dropped,
            ),
            ("refused", "Publishes refused (a `$` topic or an invalid one)", &self.refused),
            (
                "expired",
                "Messages not delivered to a client because their message expiry interval passed",
                &self.expired,
            ),
            ("acl_denied_publishes", "Publishes the ACL file refused", &self.acl_denied_publishes),
            (
                "acl_denied_subscriptions",
                "Subscriptions the ACL file refused",
                &self.acl_denied_subscriptions,
            ),
            (
                "acl_denied_deliveries",
                "Messages not delivered to a subscriber the ACL file does not let read their topic",
                &self.acl_denied_deliveries,
            ),
        ]
    }
}

/// `weir_client_dropped_total{client}`, written from the clients' counters on each scrape.
#[derive(Debug)]
struct ClientDropsCollector(Arc<Mutex<ClientDrops>>);

impl Collector for ClientDropsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let clients = self.0.lock().unwrap_or_else(|e| e.into_inner());
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
