//! The WebAssembly operator host: components built against `wit/` run here, one instance per
//! graph node, with the host APIs of the operator interface, bounded in time and memory.
//!
//! - [`runtime`]: the engine, its linker and the compiled-component cache;
//! - [`module`]: a loaded component and what it exports (the interfaces and packages it may
//!   export are in `interface.rs`);
//! - [`instance`] and the operator calls: one node's Store, `init`, `process`, rebuild after a
//!   trap;
//! - [`host`]: the host APIs (buffers, logger, metrics, state store) and the [`bindings`]
//!   generated from `wit/` that they implement;
//! - [`limits`]: time and memory bounds;
//! - [`schema`]: schemas handed to modules, and the schema directory behind `schema-registry`;
//! - [`metrics`]: the metrics modules define, kept per graph node.

mod cache;
mod epoch;
pub mod error;
mod export;
pub mod host;
pub mod instance;
mod interface;
pub mod limits;
pub mod metrics;
pub mod module;
pub mod nn;
pub mod operators;
pub mod runtime;
pub mod schema;

pub use error::{Fault, LoadError, OperatorError};
pub use host::bindings;
pub use instance::OperatorInstance;
pub use limits::ModuleLimits;
pub use module::{Inspection, OperatorKind, OperatorModule, Package};
pub use runtime::{RuntimeConfig, WasmRuntime};
