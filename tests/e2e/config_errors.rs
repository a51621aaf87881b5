//! A bad configuration gives the documented error (file:line:column: key: what was expected)
//! and a non-zero exit, never a panic.

use super::harness::{run_weir, write_file};
use std::net::TcpListener;

/// Runs `weir run --config bad.yaml` on `yaml` and returns stderr, asserting a clean failure.
fn rejected(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "bad.yaml", yaml);
    let (status, _, stderr) = run_weir(&["run", "--config", "bad.yaml"], dir.path());
    assert_eq!(status.code(), Some(1), "exit status for {yaml:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "panic for {yaml:?}: {stderr}");
    stderr
}

fn assert_error(yaml: &str, expected: &str) {
    let stderr = rejected(yaml);
    assert!(
        stderr.contains(expected),
        "for configuration\n{yaml}\nexpected error containing\n  {expected}\ngot\n  {stderr}"
    );
}

#[test]
fn unknown_top_level_key() {
    assert_error(
        "brokr: {}\n",
        "bad.yaml:1:1: brokr: unknown field `brokr`, expected one of `broker`, `graphs`, `bridges`, `modules`, `engine`, `metrics`, `telemetry`",
    );
}

#[test]
fn unknown_nested_key_names_its_path() {
    assert_error(
        "broker:\n  listeners:\n    - protocol: '5'\n      address: 127.0.0.1:1\n      tsl: {}\n",
        "bad.yaml:5:7: broker.listeners[0].tsl: unknown field `tsl`, expected one of `name`, `protocol`, `address`, `tls`, `auth`, `limits`",
    );
}

#[test]
fn wrong_type_says_what_was_expected() {
    assert_error(
        "broker:\n  router:\n    max_connections: many\n",
        "bad.yaml:3:22: broker.router.max_connections: invalid type: string \"many\", expected usize",
    );
}

#[test]
fn bad_address() {
    assert_error(
        "broker:\n  listeners:\n    - protocol: '3.1.1'\n      address: localhost\n",
        "bad.yaml:4:16: broker.listeners[0].address: invalid socket address syntax",
    );
}

#[test]
fn unknown_protocol() {
    assert_error(
        "broker:\n  listeners:\n    - protocol: '4.0'\n      address: 127.0.0.1:1\n",
        "bad.yaml:3:7: broker.listeners[0].protocol: unknown protocol `4.0`, expected mqtt or websockets (\"3.1.1\" and \"5\" mean mqtt)",
    );
}

#[test]
fn missing_required_key() {
    assert_error(
        "broker:\n  listeners:\n    - address: 127.0.0.1:1\n",
        "broker.listeners[0]: missing field `protocol`",
    );
}

#[test]
fn unset_environment_variable_is_located() {
    assert_error(
        "broker:\n  listeners:\n    - protocol: '5'\n      address: 127.0.0.1:${WEIR_TEST_SURELY_UNSET}\n",
        "bad.yaml:4:26: environment variable `WEIR_TEST_SURELY_UNSET` is not set",
    );
}

#[test]
fn error_after_a_substitution_keeps_the_written_column() {
    // The default expands to 1 character where 22 were written; the column must be the
    // user's, not the expanded text's.
    assert_error(
        "broker: {router: {max_segment_count: ${X_UNSET_FOR_TEST:-5}, max_connections: -1}}\n",
        "bad.yaml:1:79: broker.router.max_connections: invalid type: integer `-1`, expected usize",
    );
}

#[test]
fn missing_tls_file() {
    assert_error(
        "broker:\n  listeners:\n    - protocol: '5'\n      address: 127.0.0.1:1\n      tls:\n        cert: nowhere.pem\n        key: nowhere.key\n",
        "bad.yaml:6:9: broker.listeners[0].tls.cert: cannot read file",
    );
}

#[test]
fn tls_file_that_is_not_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "cert.pem", "not a certificate\n");
    write_file(dir.path(), "key.pem", "not a key\n");
    write_file(
        dir.path(),
        "bad.yaml",
        "broker:\n  listeners:\n    - protocol: '5'\n      address: 127.0.0.1:1\n      tls: {cert: cert.pem, key: key.pem}\n",
    );
    let (status, _, stderr) = run_weir(&["run", "--config", "bad.yaml"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("broker.listeners[0].tls: cert")
            && stderr.contains("expected a PEM file with at least one CERTIFICATE"),
        "{stderr}"
    );
}

#[test]
fn segment_size_below_rumqttd_minimum() {
    assert_error(
        "broker:\n  router:\n    max_segment_size: 100\n",
        "bad.yaml:3:5: broker.router.max_segment_size: expected a segment size of at least 1024 bytes, got 100",
    );
}

#[test]
fn duplicate_listener_address() {
    assert_error(
        "broker:\n  listeners:\n    - {protocol: '3.1.1', address: '127.0.0.1:7'}\n    - {protocol: '5', address: '127.0.0.1:7'}\n",
        "bad.yaml:2:3: broker.listeners: two listeners use address 127.0.0.1:7",
    );
}

#[test]
fn no_anonymous_access_and_no_user() {
    assert_error(
        "broker:\n  auth:\n    allow_anonymous: false\n",
        "broker.auth: allow_anonymous: false needs at least one entry in `users`",
    );
}

#[test]
fn yaml_syntax_error() {
    assert_error("broker:\n  listeners: [\n", "bad.yaml:3:1: ");
}

#[test]
fn missing_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_weir(&["run", "--config", "absent.yaml"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("absent.yaml: cannot read configuration"),
        "{stderr}"
    );
}

#[test]
fn port_in_use_names_the_listener() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let stderr = rejected(&format!(
        "broker:\n  listeners:\n    - {{name: busy, protocol: '3.1.1', address: '127.0.0.1:{port}'}}\n"
    ));
    assert!(
        stderr.contains(&format!("listener `busy` cannot bind 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[test]
fn config_check_accepts_a_good_file_and_rejects_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "good.yaml",
        "broker:\n  listeners:\n    - {protocol: '5', address: '127.0.0.1:1'}\n",
    );
    let (status, stdout, _) = run_weir(&["config", "check", "good.yaml"], dir.path());
    assert!(status.success());
    assert!(
        stdout.contains("listener mqtt-1: MQTT 3.1/3.1.1/5 on 127.0.0.1:1"),
        "{stdout}"
    );
    write_file(dir.path(), "bad.yaml", "broker: 3\n");
    let (status, _, stderr) = run_weir(&["config", "check", "bad.yaml"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("bad.yaml:1:9: broker: invalid type: integer `3`"),
        "{stderr}"
    );
}

const GRAPH: &str = "graphs:\n  - name: g\n    definition: builtin:temperature-map\n";

#[test]
fn a_graph_without_sink_topic_could_feed_itself() {
    assert_error(
        &format!("{GRAPH}    source: [sensors/+/temperature]\n"),
        "bad.yaml:2:3: graphs[0]: graph `g` has no sink.topic, so results keep their own topic and can feed the graph's source again; set sink.topic, or `allow_loop: true` if that is intended",
    );
}

#[test]
fn a_sink_topic_matching_the_source_is_a_loop() {
    assert_error(
        &format!("{GRAPH}    source: [sensors/#]\n    sink: {{topic: \"sensors/{{1..}}\"}}\n"),
        "bad.yaml:2:3: graphs[0]: graph `g`: sink.topic `sensors/{1..}` can match source filter `sensors/#`, so the graph would feed itself; change one, or set `allow_loop: true` if that is intended",
    );
}

#[test]
fn a_loop_is_accepted_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "loop.yaml",
        &format!("{GRAPH}    source: [sensors/#]\n    allow_loop: true\n"),
    );
    let (status, stdout, stderr) = run_weir(&["config", "check", "loop.yaml"], dir.path());
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("configuration is valid"), "{stdout}");
}

#[test]
fn graph_binding_values_are_located() {
    for (yaml, expected) in [
        (
            "graphs:\n  - name: g\n    definition: builtin:nope\n    source: [a]\n    sink: {topic: b}\n",
            "bad.yaml:3:17: graphs[0].definition: no built-in graph `nope` (built in: temperature-map, windowed-statistics)",
        ),
        (
            "graphs:\n  - name: g\n    definition: missing.yaml\n    source: [a]\n    sink: {topic: b}\n",
            "bad.yaml:3:17: graphs[0].definition: cannot read file ",
        ),
        (
            &format!("{GRAPH}    source: [a]\n    sink: {{topic: \"b/{{x}}\"}}\n"),
            "bad.yaml:5:19: graphs[0].sink.topic: invalid placeholder `{x}`: expected {topic}, {N} or {N..}",
        ),
        (
            &format!("{GRAPH}    source: [a, a/#/b]\n    sink: {{topic: b}}\n"),
            "bad.yaml:4:17: graphs[0].source[1]: invalid topic filter `a/#/b`",
        ),
        (
            &format!("{GRAPH}    source: []\n    sink: {{topic: b}}\n"),
            "graphs[0].source: no source filter: expected at least one MQTT topic filter",
        ),
        (
            &format!("{GRAPH}    source: {{kafka: {{bootstrap_servers: 'h:9092', topics: [], group: g}}}}\n"),
            "bad.yaml:4:13: graphs[0].source.kafka: kafka source: topics needs at least one topic name, none empty",
        ),
        (
            &format!("{GRAPH}    source: {{kafka: {{bootstrap_servers: 'h:9092', topics: [t], group: g, start: now}}}}\n"),
            "graphs[0].source.kafka.start: unknown start `now`: expected `committed`, `earliest` or `latest`",
        ),
        (
            &format!("{GRAPH}    source: {{mqtt: [a]}}\n"),
            "bad.yaml:4:14: graphs[0].source.mqtt: unknown field `mqtt`, expected `kafka`",
        ),
        (
            &format!("{GRAPH}    source: [a]\n    sink: {{topic: b}}\n    back_pressure: wait\n"),
            "bad.yaml:6:20: graphs[0].back_pressure: unknown back-pressure policy `wait`: expected `block` or `drop`",
        ),
        (
            &format!("{GRAPH}    source: [a]\n    sink: {{topic: b}}\n    workers: 0\n"),
            "graphs[0].workers: expected at least 1",
        ),
        (
            &format!("{GRAPH}    source: [a]\n    sink: {{topic: b}}\n  - name: g\n    definition: builtin:temperature-map\n    source: [c]\n    sink: {{topic: d}}\n"),
            "graphs: two graphs are named `g`: names must be unique",
        ),
    ] {
        assert_error(yaml, expected);
    }
}

#[test]
fn a_graph_whose_module_is_missing_stops_the_start_naming_it() {
    assert_error(
        &format!("modules: {{directories: [/nonexistent]}}\n{GRAPH}    source: [a]\n    sink: {{topic: b}}\n"),
        "error: graph `g`: builtin:temperature-map:17:13: operations[1].module: node `module-temperature/map`: module `temperature:1.0.0` not found; looked for /nonexistent/temperature-1.0.0.wasm",
    );
}

#[test]
#[cfg(all(feature = "kafka", feature = "otlp"))]
fn upstream_sink_settings_are_checked_and_located() {
    let kafka = "kafka: {bootstrap_servers: '127.0.0.1:1', topic: t";
    for (sink, expected) in [
        (
            format!("{{topic: b, {kafka}}}}}"),
            "graphs[0].sink: a graph has one sink: set MQTT (`topic`), `kafka` or `otlp`, not several",
        ),
        (
            format!("{{{kafka}, acks: 1}}}}"),
            "graphs[0].sink.kafka: an idempotent producer needs acks `all` (got `1`); set `idempotent: false` to use it",
        ),
        (
            format!("{{{kafka}, exactly_once: true}}}}"),
            "graphs[0].sink.kafka: `exactly_once: true` is not supported: Weir does not write Kafka transactions; results are written at least once, and a Kafka-fed graph's carry a `weir-result-id` header to drop repeats by (docs/scale-out.md)",
        ),
        (
            format!("{{{kafka}, options: {{transactional.id: t1}}}}}}"),
            "graphs[0].sink.kafka: option `transactional.id` is not supported: Weir does not write Kafka transactions; results are written at least once, and a Kafka-fed graph's carry a `weir-result-id` header to drop repeats by (docs/scale-out.md)",
        ),
        (
            format!("{{{kafka}, acks: 2}}}}"),
            "graphs[0].sink.kafka: acks must be `all`, `1` or `0`",
        ),
        (
            format!("{{{kafka}, compression: brotli}}}}"),
            "graphs[0].sink.kafka: unknown compression `brotli`: expected none, gzip, snappy, lz4 or zstd",
        ),
        (
            format!("{{{kafka}, key: 'header:x'}}}}"),
            "graphs[0].sink.kafka: unknown key `header:x`: expected `none`, `topic` or `property:<name>`",
        ),
        (
            format!("{{{kafka}, options: {{no.such.property: 1}}}}}}"),
            "bad.yaml:5:11: graphs[0].sink.kafka: Client config error: No such configuration property: \"no.such.property\"",
        ),
        (
            format!("{{{kafka}}}, when_full: drop}}"),
            "bad.yaml:5:76: graphs[0].sink.when_full: unknown policy `drop`: expected `block` or `drop-oldest`",
        ),
        (
            "{otlp: {endpoint: '127.0.0.1:4318'}}".to_string(),
            "graphs[0].sink.otlp: endpoint `127.0.0.1:4318` must be an http:// or https:// URL",
        ),
        (
            "{otlp: {endpoint: 'http://127.0.0.1:4317', protocol: grpc}}".to_string(),
            "graphs[0].sink.otlp: protocol `grpc` is not built into this Weir; use `http/protobuf`",
        ),
        (
            "{otlp: {endpoint: 'http://127.0.0.1:4318', signal: traces}}".to_string(),
            "graphs[0].sink.otlp.signal: unknown variant `traces`, expected one of `auto`, `logs`, `metrics`",
        ),
        (
            "{topic: b, buffer: 10}".to_string(),
            "graphs[0].sink: buffer, when_full and retry_* apply to `kafka` and `otlp` sinks",
        ),
    ] {
        assert_error(&format!("{GRAPH}    source: [a]\n    sink: {sink}\n"), expected);
    }
}

#[test]
#[cfg(feature = "otlp")]
fn a_telemetry_log_level_is_checked_at_load() {
    assert_error(
        "telemetry:\n  otlp:\n    endpoint: http://127.0.0.1:9\n    logs: loud\n",
        "bad.yaml:3:5: telemetry.otlp.logs: `loud` is not a level: expected error, warn, info, debug, trace or off",
    );
}

#[test]
fn a_single_router_segment() {
    assert_error(
        "broker:\n  router: {max_segment_count: 1}\n",
        "broker.router.max_segment_count: expected at least 2 segments",
    );
}

#[test]
fn a_node_id_that_would_break_timestamps_is_refused() {
    assert_error(
        "engine:\n  node_id: 'gw:1'\n",
        "bad.yaml:2:3: engine.node_id: expected a node id without `:` or control characters",
    );
}

#[test]
fn bridge_errors_name_their_place() {
    let bridge = |body: &str| format!("bridges:\n  - name: cloud\n{body}");
    let topics = "    topics: [{pattern: 'a/#'}]\n";
    for (yaml, expected) in [
        (
            bridge(&format!("    addresses: ['h', 'host:port']\n{topics}")),
            "bad.yaml:3:16: bridges[0].addresses[1]: address `host:port`: the port must be a number from 1 to 65535",
        ),
        (
            bridge("    addresses: ['h']\n    topics:\n      - {pattern: 'a/#', remote_prefix: 'x/+/'}\n"),
            "bad.yaml:5:7: bridges[0].topics[0]: `a/#`: remote_prefix `x/+/` contains a wildcard: prefixes are literal topic levels",
        ),
        (
            "bridges:\n  - {name: a, addresses: [h], topics: [{pattern: a}]}\n  - {name: a, addresses: [h], topics: [{pattern: b}]}\n".to_string(),
            "bad.yaml:1:1: bridges: two bridges are named `a`: names must be unique",
        ),
        (
            "bridges:\n  - {name: a, client_id: gw, addresses: [h], topics: [{pattern: a}]}\n  - {name: b, client_id: gw, addresses: [h], topics: [{pattern: b}]}\n".to_string(),
            "bad.yaml:1:1: bridges: two bridges use client id `gw`",
        ),
        (
            bridge(&format!("    addresses: [h]\n    tls: {{ ca: /etc/hostname }}\n{topics}")),
            "bad.yaml:4:10: bridges[0].tls.ca: /etc/hostname: expected a PEM file with at least one CERTIFICATE",
        ),
        (
            bridge(&format!("    adresses: [h]\n{topics}")),
            "bad.yaml:3:5: bridges[0].adresses: unknown field `adresses`",
        ),
        (
            bridge(&format!("    addresses: [h]\n    protocol: '4.0'\n{topics}")),
            "bridges[0].protocol: unknown protocol `4.0`, expected \"3.1\", \"3.1.1\" or \"5\"",
        ),
        (
            bridge("    addresses: [h]\n    topics:\n      - {pattern: '$share/weir/a/#', direction: both}\n"),
            "bad.yaml:5:7: bridges[0].topics[0]: `$share/weir/a/#`: a shared subscription (`$share/...`) only brings messages in: set `direction: in`",
        ),
        (
            bridge("    addresses: [h]\n    clean_start: false\n    topics: [{pattern: '$share/weir/a/#', direction: in}]\n"),
            "bad.yaml:2:3: bridges[0]: `clean_start: false` with a shared subscription",
        ),
        (
            bridge(&format!("    addresses: [h]\n    queue: {{ when_full: wait }}\n{topics}")),
            "bridges[0].queue.when_full: unknown variant `wait`, expected `drop-oldest` or `block`",
        ),
    ] {
        assert_error(&yaml, expected);
    }
}
