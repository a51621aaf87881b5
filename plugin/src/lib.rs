//! Weir's plugin layer: everything between "a publish arrived" and "a result left".
//!
//! Its own code is what joins the broker to the graphs, so that neither knows the other:
//!
//! - [`ingress`]: the graphs' sources, the [`door::Ingress`] the broker offers publishes to;
//! - [`mqtt_sink`]: graph results and dead letters published back into the broker;
//! - [`outputs`]: graph results into an upstream sink's buffer (Kafka, OTLP);
//! - [`status`]: each graph's status on `$weir/status/<graph>`.
//!
//! The rest lives in crates of its own, one job each, re-exported here under the names the
//! binary uses (each depends only on those listed before it):
//!
//! | module | crate | job |
//! |---|---|---|
//! | [`data`], [`hlc`], [`topic`], [`record`], [`yaml`], [`json`], [`prometheus`] | `weir-model` | the message model and shared helpers |
//! | [`door`], [`bridge`], [`security`] | `weir-door` | the MQTT broker over rumqttd's router, bridges |
//! | [`state`] | `weir-state` | the state store and its MQTT service |
//! | [`oci`] | `weir-oci` | modules and definitions in OCI registries |
//! | [`wasm`], [`schema`], [`metrics`] | `weir-wasm` | the WebAssembly operator host |
//! | [`graph`] | `weir-graph` | graph definitions |
//! | [`engine`] | `weir-engine` | graphs as timely dataflows |
//! | [`sink`] | `weir-sink` | Kafka and OTLP sinks |

pub mod ingress;
pub mod mqtt_sink;
pub mod outputs;
pub mod status;

pub use weir_door as door;
pub use weir_door::{bridge, security};
pub use weir_engine as engine;
pub use weir_graph as graph;
pub use weir_model::{data, hlc, json, prometheus, record, topic, yaml};
pub use weir_oci as oci;
pub use weir_sink as sink;
pub use weir_state as state;
pub use weir_wasm as wasm;
pub use weir_wasm::{metrics, schema};
