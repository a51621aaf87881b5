//! Graph inputs from Kafka: a consumer group's share of some topics, each assigned partition
//! fed to a graph input of its own ([`PartitionInputs`]), so that it has its own event time
//! and windows, and a partition assigned late (a rebalance) is not behind the others.
//!
//! An offset is committed only once the graph has settled every record before it: each result
//! the record contributes to, a window's included, has been handed to the graph's outputs
//! ([`PartitionInput::settled`]). A partition this instance loses, and every partition when the
//! source stops, is abandoned: its open windows are dropped, for the partition's next owner to
//! rebuild from the committed offset and emit whole.
//!
//! The crate knows nothing of the engine: the binary joins the two (`weir-plugin`).

mod config;
mod consumer;
pub mod metrics;
mod partition;
pub mod record;

pub use config::{KafkaSourceConfig, SourceKey, Start};
pub use consumer::{KafkaSource, SourceError};
pub use metrics::KafkaSourceMetrics;

use weir_model::data::Message;

/// Where a Kafka source's partitions go: one input per assigned partition.
pub trait PartitionInputs: Send + Sync {
    /// Opens the input of newly assigned partition `partition` of `topic`.
    fn open(&self, topic: &str, partition: i32) -> Result<Box<dyn PartitionInput>, String>;

    /// Sends `message`, made of a record that could not be read as a message, to the graph's
    /// dead-letter destination with `reason`.
    fn dead_letter(&self, message: Message, reason: String);
}

/// One assigned partition's graph input.
pub trait PartitionInput: Send {
    /// Gives the graph `message` (waits while the input is full).
    fn push(&mut self, message: Message);

    /// Moves the input's event time to `time` (an encoded timestamp): windows before it close.
    fn advance_to(&self, time: u64);

    /// How many of the messages pushed, from the first, are fully processed: their results
    /// handed to the graph's outputs and taken for good by their destination.
    fn settled(&mut self) -> u64;

    /// Ends the input, dropping its open windows.
    fn abandon(self: Box<Self>);
}
