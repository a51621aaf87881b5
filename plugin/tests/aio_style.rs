//! A module written as Azure IoT Operations' samples write theirs (`modules/aio-style`): it
//! builds against Weir's SDK only with `Duration` in scope, `Timespec` ↔ `Duration`, the state
//! store's `SetConditions` and `SetOptions::default()`, and `PartialEq`/`Default` on the
//! interface's records; here it runs.

mod common;

use common::{instance, message, payload, ts};
use weir_wasm::OperatorKind;

#[test]
fn a_delay_computes_window_ends_with_std_durations() {
    let mut delay = instance("aio-style", OperatorKind::Delay, &[("window_ms", "1000")]);
    let item = message("sensors", "{}", 0);
    assert_eq!(delay.delay(&item, &ts(1_234)).unwrap().millis(), 2_000);
    assert_eq!(delay.delay(&item, &ts(1_999)).unwrap().millis(), 2_000);
    let mut minute = instance("aio-style", OperatorKind::Delay, &[("window_ms", "60000")]);
    assert_eq!(
        minute
            .delay(&item, &ts(1_700_000_012_345))
            .unwrap()
            .millis(),
        1_700_000_040_000
    );
}

#[test]
fn a_map_counts_in_the_state_store_with_default_and_conditional_options() {
    let mut map = instance("aio-style", OperatorKind::Map, &[]);
    let outputs: Vec<String> = (0..3)
        .map(|n| payload(&map.map(&message("sensors", "{}", n)).unwrap()))
        .collect();
    assert_eq!(
        outputs,
        [
            r#"{"count": 1, "first": true}"#,
            r#"{"count": 2, "first": false}"#,
            r#"{"count": 3, "first": false}"#
        ]
    );
}
