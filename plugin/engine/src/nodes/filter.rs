//! `filter`: keeps the items the module accepts.

use super::{per_item, ModuleNode};
use crate::item::{DataflowTime, Item};
use timely::dataflow::StreamVec;

pub(crate) fn filter<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    name: &str,
    node: ModuleNode,
) -> StreamVec<'scope, T, Item<T>> {
    per_item(stream, name, node, |node, item| {
        let keep = node.attempt(&item, |instance| instance.filter(&item.data))?;
        keep.then_some(item)
    })
}
