//! MQTT 5 end to end, with Eclipse Paho (tests/e2e/mqtt5_probe.py): retained messages under
//! each retain handling, no-local, retain-as-published, message expiry, every publish property
//! and subscription identifiers.

use super::harness::{
    metric, mosquitto_pub, paho, repo, wait_for_metrics, wait_for_parked_sessions, MosquittoSub,
    Weir,
};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

/// Runs scenario `command` of mqtt5_probe.py against `port`; returns its JSON line.
pub(super) fn probe(port: u16, command: &str) -> Value {
    let output = Command::new("python3")
        .arg(repo("tests/e2e/mqtt5_probe.py"))
        .args(["--port", &port.to_string(), command])
        .stdin(Stdio::null())
        .output()
        .expect("python3 not found");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|_| {
        panic!(
            "mqtt5_probe {command} printed no result:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// (topic, payload, retain) of each message.
fn summary(messages: &Value) -> Vec<(String, String, bool)> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["topic"].as_str().unwrap().to_string(),
                m["payload"].as_str().unwrap().to_string(),
                m["retain"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn kept() -> Vec<(String, String, bool)> {
    vec![("rh/a".into(), "kept".into(), true)]
}

#[test]
fn retained_messages_follow_each_subscriptions_retain_handling() {
    let weir = Weir::start();
    let steps = probe(weir.v5, "retain-handling");
    assert_eq!(summary(&steps["new, handling 0"]), kept(), "{steps}");
    assert_eq!(summary(&steps["again, handling 0"]), kept(), "{steps}");
    assert_eq!(summary(&steps["again, handling 1"]), vec![], "{steps}");
    assert_eq!(summary(&steps["new, handling 1"]), kept(), "{steps}");
    assert_eq!(summary(&steps["new, handling 2"]), vec![], "{steps}");
    // The empty retained publish cleared the topic (its live copies are not retained).
    assert!(
        summary(&steps["after clearing"])
            .iter()
            .all(|(_, _, retain)| !retain),
        "{steps}"
    );
}

#[test]
fn no_local_skips_own_publishes_and_retain_as_published_keeps_the_flag() {
    let weir = Weir::start();
    let messages = probe(weir.v5, "local-and-retain-flag");
    assert_eq!(
        summary(&messages),
        vec![
            ("nl/other".into(), "theirs".into(), false),
            ("rap/x".into(), "flagged".into(), true),
            ("plain/x".into(), "unflagged".into(), false),
        ]
    );
}

#[test]
fn publish_properties_arrive_unchanged_with_subscription_identifiers() {
    let weir = Weir::start();
    let messages = probe(weir.v5, "properties");
    assert_eq!(
        messages[0]["properties"],
        json!({
            "PayloadFormatIndicator": 1,
            "MessageExpiryInterval": 3600,
            "ContentType": "application/json",
            "ResponseTopic": "pr/replies",
            "CorrelationData": "0102",
            "SubscriptionIdentifier": [7],
            "UserProperty": [["a", "1"], ["a", "2"], ["b", "x"]],
        }),
        "{messages}"
    );
    // One copy for the two subscriptions it matches, with both identifiers.
    let ids: Vec<String> = messages.as_array().unwrap()[1..]
        .iter()
        .map(|m| m["properties"]["SubscriptionIdentifier"].to_string())
        .collect();
    assert_eq!(ids, ["[7,9]"], "{messages}");
}

#[test]
fn retained_messages_expire_and_carry_the_interval_left() {
    let weir = Weir::start();
    let result = probe(weir.v5, "expiry");
    let at_once = summary(&result["at once"]);
    assert_eq!(at_once.len(), 2, "{result}");
    let after = &result["after expiry"];
    assert_eq!(
        summary(after),
        vec![("ex/lasting".into(), "long-lived".into(), true)],
        "{result}"
    );
    let left = after[0]["properties"]["MessageExpiryInterval"]
        .as_u64()
        .unwrap();
    assert!((597..=599).contains(&left), "{result}");
}

#[test]
fn a_queued_message_that_expires_is_not_delivered_and_is_counted() {
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    });
    let id = ["--client-id", "waiting"];
    paho(
        weir.v5,
        &[&id[..], &["leave", "--topic", "fresh/#"]].concat(),
    );
    let port = weir.v5.to_string();
    for (payload, expiry) in [("stale", "1"), ("fresh", "600")] {
        let out = mosquitto_pub(&[
            "-p",
            &port,
            "-V",
            "5",
            "-q",
            "1",
            "-t",
            "fresh/x",
            "-m",
            payload,
            "-D",
            "publish",
            "message-expiry-interval",
            expiry,
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    // The first message's expiry is the behaviour under test: time has to pass.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(resumed_payloads(weir.v5, id[1]), ["fresh"]);
    assert_eq!(metric(metrics, "weir_expired_total"), Some(1));
    assert_eq!(metric(metrics, "weir_dropped_total"), Some(0));
}

#[test]
fn a_shared_group_spreads_its_messages_and_groups_are_distinct_per_filter() {
    let weir = Weir::start();
    let received = probe(weir.v5, "shared");
    for n in 0..3 {
        let got = received[format!("sh-worker-{n}")].as_array().unwrap();
        assert_eq!(got.len(), 10, "{received}");
    }
    let mut all: Vec<String> = (0..3)
        .flat_map(|n| {
            received[format!("sh-worker-{n}")]
                .as_array()
                .unwrap()
                .clone()
        })
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 30, "each job once: {received}");
    assert_eq!(
        received["sh-other"].as_array().unwrap().len(),
        5,
        "{received}"
    );
}

#[test]
fn a_shared_group_prefers_connected_members_and_queues_for_an_away_one() {
    let (weir, metrics) = Weir::start_metered();
    let port = weir.v4.to_string();
    let member = |id: &str, persistent: bool| {
        let mut args = vec![
            "-p",
            &port,
            "-i",
            id,
            "-q",
            "1",
            "-t",
            "$share/g/work/#",
            "-v",
        ];
        if persistent {
            args.push("-c");
        }
        MosquittoSub::start(&args)
    };
    let mut away = member("away", true);
    away.kill();
    wait_for_parked_sessions(metrics, 1);
    let mut here = member("here", false);
    let publish = |payload: &str| {
        let out = mosquitto_pub(&["-p", &port, "-q", "1", "-t", "work/a", "-m", payload]);
        assert!(out.status.success());
    };
    for n in 0..4 {
        publish(&format!("live {n}"));
    }
    let got: Vec<String> = (0..4).map(|_| here.next_message()).collect();
    assert_eq!(
        got,
        [
            "work/a live 0",
            "work/a live 1",
            "work/a live 2",
            "work/a live 3"
        ]
    );
    here.kill();
    wait_for_metrics(metrics, "`here` gone", |m| m("weir_clients_connected") == 0);
    publish("queued");
    let mut back = member("away", true);
    assert_eq!(back.next_message(), "work/a queued");
}

#[test]
fn overlapping_subscriptions_get_one_copy_at_the_highest_qos_with_every_identifier() {
    let weir = Weir::start();
    let seen = paho(weir.v5, &["overlap"]);
    let got: Vec<(&str, u64, Value)> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let ids = m["properties"]["SubscriptionIdentifier"].clone();
            (
                m["topic"].as_str().unwrap(),
                m["qos"].as_u64().unwrap(),
                ids,
            )
        })
        .collect();
    assert_eq!(
        got,
        [("ov/a/b", 1, json!([1, 2, 3])), ("ov/end", 1, json!([2])),],
        "{seen}"
    );
    // MQTT 3.1.1 clients get one copy too, as mosquitto sends them.
    let seen = paho(weir.v4, &["--version", "3.1.1", "overlap"]);
    let got: Vec<(&str, u64)> = seen["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["topic"].as_str().unwrap(), m["qos"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("ov/a/b", 1), ("ov/end", 1)], "{seen}");
}

#[test]
fn an_offline_session_with_overlapping_subscriptions_keeps_one_copy() {
    let weir = Weir::start();
    let id = ["--client-id", "overlapping"];
    let leave = ["leave", "--topic", "jobs/a", "--topic", "jobs/#"];
    paho(weir.v5, &[&id[..], &leave].concat());
    let port = weir.v5.to_string();
    for payload in ["one", "two"] {
        let out = mosquitto_pub(&["-p", &port, "-q", "1", "-t", "jobs/a", "-m", payload]);
        assert!(out.status.success(), "{out:?}");
    }
    assert_eq!(resumed_payloads(weir.v5, id[1]), ["one", "two"]);
}

/// Resumes client `id`'s persistent session with paho: the payloads of what it held.
fn resumed_payloads(port: u16, id: &str) -> Vec<String> {
    let back = paho(port, &["--client-id", id, "resume"]);
    back["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{back}"))
        .iter()
        .map(|m| m["payload"].as_str().unwrap().to_string())
        .collect()
}
