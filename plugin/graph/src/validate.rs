//! Checking a parsed definition whole, before anything runs. Every problem is collected, each
//! located at the key it concerns.

use super::definition::{GraphDefinition, OperationType};
use super::locate::Locations;
use super::{ApiVersion, Edge, Graph, GraphError, GraphErrors, Node, Parameter, ParameterOrigin};
use std::collections::HashMap;
use weir_model::module::WASI_NN;

struct Problems<'a> {
    file: &'a str,
    at: Locations,
    errors: Vec<GraphError>,
    warnings: Vec<GraphError>,
}

impl Problems<'_> {
    fn located(&self, path: &str, message: String) -> GraphError {
        let (line, column) = self.at.find(path);
        GraphError {
            file: self.file.to_string(),
            line,
            column,
            message: format!("{path}: {message}"),
        }
    }

    fn error(&mut self, path: &str, message: String) {
        let error = self.located(path, message);
        self.errors.push(error);
    }

    fn warn(&mut self, path: &str, message: String) {
        let warning = self.located(path, message);
        self.warnings.push(warning);
    }
}

pub(super) fn validate(
    text: &str,
    file: &str,
    configuration: &HashMap<String, String>,
) -> Result<Graph, GraphErrors> {
    let definition: GraphDefinition =
        weir_model::yaml::from_str(text, |offset| weir_model::yaml::line_column(text, offset))
            .map_err(|e| {
                GraphErrors(vec![GraphError {
                    file: file.to_string(),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                }])
            })?;
    let mut problems = Problems {
        file,
        at: Locations::index(text),
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let api = api_version(&definition, &mut problems);
    let index = node_index(&definition, &mut problems);
    check_modules_present(&definition, &mut problems);
    check_features(&definition, &mut problems);
    let edges = edges(&definition, &index, &mut problems);
    check_ends(&definition, &mut problems);
    if problems.errors.is_empty() {
        check_cycles(&definition, &edges, &mut problems);
    }
    if problems.errors.is_empty() {
        check_reachability(&definition, &edges, &mut problems);
    }
    check_branch_arms(&definition, &edges, &mut problems);
    let parameters = parameters(&definition, &index, configuration, &mut problems);
    if !problems.errors.is_empty() {
        return Err(GraphErrors(problems.errors));
    }
    let module_positions = definition
        .operations
        .iter()
        .enumerate()
        .filter(|(_, op)| op.module.is_some())
        .map(|(i, _)| (i, problems.at.find(&format!("operations[{i}].module"))))
        .collect();
    let mut parameters = parameters;
    let nodes = definition
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| Node {
            name: op.name.clone(),
            kind: op.operation_type,
            module: op.module.clone(),
            parameters: parameters.remove(&i).unwrap_or_default(),
        })
        .collect();
    Ok(Graph {
        name: definition.metadata.name,
        version: definition.metadata.version,
        api,
        nodes,
        edges,
        warnings: problems.warnings,
        file: file.to_string(),
        features: definition
            .module_requirements
            .features
            .iter()
            .map(|feature| feature.name.clone())
            .collect(),
        schemas: definition
            .schemas
            .iter()
            .map(super::definition::Schema::module_schema)
            .collect(),
        module_positions,
    })
}

fn api_version(definition: &GraphDefinition, problems: &mut Problems) -> ApiVersion {
    let requirements = &definition.module_requirements;
    match (
        requirements.api_version.as_str(),
        &requirements.runtime_version,
        &requirements.hostlib_version,
    ) {
        ("1.1.0", _, None) => ApiVersion::Current,
        ("0.2.0", _, _) | (_, None, Some(_)) => ApiVersion::Preview,
        (other, ..) => {
            problems.error(
                "moduleRequirements.apiVersion",
                format!("unsupported apiVersion `{other}`: expected \"1.1.0\" (or the preview's \"0.2.0\" with hostlibVersion)"),
            );
            ApiVersion::Current
        }
    }
}

/// Node name → index; duplicates are errors.
fn node_index<'d>(
    definition: &'d GraphDefinition,
    problems: &mut Problems,
) -> HashMap<&'d str, usize> {
    let mut index = HashMap::new();
    for (i, operation) in definition.operations.iter().enumerate() {
        if let Some(&first) = index.get(operation.name.as_str()) {
            let (line, _) = problems.at.find(&format!("operations[{first}].name"));
            problems.error(
                &format!("operations[{i}].name"),
                format!(
                    "duplicate node name `{}` (first used at line {line})",
                    operation.name
                ),
            );
        } else {
            index.insert(operation.name.as_str(), i);
        }
    }
    index
}

/// Host features: `wasi-nn` is served (when this build has it); others are not, and said so.
fn check_features(definition: &GraphDefinition, problems: &mut Problems) {
    for (i, feature) in definition.module_requirements.features.iter().enumerate() {
        let path = format!("moduleRequirements.features[{i}].name");
        match feature.name.as_str() {
            WASI_NN if cfg!(feature = "wasi-nn") => {}
            WASI_NN => problems.error(
                &path,
                "this weir was built without the `wasi-nn` feature: graphs needing wasi:nn cannot run"
                    .into(),
            ),
            other => problems.warn(
                &path,
                format!("host feature `{other}` is not provided by weir (it provides `wasi-nn`)"),
            ),
        }
    }
}

fn check_modules_present(definition: &GraphDefinition, problems: &mut Problems) {
    for (i, operation) in definition.operations.iter().enumerate() {
        let kind = operation.operation_type.as_str();
        match (&operation.module, operation.operation_type.needs_module()) {
            (None, true) => problems.error(
                &format!("operations[{i}]"),
                format!(
                    "operation `{}` of type {kind} needs a `module`",
                    operation.name
                ),
            ),
            (Some(_), false) => problems.error(
                &format!("operations[{i}].module"),
                format!(
                    "operation `{}` of type {kind} runs no module: remove `module`",
                    operation.name
                ),
            ),
            _ => {}
        }
    }
}

fn check_ends(definition: &GraphDefinition, problems: &mut Problems) {
    for (kind, name) in [
        (OperationType::Source, "source"),
        (OperationType::Sink, "sink"),
    ] {
        let count = definition
            .operations
            .iter()
            .filter(|op| op.operation_type == kind)
            .count();
        if count != 1 {
            problems.error(
                "operations",
                format!("a graph has exactly one {name} operation; this one has {count}"),
            );
        }
    }
}

fn edges(
    definition: &GraphDefinition,
    index: &HashMap<&str, usize>,
    problems: &mut Problems,
) -> Vec<Edge> {
    let mut edges = Vec::new();
    for (i, connection) in definition.connections.iter().enumerate() {
        let from = index.get(connection.from.name.as_str()).copied();
        let to = index.get(connection.to.name.as_str()).copied();
        if from.is_none() {
            problems.error(
                &format!("connections[{i}].from.name"),
                format!("unknown node `{}`", connection.from.name),
            );
        }
        if to.is_none() {
            problems.error(
                &format!("connections[{i}].to.name"),
                format!("unknown node `{}`", connection.to.name),
            );
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        let from_kind = definition.operations[from].operation_type;
        match (from_kind, connection.from.arm) {
            (OperationType::Branch, None) => problems.error(
                &format!("connections[{i}].from"),
                format!(
                    "an edge leaving branch `{}` needs an `arm` (\"True\" or \"False\")",
                    connection.from.name
                ),
            ),
            (kind, Some(_)) if kind != OperationType::Branch => problems.error(
                &format!("connections[{i}].from.arm"),
                format!(
                    "`{}` is a {}, not a branch: only edges leaving a branch have an arm",
                    connection.from.name,
                    kind.as_str()
                ),
            ),
            _ => {}
        }
        if from_kind == OperationType::Sink {
            problems.error(
                &format!("connections[{i}].from.name"),
                format!("no edge may leave the sink `{}`", connection.from.name),
            );
        }
        if definition.operations[to].operation_type == OperationType::Source {
            problems.error(
                &format!("connections[{i}].to.name"),
                format!("no edge may enter the source `{}`", connection.to.name),
            );
        }
        edges.push(Edge {
            from,
            to,
            arm: connection.from.arm,
        });
    }
    edges
}

/// A cycle is reported at the connection that closes it, with the path around it.
fn check_cycles(definition: &GraphDefinition, edges: &[Edge], problems: &mut Problems) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let n = definition.operations.len();
    let mut marks = vec![Mark::New; n];
    let mut trail: Vec<(usize, usize)> = Vec::new(); // (node, connection that entered it)
    for start in 0..n {
        if marks[start] != Mark::New {
            continue;
        }
        // Iterative depth-first search: (node, next edge to look at).
        let mut stack = vec![(start, 0usize)];
        marks[start] = Mark::Open;
        trail.push((start, usize::MAX));
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let outgoing = edges
                .iter()
                .enumerate()
                .filter(|(_, e)| e.from == node)
                .nth(*next);
            *next += 1;
            match outgoing {
                Some((connection, edge)) => match marks[edge.to] {
                    Mark::New => {
                        marks[edge.to] = Mark::Open;
                        trail.push((edge.to, connection));
                        stack.push((edge.to, 0));
                    }
                    Mark::Open => {
                        let from = trail.iter().position(|(n, _)| *n == edge.to).unwrap_or(0);
                        let names: Vec<&str> = trail[from..]
                            .iter()
                            .map(|(n, _)| definition.operations[*n].name.as_str())
                            .chain(std::iter::once(
                                definition.operations[edge.to].name.as_str(),
                            ))
                            .collect();
                        problems.error(
                            &format!("connections[{connection}]"),
                            format!("this connection closes a cycle: {}", names.join(" → ")),
                        );
                        return;
                    }
                    Mark::Done => {}
                },
                None => {
                    marks[node] = Mark::Done;
                    stack.pop();
                    trail.pop();
                }
            }
        }
    }
}

fn check_reachability(definition: &GraphDefinition, edges: &[Edge], problems: &mut Problems) {
    let n = definition.operations.len();
    let find = |kind| {
        definition
            .operations
            .iter()
            .position(|op| op.operation_type == kind)
    };
    let (Some(source), Some(sink)) = (find(OperationType::Source), find(OperationType::Sink))
    else {
        return;
    };
    let reach = |start: usize, forward: bool| {
        let mut seen = vec![false; n];
        let mut todo = vec![start];
        seen[start] = true;
        while let Some(node) = todo.pop() {
            for edge in edges {
                let (a, b) = if forward {
                    (edge.from, edge.to)
                } else {
                    (edge.to, edge.from)
                };
                if a == node && !seen[b] {
                    seen[b] = true;
                    todo.push(b);
                }
            }
        }
        seen
    };
    let from_source = reach(source, true);
    let to_sink = reach(sink, false);
    for (i, operation) in definition.operations.iter().enumerate() {
        if !from_source[i] {
            problems.error(
                &format!("operations[{i}].name"),
                format!(
                    "node `{}` cannot be reached from the source",
                    operation.name
                ),
            );
        } else if !to_sink[i] {
            problems.error(
                &format!("operations[{i}].name"),
                format!("node `{}` does not lead to the sink", operation.name),
            );
        }
    }
}

fn check_branch_arms(definition: &GraphDefinition, edges: &[Edge], problems: &mut Problems) {
    for (i, operation) in definition.operations.iter().enumerate() {
        if operation.operation_type != OperationType::Branch {
            continue;
        }
        for (arm, label) in [(false, "False"), (true, "True")] {
            if !edges.iter().any(|e| e.from == i && e.arm == Some(arm)) {
                problems.warn(
                    &format!("operations[{i}].name"),
                    format!(
                        "branch `{}` has no edge for arm \"{label}\": its items are dropped and counted",
                        operation.name
                    ),
                );
            }
        }
    }
}

/// Each node's declared parameters, resolved: the graph's configuration by key, then by name,
/// else the default. A required parameter without a value is an error.
fn parameters(
    definition: &GraphDefinition,
    index: &HashMap<&str, usize>,
    configuration: &HashMap<String, String>,
    problems: &mut Problems,
) -> HashMap<usize, Vec<Parameter>> {
    let mut resolved: HashMap<usize, Vec<Parameter>> = HashMap::new();
    for (i, declared) in definition.module_configurations.iter().enumerate() {
        let Some(&node) = index.get(declared.name.as_str()) else {
            problems.error(
                &format!("moduleConfigurations[{i}].name"),
                format!("unknown node `{}`", declared.name),
            );
            continue;
        };
        for (key, parameter) in &declared.parameters {
            let (value, origin) = if let Some(v) = configuration.get(key) {
                (Some(v.clone()), ParameterOrigin::ConfigurationKey)
            } else if let Some(v) = configuration.get(&parameter.name) {
                (Some(v.clone()), ParameterOrigin::ConfigurationName)
            } else if let Some(v) = &parameter.default {
                (Some(v.clone()), ParameterOrigin::Default)
            } else {
                (None, ParameterOrigin::Unset)
            };
            if value.is_none() && parameter.required {
                problems.error(
                    &format!("moduleConfigurations[{i}].parameters.{key}"),
                    format!(
                        "graph `{}`, node `{}`: required parameter `{key}` has no value (give it in the graph's configuration)",
                        definition.metadata.name, declared.name
                    ),
                );
            }
            resolved.entry(node).or_default().push(Parameter {
                key: key.clone(),
                name: parameter.name.clone(),
                value,
                origin,
            });
        }
    }
    resolved
}
