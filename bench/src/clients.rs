//! A load generator this tool did not write: Debian's `mosquitto_pub -l` (one message per line
//! of its standard input) and `mosquitto_sub -C` (exits after so many messages), so that the
//! figures do not rest on rumqttc alone. One publisher, one subscriber.
//!
//! Lines are stamped with the time they are handed to `mosquitto_pub` and timed when
//! `mosquitto_sub` prints them (line-buffered through `stdbuf`), so latency includes both
//! pipes. Throughput and the longest silence are taken from the first message received:
//! `mosquitto_pub`'s start and connection are not the broker's time.

use crate::load::{now_ns, payload, sent_of, Load, Outcome};
use hdrhistogram::Histogram;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long without a message before the subscriber is given up on.
const QUIET: Duration = Duration::from_secs(2);

/// Runs `load` (one publisher, one subscriber) with mosquitto's clients.
pub fn run(load: &Load) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        load.publishers == 1 && load.subscribers == 1 && load.rate.is_none(),
        "the mosquitto-clients generator runs one flat-out publisher and one subscriber"
    );
    let port = load.port.to_string();
    let qos = load.qos.to_string();
    let expected = load.messages;
    let (mut subscriber, received) = subscribe(load, &port, &qos)?;
    let (mut publisher, writer) = publish(load, &port, &qos)?;
    let mut latencies = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3)?;
    let (mut count, mut first, mut last, mut max_gap) = (0u64, 0u64, 0u64, 0u64);
    while count < expected {
        let Ok((at, line)) = received.recv_timeout(QUIET) else {
            break;
        };
        let Some(sent) = sent_of(line.as_bytes()) else {
            continue; // a debug line
        };
        latencies.record(at.saturating_sub(sent).max(1))?;
        if count == 0 {
            first = at;
        } else {
            max_gap = max_gap.max(at.saturating_sub(last));
        }
        last = at;
        count += 1;
    }
    let _ = writer.join();
    let _ = publisher.wait();
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    let elapsed = last.saturating_sub(first) as f64 / 1e9;
    // The rate counts the intervals between the first message received and the last.
    let intervals = count.saturating_sub(1);
    Ok(Outcome {
        received: count,
        per_subscriber: vec![count],
        max_gap_ms: max_gap as f64 / 1e6,
        ..Outcome::measured(intervals, expected, elapsed, &latencies)
    })
}

/// Lines `mosquitto_sub -d` prints, with the time each was read.
type Lines = mpsc::Receiver<(u64, String)>;

/// Starts `mosquitto_sub` for `load.messages` messages and returns once it is subscribed.
fn subscribe(load: &Load, port: &str, qos: &str) -> anyhow::Result<(Child, Lines)> {
    let mut subscriber = Command::new("stdbuf")
        .args(["-oL", "mosquitto_sub", "-d", "-h", "127.0.0.1", "-p", port])
        .args([
            "-q",
            qos,
            "-t",
            &load.subscribe,
            "-C",
            &load.messages.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start mosquitto_sub: {e}"))?;
    let stdout = subscriber.stdout.take().expect("piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send((now_ns(), line)).is_err() {
                return;
            }
        }
    });
    // Subscribed once mosquitto_sub says so (its debug lines go to stdout, with -d).
    loop {
        let (_, line) = received.recv_timeout(Duration::from_secs(10))?;
        if line.contains("received SUBACK") {
            return Ok((subscriber, received));
        }
    }
}

/// Starts `mosquitto_pub -l` and a thread writing `load.messages` timestamped payloads to it.
fn publish(
    load: &Load,
    port: &str,
    qos: &str,
) -> anyhow::Result<(Child, JoinHandle<std::io::Result<()>>)> {
    let topic = format!("{}/0/temperature", load.publish_prefix);
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", port, "-q", qos, "-t", &topic, "-l"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start mosquitto_pub: {e}"))?;
    let stdin = publisher.stdin.take().expect("piped");
    let (messages, size) = (load.messages, load.payload);
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut stdin = BufWriter::new(stdin);
        for seq in 0..messages {
            stdin.write_all(&payload(now_ns(), seq, size))?;
            stdin.write_all(b"\n")?;
        }
        stdin.flush()
    });
    Ok((publisher, writer))
}
