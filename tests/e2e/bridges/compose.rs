//! Bridges with the rest of the broker: a graph's results go to the cloud and a command
//! brought in by an `in` line reaches a graph; a mosquitto.conf with two bridges (mosquitto's
//! own documented examples) imported, checked and run against mosquitto; and
//! config/examples/bridge.yaml as it is.

use super::{connected, gateway_with, sample, wait_metric, Mosquitto};
use crate::harness::{
    metric, modules_dir, mosquitto_pub, run_weir, write_file, MosquittoSub, Weir, PATIENCE,
};

#[test]
fn a_graph_s_results_go_out_and_what_comes_in_reaches_a_graph() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let bridge = format!(
        "  - name: cloud\n    addresses: ['127.0.0.1:{}']\n    topics:\n      - {{ pattern: 'processed/#', direction: out, qos: 1, remote_prefix: 'plant1/' }}\n      - {{ pattern: 'sensors/#', direction: in, qos: 1, remote_prefix: 'cmd/' }}\n",
        cloud.port
    );
    let graph = format!(
        "modules:\n  directories: ['{}']\ngraphs:\n  - name: demo\n    definition: builtin:temperature-map\n    source: [sensors/+/temperature]\n    sink: {{ topic: 'processed/{{1..}}' }}\n",
        modules_dir()
    );
    let (weir, metrics) = gateway_with(data.path(), &bridge, &graph);
    wait_metric(metrics, &connected("cloud"), 1, PATIENCE);
    let mut remote = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", "plant1/#", "-v"]);
    let reading = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    let out = mosquitto_pub(&[
        "-p",
        &weir.v4.to_string(),
        "-t",
        "sensors/gw1/temperature",
        "-q",
        "1",
        "-m",
        reading,
    ]);
    assert!(out.status.success());
    assert_eq!(
        remote.next_message(),
        r#"plant1/processed/gw1/temperature {"temperature":{"value":100.0,"unit":"C"}}"#
    );
    // In from the cloud, through the graph, and out again.
    let out = mosquitto_pub(&[
        "-p",
        &cloud.port_arg(),
        "-t",
        "cmd/sensors/gw2/temperature",
        "-q",
        "1",
        "-m",
        reading,
    ]);
    assert!(out.status.success());
    assert_eq!(
        remote.next_message(),
        r#"plant1/processed/gw2/temperature {"temperature":{"value":100.0,"unit":"C"}}"#
    );
    assert_eq!(metric(metrics, &sample("received_total", "cloud")), Some(1));
    assert_eq!(metric(metrics, &sample("sent_total", "cloud")), Some(2));
}

/// Two bridges as mosquitto.conf(5) documents them, pointed at a local mosquitto.
fn mosquitto_conf(cloud: u16, listener: u16) -> String {
    format!(
        "\
listener {listener} 127.0.0.1
allow_anonymous true
persistence true
persistence_location data/

# mosquitto.conf(5): \"connects a bridge to the broker at test.mosquitto.org\"
connection test-mosquitto-org
address 127.0.0.1:{cloud}
cleansession true
topic clients/total in 0 test/mosquitto/org/ $SYS/broker/

# mosquitto.conf(5): \"To remap an entire topic tree\"
connection remap
address 127.0.0.1:{cloud}
remote_clientid gw1-remap
bridge_protocol_version mqttv50
restart_timeout 1 10
keepalive_interval 30
notifications true
notification_topic bridges/remap/state
try_private true
start_type automatic
bridge_outgoing_retain true
bridge_attempt_unsubscribe false
local_clientid local-remap
topic # both 2 local/topic/ remote/topic/
bridge_psk 0123abcd
"
    )
}

#[test]
fn an_imported_mosquitto_conf_with_two_bridges_runs_against_mosquitto() {
    let cloud = Mosquitto::start("sys_interval 1\n");
    let dir = tempfile::tempdir().unwrap();
    let port = crate::harness::free_port();
    write_file(
        dir.path(),
        "mosquitto.conf",
        &mosquitto_conf(cloud.port, port),
    );
    let (status, yaml, stderr) = run_weir(
        &["config", "import-mosquitto", "mosquitto.conf"],
        dir.path(),
    );
    assert!(status.success(), "{stderr}");
    for expected in [
        "  - name: 'test-mosquitto-org'\n",
        "    clean_start: true\n",
        "      - { pattern: 'clients/total', direction: in, qos: 0, local_prefix: 'test/mosquitto/org/', remote_prefix: '$SYS/broker/' }\n",
        "    client_id: 'gw1-remap'\n    protocol: '5'\n    restart_timeout_s: [1, 10]\n",
        "      - { pattern: '#', direction: both, qos: 2, local_prefix: 'local/topic/', remote_prefix: 'remote/topic/' }\n",
        "# not imported: mosquitto.conf:27: `bridge_psk` (TLS with pre-shared keys",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
    let config = write_file(dir.path(), "weir.yaml", &yaml);
    let (status, out, stderr) = run_weir(&["config", "check", "weir.yaml"], dir.path());
    assert!(status.success(), "{yaml}\n{stderr}");
    assert!(out.contains("bridge remap: 127.0.0.1:"), "{out}");
    let weir = Weir::spawn(dir, &config, &[], port, port);
    // The remote's $SYS, brought in under a local topic: updated every second, until it
    // counts both bridges.
    let mut total = MosquittoSub::start(&[
        "-p",
        &port.to_string(),
        "-t",
        "test/mosquitto/org/clients/total",
    ]);
    while total.next_message().parse::<u64>().unwrap() < 2 {}
    // A whole tree remapped, both ways.
    let mut remote = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", "remote/topic/#", "-v"]);
    let mut local = MosquittoSub::start(&["-p", &port.to_string(), "-t", "local/topic/#", "-v"]);
    // The link's state, on a topic of the user's choosing: retained, `1` once connected.
    let mut state = MosquittoSub::start(&["-p", &port.to_string(), "-t", "bridges/remap/state"]);
    while state.next_message() != "1" {}
    let out = mosquitto_pub(&[
        "-p",
        &port.to_string(),
        "-t",
        "local/topic/up",
        "-q",
        "2",
        "-m",
        "1",
    ]);
    assert!(out.status.success());
    assert_eq!(remote.next_message(), "remote/topic/up 1");
    let out = mosquitto_pub(&[
        "-p",
        &cloud.port_arg(),
        "-t",
        "remote/topic/down",
        "-q",
        "2",
        "-m",
        "2",
    ]);
    assert!(out.status.success());
    assert_eq!(local.next_message(), "local/topic/up 1");
    assert_eq!(local.next_message(), "local/topic/down 2");
    drop(weir);
}

#[test]
fn the_example_configuration_forwards_results_and_readings_and_brings_commands_in() {
    let cloud = Mosquitto::start("");
    let data = tempfile::tempdir().unwrap();
    let port = crate::harness::free_port();
    let env = [
        ("WEIR_CLOUD", format!("127.0.0.1:{}", cloud.port)),
        ("WEIR_DATA_DIR", data.path().display().to_string()),
        ("WEIR_MQTT_PORT", port.to_string()),
        ("WEIR_METRICS_PORT", crate::harness::free_port().to_string()),
    ];
    let config = crate::harness::repo("config/examples/bridge.yaml");
    let _weir = Weir::spawn(tempfile::tempdir().unwrap(), &config, &env, port, port);
    let mut remote = MosquittoSub::start(&["-p", &cloud.port_arg(), "-t", "plant1/#", "-v"]);
    let mut commands = MosquittoSub::start(&["-p", &port.to_string(), "-t", "commands/#", "-v"]);
    // The bridge says it is up on the cloud once it is connected.
    let mut state = MosquittoSub::start(&[
        "-p",
        &cloud.port_arg(),
        "-t",
        "$SYS/broker/connection/gw1/state",
    ]);
    while state.next_message() != "1" {}
    let reading = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    let out = mosquitto_pub(&[
        "-p",
        &port.to_string(),
        "-t",
        "sensors/gw1/temperature",
        "-q",
        "1",
        "-m",
        reading,
    ]);
    assert!(out.status.success());
    let mut got = vec![remote.next_message(), remote.next_message()];
    got.sort();
    assert_eq!(
        got,
        [
            r#"plant1/processed/gw1/temperature {"temperature":{"value":100.0,"unit":"C"}}"#
                .to_string(),
            format!("plant1/raw/sensors/gw1/temperature {reading}"),
        ]
    );
    let out = mosquitto_pub(&[
        "-p",
        &cloud.port_arg(),
        "-t",
        "plant1/commands/reboot",
        "-q",
        "1",
        "-m",
        "now",
    ]);
    assert!(out.status.success());
    assert_eq!(commands.next_message(), "commands/reboot now");
}
