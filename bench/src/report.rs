//! The report: a table on stdout, the goals met or missed, and the JSON file.

use crate::connections::ConnectionRow;
use crate::scenarios::{Kind, Row};
use crate::state_store::StateStoreRow;
use std::fmt::Write as _;
use std::path::Path;

/// Sets each row's ratio: Weir raw over mosquitto raw of the same shape; graphs over Weir raw
/// QoS 0 1→1 (flat out); two workers over one.
pub fn add_ratios(rows: &mut [Row]) {
    let baselines: Vec<Option<(f64, String, Kind)>> = rows
        .iter()
        .map(|row| {
            // The baseline is measured with the same load generator.
            let find = |rows: &[Row], name: &str, broker, qos, publishers, workers| {
                rows.iter()
                    .find(|r| {
                        r.name == name
                            && r.broker == broker
                            && r.qos == qos
                            && r.publishers == publishers
                            && r.workers == workers
                            && r.rate.is_none()
                            && r.generator == row.generator
                    })
                    .map(|r| (r.msgs_per_s, r.label(), r.broker))
            };
            baseline(rows, row, find)
        })
        .collect();
    for (row, baseline) in rows.iter_mut().zip(baselines) {
        if let Some((rate, label, broker)) = baseline {
            if rate > 0.0 {
                row.ratio = Some(row.msgs_per_s / rate);
                row.ratio_to = Some(format!("{label} on {broker:?}").to_lowercase());
            }
        }
    }
}

/// What `row` is compared with: Weir raw with mosquitto raw of the same shape; graphs with
/// Weir raw QoS 0 1→1 (flat out); two workers with one.
fn baseline(
    rows: &[Row],
    row: &Row,
    find: impl Fn(&[Row], &str, Kind, u8, usize, usize) -> Option<(f64, String, Kind)>,
) -> Option<(f64, String, Kind)> {
    match (row.name.as_str(), row.broker) {
        _ if row.rate.is_some() => None,
        ("raw", Kind::Weir) => find(rows, "raw", Kind::Mosquitto, row.qos, row.publishers, 1),
        ("durable", Kind::Weir) => find(rows, "raw", Kind::Weir, row.qos, row.publishers, 1),
        ("shared", Kind::Weir) => find(rows, "shared", Kind::Mosquitto, row.qos, row.publishers, 1),
        ("map1" | "graph3", Kind::Weir) => find(rows, "raw", Kind::Weir, 0, 1, 1),
        ("workers", _) if row.workers == 2 => find(rows, "workers", Kind::Weir, 0, 1, 1),
        _ => None,
    }
}

/// The results as a table.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<40} {:<9} {:>10} {:>9} {:>9} {:>9} {:>8} {:>13} {:>15} {:>7}  vs",
        "scenario",
        "broker",
        "msg/s",
        "p50 µs",
        "p99 µs",
        "max µs",
        "gap ms",
        "RSS MB",
        "received",
        "ratio"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<40} {:<9} {:>10.0} {:>9.0} {:>9.0} {:>9.0} {:>8.0} {:>13} {:>15} {:>7}  {}",
            row.label(),
            format!("{:?}", row.broker).to_lowercase(),
            row.msgs_per_s,
            row.p50_us,
            row.p99_us,
            row.max_us,
            row.max_gap_ms,
            format!("{:.1}/{:.1}", row.rss_idle_mb, row.rss_mb),
            format!("{}/{}", row.received, row.expected),
            row.ratio.map_or(String::new(), |r| format!("{r:.2}")),
            row.ratio_to.clone().unwrap_or_default()
        );
        if let Some(check) = &row.check {
            let _ = writeln!(out, "    {check}");
        }
    }
    let _ = writeln!(
        out,
        "(medians of {} repetition(s); payload {} B; latency from the send time in each payload to its receipt, window: from the window's end; gap: the longest silence at a subscriber; RSS: started/peak)",
        rows.first().map_or(0, |r| r.repetitions),
        rows.first().map_or(0, |r| r.payload)
    );
    out
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

/// The goals the measured rows speak to, each met or missed with its figure.
pub fn goals(rows: &[Row]) -> String {
    let mut out = String::from("\ngoals:\n");
    // Judged on the rows of the tool's own clients (rumqttc); the others are shown beside.
    let own = |r: &&Row| r.generator == "rumqttc";
    let flat = |name: &str| {
        rows.iter()
            .filter(own)
            .find(|r| r.name == name && r.rate.is_none())
    };
    let paced = |name: &str| {
        rows.iter()
            .filter(own)
            .find(|r| r.name == name && r.rate.is_some())
    };
    for (name, goal) in [("map1", 0.8), ("graph3", 0.7)] {
        if let Some(ratio) = flat(name).and_then(|r| r.ratio) {
            let _ = writeln!(
                out,
                "  {name} throughput >= {:.0} % of raw: {:.0} % ({})",
                goal * 100.0,
                ratio * 100.0,
                verdict(ratio >= goal)
            );
        }
    }
    if let Some(ratio) = rows
        .iter()
        .find(|r| r.name == "workers" && r.workers == 2)
        .and_then(|r| r.ratio)
    {
        let _ = writeln!(
            out,
            "  two workers >= 1.9x one for a CPU-heavy module: {ratio:.2}x ({})",
            verdict(ratio >= 1.9)
        );
    }
    if let Some(row) = rows
        .iter()
        .filter(own)
        .find(|r| r.name == "raw" && r.broker == Kind::Weir && r.qos == 0 && r.publishers == 1)
    {
        if let Some(ratio) = row.ratio {
            let _ = writeln!(
                out,
                "  raw QoS 0 >= 1.5x mosquitto: {ratio:.2}x ({})",
                verdict(ratio >= 1.5)
            );
        }
    }
    for name in ["map1", "graph3"] {
        if let Some(row) = paced(name) {
            let _ = writeln!(
                out,
                "  {name} p99 <= 1 ms at 10k msg/s: {:.0} µs ({})",
                row.p99_us,
                verdict(row.p99_us <= 1000.0)
            );
        }
    }
    let named = |name: &str| rows.iter().find(|r| r.name == name);
    if let (Some(solo), Some(beside)) = (named("good-solo"), named("good-beside-runaway")) {
        let ratio = beside.p99_us / solo.p99_us.max(1.0);
        let _ = writeln!(
            out,
            "  good graph p99 at 1k msg/s beside a runaway graph <= 2x alone: {:.0} µs vs {:.0} µs, {ratio:.2}x ({})",
            beside.p99_us,
            solo.p99_us,
            verdict(ratio <= 2.0)
        );
    }
    let worst_gap = rows
        .iter()
        .filter(|r| r.broker == Kind::Weir && r.rate.is_none())
        .max_by(|a, b| a.max_gap_ms.total_cmp(&b.max_gap_ms));
    if let Some(row) = worst_gap {
        let _ = writeln!(
            out,
            "  results keep flowing: longest silence in a flat-out Weir row <= 100 ms: {:.0} ms in {} ({})",
            row.max_gap_ms,
            row.label(),
            verdict(row.max_gap_ms <= 100.0)
        );
    }
    if let Some(row) = rows.iter().find(|r| r.name == "rss10") {
        let _ = writeln!(
            out,
            "  RSS with 10 Rust-module graphs <= 100 MB: {:.1} MB started, {:.1} MB at the peak of the load ({})",
            row.rss_idle_mb,
            row.rss_mb,
            verdict(row.rss_idle_mb <= 100.0)
        );
    }
    out
}

/// The Weir rows that received less than expected (or whose check failed).
pub fn incomplete(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.broker == Kind::Weir)
        .filter(|r| {
            r.received < r.expected || r.check.as_deref().is_some_and(|c| c.contains("MISMATCH"))
        })
        .map(Row::label)
        .collect()
}

/// The connection scenario's rows as a table (nothing when it did not run).
pub fn connection_table(rows: &[ConnectionRow]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\n{:<28} {:<9} {:>15} {:>12} {:>15} {:>12}  delivers",
        "idle connections", "broker", "held", "connects/s", "RSS MB", "KiB/conn"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<28} {:<9} {:>15} {:>12.0} {:>15} {:>12.1}  {}",
            format!("connections {}", row.connections),
            format!("{:?}", row.broker).to_lowercase(),
            format!("{}/{}", row.held, row.connections),
            row.connects_per_s,
            format!("{:.1}/{:.1}", row.rss_before_mb, row.rss_after_mb),
            row.kib_per_connection,
            if row.delivers { "yes" } else { "NO" }
        );
    }
    let _ = writeln!(
        out,
        "(RSS: before/with every connection open; KiB/conn: the difference per connection)"
    );
    out
}

/// The Weir connection rows that did not hold every connection or stopped delivering.
pub fn connections_incomplete(rows: &[ConnectionRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.broker == Kind::Weir && (r.held < r.connections || !r.delivers))
        .map(|r| format!("connections {}", r.connections))
        .collect()
}

/// Everything a run measured, for [`write_json`].
pub type Measured<'a> = (
    &'a [Row],
    &'a [ConnectionRow],
    &'a [StateStoreRow],
    &'a crate::bridge::BridgeResults,
    &'a crate::kafka::KafkaResults,
    &'a Option<crate::fleet::FleetRow>,
    &'a [crate::rest::RestRow],
);

/// Writes `{"machine": {...}, "scenarios": [...], "connections": [...], ..., "rest": [...]}`.
pub fn write_json(path: &Path, measured: Measured<'_>) -> anyhow::Result<()> {
    let (rows, connections, state_store, bridges, kafka, fleet, rest) = measured;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let machine = serde_json::json!({
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "load": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    });
    let document = serde_json::json!({
        "machine": machine,
        "scenarios": rows,
        "connections": connections,
        "state_store": state_store,
        "bridges": bridges,
        "kafka": kafka,
        "fleet": fleet,
        "rest": rest,
    });
    std::fs::write(path, serde_json::to_string_pretty(&document)? + "\n")
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
