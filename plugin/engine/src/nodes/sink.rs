//! `sink`: gathers results on worker 0 and hands them to the graph's outputs in a
//! deterministic order: by time once the frontier has passed it, then by input position and
//! content.
//!
//! Held results wait in one vector, kept sorted: new ones usually arrive in order after the
//! held ones (then nothing is sorted); otherwise the vector is sorted again (nearly in order,
//! so close to a pass over it). The ready ones leave from its front.

use crate::item::{DataflowTime, Item};
use crate::metrics::GraphMetrics;
use crate::outputs::Outputs;
use crate::progress::{Hold, Progress};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

/// The order results leave in: event time, then input position and content.
fn in_order<T: DataflowTime>(a: &Item<T>, b: &Item<T>) -> std::cmp::Ordering {
    (a.time.event(), a.order_key()).cmp(&(b.time.event(), b.order_key()))
}

/// The sink of worker `worker`: worker 0 gathers every result. With times that carry entry
/// positions, it also records in `progress` how far the input has settled.
pub(crate) fn sink<T: DataflowTime>(
    stream: StreamVec<'_, T, Item<T>>,
    index: usize,
    metrics: Arc<GraphMetrics>,
    outputs: Arc<dyn Outputs>,
    progress: Arc<Progress>,
) {
    let gathers = stream.scope().index() == 0;
    let mut pending: Vec<Item<T>> = Vec::new();
    let mut hold = Hold::new(progress.clone());
    stream.sink(
        Exchange::new(|_: &Item<T>| 0),
        "sink",
        move |(input, frontier)| {
            let held = pending.len();
            input.for_each_stamp(|_, containers| {
                for container in containers {
                    pending.append(container);
                }
            });
            // The new ones, and the last held one before them, in order: the whole is.
            if !pending[held.saturating_sub(1)..].is_sorted_by(|a, b| in_order(a, b).is_le()) {
                pending.sort_by(in_order);
            }
            if progress.is_abandoned() {
                pending.clear();
            }
            let ready = pending
                .partition_point(|item| !frontier.less_equal(&T::last_at(item.time.event())));
            if ready > 0 {
                hand_over(&mut pending, ready, index, &metrics, &outputs);
            }
            if T::TRACKS_ENTRY && gathers {
                // Every input that entered before the least position still in the dataflow,
                // or held here, has had its results handed over.
                let upstream = frontier.frontier().iter().map(DataflowTime::entry).min();
                let held = pending.iter().map(|item| item.time.entry()).min();
                let settled = upstream.into_iter().chain(held).min();
                progress.settle(settled.unwrap_or(u64::MAX));
            }
            hold.set(!pending.is_empty());
        },
    );
}

/// Hands the first `ready` held results to the outputs, in order.
fn hand_over<T>(
    pending: &mut Vec<Item<T>>,
    ready: usize,
    index: usize,
    metrics: &GraphMetrics,
    outputs: &Arc<dyn Outputs>,
) {
    let counters = &metrics.nodes[index];
    counters.input.fetch_add(ready as u64, Relaxed);
    for item in pending.drain(..ready) {
        if outputs.result(item.data) {
            metrics.results.fetch_add(1, Relaxed);
        } else {
            metrics.lost.fetch_add(1, Relaxed);
        }
    }
}
