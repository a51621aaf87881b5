//! `weir run`'s graphs: each binding of `weir.yaml` loaded and started on the engine, its
//! results published through the connection layer, its sources routed at the door; their
//! counters logged and served to Prometheus. [`RunningGraphs::finish`] lets them finish what
//! they hold at shutdown.

use crate::config::{DefinitionSource, GraphBinding, Upstream, WeirConfig};
use crate::server::Broker;
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use weir_plugin::door::{GraphRoute, GraphRoutes};
use weir_plugin::engine::Outputs;
use weir_plugin::engine::{self, EngineOptions, GraphMetrics, GraphSpec, RunningGraph};
use weir_plugin::graph::Graph;
use weir_plugin::schema::ModuleSchema;
use weir_plugin::sink::buffer::SinkMetrics;
use weir_plugin::sink::mqtt::{MqttOutputs, MqttPublisher, PublisherThread};
use weir_plugin::sink::{self, UpstreamOutputs};
use weir_plugin::state::seed::StateSeed;
use weir_plugin::state::StateStore;
use weir_plugin::wasm::{RuntimeConfig, WasmRuntime};

/// The graphs `weir run` started.
pub struct RunningGraphs {
    /// The running graphs.
    pub graphs: Vec<RunningGraph>,
    /// The counters of their upstream (Kafka, OTLP) sinks.
    pub sinks: Vec<Arc<SinkMetrics>>,
    /// Where publishes enter them.
    pub routes: Arc<GraphRoutes>,
    /// The threads publishing their MQTT results.
    publishers: Vec<PublisherThread>,
}

impl RunningGraphs {
    /// Every graph's counters.
    pub fn metrics(&self) -> Vec<Arc<GraphMetrics>> {
        self.graphs.iter().map(|g| g.metrics().clone()).collect()
    }

    /// Ends the graphs' input, waits until every graph has processed what it holds and every
    /// MQTT result is in the router.
    pub fn finish(self) {
        self.routes.close();
        for graph in self.graphs {
            let name = graph.name().to_string();
            if let Err(e) = graph.join() {
                tracing::error!(graph = %name, "{e}");
            }
        }
        for publisher in self.publishers {
            publisher.join();
        }
    }
}

/// Loads and starts every graph of `config`, publishing their results through `broker`.
pub fn start(config: &WeirConfig, broker: &Broker) -> anyhow::Result<RunningGraphs> {
    let node_id: Arc<str> = config.engine.node_id.as_str().into();
    let mut running = RunningGraphs {
        graphs: Vec::new(),
        sinks: Vec::new(),
        routes: Arc::new(GraphRoutes::none()),
        publishers: Vec::new(),
    };
    if config.graphs.is_empty() {
        return Ok(running);
    }
    let state = match &config.engine.state_file {
        Some(file) => StateStore::open(file.path(), &node_id)
            .with_context(|| format!("state store {}", file.path().display()))?,
        None => StateStore::in_memory(&node_id)?,
    };
    seed(&config.graphs, &state)?;
    let runtime_config = RuntimeConfig {
        schema_dir: config.modules.schema_dir.as_ref().map(|d| d.path().into()),
        ..RuntimeConfig::default()
    };
    let runtime = WasmRuntime::new(&runtime_config, Arc::new(state))?;
    let module_dirs = config.modules.paths();
    let mut routes = Vec::new();
    for binding in &config.graphs {
        let mut graph = load_definition(binding)?;
        for file in &binding.schemas {
            let schema = ModuleSchema::from_file(file.path())
                .with_context(|| format!("graph `{}`", binding.name))?;
            graph.add_schema(schema);
        }
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
        let spec = GraphSpec {
            name: binding.name.clone(),
            graph,
            modules,
        };
        routes.push(start_one(binding, spec, broker, &node_id, &mut running)?);
    }
    let routes = Arc::new(GraphRoutes::new(routes, node_id));
    routes.set_max_clock_skew_ms(config.engine.max_clock_skew_ms);
    routes
        .start_clock(Duration::from_millis(config.engine.tick_ms))
        .context("cannot start the graphs' clock")?;
    running.routes = routes;
    if config.engine.log_interval_s > 0 {
        log_periodically(
            running.metrics(),
            running.sinks.clone(),
            Duration::from_secs(config.engine.log_interval_s),
        );
    }
    Ok(running)
}

/// Loads every binding's `state_seed` into `state`, before any module starts.
fn seed(bindings: &[GraphBinding], state: &StateStore) -> anyhow::Result<()> {
    for binding in bindings {
        let Some(file) = &binding.state_seed else {
            continue;
        };
        let context = || format!("graph `{}`: state_seed", binding.name);
        let written = StateSeed::load(file.path())
            .with_context(context)?
            .apply(state)
            .with_context(context)?;
        tracing::info!(
            graph = %binding.name,
            "{written} state-store keys seeded from {}",
            file.path().display()
        );
    }
    Ok(())
}

/// Starts `binding`'s graph with its result publisher and sink, into `running`; returns where
/// its publishes enter it.
fn start_one(
    binding: &GraphBinding,
    spec: GraphSpec,
    broker: &Broker,
    node_id: &Arc<str>,
    running: &mut RunningGraphs,
) -> anyhow::Result<GraphRoute> {
    let (publisher, thread) = MqttPublisher::start(
        broker.door(),
        &format!("weir-graph-{}", binding.name),
        &binding.name,
        4096,
    )
    .with_context(|| format!("graph `{}`", binding.name))?;
    running.publishers.push(thread);
    let (outputs, destination) = outputs(binding, &publisher, node_id, &mut running.sinks)?;
    let options = EngineOptions {
        workers: binding.workers,
        queue_capacity: binding.queue,
        back_pressure: binding.back_pressure,
        node_id: node_id.clone(),
    };
    let (feeder, graph) = engine::start(spec, options, outputs)?;
    tracing::info!(
        graph = %binding.name,
        "graph `{}` on {}{} → {} ({} worker{}, dead letters to {})",
        binding.name,
        binding.sources(),
        if binding.intercept { " (intercepted)" } else { "" },
        destination,
        binding.workers,
        if binding.workers == 1 { "" } else { "s" },
        binding.dead_letter
    );
    let route = GraphRoute {
        name: binding.name.clone(),
        filters: binding.source.clone(),
        feeder: Arc::new(feeder),
        lateness_ms: binding.lateness_ms,
        intercept: binding.intercept,
        allow_loop: binding.allow_loop,
        metrics: graph.metrics().clone(),
    };
    running.graphs.push(graph);
    Ok(route)
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
            binding.sink.qos,
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
