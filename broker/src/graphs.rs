//! `weir run`'s graphs: each binding of `weir.yaml` loaded, started on the engine with MQTT
//! outputs, and routed by the hook; their counters logged and served to Prometheus.

use crate::config::{DefinitionSource, GraphBinding, Upstream, WeirConfig};
use crate::server::Broker;
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use weir_plugin::engine::Outputs;
use weir_plugin::engine::{self, EngineOptions, GraphMetrics, GraphSpec, RunningGraph};
use weir_plugin::graph::Graph;
use weir_plugin::hook::{self, HookOptions, Route};
use weir_plugin::sink::buffer::SinkMetrics;
use weir_plugin::sink::mqtt::{MqttOutputs, MqttPublisher};
use weir_plugin::sink::{self, UpstreamOutputs};
use weir_plugin::state::StateStore;
use weir_plugin::wasm::{RuntimeConfig, WasmRuntime};

/// The graphs `weir run` started.
pub struct RunningGraphs {
    /// The running graphs (their workers stop with the process).
    pub graphs: Vec<RunningGraph>,
    /// The counters of their upstream (Kafka, OTLP) sinks.
    pub sinks: Vec<Arc<SinkMetrics>>,
}

impl RunningGraphs {
    /// Every graph's counters.
    pub fn metrics(&self) -> Vec<Arc<GraphMetrics>> {
        self.graphs.iter().map(|g| g.metrics().clone()).collect()
    }
}

/// Loads and starts every graph of `config` and the hook that feeds them.
pub fn start(config: &WeirConfig, broker: &Broker) -> anyhow::Result<RunningGraphs> {
    if config.graphs.is_empty() {
        return Ok(RunningGraphs {
            graphs: Vec::new(),
            sinks: Vec::new(),
        });
    }
    let node_id: Arc<str> = config.engine.node_id.as_str().into();
    let state = match &config.engine.state_file {
        Some(file) => StateStore::open(file.path(), &node_id)
            .with_context(|| format!("state store {}", file.path().display()))?,
        None => StateStore::in_memory(&node_id)?,
    };
    let runtime = WasmRuntime::new(&RuntimeConfig::default(), Arc::new(state))?;
    let module_dirs = config.modules.paths();
    let links = broker.links();
    let publisher = MqttPublisher::start(&links, "weir-graphs-out", 4096)?;
    let mut routes = Vec::new();
    let mut graphs = Vec::new();
    let mut sinks = Vec::new();
    for binding in &config.graphs {
        let graph = load_definition(binding)?;
        for warning in &graph.warnings {
            tracing::warn!(graph = %binding.name, "{warning}");
        }
        let modules = match engine::load_modules(&graph, &module_dirs, &runtime) {
            Ok(modules) => modules,
            Err(errors) if binding.optional => {
                let first = errors.0.first().map(|e| e.message.as_str()).unwrap_or("");
                tracing::warn!(
                    "graph `{}` not started: {first}; build the example modules with `scripts/build-modules.sh`",
                    binding.name
                );
                continue;
            }
            Err(errors) => return Err(errors).context(format!("graph `{}`", binding.name)),
        };
        let (outputs, destination) = outputs(binding, &publisher, &node_id, &mut sinks)?;
        let spec = GraphSpec {
            name: binding.name.clone(),
            graph,
            modules,
        };
        let options = EngineOptions {
            workers: binding.workers,
            queue_capacity: binding.queue,
            back_pressure: binding.back_pressure,
            node_id: node_id.clone(),
        };
        let (feeder, running) = engine::start(spec, options, outputs)?;
        tracing::info!(
            graph = %binding.name,
            "graph `{}` on {} → {} ({} worker{}, dead letters to {})",
            binding.name,
            binding.sources(),
            destination,
            binding.workers,
            if binding.workers == 1 { "" } else { "s" },
            binding.dead_letter
        );
        routes.push(Route {
            graph: binding.name.clone(),
            filters: binding.source.clone(),
            feeder,
            lateness_ms: binding.lateness_ms,
            metrics: running.metrics().clone(),
        });
        graphs.push(running);
    }
    if !routes.is_empty() {
        hook::start(
            &links,
            routes,
            HookOptions {
                client_id: "weir-graphs-in".into(),
                node_id,
                tick: Duration::from_millis(config.engine.tick_ms),
            },
        )?;
    }
    let running = RunningGraphs { graphs, sinks };
    if config.engine.log_interval_s > 0 {
        log_periodically(
            running.metrics(),
            running.sinks.clone(),
            Duration::from_secs(config.engine.log_interval_s),
        );
    }
    Ok(running)
}

/// Where `binding`'s results go, and how the start-up log names it.
fn outputs(
    binding: &GraphBinding,
    publisher: &MqttPublisher,
    node_id: &str,
    sinks: &mut Vec<Arc<SinkMetrics>>,
) -> anyhow::Result<(Arc<dyn Outputs>, String)> {
    let mqtt = |topic| {
        MqttOutputs::new(
            &binding.name,
            topic,
            binding.sink.retain,
            Some(binding.dead_letter.clone()),
            publisher.clone(),
        )
        .with_node_id(node_id)
    };
    let delivery = &binding.sink.delivery;
    let (buffer, metrics) = match &binding.sink.upstream {
        None => {
            let outputs = Arc::new(mqtt(binding.sink.topic.clone()));
            return Ok((outputs, binding.sink.describe()));
        }
        Some(Upstream::Kafka(kafka)) => sink::kafka::start(&binding.name, kafka, delivery),
        Some(Upstream::Otlp(otlp)) => sink::otlp::start(&binding.name, otlp, delivery),
    }
    .with_context(|| format!("graph `{}`", binding.name))?;
    let destination = format!(
        "{} (buffer {}, when full: {:?})",
        binding.sink.describe(),
        delivery.buffer,
        delivery.when_full
    );
    sinks.push(metrics);
    let outputs = UpstreamOutputs::new(buffer, mqtt(None), node_id);
    Ok((Arc::new(outputs), destination))
}

fn load_definition(binding: &GraphBinding) -> anyhow::Result<Graph> {
    let configuration: HashMap<String, String> = binding
        .configuration
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(match &binding.definition {
        DefinitionSource::File(file) => Graph::load(file.path(), &configuration)?,
        DefinitionSource::Builtin { name, text } => {
            Graph::parse(text, &format!("builtin:{name}"), &configuration)?
        }
    })
}

/// Logs each graph's counters every `interval` when they changed.
fn log_periodically(
    graphs: Vec<Arc<GraphMetrics>>,
    sinks: Vec<Arc<SinkMetrics>>,
    interval: Duration,
) {
    let spawned = std::thread::Builder::new()
        .name("weir-stats".into())
        .spawn(move || {
            let mut last: Vec<String> = vec![String::new(); graphs.len() + sinks.len()];
            loop {
                std::thread::sleep(interval);
                let summaries = graphs
                    .iter()
                    .map(|g| (&g.graph, g.summary()))
                    .chain(sinks.iter().map(|s| (&s.graph, s.summary())));
                for ((graph, summary), last) in summaries.zip(&mut last) {
                    if summary != *last {
                        tracing::info!(graph = %graph, "{summary}");
                        *last = summary;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("graph counters will not be logged: {e}");
    }
}
