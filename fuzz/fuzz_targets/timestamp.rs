//! The `__ts` user property: any text parses or is refused; a parsed timestamp prints back to
//! the same timestamp, and the broker's clock takes it without a panic or a move backwards.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_model::time::{decode, encode};
use weir_model::hlc::{Hlc, HlcClock};

fuzz_target!(|text: &str| {
    let Ok(hlc) = Hlc::parse(text) else {
        return;
    };
    assert_eq!(Hlc::parse(&hlc.to_string()).as_ref(), Ok(&hlc));
    let time = encode(&hlc);
    assert_eq!(encode(&decode(time, hlc.node_id.clone())), time);
    let mut clock = HlcClock::new("fuzz");
    let before = clock.now();
    if clock.trusts(&hlc) {
        clock.observe(&hlc);
    }
    let after = clock.now();
    assert!(encode(&after) > encode(&before));
    let _ = hlc.since_epoch();
});
