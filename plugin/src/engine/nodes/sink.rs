//! `sink`: gathers results on worker 0 and hands them to the graph's outputs in a
//! deterministic order: by time once the frontier has passed it, then by input position and
//! content.
//!
//! Held results wait in one vector, sorted when new ones arrived (they come nearly in order, so
//! the sort is close to a pass over them); the ready ones leave from its front.

use crate::engine::item::Item;
use crate::engine::metrics::GraphMetrics;
use crate::engine::outputs::Outputs;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

pub(in crate::engine) fn sink(
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
            if pending.len() > held {
                pending.sort_by(|a, b| (a.time, a.order_key()).cmp(&(b.time, b.order_key())));
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
