//! Graph definitions: parsing the YAML format, validating it before anything runs, resolving
//! parameters and module references.
//!
//! [`Graph::parse`] reads a definition and checks it whole, reporting every problem with its
//! file, line and column: unknown keys, duplicate or unknown node names, unknown operation
//! types, a missing `module`, arms on edges that do not leave a branch, cycles, nodes not
//! reachable from the source or not leading to the sink, required parameters without a value.
//! [`Graph::check_modules`] then resolves module references against module directories and
//! registries and checks that each module exports the interface its node needs.

pub mod definition;
mod locate;
mod modules;
pub mod options;
mod validate;

pub use definition::{GraphDefinition, OperationType};
pub use modules::{resolve_module, ModuleSources};

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use weir_model::module::{InitConfiguration, ModuleSchema};

/// One problem in a graph definition, located.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct GraphError {
    /// The definition file.
    pub file: String,
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in a definition (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphErrors(pub Vec<GraphError>);

impl fmt::Display for GraphErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, error) in self.0.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphErrors {}

/// Which operator package a graph's modules are built against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    /// `apiVersion: 1.1.0`, `runtimeVersion: 1.1.0`.
    Current,
    /// `apiVersion: 0.2.0`, `hostlibVersion: 0.2.0` (preview).
    Preview,
}

/// A validated graph.
#[derive(Debug, Clone)]
pub struct Graph {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.version`.
    pub version: String,
    /// The interface version its modules need.
    pub api: ApiVersion,
    /// The nodes, in definition order.
    pub nodes: Vec<Node>,
    /// The edges, in definition order.
    pub edges: Vec<Edge>,
    /// Problems that do not stop the graph (an unwired branch arm).
    pub warnings: Vec<GraphError>,
    /// The definition file.
    pub file: String,
    /// The host features it requests (`moduleRequirements.features`), by name.
    pub features: Vec<String>,
    /// The schemas every node's `init` receives: the definition's `schemas:` section, then
    /// those added with [`Graph::add_schema`].
    pub schemas: Vec<ModuleSchema>,
    /// Where each node's `module` key is, for errors found when modules are resolved.
    module_positions: HashMap<usize, (usize, usize)>,
}

/// A node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its unique name.
    pub name: String,
    /// What it does.
    pub kind: OperationType,
    /// The module reference, for nodes that run one.
    pub module: Option<String>,
    /// Its declared parameters, resolved.
    pub parameters: Vec<Parameter>,
}

/// A declared parameter and the value it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The key it is declared under.
    pub key: String,
    /// The name the module reads it by.
    pub name: String,
    /// The value passed to `init`, if any.
    pub value: Option<String>,
    /// Where the value came from.
    pub origin: ParameterOrigin,
}

/// Where a parameter's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterOrigin {
    /// The graph's configuration, by the parameter's key.
    ConfigurationKey,
    /// The graph's configuration, by the parameter's name.
    ConfigurationName,
    /// The declaration's `default`.
    Default,
    /// Nowhere: the module gets no value for it.
    Unset,
}

impl fmt::Display for ParameterOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParameterOrigin::ConfigurationKey | ParameterOrigin::ConfigurationName => {
                "configuration"
            }
            ParameterOrigin::Default => "default",
            ParameterOrigin::Unset => "unset",
        })
    }
}

/// An edge between two nodes (indices into [`Graph::nodes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// The node it leaves.
    pub from: usize,
    /// The node it reaches.
    pub to: usize,
    /// For an edge leaving a branch: `false` for the arm "False", `true` for "True".
    pub arm: Option<bool>,
}

impl Graph {
    /// Parses and validates the definition `text` (named `file` in errors), resolving declared
    /// parameters from `configuration`, the graph's key/value configuration.
    pub fn parse(
        text: &str,
        file: &str,
        configuration: &HashMap<String, String>,
    ) -> Result<Graph, GraphErrors> {
        validate::validate(text, file, configuration)
    }

    /// Reads and validates the definition at `path`.
    pub fn load(
        path: &std::path::Path,
        configuration: &HashMap<String, String>,
    ) -> Result<Graph, GraphErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            GraphErrors(vec![GraphError {
                file: file.clone(),
                line: 1,
                column: 1,
                message: format!("cannot read graph definition: {e}"),
            }])
        })?;
        Self::parse(&text, &file, configuration)
    }

    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Gives every node's `init` `schema` too, after those it already receives.
    pub fn add_schema(&mut self, schema: ModuleSchema) {
        self.schemas.push(schema);
    }

    /// What node `index`'s `init` receives: `(name, value)` for each parameter that has a
    /// value, and the graph's schemas.
    pub fn init_configuration(&self, index: usize) -> InitConfiguration {
        InitConfiguration {
            properties: self.nodes[index]
                .parameters
                .iter()
                .filter_map(|p| p.value.clone().map(|v| (p.name.clone(), v)))
                .collect(),
            schemas: self.schemas.clone(),
        }
    }

    /// Resolves each node's module reference in `sources` (each distinct reference once) and
    /// checks with `exports` that the module exports the interface its operation needs.
    /// `exports(path)` answers the module's operator interfaces, or why it cannot be loaded.
    pub fn check_modules(
        &self,
        sources: &ModuleSources,
        mut exports: impl FnMut(&std::path::Path) -> Result<Vec<OperationType>, String>,
    ) -> Result<Vec<(usize, PathBuf)>, GraphErrors> {
        let mut resolved = Vec::new();
        let mut errors = Vec::new();
        let mut found: HashMap<&str, Result<PathBuf, String>> = HashMap::new();
        for (index, node) in self.nodes.iter().enumerate() {
            let Some(reference) = &node.module else {
                continue;
            };
            let (line, column) = self.module_positions.get(&index).copied().unwrap_or((1, 1));
            let error = |message: String| GraphError {
                file: self.file.clone(),
                line,
                column,
                message: format!("operations[{index}].module: {message}"),
            };
            let path = match found
                .entry(reference)
                .or_insert_with(|| sources.resolve(reference))
                .clone()
            {
                Ok(path) => path,
                Err(message) => {
                    errors.push(error(format!("node `{}`: {message}", node.name)));
                    continue;
                }
            };
            match exports(&path) {
                Ok(kinds) if kinds.contains(&node.kind) => resolved.push((index, path)),
                Ok(kinds) => errors.push(error(format!(
                    "node `{}`: module {} does not export the `{}` interface its operation needs (it exports: {})",
                    node.name,
                    path.display(),
                    node.kind.as_str(),
                    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
                ))),
                Err(reason) => errors.push(error(format!("node `{}`: {reason}", node.name))),
            }
        }
        if errors.is_empty() {
            Ok(resolved)
        } else {
            Err(GraphErrors(errors))
        }
    }
}
