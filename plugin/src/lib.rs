//! Weir's plugin layer: everything between "a publish arrived" and "a result left".
//!
//! Its own code is what joins the broker to the graphs, so that neither knows the other:
//!
//! - [`ingress`]: the graphs' sources, the [`weir_door::ingress::Ingress`] the broker offers
//!   publishes to;
//! - [`mqtt_sink`]: graph results and dead letters published back into the broker;
//! - [`outputs`]: graph results into an upstream sink's buffer (Kafka, OTLP);
//! - `kafka_feed` (feature `kafka`): a Kafka source's partitions into a graph's partitioned
//!   inputs;
//! - [`status`]: each graph's status on `$weir/status/<graph>`.
//!
//! The rest lives in crates of its own, one job each, which the binary names directly:
//! `weir-model` (the message model), `weir-door` (the MQTT broker and bridges), `weir-state`,
//! `weir-oci`, `weir-wasm` (the WebAssembly host), `weir-graph` (definitions), `weir-engine`
//! (timely dataflows) and `weir-sink` (Kafka and OTLP); docs/architecture.md says what each
//! may import.

pub mod ingress;
#[cfg(feature = "kafka")]
pub mod kafka_feed;
pub mod mqtt_sink;
pub mod outputs;
pub mod status;
