//! `delay`: re-stamps each item with the time the module returns (never earlier).

use super::{per_item, ModuleNode};
use crate::item::{DataflowTime, Item};
use crate::time::encode;
use timely::dataflow::StreamVec;

pub(crate) fn delay<'scope, T: DataflowTime>(
    stream: StreamVec<'scope, T, Item<T>>,
    name: &str,
    node: ModuleNode,
) -> StreamVec<'scope, T, Item<T>> {
    per_item(stream, name, node, |node, mut item| {
        let timestamp = item.stamp();
        let moved = node.attempt(&item, |instance| instance.delay(&item.data, &timestamp))?;
        // The runtime clamps `moved` to at least `timestamp`; the encoded time can still only
        // grow.
        item.time.set_event(encode(&moved).max(item.time.event()));
        item.data.set_timestamp(moved);
        Some(item)
    })
}
