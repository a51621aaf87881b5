//! Where results leave a graph for outside the broker: [`kafka`] and [`otlp`] (delivered
//! upstream from a [`buffer`] by a thread of their own). Results published back into the
//! broker's router go through weir-plugin's MQTT sink, which knows the broker.
//!
//! An upstream sink kind is one file whose configuration implements [`Upstream`], and one
//! variant of [`UpstreamConfig`] (with its key under `sink:` in weir.yaml).

pub mod buffer;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "otlp")]
pub mod otel_payload;
#[cfg(feature = "otlp")]
pub mod otlp;
pub mod topic_template;

pub use topic_template::TopicTemplate;

use buffer::{Delivery, SinkBuffer, SinkMetrics, SinkThread};
#[cfg(feature = "kafka")]
use kafka::KafkaConfig;
#[cfg(feature = "otlp")]
use otlp::OtlpConfig;
use std::fmt;
use std::sync::Arc;
use weir_model::data::Message;

/// An upstream sink kind's configuration: what it is, in a few words, and how it starts.
pub trait Upstream: fmt::Debug + Send + Sync {
    /// Where results go, for logs: `kafka 127.0.0.1:9092/weir-out`.
    fn describe(&self) -> String;

    /// Starts delivering `graph`'s results as `delivery` says. The upstream need not be
    /// reachable: results wait in the buffer, and the sink reports itself down meanwhile.
    fn start(&self, graph: &str, delivery: &Delivery) -> Result<UpstreamSink, SinkError>;
}

/// The upstream a graph's results go to instead of MQTT, each kind under its own key of `sink:`
/// (each kind a Cargo feature: `kafka`, `otlp`).
///
/// ```
/// # #[cfg(feature = "otlp")] {
/// use weir_sink::UpstreamConfig;
///
/// let otlp = serde_yaml::from_str("endpoint: http://127.0.0.1:4318").unwrap();
/// assert_eq!(UpstreamConfig::Otlp(otlp).describe(), "otlp http://127.0.0.1:4318");
/// # }
/// ```
#[derive(Debug, Clone)]
pub enum UpstreamConfig {
    /// `kafka:` a Kafka topic.
    #[cfg(feature = "kafka")]
    Kafka(KafkaConfig),
    /// `otlp:` an OpenTelemetry collector.
    #[cfg(feature = "otlp")]
    Otlp(OtlpConfig),
}

impl UpstreamConfig {
    /// The sink this configures.
    pub fn sink(&self) -> &dyn Upstream {
        match *self {
            #[cfg(feature = "kafka")]
            UpstreamConfig::Kafka(ref kafka) => kafka,
            #[cfg(feature = "otlp")]
            UpstreamConfig::Otlp(ref otlp) => otlp,
        }
    }

    /// Where results go, for logs.
    pub fn describe(&self) -> String {
        self.sink().describe()
    }

    /// Starts the sink for `graph`.
    pub fn start(&self, graph: &str, delivery: &Delivery) -> Result<UpstreamSink, SinkError> {
        self.sink().start(graph, delivery)
    }
}

/// A started upstream sink (Kafka, OTLP): where the graph puts its results, the sink's
/// counters, and its delivery thread (which ends once the buffer is dropped and emptied).
pub struct UpstreamSink {
    /// The graph side of its buffer.
    pub buffer: SinkBuffer<Message>,
    /// Its counters.
    pub metrics: Arc<SinkMetrics>,
    /// Its delivery thread.
    pub thread: SinkThread,
}

/// Why a sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink's configuration was refused by its client library.
    #[error("{0}")]
    Config(String),
    /// Its delivery thread could not start.
    #[error("cannot start a sink thread: {0}")]
    Thread(std::io::Error),
}
