//! Throughput of an upstream sink alone: N results of a given payload size pushed into the
//! sink's buffer as fast as it takes them, timed until the upstream acknowledged the last.
//!
//! ```text
//! cargo run --release -p weir-sink --example sink_throughput -- kafka 127.0.0.1:9092 weir-out [N] [BYTES]
//! cargo run --release -p weir-sink --example sink_throughput -- otlp http://127.0.0.1:4318 [N] [BYTES]
//! ```
//!
//! The payload is not OTel metrics JSON, so OTLP results are log records.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use weir_model::data::Message;
use weir_model::hlc::HlcClock;
use weir_sink::buffer::Delivery;
use weir_sink::{kafka, otlp, Upstream};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage =
        "usage: sink_throughput kafka BOOTSTRAP TOPIC [N] [BYTES] | otlp ENDPOINT [N] [BYTES]";
    let kind = args.first().ok_or_else(|| anyhow::anyhow!(usage))?;
    let (rest, start): (&[String], _) = match kind.as_str() {
        "kafka" => (&args[3..], 0),
        "otlp" => (&args[2..], 1),
        _ => anyhow::bail!(usage),
    };
    let count: u64 = rest.first().map_or(Ok(200_000), |n| n.parse())?;
    let bytes: usize = rest.get(1).map_or(Ok(100), |n| n.parse())?;
    let delivery = Delivery::default();
    let sink = if start == 0 {
        let yaml = format!(
            "{{bootstrap_servers: '{}', topic: '{}'}}",
            args.get(1).ok_or_else(|| anyhow::anyhow!(usage))?,
            args.get(2).ok_or_else(|| anyhow::anyhow!(usage))?
        );
        let config: kafka::KafkaConfig = serde_yaml::from_str(&yaml)?;
        config.start("bench", &delivery)?
    } else {
        let yaml = format!("{{endpoint: '{}'}}", args[1]);
        let config: otlp::OtlpConfig = serde_yaml::from_str(&yaml)?;
        config.start("bench", &delivery)?
    };
    let (buffer, metrics) = (sink.buffer, sink.metrics);
    let mut clock = HlcClock::new("bench");
    let payload = bytes::Bytes::from(vec![b'x'; bytes]);
    let message = Message::new(clock.now(), "sensors/bench/temperature", payload);
    // One warm-up result, so that connecting is not timed.
    buffer.push(message.clone());
    while metrics.delivered.load(Relaxed) < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    for _ in 0..count {
        buffer.push(message.clone());
    }
    while metrics.delivered.load(Relaxed) < count + 1 {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{kind}: {count} results of {bytes} B in {elapsed:.2} s: {:.0} msg/s, {:.1} MB/s (retried {}, dropped {})",
        count as f64 / elapsed,
        (count as f64 * bytes as f64) / elapsed / 1e6,
        metrics.retried.load(Relaxed),
        metrics.dropped.load(Relaxed)
    );
    Ok(())
}
