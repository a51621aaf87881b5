//! `logger` → `tracing`, with the module and node as fields.

use super::HostState;
use crate::bindings::current::imports::wasm_graph::processor::logger::{Host, Level};

impl Host for HostState {
    fn log(&mut self, level: Level, context: String, message: String) -> wasmtime::Result<()> {
        let (module, node) = (&*self.identity.module, &*self.identity.node);
        match level {
            Level::Trace => {
                tracing::trace!(target: "weir::module", module, node, context, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: "weir::module", module, node, context, "{message}")
            }
            Level::Info => {
                tracing::info!(target: "weir::module", module, node, context, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: "weir::module", module, node, context, "{message}")
            }
            Level::Error => {
                tracing::error!(target: "weir::module", module, node, context, "{message}")
            }
            Level::Critical => {
                tracing::error!(target: "weir::module", module, node, context, critical = true, "{message}")
            }
        }
        Ok(())
    }
}
