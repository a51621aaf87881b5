//! The wasmtime engine shared by every module of a broker: its configuration (component model,
//! epoch interruption, pooling allocator), the clock that bounds each call, the linker holding
//! every host import, and the on-disk cache of compiled components.

use super::cache::CompiledCache;
use super::epoch::EpochTicker;
use super::error::LoadError;
use super::host::HostState;
use crate::schema::SchemaDirectory;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};
use weir_state::StateStore;

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (`None`: compile at every load).
    pub cache_dir: Option<PathBuf>,
    /// Granularity of call time limits.
    pub epoch_tick: Duration,
    /// Instances the pooling allocator reserves room for (all graphs, nodes and workers).
    pub max_instances: u32,
    /// Largest linear memory any instance may have, in bytes (per-module limits are lower).
    pub max_memory_bytes: u64,
    /// The directory that answers modules' `schema-registry.get` (`None`: "not available").
    pub schema_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            epoch_tick: Duration::from_millis(5),
            max_instances: 128,
            max_memory_bytes: 4 << 30,
            schema_dir: None,
        }
    }
}

/// `$XDG_CACHE_HOME/weir/compiled`, else `~/.cache/weir/compiled`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("weir").join("compiled"))
}

/// The engine, its linker and its cache. Shared (`Arc`) by all modules.
pub struct WasmRuntime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    pub(crate) state: Arc<StateStore>,
    pub(crate) schemas: Option<Arc<SchemaDirectory>>,
    pub(crate) epoch_tick: Duration,
    cache: Option<CompiledCache>,
    pub(crate) ticker: EpochTicker,
}

impl WasmRuntime {
    /// Starts an engine whose modules share the state store `state`.
    pub fn new(
        config: &RuntimeConfig,
        state: Arc<StateStore>,
    ) -> Result<Arc<WasmRuntime>, LoadError> {
        let engine = match Engine::new(&engine_config(config, true)) {
            Ok(engine) => engine,
            Err(error) => {
                // A machine that limits address space cannot reserve the pool; run without it.
                tracing::warn!("pooling allocator unavailable ({error}); allocating on demand");
                Engine::new(&engine_config(config, false))
                    .map_err(|e| LoadError::Engine(e.to_string()))?
            }
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        super::bindings::current::imports::Imports::add_to_linker::<_, HasSelf<HostState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| LoadError::Engine(e.to_string()))?;
        link_preview(&mut linker).map_err(|e| LoadError::Engine(e.to_string()))?;
        #[cfg(feature = "wasi-nn")]
        wasmtime_wasi_nn::wit::add_to_linker(&mut linker, HostState::nn_view)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = config
            .cache_dir
            .as_ref()
            .map(|dir| CompiledCache::new(dir, &engine));
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| LoadError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Arc::new(WasmRuntime {
            engine,
            linker,
            state,
            schemas: config
                .schema_dir
                .as_deref()
                .map(|dir| Arc::new(SchemaDirectory::new(dir))),
            epoch_tick: config.epoch_tick,
            cache,
            ticker,
        }))
    }

    /// Reads and compiles the component at `path` (or takes it from the cache); its size.
    pub(crate) fn compile(
        &self,
        path: &Path,
    ) -> Result<(wasmtime::component::Component, u64), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(reason) = not_a_component(&bytes) {
            return Err(LoadError::Compile {
                path: path.to_path_buf(),
                reason: reason.into(),
            });
        }
        let component = match &self.cache {
            Some(cache) => cache.component(&self.engine, &bytes),
            None => wasmtime::component::Component::new(&self.engine, &bytes),
        }
        .map_err(|e| LoadError::Compile {
            path: path.to_path_buf(),
            reason: format!("{e:#}"),
        })?;
        Ok((component, bytes.len() as u64))
    }
}

/// Why `bytes` cannot be a component, when that is plain from their first bytes: an empty file
/// or a core WebAssembly module (a component's header has version 0x0d, layer 1).
fn not_a_component(bytes: &[u8]) -> Option<&'static str> {
    const CORE_MODULE: [u8; 8] = [0, b'a', b's', b'm', 1, 0, 0, 0];
    if bytes.is_empty() {
        return Some("the file is empty");
    }
    if bytes.starts_with(&CORE_MODULE) {
        return Some("a core WebAssembly module, not a component: build it as a component (cargo-component, componentize-py, or `wasm-tools component new`)");
    }
    None
}

/// Serves the preview package's imports (`tinykube-graph:processor@1.0.0`) with the current
/// package's host implementation: the interfaces have the same shapes, and wasmtime checks
/// component types structurally.
fn link_preview(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use super::bindings::current::imports::wasm_graph::processor::{
        logger, metrics, state_store, types,
    };
    types::add_to_linker_instance::<_, HasSelf<HostState>>(
        &mut linker.instance("tinykube-graph:processor/types@1.0.0")?,
        |state| state,
    )?;
    logger::add_to_linker_instance::<_, HasSelf<HostState>>(
        &mut linker.instance("tinykube-graph:processor/logger@1.0.0")?,
        |state| state,
    )?;
    metrics::add_to_linker_instance::<_, HasSelf<HostState>>(
        &mut linker.instance("tinykube-graph:processor/metrics@1.0.0")?,
        |state| state,
    )?;
    state_store::add_to_linker_instance::<_, HasSelf<HostState>>(
        &mut linker.instance("tinykube-graph:processor/state-store@1.0.0")?,
        |state| state,
    )?;
    Ok(())
}

fn engine_config(config: &RuntimeConfig, pooling: bool) -> Config {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true);
    wasm.epoch_interruption(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.max_instances);
        pool.total_core_instances(config.max_instances * 8);
        pool.total_memories(config.max_instances * 2);
        pool.total_tables(config.max_instances * 4);
        pool.max_memory_size(config.max_memory_bytes as usize);
        pool.max_core_instances_per_component(32);
        pool.max_memories_per_component(4);
        pool.max_tables_per_component(8);
        pool.table_elements(64 * 1024);
        pool.max_component_instance_size(1 << 20);
        pool.max_core_instance_size(1 << 20);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    wasm
}
