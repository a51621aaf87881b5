//! Store-and-forward: what the gateway acknowledged reaches the cloud through an outage of the
//! uplink, `kill -9` and SIGTERM of the gateway, in order per topic; a full queue drops exactly
//! its oldest messages, counts them, and still drains when the remote returns.
//!
//! The cloud is a mosquitto with `persistence true` and `max_queued_messages 0`, so that it
//! queues whatever its persistent subscriber has not read, across its own restart.

use super::{
    assert_complete_in_order, connected, drain_session, gateway, persistent_session, publish_burst,
    restart, sample, wait_metric, Mosquitto,
};
use crate::harness::{metric, MosquittoSub, PATIENCE};
use std::time::{Duration, Instant};

/// The cloud: persistent, queueing without limit for its subscribers.
fn cloud() -> Mosquitto {
    Mosquitto::start("persistence true\npersistence_location ./\nmax_queued_messages 0\n")
}

fn bridge(port: u16, qos: u8, queue: &str) -> String {
    format!(
        "  - name: cloud\n    addresses: ['127.0.0.1:{port}']\n    restart_timeout_s: 1\n    keepalive_s: 5\n    topics:\n      - {{ pattern: 'sensors/#', qos: {qos}, remote_prefix: 'plant1/' }}\n{queue}"
    )
}

/// Publishes `per_topic` messages on each of two topics at `qos`, both at once.
fn publish_two_topics(port: u16, per_topic: usize, qos: u8) -> usize {
    let a = std::thread::spawn(move || publish_burst(port, "sensors/a", per_topic, qos));
    let b = publish_burst(port, "sensors/b", per_topic, qos);
    a.join().unwrap() + b
}

/// The remote away for 30 s while 100,000 messages are published: all arrive, in order per
/// topic, once the remote is back; the duplicates (QoS 1 may repeat) are counted.
fn outage(qos: u8) -> usize {
    let mut cloud = cloud();
    persistent_session(cloud.port, "cloudsub", "plant1/#", qos);
    let data = tempfile::tempdir().unwrap();
    let (weir, metrics) = gateway(data.path(), &bridge(cloud.port, qos, ""));
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    let down = Instant::now();
    cloud.stop();
    wait_metric(metrics, &connected("cloud"), 0, Duration::from_secs(10));
    let acknowledged = publish_two_topics(weir.v4, 50_000, qos);
    assert_eq!(acknowledged, 100_000);
    assert_eq!(
        metric(metrics, &sample("queued_messages", "cloud")),
        Some(100_000),
        "everything acknowledged is queued"
    );
    // The outage lasts 30 s, as the scenario says.
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down.elapsed()));
    cloud.restart();
    let received = drain_session(
        cloud.port,
        "cloudsub",
        "plant1/#",
        qos,
        100_000,
        Duration::from_secs(20),
    );
    let duplicates = assert_complete_in_order(&received, "plant1/sensors/a", 50_000)
        + assert_complete_in_order(&received, "plant1/sensors/b", 50_000);
    wait_metric(metrics, &sample("queued_messages", "cloud"), 0, PATIENCE);
    assert_eq!(metric(metrics, &sample("dropped_total", "cloud")), Some(0));
    drop(weir);
    duplicates
}

#[test]
fn an_outage_of_30_s_loses_none_of_100_000_qos1_messages() {
    let duplicates = outage(1);
    eprintln!("QoS 1 outage: 100000 delivered in order per topic, {duplicates} duplicates");
}

#[test]
fn an_outage_of_30_s_delivers_100_000_qos2_messages_exactly_once() {
    assert_eq!(outage(2), 0, "QoS 2 has no duplicates");
}

/// The gateway stopped by `signal` in the middle of an outage after 50,000 acknowledged
/// publishes, then started again: all 50,000 reach the remote.
fn stopped_during_an_outage(signal: &str) {
    let mut cloud = cloud();
    persistent_session(cloud.port, "cloudsub", "plant1/#", 1);
    let data = tempfile::tempdir().unwrap();
    let (mut weir, metrics) = gateway(data.path(), &bridge(cloud.port, 1, ""));
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    cloud.stop();
    wait_metric(metrics, &connected("cloud"), 0, Duration::from_secs(10));
    assert_eq!(publish_two_topics(weir.v4, 25_000, 1), 50_000);
    weir.stop_with(signal);
    let weir = restart(&weir);
    cloud.restart();
    let received = drain_session(
        cloud.port,
        "cloudsub",
        "plant1/#",
        1,
        50_000,
        Duration::from_secs(20),
    );
    let duplicates = assert_complete_in_order(&received, "plant1/sensors/a", 25_000)
        + assert_complete_in_order(&received, "plant1/sensors/b", 25_000);
    eprintln!("SIG{signal} during an outage: 50000 delivered, {duplicates} duplicates");
    drop(weir);
}

#[test]
fn kill_9_during_an_outage_loses_nothing_acknowledged() {
    stopped_during_an_outage("KILL");
}

#[test]
fn sigterm_during_an_outage_loses_nothing_acknowledged() {
    stopped_during_an_outage("TERM");
}

#[test]
fn a_full_queue_drops_exactly_the_oldest_and_still_drains_when_the_remote_returns() {
    let mut cloud = cloud();
    persistent_session(cloud.port, "cloudsub", "plant1/#", 1);
    let data = tempfile::tempdir().unwrap();
    let queue = "    queue: { max_messages: 100, when_full: drop-oldest }\n";
    let (weir, metrics) = gateway(data.path(), &bridge(cloud.port, 1, queue));
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    cloud.stop();
    wait_metric(metrics, &connected("cloud"), 0, Duration::from_secs(10));
    assert_eq!(publish_burst(weir.v4, "sensors/a", 150, 1), 150);
    wait_metric(metrics, &sample("dropped_total", "cloud"), 50, PATIENCE);
    assert_eq!(
        metric(metrics, &sample("queued_messages", "cloud")),
        Some(100)
    );
    assert_eq!(metric(metrics, "weir_dropped_total"), Some(50));
    let mut sys = MosquittoSub::start(&[
        "-p",
        &weir.v4.to_string(),
        "-t",
        "$SYS/broker/messages/dropped",
    ]);
    let deadline = Instant::now() + PATIENCE;
    while sys.next_message() != "50" {
        assert!(Instant::now() < deadline, "$SYS never said 50 dropped");
    }
    // The bridge kept trying through the full queue (mosquitto #2256): it connects and drains.
    cloud.restart();
    let received = drain_session(
        cloud.port,
        "cloudsub",
        "plant1/#",
        1,
        100,
        Duration::from_secs(10),
    );
    let payloads: Vec<usize> = received.iter().map(|(_, p)| p.parse().unwrap()).collect();
    assert_eq!(
        payloads,
        (50..150).collect::<Vec<_>>(),
        "exactly the oldest 50 dropped"
    );
    wait_metric(metrics, &sample("queued_messages", "cloud"), 0, PATIENCE);
}

#[test]
fn qos0_messages_wait_in_memory_while_the_link_is_down_only_when_asked() {
    // The cloud queues QoS 0 too for its subscriber while it is away.
    let mut cloud = Mosquitto::start(
        "persistence true\npersistence_location ./\nmax_queued_messages 0\nqueue_qos0_messages true\n",
    );
    persistent_session(cloud.port, "cloudsub", "plant1/#", 1);
    let data = tempfile::tempdir().unwrap();
    let queue = |name: &str, qos0: bool| {
        format!(
            "  - name: {name}\n    addresses: ['127.0.0.1:{}']\n    restart_timeout_s: 1\n    topics:\n      - {{ pattern: '{name}/#', qos: 1, remote_prefix: 'plant1/' }}\n    queue: {{ qos0: {qos0} }}\n",
            cloud.port
        )
    };
    let bridges = queue("kept", true) + &queue("dropped", false);
    let (weir, metrics) = gateway(data.path(), &bridges);
    wait_metric(metrics, &connected("kept"), 1, PATIENCE);
    wait_metric(metrics, &connected("dropped"), 1, PATIENCE);
    cloud.stop();
    wait_metric(metrics, &connected("kept"), 0, Duration::from_secs(10));
    wait_metric(metrics, &connected("dropped"), 0, Duration::from_secs(10));
    assert_eq!(publish_burst(weir.v4, "kept/a", 10, 0), 10);
    assert_eq!(publish_burst(weir.v4, "dropped/a", 10, 0), 10);
    wait_metric(metrics, &sample("queued_messages", "kept"), 10, PATIENCE);
    wait_metric(metrics, &sample("dropped_total", "dropped"), 10, PATIENCE);
    cloud.restart();
    let received = drain_session(
        cloud.port,
        "cloudsub",
        "plant1/#",
        1,
        11,
        Duration::from_secs(5),
    );
    assert_eq!(assert_complete_in_order(&received, "plant1/kept/a", 10), 0);
    assert!(
        received.iter().all(|(t, _)| t == "plant1/kept/a"),
        "{received:?}"
    );
}
