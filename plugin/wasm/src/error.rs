//! Errors of loading modules and of calling them.

use std::path::PathBuf;
use std::time::Duration;

/// Why a module could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("module {}: cannot read: {source}", path.display())]
    Read {
        /// The module file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component wasmtime can compile.
    #[error("module {}: not a loadable WebAssembly component: {reason}", path.display())]
    Compile {
        /// The module file.
        path: PathBuf,
        /// wasmtime's reason.
        reason: String,
    },
    /// The component exports none of the operator interfaces.
    #[error(
        "module {}: exports no operator interface (expected wasm-graph:processor/{{map,filter,branch,accumulate,delay}}@1.1.0 or tinykube-graph:processor/...@1.0.0); it exports: {exports}",
        path.display()
    )]
    NoOperator {
        /// The module file.
        path: PathBuf,
        /// What it exports instead.
        exports: String,
    },
    /// The component imports something this host does not provide.
    #[error("module {}: imports something this host cannot provide: {reason}", path.display())]
    UnsatisfiedImport {
        /// The module file.
        path: PathBuf,
        /// wasmtime's reason, naming the import.
        reason: String,
    },
    /// The wasm engine could not be set up.
    #[error("the WebAssembly engine cannot start: {0}")]
    Engine(String),
}

/// A failed call into a module, naming the module and the graph node.
#[derive(Debug, thiserror::Error)]
#[error("module {module}, node {node}: {fault}")]
pub struct OperatorError {
    /// The module's name.
    pub module: String,
    /// The graph node's name.
    pub node: String,
    /// What went wrong.
    pub fault: Fault,
}

impl OperatorError {
    /// Whether the instance is gone (trap, time or memory limit) and will be rebuilt.
    pub fn is_trap(&self) -> bool {
        matches!(
            self.fault,
            Fault::Trap { .. } | Fault::Timeout { .. } | Fault::MemoryLimit { .. }
        )
    }
}

/// What went wrong in a call.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// The module returned `err(error)`.
    #[error("{operation} returned an error: {message}")]
    Returned {
        /// `init` or `process`.
        operation: &'static str,
        /// The module's message.
        message: String,
    },
    /// The module trapped (a panic, an unreachable, a bad memory access...).
    #[error("trap in {operation}: {message}")]
    Trap {
        /// `init` or `process`.
        operation: &'static str,
        /// The trap and, where wasmtime has one, the wasm backtrace.
        message: String,
    },
    /// The call ran past the module's time limit and was interrupted.
    #[error("{operation} ran past its time limit of {limit:?} and was interrupted")]
    Timeout {
        /// `init` or `process`.
        operation: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The instance tried to grow its memory past the module's limit.
    #[error("{operation} hit the memory limit: {reached}")]
    MemoryLimit {
        /// `init` or `process`.
        operation: &'static str,
        /// The limit and the request.
        reached: super::limits::MemoryLimitReached,
    },
    /// `init` returned false.
    #[error("init refused its configuration (returned false)")]
    InitRejected,
    /// The node's operation needs an interface the module does not export.
    #[error("the module does not export the `{0}` interface")]
    NotExported(&'static str),
    /// A new instance could not be created.
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
}
