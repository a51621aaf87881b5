//! `weir graph run`: a graph over recorded messages, without a broker.
//!
//! Time is the input's: the frontier follows the newest timestamp read (less the allowed
//! lateness), so windows close as the recording moves on, and the rest close at its end.
//! Messages without `ts` are stamped from the clock (and make the output depend on when it ran).
//! Schemas, a schema directory and a state seed come from the command line or the files beside
//! the definition ([`crate::graph_inputs`]).

use crate::cli::GraphRunArgs;
use crate::graph_inputs::{load_offline, OfflineGraph};
use anyhow::Context;
use std::collections::HashMap;
use std::io::{BufRead, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use weir_engine::{self as engine, time, DeadLetter, EngineOptions, Feeder, GraphSpec, Outputs};
use weir_model::data::DataModel;
use weir_model::hlc::HlcClock;
use weir_model::record::Record;

/// Writes results as JSON lines; counts dead letters (the engine logs each).
struct RecordWriter {
    out: Mutex<Box<dyn Write + Send>>,
    failed: AtomicU64,
}

impl Outputs for RecordWriter {
    fn result(&self, item: DataModel) -> bool {
        let line = Record::from_data(&item).to_line();
        let Ok(mut out) = self.out.lock() else {
            return false;
        };
        writeln!(out, "{line}").is_ok()
    }

    fn dead_letter(&self, _letter: DeadLetter) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reads every record of `input` (named `file` in errors) into the graph, moving its frontier
/// with the newest timestamp read.
fn feed(feeder: &Feeder, input: std::fs::File, file: &str, lateness_ms: u64) -> anyhow::Result<()> {
    let mut clock = HlcClock::new("weir-graph-run");
    let mut newest = 0;
    for (number, line) in std::io::BufReader::new(input).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {file}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let message = Record::parse(&line)
            .and_then(|record| record.to_message(|| clock.now()))
            .with_context(|| format!("{file}:{}", number + 1))?;
        clock.observe(&message.timestamp);
        newest = newest.max(time::encode(&message.timestamp));
        feeder.push(message);
        feeder.advance_to(time::minus_millis(newest, lateness_ms));
    }
    Ok(())
}

/// Runs the graph over the input and writes its results.
pub fn run(args: GraphRunArgs) -> anyhow::Result<()> {
    let configuration: HashMap<String, String> = args.set.into_iter().collect();
    let OfflineGraph { graph, modules } = load_offline(
        &args.graph,
        &configuration,
        &args.inputs,
        &args.registry.sources(&args.modules)?,
        "graph-run",
    )?;
    let input = std::fs::File::open(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout())),
    };
    let writer = Arc::new(RecordWriter {
        out: Mutex::new(out),
        failed: AtomicU64::new(0),
    });
    let name = graph.name.clone();
    let spec = GraphSpec {
        name: name.clone(),
        graph,
        modules,
    };
    let options = EngineOptions {
        workers: usize::from(args.workers),
        node_id: "weir-graph-run".into(),
        ..EngineOptions::default()
    };
    let (feeder, running) = engine::start(spec, options, writer.clone())?;
    let fed = feed(
        &feeder,
        input,
        &args.input.display().to_string(),
        args.lateness_ms,
    );
    // Without input the workers close every window and stop; a failed read ends the run too.
    drop(feeder);
    let metrics = running.metrics().clone();
    running.join()?;
    fed?;
    let mut out = writer
        .out
        .lock()
        .map_err(|_| anyhow::anyhow!("output poisoned"))?;
    out.flush().context("cannot write the results")?;
    tracing::info!(graph = %name, "{}", metrics.summary());
    Ok(())
}
