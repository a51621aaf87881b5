//! `weir graph check FILE [--modules DIR]... [--set KEY=VALUE]... [--config weir.yaml]
//! [--plain-http]`: validates a graph definition (a file or `oci://<reference>`) and prints what
//! would run.

use crate::cli::RegistryArgs;
use crate::registry::load_definition;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_engine as engine;
use weir_graph::OperationType;
use weir_oci::names_registry;
use weir_state::StateStore;
use weir_wasm::{RuntimeConfig, WasmRuntime};

/// Prints the graph, or every problem found; fails when there is one.
pub fn check(
    file: &Path,
    module_dirs: &[PathBuf],
    configuration: HashMap<String, String>,
    registry: &RegistryArgs,
) -> anyhow::Result<()> {
    let sources = registry.sources(module_dirs)?;
    let (graph, _) = load_definition(file, &configuration, &sources.registries)?;
    for warning in &graph.warnings {
        eprintln!("warning: {warning}");
    }
    let pulls_modules = graph
        .nodes
        .iter()
        .filter_map(|node| node.module.as_deref())
        .any(names_registry);
    let modules: HashMap<usize, PathBuf> = if sources.directories.is_empty() && !pulls_modules {
        HashMap::new()
    } else {
        let state = Arc::new(StateStore::in_memory("graph-check")?);
        let runtime = WasmRuntime::new(&RuntimeConfig::default(), state)?;
        // Several nodes often share a module: load each file once.
        let mut loaded: HashMap<PathBuf, Result<Vec<OperationType>, String>> = HashMap::new();
        let exports = |path: &Path| {
            loaded
                .entry(path.to_path_buf())
                .or_insert_with(|| {
                    let module = runtime.load(path).map_err(|e| e.to_string())?;
                    engine::usable_operators(&graph, &module)
                })
                .clone()
        };
        graph
            .check_modules(&sources, exports)?
            .into_iter()
            .collect()
    };
    println!(
        "graph {} {} ({})",
        graph.name,
        graph.version,
        file.display()
    );
    println!("nodes:");
    for (index, node) in graph.nodes.iter().enumerate() {
        let module = match (&node.module, modules.get(&index)) {
            (Some(reference), Some(path)) => format!(" {reference} -> {}", path.display()),
            (Some(reference), None) => format!(" {reference}"),
            (None, _) => String::new(),
        };
        println!("  {} [{}]{module}", node.name, node.kind.as_str());
        for parameter in &node.parameters {
            match &parameter.value {
                Some(value) => println!(
                    "      {} = {value:?} ({})",
                    parameter.name, parameter.origin
                ),
                None => println!("      {} unset", parameter.name),
            }
        }
    }
    println!("edges:");
    for edge in &graph.edges {
        let arm = match edge.arm {
            Some(true) => " [True]",
            Some(false) => " [False]",
            None => "",
        };
        println!(
            "  {}{arm} -> {}",
            graph.nodes[edge.from].name, graph.nodes[edge.to].name
        );
    }
    println!("graph is valid");
    Ok(())
}
