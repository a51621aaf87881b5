//! `sink`: gathers results on worker 0 and hands them to the graph's outputs in a
//! deterministic order: by time once the frontier has passed it, then by input position and
//! content.
//!
//! Held results wait in a binary heap ordered that way: a result costs a push and a pop,
//! however many are held (a backlog can hold thousands while the frontier catches up).

use crate::engine::item::Item;
use crate::engine::metrics::GraphMetrics;
use crate::engine::outputs::Outputs;
use std::cmp::Ordering;
use std::collections::binary_heap::{BinaryHeap, PeekMut};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

/// A held result, ordered so that the heap's top is the one to leave first.
struct Held(Item);

impl Ord for Held {
    fn cmp(&self, other: &Held) -> Ordering {
        // Reversed: `BinaryHeap` keeps its greatest on top.
        (other.0.time, other.0.order_key()).cmp(&(self.0.time, self.0.order_key()))
    }
}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Held {}

pub(in crate::engine) fn sink(
    stream: StreamVec<'_, u64, Item>,
    index: usize,
    metrics: Arc<GraphMetrics>,
    outputs: Arc<dyn Outputs>,
) {
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    stream.sink(
        Exchange::new(|_: &Item| 0),
        "sink",
        move |(input, frontier)| {
            input.for_each_stamp(|_, containers| {
                for container in containers {
                    held.extend(container.drain(..).map(Held));
                }
            });
            let mut ready = 0;
            while let Some(next) = held.peek_mut() {
                if frontier.less_equal(&next.0.time) {
                    break;
                }
                let Held(item) = PeekMut::pop(next);
                ready += 1;
                if outputs.result(item.data) {
                    metrics.results.fetch_add(1, Relaxed);
                } else {
                    metrics.lost.fetch_add(1, Relaxed);
                }
            }
            if ready > 0 {
                metrics.nodes[index].input.fetch_add(ready, Relaxed);
            }
        },
    );
}
