//! The draining shutdown: on SIGTERM the graphs process what they hold, open windows close and
//! emit, and upstream sinks deliver before the broker exits, within
//! `shutdown.drain_timeout_s`.

use super::harness::{modules_dir, mosquitto_pub_lines, repo, Weir, PATIENCE};
use super::services::{KafkaReader, Tansu};
use serde_json::Value;
use std::time::Duration;

const TOPIC: &str = "weir-windows";

fn weir_with_kafka_windows(bootstrap: &str, extra: &str) -> Weir {
    let definition = repo("config/graphs/windowed-statistics.yaml");
    Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\n\
             graphs:\n  - name: stats\n    definition: '{}'\n    source: ['sensors/#']\n    configuration: {{window_ms: 3600000}}\n    sink: {{kafka: {{bootstrap_servers: '{bootstrap}', topic: {TOPIC}, delivery_timeout_ms: 2000}}, retry_max_ms: 500}}\n{extra}",
            modules_dir(),
            definition.display()
        )
    })
}

/// Publishes `count` temperature readings at QoS 1; returns once every one was acknowledged.
fn publish_readings(weir: &Weir, count: usize) {
    let port = weir.v4.to_string();
    let args = ["-p", &port, "-q", "1", "-t", "sensors/gw1/temperature"];
    let lines = (0..count).map(|k| format!(r#"{{"temperature":{{"value":{k},"unit":"C"}}}}"#));
    mosquitto_pub_lines(&args, lines);
}

#[test]
fn sigterm_closes_open_windows_and_their_results_reach_kafka_before_exit() {
    const READINGS: usize = 40;
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC);
    let mut weir = weir_with_kafka_windows(&tansu.bootstrap(), "");
    publish_readings(&weir, READINGS);
    let reader = KafkaReader::new(&tansu.bootstrap(), TOPIC);
    assert_eq!(
        reader.next(Duration::from_millis(500)),
        None,
        "an hour-long window closed early"
    );
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success(), "{status:?}\n{}", weir.log());
    // Every acknowledged reading is counted in the windows that closed at shutdown (an hour
    // boundary may split them in two), and those results were in Kafka before the exit.
    let mut counted = 0;
    while let Some(record) = reader.next(Duration::from_millis(500)) {
        let value: Value = serde_json::from_str(&record.payload).unwrap();
        counted += value["temperature"]["count"].as_u64().unwrap();
    }
    assert_eq!(counted, READINGS as u64, "log:\n{}", weir.log());
    assert!(took < PATIENCE, "{took:?}");
    let log = weir.log();
    let drained = log.lines().find(|line| line.contains("graphs drained in"));
    assert!(drained.is_some(), "{log}");
    eprintln!(
        "{READINGS} readings in open windows, Kafka sink: {}; exit {took:?} after SIGTERM",
        drained.unwrap_or_default()
    );
}

#[test]
fn a_drain_that_cannot_deliver_ends_at_its_timeout_and_says_what_was_left() {
    let tansu = Tansu::not_started();
    let mut weir = weir_with_kafka_windows(&tansu.bootstrap(), "shutdown: {drain_timeout_s: 1}\n");
    publish_readings(&weir, 5);
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let log = weir.log();
    assert!(log.contains("1 results not delivered"), "{log}");
}
