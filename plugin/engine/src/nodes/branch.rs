//! `branch`: tags each item with the arm the module picks. Edges leaving the branch keep the
//! items of their arm; items for an arm wired to nothing are counted as unrouted.

use super::{per_item, ModuleNode};
use crate::item::{DataflowTime, Item};
use std::sync::atomic::Ordering::Relaxed;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

/// `wired[arm]`: whether an edge leaves the arm (`false` = "False" at 0).
pub(crate) fn branch<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    name: &str,
    node: ModuleNode,
    wired: [bool; 2],
) -> StreamVec<'scope, T, Item<T>> {
    per_item(stream, name, node, move |node, mut item| {
        let timestamp = item.stamp();
        let arm = node.attempt(&item, |instance| instance.branch(&timestamp, &item.data))?;
        if !wired[usize::from(arm)] {
            node.counters().unrouted.fetch_add(1, Relaxed);
            return None;
        }
        item.arm = arm;
        Some(item)
    })
}

/// The items of one arm of a branch's output.
pub(crate) fn arm<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    arm: bool,
) -> StreamVec<'scope, T, Item<T>> {
    let name = if arm { "arm True" } else { "arm False" };
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            input.for_each_stamp(|cap, containers| {
                let mut session = output.session(&cap);
                for container in containers {
                    session.give_iterator(container.drain(..).filter(|item| item.arm == arm).map(
                        |mut item| {
                            item.arm = false;
                            item
                        },
                    ));
                }
            });
        }
    })
}
