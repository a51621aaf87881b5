//! Each operator kind, called through the host on the example modules, with exact outputs.

mod common;

use bytes::Bytes;
use common::{instance, message, payload, ts};
use weir_model::data::{DataModel, Message};
use weir_wasm::{Fault, OperatorKind};

#[test]
fn temperature_map_converts_fahrenheit_and_keeps_the_rest_of_the_message() {
    let mut map = instance("temperature", OperatorKind::Map, &[]);
    let DataModel::Message(mut input) = message(
        "sensors/a/temperature",
        r#"{"temperature":{"value":212,"unit":"F"},"id":7}"#,
        1000,
    ) else {
        unreachable!()
    };
    input.content_type = Some(Bytes::from_static(b"application/json"));
    input.user_properties = vec![(Bytes::from_static(b"site"), Bytes::from_static(b"north"))];
    let output = map.map(&DataModel::Message(input.clone())).unwrap();
    let DataModel::Message(output) = output else {
        panic!("map returned another variant: {output:?}")
    };
    assert_eq!(
        &output.payload[..],
        br#"{"temperature":{"value":100.0,"unit":"C"},"id":7}"#
    );
    // Everything the module did not touch comes back as it went in.
    assert_eq!(output.topic, input.topic);
    assert_eq!(output.timestamp, input.timestamp);
    assert_eq!(output.content_type, input.content_type);
    assert_eq!(output.user_properties, input.user_properties);
}

#[test]
fn temperature_map_values() {
    let mut map = instance("temperature", OperatorKind::Map, &[]);
    for (fahrenheit, celsius) in [
        ("32", "0.0"),
        ("-40", "-40.0"),
        ("72", "22.22222222222222"),
        ("98.6", "37.0"),
    ] {
        let input = format!(r#"{{"temperature":{{"value":{fahrenheit},"unit":"F"}}}}"#);
        let output = map.map(&message("t", &input, 1)).unwrap();
        assert_eq!(
            payload(&output),
            format!(r#"{{"temperature":{{"value":{celsius},"unit":"C"}}}}"#)
        );
    }
    let celsius = r#"{"temperature":{"value":21.5,"unit":"C"}}"#;
    assert_eq!(
        payload(&map.map(&message("t", celsius, 1)).unwrap()),
        celsius
    );
}

#[test]
fn temperature_map_reports_bad_payloads_as_module_errors() {
    let mut map = instance("temperature", OperatorKind::Map, &[]);
    let error = map.map(&message("t", "not json", 1)).unwrap_err();
    assert_eq!(error.module, "temperature");
    assert_eq!(error.node, "temperature-map");
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
    // A module error leaves the instance as it was.
    assert_eq!(map.traps(), 0);
    let good = map.map(&message(
        "t",
        r#"{"temperature":{"value":50,"unit":"F"}}"#,
        1,
    ));
    assert_eq!(
        payload(&good.unwrap()),
        r#"{"temperature":{"value":10.0,"unit":"C"}}"#
    );
}

#[test]
fn temperature_filter_uses_configured_bounds() {
    let reading = |v: &str| {
        message(
            "t",
            &format!(r#"{{"temperature":{{"value":{v},"unit":"C"}}}}"#),
            1,
        )
    };
    let mut defaults = instance("temperature", OperatorKind::Filter, &[]);
    assert!(defaults.filter(&reading("-40")).unwrap());
    assert!(defaults.filter(&reading("125")).unwrap());
    assert!(!defaults.filter(&reading("125.5")).unwrap());
    assert!(!defaults.filter(&reading("-41")).unwrap());

    let mut narrow = instance(
        "temperature",
        OperatorKind::Filter,
        &[
            ("temperature_lower_bound", "10"),
            ("temperature_upper_bound", "20"),
        ],
    );
    assert!(narrow.filter(&reading("15")).unwrap());
    assert!(!narrow.filter(&reading("9.9")).unwrap());
    assert!(!narrow.filter(&reading("20.1")).unwrap());
    // °F readings are compared in °C: 59 °F is 15 °C.
    let fahrenheit = message("t", r#"{"temperature":{"value":59,"unit":"F"}}"#, 1);
    assert!(narrow.filter(&fahrenheit).unwrap());
}

#[test]
fn temperature_branch_sends_temperatures_to_true() {
    let mut branch = instance("temperature", OperatorKind::Branch, &[]);
    let temperature = message("t", r#"{"temperature":{"value":1,"unit":"C"}}"#, 5);
    let humidity = message("h", r#"{"humidity":{"value":40}}"#, 5);
    assert!(branch.branch(&ts(5), &temperature).unwrap());
    assert!(!branch.branch(&ts(5), &humidity).unwrap());
    assert!(!branch
        .branch(&ts(5), &DataModel::Bytes(Bytes::from_static(b"\x00\x01")))
        .unwrap());
}

#[test]
fn temperature_accumulate_follows_the_staged_value_protocol() {
    let mut accumulate = instance("temperature", OperatorKind::Accumulate, &[]);
    let reading = |v: &str, unit: &str| {
        message(
            "t",
            &format!(r#"{{"temperature":{{"value":{v},"unit":"{unit}"}}}}"#),
            10_000,
        )
    };
    // The first staged value is an empty message at the group's timestamp.
    let staged = DataModel::empty_staged(ts(10_000));
    let staged = accumulate
        .accumulate(&staged, &[reading("20", "C"), reading("10", "C")])
        .unwrap();
    assert_eq!(
        payload(&staged),
        r#"{"temperature":{"count":2,"min":10.0,"max":20.0,"average":15.0,"last":10.0,"unit":"C"}}"#
    );
    // The next batch folds into what was staged; °F readings are converted.
    let staged = accumulate
        .accumulate(&staged, &[reading("212", "F")])
        .unwrap();
    assert_eq!(
        payload(&staged),
        r#"{"temperature":{"count":3,"min":10.0,"max":100.0,"average":43.333333333333336,"last":100.0,"unit":"C"}}"#
    );
    let DataModel::Message(message) = &staged else {
        panic!("staged value is not a message")
    };
    assert_eq!(message.timestamp, ts(10_000));
    assert_eq!(
        message.content_type.as_deref(),
        Some(&b"application/json"[..])
    );
    assert!(message.topic.is_empty());
}

#[test]
fn humidity_accumulate() {
    let mut accumulate = instance("humidity", OperatorKind::Accumulate, &[]);
    let reading = |v: &str| message("h", &format!(r#"{{"humidity":{{"value":{v}}}}}"#), 1);
    let staged = accumulate
        .accumulate(
            &DataModel::empty_staged(ts(1)),
            &[reading("40"), reading("60"), reading("50")],
        )
        .unwrap();
    assert_eq!(
        payload(&staged),
        r#"{"humidity":{"count":3,"min":40.0,"max":60.0,"average":50.0,"last":50.0}}"#
    );
}

#[test]
fn window_delay_moves_to_the_end_of_the_window() {
    let mut delay = instance("window", OperatorKind::Delay, &[("window_ms", "1000")]);
    let item = message("t", "{}", 0);
    assert_eq!(delay.delay(&item, &ts(1_234)).unwrap().millis(), 2_000);
    assert_eq!(delay.delay(&item, &ts(1_000)).unwrap().millis(), 2_000);
    assert_eq!(delay.delay(&item, &ts(1_999)).unwrap().millis(), 2_000);

    let mut default_window = instance("window", OperatorKind::Delay, &[]);
    assert_eq!(
        default_window.delay(&item, &ts(12_345)).unwrap().millis(),
        20_000
    );
}

#[test]
fn delay_answers_earlier_than_the_item_are_clamped_to_the_item_time() {
    let mut rewind = instance("rewind", OperatorKind::Delay, &[("rewind_ms", "500")]);
    let at = weir_model::hlc::Hlc::from_millis(1_500, 3, "test".into());
    assert_eq!(rewind.delay(&message("t", "{}", 0), &at).unwrap(), at);
}

#[test]
fn init_refusing_the_configuration_is_an_error_naming_the_node() {
    let module = common::module("window");
    let error = weir_wasm::OperatorInstance::new(
        module,
        "bad-window",
        OperatorKind::Delay,
        vec![("window_ms".into(), "zero".into())],
        Default::default(),
    )
    .err()
    .expect("init accepted a bad window_ms");
    assert_eq!(error.node, "bad-window");
    assert!(matches!(error.fault, Fault::InitRejected), "{error}");
    assert_eq!(
        error.to_string(),
        "module window, node bad-window: init refused its configuration (returned false)"
    );
}

#[test]
fn an_interface_the_module_does_not_export_is_refused() {
    let error = weir_wasm::OperatorInstance::new(
        common::module("window"),
        "n",
        OperatorKind::Map,
        vec![],
        Default::default(),
    )
    .err()
    .expect("window has no map");
    assert!(matches!(error.fault, Fault::NotExported("map")), "{error}");
}

#[test]
fn module_reports_its_package_and_operators() {
    let temperature = common::module("temperature");
    assert_eq!(temperature.package(), weir_wasm::Package::Current);
    assert_eq!(
        temperature.operators(),
        &[
            OperatorKind::Map,
            OperatorKind::Filter,
            OperatorKind::Branch,
            OperatorKind::Accumulate
        ]
    );
    assert_eq!(common::module("window").operators(), &[OperatorKind::Delay]);
}

#[test]
fn module_metrics_are_kept_per_node() {
    let mut map = instance("temperature", OperatorKind::Map, &[]);
    for _ in 0..3 {
        map.map(&message(
            "t",
            r#"{"temperature":{"value":50,"unit":"F"}}"#,
            1,
        ))
        .unwrap();
    }
    let snapshot = map.metrics().snapshot();
    let weir_wasm::metrics::Metric::Counter(series) = &snapshot["conversions"] else {
        panic!("no conversions counter: {snapshot:?}")
    };
    assert_eq!(
        series[&vec![("module".to_string(), "temperature/map".to_string())]],
        3
    );
}

#[test]
fn raw_bytes_and_snapshots_cross_unchanged() {
    let mut map = instance("faulty-trap", OperatorKind::Map, &[]);
    let bytes = DataModel::Bytes(Bytes::from_static(b"\x00raw\xff"));
    assert_eq!(map.map(&bytes).unwrap(), bytes);
    let snapshot = DataModel::Snapshot(weir_model::data::Snapshot {
        timestamp: ts(3),
        format: Bytes::from_static(b"rgb8"),
        width: 2,
        height: 1,
        frame: Bytes::from_static(&[1, 2, 3, 4, 5, 6]),
    });
    assert_eq!(map.map(&snapshot).unwrap(), snapshot);
    let with_schema = DataModel::Message(Message {
        schema: Some(Box::new(weir_model::data::MessageSchema::Inline {
            name: Bytes::from_static(b"s"),
            content: Bytes::from_static(b"{}"),
        })),
        ..Message::new(ts(4), "a", "b")
    });
    assert_eq!(map.map(&with_schema).unwrap(), with_schema);
}

#[test]
fn preview_package_modules_run_unchanged() {
    let module = common::module("preview-map");
    assert_eq!(module.package(), weir_wasm::Package::Preview);
    assert_eq!(module.operators(), &[OperatorKind::Map]);
    let mut preview = instance("preview-map", OperatorKind::Map, &[]);
    let mut current = instance("temperature", OperatorKind::Map, &[]);
    for input in [
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
        r#"{"temperature":{"value":72,"unit":"F"}}"#,
    ] {
        let item = message("sensors/p/temperature", input, 9);
        assert_eq!(
            preview.map(&item).unwrap(),
            current.map(&item).unwrap(),
            "for {input}"
        );
    }
}
