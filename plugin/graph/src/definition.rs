//! The graph definition file as written: the Azure IoT Operations data flow graph format
//! (`metadata`, `moduleRequirements`, `moduleConfigurations`, `operations`, `connections`,
//! `schemas`), also in its preview form (`hostlibVersion`). Unknown keys are errors.

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

/// A whole graph definition file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GraphDefinition {
    /// Name, version and description of the graph.
    pub metadata: Metadata,
    /// The interface version its modules need.
    pub module_requirements: ModuleRequirements,
    /// Parameters declared per operation.
    #[serde(default)]
    pub module_configurations: Vec<ModuleConfiguration>,
    /// The nodes.
    pub operations: Vec<Operation>,
    /// The edges.
    pub connections: Vec<Connection>,
    /// Schemas the graph refers to.
    #[serde(default)]
    pub schemas: Vec<Schema>,
}

/// `metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The JSON schema the file claims to follow.
    #[serde(rename = "$schema", default)]
    pub schema: Option<String>,
    /// The graph's name.
    pub name: String,
    /// The graph's version.
    pub version: String,
    /// What it does.
    #[serde(default)]
    pub description: Option<String>,
    /// Who made it.
    #[serde(default)]
    pub vendor: Option<String>,
}

/// `moduleRequirements`: `apiVersion` with `runtimeVersion` (1.1.0) or `hostlibVersion`
/// (the preview, 0.2.0).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModuleRequirements {
    /// The operator interface version.
    pub api_version: String,
    /// The runtime version (current format).
    #[serde(default)]
    pub runtime_version: Option<String>,
    /// The host library version (preview format).
    #[serde(default)]
    pub hostlib_version: Option<String>,
    /// Optional host features, e.g. `wasi-nn`.
    #[serde(default)]
    pub features: Vec<Feature>,
}

/// A host feature a graph needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// The feature's name.
    pub name: String,
    /// Its setting, if any.
    #[serde(default)]
    pub value: Option<String>,
}

/// The parameters one operation declares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfiguration {
    /// The operation's name.
    pub name: String,
    /// Parameters by key.
    #[serde(default)]
    pub parameters: BTreeMap<String, ParameterDeclaration>,
}

/// One declared parameter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParameterDeclaration {
    /// The name the module reads it by.
    pub name: String,
    /// What it means.
    #[serde(default)]
    pub description: Option<String>,
    /// The value when the graph's configuration gives none.
    #[serde(default, deserialize_with = "scalar_text")]
    pub default: Option<String>,
    /// Whether a value must be given.
    #[serde(default)]
    pub required: bool,
}

/// One node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Operation {
    /// What the node does.
    pub operation_type: OperationType,
    /// Its unique name.
    pub name: String,
    /// The module it runs (`name:tag`, `repo/path/name:tag` or a file path).
    #[serde(default)]
    pub module: Option<String>,
}

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationType {
    /// Where messages enter.
    Source,
    /// One item to one item.
    Map,
    /// Keep or drop.
    Filter,
    /// Arm "False" or "True".
    Branch,
    /// Merge the inputs.
    Concatenate,
    /// Fold items of one timestamp.
    Accumulate,
    /// Move items later in time.
    Delay,
    /// Where results leave.
    Sink,
}

impl OperationType {
    /// The name as written in a graph.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationType::Source => "source",
            OperationType::Map => "map",
            OperationType::Filter => "filter",
            OperationType::Branch => "branch",
            OperationType::Concatenate => "concatenate",
            OperationType::Accumulate => "accumulate",
            OperationType::Delay => "delay",
            OperationType::Sink => "sink",
        }
    }

    /// Whether nodes of this type run a module.
    pub fn needs_module(self) -> bool {
        !matches!(
            self,
            OperationType::Source | OperationType::Sink | OperationType::Concatenate
        )
    }
}

impl<'de> Deserialize<'de> for OperationType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = String::deserialize(d)?;
        Ok(match written.to_ascii_lowercase().as_str() {
            "source" => OperationType::Source,
            "map" => OperationType::Map,
            "filter" => OperationType::Filter,
            "branch" => OperationType::Branch,
            "concatenate" => OperationType::Concatenate,
            "accumulate" => OperationType::Accumulate,
            "delay" => OperationType::Delay,
            "sink" => OperationType::Sink,
            _ => {
                return Err(serde::de::Error::custom(format_args!(
                    "unknown operation type `{written}`, expected one of source, map, filter, \
                     branch, concatenate, accumulate, delay, sink"
                )))
            }
        })
    }
}

/// One edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Where it leaves.
    pub from: ConnectionFrom,
    /// Where it arrives.
    pub to: ConnectionTo,
}

/// The start of an edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionFrom {
    /// The node it leaves.
    pub name: String,
    /// For a branch: which arm (`"True"`/`"False"`, or a YAML boolean).
    #[serde(default, deserialize_with = "arm")]
    pub arm: Option<bool>,
    /// The schema of what travels on it.
    #[serde(default)]
    pub schema_name: Option<String>,
}

/// The end of an edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionTo {
    /// The node it reaches.
    pub name: String,
}

/// A schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    /// Its name, as `schemaName` refers to it.
    pub name: String,
    /// Its format, e.g. `Delta/1.0`.
    pub format: String,
    /// The schema document.
    pub schema: String,
}

impl Schema {
    /// The schema as modules receive it in `init`.
    pub fn module_schema(&self) -> weir_model::module::ModuleSchema {
        weir_model::module::ModuleSchema {
            name: self.name.clone(),
            content_type: self.format.clone(),
            content: self.schema.clone(),
        }
    }
}

fn arm<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<Written>::deserialize(d)? {
        None => None,
        Some(Written::Bool(arm)) => Some(arm),
        Some(Written::Text(text)) => match text.as_str() {
            "True" | "true" => Some(true),
            "False" | "false" => Some(false),
            _ => {
                return Err(serde::de::Error::custom(format_args!(
                    "unknown arm `{text}`, expected \"True\" or \"False\""
                )))
            }
        },
    })
}

/// A scalar (string, number or boolean) as the text a module receives.
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Bool(bool),
        Int(i64),
        Float(f64),
    }
    Ok(
        Option::<Written>::deserialize(d)?.map(|written| match written {
            Written::Text(text) => text,
            Written::Bool(b) => b.to_string(),
            Written::Int(i) => i.to_string(),
            Written::Float(f) => f.to_string(),
        }),
    )
}
