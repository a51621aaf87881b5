//! The connection layer against clients nobody here wrote (Debian's mosquitto clients, Eclipse
//! Paho for Python) and raw bytes on a socket: one port for MQTT 3.1, 3.1.1 and 5, connection
//! rules as mosquitto 2.0 applies them, refusals with a CONNACK, QoS, `$SYS`.

use super::clients::Client4;
use super::harness::{mosquitto_pub, paho, wait_for_parked_sessions, MosquittoSub, Weir, PATIENCE};
use rumqttc::QoS;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A CONNECT packet: protocol `name` at `level`, `flags`, keep-alive, client id, then `rest`
/// (will and credentials, already encoded).
fn connect_packet(
    name: &str,
    level: u8,
    flags: u8,
    keep_alive: u16,
    id: &str,
    rest: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.push(level);
    body.push(flags);
    body.extend_from_slice(&keep_alive.to_be_bytes());
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    body.extend_from_slice(rest);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

/// A length-prefixed MQTT string.
fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// Sends `packet` on a new connection and returns everything the broker sends until it closes
/// the connection (or `PATIENCE` passes).
fn exchange(port: u16, packet: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(packet).unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    received
}

#[test]
fn one_port_serves_mqtt_3_1_3_1_1_and_5() {
    let weir = Weir::start();
    let port = weir.v4.to_string();
    let mut sub = MosquittoSub::start(&["-p", &port, "-V", "mqttv5", "-t", "versions/#", "-v"]);
    for version in ["mqttv31", "mqttv311", "mqttv5"] {
        let out = mosquitto_pub(&[
            "-p",
            &port,
            "-V",
            version,
            "-t",
            &format!("versions/{version}"),
            "-m",
            version,
        ]);
        assert!(
            out.status.success(),
            "{version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(sub.next_message(), format!("versions/{version} {version}"));
    }
    // MQTT 3.1 from another client: Paho.
    let connected = paho(
        weir.v4,
        &["--version", "3.1", "--client-id", "paho31", "connect"],
    );
    assert_eq!(connected["rc"], 0, "{connected}");
    assert_eq!(connected["round_trip"][0], "hello", "{connected}");
    // And raw: a CONNECT of protocol MQIsdp level 3 gets a CONNACK "accepted".
    let connack = exchange(
        weir.v4,
        &connect_packet("MQIsdp", 3, 0x02, 60, "raw31", &[]),
    );
    assert_eq!(
        connack.get(..4),
        Some(&[0x20, 0x02, 0x00, 0x00][..]),
        "{connack:?}"
    );
}

#[test]
fn keep_alive_zero_is_accepted_and_never_times_out() {
    let weir = Weir::start();
    for version in ["3.1.1", "5"] {
        let id = format!("ka0-{version}");
        let result = paho(
            weir.v4,
            &[
                "--version",
                version,
                "--keepalive",
                "0",
                "--client-id",
                &id,
                "connect",
                "--idle",
                "3",
            ],
        );
        assert_eq!(result["rc"], 0, "{result}");
        assert_eq!(
            result["round_trip"],
            serde_json::json!(["hello", "after idle"]),
            "{result}"
        );
        assert_eq!(result["disconnected"], false, "{result}");
    }
}

#[test]
fn a_silent_client_is_dropped_after_one_and_a_half_keep_alives_and_its_will_published() {
    let weir = Weir::start();
    let mut sub = MosquittoSub::start(&["-p", &weir.v4.to_string(), "-t", "wills/#", "-v"]);
    // Keep-alive 2 s, will "gone" on wills/silent, QoS 0; then silence.
    let will: Vec<u8> = [string("wills/silent"), string("gone")].concat();
    let packet = connect_packet("MQTT", 4, 0x02 | 0x04, 2, "silent", &will);
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", weir.v4)).unwrap();
    stream.write_all(&packet).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    assert_eq!(sub.next_message(), "wills/silent gone");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(2900) && waited < Duration::from_secs(6),
        "will after {waited:?}, expected 1.5 x 2 s"
    );
    let mut rest = Vec::new();
    assert_eq!(
        stream.read_to_end(&mut rest).unwrap(),
        0,
        "the broker closed the connection"
    );
}

#[test]
fn refusals_get_a_connack_in_the_clients_version() {
    let weir = Weir::start();
    // Unsupported protocol level: 3.1.1-style CONNACK "unacceptable protocol version".
    let reply = exchange(weir.v4, &connect_packet("MQTT", 6, 0x02, 60, "x", &[]));
    assert_eq!(reply, [0x20, 0x02, 0x00, 0x01]);
    // An empty client id with a persistent session (3.1.1), or any empty id in MQTT 3.1:
    // "identifier rejected".
    let reply = exchange(weir.v4, &connect_packet("MQTT", 4, 0x00, 60, "", &[]));
    assert_eq!(reply, [0x20, 0x02, 0x00, 0x02]);
    let reply = exchange(weir.v4, &connect_packet("MQIsdp", 3, 0x02, 60, "", &[]));
    assert_eq!(reply, [0x20, 0x02, 0x00, 0x02]);
}

#[test]
fn wrong_credentials_and_anonymous_clients_are_not_authorised() {
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  auth:\n    users: {{alice: wonderland}}\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n"
        )
    });
    let port = weir.v4.to_string();
    // mosquitto's clients print the 3.1.1 refusal code 5 as "not authorised".
    for credentials in [
        &["-u", "alice", "-P", "looking-glass"][..],
        &["-u", "bob", "-P", "x"],
        &[],
    ] {
        let mut args = vec!["-p", port.as_str(), "-t", "auth/x", "-m", "m"];
        args.extend_from_slice(credentials);
        let out = mosquitto_pub(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{credentials:?} accepted");
        assert!(
            stderr.contains("not authorised"),
            "{credentials:?}: {stderr}"
        );
    }
    // MQTT 5: 0x86 for a bad password, 0x87 for no credentials.
    let wrong = paho(
        weir.v4,
        &["--username", "alice", "--password", "nope", "connect"],
    );
    assert_eq!(wrong["rc"], 0x86, "{wrong}");
    let anonymous = paho(weir.v4, &["connect"]);
    assert_eq!(anonymous["rc"], 0x87, "{anonymous}");
    let right = paho(
        weir.v4,
        &["--username", "alice", "--password", "wonderland", "connect"],
    );
    assert_eq!(right["rc"], 0, "{right}");
}

#[test]
fn anonymous_clients_and_users_share_a_listener_when_allowed() {
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  auth:\n    allow_anonymous: true\n    users: {{alice: wonderland}}\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n"
        )
    });
    assert_eq!(paho(weir.v4, &["connect"])["rc"], 0);
    assert_eq!(
        paho(
            weir.v4,
            &["--username", "alice", "--password", "wonderland", "connect"]
        )["rc"],
        0
    );
    assert_eq!(
        paho(
            weir.v4,
            &["--username", "alice", "--password", "nope", "connect"]
        )["rc"],
        0x86
    );
}

#[test]
fn a_full_broker_refuses_with_server_unavailable() {
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  router: {{max_connections: 1}}\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n"
        )
    });
    let mut first = TcpStream::connect(("127.0.0.1", weir.v4)).unwrap();
    first
        .write_all(&connect_packet("MQTT", 4, 0x02, 60, "first", &[]))
        .unwrap();
    let mut connack = [0u8; 4];
    first.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    let reply = exchange(weir.v4, &connect_packet("MQTT", 4, 0x02, 60, "second", &[]));
    assert_eq!(reply, [0x20, 0x02, 0x00, 0x03]);
    let busy = paho(weir.v4, &["--client-id", "third", "connect"]);
    assert_eq!(busy["rc"], 0x89, "{busy}");
}

#[test]
fn an_empty_client_id_with_a_clean_session_gets_an_id() {
    let weir = Weir::start();
    let v5 = paho(weir.v4, &["--client-id", "", "connect"]);
    assert_eq!(v5["rc"], 0, "{v5}");
    assert!(
        v5["assigned_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("weir-")),
        "{v5}"
    );
    let v311 = paho(
        weir.v4,
        &["--version", "3.1.1", "--client-id", "", "connect"],
    );
    assert_eq!(v311["rc"], 0, "{v311}");
    assert_eq!(v311["round_trip"][0], "hello", "{v311}");
}

#[test]
fn a_second_connection_with_the_same_id_takes_over() {
    let weir = Weir::start();
    let v5 = paho(weir.v4, &["--client-id", "twin5", "takeover"]);
    assert_eq!(v5["second"]["rc"], 0, "{v5}");
    assert_eq!(v5["first_disconnected"], true, "{v5}");
    assert_eq!(v5["first_reason"], 0x8E, "session taken over: {v5}");
    let v311 = paho(
        weir.v4,
        &["--version", "3.1.1", "--client-id", "twin3", "takeover"],
    );
    assert_eq!(v311["second"]["rc"], 0, "{v311}");
    assert_eq!(v311["first_disconnected"], true, "{v311}");
    assert!(
        weir.log()
            .contains("client id taken over by a new connection"),
        "{}",
        weir.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_keeps_its_subscriptions_and_messages() {
    let (weir, metrics) = Weir::start_metered();
    let persistent = |id: &str| {
        let mut options = Client4::options(id, weir.v4);
        options.set_clean_session(false);
        options
    };
    let mut away = Client4::connect(persistent("away")).await.unwrap();
    assert!(!away.session_present);
    away.subscribe("mail/#", QoS::AtLeastOnce).await;
    away.client.disconnect().await.unwrap();
    away.wait_closed().await;
    wait_for_parked_sessions(metrics, 1);
    let publisher = Client4::connect(Client4::options("sender", weir.v4))
        .await
        .unwrap();
    publisher
        .client
        .publish("mail/box", QoS::AtLeastOnce, false, "while you were away")
        .await
        .unwrap();
    // The publisher's PUBACK means the broker has it.
    let mut publisher = publisher;
    publisher
        .wait_ack(|p| matches!(p, rumqttc::Packet::PubAck(_)))
        .await;
    let mut back = Client4::connect(persistent("away")).await.unwrap();
    assert!(
        back.session_present,
        "session present after a persistent session"
    );
    let got = back.next().await;
    assert_eq!(
        (got.topic.as_str(), got.payload.as_ref()),
        ("mail/box", &b"while you were away"[..])
    );
    // A clean session discards it.
    back.client.disconnect().await.unwrap();
    back.wait_closed().await;
    while weir.log().matches("client `away` disconnected").count() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let clean = Client4::connect(Client4::options("away", weir.v4))
        .await
        .unwrap();
    assert!(!clean.session_present);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_are_delivered_at_the_lower_of_published_and_granted_qos() {
    let weir = Weir::start();
    let mut sub = Client4::connect(Client4::options("qos-sub", weir.v4))
        .await
        .unwrap();
    sub.subscribe("qos/one", QoS::AtLeastOnce).await;
    sub.subscribe("qos/two", QoS::ExactlyOnce).await;
    sub.subscribe("qos/zero", QoS::AtMostOnce).await;
    let publisher = Client4::connect(Client4::options("qos-pub", weir.v4))
        .await
        .unwrap();
    let cases = [
        ("qos/one", QoS::AtMostOnce, QoS::AtMostOnce),
        ("qos/one", QoS::ExactlyOnce, QoS::AtLeastOnce),
        ("qos/two", QoS::AtLeastOnce, QoS::AtLeastOnce),
        ("qos/two", QoS::ExactlyOnce, QoS::ExactlyOnce),
        ("qos/zero", QoS::ExactlyOnce, QoS::AtMostOnce),
    ];
    for (topic, published, expected) in cases {
        publisher
            .client
            .publish(topic, published, false, "x")
            .await
            .unwrap();
        let got = sub.next().await;
        assert_eq!(
            (got.topic.as_str(), got.qos),
            (topic, expected),
            "published at {published:?}"
        );
    }
}

#[test]
fn sys_topics_are_published_retained_and_not_writable_by_clients() {
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  sys_interval: 1\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n"
        )
    });
    let port = weir.v4.to_string();
    let mut sub = MosquittoSub::start(&["-p", &port, "-t", "$SYS/broker/#", "-v"]);
    // The current values come at once (retained), then each change every second.
    let mut seen = std::collections::BTreeMap::new();
    let topics = [
        "version",
        "uptime",
        "clients/connected",
        "clients/total",
        "messages/received",
        "messages/sent",
        "bytes/received",
        "bytes/sent",
        "subscriptions/count",
        "retained messages/count",
        "messages/dropped",
    ];
    let settled = |seen: &std::collections::BTreeMap<&str, String>| {
        seen.len() == topics.len()
            && seen["clients/connected"] == "1"
            && seen["subscriptions/count"] == "1"
    };
    while !settled(&seen) {
        let line = sub.next_message();
        let (topic, value) = topics
            .iter()
            .find_map(|t| Some((*t, line.strip_prefix(&format!("$SYS/broker/{t} "))?)))
            .unwrap_or_else(|| panic!("unexpected {line}"));
        seen.insert(topic, value.to_string());
    }
    assert_eq!(
        seen["version"],
        format!("weir version {}", env!("CARGO_PKG_VERSION"))
    );
    // A publish to the broker's own `$` namespaces or `$share/...` is refused (MQTT 5: PUBACK
    // 0x87); another `$` topic is open, as in mosquitto, and reaches `$app/#` but not `#`.
    let seen = paho(weir.v4, &["dollar"]);
    assert_eq!(seen["puback"], 0x87, "{seen}");
    assert_eq!(seen["pubacks"]["$weir/status/x"], 0x87, "{seen}");
    assert_eq!(seen["pubacks"]["$share/g/x"], 0x87, "{seen}");
    assert_eq!(seen["pubacks"]["$app/open"], 0, "{seen}");
    let messages = seen["messages"].as_array().unwrap();
    let topics: Vec<&str> = messages
        .iter()
        .map(|m| m["topic"].as_str().unwrap())
        .collect();
    assert_eq!(
        topics,
        ["$SYS/broker/version", "$app/open", "plain/after"],
        "{seen}"
    );
    assert_eq!(
        messages[0]["payload"],
        format!("weir version {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(messages[0]["retain"], true, "{seen}");
}
