//! What a bridge forwards: out, in and both, renamed by prefixes, at QoS 0, 1 and 2 (the lower
//! of the published QoS and the topic line's), MQTT 3.1, 3.1.1 and 5 (every publish property
//! both ways, Paho at each end), to a mosquitto that asks for a password, over TLS.

use super::{connected, gateway, password_file, sample, wait_metric, Mosquitto};
use crate::certificates::Ca;
use crate::harness::{metric, mosquitto_pub, repo, MosquittoSub, PATIENCE};
use std::process::Command;

fn bridge(name: &str, port: u16, protocol: &str, topics: &str) -> String {
    format!(
        "  - name: {name}\n    addresses: ['127.0.0.1:{port}']\n    protocol: '{protocol}'\n    topics:\n{topics}"
    )
}

/// `mosquitto_sub -F '%t %q %p'` on `port`.
fn subscriber(port: u16, filter: &str) -> MosquittoSub {
    MosquittoSub::start(&[
        "-p",
        &port.to_string(),
        "-t",
        filter,
        "-q",
        "2",
        "-F",
        "%t %q %p",
    ])
}

fn publish(port: u16, topic: &str, qos: u8, payload: &str) {
    let out = mosquitto_pub(&[
        "-p",
        &port.to_string(),
        "-t",
        topic,
        "-q",
        &qos.to_string(),
        "-m",
        payload,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn out_in_and_both_are_renamed_by_their_prefixes_at_every_qos() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let topics = "      - { pattern: 'sensors/#', direction: out, qos: 2, remote_prefix: 'plant1/' }\n      - { pattern: 'commands/#', direction: in, qos: 2, local_prefix: 'gw/', remote_prefix: 'plant1/' }\n      - { pattern: 'sync/#', direction: both, qos: 1, local_prefix: 'l/', remote_prefix: 'r/' }\n";
    let (weir, metrics) = gateway(data.path(), &bridge("cloud", cloud.port, "3.1.1", topics));
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    let mut remote = subscriber(cloud.port, "#");
    let mut local = subscriber(weir.v4, "#");

    for qos in 0..=2u8 {
        publish(weir.v4, &format!("sensors/q{qos}"), qos, "out");
        assert_eq!(local.next_message(), format!("sensors/q{qos} {qos} out"));
        assert_eq!(
            remote.next_message(),
            format!("plant1/sensors/q{qos} {qos} out")
        );
    }
    for qos in 0..=2u8 {
        publish(cloud.port, &format!("plant1/commands/q{qos}"), qos, "in");
        assert_eq!(
            remote.next_message(),
            format!("plant1/commands/q{qos} {qos} in")
        );
        assert_eq!(local.next_message(), format!("gw/commands/q{qos} {qos} in"));
    }
    // Both ways, each message once on each side (no echo), at the line's QoS 1 at most.
    publish(weir.v4, "l/sync/a", 2, "from-gateway");
    assert_eq!(local.next_message(), "l/sync/a 2 from-gateway");
    assert_eq!(remote.next_message(), "r/sync/a 1 from-gateway");
    publish(cloud.port, "r/sync/b", 2, "from-cloud");
    assert_eq!(remote.next_message(), "r/sync/b 2 from-cloud");
    assert_eq!(local.next_message(), "l/sync/b 1 from-cloud");
    // Not forwarded: no line matches.
    publish(weir.v4, "other/x", 1, "stays");
    assert_eq!(local.next_message(), "other/x 1 stays");
    assert!(local.nothing_more() && remote.nothing_more());
    assert_eq!(metric(metrics, &sample("sent_total", "cloud")), Some(4));
    assert_eq!(metric(metrics, &sample("received_total", "cloud")), Some(4));
    assert!(
        cloud.log().contains("New bridge connected"),
        "try_private: {}",
        cloud.log()
    );
}

#[test]
fn mqtt_3_1_bridges_forward_too() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let topics = "      - { pattern: '#', direction: both, qos: 1, local_prefix: 'local/', remote_prefix: 'remote/' }\n";
    let (weir, metrics) = gateway(data.path(), &bridge("old", cloud.port, "3.1", topics));
    wait_metric(metrics, &connected("old"), 1, PATIENCE);
    let mut remote = subscriber(cloud.port, "remote/#");
    publish(weir.v4, "local/a", 1, "v31");
    assert_eq!(remote.next_message(), "remote/a 1 v31");
    assert!(
        cloud.log().contains("(p1,"),
        "an MQTT 3.1 CONNECT: {}",
        cloud.log()
    );
}

/// Runs tests/e2e/bridge_probe.py: subscribe on `sub_port`, publish on `pub_port`.
fn probe(sub_port: u16, sub_topic: &str, pub_port: u16, pub_topic: &str) -> serde_json::Value {
    let output = Command::new("python3")
        .arg(repo("tests/e2e/bridge_probe.py"))
        .args([
            "--sub-port",
            &sub_port.to_string(),
            "--sub-topic",
            sub_topic,
        ])
        .args([
            "--pub-port",
            &pub_port.to_string(),
            "--pub-topic",
            pub_topic,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or_else(|_| {
        panic!(
            "bridge_probe printed no result:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

#[test]
fn mqtt5_bridges_carry_every_publish_property_both_ways() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let topics = "      - { pattern: 'up/#', direction: out, qos: 1, remote_prefix: 'plant1/' }\n      - { pattern: 'down/#', direction: in, qos: 1, remote_prefix: 'plant1/' }\n";
    let (weir, metrics) = gateway(data.path(), &bridge("cloud5", cloud.port, "5", topics));
    wait_metric(metrics, &connected("cloud5"), 1, PATIENCE);
    for (seen, topic) in [
        (
            probe(cloud.port, "plant1/up/#", weir.v5, "up/t"),
            "plant1/up/t",
        ),
        (
            probe(weir.v5, "down/#", cloud.port, "plant1/down/t"),
            "down/t",
        ),
    ] {
        assert_eq!(seen["topic"], topic, "{seen}");
        assert_eq!(seen["payload"], "{\"t\":21.5}");
        assert_eq!(seen["content_type"], "application/json");
        assert_eq!(seen["payload_format"], 1);
        assert_eq!(seen["response_topic"], "replies/gw1");
        assert_eq!(seen["correlation"], "req-42");
        let users = serde_json::json!([["site", "north"], ["line", "3"], ["site", "south"]]);
        assert_eq!(seen["user_properties"], users, "in order, duplicates kept");
        let expiry = seen["expiry"].as_u64().unwrap();
        assert!((3590..=3600).contains(&expiry), "expiry {expiry}");
    }
}

#[test]
fn a_remote_with_tls_and_a_password_takes_the_bridge_and_refuses_a_wrong_password() {
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("cloud-ca");
    ca.write(certs.path(), "ca");
    ca.issue(certs.path(), "server", "localhost", true);
    let passwords = password_file(certs.path(), "gw1", "s3cret");
    let dir = certs.path().display();
    let cloud = Mosquitto::start(&format!(
        "certfile {dir}/server.pem\nkeyfile {dir}/server.key\npassword_file {}\nallow_anonymous false\n",
        passwords.display()
    ));
    let data = tempfile::tempdir().unwrap();
    let bridge = |name: &str, password: &str| {
        format!(
            "  - name: {name}\n    addresses: ['127.0.0.1:{}']\n    username: gw1\n    password: {password}\n    restart_timeout_s: 1\n    tls: {{ ca: '{dir}/ca.pem' }}\n    topics:\n      - {{ pattern: 'sensors/#', qos: 1, remote_prefix: 'plant1/' }}\n",
            cloud.port
        )
    };
    let bridges = bridge("good", "s3cret") + &bridge("bad", "wrong");
    let (weir, metrics) = gateway(data.path(), &bridges);
    wait_metric(metrics, &connected("good"), 1, PATIENCE);
    let mut remote = MosquittoSub::start(&[
        "-p",
        &cloud.port_arg(),
        "--cafile",
        &format!("{dir}/ca.pem"),
        "-u",
        "gw1",
        "-P",
        "s3cret",
        "-t",
        "plant1/#",
        "-v",
    ]);
    publish(weir.v4, "sensors/t", 1, "over-tls");
    assert_eq!(remote.next_message(), "plant1/sensors/t over-tls");
    // The wrong password is refused with CONNACK 5, logged once, and retried.
    let refused = "weir_bridge_connects_total{bridge=\"bad\",result=\"refused\"}";
    crate::harness::wait_for_metrics(metrics, "two refusals", |m| m(refused) >= 2);
    assert_eq!(metric(metrics, &connected("bad")), Some(0));
    let log = weir.log();
    let said = log
        .matches("refused the connection: CONNACK 0x05 (not authorized)")
        .count()
        + log
            .matches("refused the connection: CONNACK 0x04 (bad user name or password)")
            .count();
    assert_eq!(said, 1, "logged once per change:\n{log}");
    assert!(!log.contains("wrong"), "the password is never logged");
}
