//! Weir's plugin layer: everything between "a publish arrived" and "a result left".
//!
//! - [`wasm`]: the WebAssembly operator host: loading components, host APIs, limits.
//! - [`state`]: the persistent state store behind the `state-store` host API.
//! - [`door`]: the MQTT connection layer over rumqttd's router, and graph sources at the door.
//! - [`bridge`]: links to remote brokers, with a store-and-forward queue on disk.
//! - [`status`]: each graph's status on `$weir/status/<graph>`.
//! - [`graph`]: graph definitions: parsing, validation, module references.
//! - [`schema`]: schemas handed to modules, and the schema directory behind `schema-registry`.
//! - [`metrics`]: the metrics modules define.
//! - [`data`], [`hlc`], [`topic`], [`record`], [`yaml`], [`json`], [`prometheus`]: the message
//!   model, from the `weir-model` crate.

pub mod engine;
pub mod graph;
pub mod ingress;
pub mod metrics;
pub mod oci;
pub mod schema;
pub mod sink;
pub mod state;
pub mod status;
pub mod wasm;

// The message model, where the rest of this crate and its users have always found it.
pub use weir_model::{data, hlc, json, prometheus, record, topic, yaml};

// The MQTT broker, likewise.
pub use weir_door as door;
pub use weir_door::{bridge, security};
