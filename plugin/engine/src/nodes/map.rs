//! `map`: each item becomes the module's result, at the same time.

use super::{per_item, ModuleNode};
use crate::item::{DataflowTime, Item};
use timely::dataflow::StreamVec;

pub(crate) fn map<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    name: &str,
    node: ModuleNode,
) -> StreamVec<'scope, T, Item<T>> {
    per_item(stream, name, node, |node, item| {
        let data = node.attempt(&item, |instance| instance.map(&item.data))?;
        Some(Item { data, ..item })
    })
}
