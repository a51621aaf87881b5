//! Graphs fed from partitioned inputs (a Kafka source's partitions): each input that is opened
//! gets a dataflow of its own on the graph's workers, with its own frontier and its own windows.
//!
//! A partition assigned to this instance late (a rebalance) brings records older than the
//! frontier of the partitions it already had: in a dataflow of its own they are on time. Its
//! dataflow runs on product time ([`crate::item::DataflowTime`]): event time, and each input's
//! position, so that [`Partition::settled`] says how many of its inputs are fully processed
//! (their results handed to the outputs, windows included), which is what may be committed.
//! A partition this instance loses is [abandoned](Partition::abandon): its open windows are
//! dropped, not emitted partial, for the partition's next owner to emit whole.
//!
//! ```no_run
//! # fn demo(spec: weir_engine::GraphSpec, outputs: std::sync::Arc<dyn weir_engine::Outputs>) -> Result<(), weir_engine::EngineError> {
//! use weir_engine::{start_partitioned, EngineOptions};
//! let (partitions, running) = start_partitioned(spec, EngineOptions::default())?;
//! let partition = partitions.open(outputs)?;
//! // partition.feeder().push(message); partition.feeder().advance_to(time); ...
//! let done = partition.settled(); // the first `done` messages pushed are fully processed
//! partition.abandon(); // lost in a rebalance: open windows are dropped
//! drop(partitions); // no more inputs: the workers stop once every open one is closed
//! running.join()?;
//! # Ok(()) }
//! ```

use super::dataflow::{self, WorkerParts};
use super::item::Item;
use super::progress::Progress;
use super::{
    await_activators, graph_metrics, instantiate, BackPressure, EngineError, EngineOptions, Feeder,
    GraphSpec, NewInput, Outputs, RunningGraph,
};
use crate::metrics::GraphMetrics;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use timely::scheduling::SyncActivator;
use weir_graph::Graph;
use weir_wasm::OperatorModule;

/// The address a worker's waker activates: no dataflow has it, so waking only makes the worker
/// look at its commands.
const WAKER_ADDRESS: usize = usize::MAX;

/// A dataflow for a worker to build: its parts, and where its results go.
type Build = (WorkerParts, Arc<dyn Outputs>);

/// Opens inputs of a graph started with [`start_partitioned`]. Dropping it lets the workers
/// stop once every [`Partition`] opened is closed.
pub struct Partitions {
    name: String,
    graph: Graph,
    modules: HashMap<usize, Arc<OperatorModule>>,
    options: EngineOptions,
    metrics: Arc<GraphMetrics>,
    /// Each worker's command queue: the parts of the dataflows to build and where their results
    /// go, in the same order on every worker (sent under this lock).
    commands: Mutex<Vec<Sender<Build>>>,
    wakers: Vec<SyncActivator>,
}

/// One open input of a partitioned graph: its feeder, and how far what it was given has been
/// processed.
pub struct Partition {
    feeder: Feeder,
    progress: Arc<Progress>,
    queues: Vec<Receiver<Item>>,
    metrics: Arc<GraphMetrics>,
}

/// Starts `spec` with no input open: each [`Partitions::open`] adds one. Each node's module is
/// instantiated here once per worker, so that a module refusing its configuration stops the
/// graph from starting.
pub fn start_partitioned(
    spec: GraphSpec,
    options: EngineOptions,
) -> Result<(Partitions, RunningGraph), EngineError> {
    let GraphSpec {
        name,
        graph,
        modules,
    } = spec;
    let workers = options.workers.max(1);
    let metrics = Arc::new(graph_metrics(&name, &graph, &options));
    for _ in 0..workers {
        instantiate(&name, &graph, &modules, &metrics)?;
    }
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..workers).map(|_| crossbeam_channel::unbounded()).unzip();
    let receivers = Arc::new(Mutex::new(
        receivers.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let (waker_tx, waker_rx) = crossbeam_channel::unbounded();
    let shared_graph = Arc::new(graph.clone());
    let guards = {
        let metrics = metrics.clone();
        timely::execute(timely::Config::process(workers), move |worker| {
            let commands = receivers
                .lock()
                .ok()
                .and_then(|mut receivers| receivers.get_mut(worker.index())?.take());
            let Some(commands) = commands else {
                return;
            };
            let waker = worker.sync_activator_for(vec![WAKER_ADDRESS]);
            let _ = waker_tx.send((worker.index(), waker));
            let mut closed = false;
            loop {
                loop {
                    match commands.try_recv() {
                        Ok((parts, outputs)) => {
                            worker.dataflow::<u64, _, _>(|top| {
                                top.iterative::<u64, _, _>(|scope| {
                                    dataflow::build(scope, &shared_graph, parts, &metrics, &outputs)
                                })
                            });
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                let running = worker.step_or_park(None);
                if closed && !running {
                    break;
                }
            }
        })
        .map_err(|message| EngineError::Workers {
            graph: name.clone(),
            message,
        })?
    };
    let Some(wakers) = await_activators(&waker_rx, workers) else {
        drop(senders);
        drop(guards);
        return Err(EngineError::Workers {
            graph: name,
            message: "the workers did not start".into(),
        });
    };
    let partitions = Partitions {
        name: name.clone(),
        graph,
        modules,
        options,
        metrics: metrics.clone(),
        commands: Mutex::new(senders),
        wakers,
    };
    Ok((
        partitions,
        RunningGraph {
            name,
            metrics,
            guards,
        },
    ))
}

impl Partitions {
    /// Opens an input whose results and dead letters go to `outputs`, with a dataflow of its
    /// own on every worker (its modules instantiated afresh, so that no state of another
    /// input's carries over). Its messages are queued with [`BackPressure::Block`] whatever the
    /// options say: the pusher waits rather than drop.
    pub fn open(&self, outputs: Arc<dyn Outputs>) -> Result<Partition, EngineError> {
        let per_worker = (0..self.wakers.len())
            .map(|_| instantiate(&self.name, &self.graph, &self.modules, &self.metrics))
            .collect::<Result<Vec<_>, _>>()?;
        let input = NewInput::new(per_worker, &self.options, &self.metrics);
        let failed = |message: &str| EngineError::Workers {
            graph: self.name.clone(),
            message: message.into(),
        };
        {
            let commands = self.commands.lock().unwrap_or_else(|e| e.into_inner());
            for (command, parts) in commands.iter().zip(input.parts) {
                command
                    .send((parts, outputs.clone()))
                    .map_err(|_| failed("the workers have stopped"))?;
            }
        }
        for waker in &self.wakers {
            let _ = waker.activate();
        }
        let activators = await_activators(&input.activators, self.wakers.len())
            .ok_or_else(|| failed("the workers did not build the input's dataflow"))?;
        let feeder = Feeder::new(
            input.senders,
            activators,
            input.state,
            BackPressure::Block,
            self.options.node_id.clone(),
            self.metrics.clone(),
            input.progress.clone(),
        );
        Ok(Partition {
            feeder,
            progress: input.progress,
            queues: input.receivers,
            metrics: self.metrics.clone(),
        })
    }
}

impl Drop for Partitions {
    fn drop(&mut self) {
        self.commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        for waker in &self.wakers {
            let _ = waker.activate();
        }
    }
}

impl Partition {
    /// Where its messages go in. Push from one thread: positions (what
    /// [`Partition::settled`] counts) are the order of pushes.
    pub fn feeder(&self) -> &Feeder {
        &self.feeder
    }

    /// How many of the messages pushed, counted from the first, are fully processed: each
    /// result they contribute to, a window's included, has been handed to the outputs.
    /// `u64::MAX` once the input is closed and everything in it processed.
    pub fn settled(&self) -> u64 {
        self.progress.settled()
    }

    /// Ends the input and drops what it holds: its open windows and any result not yet
    /// handed over are not emitted (the partition's next owner emits them).
    pub fn abandon(self) {
        self.progress.abandon();
        self.feeder.close();
    }

    /// Ends the input: what is queued is processed, and open windows close and emit.
    pub fn finish(self) {
        self.feeder.close();
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.feeder.close();
        self.metrics.remove_queues(&self.queues);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{passthrough_on, Nowhere};
    use std::time::Duration;

    /// Opened inputs finish and the workers stop once the inputs and the handle are gone.
    #[test]
    fn workers_stop_once_every_input_is_closed() {
        let (spec, options) = passthrough_on("stop", 2);
        let (partitions, running) = start_partitioned(spec, options).unwrap();
        let first = partitions.open(Arc::new(Nowhere)).unwrap();
        let second = partitions.open(Arc::new(Nowhere)).unwrap();
        first.finish();
        second.abandon();
        drop(partitions);
        let (done, joined) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = done.send(running.join().is_ok());
        });
        assert_eq!(joined.recv_timeout(Duration::from_secs(10)), Ok(true));
    }
}
