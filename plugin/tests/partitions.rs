//! Graphs on partitioned inputs (`weir_engine::start_partitioned`): each input has its own
//! dataflow, so a partition opened late is not behind the others' frontier; how far an input
//! has settled counts its windows still open; an abandoned input drops its open windows.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use weir_engine::{self as engine, time, DeadLetter, EngineOptions, GraphSpec, Outputs};
use weir_graph::{Graph, ModuleSources};
use weir_model::data::DataModel;

/// One-second windows of humidity statistics (a count per window).
const WINDOWS: &str = include_str!("../../bench/graphs/partition-windows.yaml");

#[derive(Default)]
struct Collected {
    results: Mutex<Vec<String>>,
}

impl Outputs for Collected {
    fn result(&self, data: DataModel) -> bool {
        let text = String::from_utf8_lossy(data.payload()).into_owned();
        self.results.lock().unwrap().push(text);
        true
    }

    fn dead_letter(&self, letter: DeadLetter) {
        panic!("unexpected dead letter: {}", letter.reason);
    }
}

impl Collected {
    /// The count of each window result so far.
    fn counts(&self) -> Vec<u64> {
        let results = self.results.lock().unwrap();
        results
            .iter()
            .map(|text| {
                let json: serde_json::Value = serde_json::from_str(text).unwrap();
                json["humidity"]["count"].as_u64().unwrap()
            })
            .collect()
    }

    /// Waits (at most 10 s) until `n` results have left.
    fn wait_for(&self, n: usize) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.results.lock().unwrap().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.counts()
    }
}

/// The graph started, its handles in the order they must be dropped in a failing test: the
/// partitions' handle before the running graph, whose drop waits for the workers.
fn start() -> (engine::RunningGraph, engine::Partitions, Arc<Collected>) {
    common::module_path("window");
    common::module_path("humidity");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let graph = Graph::parse(WINDOWS, "windows.yaml", &HashMap::new()).unwrap();
    let modules = engine::load_modules(
        &graph,
        &ModuleSources::local(vec![repo.join("target/modules")]),
        &common::runtime(),
    )
    .unwrap();
    let outputs = Arc::new(Collected::default());
    let spec = GraphSpec {
        name: "partitioned".into(),
        graph,
        modules,
    };
    let options = EngineOptions {
        workers: 2,
        ..EngineOptions::default()
    };
    let (partitions, running) = engine::start_partitioned(spec, options).unwrap();
    (running, partitions, outputs)
}

/// Pushes a humidity reading at `millis` into `partition`.
fn push(partition: &engine::Partition, millis: u64) {
    let DataModel::Message(message) =
        common::message("sensors/a/humidity", r#"{"humidity":{"value":40}}"#, millis)
    else {
        unreachable!()
    };
    partition.feeder().push(message);
}

/// Waits (at most 10 s) until `partition` has settled `n` messages.
fn settles(partition: &engine::Partition, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while partition.settled() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    partition.settled()
}

#[test]
fn a_window_holds_its_inputs_unsettled_until_it_has_left() {
    let (running, partitions, outputs) = start();
    let partition = partitions.open(outputs.clone()).unwrap();
    // Three readings in the window [10 s, 11 s), one in the next.
    for millis in [10_100, 10_200, 10_900, 11_100] {
        push(&partition, millis);
    }
    partition
        .feeder()
        .advance_to(time::encode(&common::ts(11_050)));
    assert_eq!(outputs.wait_for(1), vec![3]);
    // The first window's three readings are settled; the fourth waits in the open window.
    assert_eq!(settles(&partition, 3), 3);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        partition.settled(),
        3,
        "a reading in an open window was settled"
    );
    partition
        .feeder()
        .advance_to(time::encode(&common::ts(12_500)));
    assert_eq!(outputs.wait_for(2), vec![3, 1]);
    assert_eq!(settles(&partition, 4), 4);
    partition.finish();
    drop(partitions);
    running.join().unwrap();
}

#[test]
fn a_partition_opened_later_is_not_late_and_an_abandoned_one_drops_its_windows() {
    let (running, partitions, outputs) = start();
    let first = partitions.open(outputs.clone()).unwrap();
    push(&first, 50_100);
    first.feeder().advance_to(time::encode(&common::ts(60_000)));
    assert_eq!(outputs.wait_for(1), vec![1]);

    // A partition assigned later replays older records: they make their own windows.
    let second = partitions.open(outputs.clone()).unwrap();
    for millis in [20_100, 20_200] {
        push(&second, millis);
    }
    second
        .feeder()
        .advance_to(time::encode(&common::ts(21_050)));
    assert_eq!(outputs.wait_for(2), vec![1, 2]);
    assert_eq!(running.metrics().late.load(SeqCst), 0);

    // An abandoned partition's open window is dropped, not emitted partial.
    let third = partitions.open(outputs.clone()).unwrap();
    push(&third, 30_100);
    third.abandon();
    first.finish();
    second.finish();
    drop(partitions);
    running.join().unwrap();
    assert_eq!(outputs.counts(), vec![1, 2]);
}
