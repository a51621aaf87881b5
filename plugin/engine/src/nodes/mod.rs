//! The dataflow operators of a graph's nodes, one file per operation type. Module nodes call
//! the operator runtime; a failed call sends the item to the dead-letter output.

pub(super) mod accumulate;
pub(super) mod branch;
pub(super) mod delay;
pub(super) mod filter;
pub(super) mod map;
pub(super) mod sink;

use super::circuit::{Admit, CircuitState, Transition};
use super::item::{DataflowTime, Item};
use super::metrics::{GraphMetrics, NodeCounters};
use super::outputs::{DeadLetter, Outputs};
use super::StatusHook;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;
use weir_wasm::{Fault, OperatorError, OperatorInstance};

/// The operator of a module node that takes items one at a time: `step` calls the module on an
/// item and gives what to emit, if anything. An item leaves at its own time: the input's
/// timestamp, or a later one that `step` set (a delay).
pub(super) fn per_item<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    name: &str,
    mut node: ModuleNode,
    mut step: impl FnMut(&mut ModuleNode, Item<T>) -> Option<Item<T>> + 'static,
) -> StreamVec<'scope, T, Item<T>> {
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            let port = output.output_index();
            input.for_each_stamp(|cap, containers| {
                // The one time the items came at, when they came at one.
                let now = match cap.stamp().elements() {
                    [time] => Some(*time),
                    _ => None,
                };
                let mut later = Vec::new();
                let mut emitted = 0;
                let mut session = output.session(&cap);
                for container in containers {
                    for item in container.drain(..) {
                        let Some(out) = step(&mut node, item) else {
                            continue;
                        };
                        emitted += 1;
                        if Some(out.time) == now {
                            session.give(out);
                        } else {
                            later.push(out);
                        }
                    }
                }
                drop(session);
                for item in later {
                    let at = cap.delayed(&item.time, port);
                    output.session(&at).give(item);
                }
                node.emitted(emitted);
            });
        }
    })
}

/// One module node on one worker: its instance, its counters, its circuit breaker and where
/// failures go.
pub(super) struct ModuleNode {
    pub instance: OperatorInstance,
    metrics: Arc<GraphMetrics>,
    index: usize,
    outputs: Arc<dyn Outputs>,
    on_change: StatusHook,
}

impl ModuleNode {
    pub fn new(
        instance: OperatorInstance,
        metrics: Arc<GraphMetrics>,
        index: usize,
        outputs: Arc<dyn Outputs>,
        on_change: StatusHook,
    ) -> ModuleNode {
        ModuleNode {
            instance,
            metrics,
            index,
            outputs,
            on_change,
        }
    }

    pub fn counters(&self) -> &NodeCounters {
        &self.metrics.nodes[self.index]
    }

    /// Runs `call` for one `item`: its result, or `None` when the module failed on the item
    /// or the node's circuit is open (the item is then counted and dead-lettered).
    pub fn attempt<R, T>(
        &mut self,
        item: &Item<T>,
        call: impl FnOnce(&mut OperatorInstance) -> Result<R, OperatorError>,
    ) -> Option<R> {
        self.guarded(std::slice::from_ref(item), call)
    }

    /// Runs `call` for `items` (one call for all of them) through the circuit breaker: its
    /// result, or `None` when the module failed or the circuit is open (every item is then
    /// counted and dead-lettered).
    pub fn guarded<R, T>(
        &mut self,
        items: &[Item<T>],
        call: impl FnOnce(&mut OperatorInstance) -> Result<R, OperatorError>,
    ) -> Option<R> {
        let started = Instant::now();
        let trial = match self.counters().circuit.admit(started) {
            Admit::Call => false,
            Admit::Trial => {
                let transition = self.counters().circuit.trial_started();
                self.transition(&transition, None);
                true
            }
            Admit::Reject => {
                self.reject(items);
                return None;
            }
        };
        let result = call(&mut self.instance);
        let counters = self.counters();
        counters.latency.record(started.elapsed());
        counters.input.fetch_add(items.len() as u64, Relaxed);
        match result {
            Ok(result) => {
                if let Some(transition) = counters.circuit.succeeded(trial) {
                    self.transition(&transition, None);
                }
                Some(result)
            }
            Err(error) => {
                let reason = error.fault.to_string();
                self.failed(items, &error, &reason);
                let now = Instant::now();
                if let Some(transition) = self.counters().circuit.failed(trial, &reason, now) {
                    self.transition(&transition, Some(&reason));
                }
                None
            }
        }
    }

    /// Counts, logs (once per call) and dead-letters `items`, which the module failed on with
    /// `error` (`reason` is its text, formatted once).
    fn failed<T>(&self, items: &[Item<T>], error: &OperatorError, reason: &str) {
        let counters = self.counters();
        let count = items.len() as u64;
        counters.errors.fetch_add(count, Relaxed);
        if !matches!(error.fault, Fault::Returned { .. }) {
            counters.traps.fetch_add(count, Relaxed);
        }
        let topic = items.first().map(|item| item.topic()).unwrap_or_default();
        tracing::warn!(
            graph = %self.metrics.graph,
            node = %error.node,
            module = %error.module,
            topic = %String::from_utf8_lossy(topic),
            "{reason}; {} to the dead-letter topic",
            if count == 1 { "the item goes".to_string() } else { format!("its {count} items go") }
        );
        for item in items {
            self.dead_letter(item, reason.to_string());
        }
    }

    /// Dead-letters `items` unprocessed: the circuit is open.
    fn reject<T>(&self, items: &[Item<T>]) {
        let counters = self.counters();
        counters.input.fetch_add(items.len() as u64, Relaxed);
        let before = counters.rejected.fetch_add(items.len() as u64, Relaxed);
        let reason = format!(
            "circuit open after {} consecutive failures (last: {})",
            counters.circuit.failures(),
            counters.circuit.last_error().unwrap_or_default()
        );
        if before == 0 || (before + 1).is_power_of_two() {
            tracing::warn!(
                graph = %self.metrics.graph,
                node = %counters.name,
                module = %self.instance.module().name(),
                "{reason}: items go to the dead-letter topic unprocessed ({} so far)",
                before + items.len() as u64
            );
        }
        for item in items {
            self.dead_letter(item, reason.clone());
        }
    }

    fn dead_letter<T>(&self, item: &Item<T>, reason: String) {
        self.metrics.dead_letters.fetch_add(1, Relaxed);
        self.outputs.dead_letter(DeadLetter {
            node: self.counters().name.clone(),
            module: self.instance.module().name().to_string(),
            reason,
            item: item.data.clone(),
        });
    }

    /// Logs, counts and announces a change of the circuit's state.
    fn transition(&self, transition: &Transition, error: Option<&str>) {
        let counters = self.counters();
        let (graph, node) = (&self.metrics.graph, &counters.name);
        let module = self.instance.module().name();
        match transition.to {
            CircuitState::Open => {
                counters.circuit_opened.fetch_add(1, Relaxed);
                tracing::warn!(
                    graph = %graph, node = %node, module = %module,
                    "circuit open for {:?} after {} consecutive failures (last: {}); its items go to the dead-letter topic unprocessed",
                    transition.backoff,
                    transition.failures,
                    error.unwrap_or("")
                );
            }
            CircuitState::HalfOpen => tracing::info!(
                graph = %graph, node = %node, module = %module,
                "circuit half-open: trying one item"
            ),
            CircuitState::Closed => tracing::info!(
                graph = %graph, node = %node, module = %module,
                "circuit closed: the module processed an item again"
            ),
        }
        self.on_change.call();
    }

    pub fn emitted(&self, count: usize) {
        self.counters().output.fetch_add(count as u64, Relaxed);
    }
}
