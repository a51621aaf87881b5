//! Hybrid logical clocks: the timestamp every message carries.
//!
//! A timestamp is physical time (seconds and nanoseconds since the Unix epoch), a counter that
//! orders events within the same instant, and the id of the node that issued it. On the wire
//! (the MQTT 5 user property `__ts`) it is `<ms:15 digits>:<counter:5 digits>:<node-id>`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A hybrid-logical-clock timestamp. Ordered by time, then counter, then node id.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Hlc {
    /// Whole seconds since the Unix epoch.
    pub secs: u64,
    /// Nanoseconds within the second (below 1e9).
    pub nanos: u32,
    /// Orders timestamps issued within the same instant.
    pub counter: u64,
    /// The node that issued the timestamp.
    pub node_id: Arc<str>,
}

/// Why a `__ts` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid __ts `{value}`: expected <ms:15 digits>:<counter:5 digits>:<node-id>")]
pub struct ParseHlcError {
    value: String,
}

impl Hlc {
    /// A timestamp at `millis` since the Unix epoch.
    ///
    /// ```
    /// use weir_model::hlc::Hlc;
    /// let ts = Hlc::from_millis(1_700_000_000_123, 4, "gw1".into());
    /// assert_eq!(ts.millis(), 1_700_000_000_123);
    /// assert_eq!(ts.to_string(), "001700000000123:00004:gw1");
    /// ```
    pub fn from_millis(millis: u64, counter: u64, node_id: Arc<str>) -> Hlc {
        Hlc {
            secs: millis / 1000,
            nanos: (millis % 1000) as u32 * 1_000_000,
            counter,
            node_id,
        }
    }

    /// Milliseconds since the Unix epoch (nanoseconds below a millisecond are dropped; a time
    /// past `u64::MAX` milliseconds, which only a module or a payload can give, saturates).
    ///
    /// ```
    /// use weir_model::hlc::Hlc;
    /// let far = Hlc { secs: u64::MAX, nanos: 999_999_999, counter: 0, node_id: "m".into() };
    /// assert_eq!(far.millis(), u64::MAX);
    /// ```
    pub fn millis(&self) -> u64 {
        self.secs
            .saturating_mul(1000)
            .saturating_add(u64::from(self.nanos / 1_000_000))
    }

    /// Parses the `__ts` form `<ms:15 digits>:<counter:5 digits>:<node-id>`.
    ///
    /// ```
    /// use weir_model::hlc::Hlc;
    /// let ts = Hlc::parse("001700000000123:00004:gw1").unwrap();
    /// assert_eq!((ts.millis(), ts.counter, &*ts.node_id), (1_700_000_000_123, 4, "gw1"));
    /// assert!(Hlc::parse("17:4:gw1").is_err());
    /// ```
    pub fn parse(value: &str) -> Result<Hlc, ParseHlcError> {
        let error = || ParseHlcError {
            value: value.to_string(),
        };
        let mut parts = value.splitn(3, ':');
        let (Some(millis), Some(counter), Some(node_id)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(error());
        };
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(millis, 15) || !digits(counter, 5) || node_id.is_empty() {
            return Err(error());
        }
        Ok(Hlc::from_millis(
            millis.parse().map_err(|_| error())?,
            counter.parse().map_err(|_| error())?,
            node_id.into(),
        ))
    }

    /// The physical part as a duration since the Unix epoch (saturating).
    pub fn since_epoch(&self) -> Duration {
        Duration::from_secs(self.secs).saturating_add(Duration::from_nanos(self.nanos.into()))
    }
}

/// The wall clock in milliseconds since the Unix epoch.
fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl fmt::Display for Hlc {
    /// The `__ts` form. Counters above 99999 print with more digits rather than wrap.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:015}:{:05}:{}",
            self.millis(),
            self.counter,
            self.node_id
        )
    }
}

/// Issues strictly increasing timestamps from the wall clock: the physical part follows the
/// clock, and the counter breaks ties (and covers a clock that steps back).
#[derive(Debug)]
pub struct HlcClock {
    node_id: Arc<str>,
    last: Option<(u64, u64)>,
    max_skew_ms: u64,
}

/// How far ahead of this clock a timestamp from elsewhere may be and still be trusted, by
/// default (`engine.max_clock_skew_ms`).
pub const DEFAULT_MAX_SKEW_MS: u64 = 60_000;

impl HlcClock {
    /// A clock for node `node_id`, trusting timestamps up to [`DEFAULT_MAX_SKEW_MS`] ahead.
    pub fn new(node_id: impl Into<Arc<str>>) -> HlcClock {
        HlcClock {
            node_id: node_id.into(),
            last: None,
            max_skew_ms: DEFAULT_MAX_SKEW_MS,
        }
    }

    /// Trusts timestamps up to `ms` ahead of the wall clock.
    pub fn set_max_skew_ms(&mut self, ms: u64) {
        self.max_skew_ms = ms;
    }

    /// The largest lead over the wall clock a timestamp from elsewhere may have.
    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// Whether `seen` (from a client or a payload) is close enough to the wall clock to be
    /// trusted: one far in the future would hold every later stamp back with it.
    ///
    /// ```
    /// use weir_model::hlc::{Hlc, HlcClock};
    /// let clock = HlcClock::new("weir");
    /// assert!(clock.trusts(&Hlc::from_millis(1_700_000_000_000, 0, "gw".into())));
    /// assert!(!clock.trusts(&Hlc::from_millis(900_000_000_000_000, 0, "gw".into())));
    /// ```
    pub fn trusts(&self, seen: &Hlc) -> bool {
        seen.millis() <= wall_millis().saturating_add(self.max_skew_ms)
    }

    /// Makes every later timestamp greater than `seen` (for example the newest one persisted).
    pub fn observe(&mut self, seen: &Hlc) {
        let seen = (seen.millis(), seen.counter);
        if self.last.is_none_or(|last| seen > last) {
            self.last = Some(seen);
        }
    }

    /// The next timestamp, in milliseconds with a counter.
    pub fn now(&mut self) -> Hlc {
        let wall = wall_millis();
        let next = match self.last {
            Some((millis, counter)) if wall <= millis => (millis, counter + 1),
            _ => (wall, 0),
        };
        self.last = Some(next);
        Hlc::from_millis(next.0, next.1, self.node_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_wire_form() {
        let text = "001700000000123:00042:node-a:with:colons";
        assert_eq!(Hlc::parse(text).unwrap().to_string(), text);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "001700000000123:00042",
            "001700000000123:00042:",
            "1700000000123:00042:n",
            "00170000000012x:00042:n",
            "001700000000123:0042:n",
        ] {
            assert!(Hlc::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn orders_by_time_then_counter_then_node() {
        let a = Hlc::from_millis(5, 1, "b".into());
        let b = Hlc::from_millis(5, 2, "a".into());
        let c = Hlc::from_millis(6, 0, "a".into());
        assert!(a < b && b < c);
    }

    #[test]
    fn clock_is_strictly_increasing_even_behind_an_observed_future() {
        let mut clock = HlcClock::new("n");
        let future = Hlc::from_millis(u64::MAX / 4, 7, "x".into());
        clock.observe(&future);
        let first = clock.now();
        let second = clock.now();
        assert_eq!((first.millis(), first.counter), (future.millis(), 8));
        assert!(second > first);
    }
}
