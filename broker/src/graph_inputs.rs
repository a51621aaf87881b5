//! What `weir graph run` and `weir graph test` give a graph besides its definition: schema files
//! for the modules' `init`, a schema directory for `schema-registry`, and a state-store seed.
//!
//! Each comes from the command line, or else from files beside the definition laid out as Azure
//! IoT Operations' local tooling lays them out: `hostapp.env.list` naming a schema file
//! (`TK_SCHEMA_CONFIG_PATH=FILE`, relative to the list) and `statestore.json`.

use crate::cli::GraphInputArgs;
use crate::registry::load_definition;
use anyhow::Context;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_engine as engine;
use weir_graph::{Graph, ModuleSources};
use weir_state::seed::StateSeed;
use weir_state::StateStore;
use weir_wasm::schema::ModuleSchema;
use weir_wasm::{OperatorModule, RuntimeConfig, WasmRuntime};

/// The environment list beside a graph definition.
pub const HOSTAPP_ENV_LIST: &str = "hostapp.env.list";
/// The variable of [`HOSTAPP_ENV_LIST`] that names a schema file.
pub const SCHEMA_VARIABLE: &str = "TK_SCHEMA_CONFIG_PATH";
/// The state-store seed beside a graph definition.
pub const STATE_SEED: &str = "statestore.json";

/// The inputs of one graph, resolved.
#[derive(Debug, Default)]
pub struct GraphInputs {
    /// Schemas for `init`, after the definition's own.
    pub schemas: Vec<ModuleSchema>,
    /// The schema directory.
    pub schema_dir: Option<PathBuf>,
    /// The seed.
    pub seed: Option<StateSeed>,
}

impl GraphInputs {
    /// The inputs of the graph defined in `definition`: `args` where given, else the files
    /// beside the definition.
    pub fn resolve(definition: &Path, args: &GraphInputArgs) -> anyhow::Result<GraphInputs> {
        let beside = definition.parent().unwrap_or(Path::new(""));
        let schema_files = if args.schemas.is_empty() {
            hostapp_schema(beside)?.into_iter().collect()
        } else {
            args.schemas.clone()
        };
        let schemas = schema_files
            .iter()
            .map(|file| ModuleSchema::from_file(file))
            .collect::<Result<_, _>>()?;
        let seed_file = match &args.state {
            Some(file) => Some(file.clone()),
            None => Some(beside.join(STATE_SEED)).filter(|file| file.is_file()),
        };
        let seed = seed_file.map(|file| StateSeed::load(&file)).transpose()?;
        Ok(GraphInputs {
            schemas,
            schema_dir: args.schema_dir.clone(),
            seed,
        })
    }

    /// Gives `graph` the schemas and seeds `state`.
    pub fn apply(&self, graph: &mut Graph, state: &StateStore) -> anyhow::Result<()> {
        for schema in &self.schemas {
            graph.add_schema(schema.clone());
        }
        if let Some(seed) = &self.seed {
            let written = seed
                .apply(state)
                .with_context(|| format!("cannot seed the state store from {}", seed.file))?;
            tracing::debug!("{written} state-store keys seeded from {}", seed.file);
        }
        Ok(())
    }
}

/// A graph ready to run offline, with what it runs on.
pub struct OfflineGraph {
    /// The graph, its schemas added.
    pub graph: Graph,
    /// Its modules, resolved and compiled.
    pub modules: HashMap<usize, Arc<OperatorModule>>,
}

/// Loads the definition `definition` (a file or `oci://<reference>`) with `configuration`,
/// resolves its inputs from `args`, seeds a fresh in-memory state store (versions issued as
/// `node_id`), and loads its modules from `sources` on a runtime over that store.
pub fn load_offline(
    definition: &Path,
    configuration: &HashMap<String, String>,
    args: &GraphInputArgs,
    sources: &ModuleSources,
    node_id: &str,
) -> anyhow::Result<OfflineGraph> {
    let (mut graph, file) = load_definition(definition, configuration, &sources.registries)?;
    for warning in &graph.warnings {
        tracing::warn!("{warning}");
    }
    let inputs = GraphInputs::resolve(&file, args)?;
    let state = Arc::new(StateStore::in_memory(node_id)?);
    inputs.apply(&mut graph, &state)?;
    let runtime_config = RuntimeConfig {
        schema_dir: inputs.schema_dir,
        ..RuntimeConfig::default()
    };
    let runtime = WasmRuntime::new(&runtime_config, state)?;
    let modules = engine::load_modules(&graph, sources, &runtime)?;
    Ok(OfflineGraph { graph, modules })
}

/// The schema file `hostapp.env.list` in `dir` names, if the list exists and names one.
pub fn hostapp_schema(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let list = dir.join(HOSTAPP_ENV_LIST);
    if !list.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&list)
        .with_context(|| format!("cannot read {}", list.display()))?;
    Ok(env_value(&text, SCHEMA_VARIABLE).map(|file| dir.join(file)))
}

/// The value of `name` in an environment list (`KEY=VALUE` lines, `#` comments); quotes
/// around the value are removed. The last assignment wins.
fn env_value(text: &str, name: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .filter(|(key, _)| key.trim() == name)
        .map(|(_, value)| unquote(value.trim()).to_string())
        .find(|value| !value.is_empty())
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_variable_is_read_from_an_env_list() {
        let list = "# tooling\nOTHER=1\nTK_SCHEMA_CONFIG_PATH = \"schemas/reading.json\"\n";
        assert_eq!(
            env_value(list, SCHEMA_VARIABLE).as_deref(),
            Some("schemas/reading.json")
        );
        assert_eq!(env_value("OTHER=1\n", SCHEMA_VARIABLE), None);
        assert_eq!(env_value("TK_SCHEMA_CONFIG_PATH=\n", SCHEMA_VARIABLE), None);
    }

    #[test]
    fn files_beside_the_definition_are_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let definition = dir.path().join("graph.yaml");
        std::fs::write(dir.path().join("s.json"), "{}").unwrap();
        std::fs::write(
            dir.path().join(HOSTAPP_ENV_LIST),
            "TK_SCHEMA_CONFIG_PATH=s.json\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(STATE_SEED), r#"[{"k": "v"}]"#).unwrap();
        let inputs = GraphInputs::resolve(&definition, &GraphInputArgs::default()).unwrap();
        assert_eq!(inputs.schemas.len(), 1);
        assert_eq!(inputs.schemas[0].name, "s.json");
        assert_eq!(inputs.seed.unwrap().pairs.len(), 1);

        let explicit = GraphInputArgs {
            schemas: vec![dir.path().join(STATE_SEED)],
            ..GraphInputArgs::default()
        };
        let inputs = GraphInputs::resolve(&definition, &explicit).unwrap();
        assert_eq!(inputs.schemas[0].name, STATE_SEED);
    }

    #[test]
    fn a_named_schema_that_is_missing_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(HOSTAPP_ENV_LIST),
            "TK_SCHEMA_CONFIG_PATH=missing.json\n",
        )
        .unwrap();
        let error = GraphInputs::resolve(&dir.path().join("g.yaml"), &GraphInputArgs::default())
            .unwrap_err();
        assert!(format!("{error:#}").contains("missing.json"), "{error:#}");
    }
}
