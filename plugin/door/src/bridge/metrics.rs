//! A bridge's counters, and their Prometheus text (`weir_bridge_*`). Drops also count in the
//! broker's total (`weir_dropped_total`, `$SYS/broker/messages/dropped`).

use crate::stats::Stats;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use weir_model::prometheus::{Exposition, Kind};

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
            self.broker.dropped.fetch_add(n, Relaxed);
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

/// A bridge's figures at one moment, for the Prometheus text.
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

/// Writes every bridge's `weir_bridge_*` families.
pub fn write_prometheus(bridges: &[Snapshot], text: &mut Exposition) {
    if bridges.is_empty() {
        return;
    }
    let gauge =
        |text: &mut Exposition, name: &str, help: &str, value: &dyn Fn(&Snapshot) -> f64| {
            text.family(name, Kind::Gauge, help);
            for bridge in bridges {
                text.sample(name, &[("bridge", bridge.metrics.name())], value(bridge));
            }
        };
    gauge(
        text,
        "weir_bridge_connected",
        "Whether the bridge's link to its remote is up (1) or down (0).",
        &|b| f64::from(u8::from(b.metrics.connected())),
    );
    gauge(
        text,
        "weir_bridge_queued_messages",
        "Messages waiting to go to the remote (QoS 1/2 on disk, QoS 0 in memory).",
        &|b| b.queued_messages as f64,
    );
    gauge(
        text,
        "weir_bridge_queued_bytes",
        "Bytes of the bridge's queue on disk.",
        &|b| b.queued_bytes as f64,
    );
    gauge(
        text,
        "weir_bridge_oldest_queued_seconds",
        "Age of the oldest message waiting to go to the remote (0: none).",
        &|b| b.oldest_queued_seconds,
    );
    let counter =
        |text: &mut Exposition, name: &str, help: &str, value: &dyn Fn(&BridgeMetrics) -> u64| {
            text.family(name, Kind::Counter, help);
            for bridge in bridges {
                text.sample(
                    name,
                    &[("bridge", bridge.metrics.name())],
                    value(&bridge.metrics),
                );
            }
        };
    counter(
        text,
        "weir_bridge_sent_total",
        "Messages the remote took (QoS 0 written, QoS 1 acknowledged, QoS 2 completed).",
        &|m| m.sent(),
    );
    counter(
        text,
        "weir_bridge_received_total",
        "Messages that came in from the remote.",
        &|m| m.received(),
    );
    counter(text, "weir_bridge_dropped_total", "Messages for the remote dropped: oldest out of a full queue, QoS 0 while the link was down, expired, or refused by the remote.", &|m| m.dropped());
    counter(
        text,
        "weir_bridge_expired_total",
        "Messages whose message expiry interval passed while queued (also counted as dropped).",
        &|m| m.expired.load(Relaxed),
    );
    let name = "weir_bridge_connects_total";
    text.family(
        name,
        Kind::Counter,
        "Connection attempts to the remote, by how they ended.",
    );
    for bridge in bridges {
        for result in [
            ConnectResult::Success,
            ConnectResult::Refused,
            ConnectResult::Failed,
        ] {
            let labels = [
                ("bridge", bridge.metrics.name()),
                ("result", result.label()),
            ];
            text.sample(name, &labels, bridge.metrics.connects(result));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_names_its_bridge() {
        let metrics = Arc::new(BridgeMetrics::new("cloud", Arc::new(Stats::default())));
        metrics.set_connected(true);
        metrics.count_sent(3);
        metrics.count_dropped(2);
        metrics.count_connect(ConnectResult::Refused);
        let mut text = Exposition::default();
        let snapshot = Snapshot {
            metrics: metrics.clone(),
            queued_messages: 5,
            queued_bytes: 500,
            oldest_queued_seconds: 1.5,
        };
        write_prometheus(&[snapshot], &mut text);
        let text = text.finish();
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
        assert_eq!(metrics.broker.dropped.load(Relaxed), 2);
    }
}
