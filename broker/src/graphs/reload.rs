//! Applying a changed configuration to the running graphs, without a restart: graphs added,
//! removed, and replaced when anything they are built from changed (their binding, definition,
//! schema or module files).
//!
//! A new version is read, compiled and started before it replaces the old one; if any of that
//! fails, the old version keeps running and the error is logged and shown on the graph's
//! status topic. The swap loses nothing: the door routes each publish to the old or the new
//! version, the old one processes what it had accepted (its open windows close and emit), and
//! a publish that reached the old version after its input closed is handed to the new one.

use super::deploy::{fingerprint, seed, Deployer};
use super::RunningGraphs;
use crate::config::{GraphBinding, WeirConfig};
use std::time::Instant;

/// What a reload did, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Graphs started that were not running.
    pub added: Vec<String>,
    /// Graphs replaced by a new version.
    pub replaced: Vec<String>,
    /// Graphs stopped because they left the configuration.
    pub removed: Vec<String>,
    /// Graphs whose new version could not start (the old one, if any, runs on).
    pub failed: Vec<String>,
}

impl RunningGraphs {
    /// Applies `config`'s graphs (and `modules` other than `schema_dir`, `engine.circuit` and
    /// `engine.max_clock_skew_ms`, which reach the graphs started from now on).
    pub fn reload(&mut self, config: &WeirConfig) -> Reloaded {
        let mut done = Reloaded::default();
        self.routes
            .set_max_clock_skew_ms(config.engine.max_clock_skew_ms);
        let deployer = match self.deployer.take() {
            Some(deployer) => deployer,
            None if config.graphs.is_empty() => return done,
            None => match Deployer::new(config, self.door.clone(), self.state.clone()) {
                Ok(deployer) => deployer,
                Err(e) => {
                    tracing::error!("graphs not reloaded: {e:#}");
                    return done;
                }
            },
        };
        let mut deployer = deployer;
        deployer.sources = config.modules.sources();
        deployer.circuit = config.engine.circuit.config();
        self.remove_unbound(config, &deployer, &mut done);
        for binding in &config.graphs {
            self.apply(&deployer, binding, &mut done);
        }
        self.deployer = Some(deployer);
        done
    }

    /// Stops the graphs that are no longer in `config`.
    fn remove_unbound(&mut self, config: &WeirConfig, deployer: &Deployer, done: &mut Reloaded) {
        let unbound: Vec<String> = self
            .deployed
            .keys()
            .filter(|name| !config.graphs.iter().any(|b| &b.name == *name))
            .cloned()
            .collect();
        for name in unbound {
            if let Some(route) = self.routes.remove(&name) {
                route.feeder.close();
            }
            if let Some(old) = self.deployed.remove(&name) {
                self.retire(&name, old);
            }
            self.catalog.remove(&name);
            deployer.board.stopped(&name);
            tracing::info!(graph = %name, "graph `{name}` removed from the configuration: stopped");
            done.removed.push(name);
        }
    }

    /// Starts `binding`'s graph, or replaces its running version if anything it is built from
    /// changed.
    fn apply(&mut self, deployer: &Deployer, binding: &GraphBinding, done: &mut Reloaded) {
        let started = Instant::now();
        let name = &binding.name;
        let running = self.deployed.get(name).map(|d| d.fingerprint);
        let refuse = |done: &mut Reloaded, error: String| {
            if running.is_some() {
                tracing::error!(graph = %name, "graph `{name}` not reloaded, the running version goes on: {error}");
                deployer.board.not_replaced(name, error);
            } else {
                tracing::error!(graph = %name, "graph `{name}` not started: {error}");
                deployer.board.failed(name, error);
            }
            done.failed.push(name.clone());
        };
        if running.is_none() {
            if let Err(e) = seed(binding, &deployer.state) {
                return refuse(done, format!("{e:#}"));
            }
        }
        let spec = match deployer.prepare(binding) {
            Ok(Some(spec)) => spec,
            Ok(None) => return,
            Err(e) => return refuse(done, format!("{e:#}")),
        };
        if running == Some(fingerprint(binding, &spec)) {
            // Unchanged (perhaps back as it was after an error): the report shows no error.
            if let Some(deployed) = self.deployed.get(name) {
                deployer
                    .board
                    .running(name, deployed.graph.metrics().clone());
            }
            return;
        }
        match self.launch(deployer, binding, spec) {
            Ok(true) => {
                let took = started.elapsed();
                if running.is_some() {
                    tracing::info!(graph = %name, "graph `{name}` reloaded in {} ms", took.as_millis());
                    done.replaced.push(name.clone());
                } else {
                    tracing::info!(graph = %name, "graph `{name}` started in {} ms", took.as_millis());
                    done.added.push(name.clone());
                }
            }
            // Logged and reported by `launch`.
            Ok(false) => done.failed.push(name.clone()),
            Err(e) => refuse(done, format!("{e:#}")),
        }
    }
}

/// The sections of `new` that differ from `old` and only take effect at a restart.
pub fn needs_restart(old: &WeirConfig, new: &WeirConfig) -> Vec<&'static str> {
    let engine = |c: &WeirConfig| {
        format!(
            "{:?}",
            (
                &c.engine.node_id,
                &c.engine.state_file,
                c.engine.tick_ms,
                c.engine.log_interval_s
            )
        )
    };
    let mut sections = Vec::new();
    let differs = |a: String, b: String| a != b;
    if differs(format!("{:?}", old.broker), format!("{:?}", new.broker)) {
        sections.push("broker");
    }
    if engine(old) != engine(new) {
        sections.push("engine (other than circuit and max_clock_skew_ms)");
    }
    if differs(format!("{:?}", old.metrics), format!("{:?}", new.metrics)) {
        sections.push("metrics");
    }
    if differs(
        format!("{:?}", old.telemetry),
        format!("{:?}", new.telemetry),
    ) {
        sections.push("telemetry");
    }
    if differs(
        format!("{:?}", old.modules.schema_dir),
        format!("{:?}", new.modules.schema_dir),
    ) {
        sections.push("modules.schema_dir");
    }
    sections
}
