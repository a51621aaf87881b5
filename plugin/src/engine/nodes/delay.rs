//! `delay`: re-stamps each item with the time the module returns (never earlier).

use super::ModuleNode;
use crate::engine::item::Item;
use crate::engine::time::{decode, encode};
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

pub(in crate::engine) fn delay<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    mut node: ModuleNode,
) -> StreamVec<'scope, u64, Item> {
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            let port = output.output_index();
            input.for_each_stamp(|cap, containers| {
                let mut emitted = 0;
                for container in containers {
                    for mut item in container.drain(..) {
                        let timestamp = match item.timestamp() {
                            Some(timestamp) => timestamp.clone(),
                            None => decode(item.time, "".into()),
                        };
                        match node.call(1, |instance| instance.delay(&item.data, &timestamp)) {
                            Ok(moved) => {
                                // The runtime clamps `moved` to at least `timestamp`; the
                                // encoded time can still only grow.
                                item.time = encode(&moved).max(item.time);
                                item.data.set_timestamp(moved);
                                let at = cap.delayed(&item.time, port);
                                output.session(&at).give(item);
                                emitted += 1;
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
