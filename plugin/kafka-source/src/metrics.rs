//! A Kafka source's counters, on /metrics and in the graph's status.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use weir_model::metrics::{write_family, DescriptorEncoder, MetricType};

/// The counters of one graph's Kafka source.
#[derive(Debug, Default)]
pub struct KafkaSourceMetrics {
    /// The graph.
    pub graph: String,
    /// Records read (given to the graph or dead-lettered).
    pub records: AtomicU64,
    /// Records that could not become messages.
    pub dead_letters: AtomicU64,
    /// Offset commits that succeeded.
    pub commits: AtomicU64,
    /// Offset commits that failed (retried at the next interval).
    pub commit_failures: AtomicU64,
    /// Rebalances this instance took part in (partitions assigned or revoked).
    pub rebalances: AtomicU64,
    /// Records read again after a rebalance: those before the highest offset this instance
    /// had read of a partition it was given again.
    pub replayed: AtomicU64,
    /// Whether the group has given this instance its partitions yet (false while its
    /// brokers cannot be reached).
    pub joined: AtomicBool,
    /// The partitions owned now, and each one's lag (records behind its end, when known).
    partitions: Mutex<BTreeMap<(String, i32), Option<i64>>>,
}

impl KafkaSourceMetrics {
    /// Counters for `graph`'s source.
    pub fn new(graph: &str) -> KafkaSourceMetrics {
        KafkaSourceMetrics {
            graph: graph.to_string(),
            ..KafkaSourceMetrics::default()
        }
    }

    /// The partitions owned now, with their lag.
    pub fn partitions(&self) -> BTreeMap<(String, i32), Option<i64>> {
        self.partitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_partitions(&self, now: BTreeMap<(String, i32), Option<i64>>) {
        *self.partitions.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Records read, for the graph's status line.
    pub fn summary(&self) -> String {
        format!(
            "kafka: {} partitions, {} records, {} commits, {} rebalances",
            self.partitions().len(),
            self.records.load(Relaxed),
            self.commits.load(Relaxed),
            self.rebalances.load(Relaxed)
        )
    }
}

type Counter = (&'static str, &'static str, fn(&KafkaSourceMetrics) -> u64);

const COUNTERS: &[Counter] = &[
    ("records", "Records a Kafka source read.", |m| {
        m.records.load(Relaxed)
    }),
    (
        "dead_letters",
        "Records a Kafka source could not make messages of.",
        |m| m.dead_letters.load(Relaxed),
    ),
    ("commits", "Offset commits a Kafka source made.", |m| {
        m.commits.load(Relaxed)
    }),
    ("commit_failures", "Offset commits that failed.", |m| {
        m.commit_failures.load(Relaxed)
    }),
    (
        "rebalances",
        "Rebalances a Kafka source took part in.",
        |m| m.rebalances.load(Relaxed),
    ),
    (
        "replayed_records",
        "Records read again after a partition came back to this instance.",
        |m| m.replayed.load(Relaxed),
    ),
];

/// Writes the `weir_kafka_source_*` families of `sources`.
pub fn encode(sources: &[Arc<KafkaSourceMetrics>], encoder: &mut DescriptorEncoder) -> fmt::Result {
    for (name, help, read) in COUNTERS {
        let series = sources
            .iter()
            .map(|s| ([("graph", s.graph.as_str())], read(s)));
        write_family(
            encoder,
            &format!("weir_kafka_source_{name}"),
            help,
            MetricType::Counter,
            series,
        )?;
    }
    let owned = sources
        .iter()
        .map(|s| ([("graph", s.graph.as_str())], s.partitions().len() as u64));
    write_family(
        encoder,
        "weir_kafka_source_partitions",
        "Partitions a Kafka source owns now.",
        MetricType::Gauge,
        owned,
    )?;
    let lags: Vec<_> = sources
        .iter()
        .flat_map(|s| {
            s.partitions()
                .into_iter()
                .filter_map(|((topic, partition), lag)| {
                    let labels = [
                        ("graph", s.graph.clone()),
                        ("topic", topic),
                        ("partition", partition.to_string()),
                    ];
                    Some((labels, u64::try_from(lag?).unwrap_or(0)))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    write_family(
        encoder,
        "weir_kafka_source_lag",
        "Records behind a partition's end.",
        MetricType::Gauge,
        lags,
    )
}
