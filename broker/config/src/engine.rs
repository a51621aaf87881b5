//! `engine:` (how graphs run) and `metrics:` (where their counters are served).

use super::graphs::at_least_one_u64;
use super::paths::RelativePath;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;
use weir_graph::options::CircuitConfig;

/// The graph engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// The node id of timestamps the broker issues (not empty, no `:`, which separates a
    /// timestamp's fields).
    #[serde(default = "default_node_id", deserialize_with = "node_id")]
    pub node_id: String,
    /// How often (ms) input frontiers move with the clock when no message arrives.
    #[serde(default = "default_tick", deserialize_with = "at_least_one_u64")]
    pub tick_ms: u64,
    /// How often (s) each graph's counters are logged when they changed (0: never).
    #[serde(default = "default_log_interval")]
    pub log_interval_s: u64,
    /// The state store's file; absent: in memory (state is lost at exit).
    #[serde(default)]
    pub state_file: Option<RelativePath>,
    /// Whether MQTT clients reach the state store too, with Azure IoT Operations' protocol
    /// (requests on `statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke`).
    #[serde(default = "default_true")]
    pub state_store_over_mqtt: bool,
    /// How far ahead of the broker's clock a message's `__ts` may be and still be used (ms);
    /// one further ahead is stamped from the clock and counted (`invalid_timestamps`).
    #[serde(default = "default_max_clock_skew")]
    pub max_clock_skew_ms: u64,
    /// When a node's circuit breaker opens.
    #[serde(default)]
    pub circuit: CircuitSettings,
}

fn default_true() -> bool {
    true
}

fn default_max_clock_skew() -> u64 {
    weir_model::hlc::DEFAULT_MAX_SKEW_MS
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            node_id: default_node_id(),
            tick_ms: default_tick(),
            log_interval_s: default_log_interval(),
            state_file: None,
            state_store_over_mqtt: true,
            max_clock_skew_ms: default_max_clock_skew(),
            circuit: CircuitSettings::default(),
        }
    }
}

/// The metrics endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where to serve Prometheus text at `/metrics`; absent: no endpoint.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
}

/// `engine.circuit`: a node whose module fails `failures` times in a row is opened (its items go
/// to the dead-letter topic unprocessed) for `backoff_ms`, doubling after each failed trial up
/// to `max_backoff_ms`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitSettings {
    /// Consecutive failures that open a node's circuit (0: never).
    #[serde(default = "default_failures")]
    pub failures: u32,
    /// How long (ms) the circuit stays open the first time.
    #[serde(default = "default_backoff", deserialize_with = "at_least_one_u64")]
    pub backoff_ms: u64,
    /// The longest (ms) it stays open.
    #[serde(default = "default_max_backoff", deserialize_with = "at_least_one_u64")]
    pub max_backoff_ms: u64,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings {
            failures: default_failures(),
            backoff_ms: default_backoff(),
            max_backoff_ms: default_max_backoff(),
        }
    }
}

impl CircuitSettings {
    /// The engine's form.
    pub fn config(&self) -> CircuitConfig {
        CircuitConfig {
            failures: self.failures,
            backoff: Duration::from_millis(self.backoff_ms),
            max_backoff: Duration::from_millis(self.max_backoff_ms.max(self.backoff_ms)),
        }
    }
}

fn default_failures() -> u32 {
    5
}
fn default_backoff() -> u64 {
    1000
}
fn default_max_backoff() -> u64 {
    60_000
}
fn node_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let id = String::deserialize(d)?;
    if id.is_empty() || id.contains(':') || id.chars().any(char::is_control) {
        return Err(serde::de::Error::custom(
            "expected a node id without `:` or control characters",
        ));
    }
    Ok(id)
}

fn default_node_id() -> String {
    "weir".into()
}
fn default_tick() -> u64 {
    10
}
fn default_log_interval() -> u64 {
    60
}
