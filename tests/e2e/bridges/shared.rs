//! Weirs sharing one remote stream: each bridges `in` from the same mosquitto with a shared
//! subscription (`$share/weir/...`, MQTT 5), so that mosquitto gives each a share; one stops
//! with SIGTERM halfway and the others take its share, with nothing lost.

use super::{gateway_with, persistent_session, sample, session_lines, wait_metric, Mosquitto};
use crate::harness::{metric, modules_dir, wait_for_metrics_within, Weir, PATIENCE};
use std::collections::HashSet;
use std::time::Duration;

const READINGS: usize = 30_000;
const WEIRS: usize = 3;

/// A gateway bridged to `cloud` as `weir{index}`: readings in through the shared
/// subscription, through the temperature graph, results out.
fn member(cloud: u16, index: usize, data: &std::path::Path) -> (Weir, u16) {
    let bridge = format!(
        "  - name: cloud\n    addresses: ['127.0.0.1:{cloud}']\n    protocol: 5\n    client_id: weir{index}\n    topics:\n      - {{ pattern: '$share/weir/sensors/#', direction: in, qos: 1 }}\n      - {{ pattern: 'processed/#', direction: out, qos: 1 }}\n"
    );
    let graph = format!(
        "modules:\n  directories: ['{}']\ngraphs:\n  - name: demo\n    definition: builtin:temperature-map\n    source: [sensors/+/temperature]\n    sink: {{ topic: 'processed/{{1..}}', qos: 1 }}\n",
        modules_dir()
    );
    gateway_with(data, &bridge, &graph)
}

/// Publishes `count` readings, reading `i` on `sensors/r{i}/temperature`, at QoS 1 to
/// `port`, at most about 5,000 a second (so that mosquitto's queue for each member stays
/// short), and waits for every acknowledgement.
fn publish_readings(port: u16, count: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut options = rumqttc::MqttOptions::new("readings", "127.0.0.1", port);
        options.set_inflight(100);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1000);
        let publisher = tokio::spawn(async move {
            let reading = r#"{"temperature":{"value":212,"unit":"F"}}"#;
            for i in 0..count {
                let topic = format!("sensors/r{i}/temperature");
                client
                    .publish(topic, rumqttc::QoS::AtLeastOnce, false, reading)
                    .await
                    .unwrap();
                if i % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            client
        });
        let mut acked = 0;
        while acked < count {
            let event = tokio::time::timeout(Duration::from_secs(60), eventloop.poll())
                .await
                .expect("the readings were not acknowledged in time")
                .expect("the publisher's connection failed");
            if let rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) = event {
                acked += 1;
            }
        }
        let client = publisher.await.unwrap();
        let _ = client.disconnect().await;
    });
}

/// Reads the results session `results` on `port` until every reading's result came or
/// nothing came for `quiet`: (the readings with a result, results in all).
fn collect_results(port: u16, count: usize, quiet: Duration) -> (HashSet<usize>, usize) {
    let (mut child, rx) = session_lines(port, "results", "processed/#", 1);
    let (mut distinct, mut all) = (HashSet::new(), 0);
    while distinct.len() < count {
        let Ok(line) = rx.recv_timeout(quiet) else {
            break;
        };
        let topic = line.split_once(' ').map_or(line.as_str(), |(t, _)| t);
        if let Some(reading) = topic
            .strip_prefix("processed/r")
            .and_then(|rest| rest.strip_suffix("/temperature"))
        {
            all += 1;
            distinct.extend(reading.parse::<usize>().ok());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (distinct, all)
}

fn received(metrics: u16) -> u64 {
    metric(metrics, &sample("received_total", "cloud")).unwrap_or(0)
}

#[test]
fn three_weirs_share_a_stream_and_a_stopped_one_leaves_its_share_to_the_others() {
    // Unlimited queues on the remote: what it holds for a member is not dropped while the
    // member works through it.
    let cloud = Mosquitto::start("max_queued_messages 0\n");
    persistent_session(cloud.port, "results", "processed/#", 1);
    let data: Vec<_> = (0..WEIRS).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut members: Vec<(Weir, u16)> = (0..WEIRS)
        .map(|i| member(cloud.port, i, data[i].path()))
        .collect();
    for (_, metrics) in &members {
        wait_metric(*metrics, &super::connected("cloud"), 1, PATIENCE);
    }
    // Every member has its subscription once each has received a probe (mosquitto gives each
    // message of a shared subscription to one member, in turn).
    let probe = r#"{"temperature":{"value":32,"unit":"F"}}"#;
    let deadline = std::time::Instant::now() + PATIENCE;
    while members.iter().any(|(_, metrics)| received(*metrics) == 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "a member got no probe"
        );
        crate::harness::mosquitto_pub(&[
            "-p",
            &cloud.port_arg(),
            "-t",
            "sensors/probe/temperature",
            "-q",
            "1",
            "-m",
            probe,
        ]);
    }
    let port = cloud.port;
    let results =
        std::thread::spawn(move || collect_results(port, READINGS, Duration::from_secs(20)));
    let publisher = std::thread::spawn(move || publish_readings(port, READINGS));

    // Halfway through its share, the second member stops.
    let (stopping, stopping_metrics) = &mut members[1];
    let before = received(*stopping_metrics);
    wait_for_metrics_within(
        *stopping_metrics,
        Duration::from_secs(60),
        "the second member's share under way",
        |m| m(&sample("received_total", "cloud")) >= before + 2_000,
    );
    stopping.signal("TERM");
    let Some((status, took)) = stopping.wait_exit(Duration::from_secs(30)) else {
        panic!("the member did not stop:\n{}", stopping.log());
    };
    assert!(status.success(), "{status}:\n{}", stopping.log());
    assert!(
        stopping
            .log()
            .contains("leaving the shared subscriptions $share/weir/sensors/#"),
        "{}",
        stopping.log()
    );

    let after: Vec<u64> = [0, 2].iter().map(|&i| received(members[i].1)).collect();
    publisher.join().unwrap();
    let (processed, all) = results.join().unwrap();
    eprintln!(
        "shared subscription: {} of {READINGS} readings processed, {} repeats; the stopped member took {took:?} to stop",
        processed.len(),
        all - processed.len()
    );
    let lost: Vec<usize> = (0..READINGS).filter(|i| !processed.contains(i)).collect();
    assert!(
        lost.is_empty(),
        "{} readings lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    for (i, before_end) in [0, 2].into_iter().zip(after) {
        assert!(
            received(members[i].1) > before_end,
            "member {i} took no share after the stop"
        );
    }
}

#[test]
fn a_weir_whose_shared_bridge_is_down_stops_without_waiting_to_leave() {
    // Nothing listens on the remote's port: the link never comes up, so there is no share to
    // leave, and the stop does not wait the bridges' leave patience (6 s) for one.
    let nowhere = crate::harness::free_port();
    let data = tempfile::tempdir().unwrap();
    let (mut weir, _) = member(nowhere, 0, data.path());
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success(), "{status}:\n{}", weir.log());
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
    assert!(!weir.log().contains("leaving the shared subscriptions"));
}
