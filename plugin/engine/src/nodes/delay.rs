//! `delay`: re-stamps each item with the time the module returns (never earlier).

use super::{per_item, ModuleNode};
use crate::item::Item;
use crate::time::encode;
use timely::dataflow::StreamVec;

pub(crate) fn delay<'scope>(
    stream: StreamVec<'scope, u64, Item>,
    name: &str,
    node: ModuleNode,
) -> StreamVec<'scope, u64, Item> {
    per_item(stream, name, node, |node, mut item| {
        let timestamp = item.stamp();
        let moved = node.attempt(&item, |instance| instance.delay(&item.data, &timestamp))?;
        // The runtime clamps `moved` to at least `timestamp`; the encoded time can still only
        // grow.
        item.time = encode(&moved).max(item.time);
        item.data.set_timestamp(moved);
        Some(item)
    })
}
