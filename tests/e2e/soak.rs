//! Load without loss: two QoS 1 publishers through a graph whose module fails on one message
//! in a hundred, beside an unrelated plain subscriber. Every message is at the sink or at the
//! dead-letter topic exactly once, and the plain subscriber gets everything.
//!
//! `WEIR_SOAK_MESSAGES` sets the messages per publisher (default 10,000: 20,000 in all);
//! docs/BENCHMARKS.md reports a run of 1,000,000.

use super::harness::*;
use std::time::{Duration, Instant};

fn messages_per_publisher() -> u64 {
    std::env::var("WEIR_SOAK_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000)
}

/// Reads `count` payloads from `sub`, marking each in `seen` (which must not have it yet).
fn collect(sub: &mut MosquittoSub, count: u64, seen: &mut [u8], mark: u8, what: &str) {
    for _ in 0..count {
        let line = sub.next_message();
        let n: usize = line
            .parse()
            .unwrap_or_else(|_| panic!("{what}: unexpected payload {line:?}"));
        assert_eq!(
            seen[n], 0,
            "{what}: message {n} arrived twice (or also elsewhere)"
        );
        seen[n] = mark;
    }
}

/// Publishes each number of `numbers` at QoS 1 on `soak/p<publisher>` with rumqttc, and
/// returns once every one was acknowledged. (Debian's `mosquitto_pub -l` 2.0.11 exits at the end
/// of its input without sending the QoS 1 messages still queued in it, with status 0: with
/// hundreds of thousands of lines it leaves most unsent, against mosquitto as against Weir.)
fn publish_qos1(port: u16, publisher: u64, numbers: std::ops::Range<u64>) {
    let mut options = rumqttc::MqttOptions::new(format!("soak-{publisher}"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(100);
    let (client, mut connection) = rumqttc::Client::new(options, 1000);
    let count = numbers.end - numbers.start;
    let topic = format!("soak/p{publisher}");
    let sending = std::thread::spawn(move || {
        for n in numbers {
            client
                .publish(&topic, rumqttc::QoS::AtLeastOnce, false, n.to_string())
                .unwrap();
        }
        client
    });
    let mut acknowledged = 0;
    for event in connection.iter() {
        match event {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) => acknowledged += 1,
            Ok(_) => {}
            Err(e) => panic!("publisher {publisher}: {e}"),
        }
        if acknowledged == count {
            break;
        }
    }
    let client = sending.join().unwrap();
    let _ = client.disconnect();
}

#[test]
fn two_qos1_publishers_through_a_flaky_module_lose_and_repeat_nothing() {
    let per_publisher = messages_per_publisher();
    let total = 2 * per_publisher;
    let dir = tempfile::tempdir().unwrap();
    let definition = write_file(
        dir.path(),
        "flaky.yaml",
        "metadata: {name: flaky, version: \"1\"}\nmoduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}\noperations:\n  - {operationType: source, name: source}\n  - {operationType: map, name: flaky, module: \"flaky:1.0.0\"}\n  - {operationType: sink, name: sink}\nconnections:\n  - {from: {name: source}, to: {name: flaky}}\n  - {from: {name: flaky}, to: {name: sink}}\n",
    );
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - {{name: soak, definition: '{}', source: ['soak/+'], sink: {{topic: soaked, qos: 1}}, dead_letter: soak-dead}}\n",
            modules_dir(),
            definition.display()
        )
    });
    let rss_start = weir.rss_kib();
    let port = weir.v4.to_string();
    let subscribe = |topic: &str| MosquittoSub::start(&["-p", &port, "-t", topic, "-q", "1"]);
    let (mut sink, mut dead, mut plain) = (
        subscribe("soaked"),
        subscribe("soak-dead"),
        subscribe("soak/+"),
    );
    let started = Instant::now();
    let publishers: Vec<_> = (0..2u64)
        .map(|p| {
            let first = p * per_publisher;
            let port = weir.v4;
            std::thread::spawn(move || publish_qos1(port, p, first..first + per_publisher))
        })
        .collect();
    // Every message once at the sink or the dead-letter topic: the multiples of 100 there.
    let failing = (0..total).filter(|n| n % 100 == 0).count() as u64;
    let mut seen = vec![0u8; total as usize];
    collect(&mut sink, total - failing, &mut seen, 1, "sink");
    collect(&mut dead, failing, &mut seen, 2, "dead letters");
    for (n, mark) in seen.iter().enumerate() {
        let expected = if n % 100 == 0 { 2 } else { 1 };
        assert_eq!(*mark, expected, "message {n}");
    }
    let mut plain_seen = vec![0u8; total as usize];
    collect(&mut plain, total, &mut plain_seen, 1, "plain subscriber");
    for publisher in publishers {
        publisher.join().unwrap();
    }
    let took = started.elapsed();
    assert!(sink.nothing_more() && dead.nothing_more() && plain.nothing_more());
    wait_for_metrics(metrics, "the graph's totals", |read| {
        read(r#"weir_graph_results_total{graph="soak"}"#) == total - failing
            && read(r#"weir_graph_dead_letters_total{graph="soak"}"#) == failing
            && read(r#"weir_graph_lost_total{graph="soak"}"#) == 0
            && read(r#"weir_graph_dropped_total{graph="soak"}"#) == 0
    });
    assert_eq!(metric(metrics, "weir_dropped_total"), Some(0));
    println!(
        "soak: {total} messages in {:.1?} ({:.0} msg/s), {failing} dead-lettered, RSS {} KiB at start, {} KiB at the end",
        took,
        total as f64 / took.as_secs_f64(),
        rss_start,
        weir.rss_kib()
    );
}
