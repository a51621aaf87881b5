//! One graph node's instance of a module: its own Store, `init` once, then `process` calls
//! bounded in time and memory. A trap (or a broken limit) discards the Store; the next call
//! builds and initialises a fresh one first.

use super::bindings::current::imports::wasm_graph::processor::types::{
    Error as WitError, ModuleConfiguration, ModuleSchema as WitSchema,
};
use super::epoch::CallFlag;
use super::error::{Fault, OperatorError};
use super::export::Export;
use super::host::{HostState, NodeIdentity};
use super::limits::{MemoryLimitReached, MemoryLimiter, ModuleLimits};
use super::module::{OperatorKind, OperatorModule};
use crate::metrics::NodeMetrics;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Store, Trap};

pub use weir_model::module::InitConfiguration;

impl From<InitConfiguration> for ModuleConfiguration {
    fn from(configuration: InitConfiguration) -> Self {
        ModuleConfiguration {
            properties: configuration.properties,
            module_schemas: configuration
                .schemas
                .into_iter()
                .map(|schema| WitSchema {
                    name: schema.name,
                    content_type: schema.content_type,
                    content: schema.content,
                })
                .collect(),
        }
    }
}

struct Live {
    store: Store<HostState>,
    export: Export,
}

/// A module instance serving one graph node.
pub struct OperatorInstance {
    module: Arc<OperatorModule>,
    identity: NodeIdentity,
    kind: OperatorKind,
    configuration: ModuleConfiguration,
    limits: ModuleLimits,
    metrics: Arc<NodeMetrics>,
    live: Option<Live>,
    traps: u64,
    calls: CallFlag,
}

impl OperatorInstance {
    /// Instantiates `module` for node `node` calling its `kind` interface, and runs `init` with
    /// `configuration` (the node's resolved parameters and the graph's schemas).
    pub fn new(
        module: Arc<OperatorModule>,
        node: &str,
        kind: OperatorKind,
        configuration: impl Into<InitConfiguration>,
        metrics: Arc<NodeMetrics>,
    ) -> Result<OperatorInstance, OperatorError> {
        let identity = NodeIdentity {
            module: module.name_arc(),
            node: node.into(),
        };
        let limits = module.limits();
        let calls = module.runtime.ticker.flag();
        let mut instance = OperatorInstance {
            module,
            identity,
            kind,
            configuration: configuration.into().into(),
            limits,
            metrics,
            live: None,
            traps: 0,
            calls,
        };
        if !instance.module.exports_operator(kind) {
            return Err(instance.error(Fault::NotExported(kind.interface())));
        }
        let _running = instance.calls.begin();
        instance.live = Some(instance.start()?);
        Ok(instance)
    }

    /// The node this instance serves.
    pub fn node(&self) -> &str {
        &self.identity.node
    }

    /// The module it runs.
    pub fn module(&self) -> &Arc<OperatorModule> {
        &self.module
    }

    /// The operator interface it calls.
    pub fn kind(&self) -> OperatorKind {
        self.kind
    }

    /// The metrics its module defined.
    pub fn metrics(&self) -> &Arc<NodeMetrics> {
        &self.metrics
    }

    /// How many times a call trapped or broke a limit (each discarded the instance).
    pub fn traps(&self) -> u64 {
        self.traps
    }

    /// Replaces the limits; a new instance is built for the next call.
    pub fn set_limits(&mut self, limits: ModuleLimits) {
        self.limits = limits;
        self.live = None;
    }

    fn error(&self, fault: Fault) -> OperatorError {
        OperatorError {
            module: self.identity.module.to_string(),
            node: self.identity.node.to_string(),
            fault,
        }
    }

    /// A new Store and instance, initialised.
    fn start(&mut self) -> Result<Live, OperatorError> {
        let runtime = &self.module.runtime;
        let state = HostState::new(
            self.identity.clone(),
            MemoryLimiter::new(self.limits.memory_bytes),
            self.metrics.clone(),
            runtime.state.clone(),
            runtime.schemas.clone(),
        );
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Instantiation runs start functions: bound them like a call.
        store.set_epoch_deadline(self.deadline_ticks(self.init_timeout()));
        let instance = self
            .module
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.error(classify(e, "instantiate", self.init_timeout())))?;
        let index = self
            .module
            .indices
            .iter()
            .find(|index| index.kind() == self.kind)
            .ok_or_else(|| self.error(Fault::NotExported(self.kind.interface())))?;
        let export = Export::load(index, &mut store, &instance)
            .map_err(|e| self.error(Fault::Instantiate(format!("{e:#}"))))?;

        store.set_epoch_deadline(self.deadline_ticks(self.init_timeout()));
        let accepted = export
            .init(&mut store, &self.configuration)
            .map_err(|e| self.error(classify(e, "init", self.init_timeout())))?;
        if !accepted {
            return Err(self.error(Fault::InitRejected));
        }
        Ok(Live { store, export })
    }

    /// `init` may load a language runtime's state: it gets at least a second.
    fn init_timeout(&self) -> Duration {
        self.limits.call_timeout.max(Duration::from_secs(1))
    }

    fn deadline_ticks(&self, timeout: Duration) -> u64 {
        let tick = self.module.runtime.epoch_tick.as_nanos().max(1);
        // One extra tick: the first may come at once.
        (timeout.as_nanos().div_ceil(tick) as u64).max(1) + 1
    }

    /// Calls `process` through `call`, with the instance's time limit; a trap discards the
    /// instance, and a module error is returned as [`Fault::Returned`].
    pub(crate) fn process<R>(
        &mut self,
        call: impl FnOnce(&mut Store<HostState>, &Export) -> wasmtime::Result<Result<R, WitError>>,
    ) -> Result<R, OperatorError> {
        let _running = self.calls.begin();
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.start()?,
        };
        live.store
            .set_epoch_deadline(self.deadline_ticks(self.limits.call_timeout));
        match call(&mut live.store, &live.export) {
            Ok(result) => {
                self.live = Some(live);
                result.map_err(|error| {
                    self.error(Fault::Returned {
                        operation: "process",
                        message: error.message,
                    })
                })
            }
            Err(trap) => {
                // The instance may be in any state: drop it; the next call starts afresh.
                self.traps += 1;
                Err(self.error(classify(trap, "process", self.limits.call_timeout)))
            }
        }
    }
}

/// Turns a wasmtime error from a call into the fault a user can act on.
fn classify(error: wasmtime::Error, operation: &'static str, limit: Duration) -> Fault {
    if let Some(reached) = error.downcast_ref::<MemoryLimitReached>() {
        return Fault::MemoryLimit {
            operation,
            reached: *reached,
        };
    }
    if let Some(Trap::Interrupt) = error.downcast_ref::<Trap>() {
        return Fault::Timeout { operation, limit };
    }
    // The trap itself (`wasm \`unreachable\` instruction executed`), not the host's stack.
    let message = match error.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{error:#}"),
    };
    Fault::Trap { operation, message }
}
