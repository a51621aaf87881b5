//! Weir's message model, shared by every other crate: a message and the data it carries
//! ([`data`]), its hybrid-logical-clock timestamp ([`hlc`]) and that timestamp as dataflow
//! time ([`time`]), topic names and filters
//! ([`topic`]), the JSON record form of a message ([`record`]), what a module is given at
//! `init` ([`module`]), and the helpers that locate
//! errors in YAML and JSON ([`yaml`], [`json`]) and the metrics registry ([`metrics`]).
//!
//! It depends on no other Weir crate: the broker, the WebAssembly host, the engine and the
//! sinks all speak these types.

pub mod data;
pub mod error;
pub mod hlc;
pub mod json;
pub mod metrics;
pub mod module;
pub mod record;
pub mod time;
pub mod topic;
pub mod yaml;
