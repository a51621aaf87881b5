//! `map`: each item becomes the module's result, at the same time.

use super::{per_item, ModuleNode};
use crate::item::Item;
use timely::dataflow::StreamVec;

pub(crate) fn map<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    node: ModuleNode,
) -> StreamVec<'scope, u64, Item> {
    per_item(stream, name, node, |node, item| {
        let data = node.attempt(&item, |instance| instance.map(&item.data))?;
        Some(Item { data, ..item })
    })
}
