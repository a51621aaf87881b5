//! Turning one graph binding of `weir.yaml` into a running graph: its definition read and
//! validated, its modules loaded and compiled ([`Deployer::prepare`], which touches nothing
//! running), then its result publisher, sink and engine started ([`Deployer::launch`]).

use crate::config::{DefinitionSource, GraphBinding, WeirConfig};
use crate::registry::pull_definition;
use anyhow::Context;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use weir_door::DoorHandle;
use weir_engine::{
    self as engine, CircuitConfig, EngineError, EngineOptions, GraphSpec, Outputs, RunningGraph,
};
use weir_graph::{Graph, ModuleSources};
use weir_plugin::ingress::GraphRoute;
use weir_plugin::mqtt_sink::{MqttOutputs, MqttPublisher, PublisherThread};
use weir_plugin::outputs::{Acknowledged, UpstreamOutputs};
use weir_plugin::status::{SourceStatus, StatusBoard};
use weir_sink::buffer::{SinkMetrics, SinkThread};
use weir_sink::UpstreamSink;
use weir_state::seed::StateSeed;
use weir_state::StateStore;
use weir_wasm::schema::ModuleSchema;
use weir_wasm::{RuntimeConfig, WasmRuntime};

/// How often `$weir/status/<graph>` is refreshed when only counters moved.
const STATUS_REFRESH: Duration = Duration::from_secs(5);

/// Results waiting for the router, per graph, at most.
const PUBLISH_QUEUE: usize = 4096;

/// What every graph is started with.
pub(super) struct Deployer {
    pub runtime: Arc<WasmRuntime>,
    pub state: Arc<StateStore>,
    pub node_id: Arc<str>,
    /// Where module references (and registry definitions) resolve.
    pub sources: ModuleSources,
    pub door: DoorHandle,
    pub circuit: CircuitConfig,
    pub board: StatusBoard,
    /// Versions started so far (names each version's router link apart).
    pub versions: AtomicU64,
}

/// One running version of a graph and what serves it.
pub(super) struct Deployed {
    pub graph: RunningGraph,
    pub publisher: PublisherThread,
    pub sink: Option<Upstream>,
    /// What it was built from (see [`fingerprint`]).
    pub fingerprint: u64,
    /// Its source outside the broker (Kafka), if it has one.
    pub source: Option<OutsideSource>,
}

/// A graph's source outside the broker: what its status shows, and how to stop it.
#[cfg_attr(not(feature = "kafka"), allow(dead_code))]
pub(super) struct OutsideSource {
    pub status: Arc<dyn SourceStatus>,
    /// Its counters on /metrics.
    #[cfg(feature = "kafka")]
    pub kafka: Arc<weir_kafka_source::KafkaSourceMetrics>,
    /// Commits what the graph settled, drops the open windows and leaves the group.
    stop: Box<dyn FnOnce() + Send>,
}

impl Deployed {
    /// Stops its source outside the broker, if it has one, before the graph is joined: the
    /// partitions' inputs close without emitting their open windows.
    pub fn stop_source(&mut self) {
        if let Some(source) = self.source.take() {
            (source.stop)();
        }
    }
}

/// An upstream sink's counters and delivery thread.
pub(super) type Upstream = (Arc<SinkMetrics>, SinkThread);

/// A graph's outputs, its upstream sink if any, how the log names where results go, and how
/// far they have got.
type GraphOutputs = (
    Arc<dyn Outputs>,
    Option<Upstream>,
    String,
    Arc<dyn Acknowledged>,
);

/// Why a graph could not be launched.
#[derive(Debug, thiserror::Error)]
pub(super) enum LaunchError {
    /// A module refused its configuration or could not be instantiated: the graph does not
    /// run, the broker does.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Its publisher or sink could not start.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl Deployer {
    /// The engine's runtime and status board for `config`'s graphs, on the broker's state
    /// store `state`, with the state seeds of its bindings loaded.
    pub fn new(
        config: &WeirConfig,
        door: DoorHandle,
        state: Arc<StateStore>,
    ) -> anyhow::Result<Deployer> {
        let node_id: Arc<str> = config.engine.node_id.as_str().into();
        for binding in &config.graphs {
            seed(binding, &state)?;
        }
        let runtime_config = RuntimeConfig {
            schema_dir: config.modules.schema_dir.as_ref().map(|d| d.path().into()),
            ..RuntimeConfig::default()
        };
        Ok(Deployer {
            runtime: WasmRuntime::new(&runtime_config, state.clone())?,
            state,
            node_id,
            sources: config.modules.sources(),
            board: StatusBoard::start(door.clone(), STATUS_REFRESH)
                .context("cannot start the graphs' status reports")?,
            door,
            circuit: config.engine.circuit.config(),
            versions: AtomicU64::new(0),
        })
    }

    /// Reads `binding`'s definition and loads its modules; `Ok(None)` for an optional graph
    /// whose modules are missing (logged).
    pub fn prepare(&self, binding: &GraphBinding) -> anyhow::Result<Option<GraphSpec>> {
        let mut graph = self.load_definition(binding)?;
        for file in &binding.schemas {
            let schema = ModuleSchema::from_file(file.path())
                .with_context(|| format!("graph `{}`", binding.name))?;
            graph.add_schema(schema);
        }
        for warning in &graph.warnings {
            tracing::warn!(graph = %binding.name, "{warning}");
        }
        let modules = match engine::load_modules(&graph, &self.sources, &self.runtime) {
            Ok(modules) => modules,
            Err(errors) if binding.optional => {
                let first = errors.0.first().map(|e| e.message.as_str()).unwrap_or("");
                tracing::warn!(
                    "graph `{}` not started: {first}; build the example modules with `scripts/build-modules.sh`",
                    binding.name
                );
                return Ok(None);
            }
            Err(errors) => return Err(errors).context(format!("graph `{}`", binding.name)),
        };
        Ok(Some(GraphSpec {
            name: binding.name.clone(),
            graph,
            modules,
        }))
    }

    /// Starts `spec` as `binding` says: its publisher, its sink, its workers. Returns the
    /// running graph and where its publishes enter it (none for a graph reading Kafka).
    pub fn launch(
        &self,
        binding: &GraphBinding,
        spec: GraphSpec,
    ) -> Result<(Deployed, Option<GraphRoute>), LaunchError> {
        let fingerprint = fingerprint(binding, &spec);
        let version = self.versions.fetch_add(1, Relaxed);
        let link = match version {
            0 => format!("weir-graph-{}", binding.name),
            n => format!("weir-graph-{}-v{}", binding.name, n + 1),
        };
        let (publisher, thread) =
            MqttPublisher::start(&self.door, &link, &binding.name, PUBLISH_QUEUE)
                .with_context(|| format!("graph `{}`", binding.name))?;
        #[cfg_attr(not(feature = "kafka"), allow(unused_variables))]
        let (outputs, sink, destination, acknowledged) = self.outputs(binding, &publisher)?;
        let options = EngineOptions {
            workers: binding.workers,
            queue_capacity: binding.queue,
            back_pressure: binding.back_pressure,
            node_id: self.node_id.clone(),
            circuit: self.circuit,
            on_change: self.board.hook(),
        };
        #[cfg(feature = "kafka")]
        if let Some(kafka) = &binding.kafka {
            let (graph, source) =
                self.launch_kafka(binding, kafka, spec, options, outputs, acknowledged)?;
            let deployed = Deployed {
                graph,
                publisher: thread,
                sink,
                fingerprint,
                source: Some(source),
            };
            tracing::info!(
                graph = %binding.name,
                "graph `{}` on {} → {} ({} worker{} per partition, dead letters to {})",
                binding.name,
                binding.sources(),
                destination,
                binding.workers,
                if binding.workers == 1 { "" } else { "s" },
                binding.dead_letter
            );
            return Ok((deployed, None));
        }
        // On failure the outputs are dropped: the publisher and sink threads end by themselves.
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
        let deployed = Deployed {
            graph,
            publisher: thread,
            sink,
            fingerprint,
            source: None,
        };
        Ok((deployed, Some(route)))
    }

    /// Starts a graph reading Kafka: its workers with an input per partition assigned, and the
    /// consumer that feeds them.
    #[cfg(feature = "kafka")]
    fn launch_kafka(
        &self,
        binding: &GraphBinding,
        kafka: &weir_kafka_source::KafkaSourceConfig,
        spec: GraphSpec,
        options: EngineOptions,
        outputs: Arc<dyn Outputs>,
        acknowledged: Arc<dyn Acknowledged>,
    ) -> Result<(RunningGraph, OutsideSource), LaunchError> {
        use weir_plugin::kafka_feed::EngineInputs;
        let (partitions, graph) = engine::start_partitioned(spec, options)?;
        let inputs = Arc::new(EngineInputs::new(
            &binding.name,
            partitions,
            outputs,
            acknowledged,
        ));
        let source = weir_kafka_source::KafkaSource::start(
            &binding.name,
            kafka,
            binding.lateness_ms,
            self.node_id.clone(),
            inputs,
        )
        .map_err(anyhow::Error::from)?;
        let outside = OutsideSource {
            status: source.metrics().clone(),
            kafka: source.metrics().clone(),
            stop: Box::new(move || source.stop()),
        };
        Ok((graph, outside))
    }

    /// `binding`'s definition, read from its file, pulled from its registry or built in.
    fn load_definition(&self, binding: &GraphBinding) -> anyhow::Result<Graph> {
        let configuration: HashMap<String, String> = binding
            .configuration
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok(match &binding.definition {
            DefinitionSource::File(file) => Graph::load(file.path(), &configuration)?,
            DefinitionSource::Registry {
                reference,
                written_at,
            } => {
                pull_definition(reference, &configuration, &self.sources.registries)
                    .with_context(|| match written_at.as_str() {
                        "" => format!("graph `{}`: definition", binding.name),
                        at => format!("{at}: graph `{}`: definition", binding.name),
                    })?
                    .0
            }
            DefinitionSource::Builtin { name, text } => {
                Graph::parse(text, &format!("builtin:{name}"), &configuration)?
            }
        })
    }

    /// Where `binding`'s results go, its upstream sink if any, how the start-up log names
    /// the destination, and how far the results have got.
    fn outputs(
        &self,
        binding: &GraphBinding,
        publisher: &MqttPublisher,
    ) -> anyhow::Result<GraphOutputs> {
        let mqtt = |topic| {
            MqttOutputs::new(
                &binding.name,
                topic,
                binding.sink.retain,
                binding.sink.qos,
                Some(binding.dead_letter.clone()),
                publisher.clone(),
            )
            .with_node_id(&self.node_id)
        };
        let delivery = &binding.sink.delivery;
        let UpstreamSink {
            buffer,
            metrics,
            thread,
        } = match &binding.sink.upstream {
            None => {
                let outputs = Arc::new(mqtt(binding.sink.topic.clone()));
                let acknowledged = publisher.acknowledgements();
                return Ok((outputs, None, binding.sink.describe(), acknowledged));
            }
            Some(upstream) => upstream.start(&binding.name, delivery),
        }
        .with_context(|| format!("graph `{}`", binding.name))?;
        let destination = format!(
            "{} (buffer {}, when full: {:?})",
            binding.sink.describe(),
            delivery.buffer,
            delivery.when_full
        );
        let outputs = UpstreamOutputs::new(buffer, mqtt(None), &self.node_id);
        let acknowledged = outputs.acknowledgements(metrics.clone());
        Ok((
            Arc::new(outputs),
            Some((metrics, thread)),
            destination,
            acknowledged,
        ))
    }
}

/// A digest of everything a version of a graph is built from: the binding, the definition
/// (its file, or the digest a registry tag named), the schema files and the module files
/// (pulled ones are named by digest). Equal digests: nothing to reload.
pub(super) fn fingerprint(binding: &GraphBinding, spec: &GraphSpec) -> u64 {
    let mut digest = DefaultHasher::new();
    format!("{binding:?}").hash(&mut digest);
    spec.graph.file.hash(&mut digest);
    let mut files: Vec<&Path> = spec.modules.values().map(|m| m.path()).collect();
    if let DefinitionSource::File(file) = &binding.definition {
        files.push(file.path());
    }
    files.extend(binding.schemas.iter().map(|s| s.path()));
    files.sort();
    files.dedup();
    for file in files {
        file.hash(&mut digest);
        std::fs::read(file).ok().hash(&mut digest);
    }
    digest.finish()
}

/// Loads `binding`'s `state_seed` into `state` (keys already there are kept).
pub(super) fn seed(binding: &GraphBinding, state: &StateStore) -> anyhow::Result<()> {
    let Some(file) = &binding.state_seed else {
        return Ok(());
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
    Ok(())
}
