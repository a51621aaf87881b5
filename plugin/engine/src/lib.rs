//! The graph engine: each graph runs as a timely dataflow on its own worker threads.
//!
//! [`start`] builds one module instance per node per worker (running `init`, so a module that
//! refuses its configuration stops the graph from starting, naming the node), then starts the
//! workers. It returns the graph's [`Feeder`], which stamps messages and queues them (bounded,
//! with the graph's back-pressure policy), and a [`RunningGraph`] handle with its metrics.
//!
//! Time is event time: each item's dataflow time is its hybrid-logical-clock timestamp
//! ([`time`]). The feeder owns the input frontier; [`Feeder::advance_to`] moves it (with the
//! clock in the broker, with the input's timestamps offline), and windows (a delay then an
//! accumulate) close when it passes them. Results reach the [`Outputs`] from worker 0, ordered
//! by time, input position and content, so the same input gives the same output for any
//! number of workers.
//!
//! ```no_run
//! # fn demo(graph: weir_graph::Graph, modules: std::collections::HashMap<usize, std::sync::Arc<weir_wasm::OperatorModule>>, outputs: std::sync::Arc<dyn weir_engine::Outputs>) -> Result<(), weir_engine::EngineError> {
//! use weir_engine::{start, EngineOptions, GraphSpec};
//! let spec = GraphSpec { name: "demo".into(), graph, modules };
//! let (feeder, running) = start(spec, EngineOptions::default(), outputs)?;
//! // feeder.push(message); feeder.advance_to(time); ...
//! drop(feeder); // no more input: every window closes, then the workers stop
//! running.join()?;
//! # Ok(()) }
//! ```

pub mod circuit;
mod dataflow;
mod input;
pub mod item;
mod lane;
pub mod metrics;
mod modules;
mod nodes;
mod outputs;
mod partitions;
mod progress;
mod source;
pub use weir_model::time;

/// The atomics and lock the lock-free parts of the engine ([`lane`]) use: std's here, loom's
/// where a model checker compiles them.
mod sync {
    pub use std::sync::{atomic, Mutex};
}

pub use circuit::CircuitConfig;
pub use input::{BackPressure, Feeder, Pushed};
pub use metrics::GraphMetrics;
pub use modules::{load_modules, operation_type, usable_operators};
pub use outputs::{DeadLetter, Outputs};
pub use partitions::{start_partitioned, Partition, Partitions};

use dataflow::{operator_kind, WorkerParts};
use input::InputState;
use metrics::NodeCounters;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timely::scheduling::SyncActivator;
use weir_graph::Graph;
use weir_wasm::{OperatorError, OperatorInstance, OperatorModule};

/// Why a graph could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A node's module could not be instantiated or refused its configuration.
    #[error("graph `{graph}`: {source}")]
    Instance {
        /// The graph.
        graph: String,
        /// The node, module and fault.
        source: OperatorError,
    },
    /// A node that runs a module was given none.
    #[error("graph `{graph}`: node `{node}` has no module")]
    MissingModule {
        /// The graph.
        graph: String,
        /// The node.
        node: String,
    },
    /// The workers could not start or one of them failed.
    #[error("graph `{graph}`: {message}")]
    Workers {
        /// The graph.
        graph: String,
        /// What happened.
        message: String,
    },
}

/// A graph and its modules, ready to run.
pub struct GraphSpec {
    /// The name used in logs and metrics.
    pub name: String,
    /// The validated definition (parameters resolved).
    pub graph: Graph,
    /// The loaded module of each node that runs one, by node index.
    pub modules: HashMap<usize, Arc<OperatorModule>>,
}

/// How a graph runs.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Capacity of each worker's input queue, in messages.
    pub queue_capacity: usize,
    /// What to do when a queue is full.
    pub back_pressure: BackPressure,
    /// The node id of timestamps the graph issues (late messages stamped up to the frontier).
    pub node_id: Arc<str>,
    /// When a node's circuit opens.
    pub circuit: CircuitConfig,
    /// Called after a node's circuit changed state.
    pub on_change: StatusHook,
}

/// A function called when something a status report shows has changed (a node's circuit).
#[derive(Clone)]
pub struct StatusHook(Arc<dyn Fn() + Send + Sync>);

impl StatusHook {
    /// Calls `hook` on each change.
    pub fn new(hook: impl Fn() + Send + Sync + 'static) -> StatusHook {
        StatusHook(Arc::new(hook))
    }

    /// Nothing to call.
    pub fn none() -> StatusHook {
        StatusHook::new(|| {})
    }

    pub(crate) fn call(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for StatusHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatusHook")
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            workers: 1,
            queue_capacity: 1024,
            back_pressure: BackPressure::Block,
            node_id: "weir".into(),
            circuit: CircuitConfig::default(),
            on_change: StatusHook::none(),
        }
    }
}

/// A running graph: its metrics, and its workers to wait for once its feeder is dropped.
pub struct RunningGraph {
    name: String,
    metrics: Arc<GraphMetrics>,
    guards: timely::communication::initialize::WorkerGuards<()>,
}

impl RunningGraph {
    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The graph's counters.
    pub fn metrics(&self) -> &Arc<GraphMetrics> {
        &self.metrics
    }

    /// Waits until the workers have finished: after the feeder is dropped, every open window
    /// closes and every result reaches the outputs first.
    pub fn join(self) -> Result<(), EngineError> {
        for result in self.guards.join() {
            result.map_err(|message| EngineError::Workers {
                graph: self.name.clone(),
                message: format!("a worker failed: {message}"),
            })?;
        }
        Ok(())
    }
}

/// How long `start` waits for the workers to build their dataflows.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workers' activators, by worker index: they arrive in the order the workers built their
/// dataflows, which is any order (waking worker `i` must wake worker `i`, whose queue it is).
fn by_worker(mut activators: Vec<(usize, SyncActivator)>) -> Vec<SyncActivator> {
    activators.sort_by_key(|(index, _)| *index);
    activators
        .into_iter()
        .map(|(_, activator)| activator)
        .collect()
}

/// Starts `spec` with `options`; results and dead letters go to `outputs`.
pub fn start(
    spec: GraphSpec,
    options: EngineOptions,
    outputs: Arc<dyn Outputs>,
) -> Result<(Feeder, RunningGraph), EngineError> {
    let GraphSpec {
        name,
        graph,
        modules,
    } = spec;
    let workers = options.workers.max(1);
    let metrics = Arc::new(graph_metrics(&name, &graph, &options));
    // Every instance is built (and initialised) here, so that a failure is reported before any
    // worker starts.
    let per_worker = (0..workers)
        .map(|_| instantiate(&name, &graph, &modules, &metrics))
        .collect::<Result<Vec<_>, _>>()?;
    let input = NewInput::new(per_worker, &options, &metrics);
    let parts = Arc::new(Mutex::new(
        input.parts.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let graph = Arc::new(graph);
    let guards = {
        let metrics = metrics.clone();
        let graph = graph.clone();
        timely::execute(timely::Config::process(workers), move |worker| {
            let parts = parts
                .lock()
                .ok()
                .and_then(|mut parts| parts.get_mut(worker.index())?.take());
            let Some(parts) = parts else {
                return;
            };
            worker.dataflow::<u64, _, _>(|scope| {
                dataflow::build(scope, &graph, parts, &metrics, &outputs)
            });
            while worker.step_or_park(None) {}
        })
        .map_err(|message| EngineError::Workers {
            graph: name.clone(),
            message,
        })?
    };
    let Some(activators) = await_activators(&input.activators, workers) else {
        // Disconnect the queues first, so that the workers that did start can stop and
        // `guards` can join them.
        drop(input.senders);
        drop(guards);
        return Err(EngineError::Workers {
            graph: name,
            message: "the workers did not start".into(),
        });
    };
    let feeder = Feeder::new(
        input.senders,
        activators,
        input.state,
        options.back_pressure,
        options.node_id,
        metrics.clone(),
        input.progress,
    );
    Ok((
        feeder,
        RunningGraph {
            name,
            metrics,
            guards,
        },
    ))
}

/// The counters of `graph`, named `name`.
fn graph_metrics(name: &str, graph: &Graph, options: &EngineOptions) -> GraphMetrics {
    let nodes = graph
        .nodes
        .iter()
        .map(|node| NodeCounters::new(&node.name, node.kind.as_str(), options.circuit))
        .collect();
    GraphMetrics::new(name, nodes)
}

/// One input being opened: its queues, and what each worker builds its dataflow from.
struct NewInput {
    state: Arc<InputState>,
    senders: Vec<crossbeam_channel::Sender<item::Item>>,
    receivers: Vec<crossbeam_channel::Receiver<item::Item>>,
    parts: Vec<WorkerParts>,
    /// Where the workers' sources say how to wake them, once built.
    activators: crossbeam_channel::Receiver<(usize, SyncActivator)>,
    progress: Arc<progress::Progress>,
}

impl NewInput {
    /// An input over one worker per entry of `per_worker` (its instances), counted in
    /// `metrics`.
    fn new(
        per_worker: Vec<HashMap<usize, OperatorInstance>>,
        options: &EngineOptions,
        metrics: &GraphMetrics,
    ) -> NewInput {
        let workers = per_worker.len();
        let state = Arc::new(InputState::new(workers));
        let progress = Arc::new(progress::Progress::default());
        let (activator_tx, activators) = crossbeam_channel::unbounded();
        let mut senders = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        let mut parts = Vec::with_capacity(workers);
        for instances in per_worker {
            let (tx, rx) = crossbeam_channel::bounded(options.queue_capacity.max(1));
            senders.push(tx);
            receivers.push(rx.clone());
            parts.push(WorkerParts {
                instances,
                queue: rx,
                input: state.clone(),
                activator: activator_tx.clone(),
                on_change: options.on_change.clone(),
                progress: progress.clone(),
            });
        }
        metrics.add_queues(&receivers);
        NewInput {
            state,
            senders,
            receivers,
            parts,
            activators,
            progress,
        }
    }
}

/// The activators of `workers` workers' sources, by worker index, once all are built (at most
/// [`START_TIMEOUT`]).
fn await_activators(
    activators: &crossbeam_channel::Receiver<(usize, SyncActivator)>,
    workers: usize,
) -> Option<Vec<SyncActivator>> {
    (0..workers)
        .map(|_| activators.recv_timeout(START_TIMEOUT))
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .map(by_worker)
}

/// One worker's operator instances, by node index: each node that runs a module, instantiated
/// and given its configuration.
fn instantiate(
    name: &str,
    graph: &Graph,
    modules: &HashMap<usize, Arc<OperatorModule>>,
    metrics: &GraphMetrics,
) -> Result<HashMap<usize, OperatorInstance>, EngineError> {
    let mut instances = HashMap::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        let Some(kind) = operator_kind(node.kind) else {
            continue;
        };
        let module = modules
            .get(&index)
            .ok_or_else(|| EngineError::MissingModule {
                graph: name.to_owned(),
                node: node.name.clone(),
            })?;
        let instance = OperatorInstance::new(
            module.clone(),
            &node.name,
            kind,
            graph.init_configuration(index),
            metrics.nodes[index].module_metrics.clone(),
        )
        .map_err(|source| EngineError::Instance {
            graph: name.to_owned(),
            source,
        })?;
        instances.insert(index, instance);
    }
    Ok(instances)
}

/// What the engine's unit tests share: a graph with no module, and outputs that keep nothing.
#[cfg(test)]
mod testing {
    /// A graph with no module: its workers only drain their queues.
    pub(crate) fn passthrough() -> weir_graph::Graph {
        const PASSTHROUGH: &str = "metadata: {name: passthrough, version: \"1\"}
moduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}
operations:
  - {operationType: source, name: source}
  - {operationType: sink, name: sink}
connections:
  - {from: {name: source}, to: {name: sink}}
";
        let configuration = std::collections::HashMap::new();
        weir_graph::Graph::parse(PASSTHROUGH, "passthrough.yaml", &configuration)
            .expect("a valid graph")
    }

    /// The pass-through graph named `name`, on `workers` workers with default options.
    pub(crate) fn passthrough_on(
        name: &str,
        workers: usize,
    ) -> (crate::GraphSpec, crate::EngineOptions) {
        let spec = crate::GraphSpec {
            name: name.into(),
            graph: passthrough(),
            modules: Default::default(),
        };
        let options = crate::EngineOptions {
            workers,
            ..crate::EngineOptions::default()
        };
        (spec, options)
    }

    /// Outputs that drop what they are given.
    pub(crate) struct Nowhere;

    impl crate::Outputs for Nowhere {
        fn result(&self, _: weir_model::data::DataModel) -> bool {
            true
        }

        fn dead_letter(&self, _: crate::DeadLetter) {}
    }
}
