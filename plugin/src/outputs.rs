//! A graph's outputs when its results go upstream (Kafka, OTLP): the engine's [`Outputs`] over an
//! upstream sink's buffer, here because this crate knows both the engine and the sinks.

use weir_engine::{DeadLetter, Outputs};
use weir_model::data::{DataModel, Message};
use weir_sink::buffer::SinkBuffer;

/// A graph's outputs when its results go upstream: results into the sink's buffer, dead
/// letters to their MQTT topic as always.
pub struct UpstreamOutputs<D: Outputs> {
    results: SinkBuffer<Message>,
    dead_letters: D,
    node_id: String,
}

impl<D: Outputs> UpstreamOutputs<D> {
    /// Results into `results`; dead letters to `dead_letters`; `node_id` stamps results that
    /// carry no time.
    pub fn new(results: SinkBuffer<Message>, dead_letters: D, node_id: &str) -> Self {
        UpstreamOutputs {
            results,
            dead_letters,
            node_id: node_id.to_string(),
        }
    }
}

impl<D: Outputs> Outputs for UpstreamOutputs<D> {
    fn result(&self, item: DataModel) -> bool {
        self.results.push(item.into_message(&self.node_id))
    }

    fn dead_letter(&self, letter: DeadLetter) {
        self.dead_letters.dead_letter(letter);
    }
}
