//! Counters of a running graph, per node and per graph, and their Prometheus text form.
//!
//! Every counter is a relaxed atomic: updating one on the per-message path costs an
//! uncontended `fetch_add`, and a scrape reads them without stopping the workers.

use super::circuit::{Circuit, CircuitConfig};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use weir_model::prometheus::{metric_name, Exposition, Kind};
use weir_wasm::metrics::{Labels, Metric, NodeMetrics};

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
    pub(crate) queues: Vec<crossbeam_channel::Receiver<super::item::Item>>,
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
            queues: Vec::new(),
        }
    }

    /// Messages waiting in the graph's input queues now.
    pub fn queue_depth(&self) -> usize {
        self.queues.iter().map(|queue| queue.len()).sum()
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

/// Writes `graphs`' counters, their nodes' and their modules' own metrics.
///
/// ```
/// use weir_engine::metrics::write_prometheus;
/// use weir_model::prometheus::Exposition;
///
/// let mut text = Exposition::default();
/// write_prometheus(&[], &mut text);
/// assert!(text.finish().contains("# TYPE weir_graph_received_total counter"));
/// ```
pub fn write_prometheus(graphs: &[Arc<GraphMetrics>], out: &mut Exposition) {
    for (name, help, read) in GRAPH_COUNTERS {
        let name = format!("weir_graph_{name}_total");
        out.family(&name, Kind::Counter, help);
        for graph in graphs {
            out.sample(&name, &[("graph", graph.graph.as_str())], read(graph));
        }
    }
    let name = "weir_graph_queue_depth";
    out.family(
        name,
        Kind::Gauge,
        "Messages waiting in the graph's input queues.",
    );
    for graph in graphs {
        out.sample(
            name,
            &[("graph", graph.graph.as_str())],
            graph.queue_depth(),
        );
    }
    for (name, help, read) in NODE_COUNTERS {
        let name = format!("weir_node_{name}_total");
        out.family(&name, Kind::Counter, help);
        for (graph, node) in nodes(graphs) {
            out.sample(
                &name,
                &[("graph", graph), ("node", node.name.as_str())],
                read(node),
            );
        }
    }
    let name = "weir_node_circuit_state";
    let help = "The node's circuit: 0 closed, 1 open, 2 half-open.";
    out.family(name, Kind::Gauge, help);
    for (graph, node) in nodes(graphs).filter(|(_, n)| n.runs_a_module()) {
        let state = node.circuit.state() as u8;
        out.sample(
            name,
            &[("graph", graph), ("node", node.name.as_str())],
            state,
        );
    }
    write_call_latency(graphs, out);
    write_module_metrics(graphs, out);
}

/// Every graph's nodes, with the graph's name.
fn nodes(graphs: &[Arc<GraphMetrics>]) -> impl Iterator<Item = (&str, &NodeCounters)> {
    graphs
        .iter()
        .flat_map(|g| g.nodes.iter().map(|node| (g.graph.as_str(), node)))
}

fn write_call_latency(graphs: &[Arc<GraphMetrics>], out: &mut Exposition) {
    let name = "weir_node_call_seconds";
    out.family(name, Kind::Histogram, "Duration of module calls.");
    for (graph, node) in nodes(graphs).filter(|(_, n)| n.latency.count() > 0) {
        let labels = [("graph", graph), ("node", node.name.as_str())];
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&node.latency.buckets) {
            cumulative += bucket.load(Relaxed);
            let bound = bound.to_string();
            let le = [labels[0], labels[1], ("le", &bound)];
            out.sample("weir_node_call_seconds_bucket", &le, cumulative);
        }
        let count = node.latency.count.load(Relaxed);
        let le = [labels[0], labels[1], ("le", "+Inf")];
        out.sample("weir_node_call_seconds_bucket", &le, count);
        let sum = node.latency.sum_nanos.load(Relaxed) as f64 / 1e9;
        out.sample("weir_node_call_seconds_sum", &labels, sum);
        out.sample("weir_node_call_seconds_count", &labels, count);
    }
}

/// The metrics modules defined through the `metrics` host API, as `weir_module_<name>`.
fn write_module_metrics(graphs: &[Arc<GraphMetrics>], out: &mut Exposition) {
    for (graph, node) in nodes(graphs) {
        for (name, metric) in node.module_metrics.snapshot() {
            let name = format!("weir_module_{}", metric_name(&name));
            match metric {
                Metric::Counter(series) => {
                    for (extra, value) in series {
                        let keys = label_names(&extra);
                        out.sample(&name, &module_labels(graph, node, &keys, &extra), value);
                    }
                }
                Metric::Histogram(series) => {
                    for (extra, summary) in series {
                        let keys = label_names(&extra);
                        let labels = module_labels(graph, node, &keys, &extra);
                        out.sample(&format!("{name}_count"), &labels, summary.count);
                        out.sample(&format!("{name}_sum"), &labels, summary.sum);
                    }
                }
            }
        }
    }
}

/// A module's label names, made valid.
fn label_names(labels: &Labels) -> Vec<String> {
    labels.iter().map(|(key, _)| metric_name(key)).collect()
}

/// Graph and node, then a module's labels (`names` from [`label_names`]).
fn module_labels<'a>(
    graph: &'a str,
    node: &'a NodeCounters,
    names: &'a [String],
    labels: &'a Labels,
) -> Vec<(&'a str, &'a str)> {
    let own = names
        .iter()
        .zip(labels)
        .map(|(k, (_, v))| (k.as_str(), v.as_str()));
    [("graph", graph), ("node", node.name.as_str())]
        .into_iter()
        .chain(own)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut text = Exposition::default();
        write_prometheus(&[Arc::new(graph)], &mut text);
        let text = text.finish();
        let counter =
            "weir_module_rows_read{graph=\"g\",node=\"map\",unit_kind=\"°F \\\"x\\\"\"} 3\n";
        assert!(text.contains(counter), "{text}");
        assert!(text.contains("weir_module_lag_count{graph=\"g\",node=\"map\"} 2\n"));
        assert!(text.contains("weir_module_lag_sum{graph=\"g\",node=\"map\"} 2\n"));
    }

    #[test]
    fn call_latency_buckets_are_cumulative_and_end_at_the_count() {
        let graph = graph_with_one_map();
        let latency = &graph.nodes[0].latency;
        latency.record(Duration::from_micros(20));
        latency.record(Duration::from_millis(3));
        let mut text = Exposition::default();
        write_prometheus(&[Arc::new(graph)], &mut text);
        let text = text.finish();
        let bucket = |le: &str| {
            format!("weir_node_call_seconds_bucket{{graph=\"g\",node=\"map\",le=\"{le}\"}}")
        };
        assert!(
            text.contains(&format!("{} 0\n", bucket("0.00001"))),
            "{text}"
        );
        assert!(text.contains(&format!("{} 1\n", bucket("0.00005"))));
        assert!(text.contains(&format!("{} 2\n", bucket("0.005"))));
        assert!(text.contains(&format!("{} 2\n", bucket("+Inf"))));
        assert!(text.contains("weir_node_call_seconds_count{graph=\"g\",node=\"map\"} 2\n"));
    }
}
