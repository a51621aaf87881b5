//! `filter`: keeps the items the module accepts.

use super::{per_item, ModuleNode};
use crate::item::Item;
use timely::dataflow::StreamVec;

pub(crate) fn filter<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    node: ModuleNode,
) -> StreamVec<'scope, u64, Item> {
    per_item(stream, name, node, |node, item| {
        let keep = node.attempt(&item, |instance| instance.filter(&item.data))?;
        keep.then_some(item)
    })
}
