//! Upstream sinks against real services: graph results produced to a Kafka-protocol broker
//! (tansu) and exported to an OTLP/HTTP receiver, including outages of the upstream
//! (`WEIR_TEST_OUTAGE_S` seconds, 8 unless set: past the sinks' 2 s delivery timeout and
//! several retries; `WEIR_TEST_OUTAGE_S=30 cargo test -p weir --test e2e sinks` holds them longer).

use super::harness::{
    free_port, metric, modules_dir, repo, wait_for_metrics, wait_for_metrics_within, write_file,
    Weir, PATIENCE,
};
use super::services::{KafkaReader, OtlpReceiver, Record, Tansu};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the upstream is away in the outage tests: `WEIR_TEST_OUTAGE_S`, else 8 s (at least
/// 4 s: the sinks' delivery timeout is 2 s, and the outage must outlast it to be one).
fn outage() -> Duration {
    let seconds = std::env::var("WEIR_TEST_OUTAGE_S")
        .ok()
        .map(|text| {
            text.parse::<u64>()
                .unwrap_or_else(|_| panic!("WEIR_TEST_OUTAGE_S={text}: not a number of seconds"))
        })
        .unwrap_or(8);
    Duration::from_secs(seconds.max(4))
}
/// How long recovery may take once it is back (a delivery timeout, a backoff, a reconnect).
const RECOVERY: Duration = Duration::from_secs(30);

const ECHO_GRAPH: &str = "metadata: {name: echo, version: \"1\"}\nmoduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}\noperations:\n  - {operationType: source, name: source}\n  - {operationType: map, name: echo, module: \"echo:1.0.0\"}\n  - {operationType: sink, name: sink}\nconnections:\n  - {from: {name: source}, to: {name: echo}}\n  - {from: {name: echo}, to: {name: sink}}\n";

/// Weir with one graph, `definition` on `source`, whose sink is `sink` (YAML flow mapping).
fn weir_with_sink(definition: &str, source: &str, sink: &str) -> (Weir, u16) {
    weir_with(definition, source, sink, "")
}

/// [`weir_with_sink`] with `extra` top-level configuration.
fn weir_with(definition: &str, source: &str, sink: &str, extra: &str) -> (Weir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let definition = match definition {
        "echo" => write_file(dir.path(), "echo.yaml", ECHO_GRAPH)
            .display()
            .to_string(),
        builtin => builtin.to_string(),
    };
    let started = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\n\
             metrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             engine: {{log_interval_s: 1}}\n\
             graphs:\n  - name: up\n    definition: '{definition}'\n    source: ['{source}']\n    sink: {sink}\n{extra}",
            modules_dir(),
        )
    });
    drop(dir);
    started
}

/// Publishes `lines` as MQTT 5 messages on one connection, in order, at QoS 1, with the user
/// property `site=north` and content type `application/json`.
fn publish(weir: &Weir, topic: &str, lines: &[String]) {
    let mut child = Command::new("mosquitto_pub")
        .args([
            "-V",
            "5",
            "-p",
            &weir.v5.to_string(),
            "-t",
            topic,
            "-q",
            "1",
            "-l",
        ])
        .args(["-D", "publish", "user-property", "site", "north"])
        .args(["-D", "publish", "content-type", "application/json"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// Readings `k` in `range` in °F that the temperature map turns into whole °C (5k).
fn readings(range: std::ops::Range<u32>) -> Vec<String> {
    range
        .map(|k| format!(r#"{{"temperature":{{"value":{},"unit":"F"}}}}"#, 32 + 9 * k))
        .collect()
}

fn converted(k: u32) -> String {
    format!(r#"{{"temperature":{{"value":{}.0,"unit":"C"}}}}"#, 5 * k)
}

/// Which reading a converted payload came from.
fn reading_of(record: &Record) -> u32 {
    let value: Value = serde_json::from_str(&record.payload).unwrap();
    (value["temperature"]["value"].as_f64().unwrap() / 5.0) as u32
}

const KAFKA_TOPIC: &str = "weir-out";
const READINGS: &str = "sensors/gw1/temperature";

fn kafka_sink(tansu: &Tansu, extra: &str) -> String {
    format!(
        "{{kafka: {{bootstrap_servers: '{}', topic: {KAFKA_TOPIC}, delivery_timeout_ms: 2000}}, retry_max_ms: 1000{extra}}}",
        tansu.bootstrap()
    )
}

fn sample(name: &str, sink: &str) -> String {
    format!("weir_sink_{name}{{graph=\"up\",sink=\"{sink}\"}}")
}

#[test]
fn results_reach_kafka_in_order_with_key_and_headers() {
    let tansu = Tansu::start();
    tansu.create_topic(KAFKA_TOPIC);
    let (weir, metrics) = weir_with_sink(
        "builtin:temperature-map",
        "sensors/+/temperature",
        &kafka_sink(&tansu, ""),
    );
    publish(&weir, READINGS, &readings(0..20));
    let reader = KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC);
    let records = reader.read(20, PATIENCE);
    for (k, record) in records.iter().enumerate() {
        assert_eq!(record.payload, converted(k as u32));
        assert_eq!(record.offset, k as i64, "one record per message, in order");
        assert_eq!(record.key.as_deref(), Some(READINGS));
        let names: Vec<_> = record.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["site", "__ts", "content-type"], "{record:?}");
        assert_eq!(record.headers[0].1, "north");
        let ts: Vec<_> = record.headers[1].1.split(':').collect();
        assert_eq!(
            (ts[0].len(), ts[1].len(), ts[2]),
            (15, 5, "weir"),
            "{record:?}"
        );
        assert_eq!(record.headers[2].1, "application/json");
    }
    assert_eq!(reader.next(Duration::from_millis(500)), None);
    wait_for_metrics(metrics, "20 delivered", |read| {
        read(&sample("delivered_total", "kafka")) == 20 && read(&sample("up", "kafka")) == 1
    });
}

#[test]
fn a_kafka_property_key_takes_the_user_property() {
    let tansu = Tansu::start();
    tansu.create_topic(KAFKA_TOPIC);
    let sink = format!(
        "{{kafka: {{bootstrap_servers: '{}', topic: {KAFKA_TOPIC}, key: 'property:site', compression: gzip}}}}",
        tansu.bootstrap()
    );
    let (weir, _) = weir_with_sink("builtin:temperature-map", "sensors/+/temperature", &sink);
    publish(&weir, READINGS, &readings(0..1));
    let record = &KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC).read(1, PATIENCE)[0];
    assert_eq!(record.key.as_deref(), Some("north"));
    assert_eq!(record.payload, converted(0));
}

#[test]
fn a_kafka_sink_down_at_start_up_buffers_until_the_cluster_comes() {
    let mut tansu = Tansu::not_started();
    let (weir, metrics) = weir_with_sink(
        "builtin:temperature-map",
        "sensors/+/temperature",
        &kafka_sink(&tansu, ""),
    );
    wait_for_metrics(metrics, "the sink down", |read| {
        read(&sample("up", "kafka")) == 0
            && metric(metrics, &sample("up", "kafka")).is_some()
            && weir.log().contains(" is down: ")
    });
    publish(&weir, READINGS, &readings(0..5));
    wait_for_metrics(metrics, "5 results buffered", |read| {
        read(&sample("in_buffer", "kafka")) == 5
    });
    tansu.restart();
    tansu.create_topic(KAFKA_TOPIC);
    let records = KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC).read(5, RECOVERY);
    let got: Vec<_> = records.iter().map(reading_of).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    wait_for_metrics(metrics, "the sink up", |read| {
        read(&sample("up", "kafka")) == 1 && read(&sample("in_buffer", "kafka")) == 0
    });
}

/// Publishes one reading a second from `first` while the outage lasts, then waits out the
/// rest of it. Returns how many were published.
fn publish_through_outage(weir: &Weir, first: u32, stopped: Instant) -> u32 {
    let mut next = first;
    while stopped.elapsed() < outage() - Duration::from_secs(2) && next < first + 10 {
        publish(weir, READINGS, &readings(next..next + 1));
        next += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(outage().saturating_sub(stopped.elapsed()));
    next - first
}

#[test]
fn a_kafka_outage_loses_nothing_and_repeats_nothing() {
    let mut tansu = Tansu::start();
    tansu.create_topic(KAFKA_TOPIC);
    let (weir, metrics) = weir_with_sink(
        "builtin:temperature-map",
        "sensors/+/temperature",
        &kafka_sink(&tansu, ""),
    );
    publish(&weir, READINGS, &readings(0..10));
    let before = KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC).read(10, PATIENCE);
    tansu.stop();
    let stopped = Instant::now();
    let during = publish_through_outage(&weir, 10, stopped);
    assert_eq!(metric(metrics, &sample("up", "kafka")), Some(0));
    tansu.restart();
    tansu.create_topic(KAFKA_TOPIC);
    // The restarted cluster starts empty: what it has now arrived after the outage.
    let reader = KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC);
    let after = reader.read(during as usize, RECOVERY);
    assert_eq!(reader.next(Duration::from_secs(1)), None, "a record twice");
    let got: Vec<_> = before.iter().chain(&after).map(reading_of).collect();
    assert_eq!(got, (0..10 + during).collect::<Vec<_>>());
    wait_for_metrics(metrics, "every result delivered", |read| {
        read(&sample("delivered_total", "kafka")) == u64::from(10 + during)
            && read(&sample("dropped_total", "kafka")) == 0
            && read(&sample("retried_total", "kafka")) > 0
    });
}

#[test]
fn a_kafka_outage_with_drop_oldest_counts_exactly_what_is_missing() {
    const BURST: u32 = 30;
    let mut tansu = Tansu::start();
    tansu.create_topic(KAFKA_TOPIC);
    let (weir, metrics) = weir_with_sink(
        "builtin:temperature-map",
        "sensors/+/temperature",
        &kafka_sink(&tansu, ", buffer: 4, when_full: drop-oldest"),
    );
    publish(&weir, READINGS, &readings(0..2));
    KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC).read(2, PATIENCE);
    tansu.stop();
    let stopped = Instant::now();
    publish(&weir, READINGS, &readings(2..2 + BURST));
    wait_for_metrics(metrics, "drops", |read| {
        read(&sample("dropped_total", "kafka")) > 0
    });
    std::thread::sleep(outage().saturating_sub(stopped.elapsed()));
    tansu.restart();
    tansu.create_topic(KAFKA_TOPIC);
    wait_for_metrics_within(metrics, RECOVERY, "the burst accounted for", |read| {
        read(&sample("delivered_total", "kafka")) + read(&sample("dropped_total", "kafka"))
            == u64::from(2 + BURST)
    });
    let delivered = metric(metrics, &sample("delivered_total", "kafka")).unwrap() - 2;
    let dropped = metric(metrics, &sample("dropped_total", "kafka")).unwrap();
    let reader = KafkaReader::new(&tansu.bootstrap(), KAFKA_TOPIC);
    let after: Vec<_> = reader
        .read(delivered as usize, PATIENCE)
        .iter()
        .map(reading_of)
        .collect();
    assert_eq!(reader.next(Duration::from_secs(1)), None, "a record twice");
    assert!(after.windows(2).all(|w| w[0] < w[1]), "order: {after:?}");
    assert_eq!(u64::from(BURST) - after.len() as u64, dropped);
    assert!(dropped > 0 && !after.is_empty());
}

fn otlp_sink(receiver: &OtlpReceiver, extra: &str) -> String {
    format!(
        "{{otlp: {{endpoint: '{}'}}, retry_max_ms: 1000{extra}}}",
        receiver.endpoint()
    )
}

/// The attributes of an OTLP JSON object as (key, string form of the value) pairs.
fn attributes(owner: &Value) -> Vec<(String, String)> {
    owner["attributes"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|kv| {
                    let value = &kv["value"];
                    let text = value["stringValue"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| value.to_string());
                    (kv["key"].as_str().unwrap().to_string(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The log records of the exports the receiver gets until `count` have come.
fn log_records(receiver: &OtlpReceiver, count: usize, patience: Duration) -> Vec<Value> {
    let mut records = Vec::new();
    while records.len() < count {
        let export = receiver
            .next(patience)
            .unwrap_or_else(|| panic!("{} of {count} log records came", records.len()));
        assert_eq!(export["path"], "/v1/logs");
        for resource in export["request"]["resourceLogs"].as_array().unwrap() {
            for scope in resource["scopeLogs"].as_array().unwrap() {
                records.extend(scope["logRecords"].as_array().unwrap().iter().cloned());
            }
        }
    }
    records
}

fn body(record: &Value) -> String {
    record["body"]["stringValue"].as_str().unwrap().to_string()
}

#[test]
fn otel_metrics_become_otlp_metrics_and_other_payloads_log_records() {
    let receiver = OtlpReceiver::start();
    let (weir, metrics) = weir_with_sink("echo", "telemetry/#", &otlp_sink(&receiver, ""));
    publish(
        &weir,
        "telemetry/metrics",
        &[r#"{"metrics":[{"name":"temperature","value":21.5,"metric_type":"gauge","unit":"Cel","timestamp":1700000000123,"attributes":[{"key":"room","value":"a"}]},{"name":"door_opened","value":3,"metric_type":"counter","unit":"1","attributes":[]}]}"#.to_string()],
    );
    let export = receiver.next(PATIENCE).expect("a metrics export");
    assert_eq!(export["path"], "/v1/metrics");
    let resource = &export["request"]["resourceMetrics"][0];
    assert_eq!(
        attributes(&resource["resource"]),
        [
            ("service.name".to_string(), "weir".to_string()),
            ("weir.graph".to_string(), "up".to_string())
        ]
    );
    let found = &resource["scopeMetrics"][0]["metrics"];
    let gauge = &found[0];
    assert_eq!(gauge["name"], "temperature");
    assert_eq!(gauge["unit"], "Cel");
    let point = &gauge["gauge"]["dataPoints"][0];
    assert_eq!(point["asDouble"], 21.5);
    assert_eq!(point["timeUnixNano"], "1700000000123000000");
    assert_eq!(attributes(point), [("room".to_string(), "a".to_string())]);
    let counter = &found[1];
    assert_eq!(counter["name"], "door_opened");
    assert_eq!(counter["sum"]["isMonotonic"], true);
    assert_eq!(counter["sum"]["dataPoints"][0]["asInt"], "3");

    publish(&weir, "telemetry/logs", &["door left open".to_string()]);
    let record = &log_records(&receiver, 1, PATIENCE)[0];
    assert_eq!(body(record), "door left open");
    assert_eq!(
        attributes(record),
        [
            ("mqtt.topic".to_string(), "telemetry/logs".to_string()),
            (
                "mqtt.content_type".to_string(),
                "application/json".to_string()
            ),
            ("site".to_string(), "north".to_string()),
        ]
    );
    wait_for_metrics(metrics, "2 delivered", |read| {
        read(&sample("delivered_total", "otlp")) == 2 && read(&sample("up", "otlp")) == 1
    });
}

#[test]
fn an_otlp_outage_loses_nothing_and_repeats_nothing() {
    let mut receiver = OtlpReceiver::start();
    let (weir, metrics) = weir_with_sink("echo", "telemetry/#", &otlp_sink(&receiver, ""));
    let lines = |range: std::ops::Range<u32>| -> Vec<String> {
        range.map(|n| format!("line {n:02}")).collect()
    };
    publish(&weir, "telemetry/logs", &lines(0..5));
    let mut bodies: Vec<String> = log_records(&receiver, 5, PATIENCE)
        .iter()
        .map(body)
        .collect();
    receiver.stop();
    let stopped = Instant::now();
    let mut sent = 5;
    while stopped.elapsed() < outage() - Duration::from_secs(2) && sent < 15 {
        publish(&weir, "telemetry/logs", &lines(sent..sent + 1));
        sent += 1;
        std::thread::sleep(Duration::from_secs(1));
    }
    wait_for_metrics(metrics, "the sink down", |read| {
        read(&sample("up", "otlp")) == 0 && read(&sample("retried_total", "otlp")) > 0
    });
    std::thread::sleep(outage().saturating_sub(stopped.elapsed()));
    receiver.restart();
    bodies.extend(
        log_records(&receiver, sent as usize - 5, RECOVERY)
            .iter()
            .map(body),
    );
    assert!(
        receiver.next(Duration::from_secs(1)).is_none(),
        "an export twice"
    );
    assert_eq!(bodies, lines(0..sent));
    wait_for_metrics(metrics, "every result delivered", |read| {
        read(&sample("delivered_total", "otlp")) == u64::from(sent)
            && read(&sample("dropped_total", "otlp")) == 0
    });
}

#[test]
fn an_otlp_outage_with_drop_oldest_counts_exactly_what_is_missing() {
    const BURST: u32 = 20;
    let mut receiver = OtlpReceiver::start();
    let (weir, metrics) = weir_with_sink(
        "echo",
        "telemetry/#",
        &otlp_sink(&receiver, ", buffer: 3, when_full: drop-oldest"),
    );
    receiver.stop();
    let stopped = Instant::now();
    let lines: Vec<String> = (0..BURST).map(|n| format!("line {n:02}")).collect();
    publish(&weir, "telemetry/logs", &lines);
    wait_for_metrics(metrics, "drops", |read| {
        read(&sample("dropped_total", "otlp")) > 0
    });
    std::thread::sleep(outage().saturating_sub(stopped.elapsed()));
    receiver.restart();
    wait_for_metrics_within(metrics, RECOVERY, "the burst accounted for", |read| {
        read(&sample("delivered_total", "otlp")) + read(&sample("dropped_total", "otlp"))
            == u64::from(BURST)
    });
    let delivered = metric(metrics, &sample("delivered_total", "otlp")).unwrap();
    let dropped = metric(metrics, &sample("dropped_total", "otlp")).unwrap();
    let bodies: Vec<String> = log_records(&receiver, delivered as usize, PATIENCE)
        .iter()
        .map(body)
        .collect();
    assert!(
        receiver.next(Duration::from_secs(1)).is_none(),
        "an export twice"
    );
    let unique: BTreeSet<_> = bodies.iter().collect();
    assert_eq!(unique.len(), bodies.len());
    assert!(bodies.iter().all(|b| lines.contains(b)));
    assert_eq!(u64::from(BURST) - bodies.len() as u64, dropped);
    assert!(dropped > 0);
}

/// Runs `config/examples/NAME` on free ports with `env`.
fn example(name: &str, env: &[(&str, String)]) -> Weir {
    let port = free_port();
    let mut env = env.to_vec();
    env.extend([
        ("WEIR_MQTT_PORT", port.to_string()),
        ("WEIR_METRICS_PORT", free_port().to_string()),
    ]);
    let config = repo(&format!("config/examples/{name}"));
    Weir::spawn(tempfile::tempdir().unwrap(), &config, &env, port, port)
}

#[test]
fn the_example_configurations_deliver_to_kafka_and_to_a_collector() {
    let tansu = Tansu::start();
    tansu.create_topic("weir-out");
    let weir = example("kafka.yaml", &[("WEIR_KAFKA_BOOTSTRAP", tansu.bootstrap())]);
    publish(&weir, READINGS, &readings(2..3));
    let record = &KafkaReader::new(&tansu.bootstrap(), "weir-out").read(1, PATIENCE)[0];
    assert_eq!(record.payload, converted(2));
    assert_eq!(record.key.as_deref(), Some(READINGS));

    let receiver = OtlpReceiver::start();
    let weir = example("otlp.yaml", &[("WEIR_OTLP_ENDPOINT", receiver.endpoint())]);
    publish(&weir, READINGS, &readings(3..4));
    let record = &log_records(&receiver, 1, PATIENCE)[0];
    assert_eq!(body(record), converted(3));
}

#[test]
fn weir_exports_its_own_logs_and_metrics_over_otlp() {
    let receiver = OtlpReceiver::start();
    let telemetry = format!(
        "telemetry: {{otlp: {{endpoint: '{}', metrics_interval_s: 1, logs: info}}}}\n",
        receiver.endpoint()
    );
    let (weir, _) = weir_with(
        "builtin:temperature-map",
        "sensors/+/temperature",
        "{topic: 'out/{1..}'}",
        &telemetry,
    );
    publish(&weir, READINGS, &readings(0..3));
    let (mut ready_logged, mut received_counted, mut calls_measured) = (false, false, false);
    let deadline = Instant::now() + PATIENCE;
    while !(ready_logged && received_counted && calls_measured) {
        assert!(
            Instant::now() < deadline,
            "ready line exported: {ready_logged}, received counted: {received_counted}, \
             calls measured: {calls_measured}"
        );
        let Some(export) = receiver.next(PATIENCE) else {
            continue;
        };
        let request = &export["request"];
        if export["path"] == "/v1/logs" {
            let resource = &request["resourceLogs"][0];
            assert_eq!(
                attributes(&resource["resource"]),
                [("service.name".to_string(), "weir".to_string())]
            );
            for record in resource["scopeLogs"][0]["logRecords"].as_array().unwrap() {
                if body(record).starts_with("weir ") && body(record).ends_with(" ready") {
                    assert_eq!(record["severityText"], "INFO");
                    ready_logged = true;
                }
            }
        } else {
            let found = &request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"];
            for family in found.as_array().unwrap() {
                if family["name"] == "weir_graph_received_total" {
                    let point = &family["sum"]["dataPoints"][0];
                    assert_eq!(attributes(point), [("graph".to_string(), "up".to_string())]);
                    received_counted |= point["asInt"] == "3";
                }
                if family["name"] == "weir_node_call_seconds" {
                    calls_measured |= every_call_in_one_bucket(&family["histogram"], 3);
                }
            }
        }
    }
}

/// Whether `histogram` (an OTLP histogram, as JSON) has one data point of `count` calls whose
/// buckets, one more than its bounds, add up to that count.
fn every_call_in_one_bucket(histogram: &serde_json::Value, count: u64) -> bool {
    let point = &histogram["dataPoints"][0];
    let as_count = |value: &serde_json::Value| value.as_str().and_then(|v| v.parse::<u64>().ok());
    let buckets: Vec<u64> = point["bucketCounts"]
        .as_array()
        .map(|counts| counts.iter().filter_map(as_count).collect())
        .unwrap_or_default();
    let bounds = point["explicitBounds"].as_array().map_or(0, Vec::len);
    as_count(&point["count"]) == Some(count)
        && buckets.len() == bounds + 1
        && buckets.iter().sum::<u64>() == count
        && histogram["aggregationTemporality"] == "AGGREGATION_TEMPORALITY_CUMULATIVE"
}
