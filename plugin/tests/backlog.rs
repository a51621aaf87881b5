//! Graphs under a backlog: the input queue never empties while a fast producer feeds a slower
//! module, and results must still leave while the input is queued (the pushers take
//! checkpoints that let the source move its frontier), every one of them exactly once.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use weir_engine::metrics::GraphMetrics;
use weir_engine::{self as engine, time, DeadLetter, EngineOptions, GraphSpec, Outputs};
use weir_graph::{Graph, ModuleSources};
use weir_model::data::DataModel;

/// One CPU-heavy map node: the `slow` module spins for 1 ms per message (weir-bench's
/// `workers` graph).
const SLOW: &str = include_str!("../../bench/graphs/heavy.yaml");

/// How results followed the input.
#[derive(Debug, Clone, Copy, Default)]
struct Followed {
    /// Messages pushed into the graph when the first result left.
    pushed_at_first_result: u64,
    /// The most messages the module node had taken beyond the results that had left, seen
    /// as each result left: what the graph held back.
    most_held: u64,
}

/// Counts results, noting how far the input was when the first one arrived.
struct Watching {
    pushed: Arc<AtomicU64>,
    metrics: OnceLock<Arc<GraphMetrics>>,
    module_node: &'static str,
    followed: Mutex<Followed>,
    results: AtomicU64,
}

impl Outputs for Watching {
    fn result(&self, _: DataModel) -> bool {
        let before = self.results.fetch_add(1, SeqCst);
        let processed = self
            .metrics
            .get()
            .and_then(|metrics| metrics.node(self.module_node))
            .map_or(0, |node| node.input.load(SeqCst));
        let mut followed = self.followed.lock().unwrap();
        if before == 0 {
            followed.pushed_at_first_result = self.pushed.load(SeqCst);
        }
        followed.most_held = followed.most_held.max(processed.saturating_sub(before));
        true
    }

    fn dead_letter(&self, letter: DeadLetter) {
        panic!("unexpected dead letter: {}", letter.reason);
    }
}

/// Pushes `messages` readings as fast as the feeder takes them, the frontier following each
/// (as the broker does); returns how the results followed, once every result came out exactly
/// once.
fn flood(graph: Graph, module: &str, module_node: &'static str, messages: u64) -> Followed {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    common::module_path(module);
    let modules = engine::load_modules(
        &graph,
        &ModuleSources::local(vec![repo.join("target/modules")]),
        &common::runtime(),
    )
    .unwrap();
    let pushed = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(Watching {
        pushed: pushed.clone(),
        metrics: OnceLock::new(),
        module_node,
        followed: Mutex::new(Followed::default()),
        results: AtomicU64::new(0),
    });
    let spec = GraphSpec {
        name: "backlog".into(),
        graph,
        modules,
    };
    let (feeder, running) = engine::start(spec, EngineOptions::default(), outputs.clone()).unwrap();
    let _ = outputs.metrics.set(running.metrics().clone());
    let payload = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    for i in 0..messages {
        let millis = 1_000_000 + i;
        let DataModel::Message(message) = common::message("sensors/a/temperature", payload, millis)
        else {
            unreachable!()
        };
        feeder.push(message);
        pushed.fetch_add(1, SeqCst);
        feeder.advance_to(time::encode(&common::ts(millis + 1)));
    }
    drop(feeder);
    running.join().unwrap();
    assert_eq!(outputs.results.load(SeqCst), messages);
    let followed = *outputs.followed.lock().unwrap();
    followed
}

#[test]
fn results_leave_while_the_input_is_still_queued() {
    const MESSAGES: u64 = 50_000;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let graph = Graph::load(
        &repo.join("config/graphs/temperature-map.yaml"),
        &HashMap::new(),
    )
    .unwrap();
    let first = flood(graph, "temperature", "module-temperature/map", MESSAGES);
    assert!(
        first.pushed_at_first_result < MESSAGES / 2,
        "the first result left only after {} of {MESSAGES} messages were pushed",
        first.pushed_at_first_result
    );
}

#[test]
fn a_slow_modules_results_leave_in_small_steps_while_its_queue_is_full() {
    const MESSAGES: u64 = 400;
    let graph = Graph::parse(SLOW, "slow.yaml", &HashMap::new()).unwrap();
    let followed = flood(graph, "slow", "heavy", MESSAGES);
    // The 400 messages are queued within the module's first few milliseconds, and the queue
    // stays full until the end: results must not wait for the whole queue.
    assert!(
        followed.most_held <= MESSAGES / 4,
        "the graph held back up to {} of {MESSAGES} processed messages",
        followed.most_held
    );
}
