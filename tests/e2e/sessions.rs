//! Sessions owned by the door: a persistent session queues its client's QoS 1 and 2 messages
//! while the client is away (bounded, drops counted), resends what was in flight with DUP set,
//! and expires on time.

use super::clients::Client4;
use super::harness::{
    metric, mosquitto_pub, paho, wait_for_metrics, wait_for_parked_sessions, MosquittoSub, Weir,
};
use rumqttc::QoS;

fn broker_with(extra: &str) -> (Weir, u16) {
    let extra = extra.to_string();
    Weir::start_with_metrics(move |v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n{extra}metrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    })
}

fn publish(port: u16, qos: &str, topic: &str, message: &str) {
    let out = mosquitto_pub(&[
        "-p",
        &port.to_string(),
        "-q",
        qos,
        "-t",
        topic,
        "-m",
        message,
    ]);
    assert!(out.status.success(), "{out:?}");
}

fn keeper(port: u16) -> MosquittoSub {
    // -c: clean session off; the session outlives the process.
    MosquittoSub::start(&[
        "-p",
        &port.to_string(),
        "-c",
        "-i",
        "keeper",
        "-q",
        "1",
        "-t",
        "box/#",
        "-v",
    ])
}

#[test]
fn a_session_queues_messages_across_a_client_restart_and_counts_what_it_cannot_keep() {
    let (weir, metrics) = broker_with("  max_queued_messages: 4\n");
    let mut sub = keeper(weir.v4);
    sub.kill();
    wait_for_parked_sessions(metrics, 1);
    for n in 1..=5 {
        publish(weir.v4, "1", "box/a", &format!("m{n}"));
    }
    // QoS 0 is not queued for a client that is away (queue_qos0_messages is off).
    publish(weir.v4, "0", "box/a", "fleeting");
    let mut back = keeper(weir.v4);
    let received: Vec<String> = (0..4).map(|_| back.next_message()).collect();
    assert_eq!(received, ["box/a m1", "box/a m2", "box/a m3", "box/a m4"]);
    publish(weir.v4, "1", "box/a", "live");
    assert_eq!(back.next_message(), "box/a live");
    // m5 passed the queue's bound of 4, and the QoS 0 message was not kept.
    assert_eq!(
        metric(metrics, r#"weir_client_dropped_total{client="keeper"}"#),
        Some(2)
    );
    assert!(weir.log().contains("the offline session's queue is full"));
}

#[test]
fn queue_qos0_messages_keeps_qos0_for_offline_sessions() {
    let (weir, metrics) = broker_with("  queue_qos0_messages: true\n");
    let mut sub = keeper(weir.v4);
    sub.kill();
    wait_for_parked_sessions(metrics, 1);
    publish(weir.v4, "0", "box/b", "kept");
    let mut back = keeper(weir.v4);
    assert_eq!(back.next_message(), "box/b kept");
    assert_eq!(metric(metrics, "weir_dropped_total"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacknowledged_delivery_is_resent_with_dup_after_a_reconnect() {
    let (weir, metrics) = Weir::start_metered();
    let options = || {
        let mut options = Client4::options("forgetful", weir.v4);
        options.set_clean_session(false);
        options.set_manual_acks(true);
        options
    };
    let mut client = Client4::connect(options()).await.unwrap();
    client.subscribe("dup/#", QoS::AtLeastOnce).await;
    publish(weir.v4, "1", "dup/x", "first");
    let first = client.next().await;
    assert!(!first.dup);
    // Gone without acknowledging it.
    client.crash();
    wait_for_parked_sessions(metrics, 1);
    let mut back = Client4::connect(options()).await.unwrap();
    assert!(back.session_present);
    let again = back.next().await;
    assert_eq!(
        (again.dup, again.pkid, again.payload.as_ref()),
        (true, first.pkid, &b"first"[..])
    );
    back.client.ack(&again).await.unwrap();
    // Acknowledged now: the next delivery is a new message, not the old one once more.
    publish(weir.v4, "1", "dup/y", "second");
    let next = back.next().await;
    assert_eq!((next.dup, next.payload.as_ref()), (false, &b"second"[..]));
    back.client.ack(&next).await.unwrap();
}

#[test]
fn an_mqtt5_session_expires_on_time_and_counts_what_it_held() {
    let (weir, metrics) = broker_with("");
    let id = ["--client-id", "expiring"];
    let left = std::time::Instant::now();
    let connack = paho(
        weir.v4,
        &[&id[..], &["leave", "--topic", "exp/#", "--expiry", "2"]].concat(),
    );
    assert_eq!(connack["rc"], 0, "{connack}");
    publish(weir.v4, "1", "exp/a", "too late");
    wait_for_metrics(metrics, "the session expired with 1 message", |m| {
        m("weir_sessions_offline") == 0 && m(r#"weir_client_dropped_total{client="expiring"}"#) == 1
    });
    let waited = left.elapsed();
    assert!(
        waited >= std::time::Duration::from_secs(2) && waited < std::time::Duration::from_secs(4),
        "expired after {waited:?}"
    );
    assert_eq!(
        metric(metrics, r#"weir_client_dropped_total{client="expiring"}"#),
        Some(1)
    );
    let back = paho(weir.v4, &[&id[..], &["resume", "--expiry", "2"]].concat());
    assert_eq!(back["connack"]["session_present"], false, "{back}");
    assert_eq!(back["messages"], serde_json::json!([]), "{back}");
}

#[test]
fn an_mqtt5_session_within_its_expiry_is_resumed_with_its_messages() {
    let (weir, _) = broker_with("");
    let id = ["--client-id", "returning"];
    paho(
        weir.v4,
        &[&id[..], &["leave", "--topic", "ret/#", "--expiry", "60"]].concat(),
    );
    publish(weir.v4, "1", "ret/a", "kept for you");
    let back = paho(weir.v4, &[&id[..], &["resume", "--expiry", "60"]].concat());
    assert_eq!(back["connack"]["session_present"], true, "{back}");
    assert_eq!(back["messages"][0]["payload"], "kept for you", "{back}");
    assert_eq!(back["messages"][0]["qos"], 1, "{back}");
}
