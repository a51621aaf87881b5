//! The host side of the operator interface: one [`HostState`] per module instance (Store),
//! implementing every imported interface.
//!
//! One file per concern: [`buffer`] (the `types.buffer` resource and conversion of items into
//! and out of a module, with `node_ids` keeping timestamps' node ids), `logger`, `metrics`,
//! `state_store`, `schema_registry` (answered from the schema directory), and `unavailable`
//! (the command invoker, linked but not yet served).

pub mod bindings;
pub mod buffer;
mod logger;
mod metrics;
mod node_ids;
mod schema_registry;
pub(crate) mod state_store;
mod unavailable;

pub use buffer::HostBuffer;
pub use unavailable::{CommandInvoker, RequestBuilder};

use super::limits::MemoryLimiter;
use crate::metrics::NodeMetrics;
use crate::schema::SchemaDirectory;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use weir_state::StateStore;

/// Which node of which module an instance serves: named in logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The module's name (its file name without `.wasm`).
    pub module: Arc<str>,
    /// The graph node's name.
    pub node: Arc<str>,
}

/// Everything a module instance's host calls reach: the Store's data.
pub struct HostState {
    pub(crate) identity: NodeIdentity,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    /// The node id of the timestamps crossing in and out, kept to spare allocations.
    pub(crate) node_ids: node_ids::NodeIds,
    wasi: WasiCtx,
    metrics: Arc<NodeMetrics>,
    state: Arc<StateStore>,
    schemas: Option<Arc<SchemaDirectory>>,
    /// `wasi:nn`, made on first use.
    #[cfg(feature = "wasi-nn")]
    nn: Option<wasmtime_wasi_nn::wit::WasiNnCtx>,
}

impl HostState {
    /// State for one instance: WASI with no files, no network and no inherited streams.
    pub(crate) fn new(
        identity: NodeIdentity,
        limiter: MemoryLimiter,
        metrics: Arc<NodeMetrics>,
        state: Arc<StateStore>,
        schemas: Option<Arc<SchemaDirectory>>,
    ) -> HostState {
        HostState {
            identity,
            table: ResourceTable::new(),
            limiter,
            node_ids: node_ids::NodeIds::default(),
            wasi: WasiCtx::builder().build(),
            metrics,
            state,
            schemas,
            #[cfg(feature = "wasi-nn")]
            nn: None,
        }
    }

    /// The instance's view of `wasi:nn`.
    #[cfg(feature = "wasi-nn")]
    pub(crate) fn nn_view(&mut self) -> wasmtime_wasi_nn::wit::WasiNnView<'_> {
        let context = self.nn.get_or_insert_with(super::nn::context);
        wasmtime_wasi_nn::wit::WasiNnView::new(&mut self.table, context)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
