//! Modules that use threads the way crates written for threaded hosts do (`modules/parallel`
//! with rayon, `modules/shared-state` with `std::sync::{Mutex, Condvar}` statics) link with the
//! guest toolchain and run: spawning a thread fails with "unsupported", rayon falls back to the
//! calling thread, and locks and condition variables work on the one thread there is.

mod common;

use common::{instance, message, payload};
use serde_json::{json, Value};
use weir_wasm::OperatorKind;

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("the module answers JSON")
}

#[test]
fn rayon_runs_its_pool_on_the_calling_thread() {
    let mut map = instance("parallel", OperatorKind::Map, &[]);
    let input = message("sensors", r#"{"values": [1, 2, 3, 4.5]}"#, 0);
    let output = json_of(&payload(&map.map(&input).unwrap()));
    assert_eq!(
        output,
        json!({"sum": 10.5, "squares": 34.25, "count": 4, "workers": 1})
    );
    // The pool survives between calls.
    let again = json_of(&payload(
        &map.map(&message("s", r#"{"values": []}"#, 1)).unwrap(),
    ));
    assert_eq!(again["count"], 0);
}

#[test]
fn a_bad_value_is_the_modules_error_not_a_trap() {
    let mut map = instance("parallel", OperatorKind::Map, &[]);
    let error = map
        .map(&message("sensors", r#"{"values": [1, "x"]}"#, 0))
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("parallel: a value is not a number"),
        "{error}"
    );
}

#[test]
fn mutex_and_condvar_statics_work_and_spawning_fails_cleanly() {
    let mut map = instance("shared-state", OperatorKind::Map, &[]);
    let outputs: Vec<Value> = ["a", "bb", "ccc"]
        .iter()
        .enumerate()
        .map(|(n, body)| json_of(&payload(&map.map(&message("s", body, n as u64)).unwrap())))
        .collect();
    assert_eq!(
        outputs,
        [
            json!({"seen": 1, "bytes": 1, "spawn": "unsupported"}),
            json!({"seen": 2, "bytes": 3, "spawn": "unsupported"}),
            json!({"seen": 3, "bytes": 6, "spawn": "unsupported"}),
        ]
    );
}
