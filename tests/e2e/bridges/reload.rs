//! Bridges change without a restart: on SIGHUP one bridge changed, one added, one removed, and
//! the untouched one keeps its connection (its remote sees no reconnect). A removed bridge's
//! queue stays on disk until `weir bridge purge`.

use super::{connected, gateway, rewrite_config, sample, wait_metric, Mosquitto};
use crate::harness::{metric, mosquitto_pub, run_weir, MosquittoSub, PATIENCE};

fn bridge(name: &str, port: u16, prefix: &str) -> String {
    format!(
        "  - name: {name}\n    client_id: {name}-id\n    addresses: ['127.0.0.1:{port}']\n    restart_timeout_s: 1\n    topics:\n      - {{ pattern: '{name}/#', qos: 1, remote_prefix: '{prefix}' }}\n"
    )
}

fn publish(port: u16, topic: &str) {
    let out = mosquitto_pub(&["-p", &port.to_string(), "-t", topic, "-q", "1", "-m", "x"]);
    assert!(out.status.success());
}

#[test]
fn sighup_changes_adds_and_removes_bridges_and_leaves_the_others_connected() {
    let cloud = Mosquitto::start("");
    let closed = crate::harness::free_port();
    let data = tempfile::tempdir().unwrap();
    let before = bridge("kept", cloud.port, "k/")
        + &bridge("changed", cloud.port, "old/")
        + &bridge("removed", closed, "r/");
    let (mut weir, metrics) = gateway(data.path(), &before);
    wait_metric(metrics, &connected("kept"), 1, PATIENCE);
    wait_metric(metrics, &connected("changed"), 1, PATIENCE);
    // The removed bridge's remote is down: what it forwards waits in its queue.
    for _ in 0..3 {
        publish(weir.v4, "removed/x");
    }
    wait_metric(metrics, &sample("queued_messages", "removed"), 3, PATIENCE);

    let config = std::fs::read_to_string(weir.dir.path().join("weir.yaml")).unwrap();
    let after = bridge("kept", cloud.port, "k/")
        + &bridge("changed", cloud.port, "new/")
        + &bridge("added", cloud.port, "a/");
    rewrite_config(&weir, &config.replace(&before, &after));
    weir.signal("HUP");
    wait_metric(metrics, &connected("added"), 1, PATIENCE);
    wait_metric(metrics, &connected("changed"), 1, PATIENCE);
    assert_eq!(
        metric(metrics, &connected("removed")),
        None,
        "gone from the metrics"
    );

    let mut sub = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", "#", "-v"]);
    for topic in ["kept/1", "changed/2", "added/3"] {
        publish(weir.v4, topic);
    }
    let mut got: Vec<String> = (0..3).map(|_| sub.next_message()).collect();
    got.sort();
    assert_eq!(got, ["a/added/3 x", "k/kept/1 x", "new/changed/2 x"]);
    assert_eq!(
        cloud.bridge_connections("kept-id"),
        1,
        "no reconnect:\n{}",
        cloud.log()
    );
    assert_eq!(cloud.bridge_connections("changed-id"), 2);

    // The removed bridge's queue is kept on disk, until purged.
    weir.stop_with("TERM");
    let config = weir.dir.path().join("weir.yaml");
    let config = config.to_str().unwrap();
    let (status, listed, _) = run_weir(&["bridge", "list", "--config", config], weir.dir.path());
    assert!(status.success());
    assert!(listed.contains("removed: 3 messages"), "{listed}");
    let (status, purged, _) = run_weir(
        &["bridge", "purge", "removed", "--config", config],
        weir.dir.path(),
    );
    assert!(status.success(), "{purged}");
    assert!(purged.contains("queue deleted (3 messages)"), "{purged}");
    let (_, listed, _) = run_weir(&["bridge", "list", "--config", config], weir.dir.path());
    assert!(!listed.contains("removed"), "{listed}");
    let (status, _, error) = run_weir(
        &["bridge", "purge", "removed", "--config", config],
        weir.dir.path(),
    );
    assert!(
        !status.success() && error.contains("has no queue"),
        "{error}"
    );
}
