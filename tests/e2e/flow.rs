//! No silent loss: bursts reach every subscriber and graph whole, a stopped subscriber loses
//! only what it is counted to lose, a full graph slows only its own publishers, and graphs
//! take their sources at the door (interception, `sink.qos`).

use super::clients::Client4;
use super::harness::{
    metric, modules_dir, mosquitto_pub, mosquitto_pub_lines, wait_for_metrics,
    wait_for_metrics_within, write_file, MosquittoSub, Weir, PATIENCE,
};
use rumqttc::QoS;
use std::time::{Duration, Instant};

const BURST: usize = 100_000;

/// `count` readings in °F, each a distinct line.
fn readings(count: usize) -> impl Iterator<Item = String> {
    (0..count).map(|n| {
        format!(
            r#"{{"temperature":{{"value":{},"unit":"F"}},"n":{n}}}"#,
            n % 200
        )
    })
}

#[test]
fn a_burst_of_100000_readings_reaches_every_subscriber_and_the_demo_graph() {
    let (weir, metrics) = Weir::start_default();
    let port = weir.v4.to_string();
    let mut plain = MosquittoSub::start(&["-p", &port, "-t", "sensors/#"]);
    let mut results = MosquittoSub::start(&["-p", &port, "-t", "processed/#"]);
    let started = Instant::now();
    mosquitto_pub_lines(
        &["-p", &port, "-t", "sensors/gw1/temperature"],
        readings(BURST),
    );
    let published = started.elapsed();
    assert_eq!(
        plain.count(BURST, PATIENCE),
        BURST,
        "at the plain subscriber"
    );
    assert_eq!(
        results.count(BURST, PATIENCE),
        BURST,
        "results at their subscriber"
    );
    assert_eq!(
        metric(metrics, r#"weir_graph_received_total{graph="demo"}"#),
        Some(BURST as u64)
    );
    assert_eq!(
        metric(metrics, r#"weir_graph_results_total{graph="demo"}"#),
        Some(BURST as u64)
    );
    assert_eq!(metric(metrics, "weir_dropped_total"), Some(0));
    assert_eq!(
        metric(metrics, r#"weir_graph_dropped_total{graph="demo"}"#),
        Some(0)
    );
    eprintln!("100,000 readings published in {published:?}");
}

#[test]
fn a_stopped_subscriber_loses_only_what_is_counted() {
    let weir = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    });
    let (weir, metrics) = weir;
    let port = weir.v4.to_string();
    let mut stopped = MosquittoSub::start(&["-p", &port, "-t", "burst/#", "-i", "stopped"]);
    let mut reading = MosquittoSub::start(&["-p", &port, "-t", "burst/#", "-i", "reading"]);
    stopped.signal("STOP");
    // 200-byte messages: 20 MB, more than the sockets between Weir and the stopped client hold.
    let filler = "x".repeat(180);
    mosquitto_pub_lines(
        &["-p", &port, "-t", "burst/x"],
        (0..BURST).map(|n| format!("{n:>12} {filler}")),
    );
    // The reading subscriber is not held back for good by the stopped one.
    assert_eq!(reading.count(BURST, PATIENCE), BURST);
    let dropped_sample = r#"weir_client_dropped_total{client="stopped"}"#;
    wait_for_metrics(metrics, "drops counted for the stopped client", |read| {
        read(dropped_sample) > 0
    });
    stopped.signal("CONT");
    let delivered = stopped.count(BURST, Duration::from_secs(2));
    let dropped = metric(metrics, dropped_sample).unwrap() as usize;
    assert_eq!(
        delivered + dropped,
        BURST,
        "delivered {delivered} + dropped {dropped}"
    );
    assert_eq!(metric(metrics, "weir_dropped_total"), Some(dropped as u64));
    assert!(
        weir.log().contains("client stopped reading"),
        "the stall is logged:\n{}",
        weir.log()
    );
}

/// A graph of one map node running `module`, as a YAML file in `dir`.
fn one_node_graph(dir: &std::path::Path, name: &str, module: &str) -> String {
    let definition = format!(
        "metadata: {{name: {name}, version: \"1\"}}\nmoduleRequirements: {{apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}}\noperations:\n  - {{operationType: source, name: source}}\n  - {{operationType: map, name: node, module: \"{module}\"}}\n  - {{operationType: sink, name: sink}}\nconnections:\n  - {{from: {{name: source}}, to: {{name: node}}}}\n  - {{from: {{name: node}}, to: {{name: sink}}}}\n"
    );
    write_file(dir, &format!("{name}.yaml"), &definition)
        .display()
        .to_string()
}

fn listeners(v4: u16, v5: u16) -> String {
    format!(
        "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmodules: {{directories: ['{}']}}\n",
        modules_dir()
    )
}

#[test]
fn a_full_graph_slows_only_the_publishers_that_feed_it() {
    let dir = tempfile::tempdir().unwrap();
    let slow = one_node_graph(dir.path(), "slow", "slow:1.0.0");
    let echo = one_node_graph(dir.path(), "echo", "echo:1.0.0");
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "{}metrics: {{listen: '127.0.0.1:{metrics}'}}\ngraphs:\n  - {{name: slow, definition: '{slow}', source: [slow/in], sink: {{topic: slow/out}}, configuration: {{delay_ms: 20}}, queue: 2, back_pressure: block}}\n  - {{name: echo, definition: '{echo}', source: [echo/in], sink: {{topic: echo/out}}}}\n",
            listeners(v4, v5)
        )
    });
    let port = weir.v4.to_string();
    let mut plain = MosquittoSub::start(&["-p", &port, "-t", "plain/#"]);
    let mut echoed = MosquittoSub::start(&["-p", &port, "-t", "echo/out"]);
    // 200 messages for a 20 ms module behind a queue of 2: the publisher waits about 4 s.
    let slow_port = port.clone();
    let blocked = std::thread::spawn(move || {
        let started = Instant::now();
        mosquitto_pub_lines(
            &["-p", &slow_port, "-t", "slow/in", "-q", "1"],
            (0..200).map(|n| format!("slow {n}")),
        );
        started.elapsed()
    });
    wait_for_metrics(metrics, "the slow graph's queue full", |read| {
        read(r#"weir_graph_queue_depth{graph="slow"}"#) >= 2
    });
    let started = Instant::now();
    mosquitto_pub_lines(
        &["-p", &port, "-t", "plain/x"],
        (0..1000).map(|n| format!("plain {n}")),
    );
    mosquitto_pub_lines(
        &["-p", &port, "-t", "echo/in"],
        (0..1000).map(|n| format!("echo {n}")),
    );
    assert_eq!(plain.count(1000, PATIENCE), 1000);
    assert_eq!(echoed.count(1000, PATIENCE), 1000);
    let others = started.elapsed();
    assert!(
        !blocked.is_finished(),
        "the slow graph's publisher should still be held back"
    );
    let held = blocked.join().unwrap();
    assert!(
        others < held,
        "others took {others:?}, the slow graph's publisher {held:?}"
    );
    wait_for_metrics(metrics, "every slow result", |read| {
        read(r#"weir_graph_results_total{graph="slow"}"#) == 200
    });
    assert_eq!(
        metric(metrics, r#"weir_graph_dropped_total{graph="slow"}"#),
        Some(0)
    );
}

#[test]
fn an_intercepting_graph_replaces_the_messages_on_its_sources() {
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "{}graphs:\n  - {{name: convert, definition: 'builtin:temperature-map', source: ['sensors/+/temperature'], sink: {{topic: '{{topic}}'}}, intercept: true}}\n",
            listeners(v4, v5)
        )
    });
    let port = weir.v4.to_string();
    let mut sub = MosquittoSub::start(&["-p", &port, "-t", "sensors/#", "-v"]);
    let out = mosquitto_pub(&[
        "-p",
        &port,
        "-q",
        "1",
        "-t",
        "sensors/gw1/temperature",
        "-m",
        r#"{"temperature":{"value":212,"unit":"F"}}"#,
    ]);
    assert!(out.status.success(), "the QoS 1 publish was acknowledged");
    assert_eq!(
        sub.next_message(),
        r#"sensors/gw1/temperature {"temperature":{"value":100.0,"unit":"C"}}"#
    );
    // Neither the original nor the result fed back into the graph.
    assert!(sub.nothing_more(), "only the converted reading");
    // Other topics are untouched.
    let out = mosquitto_pub(&["-p", &port, "-t", "sensors/gw1/humidity", "-m", "41"]);
    assert!(out.status.success());
    assert_eq!(sub.next_message(), "sensors/gw1/humidity 41");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_results_are_delivered_at_the_lower_of_sink_qos_and_granted_qos() {
    let dir = tempfile::tempdir().unwrap();
    let echo = one_node_graph(dir.path(), "echo", "echo:1.0.0");
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "{}graphs:\n  - {{name: one, definition: '{echo}', source: [q1/in], sink: {{topic: q1/out, qos: 1}}}}\n  - {{name: zero, definition: '{echo}', source: [q0/in], sink: {{topic: q0/out}}}}\n",
            listeners(v4, v5)
        )
    });
    let mut sub = Client4::connect(Client4::options("results", weir.v4))
        .await
        .unwrap();
    sub.subscribe("q1/out", QoS::ExactlyOnce).await;
    sub.subscribe("q0/out", QoS::ExactlyOnce).await;
    let publisher = Client4::connect(Client4::options("inputs", weir.v4))
        .await
        .unwrap();
    for (input, output, expected) in [
        ("q1/in", "q1/out", QoS::AtLeastOnce),
        ("q0/in", "q0/out", QoS::AtMostOnce),
    ] {
        publisher
            .client
            .publish(input, QoS::ExactlyOnce, false, "x")
            .await
            .unwrap();
        let got = sub.next().await;
        assert_eq!((got.topic.as_str(), got.qos), (output, expected));
    }
}

#[test]
fn drops_are_reported_per_client_and_in_sys() {
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  max_queued_messages: 10\n  sys_interval: 1\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    });
    let port = weir.v4.to_string();
    let mut stopped = MosquittoSub::start(&["-p", &port, "-t", "d/#", "-i", "sleeper"]);
    stopped.signal("STOP");
    // Large messages fill the socket buffers quickly, so the queue limit of 10 is reached.
    let payload = "x".repeat(60_000);
    mosquitto_pub_lines(
        &["-p", &port, "-t", "d/x"],
        (0..500).map(|_| payload.clone()),
    );
    wait_for_metrics_within(metrics, Duration::from_secs(20), "drops", |read| {
        read(r#"weir_client_dropped_total{client="sleeper"}"#) > 0
    });
    stopped.signal("CONT");
    let delivered = stopped.count(500, Duration::from_secs(2)) as u64;
    let dropped = metric(metrics, r#"weir_client_dropped_total{client="sleeper"}"#).unwrap();
    assert_eq!(
        delivered + dropped,
        500,
        "delivered {delivered} + dropped {dropped}"
    );
    let mut sys = MosquittoSub::start(&["-p", &port, "-t", "$SYS/broker/messages/dropped", "-v"]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = sys.next_message();
        if line == format!("$SYS/broker/messages/dropped {dropped}") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "$SYS never said {dropped}: {line}"
        );
    }
}
