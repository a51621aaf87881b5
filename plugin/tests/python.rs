//! Python modules built with componentize-py run on the same host, and give the same output as
//! the Rust modules that implement the same logic.

mod common;

use common::{instance, message, payload};
use weir_wasm::{Fault, OperatorKind, Package};

const INPUTS: &[&str] = &[
    r#"{"temperature":{"value":212,"unit":"F"}}"#,
    r#"{"temperature":{"value":72,"unit":"F"},"sensor":"ß-7"}"#,
    r#"{"temperature":{"value":-40.5,"unit":"F"}}"#,
    r#"{"temperature":{"value":98.6,"unit":"F"},"extra":[1,2,{"a":null}]}"#,
    r#"{"temperature":{"value":21.5,"unit":"C"}}"#,
    r#"{"temperature":{"value":0,"unit":"F"}}"#,
];

#[test]
fn python_map_matches_the_rust_map() {
    let mut rust = instance("temperature", OperatorKind::Map, &[]);
    let mut python = instance("python-map", OperatorKind::Map, &[]);
    for input in INPUTS {
        let item = message("sensors/x/temperature", input, 1);
        let (r, p) = (rust.map(&item).unwrap(), python.map(&item).unwrap());
        assert_eq!(payload(&p), payload(&r), "for {input}");
        assert_eq!(p, r, "whole message for {input}");
    }
}

#[test]
fn python_filter_matches_the_rust_filter() {
    let bounds = [
        ("temperature_lower_bound", "0"),
        ("temperature_upper_bound", "50"),
    ];
    let mut rust = instance("temperature", OperatorKind::Filter, &bounds);
    let mut python = instance("python-filter", OperatorKind::Filter, &bounds);
    for input in INPUTS {
        let item = message("t", input, 1);
        assert_eq!(
            python.filter(&item).unwrap(),
            rust.filter(&item).unwrap(),
            "for {input}"
        );
    }
}

#[test]
fn python_module_errors_are_module_errors() {
    let mut python = instance("python-map", OperatorKind::Map, &[]);
    let error = python.map(&message("t", "not json", 1)).unwrap_err();
    let Fault::Returned {
        message: reason, ..
    } = &error.fault
    else {
        panic!("expected a module error, got {error}")
    };
    assert!(
        reason.starts_with("temperature/map: payload is not JSON"),
        "{reason}"
    );
    assert_eq!(python.traps(), 0);
}

#[test]
fn python_components_are_detected_and_get_room_to_run() {
    let module = common::module("python-map");
    assert_eq!(module.package(), Package::Current);
    assert_eq!(module.operators(), &[OperatorKind::Map]);
    assert!(module.imports().iter().any(|i| i.starts_with("wasi:cli/")));
    assert!(module.limits().memory_bytes > common::module("temperature").limits().memory_bytes);
}

#[test]
fn python_branch_matches_the_rust_branch() {
    let mut rust = instance("temperature", OperatorKind::Branch, &[]);
    let mut python = instance("python-branch", OperatorKind::Branch, &[]);
    let at = common::ts(5);
    for input in INPUTS
        .iter()
        .chain(&[r#"{"humidity":{"value":40}}"#, "not json", "[]"])
    {
        let item = message("t", input, 5);
        assert_eq!(
            python.branch(&at, &item).unwrap(),
            rust.branch(&at, &item).unwrap(),
            "for {input}"
        );
    }
}

#[test]
fn python_accumulate_matches_the_rust_accumulate() {
    let mut rust = instance("humidity", OperatorKind::Accumulate, &[]);
    let mut python = instance("python-accumulate", OperatorKind::Accumulate, &[]);
    let reading = |v: &str| message("h", &format!(r#"{{"humidity":{{"value":{v}}}}}"#), 1);
    let batches = [
        vec![reading("40"), reading("60.5")],
        vec![reading("10")],
        vec![reading("33.3")],
    ];
    let (mut r, mut p) = (
        weir_model::data::DataModel::empty_staged(common::ts(1)),
        weir_model::data::DataModel::empty_staged(common::ts(1)),
    );
    for batch in &batches {
        r = rust.accumulate(&r, batch).unwrap();
        p = python.accumulate(&p, batch).unwrap();
        assert_eq!(payload(&p), payload(&r));
        assert_eq!(p, r);
    }
    assert_eq!(
        payload(&r),
        r#"{"humidity":{"count":4,"min":10.0,"max":60.5,"average":35.95,"last":33.3}}"#
    );
}

#[test]
fn python_delay_matches_the_rust_delay() {
    let configuration = [("window_ms", "2500")];
    let mut rust = instance("window", OperatorKind::Delay, &configuration);
    let mut python = instance("python-delay", OperatorKind::Delay, &configuration);
    let item = message("t", "{}", 0);
    for millis in [0, 1, 2_499, 2_500, 1_700_000_001_234] {
        let at = common::ts(millis);
        assert_eq!(
            python.delay(&item, &at).unwrap(),
            rust.delay(&item, &at).unwrap(),
            "at {millis}"
        );
    }
}
