//! What travels on the dataflow's edges.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use weir_model::data::DataModel;
use weir_model::hlc::Hlc;

/// One item on an edge: the data, its dataflow time and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The position of the input message it derives from, in the order the graph received
    /// them (for a window's result, the first of its messages). Orders outputs deterministically.
    pub seq: u64,
    /// Its dataflow time ([`super::time::encode`] of its timestamp).
    pub time: u64,
    /// For an item leaving a branch: the arm it took (`false` = "False").
    pub arm: bool,
    /// The data.
    pub data: DataModel,
}

impl Item {
    /// The data's timestamp, when it has one.
    pub fn timestamp(&self) -> Option<&Hlc> {
        self.data.timestamp()
    }

    /// The data's timestamp, or one decoded from the item's dataflow time when it has none.
    pub fn stamp(&self) -> Hlc {
        match self.timestamp() {
            Some(timestamp) => timestamp.clone(),
            None => super::time::decode(self.time, "".into()),
        }
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
    }
}
