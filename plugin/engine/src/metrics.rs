//! Counters of a running graph, per node and per graph, and their families in the metrics
//! registry.
//!
//! Every counter is a relaxed atomic: updating one on the per-message path costs an
//! uncontended `fetch_add`, and a scrape reads them without stopping the workers.

use super::circuit::{Circuit, CircuitConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use weir_model::metrics::{
    metric_name, write_family, write_histograms, DescriptorEncoder, HistogramSeries, MetricType,
};
use weir_wasm::metrics::{Labels, Metric, NodeMetrics, Summary};

/// Upper bounds of the call latency histogram's buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 1.0,
];

/// A latency histogram with fixed buckets ([`LATENCY_BUCKETS`]).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// Counters of one node (shared by its instances on every worker).
#[derive(Debug)]
pub struct NodeCounters {
    /// The node's name.
    pub name: String,
    /// Its operation type (`map`, `filter`, ...).
    pub kind: &'static str,
    /// Items that reached the node.
    pub input: AtomicU64,
    /// Items it emitted.
    pub output: AtomicU64,
    /// Items its module failed on (`err` or a trap); each went to the dead-letter topic.
    pub errors: AtomicU64,
    /// Calls that trapped or broke a limit (a subset of `errors`).
    pub traps: AtomicU64,
    /// Items a branch sent to an arm that leads nowhere (dropped).
    pub unrouted: AtomicU64,
    /// Items dead-lettered unprocessed because the node's circuit was open.
    pub rejected: AtomicU64,
    /// Times the node's circuit opened.
    pub circuit_opened: AtomicU64,
    /// The node's circuit breaker.
    pub circuit: Circuit,
    /// Duration of each module call.
    pub latency: Histogram,
    /// The metrics its module defined through the `metrics` host API.
    pub module_metrics: Arc<NodeMetrics>,
}

impl NodeCounters {
    /// Zeroed counters for node `name` of type `kind`, with a closed circuit breaker.
    pub fn new(name: &str, kind: &'static str, circuit: CircuitConfig) -> NodeCounters {
        NodeCounters {
            name: name.to_string(),
            kind,
            input: AtomicU64::new(0),
            output: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            unrouted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            circuit_opened: AtomicU64::new(0),
            circuit: Circuit::new(circuit),
            latency: Histogram::default(),
            module_metrics: Arc::new(NodeMetrics::default()),
        }
    }
}

impl NodeCounters {
    /// Whether the node calls a module (so has a circuit to speak of).
    pub fn runs_a_module(&self) -> bool {
        !matches!(self.kind, "source" | "sink" | "concatenate")
    }
}

/// Counters of one graph.
#[derive(Debug)]
pub struct GraphMetrics {
    /// The graph's name (as bound in the configuration).
    pub graph: String,
    /// One entry per node, in definition order.
    pub nodes: Vec<NodeCounters>,
    /// Messages accepted into the graph's input queues.
    pub received: AtomicU64,
    /// Messages dropped because the input queue was full (back-pressure `drop`).
    pub dropped: AtomicU64,
    /// Messages older than the frontier, stamped up to it.
    pub late: AtomicU64,
    /// Messages whose `__ts` was not valid (stamped from the clock instead).
    pub invalid_timestamps: AtomicU64,
    /// Results that left the graph's sink.
    pub results: AtomicU64,
    /// Items sent to the dead-letter destination.
    pub dead_letters: AtomicU64,
    /// Items lost after the graph accepted them (an output could not be delivered).
    pub lost: AtomicU64,
    /// The input queues of the graph's open inputs (read when metrics are scraped).
    pub(crate) queues: std::sync::Mutex<Vec<crossbeam_channel::Receiver<super::item::Item>>>,
}

impl GraphMetrics {
    pub(crate) fn new(graph: &str, nodes: Vec<NodeCounters>) -> GraphMetrics {
        GraphMetrics {
            graph: graph.to_string(),
            nodes,
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            late: AtomicU64::new(0),
            invalid_timestamps: AtomicU64::new(0),
            results: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            queues: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Messages waiting in the graph's input queues now.
    pub fn queue_depth(&self) -> usize {
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues.iter().map(|queue| queue.len()).sum()
    }

    /// Counts `queues` in [`GraphMetrics::queue_depth`].
    pub(crate) fn add_queues(&self, queues: &[crossbeam_channel::Receiver<super::item::Item>]) {
        let mut held = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        held.extend(queues.iter().cloned());
    }

    /// Stops counting `queues` (their input was closed).
    pub(crate) fn remove_queues(&self, queues: &[crossbeam_channel::Receiver<super::item::Item>]) {
        let mut held = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        held.retain(|queue| !queues.iter().any(|gone| gone.same_channel(queue)));
    }

    /// The counters of node `name`.
    pub fn node(&self, name: &str) -> Option<&NodeCounters> {
        self.nodes.iter().find(|node| node.name == name)
    }

    /// A one-line summary for logs.
    pub fn summary(&self) -> String {
        let errors: u64 = self.nodes.iter().map(|n| n.errors.load(Relaxed)).sum();
        format!(
            "received {}, results {}, errors {errors}, dead letters {}, dropped {}, late {}, queued {}",
            self.received.load(Relaxed),
            self.results.load(Relaxed),
            self.dead_letters.load(Relaxed),
            self.dropped.load(Relaxed),
            self.late.load(Relaxed),
            self.queue_depth()
        )
    }
}

/// A counter's name, help text and how to read it.
type Counter<T> = (&'static str, &'static str, fn(&T) -> u64);

const GRAPH_COUNTERS: [Counter<GraphMetrics>; 7] = [
    ("received", "Messages accepted into the graph.", |g| {
        g.received.load(Relaxed)
    }),
    (
        "dropped",
        "Messages dropped because the input queue was full.",
        |g| g.dropped.load(Relaxed),
    ),
    (
        "late",
        "Messages older than the frontier, stamped up to it.",
        |g| g.late.load(Relaxed),
    ),
    (
        "invalid_timestamps",
        "Messages with an invalid __ts.",
        |g| g.invalid_timestamps.load(Relaxed),
    ),
    ("results", "Results published by the graph's sink.", |g| {
        g.results.load(Relaxed)
    }),
    (
        "dead_letters",
        "Items sent to the dead-letter destination.",
        |g| g.dead_letters.load(Relaxed),
    ),
    ("lost", "Accepted items that could not be delivered.", |g| {
        g.lost.load(Relaxed)
    }),
];

const NODE_COUNTERS: [Counter<NodeCounters>; 7] = [
    ("input", "Items that reached the node.", |n| {
        n.input.load(Relaxed)
    }),
    ("output", "Items the node emitted.", |n| {
        n.output.load(Relaxed)
    }),
    ("errors", "Items the node's module failed on.", |n| {
        n.errors.load(Relaxed)
    }),
    (
        "traps",
        "Module calls that trapped or broke a limit.",
        |n| n.traps.load(Relaxed),
    ),
    ("unrouted", "Items a branch sent to an unwired arm.", |n| {
        n.unrouted.load(Relaxed)
    }),
    (
        "rejected",
        "Items dead-lettered unprocessed while the node's circuit was open.",
        |n| n.rejected.load(Relaxed),
    ),
    ("circuit_opened", "Times the node's circuit opened.", |n| {
        n.circuit_opened.load(Relaxed)
    }),
];

/// Writes `graphs`' counters, their nodes' and their modules' own metrics, from the registry's
/// collector of running graphs.
///
/// ```
/// use weir_engine::metrics::{encode, GraphMetrics};
/// use weir_model::metrics::{text, Collector, DescriptorEncoder, Registry};
///
/// #[derive(Debug)]
/// struct NoGraphs;
///
/// impl Collector for NoGraphs {
///     fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
///         encode(&[], &mut encoder)
///     }
/// }
///
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(NoGraphs));
/// assert!(text(&registry).contains("# TYPE weir_graph_received_total counter"));
/// ```
pub fn encode(graphs: &[Arc<GraphMetrics>], encoder: &mut DescriptorEncoder) -> fmt::Result {
    for (name, help, read) in GRAPH_COUNTERS {
        let series = graphs
            .iter()
            .map(|g| ([("graph", g.graph.as_str())], read(g)));
        write_family(
            encoder,
            &format!("weir_graph_{name}"),
            help,
            MetricType::Counter,
            series,
        )?;
    }
    let depths = graphs
        .iter()
        .map(|g| ([("graph", g.graph.as_str())], g.queue_depth() as u64));
    write_family(
        encoder,
        "weir_graph_queue_depth",
        "Messages waiting in the graph's input queues.",
        MetricType::Gauge,
        depths,
    )?;
    for (name, help, read) in NODE_COUNTERS {
        let series = nodes(graphs).map(|(graph, node)| (node_labels(graph, node), read(node)));
        write_family(
            encoder,
            &format!("weir_node_{name}"),
            help,
            MetricType::Counter,
            series,
        )?;
    }
    let states = nodes(graphs)
        .filter(|(_, node)| node.runs_a_module())
        .map(|(graph, node)| (node_labels(graph, node), node.circuit.state() as u64));
    write_family(
        encoder,
        "weir_node_circuit_state",
        "The node's circuit: 0 closed, 1 open, 2 half-open.",
        MetricType::Gauge,
        states,
    )?;
    encode_call_latency(graphs, encoder)?;
    encode_module_metrics(graphs, encoder)
}

/// Every graph's nodes, with the graph's name.
fn nodes(graphs: &[Arc<GraphMetrics>]) -> impl Iterator<Item = (&str, &NodeCounters)> {
    graphs
        .iter()
        .flat_map(|g| g.nodes.iter().map(|node| (g.graph.as_str(), node)))
}

/// A node's `graph` and `node` labels.
fn node_labels<'a>(graph: &'a str, node: &'a NodeCounters) -> [(&'static str, &'a str); 2] {
    [("graph", graph), ("node", node.name.as_str())]
}

fn encode_call_latency(
    graphs: &[Arc<GraphMetrics>],
    encoder: &mut DescriptorEncoder,
) -> fmt::Result {
    type Buckets = [(f64, u64); LATENCY_BUCKETS.len()];
    let buckets: Vec<(&str, &NodeCounters, Buckets)> = nodes(graphs)
        .filter(|(_, node)| node.latency.count() > 0)
        .map(|(graph, node)| {
            let counts = &node.latency.buckets;
            (
                graph,
                node,
                std::array::from_fn(|i| (LATENCY_BUCKETS[i], counts[i].load(Relaxed))),
            )
        })
        .collect();
    let series = buckets
        .iter()
        .map(|(graph, node, buckets)| HistogramSeries {
            labels: node_labels(graph, node),
            buckets,
            sum: node.latency.sum_nanos.load(Relaxed) as f64 / 1e9,
            count: node.latency.count(),
        });
    write_histograms(
        encoder,
        "weir_node_call_seconds",
        "Duration of module calls.",
        series,
    )
}

/// The metrics modules defined through the `metrics` host API, as `weir_module_<name>`, each
/// family once with the series of every node that defines it: counters under their own name
/// (untyped, as modules name them), histograms as a `_sum`, a `_count` and the `+Inf` bucket.
fn encode_module_metrics(
    graphs: &[Arc<GraphMetrics>],
    encoder: &mut DescriptorEncoder,
) -> fmt::Result {
    type Series = Vec<(String, String)>;
    let mut counters: BTreeMap<String, Vec<(Series, u64)>> = BTreeMap::new();
    let mut histograms: BTreeMap<String, Vec<(Series, Summary)>> = BTreeMap::new();
    for (graph, node) in nodes(graphs) {
        for (name, metric) in node.module_metrics.snapshot() {
            let name = format!("weir_module_{}", metric_name(&name));
            match metric {
                Metric::Counter(series) => counters.entry(name).or_default().extend(
                    series
                        .into_iter()
                        .map(|(own, value)| (module_labels(graph, node, &own), value)),
                ),
                Metric::Histogram(series) => histograms.entry(name).or_default().extend(
                    series
                        .into_iter()
                        .map(|(own, summary)| (module_labels(graph, node, &own), summary)),
                ),
            }
        }
    }
    let help = "A metric the node's module defined.";
    for (name, series) in counters {
        write_family(encoder, &name, help, MetricType::Unknown, series)?;
    }
    for (name, series) in histograms {
        let series = series.into_iter().map(|(labels, summary)| HistogramSeries {
            labels,
            buckets: &[],
            sum: summary.sum,
            count: summary.count,
        });
        write_histograms(encoder, &name, help, series)?;
    }
    Ok(())
}

/// Graph and node, then a module's own labels, their names made valid.
fn module_labels(graph: &str, node: &NodeCounters, own: &Labels) -> Vec<(String, String)> {
    [("graph", graph), ("node", node.name.as_str())]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .chain(
            own.iter()
                .map(|(key, value)| (metric_name(key), value.clone())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Graphs(Vec<Arc<GraphMetrics>>);

    impl weir_model::metrics::Collector for Graphs {
        fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
            super::encode(&self.0, &mut encoder)
        }
    }

    /// The Prometheus text of `graph`'s metrics.
    fn text_of(graph: GraphMetrics) -> String {
        let mut registry = weir_model::metrics::Registry::default();
        registry.register_collector(Box::new(Graphs(vec![Arc::new(graph)])));
        weir_model::metrics::text(&registry)
    }

    fn graph_with_one_map() -> GraphMetrics {
        let node = NodeCounters::new("map", "map", CircuitConfig::default());
        GraphMetrics::new("g", vec![node])
    }

    #[test]
    fn a_modules_own_metrics_carry_graph_node_and_its_labels() {
        let graph = graph_with_one_map();
        let module = &graph.nodes[0].module_metrics;
        let labels = vec![("unit-kind".to_string(), "°F \"x\"".to_string())];
        module.add_to_counter("rows.read", 3, labels).unwrap();
        module.record_to_histogram("lag", 0.5, Vec::new()).unwrap();
        module.record_to_histogram("lag", 1.5, Vec::new()).unwrap();
        let text = text_of(graph);
        let counter =
            "weir_module_rows_read{graph=\"g\",node=\"map\",unit_kind=\"°F \\\"x\\\"\"} 3\n";
        assert!(text.contains(counter), "{text}");
        assert!(text.contains("weir_module_lag_count{graph=\"g\",node=\"map\"} 2\n"));
        assert!(text.contains("weir_module_lag_sum{graph=\"g\",node=\"map\"} 2.0\n"));
    }

    #[test]
    fn call_latency_buckets_are_cumulative_and_end_at_the_count() {
        let graph = graph_with_one_map();
        let latency = &graph.nodes[0].latency;
        latency.record(Duration::from_micros(20));
        latency.record(Duration::from_millis(3));
        let text = text_of(graph);
        let bucket = |le: &str| {
            format!("weir_node_call_seconds_bucket{{graph=\"g\",node=\"map\",le=\"{le}\"}}")
        };
        assert!(text.contains(&format!("{} 0\n", bucket("1e-05"))), "{text}");
        assert!(text.contains(&format!("{} 1\n", bucket("5e-05"))));
        assert!(text.contains(&format!("{} 2\n", bucket("0.005"))));
        assert!(text.contains(&format!("{} 2\n", bucket("+Inf"))));
        assert!(text.contains("weir_node_call_seconds_count{graph=\"g\",node=\"map\"} 2\n"));
    }
}
