//! Start-up with the embedded default, the command line, and clean shutdown on signals.

use super::clients::Client4;
use super::harness::{free_port, run_weir, Weir};
use rumqttc::QoS;
use std::time::Duration;

#[test]
fn sigterm_stops_the_broker_within_two_seconds() {
    let mut weir = Weir::start();
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success(), "exit status {status}:\n{}", weir.log());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(weir.log().contains("stopped"), "{}", weir.log());
}

#[test]
fn ctrl_c_stops_the_broker_within_two_seconds() {
    let mut weir = Weir::start();
    let (status, took) = weir.stop_with("INT");
    assert!(status.success(), "exit status {status}:\n{}", weir.log());
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_with_the_embedded_default_configuration() {
    // The default listens on 1883 unless WEIR_MQTT_PORT says otherwise; tests never take the
    // well-known port. One port serves MQTT 3.1.1 and 5.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("weir.log")).unwrap();
    let mut child = std::process::Command::new(super::harness::weir_bin())
        .arg("run")
        // No target/modules here: the demo graph cannot start.
        .current_dir(dir.path())
        .env("WEIR_MQTT_PORT", port.to_string())
        .env("WEIR_METRICS_PORT", free_port().to_string())
        .env("WEIR_DATA_DIR", dir.path().join("data"))
        .env_remove("WEIR_CONFIG")
        .stderr(log)
        .spawn()
        .unwrap();
    let connected = async {
        loop {
            if let Ok(client) = Client4::connect(Client4::options("dflt", port)).await {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut client = tokio::time::timeout(Duration::from_secs(10), connected)
        .await
        .expect("the default configuration did not listen on WEIR_MQTT_PORT");
    client.subscribe("d/#", QoS::AtMostOnce).await;
    let v5_client = super::clients::Client5::connect("dflt5", port).await;
    drop(v5_client);
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(dir.path().join("weir.log")).unwrap();
    assert!(log.contains("embedded default configuration"), "{log}");
    assert!(
        log.contains(&format!("MQTT 3.1/3.1.1/5 listener on 127.0.0.1:{port}")),
        "the start-up line names the listener:\n{log}"
    );
    assert_eq!(
        log.matches(" listener on ").count(),
        1,
        "one listener:\n{log}"
    );
    assert!(
        log.contains("graph `demo` not started: ")
            && log.contains("module `temperature:1.0.0` not found")
            && log.contains("build the example modules with `scripts/build-modules.sh`"),
        "one line says why the demo graph is missing and how to build it:\n{log}"
    );
}

#[test]
fn help_explains_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, _) = run_weir(&["--help"], dir.path());
    assert!(status.success());
    for word in ["run", "config", "--log-level", "RUST_LOG"] {
        assert!(stdout.contains(word), "weir --help lacks {word}:\n{stdout}");
    }
    let (status, stdout, _) = run_weir(&["run", "--help"], dir.path());
    assert!(status.success());
    for word in ["--config", "WEIR_CONFIG", "embedded default", "--log-level"] {
        assert!(
            stdout.contains(word),
            "weir run --help lacks {word}:\n{stdout}"
        );
    }
}

#[test]
fn printed_default_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let (status, stdout, _) = run_weir(&["config", "default"], dir.path());
    assert!(status.success());
    std::fs::write(dir.path().join("weir.yaml"), stdout).unwrap();
    let (status, stdout, stderr) = run_weir(&["config", "check", "weir.yaml"], dir.path());
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains("listener mqtt: MQTT 3.1/3.1.1/5 on 127.0.0.1:1883"),
        "{stdout}"
    );
}

#[test]
fn bad_log_level_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_weir(&["--log-level", "info,[", "config", "default"], dir.path());
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("--log-level"), "{stderr}");
}

#[test]
fn sigterm_with_the_demo_graph_of_the_default_configuration_exits_within_two_seconds() {
    let (mut weir, metrics) = Weir::start_default();
    assert_eq!(
        super::harness::metric(metrics, r#"weir_graph_received_total{graph="demo"}"#),
        Some(0),
        "the demo graph runs"
    );
    let (status, took) = weir.stop_with("TERM");
    assert!(status.success(), "exit status {status}:\n{}", weir.log());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(weir.log().contains("stopped"), "{}", weir.log());
}

/// A one-node graph running the `slow` module (`delay_ms` per message) on `slow/in`, results on
/// `slow/out`.
fn slow_broker(delay_ms: u32) -> Weir {
    let dir = tempfile::tempdir().unwrap();
    let definition = super::harness::write_file(
        dir.path(),
        "slow.yaml",
        "metadata: {name: slow, version: \"1\"}\nmoduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}\noperations:\n  - {operationType: source, name: source}\n  - {operationType: map, name: slow, module: \"slow:1.0.0\"}\n  - {operationType: sink, name: sink}\nconnections:\n  - {from: {name: source}, to: {name: slow}}\n  - {from: {name: slow}, to: {name: sink}}\n",
    );
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}'}}\nmodules: {{directories: ['{}']}}\ngraphs:\n  - {{name: slow, definition: '{}', source: [slow/in], sink: {{topic: slow/out}}, configuration: {{delay_ms: {delay_ms}}}, queue: 1000}}\n",
            super::harness::modules_dir(),
            definition.display()
        )
    });
    drop(dir);
    weir
}

#[test]
fn shutdown_lets_graphs_finish_then_disconnects_mqtt5_clients() {
    use std::io::BufRead;
    let mut weir = slow_broker(20);
    // A Paho MQTT 5 subscriber that reports how its connection ended.
    let mut probe = std::process::Command::new("python3")
        .arg(super::harness::repo("tests/e2e/paho_probe.py"))
        .args(["--port", &weir.v4.to_string(), "--client-id", "watcher"])
        .args(["await-disconnect", "--topic", "slow/out", "--wait", "20"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(probe.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), r#"{"ready": true}"#);
    // 50 messages for a 20 ms module: about a second of work queued when the signal comes.
    super::harness::mosquitto_pub_lines(
        &["-p", &weir.v4.to_string(), "-t", "slow/in", "-q", "1"],
        (0..50).map(|n| format!("held {n}")),
    );
    weir.signal("TERM");
    let (status, _) = weir
        .wait_exit(Duration::from_secs(10))
        .expect("weir did not stop");
    assert!(status.success(), "{status}:\n{}", weir.log());
    let ended: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    probe.wait().unwrap();
    assert_eq!(
        ended["messages"], 50,
        "every result before the end: {ended}"
    );
    assert_eq!(
        ended["reason"], 0x8B,
        "DISCONNECT: server shutting down: {ended}"
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let mut weir = slow_broker(50);
    // 200 messages for a 50 ms module: ten seconds of work.
    super::harness::mosquitto_pub_lines(
        &["-p", &weir.v4.to_string(), "-t", "slow/in", "-q", "1"],
        (0..200).map(|n| format!("held {n}")),
    );
    weir.signal("TERM");
    weir.wait_for_log("terminated, stopping");
    weir.signal("TERM");
    let (status, took) = weir
        .wait_exit(Duration::from_secs(2))
        .expect("the second signal was ignored");
    assert_eq!(status.code(), Some(1), "{}", weir.log());
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(
        weir.log().contains("again: exiting at once"),
        "{}",
        weir.log()
    );
}
