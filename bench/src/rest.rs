//! The `rest` scenario: a broker that nobody uses, as a gateway's broker is most of the night.
//! Weir with its embedded default configuration (`weir run`, the demo graph loaded) and
//! mosquitto with its own default (`mosquitto -p PORT`) run side by side with no client. After
//! [`SETTLE`] from ready, each one's threads are read for [`WINDOW`]: the context switches
//! (voluntary and involuntary, from `/proc/<pid>/task/*/status`) summed over its threads are its
//! wake-ups, and its resident memory is read at the end.
//!
//! A thread that starts within the window counts with all its switches, and is counted as
//! started; one that ends within it is counted as ended (its last switches are not seen).

use crate::brokers::{free_port, Broker};
use crate::scenarios::Kind;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// From ready to the start of the window.
const SETTLE: Duration = Duration::from_secs(15);

/// How long the wake-ups are counted.
const WINDOW: Duration = Duration::from_secs(60);

/// One broker at rest.
#[derive(Debug, Clone, Serialize)]
pub struct RestRow {
    pub broker: Kind,
    /// Context switches per second, summed over its threads.
    pub wakeups_per_s: f64,
    /// Resident memory at the end of the window, MiB.
    pub rss_mb: f64,
    /// Threads at the end of the window.
    pub threads: usize,
    pub threads_started: usize,
    pub threads_ended: usize,
    /// The threads that woke most: name and wake-ups per second.
    pub busiest: Vec<(String, f64)>,
}

/// A process's threads now: id -> (name, context switches so far).
fn threads(pid: u32) -> BTreeMap<u32, (String, u64)> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return BTreeMap::new();
    };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse().ok()?;
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let field = |key: &str| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix(key))
                    .map(str::trim)
                    .map(str::to_string)
            };
            let switches = ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
                .iter()
                .filter_map(|key| field(key)?.parse::<u64>().ok())
                .sum();
            Some((tid, (field("Name:")?, switches)))
        })
        .collect()
}

/// What happened between two readings of one broker's threads, `seconds` apart.
fn row(
    broker: Kind,
    before: &BTreeMap<u32, (String, u64)>,
    after: &BTreeMap<u32, (String, u64)>,
    seconds: f64,
    rss_mb: f64,
) -> RestRow {
    let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
    for (tid, (name, switches)) in after {
        let earlier = before.get(tid).map_or(0, |(_, s)| *s);
        *by_name.entry(name.clone()).or_default() += switches.saturating_sub(earlier);
    }
    let total: u64 = by_name.values().sum();
    let mut busiest: Vec<(String, f64)> = by_name
        .into_iter()
        .filter(|(_, switches)| *switches > 0)
        .map(|(name, switches)| (name, switches as f64 / seconds))
        .collect();
    busiest.sort_by(|a, b| b.1.total_cmp(&a.1));
    busiest.truncate(3);
    RestRow {
        broker,
        wakeups_per_s: total as f64 / seconds,
        rss_mb,
        threads: after.len(),
        threads_started: after.keys().filter(|t| !before.contains_key(t)).count(),
        threads_ended: before.keys().filter(|t| !after.contains_key(t)).count(),
        busiest,
    }
}

/// Runs both brokers at rest, side by side, once.
pub fn run(weir: &Path, modules: &Path, mosquitto: &Path) -> anyhow::Result<Vec<RestRow>> {
    eprintln!(
        "weir-bench: rest, Weir (default configuration) and mosquitto side by side for {}s",
        (SETTLE + WINDOW).as_secs()
    );
    let weir = Broker::weir_default(weir, modules)?;
    anyhow::ensure!(
        weir.log().contains("graph `demo`"),
        "the demo graph did not load (are the modules in {}?):\n{}",
        modules.display(),
        weir.log()
    );
    let port = free_port()?;
    let mosquitto = Broker::command(
        std::process::Command::new(mosquitto).args(["-p", &port.to_string()]),
        port,
    )?;
    std::thread::sleep(SETTLE);
    let brokers = [(Kind::Weir, &weir), (Kind::Mosquitto, &mosquitto)];
    let before: Vec<_> = brokers.iter().map(|(_, b)| threads(b.pid())).collect();
    let started = std::time::Instant::now();
    std::thread::sleep(WINDOW);
    let seconds = started.elapsed().as_secs_f64();
    Ok(brokers
        .iter()
        .zip(&before)
        .map(|((kind, broker), before)| {
            let after = threads(broker.pid());
            row(*kind, before, &after, seconds, broker.rss_mb().0)
        })
        .collect())
}

/// The report's table.
pub fn table(rows: &[RestRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\nAt rest, default configuration, no client ({}s from {}s after ready)\n{:<10} {:>12} {:>8} {:>8}  busiest threads (wake-ups/s)\n",
        WINDOW.as_secs(),
        SETTLE.as_secs(),
        "broker",
        "wake-ups/s",
        "RSS MB",
        "threads"
    );
    for row in rows {
        let busiest: Vec<String> = row
            .busiest
            .iter()
            .map(|(name, rate)| format!("{name} {rate:.2}"))
            .collect();
        out.push_str(&format!(
            "{:<10} {:>12.2} {:>8.1} {:>8}  {}\n",
            format!("{:?}", row.broker).to_lowercase(),
            row.wakeups_per_s,
            row.rss_mb,
            row.threads,
            busiest.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_ups_are_summed_over_threads_and_started_threads_count_whole() {
        let before = BTreeMap::from([(1, ("a".into(), 10)), (2, ("b".into(), 5))]);
        let after = BTreeMap::from([(1, ("a".into(), 40)), (3, ("c".into(), 6))]);
        let row = row(Kind::Weir, &before, &after, 2.0, 1.0);
        assert_eq!(row.wakeups_per_s, 18.0);
        assert_eq!((row.threads_started, row.threads_ended), (1, 1));
        assert_eq!(row.busiest[0], ("a".to_string(), 15.0));
    }
}
