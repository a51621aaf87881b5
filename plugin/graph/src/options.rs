//! How a graph runs, as a binding in `weir.yaml` configures it: what its feeder does when a
//! worker's queue is full ([`BackPressure`]) and when a node's circuit opens
//! ([`CircuitConfig`]). The engine applies them; configuration reads them without the engine.

use std::time::Duration;

/// What the feeder does when a worker's input queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackPressure {
    /// Wait for room (the publishers feeding the graph slow down; nothing is lost).
    #[default]
    Block,
    /// Drop the message and count it.
    Drop,
}

/// When a node's circuit opens and for how long (`engine.circuit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    /// Consecutive failures that open the circuit (0: never open).
    pub failures: u32,
    /// How long the circuit stays open the first time.
    pub backoff: Duration,
    /// The longest it stays open (the backoff doubles up to this).
    pub max_backoff: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig {
            failures: 5,
            backoff: Duration::from_millis(1000),
            max_backoff: Duration::from_millis(60_000),
        }
    }
}
