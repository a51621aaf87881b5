//! The circuit breaker of a module node: after `failures` consecutive failures the node is
//! *open* and its items go straight to the dead-letter output for a backoff; then one item is
//! tried (*half-open*): a success closes the node, a failure opens it again for twice the
//! backoff, up to a maximum.
//!
//! One breaker serves a node on every worker. A closed breaker costs one atomic load per item
//! and, after a success, one more when failures had been counted; the lock is taken only on a
//! failure and while open.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use weir_engine::circuit::{Admit, Circuit, CircuitConfig, CircuitState};
//! let circuit = Circuit::new(CircuitConfig { failures: 2, backoff: Duration::from_millis(10), ..CircuitConfig::default() });
//! let now = Instant::now();
//! assert_eq!(circuit.admit(now), Admit::Call);
//! circuit.failed(false, "boom", now);
//! let opened = circuit.failed(false, "boom", now);
//! assert_eq!(opened.map(|t| t.to), Some(CircuitState::Open));
//! assert_eq!(circuit.admit(now), Admit::Reject);
//! assert_eq!(circuit.admit(now + Duration::from_millis(10)), Admit::Trial);
//! assert_eq!(circuit.succeeded(true).map(|t| t.to), Some(CircuitState::Closed));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use weir_graph::options::CircuitConfig;

/// Where a circuit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Items are processed.
    Closed = 0,
    /// Items go to the dead-letter output without being processed.
    Open = 1,
    /// One item is being tried.
    HalfOpen = 2,
}

impl CircuitState {
    /// `closed`, `open` or `half-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half-open",
        }
    }

    fn from_u8(value: u8) -> CircuitState {
        match value {
            OPEN => CircuitState::Open,
            HALF_OPEN => CircuitState::HalfOpen,
            _ => CircuitState::Closed,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// What to do with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Process it.
    Call,
    /// Process it as the half-open trial: report the outcome with `trial = true`.
    Trial,
    /// Dead-letter it unprocessed: the circuit is open.
    Reject,
}

/// A change of state, to log, count and publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub to: CircuitState,
    /// How long it stays open (for [`CircuitState::Open`]).
    pub backoff: Duration,
    /// Consecutive failures so far.
    pub failures: u32,
}

#[derive(Debug)]
struct Open {
    until: Instant,
    backoff: Duration,
    last_error: Option<String>,
}

/// One node's circuit breaker.
#[derive(Debug)]
pub struct Circuit {
    config: CircuitConfig,
    state: AtomicU8,
    consecutive: AtomicU32,
    open: Mutex<Open>,
}

impl Circuit {
    /// A closed circuit.
    pub fn new(config: CircuitConfig) -> Circuit {
        Circuit {
            config,
            state: AtomicU8::new(CLOSED),
            consecutive: AtomicU32::new(0),
            open: Mutex::new(Open {
                until: Instant::now(),
                backoff: config.backoff,
                last_error: None,
            }),
        }
    }

    /// The current state.
    pub fn state(&self) -> CircuitState {
        CircuitState::from_u8(self.state.load(Relaxed))
    }

    /// Consecutive failures.
    pub fn failures(&self) -> u32 {
        self.consecutive.load(Relaxed)
    }

    /// The last failure's message.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether to process an item now.
    pub fn admit(&self, now: Instant) -> Admit {
        match self.state.load(Relaxed) {
            CLOSED => Admit::Call,
            OPEN => {
                let open = self.lock();
                if now < open.until || self.state.load(Relaxed) != OPEN {
                    return Admit::Reject;
                }
                self.state.store(HALF_OPEN, Relaxed);
                Admit::Trial
            }
            _ => Admit::Reject,
        }
    }

    /// The state after [`Admit::Trial`] was given, for the caller to report.
    pub fn trial_started(&self) -> Transition {
        Transition {
            to: CircuitState::HalfOpen,
            backoff: Duration::ZERO,
            failures: self.failures(),
        }
    }

    /// An item was processed; closes a half-open circuit (`trial`).
    pub fn succeeded(&self, trial: bool) -> Option<Transition> {
        if !trial {
            if self.consecutive.load(Relaxed) != 0 {
                self.consecutive.store(0, Relaxed);
            }
            return None;
        }
        let mut open = self.lock();
        open.backoff = self.config.backoff;
        self.consecutive.store(0, Relaxed);
        self.state.store(CLOSED, Relaxed);
        Some(Transition {
            to: CircuitState::Closed,
            backoff: Duration::ZERO,
            failures: 0,
        })
    }

    /// An item failed with `error`; opens the circuit after enough failures, or at once after
    /// a failed trial (with twice the backoff).
    pub fn failed(&self, trial: bool, error: &str, now: Instant) -> Option<Transition> {
        let mut open = self.lock();
        open.last_error = Some(error.to_string());
        let failures = self.consecutive.load(Relaxed).saturating_add(1);
        self.consecutive.store(failures, Relaxed);
        if self.config.failures == 0 {
            return None;
        }
        let backoff = if trial {
            open.backoff
                .saturating_mul(2)
                .min(self.config.max_backoff)
                .max(self.config.backoff)
        } else if failures >= self.config.failures && self.state.load(Relaxed) == CLOSED {
            self.config.backoff
        } else {
            return None;
        };
        open.backoff = backoff;
        open.until = now.checked_add(backoff).unwrap_or(now);
        self.state.store(OPEN, Relaxed);
        Some(Transition {
            to: CircuitState::Open,
            backoff,
            failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn circuit() -> Circuit {
        Circuit::new(CircuitConfig {
            failures: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        })
    }

    #[test]
    fn a_success_resets_the_count_of_consecutive_failures() {
        let (circuit, now) = (circuit(), Instant::now());
        assert!(circuit.failed(false, "a", now).is_none());
        assert!(circuit.failed(false, "b", now).is_none());
        assert!(circuit.succeeded(false).is_none());
        assert_eq!(circuit.failures(), 0);
        assert!(circuit.failed(false, "c", now).is_none());
        assert_eq!(circuit.state(), CircuitState::Closed);
        assert_eq!(circuit.last_error().as_deref(), Some("c"));
    }

    #[test]
    fn the_backoff_doubles_after_each_failed_trial_up_to_the_maximum() {
        let (circuit, mut now) = (circuit(), Instant::now());
        for _ in 0..2 {
            circuit.failed(false, "x", now);
        }
        let opened = circuit.failed(false, "x", now).unwrap();
        assert_eq!((opened.to, opened.backoff), (CircuitState::Open, ms(100)));
        let mut backoffs = Vec::new();
        for _ in 0..3 {
            assert_eq!(circuit.admit(now), Admit::Reject);
            now += circuit.lock().backoff;
            assert_eq!(circuit.admit(now), Admit::Trial);
            assert_eq!(circuit.admit(now), Admit::Reject, "one trial at a time");
            backoffs.push(circuit.failed(true, "x", now).unwrap().backoff);
        }
        assert_eq!(backoffs, [ms(200), ms(300), ms(300)]);
        now += ms(300);
        assert_eq!(circuit.admit(now), Admit::Trial);
        assert_eq!(circuit.succeeded(true).unwrap().to, CircuitState::Closed);
        assert_eq!(circuit.admit(now), Admit::Call);
        for _ in 0..3 {
            circuit.failed(false, "x", now);
        }
        assert_eq!(circuit.lock().backoff, ms(100), "the backoff starts over");
    }

    #[test]
    fn zero_failures_never_opens() {
        let circuit = Circuit::new(CircuitConfig {
            failures: 0,
            ..CircuitConfig::default()
        });
        for _ in 0..100 {
            assert!(circuit.failed(false, "x", Instant::now()).is_none());
        }
        assert_eq!(circuit.admit(Instant::now()), Admit::Call);
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }
}
