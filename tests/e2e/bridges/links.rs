//! The link itself: failover between addresses (back to the primary, or staying put with
//! `round_robin`), no loops between two Weirs bridged both ways on `#` (MQTT 3.1.1 with
//! try_private, and 5), state notifications on both sides (and the will after `kill -9`), and
//! the lazy start.

use super::{connected, gateway, sample, wait_metric, Mosquitto};
use crate::harness::{free_port, metric, mosquitto_pub, MosquittoSub, Weir, PATIENCE};
use std::time::{Duration, Instant};

fn publish(port: u16, topic: &str, payload: &str) {
    let out = mosquitto_pub(&[
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-q",
        "1",
        "-m",
        payload,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn failover_bridge(primary: u16, secondary: u16, round_robin: bool) -> String {
    format!(
        "  - name: cloud\n    client_id: gw1\n    addresses: ['127.0.0.1:{primary}', '127.0.0.1:{secondary}']\n    round_robin: {round_robin}\n    restart_timeout_s: 1\n    topics:\n      - {{ pattern: 'sensors/#', qos: 1 }}\n"
    )
}

/// Waits until `mosquitto` saw bridge `id` connect `count` times.
fn wait_for_bridge(mosquitto: &Mosquitto, id: &str, count: usize, patience: Duration) {
    let deadline = Instant::now() + patience;
    while mosquitto.bridge_connections(id) < count {
        assert!(
            Instant::now() < deadline,
            "{id} never connected:\n{}",
            mosquitto.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn without_round_robin_the_bridge_goes_back_to_the_primary_when_it_returns() {
    let primary_port = free_port();
    let secondary = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let (weir, metrics) = gateway(
        data.path(),
        &failover_bridge(primary_port, secondary.port, false),
    );
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    wait_for_bridge(&secondary, "gw1", 1, PATIENCE);
    let primary = Mosquitto::start_on(primary_port, "");
    // The primary is probed every 5 s while the link is on a secondary.
    wait_for_bridge(&primary, "gw1", 1, Duration::from_secs(15));
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    let mut sub = MosquittoSub::start(&["-p", &primary.port_arg(), "-t", "sensors/#", "-v"]);
    publish(weir.v4, "sensors/t", "on-primary");
    assert_eq!(sub.next_message(), "sensors/t on-primary");
    assert!(
        secondary.log().contains("Client gw1 disconnected"),
        "{}",
        secondary.log()
    );
}

#[test]
fn with_round_robin_the_bridge_stays_on_the_address_that_works() {
    let primary_port = free_port();
    let secondary = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let (weir, metrics) = gateway(
        data.path(),
        &failover_bridge(primary_port, secondary.port, true),
    );
    wait_for_bridge(&secondary, "gw1", 1, PATIENCE);
    let primary = Mosquitto::start_on(primary_port, "");
    // Longer than the primary's probe period: a bridge without round_robin would move.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(primary.bridge_connections("gw1"), 0, "{}", primary.log());
    let mut sub = MosquittoSub::start(&["-p", &secondary.port_arg(), "-t", "sensors/#", "-v"]);
    publish(weir.v4, "sensors/t", "still-secondary");
    assert_eq!(sub.next_message(), "sensors/t still-secondary");
    let connects = "weir_bridge_connects_total{bridge=\"cloud\",result=\"success\"}";
    assert_eq!(metric(metrics, connects), Some(1));
}

/// Two Weirs bridged both ways on `#`: each message reaches each side once.
fn no_loop(protocol: &str) {
    let remote = Weir::start();
    let data = tempfile::tempdir().unwrap();
    let bridge = format!(
        "  - name: peer\n    addresses: ['127.0.0.1:{}']\n    protocol: '{protocol}'\n    topics:\n      - {{ pattern: '#', direction: both, qos: 1 }}\n",
        remote.v4
    );
    let (gateway, metrics) = gateway(data.path(), &bridge);
    wait_metric(metrics, &connected("peer"), 1, PATIENCE);
    let mut here = MosquittoSub::start(&["-p", &gateway.v4.to_string(), "-t", "#", "-v"]);
    let mut there = MosquittoSub::start(&["-p", &remote.v4.to_string(), "-t", "#", "-v"]);
    publish(gateway.v4, "a/x", "from-gateway");
    publish(remote.v4, "b/y", "from-remote");
    let mut seen_here = vec![here.next_message(), here.next_message()];
    let mut seen_there = vec![there.next_message(), there.next_message()];
    seen_here.sort();
    seen_there.sort();
    let both = ["a/x from-gateway", "b/y from-remote"];
    assert_eq!(seen_here, both);
    assert_eq!(seen_there, both);
    assert!(
        here.nothing_more() && there.nothing_more(),
        "a message looped"
    );
    assert_eq!(metric(metrics, &sample("sent_total", "peer")), Some(1));
    assert_eq!(metric(metrics, &sample("received_total", "peer")), Some(1));
}

#[test]
fn two_weirs_bridged_both_ways_on_everything_do_not_loop_over_mqtt_3_1_1() {
    no_loop("3.1.1");
}

#[test]
fn two_weirs_bridged_both_ways_on_everything_do_not_loop_over_mqtt_5() {
    no_loop("5");
}

#[test]
fn the_link_state_is_published_on_both_sides_and_by_the_will_after_kill_9() {
    let mut cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let bridge = format!(
        "  - name: cloud\n    client_id: gw1-cloud\n    addresses: ['127.0.0.1:{}']\n    restart_timeout_s: 1\n    keepalive_s: 5\n    topics:\n      - {{ pattern: 'sensors/#', qos: 1 }}\n",
        cloud.port
    );
    let (mut weir, metrics) = gateway(data.path(), &bridge);
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    let state = "$SYS/broker/connection/gw1-cloud/state";
    let mut local = MosquittoSub::start(&["-p", &weir.v4.to_string(), "-t", state]);
    assert_eq!(local.next_message(), "1");
    let mut remote = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", state]);
    assert_eq!(remote.next_message(), "1");
    drop(remote);
    cloud.stop();
    assert_eq!(
        local.next_message(),
        "0",
        "locally, once the remote is gone"
    );
    cloud.restart();
    assert_eq!(local.next_message(), "1");
    let mut remote = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", state]);
    assert_eq!(remote.next_message(), "1");
    weir.stop_with("KILL");
    assert_eq!(
        remote.next_message(),
        "0",
        "the bridge's will, on the remote"
    );
}

#[test]
fn a_lazy_bridge_connects_at_its_threshold_and_leaves_when_idle() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let bridge = format!(
        "  - name: lazy\n    addresses: ['127.0.0.1:{}']\n    start: lazy\n    threshold: 3\n    idle_timeout_s: 2\n    topics:\n      - {{ pattern: 'sensors/#', qos: 1, remote_prefix: 'up/' }}\n",
        cloud.port
    );
    let (weir, metrics) = gateway(data.path(), &bridge);
    let mut sub = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", "up/#", "-v"]);
    publish(weir.v4, "sensors/1", "a");
    publish(weir.v4, "sensors/2", "b");
    wait_metric(metrics, &sample("queued_messages", "lazy"), 2, PATIENCE);
    // Below the threshold the link is not made (the queue is looked at every second).
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(metric(metrics, &connected("lazy")), Some(0));
    publish(weir.v4, "sensors/3", "c");
    wait_metric(metrics, &connected("lazy"), 1, PATIENCE);
    let got: Vec<String> = (0..3).map(|_| sub.next_message()).collect();
    assert_eq!(got, ["up/sensors/1 a", "up/sensors/2 b", "up/sensors/3 c"]);
    // Nothing to send for idle_timeout_s: a clean disconnect.
    wait_metric(metrics, &connected("lazy"), 0, Duration::from_secs(6));
    assert!(cloud.log().contains("Client lazy."), "{}", cloud.log());
}

#[test]
fn a_remote_gone_silent_is_seen_down_within_one_and_a_half_keep_alives() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let bridge = format!(
        "  - name: cloud\n    addresses: ['127.0.0.1:{}']\n    keepalive_s: 2\n    restart_timeout_s: 1\n    topics:\n      - {{ pattern: 'sensors/#', qos: 1 }}\n",
        cloud.port
    );
    let (_weir, metrics) = gateway(data.path(), &bridge);
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    // Frozen: the socket stays open, nothing answers (a link that died without a FIN).
    cloud.signal("STOP");
    let frozen = Instant::now();
    wait_metric(metrics, &connected("cloud"), 0, Duration::from_secs(10));
    let seen = frozen.elapsed();
    cloud.signal("CONT");
    assert!(
        seen <= Duration::from_secs(3),
        "1.5 x keepalive_s is 3 s; took {seen:?}"
    );
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
}
