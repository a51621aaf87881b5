//! One test: its graph run over its inputs, its results compared with its expectations.

use super::case::{TestCase, NODE_ID};
use super::compare;
use crate::cli::GraphInputArgs;
use crate::graph_inputs::{load_offline, OfflineGraph};
use anyhow::Context;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weir_engine::{self as engine, time, DeadLetter, EngineOptions, GraphSpec, Outputs};
use weir_graph::ModuleSources;
use weir_model::data::DataModel;

/// What every test of a run shares: module folders, `--set` values, schemas, seed.
#[derive(Debug, Clone)]
pub struct Shared {
    /// Where module references resolve: folders, and registries.
    pub modules: ModuleSources,
    /// `--set` values, over each test's own configuration.
    pub set: Vec<(String, String)>,
    /// `--schema`, `--schema-dir`, `--state`.
    pub inputs: GraphInputArgs,
}

/// Collects a graph's results and the first dead letter.
#[derive(Default)]
struct Collected {
    results: Mutex<Vec<Value>>,
    dead_letters: Mutex<Vec<DeadLetter>>,
}

impl Outputs for Collected {
    fn result(&self, item: DataModel) -> bool {
        let view = compare::view(&item);
        self.results.lock().map(|mut r| r.push(view)).is_ok()
    }

    fn dead_letter(&self, letter: DeadLetter) {
        if let Ok(mut letters) = self.dead_letters.lock() {
            letters.push(letter);
        }
    }
}

/// Runs `case`: `Ok(None)` when it passes, `Ok(Some(first difference))` when it fails, `Err`
/// when it cannot run.
pub fn run(case: &TestCase, shared: &Shared) -> anyhow::Result<Option<String>> {
    let mut configuration: HashMap<String, String> =
        case.configuration.clone().into_iter().collect();
    configuration.extend(shared.set.iter().cloned());
    let OfflineGraph { graph, modules } = load_offline(
        &case.graph,
        &configuration,
        &shared.inputs,
        &shared.modules,
        NODE_ID,
    )?;
    let messages = case.inputs()?;
    let expected = case.expectations()?;

    let collected = Arc::new(Collected::default());
    let spec = GraphSpec {
        name: graph.name.clone(),
        graph,
        modules,
    };
    let options = EngineOptions {
        workers: 1,
        node_id: NODE_ID.into(),
        ..EngineOptions::default()
    };
    let (feeder, running) = engine::start(spec, options, collected.clone())?;
    // The run ends when the input is exhausted and every window has closed; the timeout
    // bounds it (modules are loaded and initialised before it starts).
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("weir-graph-test".into())
        .spawn(move || {
            for message in messages {
                let at = time::encode(&message.timestamp);
                feeder.push(message);
                feeder.advance_to(at);
            }
            drop(feeder);
            let _ = done_tx.send(running.join());
        })
        .context("cannot start the test's feeder")?;
    match done_rx.recv_timeout(Duration::from_millis(case.timeout_ms)) {
        Ok(joined) => joined?,
        Err(_) => return Ok(Some(format!("timed out after {} ms", case.timeout_ms))),
    }

    let results = std::mem::take(&mut *lock(&collected.results)?);
    let dead_letters = std::mem::take(&mut *lock(&collected.dead_letters)?);
    Ok(
        difference(case, &expected, &results).map(|difference| match dead_letters.first() {
            Some(letter) => format!(
                "{difference} ({} dead letter{}; first: node `{}` ({}): {})",
                dead_letters.len(),
                if dead_letters.len() == 1 { "" } else { "s" },
                letter.node,
                letter.module,
                letter.reason
            ),
            None => difference,
        }),
    )
}

fn lock<T>(mutex: &Mutex<T>) -> anyhow::Result<std::sync::MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| anyhow::anyhow!("a graph worker panicked"))
}

/// The first difference between the expected and the actual results, if any.
fn difference(case: &TestCase, expected: &[Value], actual: &[Value]) -> Option<String> {
    for (index, (want, got)) in expected.iter().zip(actual).enumerate() {
        let paths: Vec<String> = if case.select.is_empty() {
            match want {
                Value::Object(object) => object.keys().cloned().collect(),
                _ => vec![String::new()],
            }
        } else {
            case.select.clone()
        };
        let (mut want, mut got) = (compare::parse_payload(want.clone()), got.clone());
        for ignored in &case.ignores {
            compare::remove(&mut want, ignored);
            compare::remove(&mut got, ignored);
        }
        for path in &paths {
            let want = compare::lookup(&want, path);
            let got = compare::lookup(&got, path);
            let found = match (want, got) {
                (Some(w), Some(g)) => compare::first_difference(path, w, g),
                (Some(w), None) => Some(format!("{path}: expected {w}, got nothing")),
                (None, Some(g)) => Some(format!("{path}: not in the expected result, got {g}")),
                (None, None) => None,
            };
            if let Some(found) = found {
                return Some(format!("result {index}: {found}"));
            }
        }
    }
    match expected.len().cmp(&actual.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!(
            "expected {} result{}, got {}",
            expected.len(),
            if expected.len() == 1 { "" } else { "s" },
            actual.len()
        )),
        std::cmp::Ordering::Less => Some(format!(
            "expected {} result{}, got {}; the first unexpected: {}",
            expected.len(),
            if expected.len() == 1 { "" } else { "s" },
            actual.len(),
            actual[expected.len()]
        )),
    }
}
