//! Graph definitions: the example graphs validate, and every validation error has its message,
//! located at file:line:column.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use weir_graph::{ApiVersion, Graph, ModuleSources, OperationType, ParameterOrigin};
use weir_wasm::schema::ModuleSchema;

const HEAD: &str = "metadata:\n  name: g\n  version: \"1\"\nmoduleRequirements:\n  apiVersion: \"1.1.0\"\n  runtimeVersion: \"1.1.0\"\n";

/// The errors for `body` (after the common head), as `line:column: message` strings.
fn errors(body: &str) -> Vec<String> {
    errors_with(body, &HashMap::new())
}

fn errors_with(body: &str, configuration: &HashMap<String, String>) -> Vec<String> {
    match Graph::parse(&format!("{HEAD}{body}"), "g.yaml", configuration) {
        Ok(_) => panic!("accepted:\n{body}"),
        Err(errors) => errors.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn assert_error(body: &str, expected: &str) {
    let expected = format!("g.yaml:{expected}");
    let errors = errors(body);
    assert!(
        errors.contains(&expected),
        "expected\n  {expected}\ngot\n  {}",
        errors.join("\n  ")
    );
}

const OPS: &str = "operations:\n  - {operationType: source, name: in}\n  - {operationType: map, name: m, module: \"temperature:1\"}\n  - {operationType: sink, name: out}\n";

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config/graphs")
        .join(name)
}

#[test]
fn the_example_graphs_validate() {
    let graph = Graph::load(&example("temperature-map.yaml"), &HashMap::new()).unwrap();
    assert_eq!(graph.api, ApiVersion::Current);
    assert_eq!(graph.nodes.len(), 3);
    let complex = Graph::load(
        &example("windowed-statistics.yaml"),
        &HashMap::from([("window_ms".to_string(), "5000".to_string())]),
    )
    .unwrap();
    assert!(complex.warnings.is_empty(), "{:?}", complex.warnings);
    let delay = complex
        .nodes
        .iter()
        .position(|n| n.kind == OperationType::Delay)
        .unwrap();
    assert_eq!(
        complex.init_configuration(delay).properties,
        vec![("window_ms".into(), "5000".into())]
    );
    assert_eq!(
        complex.nodes[delay].parameters[0].origin,
        ParameterOrigin::ConfigurationKey
    );
    let filter = complex
        .nodes
        .iter()
        .position(|n| n.kind == OperationType::Filter)
        .unwrap();
    assert_eq!(
        complex.init_configuration(filter).properties,
        vec![
            ("temperature_lower_bound".into(), "-40".into()),
            ("temperature_upper_bound".into(), "125".into())
        ]
    );
}

#[test]
fn unknown_keys() {
    assert_error(
        &format!("{OPS}connections: []\nextra: 1\n"),
        "12:1: extra: unknown field `extra`, expected one of `metadata`, `moduleRequirements`, `moduleConfigurations`, `operations`, `connections`, `schemas`",
    );
    assert_error(
        "operations:\n  - {operationType: source, name: in, modul: x}\nconnections: []\n",
        "8:39: operations[0].modul: unknown field `modul`, expected one of `operationType`, `name`, `module`",
    );
}

#[test]
fn unknown_operation_type() {
    assert_error(
        "operations:\n  - {operationType: window, name: w}\nconnections: []\n",
        "8:5: operations[0].operationType: unknown operation type `window`, expected one of source, map, filter, branch, concatenate, accumulate, delay, sink",
    );
}

#[test]
fn duplicate_node_names() {
    assert_error(
        "operations:\n  - {operationType: source, name: in}\n  - {operationType: sink, name: in}\nconnections: []\n",
        "9:33: operations[1].name: duplicate node name `in` (first used at line 8)",
    );
}

#[test]
fn unknown_node_names_in_connections() {
    let errors = errors(&format!(
        "{OPS}connections:\n  - {{from: {{name: in}}, to: {{name: nowhere}}}}\n  - {{from: {{name: m}}, to: {{name: out}}}}\n"
    ));
    assert!(
        errors
            .contains(&"g.yaml:12:35: connections[0].to.name: unknown node `nowhere`".to_string()),
        "{errors:?}"
    );
}

#[test]
fn missing_or_superfluous_module() {
    assert_error(
        "operations:\n  - {operationType: source, name: in}\n  - {operationType: map, name: m}\n  - {operationType: sink, name: out}\nconnections: []\n",
        "9:6: operations[1]: operation `m` of type map needs a `module`",
    );
    assert_error(
        "operations:\n  - {operationType: source, name: in, module: \"x:1\"}\n  - {operationType: sink, name: out}\nconnections: []\n",
        "8:47: operations[0].module: operation `in` of type source runs no module: remove `module`",
    );
}

#[test]
fn arms_only_on_edges_leaving_a_branch() {
    assert_error(
        &format!(
            "{OPS}connections:\n  - {{from: {{name: in, arm: \"True\"}}, to: {{name: m}}}}\n  - {{from: {{name: m}}, to: {{name: out}}}}\n"
        ),
        "12:28: connections[0].from.arm: `in` is a source, not a branch: only edges leaving a branch have an arm",
    );
    assert_error(
        "operations:\n  - {operationType: source, name: in}\n  - {operationType: branch, name: b, module: \"t:1\"}\n  - {operationType: sink, name: out}\nconnections:\n  - {from: {name: in}, to: {name: b}}\n  - {from: {name: b}, to: {name: out}}\n",
        "13:13: connections[1].from: an edge leaving branch `b` needs an `arm` (\"True\" or \"False\")",
    );
    assert_error(
        "operations:\n  - {operationType: source, name: in}\n  - {operationType: branch, name: b, module: \"t:1\"}\n  - {operationType: sink, name: out}\nconnections:\n  - {from: {name: in}, to: {name: b}}\n  - {from: {name: b, arm: maybe}, to: {name: out}}\n",
        "13:12: connections[1].from.arm: unknown arm `maybe`, expected \"True\" or \"False\"",
    );
}

#[test]
fn yaml_booleans_are_arms_and_an_unwired_arm_is_a_warning() {
    let text = format!(
        "{HEAD}operations:\n  - {{operationType: source, name: in}}\n  - {{operationType: branch, name: b, module: \"t:1\"}}\n  - {{operationType: sink, name: out}}\nconnections:\n  - {{from: {{name: in}}, to: {{name: b}}}}\n  - {{from: {{name: b, arm: true}}, to: {{name: out}}}}\n"
    );
    let graph = Graph::parse(&text, "g.yaml", &HashMap::new()).unwrap();
    assert_eq!(graph.edges[1].arm, Some(true));
    let warnings: Vec<String> = graph.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        vec!["g.yaml:9:35: operations[1].name: branch `b` has no edge for arm \"False\": its items are dropped and counted"]
    );
}

#[test]
fn cycles() {
    assert_error(
        "operations:\n  - {operationType: source, name: in}\n  - {operationType: map, name: a, module: \"t:1\"}\n  - {operationType: map, name: b, module: \"t:1\"}\n  - {operationType: sink, name: out}\nconnections:\n  - {from: {name: in}, to: {name: a}}\n  - {from: {name: a}, to: {name: b}}\n  - {from: {name: b}, to: {name: a}}\n  - {from: {name: b}, to: {name: out}}\n",
        "15:6: connections[2]: this connection closes a cycle: a → b → a",
    );
}

#[test]
fn unreachable_and_dead_end_nodes() {
    let errors = errors(
        "operations:\n  - {operationType: source, name: in}\n  - {operationType: map, name: lost, module: \"t:1\"}\n  - {operationType: map, name: dead, module: \"t:1\"}\n  - {operationType: sink, name: out}\nconnections:\n  - {from: {name: in}, to: {name: out}}\n  - {from: {name: in}, to: {name: dead}}\n",
    );
    assert_eq!(
        errors,
        vec![
            "g.yaml:9:32: operations[1].name: node `lost` cannot be reached from the source",
            "g.yaml:10:32: operations[2].name: node `dead` does not lead to the sink",
        ]
    );
}

#[test]
fn exactly_one_source_and_sink() {
    assert_error(
        "operations:\n  - {operationType: sink, name: out}\nconnections: []\n",
        "8:3: operations: a graph has exactly one source operation; this one has 0",
    );
}

#[test]
fn required_parameter_without_a_value() {
    let body = format!(
        "moduleConfigurations:\n  - name: m\n    parameters:\n      threshold:\n        name: threshold\n        required: true\n{OPS}connections:\n  - {{from: {{name: in}}, to: {{name: m}}}}\n  - {{from: {{name: m}}, to: {{name: out}}}}\n"
    );
    assert_error(
        &body,
        "11:9: moduleConfigurations[0].parameters.threshold: graph `g`, node `m`: required parameter `threshold` has no value (give it in the graph's configuration)",
    );
    let given = HashMap::from([("threshold".to_string(), "3".to_string())]);
    let graph = Graph::parse(&format!("{HEAD}{body}"), "g.yaml", &given).unwrap();
    assert_eq!(
        graph.init_configuration(1).properties,
        vec![("threshold".into(), "3".into())]
    );
}

#[test]
fn module_configuration_for_an_unknown_node() {
    assert_error(
        &format!("moduleConfigurations:\n  - name: ghost\n{OPS}connections:\n  - {{from: {{name: in}}, to: {{name: m}}}}\n  - {{from: {{name: m}}, to: {{name: out}}}}\n"),
        "8:11: moduleConfigurations[0].name: unknown node `ghost`",
    );
}

#[test]
fn the_preview_format_is_accepted() {
    let text = format!(
        "metadata:\n  name: g\n  version: \"1\"\nmoduleRequirements:\n  apiVersion: \"0.2.0\"\n  hostlibVersion: \"0.2.0\"\n{OPS}connections:\n  - {{from: {{name: in}}, to: {{name: m}}}}\n  - {{from: {{name: m}}, to: {{name: out}}}}\n"
    );
    assert_eq!(
        Graph::parse(&text, "g.yaml", &HashMap::new()).unwrap().api,
        ApiVersion::Preview
    );
}

#[test]
fn modules_must_exist_and_export_the_needed_interface() {
    let dirs = ModuleSources::local(vec![common::module_path("window")
        .parent()
        .unwrap()
        .to_path_buf()]);
    let exports = |path: &std::path::Path| {
        let module = common::runtime().load(path).map_err(|e| e.to_string())?;
        Ok(module
            .operators()
            .iter()
            .map(|&k| weir_engine::operation_type(k))
            .collect())
    };
    let complex = Graph::load(&example("windowed-statistics.yaml"), &HashMap::new()).unwrap();
    assert_eq!(complex.check_modules(&dirs, exports).unwrap().len(), 6);

    let wrong = format!(
        "{HEAD}operations:\n  - {{operationType: source, name: in}}\n  - {{operationType: map, name: m, module: \"window:1.0.0\"}}\n  - {{operationType: map, name: n, module: \"absent:1\"}}\n  - {{operationType: sink, name: out}}\nconnections:\n  - {{from: {{name: in}}, to: {{name: m}}}}\n  - {{from: {{name: m}}, to: {{name: n}}}}\n  - {{from: {{name: n}}, to: {{name: out}}}}\n"
    );
    let graph = Graph::parse(&wrong, "g.yaml", &HashMap::new()).unwrap();
    let errors: Vec<String> = graph
        .check_modules(&dirs, exports)
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors[0].starts_with("g.yaml:9:43: operations[1].module: node `m`: module "),
        "{errors:?}"
    );
    assert!(
        errors[0].ends_with("window.wasm does not export the `map` interface its operation needs (it exports: delay)"),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("g.yaml:10:43: operations[2].module: node `n`: module `absent:1` not found; looked for "), "{errors:?}");
}

#[test]
fn every_node_receives_the_definitions_schemas_then_the_added_ones() {
    let body = "operations:\n  - {operationType: source, name: in}\n  - {operationType: map, name: m, module: \"x:1\"}\n  - {operationType: sink, name: out}\nconnections:\n  - {from: {name: in}, to: {name: m}}\n  - {from: {name: m}, to: {name: out}}\nschemas:\n  - {name: reading, format: Delta/1.0, schema: \"{}\"}\n";
    let mut graph = Graph::parse(&format!("{HEAD}{body}"), "g.yaml", &HashMap::new()).unwrap();
    graph.add_schema(ModuleSchema {
        name: "extra.json".into(),
        content_type: "application/json".into(),
        content: "{\"type\": \"object\"}".into(),
    });
    let schemas = graph.init_configuration(1).schemas;
    let names: Vec<(&str, &str)> = schemas
        .iter()
        .map(|s| (s.name.as_str(), s.content_type.as_str()))
        .collect();
    assert_eq!(
        names,
        [("reading", "Delta/1.0"), ("extra.json", "application/json")]
    );
    assert_eq!(schemas[0].content, "{}");
}
