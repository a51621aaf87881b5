//! The connection scenario: many idle MQTT connections held open at once, as a gateway serving
//! a fleet of quiet devices sees them. It measures how fast the broker accepts them (CONNECT to
//! CONNACK, from several threads), what each costs in resident memory, and that the broker
//! still delivers with all of them open.

use crate::brokers::Broker;
use crate::scenarios::Kind;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Threads opening connections at once.
const OPENERS: usize = 4;

/// Keep-alive of the idle clients, s: longer than the measurement, as a quiet device's.
const KEEP_ALIVE: u16 = 600;

/// One broker's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionRow {
    pub broker: Kind,
    /// Connections asked for.
    pub connections: usize,
    /// Connections accepted (CONNACK 0) and held.
    pub held: usize,
    /// Connections accepted per second.
    pub connects_per_s: f64,
    /// Resident memory before the connections, MiB.
    pub rss_before_mb: f64,
    /// Resident memory with every connection open, MiB.
    pub rss_after_mb: f64,
    /// (after - before) / held, KiB.
    pub kib_per_connection: f64,
    /// Whether a message published with every connection open reached its subscriber.
    pub delivers: bool,
}

/// Opens `count` idle connections to `broker`, measures, and closes them.
pub fn run(broker: &Broker, kind: Kind, count: usize) -> anyhow::Result<ConnectionRow> {
    let (rss_before_mb, _) = broker.rss_mb();
    let port = broker.port;
    let started = Instant::now();
    let openers: Vec<_> = (0..OPENERS)
        .map(|opener| {
            let ids = (opener..count).step_by(OPENERS);
            std::thread::spawn(move || ids.map(|id| open(port, id)).collect::<Vec<_>>())
        })
        .collect();
    let mut streams = Vec::with_capacity(count);
    let mut failures = Vec::new();
    for opener in openers {
        let opened = opener
            .join()
            .map_err(|_| anyhow::anyhow!("an opener panicked"))?;
        for result in opened {
            match result {
                Ok(stream) => streams.push(stream),
                Err(e) => failures.push(e),
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(first) = failures.first() {
        eprintln!(
            "weir-bench: {} of {count} connections failed, the first: {first}",
            failures.len()
        );
    }
    // Let the broker finish what accepting left (allocator caches, deferred frees).
    std::thread::sleep(Duration::from_millis(500));
    let (rss_after_mb, _) = broker.rss_mb();
    let delivers = round_trip(port).is_ok();
    let held = streams.len();
    drop(streams);
    Ok(ConnectionRow {
        broker: kind,
        connections: count,
        held,
        connects_per_s: held as f64 / elapsed.max(1e-9),
        rss_before_mb,
        rss_after_mb,
        kib_per_connection: (rss_after_mb - rss_before_mb) * 1024.0 / held.max(1) as f64,
        delivers,
    })
}

/// An MQTT string.
fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// A packet with a one-byte remaining length.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    [&[first, body.len() as u8][..], body].concat()
}

/// Connects and completes CONNECT/CONNACK as MQTT 3.1.1 client `idle-ID`, clean session.
fn connect(port: u16, id: &str) -> anyhow::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_nodelay(true)?;
    let header = [&string("MQTT")[..], &[4, 0x02], &KEEP_ALIVE.to_be_bytes()].concat();
    stream.write_all(&packet(0x10, &[header, string(id)].concat()))?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack)?;
    anyhow::ensure!(connack == [0x20, 2, 0, 0], "CONNACK {connack:?} for {id}");
    Ok(stream)
}

fn open(port: u16, id: usize) -> anyhow::Result<TcpStream> {
    connect(port, &format!("idle-{id}"))
}

/// Subscribes, publishes to itself at QoS 0 and reads the message back.
fn round_trip(port: u16) -> anyhow::Result<()> {
    let mut stream = connect(port, "bench-round-trip")?;
    let topic = "bench/round-trip";
    stream.write_all(&packet(0x82, &[&[0, 1][..], &string(topic), &[0]].concat()))?;
    let mut suback = [0u8; 5];
    stream.read_exact(&mut suback)?;
    let publish = packet(0x30, &[&string(topic)[..], b"ping"].concat());
    stream.write_all(&publish)?;
    let mut back = vec![0u8; publish.len()];
    stream.read_exact(&mut back)?;
    anyhow::ensure!(back == publish, "the message came back as {back:?}");
    Ok(())
}

/// Runs the connection scenario on both brokers, alternating, `repetitions` times; one row per
/// broker with the medians.
pub fn run_all(
    weir: &std::path::Path,
    modules: &std::path::Path,
    mosquitto: &std::path::Path,
    count: usize,
    repetitions: usize,
) -> anyhow::Result<Vec<ConnectionRow>> {
    // The bench holds one end of every connection too.
    let limit = rlimit::increase_nofile_limit(u64::MAX)?;
    anyhow::ensure!(
        limit as usize > count + 64,
        "the open file limit is {limit}: too low for {count} connections (raise the hard limit)"
    );
    // Room for every connection in Weir's router (mosquitto has no limit by default).
    let room = format!("  router: {{max_connections: {}}}\n", count + 100);
    let mut measured: [Vec<ConnectionRow>; 2] = [Vec::new(), Vec::new()];
    for repetition in 0..repetitions {
        for (kind, rows) in [Kind::Weir, Kind::Mosquitto].into_iter().zip(&mut measured) {
            eprintln!(
                "weir-bench: connections on {kind:?}, repetition {}/{repetitions}",
                repetition + 1
            );
            let broker = match kind {
                Kind::Weir => Broker::weir(weir, modules, &room, "")?,
                Kind::Mosquitto => Broker::mosquitto(mosquitto)?,
            };
            rows.push(run(&broker, kind, count)?);
        }
    }
    Ok(measured.into_iter().map(median_row).collect())
}

fn median_row(mut rows: Vec<ConnectionRow>) -> ConnectionRow {
    rows.sort_by(|a, b| a.kib_per_connection.total_cmp(&b.kib_per_connection));
    let mut row = rows[rows.len() / 2].clone();
    let mut rates: Vec<f64> = rows.iter().map(|r| r.connects_per_s).collect();
    rates.sort_by(f64::total_cmp);
    row.connects_per_s = rates[rates.len() / 2];
    row.held = rows.iter().map(|r| r.held).min().unwrap_or(0);
    row.delivers = rows.iter().all(|r| r.delivers);
    row
}
