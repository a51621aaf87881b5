//! A bridge's counters, and their families in the metrics registry (`weir_bridge_*`). Drops also count in the
//! broker's total (`weir_dropped_total`, `$SYS/broker/messages/dropped`).

use crate::stats::Stats;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use weir_model::metrics::{write_family, Collector, DescriptorEncoder, MetricType};

/// How a connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectResult {
    /// CONNACK accepted it.
    Success,
    /// CONNACK refused it (bad credentials, not authorised, ...).
    Refused,
    /// No CONNACK: the address, the socket or TLS failed.
    Failed,
}

impl ConnectResult {
    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            ConnectResult::Success => "success",
            ConnectResult::Refused => "refused",
            ConnectResult::Failed => "failed",
        }
    }
}

/// One bridge's counters.
#[derive(Debug)]
pub struct BridgeMetrics {
    name: String,
    broker: Arc<Stats>,
    connected: AtomicBool,
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
    expired: AtomicU64,
    connects: [AtomicU64; 3],
}

impl BridgeMetrics {
    /// Counters for bridge `name`, whose drops also count in `broker`'s.
    pub fn new(name: &str, broker: Arc<Stats>) -> BridgeMetrics {
        BridgeMetrics {
            name: name.to_string(),
            broker,
            connected: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            connects: Default::default(),
        }
    }

    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link is up or down.
    pub fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Relaxed);
    }

    /// Whether the link is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// `n` messages reached the remote (QoS 0 written, QoS 1 acknowledged, QoS 2 completed).
    pub fn count_sent(&self, n: u64) {
        self.sent.fetch_add(n, Relaxed);
    }

    /// Messages that reached the remote.
    pub fn sent(&self) -> u64 {
        self.sent.load(Relaxed)
    }

    /// A message came in from the remote.
    pub fn count_received(&self) {
        self.received.fetch_add(1, Relaxed);
    }

    /// Messages that came in from the remote.
    pub fn received(&self) -> u64 {
        self.received.load(Relaxed)
    }

    /// `n` messages were dropped.
    pub fn count_dropped(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Relaxed);
            self.broker.dropped.inc_by(n);
        }
    }

    /// Messages dropped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// A message expired in the queue (also a drop).
    pub fn count_expired(&self) {
        self.expired.fetch_add(1, Relaxed);
        self.count_dropped(1);
    }

    /// A connection attempt ended so.
    pub fn count_connect(&self, result: ConnectResult) {
        self.connects[result as usize].fetch_add(1, Relaxed);
    }

    /// Connection attempts that ended so.
    pub fn connects(&self, result: ConnectResult) -> u64 {
        self.connects[result as usize].load(Relaxed)
    }
}

/// A bridge's figures at one moment, for its metrics.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its counters.
    pub metrics: Arc<BridgeMetrics>,
    /// Messages queued (on disk and QoS 0 in memory).
    pub queued_messages: u64,
    /// Bytes queued on disk.
    pub queued_bytes: u64,
    /// Age of the oldest queued message, in seconds.
    pub oldest_queued_seconds: f64,
}

/// Writes every bridge's `weir_bridge_*` families (none without bridges).
pub fn encode(bridges: &[Snapshot], encoder: &mut DescriptorEncoder) -> fmt::Result {
    if bridges.is_empty() {
        return Ok(());
    }
    let labels = |b: &Snapshot| [("bridge", b.metrics.name().to_string())];
    type Count = fn(&Snapshot) -> u64;
    let counts: [(&str, &str, MetricType, Count); 7] = [
        ("weir_bridge_connected", "Whether the bridge's link to its remote is up (1) or down (0).", MetricType::Gauge, |b| u64::from(b.metrics.connected())),
        ("weir_bridge_queued_messages", "Messages waiting to go to the remote (QoS 1/2 on disk, QoS 0 in memory).", MetricType::Gauge, |b| b.queued_messages),
        ("weir_bridge_queued_bytes", "Bytes of the bridge's queue on disk.", MetricType::Gauge, |b| b.queued_bytes),
        ("weir_bridge_sent", "Messages the remote took (QoS 0 written, QoS 1 acknowledged, QoS 2 completed).", MetricType::Counter, |b| b.metrics.sent()),
        ("weir_bridge_received", "Messages that came in from the remote.", MetricType::Counter, |b| b.metrics.received()),
        ("weir_bridge_dropped", "Messages for the remote dropped: oldest out of a full queue, QoS 0 while the link was down, expired, or refused by the remote.", MetricType::Counter, |b| b.metrics.dropped()),
        ("weir_bridge_expired", "Messages whose message expiry interval passed while queued (also counted as dropped).", MetricType::Counter, |b| b.metrics.expired.load(Relaxed)),
    ];
    for (name, help, kind, read) in counts {
        let series = bridges.iter().map(|b| (labels(b), read(b)));
        write_family(encoder, name, help, kind, series)?;
    }
    let oldest = bridges.iter().map(|b| (labels(b), b.oldest_queued_seconds));
    write_family(
        encoder,
        "weir_bridge_oldest_queued_seconds",
        "Age of the oldest message waiting to go to the remote (0: none).",
        MetricType::Gauge,
        oldest,
    )?;
    let results = [
        ConnectResult::Success,
        ConnectResult::Refused,
        ConnectResult::Failed,
    ];
    let connects = bridges.iter().flat_map(|b| {
        results.map(|result| {
            let labels = [("bridge", b.metrics.name()), ("result", result.label())];
            (labels, b.metrics.connects(result))
        })
    });
    write_family(
        encoder,
        "weir_bridge_connects",
        "Connection attempts to the remote, by how they ended.",
        MetricType::Counter,
        connects,
    )
}

/// The bridges' families, written from their figures on each scrape.
pub(super) struct BridgesCollector(pub(super) Arc<super::Bridges>);

impl fmt::Debug for BridgesCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BridgesCollector")
    }
}

impl Collector for BridgesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        encode(&self.0.snapshots(), &mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Snapshots(Vec<Snapshot>);

    impl weir_model::metrics::Collector for Snapshots {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            super::encode(&self.0, &mut encoder)
        }
    }

    fn registry_of(bridges: Vec<Snapshot>) -> weir_model::metrics::Registry {
        let mut registry = weir_model::metrics::Registry::default();
        registry.register_collector(Box::new(Snapshots(bridges)));
        registry
    }

    #[test]
    fn every_family_names_its_bridge() {
        let metrics = Arc::new(BridgeMetrics::new("cloud", Arc::new(Stats::default())));
        metrics.set_connected(true);
        metrics.count_sent(3);
        metrics.count_dropped(2);
        metrics.count_connect(ConnectResult::Refused);
        let snapshot = Snapshot {
            metrics: metrics.clone(),
            queued_messages: 5,
            queued_bytes: 500,
            oldest_queued_seconds: 1.5,
        };
        let text = weir_model::metrics::text(&registry_of(vec![snapshot]));
        for line in [
            "weir_bridge_connected{bridge=\"cloud\"} 1",
            "weir_bridge_queued_messages{bridge=\"cloud\"} 5",
            "weir_bridge_oldest_queued_seconds{bridge=\"cloud\"} 1.5",
            "weir_bridge_sent_total{bridge=\"cloud\"} 3",
            "weir_bridge_dropped_total{bridge=\"cloud\"} 2",
            "weir_bridge_connects_total{bridge=\"cloud\",result=\"refused\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
        assert_eq!(metrics.broker.dropped.get(), 2);
    }
}
