//! Building one worker's timely dataflow from a validated graph.

use super::input::InputState;
use super::item::{DataflowTime, Item};
use super::metrics::GraphMetrics;
use super::nodes::{accumulate, branch, delay, filter, map, sink, ModuleNode};
use super::outputs::Outputs;
use super::progress::Progress;
use super::source::source_stream;
use super::StatusHook;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::Arc;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::{Scope, StreamVec};
use timely::scheduling::SyncActivator;
use weir_graph::{Graph, OperationType};
use weir_wasm::{OperatorInstance, OperatorKind};

/// The operator interface a node of type `kind` calls, if it runs a module.
pub(super) fn operator_kind(kind: OperationType) -> Option<OperatorKind> {
    match kind {
        OperationType::Map => Some(OperatorKind::Map),
        OperationType::Filter => Some(OperatorKind::Filter),
        OperationType::Branch => Some(OperatorKind::Branch),
        OperationType::Accumulate => Some(OperatorKind::Accumulate),
        OperationType::Delay => Some(OperatorKind::Delay),
        OperationType::Source | OperationType::Concatenate | OperationType::Sink => None,
    }
}

/// The nodes in an order where every node comes after the nodes feeding it (the graph was
/// validated acyclic).
pub(super) fn topological_order(graph: &Graph) -> Vec<usize> {
    let mut incoming = vec![0usize; graph.nodes.len()];
    for edge in &graph.edges {
        incoming[edge.to] += 1;
    }
    let mut ready: Vec<usize> = (0..graph.nodes.len())
        .filter(|&n| incoming[n] == 0)
        .rev()
        .collect();
    let mut order = Vec::with_capacity(graph.nodes.len());
    while let Some(node) = ready.pop() {
        order.push(node);
        for edge in graph.edges.iter().filter(|e| e.from == node) {
            incoming[edge.to] -= 1;
            if incoming[edge.to] == 0 {
                ready.push(edge.to);
            }
        }
    }
    order
}

/// What one worker needs to build its dataflow.
pub(super) struct WorkerParts {
    pub instances: HashMap<usize, OperatorInstance>,
    pub queue: Receiver<Item>,
    pub input: Arc<InputState>,
    /// Where the worker's source says how to wake it, with the worker's index.
    pub activator: Sender<(usize, SyncActivator)>,
    pub on_change: StatusHook,
    /// How far the input has settled, and whether it was abandoned.
    pub progress: Arc<Progress>,
}

/// Builds the dataflow of `graph` in `scope`.
pub(super) fn build<T: DataflowTime>(
    scope: Scope<'_, T>,
    graph: &Graph,
    mut parts: WorkerParts,
    metrics: &Arc<GraphMetrics>,
    outputs: &Arc<dyn Outputs>,
) {
    let mut streams: HashMap<usize, StreamVec<'_, T, Item<T>>> = HashMap::new();
    for index in topological_order(graph) {
        let node = &graph.nodes[index];
        let mut inputs: Vec<StreamVec<'_, T, Item<T>>> = graph
            .edges
            .iter()
            .filter(|edge| edge.to == index)
            .filter_map(|edge| {
                let stream = streams.get(&edge.from)?.clone();
                Some(match edge.arm {
                    Some(arm) => branch::arm(stream, arm),
                    None => stream,
                })
            })
            .collect();
        let input = if inputs.len() == 1 {
            inputs.pop()
        } else if inputs.is_empty() {
            None
        } else {
            Some(scope.concatenate(inputs))
        };
        if node.kind == OperationType::Source {
            let stream = source_stream(
                scope,
                parts.queue.clone(),
                parts.input.clone(),
                parts.activator.clone(),
                metrics.clone(),
            );
            streams.insert(index, stream);
            continue;
        }
        let Some(input) = input else { continue };
        if node.kind == OperationType::Sink {
            sink::sink(
                input,
                index,
                metrics.clone(),
                outputs.clone(),
                parts.progress.clone(),
            );
            continue;
        }
        if node.kind == OperationType::Concatenate {
            streams.insert(index, input);
            continue;
        }
        let Some(instance) = parts.instances.remove(&index) else {
            continue;
        };
        let module_node = ModuleNode::new(
            instance,
            metrics.clone(),
            index,
            outputs.clone(),
            parts.on_change.clone(),
        );
        let name = node.name.as_str();
        let stream = match node.kind {
            OperationType::Map => map::map(input, name, module_node),
            OperationType::Filter => filter::filter(input, name, module_node),
            OperationType::Branch => {
                let leaving = graph.edges.iter().filter(|e| e.from == index);
                let mut wired = [false; 2];
                for edge in leaving {
                    match edge.arm {
                        Some(arm) => wired[usize::from(arm)] = true,
                        None => wired = [true; 2],
                    }
                }
                branch::branch(input, name, module_node, wired)
            }
            OperationType::Delay => delay::delay(input, name, module_node),
            OperationType::Accumulate => {
                accumulate::accumulate(input, name, module_node, parts.progress.clone())
            }
            OperationType::Source | OperationType::Concatenate | OperationType::Sink => continue,
        };
        streams.insert(index, stream);
    }
}
