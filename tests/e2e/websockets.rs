//! MQTT over WebSocket (`protocol: websockets`), plain and inside TLS, with Paho's WebSocket
//! transport; what it refuses, with raw HTTP.

use super::harness::{free_port, paho, write_file, MosquittoSub, Weir, PATIENCE};
use super::security::TestPki;
use std::io::{Read, Write};
use std::net::TcpStream;

/// Weir with a plain MQTT listener (`v4`) and a WebSocket one (`v5`), both on the test's ports.
fn start() -> Weir {
    Weir::start_with(|tcp, ws| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{tcp}'}}\n    - {{protocol: websockets, address: '127.0.0.1:{ws}'}}\n"
        )
    })
}

#[test]
fn paho_speaks_mqtt_3_and_5_over_websocket_on_both_paths_and_meets_tcp_clients() {
    let weir = start();
    let tcp = weir.v4.to_string();
    let mut sub = MosquittoSub::start(&["-p", &tcp, "-t", "probe/#", "-q", "1"]);
    let ws = weir.v5;
    for version in ["3.1.1", "5"] {
        for path in ["/mqtt", "/"] {
            let result = paho(
                ws,
                &["--version", version, "--websocket-path", path, "connect"],
            );
            assert_eq!(result["rc"], 0, "{version} on {path}: {result}");
            assert_eq!(
                result["round_trip"],
                serde_json::json!(["hello"]),
                "{version} on {path}: {result}"
            );
            // What the WebSocket client published reached the TCP subscriber too.
            assert_eq!(sub.next_message(), "hello", "{version} on {path}");
        }
    }
}

/// Sends a WebSocket upgrade for `path` offering `subprotocol`; returns the status line.
fn upgrade(port: u16, path: &str, subprotocol: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8];
    while !answer.ends_with(b"\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).trim_end().to_string()
}

#[test]
fn a_websocket_listener_refuses_other_paths_and_subprotocols() {
    let weir = start();
    assert_eq!(
        upgrade(weir.v5, "/mqtt", "mqtt"),
        "HTTP/1.1 101 Switching Protocols"
    );
    assert_eq!(upgrade(weir.v5, "/other", "mqtt"), "HTTP/1.1 404 Not Found");
    assert_eq!(
        upgrade(weir.v5, "/mqtt", "chat"),
        "HTTP/1.1 400 Bad Request"
    );
    // The listener goes on serving after refusals.
    let result = paho(weir.v5, &["--websocket-path", "/mqtt", "connect"]);
    assert_eq!(
        result["round_trip"],
        serde_json::json!(["hello"]),
        "{result}"
    );
}

#[test]
fn mqtt_over_websocket_inside_tls() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().unwrap();
    pki.write(dir.path());
    let (tcp, wss) = (free_port(), free_port());
    let config = write_file(
        dir.path(),
        "weir.yaml",
        &format!(
            "broker:\n  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{tcp}'}}\n    - protocol: websockets\n      address: 127.0.0.1:{wss}\n      tls: {{cert: server.pem, key: server.key}}\n"
        ),
    );
    let ca = dir.path().join("ca.pem").display().to_string();
    let weir = Weir::spawn(dir, &config, &[], tcp, wss);
    for version in ["3.1.1", "5"] {
        let result = paho(
            weir.v5,
            &[
                "--version",
                version,
                "--websocket-path",
                "/mqtt",
                "--tls-ca",
                &ca,
                "connect",
            ],
        );
        assert_eq!(
            result["round_trip"],
            serde_json::json!(["hello"]),
            "{result}"
        );
    }
}
