//! Dataflow time: a hybrid-logical-clock timestamp as one totally ordered `u64`.
//!
//! The high bits are milliseconds since the Unix epoch, the low [`COUNTER_BITS`] the HLC counter
//! (saturated). The order of encoded times is the order of the timestamps, down to the
//! millisecond and counter; the node id only breaks ties between equal times and is not part of
//! the dataflow time.

use crate::hlc::Hlc;
use std::sync::Arc;

/// Bits of the encoded time that hold the HLC counter.
pub const COUNTER_BITS: u32 = 20;
const COUNTER_MAX: u64 = (1 << COUNTER_BITS) - 1;

/// The latest millisecond the encoding holds (about 557,000 years after the epoch): later
/// timestamps (from modules or payloads) are clamped to it rather than wrapping to the past.
pub const MAX_MILLIS: u64 = u64::MAX >> COUNTER_BITS;

/// The dataflow time of `hlc`.
///
/// ```
/// use weir_model::time::{decode, encode};
/// use weir_model::hlc::Hlc;
/// let hlc = Hlc::from_millis(1_700_000_000_123, 4, "gw1".into());
/// assert!(encode(&hlc) < encode(&Hlc::from_millis(1_700_000_000_123, 5, "gw0".into())));
/// assert_eq!(decode(encode(&hlc), "gw1".into()), hlc);
/// // A timestamp past the encoding's range is clamped, never wrapped to an earlier time.
/// let far = Hlc { secs: u64::MAX, nanos: 0, counter: 0, node_id: "m".into() };
/// assert!(encode(&far) > encode(&hlc));
/// ```
pub fn encode(hlc: &Hlc) -> u64 {
    let millis = hlc.millis();
    if millis > MAX_MILLIS {
        // Clamped with the largest counter, so that clamped times never sort before an
        // earlier timestamp at the last millisecond.
        return u64::MAX;
    }
    (millis << COUNTER_BITS) | hlc.counter.min(COUNTER_MAX)
}

/// The timestamp at dataflow time `time`, issued by `node_id`.
pub fn decode(time: u64, node_id: Arc<str>) -> Hlc {
    Hlc::from_millis(time >> COUNTER_BITS, time & COUNTER_MAX, node_id)
}

/// The dataflow time `millis` milliseconds before `time` (saturating at zero).
pub fn minus_millis(time: u64, millis: u64) -> u64 {
    time.saturating_sub(millis.min(MAX_MILLIS) << COUNTER_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `time_encoding` fuzz target: two timestamps past the encoding's range, the
    /// earlier with a large counter, encoded in the wrong order.
    #[test]
    fn timestamps_past_the_range_keep_their_order() {
        let earlier = Hlc {
            secs: 1_099_511_693_066,
            nanos: 294_000_000,
            counter: 18_446_743_936_270_598_143,
            node_id: "a".into(),
        };
        let later = Hlc::from_millis(u64::MAX, 255, "b".into());
        assert!(encode(&earlier) <= encode(&later));
        let last = Hlc::from_millis(MAX_MILLIS, 3, "c".into());
        assert!(encode(&last) < encode(&earlier));
    }

    #[test]
    fn subtracting_a_huge_lateness_saturates() {
        let time = encode(&Hlc::from_millis(1_700_000_000_000, 1, "a".into()));
        assert_eq!(minus_millis(time, u64::MAX), 0);
        assert_eq!(minus_millis(time, 0), time);
    }
}
