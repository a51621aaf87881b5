//! The `bridge` scenario: a gateway forwarding to a cloud broker (a mosquitto), Weir's bridge
//! against mosquitto's on the same load and the same cloud; what durability costs a local QoS 1
//! publisher; and the drain of a queue built up during an outage.
//!
//! Rows, each repeated and reduced to medians:
//! - `bridge qosN` on each gateway: a publisher on the gateway, a subscriber on the cloud;
//! - `direct qos0`: the same publisher straight to the cloud (what a bridge at QoS 0 is held to);
//! - `local qos1 bridged|unbridged` (Weir): a publisher and a subscriber on the gateway, on a
//!   topic the bridge forwards (written to its queue on disk before each PUBACK) or not.
//!
//! The drain: 1,000,000 QoS 1 messages (scaled) queued while the cloud is down, then the cloud
//! returns: how fast the queue empties, its bytes on disk per message, and Weir's resident
//! memory with the queue full against empty.

use crate::brokers::{free_port, Broker};
use crate::load::{self, Load, Outcome};
use crate::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One row of the bridge table.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeRow {
    pub name: String,
    pub gateway: &'static str,
    pub qos: u8,
    pub msgs_per_s: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub puback_p50_us: f64,
    pub puback_p99_us: f64,
    pub received: u64,
    pub expected: u64,
}

/// What the drain measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Drain {
    pub queued: u64,
    pub queue_s: f64,
    pub drain_s: f64,
    pub drain_msgs_per_s: f64,
    pub disk_bytes_per_msg: f64,
    pub rss_empty_mb: f64,
    pub rss_queued_mb: f64,
    pub delivered: u64,
}

/// Everything the scenario measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct BridgeResults {
    pub rows: Vec<BridgeRow>,
    pub drain: Option<Drain>,
}

/// The cloud: a mosquitto on a port of its own; restartable with its persistence.
pub(crate) struct Cloud {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl Cloud {
    pub(crate) fn start(binary: &Path, persistent: bool) -> anyhow::Result<Cloud> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let persistence = if persistent {
            "persistence true\npersistence_location ./\n"
        } else {
            "persistence false\n"
        };
        std::fs::write(
            dir.path().join("mosquitto.conf"),
            format!("listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nmax_queued_messages 0\nmax_inflight_messages 1000\nlog_dest none\nuser root\n{persistence}"),
        )?;
        let mut cloud = Cloud {
            child: None,
            port,
            dir,
            binary: binary.to_path_buf(),
        };
        cloud.restart()?;
        Ok(cloud)
    }

    fn restart(&mut self) -> anyhow::Result<()> {
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        wait_for_port(self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Cloud {
    /// Its port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// Weir's `bridges:` section forwarding `bench/#` to the cloud on `port`.
fn weir_bridge(port: u16, start: &str) -> String {
    format!(
        "bridges:\n  - name: cloud\n    addresses: ['127.0.0.1:{port}']\n    restart_timeout_s: 1\n{start}    topics:\n      - {{ pattern: 'bench/#', qos: 1 }}\n"
    )
}

/// A Weir gateway bridged to the cloud on `cloud`, its queue in `data`, started as `start`.
fn weir_gateway(
    weir: &Path,
    modules: &Path,
    cloud: u16,
    data: &Path,
    start: &str,
) -> anyhow::Result<Broker> {
    let broker = format!("  persistence: {{ path: '{}' }}\n", data.display());
    Broker::weir(weir, modules, &broker, &weir_bridge(cloud, start))
}

/// A mosquitto gateway with mosquitto's bridge forwarding `bench/#` to the cloud on `port`,
/// with `inflight` messages in flight (mosquitto's `max_inflight_messages`, 20 by default;
/// Weir's bridge has 100 by default).
fn mosquitto_gateway(binary: &Path, cloud: u16, inflight: u16) -> anyhow::Result<Broker> {
    let bridge = format!(
        "connection cloud\naddress 127.0.0.1:{cloud}\ncleansession true\nrestart_timeout 1\ntopic bench/# out 1\n"
    );
    let limits = format!("max_inflight_messages {inflight}\n");
    Broker::mosquitto_with(binary, &limits, &bridge)
}

/// Waits until a bridge says on the cloud at `port` that it is up (both bridges publish
/// `1` on `$SYS/broker/connection/<client id>/state` there, retained).
fn wait_bridge_up(port: u16) -> anyhow::Result<()> {
    let mut options =
        rumqttc::MqttOptions::new(format!("bench-state-{}", load::now_ns()), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = rumqttc::Client::new(options, 10);
    client.subscribe("$SYS/broker/connection/+/state", rumqttc::QoS::AtMostOnce)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match connection.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))))
                if p.payload[..] == b"1"[..] =>
            {
                let _ = client.disconnect();
                return Ok(());
            }
            Ok(Err(e)) => anyhow::bail!("cannot watch the cloud: {e}"),
            _ => {}
        }
    }
    anyhow::bail!("no bridge came up on the cloud")
}

fn load(
    port: u16,
    subscribe_port: Option<u16>,
    prefix: &str,
    qos: u8,
    messages: u64,
    payload: usize,
) -> Load {
    Load {
        port,
        publish_prefix: prefix.to_string(),
        subscribe: format!("{prefix}/#"),
        publishers: 1,
        subscribers: 1,
        qos,
        payload,
        messages,
        rate: None,
        expect_all: true,
        shared: false,
        subscribe_port,
    }
}

fn row(name: &str, gateway: &'static str, qos: u8, outcome: &Outcome) -> BridgeRow {
    BridgeRow {
        name: name.to_string(),
        gateway,
        qos,
        msgs_per_s: outcome.msgs_per_s,
        p50_us: outcome.p50_us,
        p99_us: outcome.p99_us,
        puback_p50_us: outcome.puback_p50_us,
        puback_p99_us: outcome.puback_p99_us,
        received: outcome.received,
        expected: outcome.expected,
    }
}

/// Runs the scenario: the rows `repetitions` times (alternating gateways), then the drain
/// (not in a quick run).
pub fn run_all(args: &Args, weir: &Path, modules: &Path) -> anyhow::Result<BridgeResults> {
    let repetitions = if args.quick {
        1
    } else {
        args.repetitions.max(1)
    };
    let messages = if args.quick {
        10_000
    } else {
        (100_000.0 * args.scale) as u64
    };
    let mut measured: Vec<(String, &'static str, u8, Vec<Outcome>)> = Vec::new();
    let mut record = |name: &str, gateway: &'static str, qos: u8, outcome: Outcome| match measured
        .iter_mut()
        .find(|(n, g, q, _)| n == name && *g == gateway && *q == qos)
    {
        Some(entry) => entry.3.push(outcome),
        None => measured.push((name.to_string(), gateway, qos, vec![outcome])),
    };
    let payload = args.payload;
    for repetition in 0..repetitions {
        eprintln!(
            "weir-bench: bridge, repetition {}/{repetitions}",
            repetition + 1
        );
        for qos in [1, 0] {
            let cloud = Cloud::start(&args.mosquitto, false)?;
            let data = tempfile::tempdir()?;
            let gateway = weir_gateway(weir, modules, cloud.port, data.path(), "")?;
            wait_bridge_up(cloud.port)?;
            let forwarded = load(
                gateway.port,
                Some(cloud.port),
                "bench",
                qos,
                messages,
                payload,
            );
            record("bridge", "weir", qos, load::run(&forwarded, false)?);
            drop((gateway, cloud));
            for (gateway_name, inflight) in [("mosquitto", 100), ("mosquitto defaults", 20)] {
                if qos == 0 && inflight != 100 {
                    continue;
                }
                let cloud = Cloud::start(&args.mosquitto, false)?;
                let gateway = mosquitto_gateway(&args.mosquitto, cloud.port, inflight)?;
                wait_bridge_up(cloud.port)?;
                let forwarded = load(
                    gateway.port,
                    Some(cloud.port),
                    "bench",
                    qos,
                    messages,
                    payload,
                );
                record("bridge", gateway_name, qos, load::run(&forwarded, false)?);
            }
        }
        let cloud = Cloud::start(&args.mosquitto, false)?;
        let direct = load(cloud.port, None, "bench", 0, messages, payload);
        record("direct", "none", 0, load::run(&direct, false)?);
        let data = tempfile::tempdir()?;
        let gateway = weir_gateway(weir, modules, cloud.port, data.path(), "")?;
        wait_bridge_up(cloud.port)?;
        for (name, prefix) in [("local bridged", "bench"), ("local unbridged", "other")] {
            let local = load(gateway.port, None, prefix, 1, messages, payload);
            record(name, "weir", 1, load::run(&local, false)?);
        }
    }
    let rows = measured
        .into_iter()
        .map(|(name, gateway, qos, mut outcomes)| {
            outcomes.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
            row(&name, gateway, qos, &outcomes[outcomes.len() / 2])
        })
        .collect();
    let drain = if args.quick {
        None
    } else {
        Some(drain(args, weir, modules)?)
    };
    Ok(BridgeResults { rows, drain })
}

/// `count` QoS 1 messages queued while the cloud is down, then drained when it returns.
fn drain(args: &Args, weir: &Path, modules: &Path) -> anyhow::Result<Drain> {
    let count = (1_000_000.0 * args.scale) as u64;
    eprintln!("weir-bench: bridge drain of {count} messages");
    let mut cloud = Cloud::start(&args.mosquitto, true)?;
    let subscriber = format!("bench-drain-{}", load::now_ns());
    collect(cloud.port, &subscriber, 0, Duration::ZERO)?;
    cloud.stop();
    let data = tempfile::tempdir()?;
    let gateway = weir_gateway(weir, modules, cloud.port, data.path(), "")?;
    let (rss_empty_mb, _) = gateway.rss_mb();
    let started = Instant::now();
    let mut queue = load(gateway.port, None, "bench", 1, count, args.payload);
    queue.subscribers = 0;
    load::run(&queue, false)?;
    let queue_s = started.elapsed().as_secs_f64();
    let queued = gateway
        .metric_sum("weir_bridge_queued_messages{")
        .unwrap_or(0);
    let (rss_queued_mb, _) = gateway.rss_mb();
    let disk = directory_bytes(&data.path().join("bridges"));
    let back = Instant::now();
    cloud.restart()?;
    let (delivered, last) = collect(cloud.port, &subscriber, count, Duration::from_secs(10))?;
    let drain_s = last.map_or(0.0, |at| at.duration_since(back).as_secs_f64());
    Ok(Drain {
        queued,
        queue_s,
        drain_s,
        drain_msgs_per_s: if drain_s > 0.0 {
            delivered as f64 / drain_s
        } else {
            0.0
        },
        disk_bytes_per_msg: disk as f64 / queued.max(1) as f64,
        rss_empty_mb,
        rss_queued_mb,
        delivered,
    })
}

/// A persistent subscriber `id` on `bench/#` at QoS 1: takes up to `count` messages, until
/// none came for `quiet`; returns how many, and when the last came.
fn collect(
    port: u16,
    id: &str,
    count: u64,
    quiet: Duration,
) -> anyhow::Result<(u64, Option<Instant>)> {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    options.set_clean_session(false);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1000);
    let (client, mut connection) = rumqttc::Client::new(options, 1000);
    client.subscribe("bench/#", rumqttc::QoS::AtLeastOnce)?;
    let mut received = 0;
    let mut last = None;
    let mut subscribed = false;
    let mut quiet_since = Instant::now();
    loop {
        if subscribed && (received >= count || quiet_since.elapsed() > quiet) {
            break;
        }
        match connection.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => subscribed = true,
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)))) => {
                received += 1;
                last = Some(Instant::now());
                quiet_since = Instant::now();
            }
            Ok(Err(e)) => anyhow::bail!("the drain's subscriber failed: {e}"),
            _ => {}
        }
    }
    let _ = client.disconnect();
    Ok((received, last))
}

fn directory_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The bridge table, its ratios, and the drain.
pub fn table(results: &BridgeResults) -> String {
    use std::fmt::Write as _;
    if results.rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nBridges (a publisher on the gateway, its subscriber on the cloud mosquitto; local rows: both on the gateway)\n");
    let _ = writeln!(
        out,
        "{:<34} {:>10} {:>10} {:>10} {:>12} {:>16}",
        "row", "msg/s", "p50 ms", "p99 ms", "PUBACK p99", "received"
    );
    for row in &results.rows {
        let _ = writeln!(
            out,
            "{:<34} {:>10.0} {:>10.2} {:>10.2} {:>12} {:>16}",
            format!("{} qos{} {}", row.name, row.qos, row.gateway),
            row.msgs_per_s,
            row.p50_us / 1e3,
            row.p99_us / 1e3,
            if row.qos > 0 {
                format!("{:.2} ms", row.puback_p99_us / 1e3)
            } else {
                "-".into()
            },
            format!("{}/{}", row.received, row.expected)
        );
    }
    let rate = |name: &str, gateway: &str, qos: u8| {
        results
            .rows
            .iter()
            .find(|r| r.name == name && r.gateway == gateway && r.qos == qos)
            .map(|r| r.msgs_per_s)
    };
    for (label, a, b, goal) in [
        (
            "bridge qos1: weir / mosquitto",
            rate("bridge", "weir", 1),
            rate("bridge", "mosquitto", 1),
            Some(1.5),
        ),
        (
            "bridge qos1: weir / mosquitto defaults",
            rate("bridge", "weir", 1),
            rate("bridge", "mosquitto defaults", 1),
            None,
        ),
        (
            "bridge qos0: weir / mosquitto",
            rate("bridge", "weir", 0),
            rate("bridge", "mosquitto", 0),
            None,
        ),
        (
            "bridge qos0 weir / direct qos0",
            rate("bridge", "weir", 0),
            rate("direct", "none", 0),
            Some(0.9),
        ),
        (
            "local qos1: bridged / unbridged",
            rate("local bridged", "weir", 1),
            rate("local unbridged", "weir", 1),
            Some(0.7),
        ),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            let ratio = a / b.max(1e-9);
            let verdict = match goal {
                Some(goal) if ratio >= goal => format!(" (goal >= {goal}: met)"),
                Some(goal) => format!(" (goal >= {goal}: MISSED)"),
                None => String::new(),
            };
            let _ = writeln!(out, "  {label}: {ratio:.2}x{verdict}");
        }
    }
    if let Some(d) = &results.drain {
        let _ = writeln!(
            out,
            "  drain: {} queued in {:.1} s (cloud down), {} delivered in {:.1} s = {:.0} msg/s; {:.0} bytes on disk per message; RSS {:.1} MiB empty, {:.1} MiB with the queue full",
            d.queued, d.queue_s, d.delivered, d.drain_s, d.drain_msgs_per_s, d.disk_bytes_per_msg, d.rss_empty_mb, d.rss_queued_mb
        );
    }
    out
}

/// The rows and the drain that delivered less than they should have.
pub fn incomplete(results: &BridgeResults) -> Vec<String> {
    let mut short: Vec<String> = results
        .rows
        .iter()
        .filter(|r| r.gateway == "weir" && r.received < r.expected)
        .map(|r| format!("{} qos{} weir", r.name, r.qos))
        .collect();
    if let Some(d) = results.drain.as_ref().filter(|d| d.delivered < d.queued) {
        short.push(format!("bridge drain ({} of {})", d.delivered, d.queued));
    }
    short
}
