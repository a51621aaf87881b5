//! Graphs running inside the broker: MQTT in, WebAssembly operators, MQTT out; and
//! `weir graph run` over recorded messages.

use super::harness::{
    free_port, metric, modules_dir, mosquitto_pub, repo, run_weir, wait_for_metrics, weir_bin,
    write_file, MosquittoSub, Weir, PATIENCE,
};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn the_demo_graph_of_the_default_configuration_converts_a_reading() {
    let dir = tempfile::tempdir().unwrap();
    let (v4, metrics) = (free_port(), free_port());
    // Run from the repository, whose target/modules holds the built example modules.
    let log = std::fs::File::create(dir.path().join("weir.log")).unwrap();
    let mut child = Command::new(weir_bin())
        .arg("run")
        .current_dir(repo(""))
        .env("WEIR_MQTT_PORT", v4.to_string())
        .env("WEIR_METRICS_PORT", metrics.to_string())
        .env("WEIR_DATA_DIR", dir.path().join("data"))
        .env_remove("WEIR_CONFIG")
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", metrics)).is_err() {
        assert!(Instant::now() < deadline, "weir did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut sub = MosquittoSub::start(&["-p", &v4.to_string(), "-t", "processed/#", "-v"]);
    let out = mosquitto_pub(&[
        "-p",
        &v4.to_string(),
        "-t",
        "sensors/gw1/temperature",
        "-m",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
    ]);
    assert!(out.status.success());
    assert_eq!(
        sub.next_message(),
        r#"processed/gw1/temperature {"temperature":{"value":100.0,"unit":"C"}}"#
    );
    assert_eq!(
        metric(metrics, r#"weir_graph_results_total{graph="demo"}"#),
        Some(1)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap();
    assert!(
        log.contains("graph `demo` on sensors/+/temperature → mqtt processed/{1..}"),
        "{log}"
    );
}

/// The readings the windows test publishes: topic, payload, and its `__ts` as milliseconds
/// after the first window's start and the node that stamped it.
const WINDOW_READINGS: [(&str, &str, u64, &str); 5] = [
    (
        "sensors/gw1/temperature",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
        100,
        "gw1",
    ),
    (
        "sensors/gw1/humidity",
        r#"{"humidity":{"value":40}}"#,
        200,
        "gw1",
    ),
    (
        "sensors/gw2/temperature",
        r#"{"temperature":{"value":20,"unit":"C"}}"#,
        300,
        "gw2",
    ),
    // Above the filter's upper bound (125 °C): not counted.
    (
        "sensors/gw2/temperature",
        r#"{"temperature":{"value":500,"unit":"C"}}"#,
        400,
        "gw2",
    ),
    (
        "sensors/gw1/humidity",
        r#"{"humidity":{"value":60}}"#,
        1100,
        "gw1",
    ),
];

/// Publishes `payload` on `topic` over MQTT 5 with mosquitto_pub, stamped `__ts: ts`.
fn publish_with_ts(port: u16, topic: &str, payload: &str, ts: &str) {
    let out = mosquitto_pub(&[
        "-V",
        "mqttv5",
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-m",
        payload,
        "-D",
        "publish",
        "user-property",
        "__ts",
        ts,
    ]);
    assert!(out.status.success(), "{out:?}");
}

/// The windowed-statistics graph (delay, branch, map, filter, two accumulates, concatenate):
/// exact results per window, each carrying its window's end as `__ts`. The last window holds a
/// single message and nothing comes after it: it closes on the clock.
#[test]
fn windows_of_the_complex_graph_give_exact_statistics() {
    let definition = repo("config/graphs/windowed-statistics.yaml");
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\n\
             metrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - name: stats\n    definition: '{}'\n    source: ['sensors/#']\n    sink: {{topic: stats/windows}}\n    configuration: {{window_ms: 1000}}\n",
            modules_dir(),
            definition.display()
        )
    });
    let mut sub = MosquittoSub::start(&[
        "-V",
        "mqttv5",
        "-p",
        &weir.v5.to_string(),
        "-t",
        "stats/#",
        "-F",
        "%t %p %P",
    ]);
    // Windows a little in the future, so that none has closed before its messages arrive.
    let base = (millis_now() / 1000 + 2) * 1000;
    let ts = |offset: u64, node: &str| format!("{:015}:00000:{node}", base + offset);
    for (topic, payload, offset, node) in WINDOW_READINGS {
        publish_with_ts(weir.v5, topic, payload, &ts(offset, node));
    }
    let first = ts(1000, "gw1");
    let second = ts(2000, "gw1");
    let expected = [
        format!(
            r#"stats/windows {{"temperature":{{"count":2,"min":20.0,"max":100.0,"average":60.0,"last":20.0,"unit":"C"}}}} __ts:{first}"#
        ),
        format!(
            r#"stats/windows {{"humidity":{{"count":1,"min":40.0,"max":40.0,"average":40.0,"last":40.0}}}} __ts:{first}"#
        ),
        format!(
            r#"stats/windows {{"humidity":{{"count":1,"min":60.0,"max":60.0,"average":60.0,"last":60.0}}}} __ts:{second}"#
        ),
    ];
    for line in expected {
        assert_eq!(sub.next_message(), line, "log:\n{}", weir.log());
    }
    assert_eq!(
        metric(metrics, r#"weir_graph_late_total{graph="stats"}"#),
        Some(0)
    );
    assert_eq!(
        metric(
            metrics,
            r#"weir_node_output_total{graph="stats",node="module-temperature/filter"}"#
        ),
        Some(2)
    );
}

/// Publishes `count` messages on one connection, as fast as mosquitto_pub sends them.
fn burst(port: u16, topic: &str, count: usize) {
    let mut child = Command::new("mosquitto_pub")
        .args(["-p", &port.to_string(), "-t", topic, "-q", "1", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..count {
        writeln!(stdin, "message {n}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

fn slow_graph(policy: &str) -> (Weir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let definition = write_file(
        dir.path(),
        "slow.yaml",
        "metadata: {name: slow, version: \"1\"}\nmoduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}\noperations:\n  - {operationType: source, name: source}\n  - {operationType: map, name: slow, module: \"slow:1.0.0\"}\n  - {operationType: sink, name: sink}\nconnections:\n  - {from: {name: source}, to: {name: slow}}\n  - {from: {name: slow}, to: {name: sink}}\n",
    );
    let started = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\n\
             metrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - name: slow\n    definition: '{}'\n    source: [in]\n    sink: {{topic: out}}\n    configuration: {{delay_ms: 10}}\n    queue: 2\n    back_pressure: {policy}\n",
            modules_dir(),
            definition.display()
        )
    });
    // The definition is read at start-up only.
    drop(dir);
    started
}

/// Receives `expected` messages (each within the harness's patience), then checks that no
/// more come once the graph's counters are final.
fn receive(sub: &mut MosquittoSub, expected: u64) -> u64 {
    for _ in 0..expected {
        sub.next_message();
    }
    assert!(sub.nothing_more(), "more messages than results");
    expected
}

#[test]
fn back_pressure_block_loses_nothing() {
    const BURST: u64 = 60;
    let (weir, metrics) = slow_graph("block");
    let mut sub = MosquittoSub::start(&["-p", &weir.v4.to_string(), "-t", "out", "-q", "1"]);
    burst(weir.v4, "in", BURST as usize);
    assert_eq!(receive(&mut sub, BURST), BURST);
    wait_for_metrics(metrics, "every result", |read| {
        read(r#"weir_graph_results_total{graph="slow"}"#) == BURST
    });
    assert_eq!(
        metric(metrics, r#"weir_graph_dropped_total{graph="slow"}"#),
        Some(0)
    );
}

#[test]
fn back_pressure_drop_counts_exactly_what_is_missing() {
    const BURST: u64 = 60;
    let (weir, metrics) = slow_graph("drop");
    let mut sub = MosquittoSub::start(&["-p", &weir.v4.to_string(), "-t", "out", "-q", "1"]);
    burst(weir.v4, "in", BURST as usize);
    // Every message of the burst is either dropped or, once processed, a result.
    wait_for_metrics(metrics, "the whole burst accounted for", |read| {
        read(r#"weir_graph_dropped_total{graph="slow"}"#)
            + read(r#"weir_graph_results_total{graph="slow"}"#)
            == BURST
    });
    let dropped = metric(metrics, r#"weir_graph_dropped_total{graph="slow"}"#).unwrap();
    let results = metric(metrics, r#"weir_graph_results_total{graph="slow"}"#).unwrap();
    assert!(
        dropped > 0,
        "a queue of 2 before a 10 ms module must overflow"
    );
    assert_eq!(receive(&mut sub, results), BURST - dropped);
    assert!(
        weir.log().contains("input queue full: message dropped"),
        "{}",
        weir.log()
    );
}

/// A recording of `count` readings over several 1-second windows, a few out of order.
fn recording(count: u64) -> String {
    let mut lines = String::new();
    for n in 0..count {
        let millis = 1_700_000_000_000 + n * 97 - if n % 7 == 3 { 150 } else { 0 };
        let (topic, payload) = if n % 3 == 0 {
            (
                "sensors/gw1/humidity".to_string(),
                format!(r#"{{\"humidity\":{{\"value\":{}}}}}"#, 30 + n % 40),
            )
        } else {
            (
                format!("sensors/gw{}/temperature", n % 4),
                format!(
                    r#"{{\"temperature\":{{\"value\":{},\"unit\":\"F\"}}}}"#,
                    50 + n % 60
                ),
            )
        };
        lines.push_str(&format!(
            "{{\"topic\": \"{topic}\", \"payload\": \"{payload}\", \"ts\": \"{millis:015}:{:05}:gw{}\"}}\n",
            n % 2,
            n % 4
        ));
    }
    lines
}

fn graph_run(dir: &std::path::Path, input: &str, workers: &str) -> String {
    let output = dir.join(format!("out-{workers}-{}.jsonl", std::process::id()));
    let (status, _, stderr) = run_weir(
        &[
            "graph",
            "run",
            "--graph",
            &repo("config/graphs/windowed-statistics.yaml")
                .display()
                .to_string(),
            "--modules",
            &modules_dir(),
            "--set",
            "window_ms=1000",
            "--input",
            input,
            "--output",
            &output.display().to_string(),
            "--workers",
            workers,
        ],
        dir,
    );
    assert!(status.success(), "{stderr}");
    let text = std::fs::read_to_string(&output).unwrap();
    std::fs::remove_file(&output).unwrap();
    text
}

#[test]
fn graph_run_is_deterministic_for_one_and_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(dir.path(), "in.jsonl", &recording(300));
    let input = input.display().to_string();
    let once = graph_run(dir.path(), &input, "1");
    let again = graph_run(dir.path(), &input, "1");
    let two = graph_run(dir.path(), &input, "2");
    assert_eq!(once, again, "two runs differ");
    assert_eq!(once, two, "1 and 2 workers differ");
    // 300 readings 97 ms apart span 30 windows of 1 s; each has temperature and humidity
    // statistics but the last, which holds one temperature reading. In a window, humidity
    // comes first: its first reading is the window's first message.
    let lines: Vec<&str> = once.lines().collect();
    assert_eq!(lines.len(), 59, "{once}");
    assert_eq!(
        lines[0],
        r#"{"topic":"","payload":"{\"humidity\":{\"count\":4,\"min\":30.0,\"max\":39.0,\"average\":34.5,\"last\":39.0}}","content_type":"application/json","user_properties":[],"ts":"001700000001000:00000:gw0"}"#
    );
    assert!(
        lines[1].contains(r#"{\"temperature\":{\"count\":7,"#),
        "{}",
        lines[1]
    );
}

#[test]
fn graph_run_reports_a_bad_input_line_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let input = write_file(
        dir.path(),
        "in.jsonl",
        "{\"topic\": \"a\", \"payload\": \"x\", \"ts\": \"001700000000000:00000:n\"}\n{\"topic\": \"a\"}\n",
    );
    let (status, _, stderr) = run_weir(
        &[
            "graph",
            "run",
            "--graph",
            &repo("config/graphs/temperature-map.yaml")
                .display()
                .to_string(),
            "--modules",
            &modules_dir(),
            "--input",
            &input.display().to_string(),
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("in.jsonl:2: missing field `payload`"),
        "{stderr}"
    );
}

/// A `__ts` far in the future (a device with a broken clock, or a hostile one) is not trusted:
/// the reading is stamped by the broker's clock and counted, and the graph goes on with the
/// broker's time (the result carries a present-day `__ts`).
#[test]
fn a_timestamp_far_ahead_of_the_broker_is_stamped_from_its_clock_and_counted() {
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\nengine: {{max_clock_skew_ms: 5000}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - name: demo\n    definition: builtin:temperature-map\n    source: ['sensors/+/temperature']\n    sink: {{topic: 'processed/{{1}}'}}\n",
            modules_dir()
        )
    });
    let port = weir.v5.to_string();
    let mut sub =
        MosquittoSub::start(&["-V", "5", "-p", &port, "-t", "processed/#", "-F", "%t %P"]);
    let reading = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    for ts in [
        "900000000000000:00000:broken-clock",
        &format!("{:015}:00000:gw1", millis_now() + 60_000),
    ] {
        let out = mosquitto_pub(&[
            "-V",
            "5",
            "-p",
            &port,
            "-t",
            "sensors/gw1/temperature",
            "-m",
            reading,
            "-D",
            "publish",
            "user-property",
            "__ts",
            ts,
        ]);
        assert!(out.status.success());
    }
    for _ in 0..2 {
        let line = sub.next_message();
        let ts = line.rsplit("__ts:").next().unwrap();
        let millis: u64 = ts[..15].parse().unwrap();
        assert!(
            millis < millis_now() + 5_000,
            "a result carries {ts}: {line}"
        );
    }
    assert_eq!(
        metric(
            metrics,
            r#"weir_graph_invalid_timestamps_total{graph="demo"}"#
        ),
        Some(2)
    );
    assert!(
        weir.log().contains("ahead of the broker's clock"),
        "{}",
        weir.log()
    );
}
