//! `filter`: keeps the items the module accepts.

use super::ModuleNode;
use crate::engine::item::Item;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::StreamVec;

pub(in crate::engine) fn filter<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    mut node: ModuleNode,
) -> StreamVec<'scope, u64, Item> {
    stream.unary(Pipeline, name, move |_, _| {
        move |input, output| {
            input.for_each_stamp(|cap, containers| {
                let mut session = output.session(&cap);
                let mut emitted = 0;
                for container in containers {
                    for item in container.drain(..) {
                        match node.call(1, |instance| instance.filter(&item.data)) {
                            Ok(true) => {
                                session.give(item);
                                emitted += 1;
                            }
                            Ok(false) => {}
                            Err(error) => node.failed(&item, &error),
                        }
                    }
                }
                node.emitted(emitted);
            });
        }
    })
}
