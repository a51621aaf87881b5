//! `accumulate`: folds the items of each event time into one, emitted when the frontier passes
//! that time. With times that carry entry positions, a group holds its capability at the least
//! position of the items it folds, so that they count as unsettled until its result has left.
//! The groups of an abandoned input (a partition this instance lost) are dropped, not emitted.
//!
//! Items are exchanged by time so that one worker holds each group. When a group closes, its
//! items are ordered by input position (so the result does not depend on scheduling) and
//! passed to the module in one `process(staged, batch)` call, whose first staged value is an
//! empty message at the group's timestamp.

use super::ModuleNode;
use crate::item::{DataflowTime, Item};
use crate::progress::{Hold, Progress};
use crate::time::decode;
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use weir_model::data::DataModel;

/// Spreads times over workers (times often differ only in their high bits).
pub(crate) fn spread(time: u64) -> u64 {
    time.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

pub(crate) fn accumulate<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    name: &str,
    mut node: ModuleNode,
    progress: Arc<Progress>,
) -> StreamVec<'scope, T, Item<T>> {
    let pact = Exchange::new(|item: &Item<T>| spread(item.time.event()));
    stream.unary_frontier(pact, name, move |_, _| {
        let mut groups: BTreeMap<u64, (Capability<T>, Vec<Item<T>>)> = BTreeMap::new();
        let mut hold = Hold::new(progress.clone());
        move |(input, frontier), output| {
            let port = output.output_index();
            input.for_each_stamp(|cap, containers| {
                for container in containers {
                    for item in container.drain(..) {
                        let (held, items) = groups
                            .entry(item.time.event())
                            .or_insert_with(|| (cap.delayed(&item.time, port), Vec::new()));
                        if T::TRACKS_ENTRY && item.time.entry() < held.time().entry() {
                            *held = cap.delayed(&item.time, port);
                        }
                        items.push(item);
                    }
                }
            });
            if progress.is_abandoned() {
                groups.clear();
                hold.set(false);
                return;
            }
            while let Some(entry) = groups.first_entry() {
                // Closed once nothing at this event time or before can still arrive.
                if frontier.less_equal(&T::last_at(*entry.key())) {
                    break;
                }
                let (time, (cap, mut batch)) = entry.remove_entry();
                batch.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
                let timestamp = batch
                    .iter()
                    .find_map(Item::timestamp)
                    .cloned()
                    .unwrap_or_else(|| decode(time, "".into()));
                let staged = DataModel::empty_staged(timestamp);
                let data: Vec<DataModel> = batch.iter().map(|item| item.data.clone()).collect();
                let result = node.guarded(&batch, |instance| instance.accumulate(&staged, &data));
                if let Some(result) = result {
                    output.session(&cap).give(Item {
                        seq: batch[0].seq,
                        time: *cap.time(),
                        arm: false,
                        data: result,
                    });
                    node.emitted(1);
                }
            }
            hold.set(!groups.is_empty());
        }
    })
}
