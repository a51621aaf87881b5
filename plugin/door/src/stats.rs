//! The door's counters: what `$SYS/broker/...` publishes and `/metrics` serves.
//!
//! Totals are relaxed atomics bumped on the per-packet path. Drops are also counted per client
//! (`weir_client_dropped_total{client="..."}`): each client's counter is registered on its
//! first drop and kept after it disconnects, so a scrape shows who lost what.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use weir_model::prometheus::{Exposition, Kind};

/// How many clients' drop counters are kept (the oldest go first).
const CLIENT_COUNTERS: usize = 10_000;

/// The broker's counters.
#[derive(Debug)]
pub struct Stats {
    /// When the broker started.
    pub started: Instant,
    /// Clients connected now.
    pub clients_connected: AtomicU64,
    /// Persistent sessions whose client is away, kept by the session registry as sessions
    /// park, resume and expire.
    pub sessions_offline: Arc<AtomicU64>,
    /// MQTT packets received.
    pub packets_received: AtomicU64,
    /// MQTT packets sent.
    pub packets_sent: AtomicU64,
    /// Bytes received from clients.
    pub bytes_received: AtomicU64,
    /// Bytes sent to clients.
    pub bytes_sent: AtomicU64,
    /// PUBLISH packets received from clients.
    pub publishes_received: AtomicU64,
    /// PUBLISH packets sent to clients.
    pub publishes_sent: AtomicU64,
    /// Subscriptions held by all sessions.
    pub subscriptions: AtomicU64,
    /// Retained messages held.
    pub retained: AtomicU64,
    /// Messages dropped, in total.
    pub dropped: AtomicU64,
    /// Publishes refused (to a `$` topic, or invalid).
    pub refused: AtomicU64,
    /// Messages not delivered to a client because their message expiry interval passed.
    pub expired: AtomicU64,
    /// Publishes the ACL refused.
    pub acl_denied_publishes: AtomicU64,
    /// Subscriptions the ACL refused.
    pub acl_denied_subscriptions: AtomicU64,
    /// Deliveries the ACL refused (a topic the subscriber may not read).
    pub acl_denied_deliveries: AtomicU64,
    /// What the saves to the store (`broker.persistence`) wrote.
    pub store: StoreStats,
    clients: Mutex<ClientDrops>,
}

/// What the saves of retained messages and sessions to the store wrote: a test or an operator
/// can see a save happen without reading the log.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Saves that reached the disk: autosaves, and the last one at shutdown.
    pub saves: AtomicU64,
    /// Saves that failed (the error is in the log).
    pub save_errors: AtomicU64,
    /// Retained messages in the store, as the last save that changed them wrote them.
    pub retained: AtomicU64,
    /// Sessions in the store, as the last save wrote them.
    pub sessions: AtomicU64,
}

impl StoreStats {
    /// A save wrote `sessions` sessions and, if they had changed, `retained` retained messages.
    pub fn saved(&self, retained: Option<usize>, sessions: usize) {
        if let Some(retained) = retained {
            self.retained.store(retained as u64, Relaxed);
        }
        self.sessions.store(sessions as u64, Relaxed);
        self.saves.fetch_add(1, Relaxed);
    }

    fn write_prometheus(&self, out: &mut Exposition) {
        let metrics = [
            (
                "weir_store_saves_total",
                Kind::Counter,
                "Saves of retained messages and sessions that reached the disk (autosaves and the last one at shutdown).",
                &self.saves,
            ),
            (
                "weir_store_save_errors_total",
                Kind::Counter,
                "Saves to the store that failed; the error is in the log.",
                &self.save_errors,
            ),
            (
                "weir_store_retained",
                Kind::Gauge,
                "Retained messages in the store, as the last save that changed them wrote them.",
                &self.retained,
            ),
            (
                "weir_store_sessions",
                Kind::Gauge,
                "Persistent sessions in the store, as the last save wrote them.",
                &self.sessions,
            ),
        ];
        for (name, kind, help, value) in metrics {
            out.single(name, kind, help, value.load(Relaxed));
        }
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
            clients_connected: AtomicU64::new(0),
            sessions_offline: Arc::new(AtomicU64::new(0)),
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            publishes_received: AtomicU64::new(0),
            publishes_sent: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            retained: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            acl_denied_publishes: AtomicU64::new(0),
            acl_denied_subscriptions: AtomicU64::new(0),
            acl_denied_deliveries: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            store: StoreStats::default(),
            clients: Mutex::new(ClientDrops::default()),
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
        self.dropped.fetch_add(count, Relaxed);
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

    /// Name, kind, help and value of each total.
    fn totals(&self) -> [(&'static str, Kind, &'static str, &AtomicU64); 16] {
        [
            (
                "clients_connected",
                Kind::Gauge,
                "Clients connected now.",
                &self.clients_connected,
            ),
            (
                "sessions_offline",
                Kind::Gauge,
                "Persistent sessions whose client is away.",
                &self.sessions_offline,
            ),
            (
                "packets_received_total",
                Kind::Counter,
                "MQTT packets received.",
                &self.packets_received,
            ),
            (
                "packets_sent_total",
                Kind::Counter,
                "MQTT packets sent.",
                &self.packets_sent,
            ),
            (
                "bytes_received_total",
                Kind::Counter,
                "Bytes received from clients.",
                &self.bytes_received,
            ),
            (
                "bytes_sent_total",
                Kind::Counter,
                "Bytes sent to clients.",
                &self.bytes_sent,
            ),
            (
                "publishes_received_total",
                Kind::Counter,
                "PUBLISH packets received from clients.",
                &self.publishes_received,
            ),
            (
                "publishes_sent_total",
                Kind::Counter,
                "PUBLISH packets sent to clients.",
                &self.publishes_sent,
            ),
            (
                "subscriptions",
                Kind::Gauge,
                "Subscriptions held by all sessions.",
                &self.subscriptions,
            ),
            (
                "retained_messages",
                Kind::Gauge,
                "Retained messages held.",
                &self.retained,
            ),
            (
                "dropped_total",
                Kind::Counter,
                "Messages dropped for a client (queue full, session ended or expired, QoS 0 for an offline session, too large for the client, or the router's log overrun).",
                &self.dropped,
            ),
            (
                "refused_total",
                Kind::Counter,
                "Publishes refused (a `$` topic or an invalid one).",
                &self.refused,
            ),
            (
                "expired_total",
                Kind::Counter,
                "Messages not delivered to a client because their message expiry interval passed.",
                &self.expired,
            ),
            (
                "acl_denied_publishes_total",
                Kind::Counter,
                "Publishes the ACL file refused.",
                &self.acl_denied_publishes,
            ),
            (
                "acl_denied_subscriptions_total",
                Kind::Counter,
                "Subscriptions the ACL file refused.",
                &self.acl_denied_subscriptions,
            ),
            (
                "acl_denied_deliveries_total",
                Kind::Counter,
                "Messages not delivered to a subscriber the ACL file does not let read their topic.",
                &self.acl_denied_deliveries,
            ),
        ]
    }

    /// Writes the counters.
    ///
    /// ```
    /// use weir_door::stats::Stats;
    /// use weir_model::prometheus::Exposition;
    ///
    /// let stats = Stats::default();
    /// let counter = stats.client_drops("sensor-1");
    /// stats.count_dropped(&counter, 3);
    /// let mut text = Exposition::default();
    /// stats.write_prometheus(&mut text);
    /// let text = text.finish();
    /// assert!(text.contains("weir_dropped_total 3\n"));
    /// assert!(text.contains("weir_client_dropped_total{client=\"sensor-1\"} 3\n"));
    /// ```
    pub fn write_prometheus(&self, out: &mut Exposition) {
        for (name, kind, help, value) in self.totals() {
            out.single(&format!("weir_{name}"), kind, help, value.load(Relaxed));
        }
        self.store.write_prometheus(out);
        let name = "weir_client_dropped_total";
        out.family(name, Kind::Counter, "Messages dropped, per client.");
        let clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        for (client, (_, counter)) in &clients.counters {
            out.sample(name, &[("client", client.as_str())], counter.load(Relaxed));
        }
    }
}
