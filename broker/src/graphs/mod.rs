//! `weir run`'s graphs: each binding of `weir.yaml` loaded and started on the engine
//! ([`deploy`]), its results published through the connection layer, its sources routed at
//! the door, its status on `$weir/status/<graph>`, its counters logged and served to
//! Prometheus ([`catalog`]). [`RunningGraphs::reload`] applies a changed configuration while
//! the broker runs; [`RunningGraphs::finish`] lets the graphs finish what they hold at
//! shutdown.

pub mod catalog;
mod deploy;
mod reload;

pub use catalog::Catalog;
pub use reload::{needs_restart, Reloaded};

use crate::config::{GraphBinding, WeirConfig};
use crate::server::Broker;
use anyhow::Context;
use deploy::{Deployed, Deployer, LaunchError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weir_door::DoorHandle;
use weir_engine::GraphSpec;
use weir_plugin::ingress::GraphRoutes;
use weir_state::StateStore;

/// The graphs `weir run` started.
pub struct RunningGraphs {
    /// Where publishes enter them.
    pub routes: Arc<GraphRoutes>,
    /// Their counters and their sinks'.
    pub catalog: Catalog,
    deployed: BTreeMap<String, Deployed>,
    deployer: Option<Deployer>,
    door: DoorHandle,
    /// The broker's state store, which modules share.
    state: Arc<StateStore>,
    /// Old versions of graphs finishing what they hold after a reload.
    retiring: Vec<JoinHandle<()>>,
}

impl RunningGraphs {
    /// Loads and starts every graph of `config`, publishing their results through `broker`.
    /// A graph whose module refuses its configuration does not start (its status says why);
    /// the broker and the other graphs do.
    pub fn start(
        config: &WeirConfig,
        broker: &Broker,
        state: Arc<StateStore>,
    ) -> anyhow::Result<RunningGraphs> {
        let node_id: Arc<str> = config.engine.node_id.as_str().into();
        let routes = Arc::new(GraphRoutes::new(Vec::new(), node_id));
        routes.set_max_clock_skew_ms(config.engine.max_clock_skew_ms);
        let mut running = RunningGraphs {
            routes,
            catalog: Catalog::default(),
            deployed: BTreeMap::new(),
            deployer: None,
            door: broker.door().handle(),
            state,
            retiring: Vec::new(),
        };
        running
            .routes
            .start_clock(Duration::from_millis(config.engine.tick_ms))
            .context("cannot start the graphs' clock")?;
        if config.engine.log_interval_s > 0 {
            log_periodically(
                running.catalog.clone(),
                Duration::from_secs(config.engine.log_interval_s),
            );
        }
        if config.graphs.is_empty() {
            return Ok(running);
        }
        let deployer = Deployer::new(config, running.door.clone(), running.state.clone())?;
        for binding in &config.graphs {
            if let Some(spec) = deployer.prepare(binding)? {
                running.launch(&deployer, binding, spec)?;
            }
        }
        running.deployer = Some(deployer);
        Ok(running)
    }

    /// Launches `spec` for `binding` and routes its sources to it (in place of its running
    /// version, which then finishes what it holds). A module refusing its configuration is
    /// reported (log, status) and leaves the graph as it was; anything else that keeps it from
    /// starting is an error.
    fn launch(
        &mut self,
        deployer: &Deployer,
        binding: &GraphBinding,
        spec: GraphSpec,
    ) -> anyhow::Result<bool> {
        match deployer.launch(binding, spec) {
            Ok((deployed, route)) => {
                let metrics = deployed.graph.metrics().clone();
                let sink = deployed.sink.as_ref().map(|(metrics, _)| metrics.clone());
                let source = deployed.source.as_ref().map(|s| s.status.clone());
                self.catalog.insert(&binding.name, metrics.clone(), sink);
                #[cfg(feature = "kafka")]
                self.catalog.insert_kafka(
                    &binding.name,
                    deployed.source.as_ref().map(|s| s.kafka.clone()),
                );
                let replaced = match route {
                    Some(route) => self.routes.install(route),
                    None => self.routes.remove(&binding.name),
                };
                if let Some(old) = replaced {
                    old.feeder.close();
                }
                // Reported once its sources reach it: a client that sees `running` may publish.
                deployer.board.running_with(&binding.name, metrics, source);
                if let Some(old) = self.deployed.insert(binding.name.clone(), deployed) {
                    self.retire(&binding.name, old);
                }
                Ok(true)
            }
            Err(LaunchError::Engine(e)) => {
                tracing::error!(graph = %binding.name, "graph not started: {e}");
                if self.deployed.contains_key(&binding.name) {
                    deployer.board.not_replaced(&binding.name, e.to_string());
                } else {
                    deployer.board.failed(&binding.name, e.to_string());
                }
                Ok(false)
            }
            Err(LaunchError::Other(e)) => Err(e),
        }
    }

    /// Shows `error` (a configuration that did not load) on every graph's status topic.
    pub fn report_error(&self, error: &str) {
        if let Some(deployer) = &self.deployer {
            for name in self.deployed.keys() {
                deployer.board.not_replaced(name, error.to_string());
            }
        }
    }

    /// Lets `old`, whose input is closed, finish what it holds on a thread of its own.
    fn retire(&mut self, name: &str, old: Deployed) {
        let name = name.to_string();
        let retiring = std::thread::Builder::new()
            .name("weir-graph-retire".into())
            .spawn(move || {
                let mut old = old;
                old.stop_source();
                if let Err(e) = old.graph.join() {
                    tracing::error!(graph = %name, "{e}");
                }
                old.publisher.join();
                // The old sink delivers what it buffers on its own thread, then ends.
            });
        match retiring {
            Ok(handle) => self.retiring.push(handle),
            Err(e) => tracing::error!("cannot wait for a replaced graph: {e}"),
        }
        self.retiring.retain(|handle| !handle.is_finished());
    }

    /// Ends the graphs' input, waits until every graph has processed what it holds (open
    /// windows close and emit), every MQTT result is in the router and every upstream sink
    /// has delivered, at most `patience` for the sinks. Returns what was left undelivered
    /// (messages still in sink buffers).
    pub fn finish(self, patience: Duration) -> u64 {
        let deadline = Instant::now() + patience;
        self.routes.close();
        for handle in self.retiring {
            let _ = handle.join();
        }
        let mut sinks = Vec::new();
        for (name, mut deployed) in self.deployed {
            deployed.stop_source();
            if let Err(e) = deployed.graph.join() {
                tracing::error!(graph = %name, "{e}");
            }
            deployed.publisher.join();
            if let Some(deployer) = &self.deployer {
                deployer.board.stopped(&name);
            }
            sinks.extend(deployed.sink);
        }
        let mut left = 0;
        for (metrics, thread) in sinks {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if !thread.wait(remaining) {
                let undelivered = metrics.in_buffer();
                left += undelivered;
                tracing::warn!(
                    graph = %metrics.graph,
                    "{} sink {}: {undelivered} results not delivered by the end of the drain",
                    metrics.kind,
                    metrics.target
                );
            }
        }
        left
    }
}

/// Logs each graph's counters every `interval` when they changed.
fn log_periodically(catalog: Catalog, interval: Duration) {
    let spawned = std::thread::Builder::new()
        .name("weir-stats".into())
        .spawn(move || {
            let mut last: BTreeMap<String, String> = BTreeMap::new();
            loop {
                std::thread::sleep(interval);
                let graphs = catalog.graphs();
                let sinks = catalog.sinks();
                let summaries = graphs
                    .iter()
                    .map(|g| (&g.graph, "", g.summary()))
                    .chain(sinks.iter().map(|s| (&s.graph, s.kind, s.summary())));
                for (graph, kind, summary) in summaries {
                    let key = format!("{graph}/{kind}");
                    if last.get(&key) != Some(&summary) {
                        tracing::info!(graph = %graph, "{summary}");
                        last.insert(key, summary);
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("graph counters will not be logged: {e}");
    }
}
