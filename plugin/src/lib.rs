//! Weir's plugin layer: everything between "a publish arrived" and "a result left".
//!
//! - [`wasm`]: the WebAssembly operator host: loading components, host APIs, limits.
//! - [`state`]: the persistent state store behind the `state-store` host API.
//! - [`door`]: the MQTT connection layer over rumqttd's router, and graph sources at the door.
//! - [`bridge`]: links to remote brokers, with a store-and-forward queue on disk.
//! - [`status`]: each graph's status on `$weir/status/<graph>`.
//! - [`graph`]: graph definitions: parsing, validation, module references.
//! - [`schema`]: schemas handed to modules, and the schema directory behind `schema-registry`.
//! - [`data`] and [`hlc`]: the items that flow through graphs and their timestamps.
//! - [`topic`]: MQTT topic filters.
//! - [`metrics`]: the metrics modules define; [`yaml`] and [`json`]: located errors.

pub mod bridge;
pub mod data;
pub mod door;
pub mod engine;
pub mod graph;
pub mod hlc;
pub mod json;
pub mod metrics;
pub mod oci;
pub mod prometheus;
pub mod record;
pub mod schema;
pub mod security;
pub mod sink;
pub mod state;
pub mod status;
pub mod topic;
pub mod wasm;
pub mod yaml;
