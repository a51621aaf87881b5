//! The state store scenario: request latency over MQTT 5, as Azure IoT Operations' clients see
//! it (a RESP3 request to `statestore/v1/.../command/invoke` with a response topic and
//! correlation data, answered on the response topic), one request at a time, beside a plain
//! MQTT 5 round trip on the same broker (publish to a topic the client subscribes to).

use crate::brokers::Broker;
use bytes::Bytes;
use hdrhistogram::Histogram;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{Client, Event, MqttOptions};
use serde::Serialize;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const REQUEST_TOPIC: &str = "statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke";
const RESPONSE_TOPIC: &str = "clients/bench/services/statestore/response";
const ECHO_TOPIC: &str = "bench/echo";

/// One kind of request's figures.
#[derive(Debug, Clone, Serialize)]
pub struct StateStoreRow {
    /// `SET`, `GET`, or `round trip` (plain publish and delivery, for comparison).
    pub request: &'static str,
    /// Requests sent, one at a time.
    pub requests: usize,
    /// Requests answered.
    pub answered: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    /// p50 over the round trip's p50.
    pub p50_vs_round_trip: f64,
}

/// A RESP3 request.
fn resp3(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend(format!("${}\r\n", part.len()).bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Connects an MQTT 5 client subscribed to the response and echo topics; what it receives
/// comes through the channel.
fn client(port: u16) -> anyhow::Result<(Client, mpsc::Receiver<Bytes>)> {
    let mut options = MqttOptions::new("bench-state-store", "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    // Without it, Nagle's algorithm holds small publishes back for up to 40 ms.
    let mut network = options.network_options();
    network.set_tcp_nodelay(true);
    options.set_network_options(network);
    let (client, mut connection) = Client::new(options, 64);
    client.subscribe(RESPONSE_TOPIC, QoS::AtLeastOnce)?;
    client.subscribe(ECHO_TOPIC, QoS::AtLeastOnce)?;
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut subacks = 0;
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subacks += 1;
                    if subacks == 2 {
                        let _ = ready_tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let key = publish
                        .properties
                        .and_then(|p| p.correlation_data)
                        .unwrap_or(publish.payload);
                    if tx.send(key).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    ready.recv_timeout(Duration::from_secs(10))?;
    Ok((client, rx))
}

/// Sends `count` requests made by `request(i)` one after the other, each waiting for its
/// answer (matched by correlation data, or by payload for the round trip).
fn measure(
    name: &'static str,
    count: usize,
    client: &Client,
    answers: &mpsc::Receiver<Bytes>,
    request: impl Fn(usize) -> (&'static str, Vec<u8>, Option<PublishProperties>),
) -> anyhow::Result<(StateStoreRow, Histogram<u64>)> {
    let mut latencies = Histogram::<u64>::new(3)?;
    let mut answered = 0;
    for i in 0..count {
        let (topic, payload, properties) = request(i);
        let expected = properties
            .as_ref()
            .and_then(|p| p.correlation_data.clone())
            .unwrap_or_else(|| Bytes::from(payload.clone()));
        let sent = Instant::now();
        match properties {
            Some(properties) => client.publish_with_properties(
                topic,
                QoS::AtLeastOnce,
                false,
                payload,
                properties,
            )?,
            None => client.publish(topic, QoS::AtLeastOnce, false, payload)?,
        }
        loop {
            match answers.recv_timeout(Duration::from_secs(5)) {
                Ok(key) if key == expected => {
                    latencies.record(sent.elapsed().as_micros() as u64)?;
                    answered += 1;
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    let row = StateStoreRow {
        request: name,
        requests: count,
        answered,
        p50_us: latencies.value_at_quantile(0.5),
        p99_us: latencies.value_at_quantile(0.99),
        p50_vs_round_trip: 0.0,
    };
    Ok((row, latencies))
}

fn request(command: &[&[u8]], i: usize) -> (&'static str, Vec<u8>, Option<PublishProperties>) {
    let properties = PublishProperties {
        response_topic: Some(RESPONSE_TOPIC.into()),
        correlation_data: Some(Bytes::from((i as u64).to_be_bytes().to_vec())),
        user_properties: vec![("__protVer".into(), "1.0".into())],
        content_type: Some("application/octet-stream".into()),
        ..PublishProperties::default()
    };
    (REQUEST_TOPIC, resp3(command), Some(properties))
}

/// Runs the scenario on `broker` (a Weir): `count` requests of each kind.
pub fn run(broker: &Broker, count: usize) -> anyhow::Result<Vec<StateStoreRow>> {
    let (client, answers) = client(broker.port)?;
    let value = vec![b'v'; 100];
    let (mut trip, _) = measure("round trip", count, &client, &answers, |i| {
        (ECHO_TOPIC, format!("echo-{i}").into_bytes(), None)
    })?;
    let (mut set, _) = measure("SET", count, &client, &answers, |i| {
        let key = format!("bench/{}", i % 100);
        request(&[b"SET", key.as_bytes(), &value], i)
    })?;
    let (mut get, _) = measure("GET", count, &client, &answers, |i| {
        let key = format!("bench/{}", i % 100);
        request(&[b"GET", key.as_bytes()], i)
    })?;
    let base = trip.p50_us.max(1) as f64;
    for row in [&mut trip, &mut set, &mut get] {
        row.p50_vs_round_trip = row.p50_us as f64 / base;
    }
    let _ = client.disconnect();
    Ok(vec![trip, set, get])
}

/// The rows as a table.
pub fn table(rows: &[StateStoreRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nstate store over MQTT 5 (Weir, one request at a time, in-memory store)\n\
         request      requests  answered   p50 us   p99 us  p50/round trip\n",
    );
    for row in rows {
        out.push_str(&format!(
            "{:<12} {:>9} {:>9} {:>8} {:>8} {:>15.2}\n",
            row.request, row.requests, row.answered, row.p50_us, row.p99_us, row.p50_vs_round_trip
        ));
    }
    out
}
