//! A graph under a backlog: its input queue never empties while a fast producer feeds a slower
//! module, and its results must still leave while the input is queued (the source moves its
//! frontier by checkpoints), every one of them exactly once.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use weir_plugin::data::DataModel;
use weir_plugin::engine::{self, time, DeadLetter, EngineOptions, GraphSpec, Outputs};
use weir_plugin::graph::Graph;

/// Counts results, noting how many messages had been pushed when the first one arrived.
struct Watching {
    pushed: Arc<AtomicU64>,
    pushed_at_first_result: Mutex<Option<u64>>,
    results: AtomicU64,
}

impl Outputs for Watching {
    fn result(&self, _: DataModel) -> bool {
        if self.results.fetch_add(1, SeqCst) == 0 {
            *self.pushed_at_first_result.lock().unwrap() = Some(self.pushed.load(SeqCst));
        }
        true
    }

    fn dead_letter(&self, letter: DeadLetter) {
        panic!("unexpected dead letter: {}", letter.reason);
    }
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
    common::module_path("temperature");
    let modules =
        engine::load_modules(&graph, &[repo.join("target/modules")], &common::runtime()).unwrap();
    let pushed = Arc::new(AtomicU64::new(0));
    let outputs = Arc::new(Watching {
        pushed: pushed.clone(),
        pushed_at_first_result: Mutex::new(None),
        results: AtomicU64::new(0),
    });
    let spec = GraphSpec {
        name: "backlog".into(),
        graph,
        modules,
    };
    let (feeder, running) = engine::start(spec, EngineOptions::default(), outputs.clone()).unwrap();
    let payload = r#"{"temperature":{"value":212,"unit":"F"}}"#;
    for i in 0..MESSAGES {
        let millis = 1_000_000 + i;
        let DataModel::Message(message) = common::message("sensors/a/temperature", payload, millis)
        else {
            unreachable!()
        };
        feeder.push(message);
        pushed.fetch_add(1, SeqCst);
        // As the broker does: the frontier follows each message.
        feeder.advance_to(time::encode(&common::ts(millis + 1)));
    }
    drop(feeder);
    running.join().unwrap();
    assert_eq!(outputs.results.load(SeqCst), MESSAGES);
    let first = outputs.pushed_at_first_result.lock().unwrap().unwrap();
    assert!(
        first < MESSAGES / 2,
        "the first result left only after {first} of {MESSAGES} messages were pushed"
    );
}
