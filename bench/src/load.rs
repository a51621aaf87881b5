//! The load generator: publishers and subscribers on rumqttc (MQTT 3.1.1), counting what the
//! subscribers receive and the latency from the send time carried in each payload.
//!
//! Every payload is a JSON temperature reading in °F (so graphs with the temperature module can
//! process it) that carries its send time and sequence number, padded to the payload size:
//! `{"t":<ns since the epoch>,"s":<seq>,"temperature":{"value":72,"unit":"F"},"p":"xx.."}`.

use hdrhistogram::Histogram;
use rumqttc::{Client, Connection, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One load run.
#[derive(Debug, Clone)]
pub struct Load {
    /// Broker port on 127.0.0.1.
    pub port: u16,
    /// Topic publisher `i` publishes on: `{prefix}/{i}/temperature`.
    pub publish_prefix: String,
    /// Filter the subscribers subscribe to.
    pub subscribe: String,
    pub publishers: usize,
    pub subscribers: usize,
    pub qos: u8,
    pub payload: usize,
    /// Messages per publisher.
    pub messages: u64,
    /// Messages per second per publisher; `None`: as fast as the client takes them.
    pub rate: Option<f64>,
    /// Results each subscriber expects per message published (1 for delivery and maps).
    pub expect_all: bool,
    /// The subscribers form one shared subscription: each message reaches one of them.
    pub shared: bool,
    /// Where the subscribers connect, when not to `port` (a bridge's remote).
    pub subscribe_port: Option<u16>,
}

/// What a run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Messages all subscribers received.
    pub received: u64,
    /// Messages they should have received.
    pub expected: u64,
    /// Received messages per second, from the first publish to the last receive.
    pub msgs_per_s: f64,
    /// Latency percentiles, µs.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Receive times (ns since the epoch) of every message, when asked for.
    pub receive_times: Vec<u64>,
    /// Payloads received, when asked for.
    pub payloads: Vec<Vec<u8>>,
    /// Messages each subscriber received.
    pub per_subscriber: Vec<u64>,
    /// The longest silence a subscriber saw, ms: between the first publish and its first
    /// message, or between two consecutive messages.
    pub max_gap_ms: f64,
    /// How long the broker took to acknowledge a QoS 1 publish (PUBACK), µs: median and p99.
    pub puback_p50_us: f64,
    pub puback_p99_us: f64,
}

impl Outcome {
    /// An outcome of `received` of `expected` messages over `elapsed` seconds, with the
    /// latencies (ns) in `histogram`.
    pub fn measured(
        received: u64,
        expected: u64,
        elapsed: f64,
        histogram: &Histogram<u64>,
    ) -> Outcome {
        Outcome {
            received,
            expected,
            msgs_per_s: if elapsed > 0.0 {
                received as f64 / elapsed
            } else {
                0.0
            },
            p50_us: histogram.value_at_quantile(0.5) as f64 / 1e3,
            p90_us: histogram.value_at_quantile(0.9) as f64 / 1e3,
            p99_us: histogram.value_at_quantile(0.99) as f64 / 1e3,
            max_us: histogram.max() as f64 / 1e3,
            ..Outcome::default()
        }
    }
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn qos(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// A payload of `size` bytes (at least what the fields need) carrying `sent` and `seq`.
pub fn payload(sent: u64, seq: u64, size: usize) -> Vec<u8> {
    let mut text =
        format!(r#"{{"t":{sent},"s":{seq},"temperature":{{"value":72,"unit":"F"}},"p":""#);
    let pad = size.saturating_sub(text.len() + 2);
    text.extend(std::iter::repeat_n('x', pad));
    text.push_str("\"}");
    text.into_bytes()
}

/// The send time in a payload (also in results: the temperature map keeps other fields).
pub fn sent_of(payload: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(payload).ok()?;
    let start = text.find("\"t\":")? + 4;
    let end = start + text[start..].find(|c: char| !c.is_ascii_digit())?;
    text[start..end].parse().ok()
}

fn client(port: u16, id: &str) -> (Client, Connection) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    options.set_inflight(1000);
    let (client, mut connection) = Client::new(options, 10_000);
    // Without it, Nagle's algorithm holds small publishes back for up to 40 ms.
    let mut network = connection.eventloop.network_options();
    network.set_tcp_nodelay(true);
    connection.eventloop.set_network_options(network);
    (client, connection)
}

struct Shared {
    received: AtomicU64,
    last_receive: AtomicU64,
    /// When the first publish went out (ns since the epoch; 0: not yet).
    first_publish: AtomicU64,
    /// The longest silence at any subscriber, ns.
    max_gap: AtomicU64,
    histogram: Mutex<Histogram<u64>>,
    /// PUBACK latencies, ns.
    acks: Mutex<Histogram<u64>>,
    keep: bool,
    kept: Mutex<(Vec<u64>, Vec<Vec<u8>>)>,
}

/// Runs `load`; `keep`: also return every receive time and payload (for checks).
pub fn run(load: &Load, keep: bool) -> anyhow::Result<Outcome> {
    let shared = Arc::new(Shared {
        received: AtomicU64::new(0),
        last_receive: AtomicU64::new(0),
        first_publish: AtomicU64::new(0),
        max_gap: AtomicU64::new(0),
        // Nanoseconds, up to an hour.
        histogram: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?),
        acks: Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000_000, 3)?),
        keep,
        kept: Mutex::new((Vec::new(), Vec::new())),
    });
    let run_id = now_ns();
    let mut subscribed = Vec::new();
    let counts: Vec<Arc<AtomicU64>> = (0..load.subscribers)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    for (index, count) in counts.iter().enumerate() {
        let port = load.subscribe_port.unwrap_or(load.port);
        let (client, connection) = client(port, &format!("bench-sub-{run_id}-{index}"));
        client.subscribe(&load.subscribe, qos(load.qos))?;
        let (ready, wait) = std::sync::mpsc::channel();
        let shared = shared.clone();
        let count = count.clone();
        std::thread::spawn(move || receive(connection, shared, count, ready));
        wait.recv_timeout(Duration::from_secs(10))
            .map_err(|_| anyhow::anyhow!("a subscriber got no SUBACK"))?;
        subscribed.push(client);
    }
    let receivers = if load.shared { 1 } else { load.subscribers };
    let expected = load.messages * load.publishers as u64 * receivers as u64;
    let first_publish = now_ns();
    shared.first_publish.store(first_publish, Relaxed);
    let mut publishers = Vec::new();
    for index in 0..load.publishers {
        let load = load.clone();
        let shared = shared.clone();
        publishers.push(std::thread::spawn(move || {
            publish(&load, index, run_id, &shared)
        }));
    }
    // Publishers stay connected until every result arrived, as a device would.
    let mut connected = Vec::new();
    for publisher in publishers {
        connected.push(
            publisher
                .join()
                .map_err(|_| anyhow::anyhow!("a publisher panicked"))??,
        );
    }
    // Wait until everything arrived, or nothing more arrives for two seconds.
    let mut seen = 0;
    let mut quiet_since = Instant::now();
    while shared.received.load(Relaxed) < expected || !load.expect_all {
        std::thread::sleep(Duration::from_millis(5));
        let now = shared.received.load(Relaxed);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    for client in subscribed {
        let _ = client.disconnect();
    }
    for (client, driver) in connected {
        let _ = client.disconnect();
        let _ = driver.join();
    }
    let received = shared.received.load(Relaxed);
    let elapsed = shared
        .last_receive
        .load(Relaxed)
        .saturating_sub(first_publish) as f64
        / 1e9;
    let histogram = shared.histogram.lock().unwrap();
    let (receive_times, payloads) = std::mem::take(&mut *shared.kept.lock().unwrap());
    let acks = shared.acks.lock().unwrap();
    Ok(Outcome {
        receive_times,
        payloads,
        puback_p50_us: acks.value_at_quantile(0.5) as f64 / 1e3,
        puback_p99_us: acks.value_at_quantile(0.99) as f64 / 1e3,
        per_subscriber: counts.iter().map(|c| c.load(Relaxed)).collect(),
        max_gap_ms: shared.max_gap.load(Relaxed) as f64 / 1e6,
        ..Outcome::measured(received, expected, elapsed, &histogram)
    })
}

/// A publisher sending `payload` to `topic` at QoS 0, `rate` messages per second, until
/// `stop` is set (a load beside the measured one: a runaway graph's input).
pub fn background(
    port: u16,
    topic: &str,
    payload: &'static str,
    rate: f64,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let (client, mut connection) = client(port, &format!("bench-background-{}", now_ns()));
    let topic = topic.to_string();
    std::thread::spawn(move || {
        let driver = std::thread::spawn(move || {
            for event in connection.iter() {
                if matches!(
                    event,
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_)
                ) {
                    break;
                }
            }
        });
        let started = Instant::now();
        let mut sent = 0u64;
        while !stop.load(Relaxed) {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if client
                .publish(&topic, QoS::AtMostOnce, false, payload)
                .is_err()
            {
                break;
            }
            sent += 1;
        }
        let _ = client.disconnect();
        let _ = driver.join();
    })
}

/// A publisher's client and the thread driving its connection.
type Connected = (Client, std::thread::JoinHandle<()>);

fn publish(
    load: &Load,
    index: usize,
    run_id: u64,
    shared: &Arc<Shared>,
) -> anyhow::Result<Connected> {
    let (client, mut connection) = client(load.port, &format!("bench-pub-{run_id}-{index}"));
    let topic = format!("{}/{index}/temperature", load.publish_prefix);
    let level = qos(load.qos);
    let messages = load.messages;
    let (done, finished) = std::sync::mpsc::channel();
    // Drive the connection: it sends what `publish` queued and, at QoS 1, counts the acks
    // and times them (a broker acknowledges QoS 1 publishes in order).
    let shared = shared.clone();
    let driver = std::thread::spawn(move || {
        let mut acked = 0;
        let mut sent = std::collections::VecDeque::new();
        for event in connection.iter() {
            match event {
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) if level != QoS::AtMostOnce => {
                    sent.push_back(now_ns());
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    if let Some(at) = sent.pop_front() {
                        let took = now_ns().saturating_sub(at).max(1);
                        let _ = shared.acks.lock().unwrap().record(took);
                    }
                    acked += 1;
                    if acked == messages {
                        let _ = done.send(());
                    }
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                Err(e) => {
                    // rumqttc reconnects on the next iteration and keeps what is queued.
                    eprintln!("weir-bench: publisher {index}: {e}; reconnecting");
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {}
            }
        }
    });
    let started = Instant::now();
    for seq in 0..messages {
        if let Some(rate) = load.rate {
            let due = started + Duration::from_secs_f64(seq as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        client.publish(&topic, level, false, payload(now_ns(), seq, load.payload))?;
    }
    if load.qos > 0 {
        let _ = finished.recv_timeout(Duration::from_secs(60));
    }
    Ok((client, driver))
}

fn receive(
    mut connection: Connection,
    shared: Arc<Shared>,
    count: Arc<AtomicU64>,
    ready: std::sync::mpsc::Sender<()>,
) {
    // This subscriber's last message (ns since the epoch; 0: none yet).
    let mut last = 0u64;
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                let _ = ready.send(());
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let now = now_ns();
                let since = last.max(shared.first_publish.load(Relaxed));
                if since > 0 {
                    shared.max_gap.fetch_max(now.saturating_sub(since), Relaxed);
                }
                last = now;
                if let Some(sent) = sent_of(&publish.payload) {
                    let _ = shared
                        .histogram
                        .lock()
                        .unwrap()
                        .record(now.saturating_sub(sent).max(1));
                }
                if shared.keep {
                    let mut kept = shared.kept.lock().unwrap();
                    kept.0.push(now);
                    kept.1.push(publish.payload.to_vec());
                }
                shared.last_receive.store(now, Relaxed);
                shared.received.fetch_add(1, Relaxed);
                count.fetch_add(1, Relaxed);
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
            Err(_) => break,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_has_its_size_and_carries_its_send_time() {
        let made = payload(1_700_000_000_123_456_789, 7, 100);
        assert_eq!(made.len(), 100);
        assert_eq!(sent_of(&made), Some(1_700_000_000_123_456_789));
        let json: serde_json::Value = serde_json::from_slice(&made).unwrap();
        assert_eq!(json["temperature"]["unit"], "F");
    }
}
