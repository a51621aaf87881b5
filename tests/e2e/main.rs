//! End-to-end tests: the real `weir` binary on free loopback ports, driven by real MQTT clients
//! (rumqttc, and Debian's mosquitto_pub/mosquitto_sub).

mod acl;
mod bridges;
mod certificates;
mod clients;
mod config_errors;
mod connections;
mod corpus;
mod door;
#[cfg(feature = "kafka")]
mod drain;
mod engine;
mod faults;
mod flow;
mod graph_inputs;
mod graph_test;
mod graphs;
mod harness;
mod import;
#[cfg(feature = "kafka")]
mod kafka_source;
mod lifecycle;
mod modules;
mod mqtt;
mod mqtt5;
mod mqtt5_limits;
#[cfg(feature = "wasi-nn")]
mod nn;
mod passwords;
mod persistence;
#[cfg(feature = "oci")]
mod registry;
mod reload;
mod security;
#[cfg(any(feature = "kafka", feature = "otlp", feature = "oci"))]
mod services;
mod sessions;
#[cfg(all(feature = "kafka", feature = "otlp"))]
mod sinks;
mod soak;
mod state_store;
#[cfg(feature = "websockets")]
mod websockets;
