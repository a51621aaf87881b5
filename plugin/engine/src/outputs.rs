//! Where a graph's results and failures go.

use weir_model::data::DataModel;

/// An item a module failed on, with the reason.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The node whose module failed.
    pub node: String,
    /// The module it runs.
    pub module: String,
    /// What went wrong (the module's error message, or the trap).
    pub reason: String,
    /// The item, as it reached the node.
    pub item: DataModel,
}

/// Receives what leaves a graph. Called from the graph's worker threads: results from worker 0
/// only, in deterministic order; dead letters from any worker as they happen.
pub trait Outputs: Send + Sync + 'static {
    /// A result that reached the sink. Returns `false` when it could not be delivered (the graph
    /// counts it as lost).
    fn result(&self, item: DataModel) -> bool;

    /// An item a module failed on.
    fn dead_letter(&self, letter: DeadLetter);
}
