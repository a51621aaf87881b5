//! `branch`: tags each item with the arm the module picks. Edges leaving the branch keep the
//! items of their arm; items for an arm wired to nothing are counted as unrouted.

use super::ModuleNode;
use crate::engine::item::Item;
use crate::engine::time::decode;
use std::sync::atomic::Ordering::Relaxed;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

/// `wired[arm]`: whether an edge leaves the arm (`false` = "False" at 0).
pub(in crate::engine) fn branch<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    mut node: ModuleNode,
    wired: [bool; 2],
) -> StreamVec<'scope, u64, Item> {
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            input.for_each_stamp(|cap, containers| {
                let mut session = output.session(&cap);
                let mut emitted = 0;
                for container in containers {
                    for mut item in container.drain(..) {
                        let timestamp = match item.timestamp() {
                            Some(timestamp) => timestamp.clone(),
                            None => decode(item.time, "".into()),
                        };
                        match node.call(1, |instance| instance.branch(&timestamp, &item.data)) {
                            Ok(arm) if wired[usize::from(arm)] => {
                                item.arm = arm;
                                session.give(item);
                                emitted += 1;
                            }
                            Ok(_) => {
                                node.counters().unrouted.fetch_add(1, Relaxed);
                            }
                            Err(error) => node.failed(&item, &error),
                        }
                    }
                }
                node.emitted(emitted);
            });
        }
    })
}

/// The items of one arm of a branch's output.
pub(in crate::engine) fn arm<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    arm: bool,
) -> StreamVec<'scope, u64, Item> {
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
