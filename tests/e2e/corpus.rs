//! The bad-input corpus: configuration files, graph definitions, module files, payloads and
//! MQTT packets that are wrong in one way each, with the exact message each gets. None may
//! panic, and none may take the broker down.

use super::harness::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

/// Runs `weir ARGS` in `dir` and returns stderr, asserting a clean failure (status 1).
fn refused(dir: &Path, args: &[&str]) -> String {
    let (status, _, stderr) = run_weir(args, dir);
    assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    stderr
}

fn assert_message(stderr: &str, expected: &str) {
    assert!(
        stderr.contains(expected),
        "expected\n  {expected}\ngot\n  {stderr}"
    );
}

/// `weir config check weir.yaml` on `yaml` says `expected`.
fn config_case(yaml: &[u8], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("weir.yaml"), yaml).unwrap();
    assert_message(
        &refused(dir.path(), &["config", "check", "weir.yaml"]),
        expected,
    );
}

macro_rules! config_cases {
    ($($name:ident: $yaml:expr => $expected:expr;)*) => {
        $(#[test]
        fn $name() {
            config_case($yaml.as_ref(), $expected);
        })*
    };
}

const GRAPH: &str =
    "graphs:\n  - {name: g, definition: builtin:temperature-map, source: [a], sink: {topic: b}";

config_cases! {
    config_tab_indentation: "broker:\n\tlisteners: []\n"
        => "weir.yaml:2:1: broker: found character that cannot start any token";
    config_unclosed_quote: "broker:\n  listeners:\n    - {protocol: '5, address: 127.0.0.1:1}\n"
        => "weir.yaml:4:1: broker.listeners: found unexpected end of stream at line 4 column 1, while scanning a quoted scalar at line 3 column 18";
    config_duplicate_key: "broker: {}\nbroker: {}\n"
        => "weir.yaml:1:1: duplicate field `broker`";
    config_sequence_for_a_mapping: "broker: [1, 2]\n"
        => "weir.yaml:1:9: broker: invalid type: sequence, expected struct BrokerConfig";
    config_port_out_of_range: "broker:\n  listeners:\n    - {protocol: mqtt, address: '127.0.0.1:70000'}\n"
        => "weir.yaml:3:33: broker.listeners[0].address: invalid socket address syntax";
    config_number_too_large: "broker:\n  router: {max_connections: 99999999999999999999999}\n"
        => "weir.yaml:2:29: broker.router.max_connections: invalid type: integer `99999999999999999999999` as u128, expected usize";
    config_not_a_boolean: "broker:\n  queue_qos0_messages: maybe\n"
        => "weir.yaml:2:24: broker.queue_qos0_messages: invalid type: string \"maybe\", expected a boolean";
    config_duplicate_graph_names: format!("{GRAPH}}}\n  - {{name: g, definition: builtin:temperature-map, source: [c], sink: {{topic: d}}}}\n")
        => "weir.yaml:1:1: graphs: two graphs are named `g`: names must be unique";
    config_empty_graph_name: "graphs:\n  - {name: '', definition: builtin:temperature-map, source: [a], sink: {topic: b}}\n"
        => "weir.yaml:2:12: graphs[0].name: a graph name cannot be empty";
    config_graph_name_with_a_slash: "graphs:\n  - {name: a/b, definition: builtin:temperature-map, source: [a], sink: {topic: b}}\n"
        => "weir.yaml:2:12: graphs[0].name: graph name `a/b` contains '/': a name is one topic level (no `/`, `+`, `#` or control characters)";
    config_bad_source_filter: "graphs:\n  - {name: g, definition: builtin:temperature-map, source: ['a/#/b'], sink: {topic: b}}\n"
        => "weir.yaml:2:61: graphs[0].source[0]: invalid topic filter `a/#/b`: `+` must fill a whole level and `#` a whole last level";
    config_wildcard_in_sink_topic: "graphs:\n  - {name: g, definition: builtin:temperature-map, source: [a], sink: {topic: 'b/+'}}\n"
        => "weir.yaml:2:79: graphs[0].sink.topic: a topic name cannot contain wildcards: `b/+`";
    config_unknown_builtin_graph: "graphs:\n  - {name: g, definition: builtin:nope, source: [a], sink: {topic: b}}\n"
        => "weir.yaml:2:27: graphs[0].definition: no built-in graph `nope` (built in: temperature-map, windowed-statistics)";
    config_missing_definition_file: "graphs:\n  - {name: g, definition: nope.yaml, source: [a], sink: {topic: b}}\n"
        => "weir.yaml:2:27: graphs[0].definition: cannot read file nope.yaml: No such file or directory (os error 2)";
    config_zero_workers: format!("{GRAPH}, workers: 0}}\n")
        => "weir.yaml:2:5: graphs[0].workers: expected at least 1";
    config_unknown_back_pressure: format!("{GRAPH}, back_pressure: wait}}\n")
        => "weir.yaml:2:98: graphs[0].back_pressure: unknown back-pressure policy `wait`: expected `block` or `drop`";
    config_qos_3: "graphs:\n  - {name: g, definition: builtin:temperature-map, source: [a], sink: {topic: b, qos: 3}}\n"
        => "weir.yaml:2:71: graphs[0].sink.qos: QoS 3: expected 0, 1 or 2";
    config_no_source: "graphs:\n  - {name: g, definition: builtin:temperature-map, source: [], sink: {topic: b}}\n"
        => "weir.yaml:2:60: graphs[0].source: no source filter: expected at least one MQTT topic filter";
    config_misspelt_circuit_key: "engine:\n  circuit: {failures: 5, backof_ms: 10}\n"
        => "weir.yaml:2:26: engine.circuit.backof_ms: unknown field `backof_ms`, expected one of `failures`, `backoff_ms`, `max_backoff_ms`";
    config_zero_backoff: "engine:\n  circuit: {backoff_ms: 0}\n"
        => "weir.yaml:2:12: engine.circuit.backoff_ms: expected at least 1";
    config_drain_timeout_not_a_number: "shutdown: {drain_timeout_s: soon}\n"
        => "weir.yaml:1:29: shutdown.drain_timeout_s: invalid type: string \"soon\", expected u64";
    config_unclosed_variable: "broker:\n  sys_interval: ${WEIR_X\n"
        => "weir.yaml:2:17: malformed variable reference `${WEIR_X`: expected `${NAME}` or `${NAME:-default}`";
    config_binary_garbage: b"\x00\x01\x02\xff\xfe".as_slice()
        => "weir.yaml: cannot read configuration: stream did not contain valid UTF-8\n";
}

/// `weir graph check g.yaml` (modules from the built ones) on `yaml` says `expected`.
fn graph_case(yaml: &str, expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "g.yaml", yaml);
    let modules = modules_dir();
    let args = ["graph", "check", "g.yaml", "--modules", &modules];
    assert_message(&refused(dir.path(), &args), expected);
}

const HEADER: &str = "metadata: {name: g, version: \"1\"}\nmoduleRequirements: {apiVersion: \"1.1.0\", runtimeVersion: \"1.1.0\"}\n";

/// A graph source → `middle` → sink, `middle` being YAML flow mappings of operations.
fn graph_through(middle: &[&str], connections: &[(&str, &str)]) -> String {
    let mut yaml = format!("{HEADER}operations:\n  - {{operationType: source, name: s}}\n");
    for operation in middle {
        yaml.push_str(&format!("  - {operation}\n"));
    }
    yaml.push_str("  - {operationType: sink, name: k}\nconnections:\n");
    for (from, to) in connections {
        yaml.push_str(&format!(
            "  - {{from: {{name: {from}}}, to: {{name: {to}}}}}\n"
        ));
    }
    yaml
}

macro_rules! graph_cases {
    ($($name:ident: $yaml:expr => $expected:expr;)*) => {
        $(#[test]
        fn $name() {
            graph_case(&$yaml, $expected);
        })*
    };
}

const ECHO_A: &str = "{operationType: map, name: a, module: echo:1.0.0}";
const ECHO_B: &str = "{operationType: map, name: b, module: echo:1.0.0}";

graph_cases! {
    graph_cycle: graph_through(&[ECHO_A, ECHO_B], &[("s", "a"), ("a", "b"), ("b", "a"), ("b", "k")])
        => "g.yaml:11:6: connections[2]: this connection closes a cycle: a → b → a";
    graph_dangling_node: graph_through(&[ECHO_A], &[("s", "a")])
        => "g.yaml:5:32: operations[1].name: node `a` does not lead to the sink";
    graph_unknown_node_in_a_connection: graph_through(&[ECHO_A], &[("s", "a"), ("a", "nowhere")])
        => "g.yaml:9:34: connections[1].to.name: unknown node `nowhere`";
    graph_duplicate_node_name: graph_through(&["{operationType: map, name: s, module: echo:1.0.0}"], &[("s", "k")])
        => "g.yaml:5:32: operations[1].name: duplicate node name `s` (first used at line 4)";
    graph_two_sources: graph_through(&["{operationType: source, name: t}"], &[("s", "k"), ("t", "k")])
        => "g.yaml:4:3: operations: a graph has exactly one source operation; this one has 2";
    graph_unknown_operation_type: graph_through(&["{operationType: reduce, name: a, module: echo:1.0.0}"], &[("s", "a"), ("a", "k")])
        => "g.yaml:5:5: operations[1].operationType: unknown operation type `reduce`, expected one of source, map, filter, branch, concatenate, accumulate, delay, sink";
    graph_map_without_module: graph_through(&["{operationType: map, name: a}"], &[("s", "a"), ("a", "k")])
        => "g.yaml:5:6: operations[1]: operation `a` of type map needs a `module`";
    graph_unsupported_api_version: format!("metadata: {{name: g, version: \"1\"}}\nmoduleRequirements: {{apiVersion: \"9.9.9\", runtimeVersion: \"1.1.0\"}}\noperations: []\nconnections: []\n")
        => "g.yaml:2:34: moduleRequirements.apiVersion: unsupported apiVersion `9.9.9`: expected \"1.1.0\" (or the preview's \"0.2.0\" with hostlibVersion)";
    graph_module_not_found: graph_through(&["{operationType: map, name: a, module: nothere:1.0.0}"], &[("s", "a"), ("a", "k")])
        => "g.yaml:5:43: operations[1].module: node `a`: module `nothere:1.0.0` not found; looked for";
    graph_module_missing_the_export: graph_through(&["{operationType: filter, name: a, module: echo:1.0.0}"], &[("s", "a"), ("a", "k")])
        => "echo.wasm does not export the `filter` interface its operation needs (it exports: map)";
    graph_unknown_key: format!("{HEADER}operations: []\nconnections: []\nextra: 1\n")
        => "g.yaml:5:1: extra: unknown field `extra`, expected one of `metadata`, `moduleRequirements`, `moduleConfigurations`, `operations`, `connections`, `schemas`";
    graph_operations_not_a_list: format!("{HEADER}operations: {{a: 1}}\nconnections: []\n")
        => "g.yaml:3:13: operations: invalid type: map, expected a sequence";
    graph_arm_on_a_map: format!("{HEADER}operations:\n  - {{operationType: source, name: s}}\n  - {ECHO_A}\n  - {{operationType: sink, name: k}}\nconnections:\n  - {{from: {{name: s}}, to: {{name: a}}}}\n  - {{from: {{name: a, arm: true}}, to: {{name: k}}}}\n")
        => "g.yaml:9:27: connections[1].from.arm: `a` is a map, not a branch: only edges leaving a branch have an arm";
    graph_edge_into_the_source: graph_through(&[], &[("s", "k"), ("k", "s")])
        => "g.yaml:8:34: connections[1].to.name: no edge may enter the source `s`";
    graph_configuration_of_an_unknown_node: format!("{HEADER}moduleConfigurations:\n  - {{name: ghost, parameters: {{x: {{name: x, required: false}}}}}}\noperations:\n  - {{operationType: source, name: s}}\n  - {{operationType: sink, name: k}}\nconnections:\n  - {{from: {{name: s}}, to: {{name: k}}}}\n")
        => "g.yaml:4:12: moduleConfigurations[0].name: unknown node `ghost`";
}

/// `weir module inspect m.wasm` on `bytes` says `expected`.
fn wasm_case(bytes: &[u8], expected: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.wasm"), bytes).unwrap();
    assert_message(
        &refused(dir.path(), &["module", "inspect", "m.wasm"]),
        expected,
    );
}

#[test]
fn wasm_empty_file() {
    wasm_case(
        b"",
        "module m.wasm: not a loadable WebAssembly component: the file is empty",
    );
}

#[test]
fn wasm_truncated_component() {
    let built = std::fs::read(Path::new(&modules_dir()).join("echo.wasm")).unwrap();
    wasm_case(
        &built[..100],
        "module m.wasm: not a loadable WebAssembly component: failed to parse WebAssembly module: unexpected end-of-file",
    );
}

#[test]
fn wasm_core_module_instead_of_a_component() {
    wasm_case(
        b"\0asm\x01\0\0\0",
        "module m.wasm: not a loadable WebAssembly component: a core WebAssembly module, not a component",
    );
}

#[test]
fn wasm_component_of_another_package() {
    wasm_case(
        &wat::parse_str(r#"(component (instance $e) (export "acme:other/api@1.0.0" (instance $e)))"#).unwrap(),
        "module m.wasm: exports no operator interface (expected wasm-graph:processor/{map,filter,branch,accumulate,delay}@1.1.0 or tinykube-graph:processor/...@1.0.0); it exports: acme:other/api@1.0.0",
    );
}

#[test]
fn wasm_import_the_host_does_not_provide() {
    wasm_case(
        &wat::parse_str(r#"(component (import "acme:unknown/thing@1.0.0" (instance $i (export "f" (func)))) (instance $e) (export "wasm-graph:processor/map@1.1.0" (instance $e)))"#).unwrap(),
        "module m.wasm: imports something this host cannot provide: component imports instance `acme:unknown/thing@1.0.0`, but a matching implementation was not found in the linker",
    );
}

#[test]
fn wasm_preview_module_is_runnable_beside_current_ones() {
    // The preview package (tinykube-graph 1.0.0) is served beside the current one: a preview
    // module is inspectable and runnable, not an error.
    let dir = tempfile::tempdir().unwrap();
    let module = Path::new(&modules_dir()).join("preview-map.wasm");
    let (status, stdout, stderr) = run_weir(
        &["module", "inspect", &module.display().to_string()],
        dir.path(),
    );
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("runnable:   yes"), "{stdout}");
}

#[test]
fn payloads_a_module_cannot_parse_go_to_the_dead_letter_topic_with_the_reason() {
    let weir = Weir::start_with(|v4, v5| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\n\
             graphs:\n  - {{name: demo, definition: builtin:temperature-map, source: ['sensors/+/temperature'], sink: {{topic: 'processed/{{1}}'}}}}\n",
            modules_dir()
        )
    });
    let v5 = weir.v5.to_string();
    let mut dead = MosquittoSub::start(&[
        "-V",
        "mqttv5",
        "-p",
        &v5,
        "-t",
        "weir/dead-letter/demo",
        "-F",
        "%p|%P",
    ]);
    let cases = [
        (
            "not json",
            "payload is not JSON: expected ident at line 1 column 2",
        ),
        (
            r#"{"temperature":{"value":"hot","unit":"F"}}"#,
            "`temperature.value` is not a number",
        ),
        (
            r#"{"temperature":{"value":1e999,"unit":"F"}}"#,
            "payload is not JSON: number out of range at line 1 column 29",
        ),
        (
            "",
            "payload is not JSON: EOF while parsing a value at line 1 column 0",
        ),
    ];
    for (payload, reason) in cases {
        let out = mosquitto_pub(&[
            "-p",
            &v5,
            "-q",
            "1",
            "-t",
            "sensors/x/temperature",
            "-m",
            payload,
        ]);
        assert!(out.status.success());
        let letter = dead.next_message();
        assert!(letter.starts_with(&format!("{payload}|")), "{letter}");
        assert!(
            letter.contains(&format!(
                "weir-error:process returned an error: temperature/map: {reason}"
            )),
            "{letter}"
        );
        assert!(
            letter.contains("weir-node:module-temperature/map weir-module:temperature"),
            "{letter}"
        );
    }
}

fn mqtt_string(s: &[u8]) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s);
    out
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut digit = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            digit |= 0x80;
        }
        out.push(digit);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// Connects over MQTT 5 as `client`, sends `bad`, and returns the DISCONNECT's reason code
/// and reason string.
fn disconnect_after(port: u16, client: &str, bad: &[u8]) -> (u8, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut connect = mqtt_string(b"MQTT");
    connect.extend_from_slice(&[5, 2, 0, 60, 0]);
    connect.extend(mqtt_string(client.as_bytes()));
    stream.write_all(&packet(0x10, &connect)).unwrap();
    let mut connack = [0u8; 64];
    let n = stream.read(&mut connack).unwrap();
    assert!(
        n >= 4 && connack[0] == 0x20 && connack[3] == 0,
        "{:?}",
        &connack[..n]
    );
    stream.write_all(bad).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert_eq!(reply.first(), Some(&0xE0), "no DISCONNECT: {reply:?}");
    // 0xE0, length, reason code, properties length, then 0x1F and the reason string.
    let reason = reply[2];
    let text = reply
        .iter()
        .position(|&b| b == 0x1F)
        .map(|i| {
            let len = u16::from_be_bytes([reply[i + 1], reply[i + 2]]) as usize;
            String::from_utf8_lossy(&reply[i + 3..i + 3 + len]).into_owned()
        })
        .unwrap_or_default();
    (reason, text)
}

#[test]
fn mqtt_packets_that_break_the_protocol_get_a_disconnect_saying_why() {
    let weir = Weir::start();
    let invalid_utf8 = [mqtt_string(b"\xC3\x28"), vec![0], b"x".to_vec()].concat();
    let wildcard = [mqtt_string(b"a/+"), vec![0], b"x".to_vec()].concat();
    // Payload format indicator (0x01) given twice.
    let repeated = [mqtt_string(b"a"), vec![4, 1, 1, 1, 1], b"x".to_vec()].concat();
    let cases: [(&str, Vec<u8>, u8, &str); 5] = [
        ("remaining-length-of-five-bytes", vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], 0x81, "broke the protocol: a malformed packet (Invalid length)"),
        ("oversized", vec![0x30, 0xFF, 0xFF, 0xFF, 0x7F], 0x95, "broke the protocol: a malformed packet (Max size exceeded: size=268435455, max=1048576)"),
        ("invalid-utf8-topic", packet(0x30, &invalid_utf8), 0x81, "broke the protocol: a malformed packet (utf8 error)"),
        ("wildcard-topic", packet(0x30, &wildcard), 0x90, "broke the protocol: a topic name cannot contain wildcards: `a/+`"),
        ("repeated-property", packet(0x30, &repeated), 0x81, "broke the protocol: a malformed packet (Malformed packet)"),
    ];
    for (client, bad, code, said) in cases {
        let (reason, text) = disconnect_after(weir.v5, client, &bad);
        assert_eq!(reason, code, "{client}: {text}");
        assert_eq!(text, said, "{client}");
        weir.wait_for_log(&format!("client `{client}` {said}"));
    }
    // A packet cut short, then the connection closed: the broker goes on.
    let mut stream = TcpStream::connect(("127.0.0.1", weir.v5)).unwrap();
    stream
        .write_all(&[0x10, 0x14, 0x00, 0x04, b'M', b'Q'])
        .unwrap();
    drop(stream);
    let out = mosquitto_pub(&["-p", &weir.v4.to_string(), "-t", "still", "-m", "up"]);
    assert!(out.status.success(), "the broker went down");
}
