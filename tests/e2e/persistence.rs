//! Retained messages and persistent sessions that survive a restart: after SIGTERM, after
//! kill -9 past an autosave, with the session's expiry clock going on; a corrupt store moved
//! aside; a store held by another weir refused with its path.

use super::harness::{
    free_port, metric, mosquitto_pub, paho, wait_for_metrics, write_file, MosquittoSub, Weir,
};
use std::path::Path;
use std::time::Duration;

/// Weir (in its own directory) keeping its store in `data`, saving every `autosave` seconds.
fn start(data: &Path, autosave: u64) -> Result<Weir, String> {
    let dir = tempfile::tempdir().unwrap();
    let (v4, v5) = (free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  persistence:\n    path: '{}'\n    autosave_interval_s: {autosave}\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\n",
            data.display()
        ),
    );
    Weir::try_spawn(dir, &config, &[], v4, v5)
}

/// [`start`], with the metrics endpoint on a free port (returned), where saves can be seen.
fn start_metered(data: &Path, autosave: u64) -> (Weir, u16) {
    let data = data.display().to_string();
    Weir::start_with_metrics(move |v4, v5, metrics| {
        format!(
            "broker:\n  persistence:\n    path: '{data}'\n    autosave_interval_s: {autosave}\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    })
}

fn retain(weir: &Weir, topic: &str, payload: &str) {
    let port = weir.v4.to_string();
    let out = mosquitto_pub(&["-p", &port, "-t", topic, "-m", payload, "-r", "-q", "1"]);
    assert!(out.status.success());
}

/// The retained messages a new subscriber to `state/#` gets.
fn retained(weir: &Weir, count: usize) -> Vec<String> {
    let port = weir.v4.to_string();
    let mut sub = MosquittoSub::start(&["-p", &port, "-t", "state/#", "-v"]);
    let mut got: Vec<String> = (0..count).map(|_| sub.next_message()).collect();
    assert!(sub.nothing_more(), "more retained messages than expected");
    got.sort();
    got
}

#[test]
fn retained_messages_survive_a_restart_by_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let mut weir = start(data.path(), 3600).unwrap();
    retain(&weir, "state/door", "open");
    retain(&weir, "state/lamp", "on");
    retain(&weir, "state/lamp", "off");
    retain(&weir, "state/gone", "x");
    retain(&weir, "state/gone", "");
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success());
    assert!(
        took < Duration::from_secs(1),
        "the save at SIGTERM took {took:?}"
    );
    drop(weir);
    let weir = start(data.path(), 3600).unwrap();
    assert!(
        weir.log()
            .contains("2 retained messages and 0 sessions restored"),
        "{}",
        weir.log()
    );
    assert_eq!(retained(&weir, 2), ["state/door open", "state/lamp off"]);
}

#[test]
fn after_kill_9_what_the_last_autosave_wrote_is_back() {
    let data = tempfile::tempdir().unwrap();
    let (weir, metrics) = start_metered(data.path(), 1);
    retain(&weir, "state/pump", "running");
    wait_for_metrics(metrics, "the retained message saved", |m| {
        m("weir_store_retained") == 1
    });
    weir.signal("KILL");
    drop(weir);
    let weir = start(data.path(), 1).unwrap();
    assert_eq!(retained(&weir, 1), ["state/pump running"]);
}

/// An idle broker writes its store once (the first autosave: it may hold sessions from before),
/// then not again until something changed; a save that wrote nothing is not logged at info.
#[test]
fn autosave_writes_only_when_something_changed() {
    let data = tempfile::tempdir().unwrap();
    let (weir, metrics) = start_metered(data.path(), 1);
    wait_for_metrics(metrics, "the first autosave", |m| {
        m("weir_store_saves_total") >= 1
    });
    let saves = metric(metrics, "weir_store_saves_total").unwrap();
    // Three intervals with nothing to save.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(metric(metrics, "weir_store_saves_total"), Some(saves));
    retain(&weir, "state/a", "1");
    wait_for_metrics(metrics, "the retained message saved", |m| {
        m("weir_store_saves_total") > saves && m("weir_store_retained") == 1
    });
    let log = weir.log();
    assert!(
        log.contains("1 retained messages and 0 sessions saved"),
        "{log}"
    );
    assert!(
        !log.contains("0 retained messages and 0 sessions saved"),
        "{log}"
    );
}

#[test]
fn a_corrupt_store_is_moved_aside_and_the_broker_starts_empty() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("weir.redb"), b"this is not a database").unwrap();
    let weir = start(data.path(), 3600).unwrap();
    assert!(weir.log().contains("cannot be read"), "{}", weir.log());
    assert!(weir.log().contains("starting empty"), "{}", weir.log());
    let aside = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("weir.redb.corrupt-")
        });
    assert!(aside, "the corrupt file was not kept aside");
    retain(&weir, "state/fresh", "start");
    assert_eq!(retained(&weir, 1), ["state/fresh start"]);
}

#[test]
fn a_store_in_use_by_another_weir_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let _first = start(data.path(), 3600).unwrap();
    let log = start(data.path(), 3600)
        .err()
        .expect("a second weir started on the same store");
    let file = data.path().join("weir.redb");
    assert!(
        log.contains(&format!(
            "the store {} is in use by another process",
            file.display()
        )),
        "{log}"
    );
}

fn publish(weir: &Weir, topic: &str, payload: &str) {
    let port = weir.v4.to_string();
    let out = mosquitto_pub(&["-p", &port, "-t", topic, "-m", payload, "-q", "1"]);
    assert!(out.status.success());
}

/// Reconnects MQTT 5 client `id` to its session; (session present, payloads received).
fn resume(weir: &Weir, id: &str) -> (bool, Vec<String>) {
    let result = paho(weir.v5, &["--client-id", id, "resume", "--topic", "jobs/#"]);
    let present = result["connack"]["session_present"].as_bool().unwrap();
    let payloads = result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["payload"].as_str().unwrap().to_string())
        .collect();
    (present, payloads)
}

#[test]
fn a_persistent_session_and_its_queued_messages_survive_sigterm_and_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let mut weir = start(data.path(), 1).unwrap();
    for id in ["worker-a", "worker-b"] {
        let left = paho(weir.v5, &["--client-id", id, "leave", "--topic", "jobs/#"]);
        assert_eq!(left["rc"], 0, "{left}");
    }
    publish(&weir, "jobs/1", "first");
    publish(&weir, "jobs/2", "second");
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success());
    assert!(
        took < Duration::from_secs(1),
        "the save at SIGTERM took {took:?}"
    );
    assert!(
        weir.log()
            .contains("0 retained messages and 2 sessions saved"),
        "{}",
        weir.log()
    );
    drop(weir);
    // After SIGTERM: worker-a finds its session and both messages.
    let (weir, metrics) = start_metered(data.path(), 1);
    assert!(weir.log().contains("2 sessions restored"), "{}", weir.log());
    assert_eq!(
        resume(&weir, "worker-a"),
        (true, vec!["first".into(), "second".into()])
    );
    // While worker-b is still away, one more message, an autosave, then kill -9. A save under
    // way may have taken its snapshot before the publish: the one after it did not.
    publish(&weir, "jobs/3", "third");
    let saves = metric(metrics, "weir_store_saves_total").unwrap_or(0);
    wait_for_metrics(metrics, "two more saves of both sessions", |m| {
        m("weir_store_saves_total") >= saves + 2 && m("weir_store_sessions") == 2
    });
    weir.signal("KILL");
    drop(weir);
    let weir = start(data.path(), 1).unwrap();
    assert_eq!(
        resume(&weir, "worker-b"),
        (true, vec!["first".into(), "second".into(), "third".into()])
    );
}

#[test]
fn a_saved_sessions_expiry_clock_goes_on_while_the_broker_is_down() {
    let data = tempfile::tempdir().unwrap();
    let mut weir = start(data.path(), 3600).unwrap();
    let left = paho(
        weir.v5,
        &[
            "--client-id",
            "brief",
            "leave",
            "--topic",
            "jobs/#",
            "--expiry",
            "1",
        ],
    );
    assert_eq!(left["rc"], 0, "{left}");
    assert!(weir.stop_with("TERM").0.success());
    drop(weir);
    // The session had one second to live: it is over when the broker comes back.
    std::thread::sleep(Duration::from_millis(1100));
    let weir = start(data.path(), 3600).unwrap();
    assert!(
        weir.log().contains("expired while the broker was down"),
        "{}",
        weir.log()
    );
    assert_eq!(resume(&weir, "brief"), (false, vec![]));
}

#[test]
fn a_connected_clients_session_is_saved_by_autosave_and_back_after_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let (weir, metrics) = start_metered(data.path(), 1);
    let port = weir.v4.to_string();
    let mut live =
        MosquittoSub::start(&["-p", &port, "-c", "-i", "live-1", "-q", "1", "-t", "jobs/#"]);
    wait_for_metrics(metrics, "the live session saved", |m| {
        m("weir_store_sessions") == 1
    });
    weir.signal("KILL");
    drop(weir);
    live.kill();
    let weir = start(data.path(), 1).unwrap();
    publish(&weir, "jobs/x", "while away");
    let result = paho(
        weir.v4,
        &[
            "--version",
            "3.1.1",
            "--client-id",
            "live-1",
            "resume",
            "--topic",
            "jobs/#",
        ],
    );
    assert_eq!(result["connack"]["session_present"], true, "{result}");
    let payloads: Vec<&str> = result["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["while away"], "{result}");
}
