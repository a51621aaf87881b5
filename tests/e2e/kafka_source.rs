//! Graphs reading Kafka (`source: {kafka: ...}`) from a real Kafka-protocol broker (tansu):
//! per-partition windows over readings stamped by their devices, every reading counted once in
//! the window results, offsets committed once settled, and a graph that waits for brokers
//! that are not there yet.

use super::harness::{metric, modules_dir, wait_for_metrics, write_file, MosquittoSub, Weir};
use super::services::{committed_offsets, produce, Outgoing, Tansu};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// One-second windows of humidity statistics: the count of readings per partition and window.
const WINDOWS: &str = include_str!("../../bench/graphs/partition-windows.yaml");

const PARTITIONS: u32 = 4;

/// When the readings start (2023-11-14), in milliseconds.
const BASE_MILLIS: u64 = 1_700_000_000_000;

/// `count` readings of 20 devices, in event-time order over `span_ms`, each stamped `__ts`.
fn readings(count: u64, span_ms: u64) -> impl Iterator<Item = Outgoing> {
    (0..count).map(move |n| {
        let device = n % 20;
        let millis = BASE_MILLIS + n * span_ms / count;
        (
            format!("sensors/dev-{device:02}/humidity"),
            format!("{{\"humidity\":{{\"value\":{device}}}}}"),
            vec![(
                "__ts".to_string(),
                format!("{millis:015}:00000:dev-{device:02}"),
            )],
        )
    })
}

/// Weir with graph `windows` reading topic `readings` of `bootstrap` in group `group`, its
/// partitions idle after `idle_ms`, its results on MQTT topic `results/windows`.
fn weir_reading(bootstrap: &str, group: &str, idle_ms: u64) -> (Weir, u16, tempfile::TempDir) {
    weir_reading_to(
        bootstrap,
        group,
        idle_ms,
        "{topic: results/windows, qos: 1}",
    )
}

/// [`weir_reading`] with the results going to `sink` (a YAML flow mapping).
fn weir_reading_to(
    bootstrap: &str,
    group: &str,
    idle_ms: u64,
    sink: &str,
) -> (Weir, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let definition = write_file(dir.path(), "windows.yaml", WINDOWS);
    let (weir, metrics) = Weir::start_with_metrics(|v4, v5, metrics| {
        format!(
            "broker:\n  listeners:\n    - {{protocol: '3.1.1', address: '127.0.0.1:{v4}'}}\n    - {{protocol: '5', address: '127.0.0.1:{v5}'}}\n\
             modules: {{directories: ['{}']}}\n\
             metrics: {{listen: '127.0.0.1:{metrics}'}}\n\
             graphs:\n  - name: windows\n    definition: '{}'\n    source:\n      kafka:\n        bootstrap_servers: '{bootstrap}'\n        topics: [readings]\n        group: {group}\n        idle_timeout_ms: {idle_ms}\n        options: {{session.timeout.ms: 6000, heartbeat.interval.ms: 500}}\n    sink: {sink}\n",
            modules_dir(),
            definition.display()
        )
    });
    (weir, metrics, dir)
}

/// A window result as `mosquitto_sub -F '%P %p'` prints it (user properties, then the
/// payload): its result id and its count.
fn parse_result(line: &str) -> (String, u64) {
    let payload = &line[line.find('{').unwrap_or(0)..];
    let id = line
        .split(' ')
        .find_map(|property| property.strip_prefix("weir-result-id:"))
        .unwrap_or_else(|| panic!("a result without weir-result-id: {line}"))
        .to_string();
    let json: Value = serde_json::from_str(payload).unwrap_or_else(|e| panic!("{line}: {e}"));
    (id, json["humidity"]["count"].as_u64().expect("a count"))
}

/// Reads window results until their counts add up to `total` (at most `patience`); returns
/// their ids and how many results came.
fn results_until(
    sub: &mut MosquittoSub,
    total: u64,
    patience: Duration,
) -> (BTreeSet<String>, usize) {
    let deadline = Instant::now() + patience;
    let mut ids = BTreeSet::new();
    let (mut counted, mut results) = (0, 0);
    while counted < total {
        assert!(
            Instant::now() < deadline,
            "the window results counted {counted} of {total} readings"
        );
        let (id, count) = parse_result(&sub.next_message());
        assert!(ids.insert(id.clone()), "window {id} came twice");
        counted += count;
        results += 1;
    }
    assert_eq!(counted, total, "more readings counted than were produced");
    (ids, results)
}

fn subscribe(weir: &Weir) -> MosquittoSub {
    let port = weir.v5.to_string();
    MosquittoSub::start(&[
        "-V",
        "5",
        "-p",
        &port,
        "-t",
        "results/#",
        "-q",
        "1",
        "-F",
        "%P %p",
    ])
}

#[test]
fn every_reading_is_counted_once_in_the_windows_and_offsets_are_committed_once_settled() {
    const READINGS: u64 = 20_000;
    let tansu = Tansu::start();
    tansu.create_topic_with("readings", PARTITIONS);
    let (mut weir, metrics, _dir) = weir_reading(&tansu.bootstrap(), "weir-windows", 1000);
    let mut sub = subscribe(&weir);
    produce(&tansu.bootstrap(), "readings", readings(READINGS, 60_000));
    // 60 one-second windows per partition: the last ones close once the partitions are idle.
    let (ids, results) = results_until(&mut sub, READINGS, Duration::from_secs(120));
    assert!(
        (60..=60 * PARTITIONS as usize).contains(&results),
        "{results} window results"
    );
    let partitions: BTreeSet<&str> = ids.iter().filter_map(|id| id.split('/').nth(1)).collect();
    assert_eq!(partitions.len(), PARTITIONS as usize, "{partitions:?}");
    let sample = |name: &str| metric(metrics, &format!("{name}{{graph=\"windows\"}}"));
    assert_eq!(sample("weir_kafka_source_records_total"), Some(READINGS));
    assert_eq!(
        sample("weir_kafka_source_partitions"),
        Some(PARTITIONS as u64)
    );
    // Every reading went through its window: the commits reach the partitions' ends.
    wait_for_metrics(metrics, "the settled offsets committed", |value| {
        value("weir_kafka_source_commits_total{graph=\"windows\"}") > 0
            && value("weir_kafka_source_lag{graph=\"windows\",topic=\"readings\",partition=\"0\"}")
                == 0
    });
    weir.stop_with("TERM");
    let committed = committed_offsets(&tansu.bootstrap(), "weir-windows", "readings", 4);
    assert_eq!(
        committed.iter().sum::<i64>(),
        READINGS as i64,
        "{committed:?}"
    );
}

#[test]
fn a_graph_whose_kafka_brokers_are_not_there_yet_waits_then_runs() {
    const READINGS: u64 = 200;
    let mut tansu = Tansu::not_started();
    let (weir, _metrics, _dir) = weir_reading(&tansu.bootstrap(), "weir-late", 1000);
    let port = weir.v5.to_string();
    let status = |state: &str| {
        let mut sub = MosquittoSub::start(&["-p", &port, "-t", "$weir/status/windows", "-C", "1"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let report: Value = serde_json::from_str(&sub.next_message()).unwrap();
            if report["state"] == state {
                return report;
            }
            assert!(
                Instant::now() < deadline,
                "the graph is {} ",
                report["state"]
            );
            sub = MosquittoSub::start(&["-p", &port, "-t", "$weir/status/windows", "-C", "1"]);
        }
    };
    status("waiting");
    tansu.restart();
    tansu.create_topic_with("readings", PARTITIONS);
    let mut sub = subscribe(&weir);
    produce(&tansu.bootstrap(), "readings", readings(READINGS, 5_000));
    results_until(&mut sub, READINGS, Duration::from_secs(120));
    let report = status("running");
    assert_eq!(report["source"]["kafka"]["records"], READINGS);
}

#[test]
fn a_stopped_weir_leaves_its_open_windows_to_the_next_one_in_its_group() {
    const READINGS: u64 = 4_000;
    let tansu = Tansu::start();
    tansu.create_topic_with("readings", PARTITIONS);
    // Partitions never idle: each partition's last window stays open.
    let (mut first, metrics, _dir) = weir_reading(&tansu.bootstrap(), "weir-handover", 600_000);
    let mut sub = subscribe(&first);
    produce(&tansu.bootstrap(), "readings", readings(READINGS, 10_000));
    wait_for_metrics(metrics, "every reading read", |value| {
        value("weir_kafka_source_records_total{graph=\"windows\"}") == READINGS
    });
    // The windows that closed: all but the last one of each partition.
    let mut ids = BTreeSet::new();
    let mut counted = 0;
    while let Some(line) = sub.try_next(Duration::from_secs(2)) {
        let (id, count) = parse_result(&line);
        assert!(ids.insert(id));
        counted += count;
    }
    assert!(
        counted < READINGS,
        "every window closed without idle partitions"
    );
    first.stop_with("TERM");
    let committed: i64 = committed_offsets(&tansu.bootstrap(), "weir-handover", "readings", 4)
        .iter()
        .sum();
    assert_eq!(
        committed, counted as i64,
        "what was committed is not what the emitted windows hold"
    );

    // The next member of the group reads on from the committed offsets and emits the open
    // windows whole.
    let (second, _metrics, _dir) = weir_reading(&tansu.bootstrap(), "weir-handover", 1000);
    let mut sub = subscribe(&second);
    let (more, _) = results_until(&mut sub, READINGS - counted, Duration::from_secs(60));
    assert!(ids.is_disjoint(&more), "a window was emitted twice");
    assert_eq!(more.len(), PARTITIONS as usize, "{more:?}");
}

/// Window results gathered from several Weirs: each id's payload, and how many came again.
#[derive(Default)]
struct Gathered {
    windows: std::collections::BTreeMap<String, String>,
    repeats: usize,
}

impl Gathered {
    /// Takes what `subs` have received, until the counts of distinct windows add up to `total`
    /// (at most `patience`).
    fn until(&mut self, subs: &mut [MosquittoSub], total: u64, patience: Duration) {
        let deadline = Instant::now() + patience;
        while self.counted() < total {
            assert!(
                Instant::now() < deadline,
                "the window results counted {} of {total} readings",
                self.counted()
            );
            for sub in subs.iter_mut() {
                while let Some(line) = sub.try_next(Duration::from_millis(20)) {
                    self.add(&line);
                }
            }
        }
    }

    fn add(&mut self, line: &str) {
        let (id, _) = parse_result(line);
        let payload = line[line.find('{').unwrap_or(0)..].to_string();
        match self.windows.get(&id) {
            Some(before) => {
                assert_eq!(
                    before, &payload,
                    "window {id} came again with another result"
                );
                self.repeats += 1;
            }
            None => {
                self.windows.insert(id, payload);
            }
        }
    }

    fn counted(&self) -> u64 {
        self.windows
            .values()
            .map(|payload| {
                let json: Value = serde_json::from_str(payload).unwrap();
                json["humidity"]["count"].as_u64().unwrap()
            })
            .sum()
    }
}

#[test]
fn three_weirs_in_a_group_one_killed_and_one_joining_give_the_single_weirs_windows() {
    const READINGS: u64 = 100_000;
    const SPAN_MS: u64 = 60_000;
    let tansu = Tansu::start();
    tansu.create_topic_with("readings", PARTITIONS);

    // One Weir alone: the reference.
    let (solo, _m, _d) = weir_reading(&tansu.bootstrap(), "solo", 1000);
    let mut solo_sub = [subscribe(&solo)];
    produce(&tansu.bootstrap(), "readings", readings(READINGS, SPAN_MS));
    let mut reference = Gathered::default();
    reference.until(&mut solo_sub, READINGS, Duration::from_secs(120));
    drop(solo);

    // Three in another group, from the start of the topic: they split the backlog.
    let trio: Vec<_> = (0..3)
        .map(|_| weir_reading(&tansu.bootstrap(), "trio", 1000))
        .collect();
    let mut subs: Vec<MosquittoSub> = trio.iter().map(|(weir, _, _)| subscribe(weir)).collect();
    let mut gathered = Gathered::default();
    // Halfway through, one is killed; a fourth joins.
    gathered.until(&mut subs, READINGS / 2, Duration::from_secs(120));
    let mut trio = trio;
    let (mut killed, _, _) = trio.remove(1);
    let mut orphan = subs.remove(1);
    killed.stop_with("KILL");
    // What the killed one emitted before it died counts (its offsets may be committed).
    while let Some(line) = orphan.try_next(Duration::from_millis(200)) {
        gathered.add(&line);
    }
    let joining = weir_reading(&tansu.bootstrap(), "trio", 1000);
    subs.push(subscribe(&joining.0));
    gathered.until(&mut subs, READINGS, Duration::from_secs(180));

    assert_eq!(
        gathered.windows, reference.windows,
        "the instances' windows differ from one Weir's"
    );
    eprintln!(
        "{} windows, {} emitted again after the kill",
        gathered.windows.len(),
        gathered.repeats
    );
}

#[test]
fn offsets_wait_for_the_kafka_sink_to_acknowledge_the_results() {
    const READINGS: u64 = 2_000;
    let tansu = Tansu::start();
    tansu.create_topic_with("readings", PARTITIONS);
    let mut upstream = Tansu::not_started();
    let sink = format!(
        "{{kafka: {{bootstrap_servers: '{}', topic: windows, delivery_timeout_ms: 2000}}, retry_max_ms: 500}}",
        upstream.bootstrap()
    );
    let (mut weir, metrics, _dir) = weir_reading_to(&tansu.bootstrap(), "weir-acked", 1000, &sink);
    produce(&tansu.bootstrap(), "readings", readings(READINGS, 10_000));
    // Every window closes (the partitions go idle), but the sink's broker is not there.
    wait_for_metrics(
        metrics,
        "every window result in the sink's buffer",
        |value| {
            value("weir_kafka_source_records_total{graph=\"windows\"}") == READINGS
                && value(
                    "weir_kafka_source_lag{graph=\"windows\",topic=\"readings\",partition=\"0\"}",
                ) == 0
                && value("weir_graph_results_total{graph=\"windows\"}") >= 40
        },
    );
    // Two commit intervals and more: nothing may be committed while nothing is delivered.
    std::thread::sleep(Duration::from_millis(2_500));
    let sample = |name: &str| metric(metrics, &format!("{name}{{graph=\"windows\"}}"));
    assert_eq!(sample("weir_kafka_source_commits_total"), Some(0));
    // Once the results are delivered, the offsets follow.
    upstream.restart();
    upstream.create_topic("windows");
    wait_for_metrics(metrics, "the offsets committed after delivery", |value| {
        value("weir_kafka_source_commits_total{graph=\"windows\"}") > 0
    });
    weir.stop_with("TERM");
    let committed = committed_offsets(&tansu.bootstrap(), "weir-acked", "readings", 4);
    assert_eq!(
        committed.iter().sum::<i64>(),
        READINGS as i64,
        "{committed:?}"
    );
}
