//! One graph node's instance of a module: its own Store, `init` once, then `process` calls
//! bounded in time and memory. A trap (or a broken limit) discards the Store; the next call
//! builds and initialises a fresh one first.

use super::bindings::current::imports::wasm_graph::processor::types::{
    Error as WitError, ModuleConfiguration, ModuleSchema as WitSchema,
};
use super::bindings::{current, preview};
use super::error::{Fault, OperatorError};
use super::host::{HostState, NodeIdentity};
use super::limits::{MemoryLimitReached, MemoryLimiter, ModuleLimits};
use super::module::{GuestIndex, OperatorKind, OperatorModule};
use crate::metrics::NodeMetrics;
use crate::schema::ModuleSchema;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Store, Trap};

/// The exported interface a node calls.
pub(crate) enum Guest {
    Map(current::map::exports::wasm_graph::processor::map::Guest),
    Filter(current::filter::exports::wasm_graph::processor::filter::Guest),
    Branch(current::branch::exports::wasm_graph::processor::branch::Guest),
    Accumulate(current::accumulate::exports::wasm_graph::processor::accumulate::Guest),
    Delay(current::delay::exports::wasm_graph::processor::delay::Guest),
    PreviewMap(preview::map::exports::tinykube_graph::processor::map::Guest),
    PreviewFilter(preview::filter::exports::tinykube_graph::processor::filter::Guest),
    PreviewBranch(preview::branch::exports::tinykube_graph::processor::branch::Guest),
    PreviewAccumulate(preview::accumulate::exports::tinykube_graph::processor::accumulate::Guest),
    PreviewDelay(preview::delay::exports::tinykube_graph::processor::delay::Guest),
}

impl Guest {
    fn load(
        index: &GuestIndex,
        store: &mut Store<HostState>,
        instance: &wasmtime::component::Instance,
    ) -> wasmtime::Result<Guest> {
        Ok(match index {
            GuestIndex::Map(i) => Guest::Map(i.load(store, instance)?),
            GuestIndex::Filter(i) => Guest::Filter(i.load(store, instance)?),
            GuestIndex::Branch(i) => Guest::Branch(i.load(store, instance)?),
            GuestIndex::Accumulate(i) => Guest::Accumulate(i.load(store, instance)?),
            GuestIndex::Delay(i) => Guest::Delay(i.load(store, instance)?),
            GuestIndex::PreviewMap(i) => Guest::PreviewMap(i.load(store, instance)?),
            GuestIndex::PreviewFilter(i) => Guest::PreviewFilter(i.load(store, instance)?),
            GuestIndex::PreviewBranch(i) => Guest::PreviewBranch(i.load(store, instance)?),
            GuestIndex::PreviewAccumulate(i) => Guest::PreviewAccumulate(i.load(store, instance)?),
            GuestIndex::PreviewDelay(i) => Guest::PreviewDelay(i.load(store, instance)?),
        })
    }

    fn init(
        &self,
        store: &mut Store<HostState>,
        configuration: &ModuleConfiguration,
    ) -> wasmtime::Result<bool> {
        match self {
            Guest::Map(g) => g.call_init(store, configuration),
            Guest::Filter(g) => g.call_init(store, configuration),
            Guest::Branch(g) => g.call_init(store, configuration),
            Guest::Accumulate(g) => g.call_init(store, configuration),
            Guest::Delay(g) => g.call_init(store, configuration),
            Guest::PreviewMap(g) => g.call_init(store, configuration),
            Guest::PreviewFilter(g) => g.call_init(store, configuration),
            Guest::PreviewBranch(g) => g.call_init(store, configuration),
            Guest::PreviewAccumulate(g) => g.call_init(store, configuration),
            Guest::PreviewDelay(g) => g.call_init(store, configuration),
        }
    }
}

/// What a node's `init` receives.
///
/// ```
/// use weir_plugin::wasm::instance::InitConfiguration;
///
/// let configuration = InitConfiguration::from(vec![("window_ms".to_string(), "500".to_string())]);
/// assert!(configuration.schemas.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitConfiguration {
    /// The node's resolved parameters, `(name, value)`.
    pub properties: Vec<(String, String)>,
    /// The schemas the graph was given (`module-schemas`).
    pub schemas: Vec<ModuleSchema>,
}

impl From<Vec<(String, String)>> for InitConfiguration {
    fn from(properties: Vec<(String, String)>) -> Self {
        InitConfiguration {
            properties,
            schemas: Vec::new(),
        }
    }
}

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
    guest: Guest,
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
        let mut instance = OperatorInstance {
            module,
            identity,
            kind,
            configuration: configuration.into().into(),
            limits,
            metrics,
            live: None,
            traps: 0,
        };
        if !instance.module.exports_operator(kind) {
            return Err(instance.error(Fault::NotExported(kind.interface())));
        }
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
            .find(|(kind, _)| *kind == self.kind)
            .map(|(_, index)| index)
            .ok_or_else(|| self.error(Fault::NotExported(self.kind.interface())))?;
        let guest = Guest::load(index, &mut store, &instance)
            .map_err(|e| self.error(Fault::Instantiate(format!("{e:#}"))))?;

        store.set_epoch_deadline(self.deadline_ticks(self.init_timeout()));
        let accepted = guest
            .init(&mut store, &self.configuration)
            .map_err(|e| self.error(classify(e, "init", self.init_timeout())))?;
        if !accepted {
            return Err(self.error(Fault::InitRejected));
        }
        Ok(Live { store, guest })
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
        call: impl FnOnce(&mut Store<HostState>, &Guest) -> wasmtime::Result<Result<R, WitError>>,
    ) -> Result<R, OperatorError> {
        let mut live = match self.live.take() {
            Some(live) => live,
            None => self.start()?,
        };
        live.store
            .set_epoch_deadline(self.deadline_ticks(self.limits.call_timeout));
        match call(&mut live.store, &live.guest) {
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
