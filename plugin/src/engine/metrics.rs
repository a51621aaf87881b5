//! Counters of a running graph, per node and per graph, and their Prometheus text form.
//!
//! Every counter is a relaxed atomic: updating one on the per-message path costs an
//! uncontended `fetch_add`, and a scrape reads them without stopping the workers.

use super::circuit::{Circuit, CircuitConfig};
use crate::metrics::{Metric, NodeMetrics};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

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

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The Prometheus text exposition of `graphs`' counters.
///
/// ```
/// use weir_plugin::engine::metrics::render_prometheus;
/// let text = render_prometheus(&[]);
/// assert!(text.contains("# TYPE weir_graph_received_total counter"));
/// ```
pub fn render_prometheus(graphs: &[Arc<GraphMetrics>]) -> String {
    let mut out = String::new();
    let graph_counters: [Counter<GraphMetrics>; 7] = [
        ("received", "Messages accepted into the graph", |g| {
            g.received.load(Relaxed)
        }),
        (
            "dropped",
            "Messages dropped because the input queue was full",
            |g| g.dropped.load(Relaxed),
        ),
        (
            "late",
            "Messages older than the frontier, stamped up to it",
            |g| g.late.load(Relaxed),
        ),
        ("invalid_timestamps", "Messages with an invalid __ts", |g| {
            g.invalid_timestamps.load(Relaxed)
        }),
        ("results", "Results published by the graph's sink", |g| {
            g.results.load(Relaxed)
        }),
        (
            "dead_letters",
            "Items sent to the dead-letter destination",
            |g| g.dead_letters.load(Relaxed),
        ),
        ("lost", "Accepted items that could not be delivered", |g| {
            g.lost.load(Relaxed)
        }),
    ];
    for (name, help, read) in graph_counters {
        let _ = writeln!(out, "# HELP weir_graph_{name}_total {help}.");
        let _ = writeln!(out, "# TYPE weir_graph_{name}_total counter");
        for graph in graphs {
            let _ = writeln!(
                out,
                "weir_graph_{name}_total{{graph=\"{}\"}} {}",
                escape(&graph.graph),
                read(graph)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP weir_graph_queue_depth Messages waiting in the graph's input queues."
    );
    let _ = writeln!(out, "# TYPE weir_graph_queue_depth gauge");
    for graph in graphs {
        let _ = writeln!(
            out,
            "weir_graph_queue_depth{{graph=\"{}\"}} {}",
            escape(&graph.graph),
            graph.queue_depth()
        );
    }
    let node_counters: [Counter<NodeCounters>; 7] = [
        ("input", "Items that reached the node", |n| {
            n.input.load(Relaxed)
        }),
        ("output", "Items the node emitted", |n| {
            n.output.load(Relaxed)
        }),
        ("errors", "Items the node's module failed on", |n| {
            n.errors.load(Relaxed)
        }),
        ("traps", "Module calls that trapped or broke a limit", |n| {
            n.traps.load(Relaxed)
        }),
        ("unrouted", "Items a branch sent to an unwired arm", |n| {
            n.unrouted.load(Relaxed)
        }),
        (
            "rejected",
            "Items dead-lettered unprocessed while the node's circuit was open",
            |n| n.rejected.load(Relaxed),
        ),
        ("circuit_opened", "Times the node's circuit opened", |n| {
            n.circuit_opened.load(Relaxed)
        }),
    ];
    for (name, help, read) in node_counters {
        let _ = writeln!(out, "# HELP weir_node_{name}_total {help}.");
        let _ = writeln!(out, "# TYPE weir_node_{name}_total counter");
        for graph in graphs {
            for node in &graph.nodes {
                let _ = writeln!(
                    out,
                    "weir_node_{name}_total{{graph=\"{}\",node=\"{}\"}} {}",
                    escape(&graph.graph),
                    escape(&node.name),
                    read(node)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP weir_node_circuit_state The node's circuit: 0 closed, 1 open, 2 half-open."
    );
    let _ = writeln!(out, "# TYPE weir_node_circuit_state gauge");
    for graph in graphs {
        for node in graph.nodes.iter().filter(|n| n.runs_a_module()) {
            let _ = writeln!(
                out,
                "weir_node_circuit_state{{graph=\"{}\",node=\"{}\"}} {}",
                escape(&graph.graph),
                escape(&node.name),
                node.circuit.state() as u8
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP weir_node_call_seconds Duration of module calls."
    );
    let _ = writeln!(out, "# TYPE weir_node_call_seconds histogram");
    for graph in graphs {
        for node in graph.nodes.iter().filter(|n| n.latency.count() > 0) {
            let labels = format!(
                "graph=\"{}\",node=\"{}\"",
                escape(&graph.graph),
                escape(&node.name)
            );
            let mut cumulative = 0;
            for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&node.latency.buckets) {
                cumulative += bucket.load(Relaxed);
                let _ = writeln!(
                    out,
                    "weir_node_call_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = node.latency.count.load(Relaxed);
            let _ = writeln!(
                out,
                "weir_node_call_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = node.latency.sum_nanos.load(Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "weir_node_call_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "weir_node_call_seconds_count{{{labels}}} {count}");
        }
    }
    for graph in graphs {
        for node in &graph.nodes {
            for (name, metric) in node.module_metrics.snapshot() {
                let labels = format!(
                    "graph=\"{}\",node=\"{}\"",
                    escape(&graph.graph),
                    escape(&node.name)
                );
                let name = format!("weir_module_{}", metric_name(&name));
                let series_labels = |extra: &[(String, String)]| {
                    let mut all = labels.clone();
                    for (key, value) in extra {
                        let _ = write!(all, ",{}=\"{}\"", metric_name(key), escape(value));
                    }
                    all
                };
                match metric {
                    Metric::Counter(series) => {
                        for (extra, value) in series {
                            let _ = writeln!(out, "{name}{{{}}} {value}", series_labels(&extra));
                        }
                    }
                    Metric::Histogram(series) => {
                        for (extra, summary) in series {
                            let all = series_labels(&extra);
                            let _ = writeln!(out, "{name}_count{{{all}}} {}", summary.count);
                            let _ = writeln!(out, "{name}_sum{{{all}}} {}", summary.sum);
                        }
                    }
                }
            }
        }
    }
    out
}
