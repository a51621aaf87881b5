//! A graph's outputs when its results go upstream (Kafka, OTLP): the engine's [`Outputs`] over an
//! upstream sink's buffer, here because this crate knows both the engine and the sinks.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use weir_engine::{DeadLetter, Outputs};
use weir_model::data::{DataModel, Message};
use weir_sink::buffer::{SinkBuffer, SinkMetrics};

/// How far a graph's outputs have got: what was handed to them, and what of it their
/// destination has taken for good (the router, or the upstream's acknowledgement), in the same
/// order. What a Kafka source commits waits for it.
pub trait Acknowledged: Send + Sync {
    /// Messages handed to the outputs so far.
    fn handed(&self) -> u64;

    /// Of those, the ones the destination has taken for good (or dropped, counted), from the
    /// first.
    fn acknowledged(&self) -> u64;
}

/// A graph's outputs when its results go upstream: results into the sink's buffer, dead
/// letters to their MQTT topic as always.
pub struct UpstreamOutputs<D: Outputs> {
    results: SinkBuffer<Message>,
    dead_letters: D,
    node_id: String,
    handed: Arc<AtomicU64>,
}

impl<D: Outputs> UpstreamOutputs<D> {
    /// Results into `results`; dead letters to `dead_letters`; `node_id` stamps results that
    /// carry no time.
    pub fn new(results: SinkBuffer<Message>, dead_letters: D, node_id: &str) -> Self {
        UpstreamOutputs {
            results,
            dead_letters,
            node_id: node_id.to_string(),
            handed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How far the results have got, with the sink's counters `metrics`.
    pub fn acknowledgements(&self, metrics: Arc<SinkMetrics>) -> Arc<dyn Acknowledged> {
        Arc::new(UpstreamAcknowledged {
            handed: self.handed.clone(),
            metrics,
        })
    }
}

/// An upstream sink's progress: results handed to its buffer, and those it delivered or
/// dropped.
struct UpstreamAcknowledged {
    handed: Arc<AtomicU64>,
    metrics: Arc<SinkMetrics>,
}

impl Acknowledged for UpstreamAcknowledged {
    fn handed(&self) -> u64 {
        self.handed.load(Relaxed)
    }

    fn acknowledged(&self) -> u64 {
        self.metrics.delivered.load(Relaxed) + self.metrics.dropped.load(Relaxed)
    }
}

impl<D: Outputs> Outputs for UpstreamOutputs<D> {
    fn result(&self, item: DataModel) -> bool {
        self.handed.fetch_add(1, Relaxed);
        self.results.push(item.into_message(&self.node_id))
    }

    fn dead_letter(&self, letter: DeadLetter) {
        self.dead_letters.dead_letter(letter);
    }
}
