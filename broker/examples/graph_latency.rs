//! End-to-end latency and throughput of a one-node map graph, side by side with the broker's
//! plain delivery of the same messages.
//!
//! Start weir with the embedded default configuration (its demo graph maps
//! `sensors/+/temperature` to `processed/{1..}`), then:
//!
//! ```sh
//! cargo run --release --example graph_latency -- [PORT] [MESSAGES]
//! ```
//!
//! One subscriber takes both `sensors/#` (the input as the broker delivers it, no graph) and
//! `processed/#` (the graph's results). Latency: one message at a time, the time from publish to
//! each delivery. Throughput: a burst published as fast as the client can, the time until every
//! delivery of each kind arrived.

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const PAYLOAD: &str = r#"{"temperature":{"value":72.5,"unit":"F"}}"#;

async fn connect(id: &str, port: u16) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(options, 10_000)
}

/// Deliveries as (is a graph result, when).
fn deliveries(mut eventloop: EventLoop) -> mpsc::UnboundedReceiver<(bool, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(publish)) = event {
                let _ = tx.send((publish.topic.starts_with("processed/"), Instant::now()));
            }
        }
    });
    rx
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().map_or(1883, |p| p.parse().expect("PORT"));
    let messages: usize = args.next().map_or(10_000, |n| n.parse().expect("MESSAGES"));

    let (subscriber, sub_loop) = connect("bench-sub", port).await;
    let mut arrived = deliveries(sub_loop);
    subscriber
        .subscribe("sensors/#", QoS::AtMostOnce)
        .await
        .unwrap();
    subscriber
        .subscribe("processed/#", QoS::AtMostOnce)
        .await
        .unwrap();
    let (publisher, mut pub_loop) = connect("bench-pub", port).await;
    tokio::spawn(async move { while pub_loop.poll().await.is_ok() {} });
    tokio::time::sleep(Duration::from_millis(500)).await; // connections and SUBACKs settle

    // Latency, one message at a time.
    let rounds = 2_000;
    let (mut plain, mut graph) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let sent = Instant::now();
        publisher
            .publish("sensors/bench/temperature", QoS::AtMostOnce, false, PAYLOAD)
            .await
            .unwrap();
        for _ in 0..2 {
            let (result, at) = tokio::time::timeout(Duration::from_secs(5), arrived.recv())
                .await
                .expect("a delivery is missing")
                .unwrap();
            if result { &mut graph } else { &mut plain }.push(at - sent);
        }
    }
    plain.sort();
    graph.sort();
    println!("latency, {rounds} messages one at a time (publish -> delivery):");
    for (name, sorted) in [("broker only", &plain), ("through the map graph", &graph)] {
        println!(
            "  {name:<22} p50 {:>7.1} µs   p99 {:>7.1} µs",
            percentile(sorted, 0.5).as_secs_f64() * 1e6,
            percentile(sorted, 0.99).as_secs_f64() * 1e6
        );
    }

    // Throughput: a burst.
    let started = Instant::now();
    let burst = tokio::spawn(async move {
        for _ in 0..messages {
            publisher
                .publish("sensors/bench/temperature", QoS::AtMostOnce, false, PAYLOAD)
                .await
                .unwrap();
        }
    });
    let (mut plain_done, mut graph_done) = (0, 0);
    let (mut plain_end, mut graph_end) = (started, started);
    while plain_done < messages || graph_done < messages {
        match tokio::time::timeout(Duration::from_secs(10), arrived.recv()).await {
            Ok(Some((true, at))) => {
                graph_done += 1;
                graph_end = at;
            }
            Ok(Some((false, at))) => {
                plain_done += 1;
                plain_end = at;
            }
            _ => break,
        }
    }
    burst.await.unwrap();
    println!("throughput, a burst of {messages} messages:");
    for (name, done, end) in [
        ("broker only", plain_done, plain_end),
        ("through the map graph", graph_done, graph_end),
    ] {
        let seconds = (end - started).as_secs_f64();
        println!(
            "  {name:<22} {done} delivered in {:.3} s: {:.0} messages/s",
            seconds,
            done as f64 / seconds
        );
    }
}
