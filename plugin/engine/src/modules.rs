//! Loading the modules a graph's nodes reference.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_graph::{Graph, GraphErrors, ModuleSources, OperationType};
use weir_wasm::{nn, OperatorKind, OperatorModule, WasmRuntime};

/// Resolves every module reference of `graph` in `sources`, loads each module file once
/// (several nodes often share one), and checks it exports what its node needs. Answers the
/// module of each node that runs one, by node index.
pub fn load_modules(
    graph: &Graph,
    sources: &ModuleSources,
    runtime: &Arc<WasmRuntime>,
) -> Result<HashMap<usize, Arc<OperatorModule>>, GraphErrors> {
    let mut loaded: HashMap<PathBuf, Result<Arc<OperatorModule>, String>> = HashMap::new();
    let mut load = |path: &Path| {
        loaded
            .entry(path.to_path_buf())
            .or_insert_with(|| runtime.load(path).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
    };
    let resolved = graph.check_modules(sources, |path| usable_operators(graph, &*load(path)?))?;
    Ok(resolved
        .into_iter()
        .filter_map(|(index, path)| Some((index, load(&path).ok()?)))
        .collect())
}

/// The operator interfaces `module` offers `graph`'s nodes: all it exports, unless it imports
/// a host feature the graph does not request.
pub fn usable_operators(
    graph: &Graph,
    module: &OperatorModule,
) -> Result<Vec<OperationType>, String> {
    // Graph definitions are validated against their own crate's feature; the host's is the one
    // that decides.
    if !nn::AVAILABLE && graph.features.iter().any(|f| f == nn::FEATURE) {
        return Err(format!(
            "graph `{}` requests the `{}` host feature for module {}, which this weir's WebAssembly host was built without",
            graph.name,
            nn::FEATURE,
            module.path().display()
        ));
    }
    if let Some(import) = nn::needs_feature(module.imports()) {
        if !graph.features.iter().any(|f| f == nn::FEATURE) {
            return Err(format!(
                "module {} imports `{import}`, the `{}` host feature, which the graph does not request: add `features: [{{name: {}}}]` to its moduleRequirements",
                module.path().display(),
                nn::FEATURE,
                nn::FEATURE
            ));
        }
    }
    Ok(module
        .operators()
        .iter()
        .map(|&k| operation_type(k))
        .collect())
}

/// The operation a module's operator interface serves.
pub fn operation_type(kind: OperatorKind) -> OperationType {
    match kind {
        OperatorKind::Map => OperationType::Map,
        OperatorKind::Filter => OperationType::Filter,
        OperatorKind::Branch => OperationType::Branch,
        OperatorKind::Accumulate => OperationType::Accumulate,
        OperatorKind::Delay => OperationType::Delay,
    }
}
