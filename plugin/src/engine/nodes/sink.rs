//! `sink`: gathers results on worker 0 and hands them to the graph's outputs in a
//! deterministic order: by time once the frontier has passed it, then by input position and
//! content.

use crate::engine::item::Item;
use crate::engine::metrics::GraphMetrics;
use crate::engine::outputs::Outputs;
use std::collections::BTreeMap;
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
    let mut pending: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
    stream.sink(
        Exchange::new(|_: &Item| 0),
        "sink",
        move |(input, frontier)| {
            input.for_each_stamp(|_, containers| {
                for container in containers {
                    for item in container.drain(..) {
                        pending.entry(item.time).or_default().push(item);
                    }
                }
            });
            while let Some(entry) = pending.first_entry() {
                if frontier.less_equal(entry.key()) {
                    break;
                }
                let mut items = entry.remove();
                items.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
                let counters = &metrics.nodes[index];
                counters.input.fetch_add(items.len() as u64, Relaxed);
                for item in items {
                    if outputs.result(item.data) {
                        metrics.results.fetch_add(1, Relaxed);
                    } else {
                        metrics.lost.fetch_add(1, Relaxed);
                    }
                }
            }
        },
    );
}
