//! `sink`: gathers results on worker 0 and hands them to the graph's outputs in a
//! deterministic order: by time once the frontier has passed it, then by input position and
//! content.
//!
//! Held results wait in one vector, kept sorted: new ones usually arrive in order after the
//! held ones (then nothing is sorted); otherwise the vector is sorted again (nearly in order,
//! so close to a pass over it). The ready ones leave from its front.

use crate::item::Item;
use crate::metrics::GraphMetrics;
use crate::outputs::Outputs;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

/// The order results leave in: time, then input position and content.
fn in_order(a: &Item, b: &Item) -> std::cmp::Ordering {
    (a.time, a.order_key()).cmp(&(b.time, b.order_key()))
}

pub(crate) fn sink(
    stream: StreamVec<'_, u64, Item>,
    index: usize,
    metrics: Arc<GraphMetrics>,
    outputs: Arc<dyn Outputs>,
) {
    let mut pending: Vec<Item> = Vec::new();
    stream.sink(
        Exchange::new(|_: &Item| 0),
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
            let ready = pending.partition_point(|item| !frontier.less_equal(&item.time));
            if ready == 0 {
                return;
            }
            let counters = &metrics.nodes[index];
            counters.input.fetch_add(ready as u64, Relaxed);
            for item in pending.drain(..ready) {
                if outputs.result(item.data) {
                    metrics.results.fetch_add(1, Relaxed);
                } else {
                    metrics.lost.fetch_add(1, Relaxed);
                }
            }
        },
    );
}
