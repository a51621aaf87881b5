//! Each graph's status, published as JSON on `$weir/status/<graph>` (the binding's name) and
//! kept there for new subscribers:
//!
//! ```json
//! {"graph": "g", "state": "running", "error": null,
//!  "nodes": [{"name": "m", "circuit": "closed", "failures": 0, "last_error": null,
//!             "in": 10, "out": 7, "errors": 3}]}
//! ```
//!
//! `state` is `running`, `waiting` (a graph reading a source outside the broker, a Kafka
//! source, that cannot reach it yet: it retries), `failed` (the graph could not start:
//! `error` says why, naming the node) or `stopped`; a running graph whose new version could
//! not replace it shows why in `error`. A graph reading Kafka adds its source's counters under
//! `source`. A report is published when the
//! graph's state changes, when a node's circuit changes state ([`StatusBoard::hook`]), and
//! otherwise at most every refresh interval when its counters moved.

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use weir_door::DoorHandle;
use weir_engine::{GraphMetrics, StatusHook};

/// The topic of graph `graph`'s status.
pub fn status_topic(graph: &str) -> String {
    format!("$weir/status/{graph}")
}

/// Where a graph stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GraphState {
    /// It processes messages.
    Running,
    /// It waits for its source outside the broker (its Kafka brokers), retrying.
    Waiting,
    /// It could not start (or could not be replaced); `error` says why.
    Failed,
    /// It was stopped (removed from the configuration, or the broker is stopping).
    Stopped,
}

/// What a graph's status shows of a source outside the broker (a Kafka source).
pub trait SourceStatus: Send + Sync {
    /// Whether the source has not reached its brokers yet (the graph is `waiting`).
    fn waiting(&self) -> bool;

    /// Its counters, under `source` in the report.
    fn report(&self) -> serde_json::Value;
}

#[derive(Serialize)]
struct Report<'a> {
    graph: &'a str,
    state: GraphState,
    error: Option<&'a str>,
    nodes: Vec<NodeReport<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct NodeReport<'a> {
    name: &'a str,
    circuit: &'static str,
    failures: u32,
    last_error: Option<String>,
    #[serde(rename = "in")]
    input: u64,
    out: u64,
    errors: u64,
}

struct Entry {
    state: GraphState,
    error: Option<String>,
    metrics: Option<Arc<GraphMetrics>>,
    source: Option<Arc<dyn SourceStatus>>,
}

impl Entry {
    fn render(&self, graph: &str) -> Bytes {
        let nodes = self.metrics.iter().flat_map(|metrics| {
            metrics
                .nodes
                .iter()
                .filter(|node| node.runs_a_module())
                .map(|node| NodeReport {
                    name: &node.name,
                    circuit: node.circuit.state().as_str(),
                    failures: node.circuit.failures(),
                    last_error: node.circuit.last_error(),
                    input: node.input.load(Relaxed),
                    out: node.output.load(Relaxed),
                    errors: node.errors.load(Relaxed),
                })
        });
        let waiting = self.source.as_ref().is_some_and(|source| source.waiting());
        let report = Report {
            graph,
            state: match self.state {
                GraphState::Running if waiting => GraphState::Waiting,
                state => state,
            },
            error: self.error.as_deref(),
            nodes: nodes.collect(),
            source: self.source.as_ref().map(|source| source.report()),
        };
        Bytes::from(serde_json::to_vec(&report).unwrap_or_default())
    }
}

struct Board {
    door: DoorHandle,
    graphs: Mutex<BTreeMap<String, Entry>>,
    wake: Sender<()>,
}

impl Board {
    fn publish(&self, only: Option<&str>) {
        let reports: Vec<(String, Bytes)> = {
            let graphs = self.graphs.lock().unwrap_or_else(|e| e.into_inner());
            graphs
                .iter()
                .filter(|(name, _)| only.is_none_or(|only| only == name.as_str()))
                .map(|(name, entry)| (status_topic(name), entry.render(name)))
                .collect()
        };
        for (topic, report) in reports {
            self.door.set_local(topic, report);
        }
    }
}

/// The status of every graph, published on `$weir/status/<graph>`.
#[derive(Clone)]
pub struct StatusBoard(Arc<Board>);

impl StatusBoard {
    /// A board publishing through `topics`, refreshing counters at most every `refresh`.
    pub fn start(door: DoorHandle, refresh: Duration) -> std::io::Result<StatusBoard> {
        let (wake, woken) = crossbeam_channel::bounded(1);
        let board = Arc::new(Board {
            door,
            graphs: Mutex::new(BTreeMap::new()),
            wake,
        });
        let weak = Arc::downgrade(&board);
        std::thread::Builder::new()
            .name("weir-status".into())
            .spawn(move || refresh_loop(weak, woken, refresh))?;
        Ok(StatusBoard(board))
    }

    fn set(
        &self,
        graph: &str,
        state: Option<GraphState>,
        error: Option<String>,
        metrics: Option<Arc<GraphMetrics>>,
    ) {
        {
            let mut graphs = self.0.graphs.lock().unwrap_or_else(|e| e.into_inner());
            let entry = graphs.entry(graph.to_string()).or_insert(Entry {
                state: GraphState::Failed,
                error: None,
                metrics: None,
                source: None,
            });
            if let Some(state) = state {
                entry.state = state;
            }
            entry.error = error;
            if metrics.is_some() {
                entry.metrics = metrics;
            }
        }
        self.0.publish(Some(graph));
    }

    /// Graph `graph` runs, with counters `metrics`.
    pub fn running(&self, graph: &str, metrics: Arc<GraphMetrics>) {
        self.set(graph, Some(GraphState::Running), None, Some(metrics));
    }

    /// Graph `graph`, which reads `source` (outside the broker), runs with counters
    /// `metrics`; it shows as `waiting` while `source` says so.
    pub fn running_with(
        &self,
        graph: &str,
        metrics: Arc<GraphMetrics>,
        source: Option<Arc<dyn SourceStatus>>,
    ) {
        {
            let mut graphs = self.0.graphs.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = graphs.get_mut(graph) {
                entry.source = source.clone();
            } else {
                graphs.insert(
                    graph.to_string(),
                    Entry {
                        state: GraphState::Running,
                        error: None,
                        metrics: None,
                        source,
                    },
                );
            }
        }
        self.running(graph, metrics);
    }

    /// Graph `graph` could not start because of `error`.
    pub fn failed(&self, graph: &str, error: String) {
        self.set(graph, Some(GraphState::Failed), Some(error), None);
    }

    /// A new version of graph `graph` could not replace the running one because of `error`:
    /// the report keeps its state (the old version runs on) and shows the error.
    pub fn not_replaced(&self, graph: &str, error: String) {
        self.set(graph, None, Some(error), None);
    }

    /// Graph `graph` was stopped.
    pub fn stopped(&self, graph: &str) {
        self.set(graph, Some(GraphState::Stopped), None, None);
    }

    /// A hook for the engine: publishes the reports soon after a node's circuit changes.
    pub fn hook(&self) -> StatusHook {
        let wake = self.0.wake.clone();
        StatusHook::new(move || {
            let _ = wake.try_send(());
        })
    }
}

fn refresh_loop(board: Weak<Board>, woken: Receiver<()>, refresh: Duration) {
    loop {
        if let Err(RecvTimeoutError::Disconnected) = woken.recv_timeout(refresh) {
            return;
        }
        match board.upgrade() {
            Some(board) => board.publish(None),
            None => return,
        }
    }
}
