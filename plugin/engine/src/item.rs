//! What travels on the dataflow's edges.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use timely::order::Product;
use timely::progress::Timestamp;
use weir_model::data::DataModel;
use weir_model::hlc::Hlc;

/// The dataflow time a graph runs on.
///
/// A graph fed from the broker runs on event time alone (`u64`, an [`super::time::encode`]d
/// timestamp). A graph fed from partitioned inputs (a Kafka source) runs on
/// `Product<u64, u64>`: event time, and the entry position of the earliest input an item
/// derives from, so that the least position still in the dataflow says which inputs are fully
/// processed (see [`crate::Partition::settled`]).
pub trait DataflowTime: Timestamp + Copy {
    /// Whether the time carries entry positions.
    const TRACKS_ENTRY: bool;

    /// The time of an input at event time `event`, entering at position `entry`.
    fn at(event: u64, entry: u64) -> Self;

    /// The event time.
    fn event(&self) -> u64;

    /// Moves the event time (a delay); the entry position stays.
    fn set_event(&mut self, event: u64);

    /// The entry position (0 for times that carry none).
    fn entry(&self) -> u64;

    /// The greatest time at event time `event`: a frontier that is not less than or equal to it
    /// can bring nothing at `event` or before.
    fn last_at(event: u64) -> Self;
}

impl DataflowTime for u64 {
    const TRACKS_ENTRY: bool = false;

    fn at(event: u64, _: u64) -> u64 {
        event
    }

    fn event(&self) -> u64 {
        *self
    }

    fn set_event(&mut self, event: u64) {
        *self = event;
    }

    fn entry(&self) -> u64 {
        0
    }

    fn last_at(event: u64) -> u64 {
        event
    }
}

impl DataflowTime for Product<u64, u64> {
    const TRACKS_ENTRY: bool = true;

    fn at(event: u64, entry: u64) -> Self {
        Product::new(event, entry)
    }

    fn event(&self) -> u64 {
        self.outer
    }

    fn set_event(&mut self, event: u64) {
        self.outer = event;
    }

    fn entry(&self) -> u64 {
        self.inner
    }

    fn last_at(event: u64) -> Self {
        Product::new(event, u64::MAX)
    }
}

/// One item on an edge: the data, its dataflow time and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item<T = u64> {
    /// The position of the input message it derives from, in the order the graph received
    /// them (for a window's result, the first of its messages). Orders outputs deterministically.
    pub seq: u64,
    /// Its dataflow time (from [`super::time::encode`] of its timestamp).
    pub time: T,
    /// For an item leaving a branch: the arm it took (`false` = "False").
    pub arm: bool,
    /// The data.
    pub data: DataModel,
}

impl<T> Item<T> {
    /// The data's timestamp, when it has one.
    pub fn timestamp(&self) -> Option<&Hlc> {
        self.data.timestamp()
    }

    /// The item's message (the feeder queues messages only; other data becomes a message
    /// without topic).
    pub(crate) fn into_message(self) -> weir_model::data::Message {
        self.data.into_message("weir")
    }

    /// The topic of a message item (empty for other data).
    pub fn topic(&self) -> &[u8] {
        match &self.data {
            DataModel::Message(message) => &message.topic,
            _ => &[],
        }
    }

    /// The payload bytes (message payload, raw bytes or frame).
    pub fn payload(&self) -> &Bytes {
        self.data.payload()
    }

    /// The key that orders items of equal time at the sink: input position, then content, so
    /// that the output does not depend on how work was scheduled or spread over workers.
    pub(crate) fn order_key(&self) -> (u64, &[u8], &[u8]) {
        (self.seq, self.topic(), self.payload())
    }

    /// The item at dataflow time `time`.
    pub(crate) fn at<U>(self, time: U) -> Item<U> {
        Item {
            seq: self.seq,
            time,
            arm: self.arm,
            data: self.data,
        }
    }
}

impl<T: DataflowTime> Item<T> {
    /// The data's timestamp, or one decoded from the item's dataflow time when it has none.
    pub fn stamp(&self) -> Hlc {
        match self.timestamp() {
            Some(timestamp) => timestamp.clone(),
            None => super::time::decode(self.time.event(), "".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Item;

    /// Items are moved between the dataflow's containers several times per message: keep them
    /// small (a message's rarely used schema is boxed for this; 256 bytes before).
    #[test]
    fn an_item_fits_in_three_cache_lines() {
        assert!(
            std::mem::size_of::<Item>() <= 192,
            "{}",
            std::mem::size_of::<Item>()
        );
        let product = std::mem::size_of::<Item<timely::order::Product<u64, u64>>>();
        assert!(product <= 200, "{product}");
    }
}
