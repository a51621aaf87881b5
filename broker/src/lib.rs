//! Weir, the broker: command line, configuration, and the embedded rumqttd.
//!
//! The binary is thin: [`config`] reads `weir.yaml` (or the embedded default), [`server`] starts
//! the connection layer with it, [`shutdown`] stops everything in order, and the plugin layer
//! (`weir-plugin`) does everything between a message arriving and a result leaving.

pub mod bridges;
pub mod cli;
pub use weir_config as config;
pub mod graph_check;
pub mod graph_inputs;
pub mod graph_run;
pub mod graph_test;
pub mod graphs;
pub mod import;
pub mod inspect;
pub mod logging;
pub mod metrics_endpoint;
pub mod passwd;
pub mod reconfigure;
pub mod registry;
pub mod reloads;
pub mod server;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod watch;
