//! The dataflow operators of a graph's nodes, one file per operation type. Module nodes call
//! the operator runtime; a failed call sends the item to the dead-letter output.

pub(super) mod accumulate;
pub(super) mod branch;
pub(super) mod delay;
pub(super) mod filter;
pub(super) mod map;
pub(super) mod sink;

use super::item::Item;
use super::metrics::{GraphMetrics, NodeCounters};
use super::outputs::{DeadLetter, Outputs};
use crate::wasm::{Fault, OperatorError, OperatorInstance};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

/// The operator of a module node that takes items one at a time: `step` calls the module on an
/// item and gives what to emit, if anything. An item leaves at its own time: the input's
/// timestamp, or a later one that `step` set (a delay).
pub(super) fn per_item<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    mut node: ModuleNode,
    mut step: impl FnMut(&mut ModuleNode, Item) -> Option<Item> + 'static,
) -> StreamVec<'scope, u64, Item> {
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            let port = output.output_index();
            input.for_each_stamp(|cap, containers| {
                let now = cap.least().copied();
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

/// One module node on one worker: its instance, its counters and where failures go.
pub(super) struct ModuleNode {
    pub instance: OperatorInstance,
    metrics: Arc<GraphMetrics>,
    index: usize,
    outputs: Arc<dyn Outputs>,
}

impl ModuleNode {
    pub fn new(
        instance: OperatorInstance,
        metrics: Arc<GraphMetrics>,
        index: usize,
        outputs: Arc<dyn Outputs>,
    ) -> ModuleNode {
        ModuleNode {
            instance,
            metrics,
            index,
            outputs,
        }
    }

    pub fn counters(&self) -> &NodeCounters {
        &self.metrics.nodes[self.index]
    }

    /// Runs `call` on the instance, timing it and counting the items it received.
    pub fn call<R>(
        &mut self,
        items: usize,
        call: impl FnOnce(&mut OperatorInstance) -> Result<R, OperatorError>,
    ) -> Result<R, OperatorError> {
        let started = Instant::now();
        let result = call(&mut self.instance);
        let counters = &self.metrics.nodes[self.index];
        counters.latency.record(started.elapsed());
        counters.input.fetch_add(items as u64, Relaxed);
        result
    }

    /// Runs `call` for one `item`: its result, or `None` when the module failed on the item
    /// (which is then counted and dead-lettered).
    pub fn attempt<R>(
        &mut self,
        item: &Item,
        call: impl FnOnce(&mut OperatorInstance) -> Result<R, OperatorError>,
    ) -> Option<R> {
        match self.call(1, call) {
            Ok(result) => Some(result),
            Err(error) => {
                self.failed(item, &error);
                None
            }
        }
    }

    /// Counts, logs and dead-letters `item`, which the module failed on.
    pub fn failed(&self, item: &Item, error: &OperatorError) {
        let counters = self.counters();
        counters.errors.fetch_add(1, Relaxed);
        if !matches!(error.fault, Fault::Returned { .. }) {
            counters.traps.fetch_add(1, Relaxed);
        }
        tracing::warn!(
            graph = %self.metrics.graph,
            node = %error.node,
            module = %error.module,
            topic = %String::from_utf8_lossy(item.topic()),
            "{}; the item goes to the dead-letter topic",
            error.fault
        );
        self.metrics.dead_letters.fetch_add(1, Relaxed);
        self.outputs.dead_letter(DeadLetter {
            node: error.node.clone(),
            module: error.module.clone(),
            reason: error.fault.to_string(),
            item: item.data.clone(),
        });
    }

    pub fn emitted(&self, count: usize) {
        self.counters().output.fetch_add(count as u64, Relaxed);
    }
}
