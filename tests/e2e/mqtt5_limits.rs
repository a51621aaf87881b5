//! What an MQTT 5 client and the door negotiate, and how each side is held to it: topic
//! aliases both ways, receive maximum both ways, maximum packet size, server keep-alive,
//! response information, and reason strings on refusals. Paho (tests/e2e/mqtt5_probe.py) where
//! it can express the case, raw packets where a well-behaved client cannot.

use super::harness::{metric, Weir, PATIENCE};
use super::mqtt5::probe;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Weir with one listener on `v5` whose `broker:` section has `extra` (indented two spaces)
/// and the listener `limits`.
fn weir_with(extra: &str, limits: &str) -> (Weir, u16) {
    Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n{extra}  listeners:\n    - {{protocol: mqtt, address: '127.0.0.1:{v4}'}}\n    - {{protocol: mqtt, address: '127.0.0.1:{v5}', limits: {{{limits}}}}}\nmetrics: {{listen: '127.0.0.1:{metrics}'}}\n"
        )
    })
}

/// An MQTT string.
fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// A packet: first byte, then the body after its (one byte) remaining length.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    [&[first, body.len() as u8][..], body].concat()
}

/// An MQTT 5 CONNECT with a clean start, `keep_alive` and no properties.
fn connect_v5(keep_alive: u16, id: &str) -> Vec<u8> {
    let header = [
        &string("MQTT")[..],
        &[5, 0x02],
        &keep_alive.to_be_bytes(),
        &[0],
    ]
    .concat();
    packet(0x10, &[header, string(id)].concat())
}

/// Splits what the broker sent into (packet type, body).
fn packets(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let (mut length, mut shift, mut at) = (0usize, 0, 1);
        loop {
            let byte = bytes[at];
            length |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        out.push((bytes[0] >> 4, bytes[at..at + length].to_vec()));
        bytes = &bytes[at + length..];
    }
    out
}

/// Sends `packets` on a new connection; returns what the broker sent until it closed the
/// connection, and how long that took.
fn exchange(port: u16, sent: &[Vec<u8>]) -> (Vec<(u8, Vec<u8>)>, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    for packet in sent {
        stream.write_all(packet).unwrap();
    }
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    (packets(&received), started.elapsed())
}

#[test]
fn topic_aliases_work_both_ways_within_the_negotiated_maxima() {
    let (weir, _) = weir_with("", "max_topic_alias: 10");
    let result = probe(weir.v5, "aliases");
    assert_eq!(result["server maximum"], 10, "{result}");
    // The subscriber took two aliases: the door gave them to the first two topics and sends
    // the rest in full; the publisher's own alias (for al/in) was resolved by the door.
    assert_eq!(
        result["taking"],
        json!([
            ["al/a", "1", 1],
            ["", "2", 1],
            ["al/b", "3", 2],
            ["al/c", "4", null],
            ["al/in", "5", null],
            ["al/in", "6", null],
            ["", "7", 1]
        ]),
        "{result}"
    );
    let plain = result["plain"].as_array().unwrap();
    assert_eq!(plain.len(), 7, "{result}");
    assert!(
        plain.iter().all(|m| m[2].is_null() && m[0] != ""),
        "{result}"
    );
}

#[test]
fn a_client_never_has_more_unacknowledged_deliveries_than_its_receive_maximum() {
    let (weir, _) = weir_with("", "max_inflight_count: 100");
    let result = probe(weir.v5, "receive-maximum");
    assert_eq!(result["most unacknowledged"], 2, "{result}");
    assert_eq!(result["payloads"], json!(["0", "1", "2", "3", "4", "5"]));
}

#[test]
fn a_client_exceeding_the_doors_receive_maximum_is_disconnected() {
    let (weir, _) = weir_with("", "max_inflight_count: 2");
    let connack = probe(weir.v5, "connack");
    assert_eq!(connack["plain"]["ReceiveMaximum"], 2, "{connack}");
    // Three QoS 2 publishes, never released.
    let publish = |id: u8| packet(0x34, &[&string("rx/q2")[..], &[0, id, 0], b"x"].concat());
    let (got, _) = exchange(
        weir.v5,
        &[connect_v5(60, "greedy"), publish(1), publish(2), publish(3)],
    );
    let kinds: Vec<u8> = got.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        [2, 5, 5, 14],
        "CONNACK, PUBREC, PUBREC, DISCONNECT: {got:?}"
    );
    assert_eq!(got[3].1[0], 0x93, "receive maximum exceeded: {got:?}");
}

/// A client that goes on publishing past the broker's DISCONNECT still reads it: the broker
/// shuts its writing side and reads what comes for a moment before it closes, so the client
/// gets the reason and an orderly end, not a reset.
#[test]
fn a_client_that_keeps_publishing_past_its_disconnect_reads_the_reason() {
    let (weir, _) = weir_with("", "max_inflight_count: 2");
    let publish = |id: u8| packet(0x34, &[&string("rx/q2")[..], &[0, id, 0], b"x"].concat());
    let more = packet(0x30, &[&string("rx/more")[..], &[b'y'; 100][..]].concat());
    let mut stream = TcpStream::connect(("127.0.0.1", weir.v5)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let opening = [connect_v5(60, "pushy"), publish(1), publish(2), publish(3)].concat();
    stream.write_all(&opening).unwrap();
    // A client publishing on over 200 ms, as a device does that has not read yet.
    for n in 0..20 {
        let written = stream.write_all(&more);
        assert!(
            written.is_ok(),
            "publish {n} after the DISCONNECT: {written:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut received = Vec::new();
    let read = stream.read_to_end(&mut received);
    assert!(read.is_ok(), "the connection was reset: {read:?}");
    let got = packets(&received);
    let kinds: Vec<u8> = got.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, [2, 5, 5, 14], "{got:?}");
    assert_eq!(got[3].1[0], 0x93, "receive maximum exceeded: {got:?}");
}

#[test]
fn a_message_larger_than_a_clients_maximum_packet_size_is_not_sent_and_is_counted() {
    let (weir, metrics) = weir_with("", "max_payload_size: 65536");
    let result = probe(weir.v5, "max-packet");
    assert_eq!(result, json!(["s".repeat(20), "after"]));
    assert_eq!(
        metric(metrics, "weir_client_dropped_total{client=\"mp-sub\"}"),
        Some(1)
    );
}

#[test]
fn the_connack_tells_the_limits_and_the_response_information_asked_for() {
    let (weir, _) = weir_with(
        "",
        "max_payload_size: 4096, max_inflight_count: 7, max_topic_alias: 3",
    );
    let result = probe(weir.v5, "connack");
    let plain = &result["plain"];
    assert_eq!(plain["MaximumPacketSize"], 4096, "{result}");
    assert_eq!(plain["ReceiveMaximum"], 7, "{result}");
    assert_eq!(plain["TopicAliasMaximum"], 3, "{result}");
    assert!(plain.get("ResponseInformation").is_none(), "{result}");
    assert!(plain.get("ServerKeepAlive").is_none(), "{result}");
    assert_eq!(
        result["asking"]["ResponseInformation"], "response/ca-asking",
        "{result}"
    );
}

#[test]
fn max_keepalive_gives_mqtt5_clients_a_server_keep_alive_and_holds_them_to_it() {
    let (weir, _) = weir_with("  max_keepalive: 1\n", "max_inflight_count: 100");
    let result = probe(weir.v5, "connack");
    assert_eq!(result["plain"]["ServerKeepAlive"], 1, "{result}");
    // A client asking for 60 s and sending nothing is timed out after 1.5 s, not 90.
    let (got, took) = exchange(weir.v5, &[connect_v5(60, "sleepy")]);
    let kinds: Vec<u8> = got.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(kinds, [2, 14], "CONNACK, DISCONNECT: {got:?}");
    assert_eq!(got[1].1[0], 0x8d, "keep alive timeout: {got:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn refusals_carry_reason_strings_unless_the_client_declines_them() {
    let (weir, _) = weir_with("", "max_topic_alias: 10");
    let result = probe(weir.v5, "refusals");
    assert_eq!(result["connack"]["rc"], 0x8c, "{result}");
    assert_eq!(
        result["connack"]["properties"]["ReasonString"], "unsupported authentication method",
        "{result}"
    );
    let explained = &result["explained"];
    assert_eq!(explained["rc"], 0x87, "{result}");
    assert!(explained["properties"]["ReasonString"]
        .as_str()
        .is_some_and(|why| why.contains("not authorised")));
    assert_eq!(explained["suback"], json!([0x8f]), "{result}");
    assert_eq!(
        explained["suback properties"]["ReasonString"], "invalid topic filter",
        "{result}"
    );
    let declined = &result["declined"];
    assert_eq!(declined["rc"], 0x87, "{result}");
    assert_eq!(declined["properties"], json!({}), "{result}");
    assert_eq!(declined["suback properties"], json!({}), "{result}");
    assert_eq!(result["disconnect"]["rc"], 0x94, "{result}");
    assert!(result["disconnect"]["properties"]["ReasonString"]
        .as_str()
        .is_some_and(|why| why.contains("topic alias 11")));
}
