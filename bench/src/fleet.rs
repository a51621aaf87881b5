//! The `fleet` scenario: 20 gateway Weirs on this machine, each with the °F to °C graph and a
//! bridge, fanning in to one central broker (a mosquitto), as a fleet's first tier does.
//!
//! Each gateway gets a device publishing readings at QoS 1 at a steady rate; each gateway's
//! graph converts them and its bridge forwards the results to the centre under
//! `site/<gateway>/`. Measured: the messages a second the centre received, whether every one
//! arrived (`--check`), and each gateway's resident memory (its median and largest).

use crate::bridge::Cloud;
use crate::brokers::Broker;
use crate::Args;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The gateways of the simulated fleet.
const GATEWAYS: usize = 20;

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct FleetRow {
    pub gateways: usize,
    pub per_gateway_msgs_per_s: f64,
    pub sent: u64,
    /// Distinct readings the centre received (each gateway's device numbers its readings).
    pub received: u64,
    /// Readings the centre received again (QoS 1 allows it; counted, not lost).
    pub repeats: u64,
    pub centre_msgs_per_s: f64,
    pub rss_median_mb: f64,
    pub rss_max_mb: f64,
}

/// A gateway's weir.yaml sections: its graph, and its bridge to the centre on `centre`, with a
/// client id of its own (the default, `<name>.<hostname>`, is the same for every gateway on
/// one machine: the centre would keep taking each one's session over for another's).
fn gateway_config(index: usize, centre: u16) -> String {
    format!(
        "graphs:\n  - name: convert\n    definition: builtin:temperature-map\n    source: ['sensors/+/temperature']\n    sink: {{topic: 'processed/{{1..}}', qos: 1}}\n\
         bridges:\n  - name: centre\n    client_id: gw{index:02}\n    addresses: ['127.0.0.1:{centre}']\n    restart_timeout_s: 1\n    topics:\n      - {{pattern: 'processed/#', direction: out, qos: 1, remote_prefix: 'site/gw{index:02}/'}}\n"
    )
}

/// Runs the scenario.
pub fn run(args: &Args, weir: &Path, modules: &Path) -> anyhow::Result<Option<FleetRow>> {
    let per_gateway = if args.quick {
        500
    } else {
        (5_000.0 * args.scale) as u64
    };
    let rate = 500.0;
    eprintln!("weir-bench: fleet, {GATEWAYS} gateways into one centre");
    let centre = Cloud::start(&args.mosquitto, false)?;
    let data = tempfile::tempdir()?;
    let gateways = (0..GATEWAYS)
        .map(|index| {
            let dir = data.path().join(format!("gw{index:02}"));
            std::fs::create_dir_all(&dir)?;
            let broker = format!("  persistence: {{ path: '{}' }}\n", dir.display());
            Broker::weir(
                weir,
                modules,
                &broker,
                &gateway_config(index, centre.port()),
            )
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The centre's subscriber, counting distinct readings (topic and number).
    let received = Arc::new(AtomicU64::new(0));
    let repeats = Arc::new(AtomicU64::new(0));
    let mut options = MqttOptions::new("fleet-centre", "127.0.0.1", centre.port());
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 1000);
    client.subscribe("site/#", QoS::AtLeastOnce)?;
    let counting = {
        let received = received.clone();
        let repeats = repeats.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::HashSet::new();
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let number = serde_json::from_slice::<serde_json::Value>(&publish.payload)
                            .ok()
                            .and_then(|json| json["n"].as_u64());
                        if seen.insert((publish.topic.clone(), number)) {
                            received.fetch_add(1, Relaxed);
                        } else {
                            repeats.fetch_add(1, Relaxed);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let publishers: Vec<_> = gateways
        .iter()
        .enumerate()
        .map(|(index, gateway)| {
            let port = gateway.port;
            std::thread::spawn(move || device(index, port, per_gateway, rate))
        })
        .collect();
    let mut sent = 0;
    for publisher in publishers {
        sent += publisher
            .join()
            .map_err(|_| anyhow::anyhow!("a device failed"))??;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (0, Instant::now());
    while received.load(Relaxed) < sent && Instant::now() < deadline {
        let now = received.load(Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = received.load(Relaxed);
    let elapsed = if got >= sent {
        started.elapsed()
    } else {
        last.1 - started
    };
    let mut rss: Vec<f64> = gateways.iter().map(|g| g.rss_mb().0).collect();
    rss.sort_by(f64::total_cmp);
    let _ = client.disconnect();
    drop(gateways);
    let _ = counting.join();
    Ok(Some(FleetRow {
        gateways: GATEWAYS,
        per_gateway_msgs_per_s: rate,
        sent,
        received: got,
        repeats: repeats.load(Relaxed),
        centre_msgs_per_s: got as f64 / elapsed.as_secs_f64().max(1e-3),
        rss_median_mb: rss[rss.len() / 2],
        rss_max_mb: rss.last().copied().unwrap_or(0.0),
    }))
}

/// One device on gateway `index` (port `port`): `count` readings at `rate` a second, QoS 1;
/// returns how many were acknowledged.
fn device(index: usize, port: u16, count: u64, rate: f64) -> anyhow::Result<u64> {
    let mut options = MqttOptions::new(format!("device-{index}"), "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut connection) = Client::new(options, 1000);
    let acked = Arc::new(AtomicU64::new(0));
    let events = {
        let acked = acked.clone();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        if acked.fetch_add(1, Relaxed) + 1 == count {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        })
    };
    let start = Instant::now();
    let topic = format!("sensors/dev{index:02}/temperature");
    for n in 0..count {
        let due = start + Duration::from_secs_f64(n as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let reading = format!(
            "{{\"temperature\":{{\"value\":{},\"unit\":\"F\"}},\"n\":{n}}}",
            32 + n % 180
        );
        client.publish(topic.as_str(), QoS::AtLeastOnce, false, reading)?;
    }
    let _ = events.join();
    let _ = client.disconnect();
    Ok(acked.load(Relaxed))
}

/// The scenario's table.
pub fn table(row: &Option<FleetRow>) -> String {
    let Some(row) = row else {
        return String::new();
    };
    format!(
        "\nFleet: {} gateway Weirs (graph + bridge) into one mosquitto, {} msg/s each\nsent {} received {} at the centre ({} again): {:.0} msg/s; gateway RSS median {:.1} MB, largest {:.1} MB\n",
        row.gateways,
        row.per_gateway_msgs_per_s,
        row.sent,
        row.received,
        row.repeats,
        row.centre_msgs_per_s,
        row.rss_median_mb,
        row.rss_max_mb
    )
}

/// A shortfall at the centre.
pub fn incomplete(row: &Option<FleetRow>) -> Vec<String> {
    row.iter()
        .filter(|row| row.received < row.sent)
        .map(|_| "fleet".to_string())
        .collect()
}
