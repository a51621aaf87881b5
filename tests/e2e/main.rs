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
mod drain;
mod engine;
mod faults;
mod flow;
mod graph_inputs;
mod graph_test;
mod graphs;
mod harness;
mod import;
mod lifecycle;
mod modules;
mod mqtt;
mod mqtt5;
mod mqtt5_limits;
mod nn;
mod passwords;
mod persistence;
mod registry;
mod reload;
mod security;
mod services;
mod sessions;
mod sinks;
mod soak;
mod state_store;
mod websockets;
