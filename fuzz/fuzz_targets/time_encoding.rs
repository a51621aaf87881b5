//! Dataflow time: the encoding of hybrid-logical-clock timestamps keeps their order (clamping
//! what is past its range, never wrapping), decodes back to itself, and subtracting a lateness
//! saturates.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_model::time::{decode, encode, minus_millis, MAX_MILLIS};
use weir_model::hlc::Hlc;

fuzz_target!(|input: (u64, u32, u64, u64, u32, u64, u64)| {
    let (secs_a, nanos_a, counter_a, millis_b, _, counter_b, lateness) = input;
    let a = Hlc {
        secs: secs_a,
        nanos: nanos_a % 1_000_000_000,
        counter: counter_a,
        node_id: "a".into(),
    };
    let b = Hlc::from_millis(millis_b, counter_b, "b".into());
    let (ea, eb) = (encode(&a), encode(&b));
    if (a.millis(), a.counter) <= (b.millis(), b.counter) {
        assert!(ea <= eb, "{a} encodes after {b}");
    }
    assert_eq!(encode(&decode(ea, "a".into())), ea);
    let earlier = minus_millis(ea, lateness);
    assert!(earlier <= ea);
    if lateness == 0 {
        assert_eq!(earlier, ea);
    }
    assert!(decode(ea, "a".into()).millis() <= MAX_MILLIS);
    let _ = a.since_epoch();
});
