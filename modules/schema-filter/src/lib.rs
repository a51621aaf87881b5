//! A filter that keeps the messages whose JSON payload is valid against a JSON Schema.
//!
//! The schema is the one the graph gives every module's `init` (`module-schemas`: the
//! definition's `schemas:`, a binding's `schemas:`, `--schema`, `hostapp.env.list`):
//! the one named by the `schema` parameter, else the first whose content type mentions JSON.
//! With the `registry_id` parameter (and `registry_version`, default `1`), it is fetched from
//! the schema registry instead.
//!
//! A payload that is not JSON, or not valid, is filtered out and counted in the module metric
//! `schema_rejections` (label `reason`: `not-json` or `invalid`).

use jsonschema::Validator;
use serde_json::Value;
use std::sync::OnceLock;
use wasm_graph_sdk::logger::{self, Level};
use wasm_graph_sdk::macros::filter_operator;
use wasm_graph_sdk::metrics::{self, CounterValue, Label};
use wasm_graph_sdk::schema_registry;

const CONTEXT: &str = "schema-filter";

static VALIDATOR: OnceLock<Validator> = OnceLock::new();

/// The schema document `configuration` points at, and where it came from.
fn schema_text(configuration: &ModuleConfiguration) -> Result<(String, String), String> {
    if let Some(id) = configuration.property("registry_id") {
        let version = configuration.property("registry_version").unwrap_or("1");
        return schema_registry::get(id, version, (5, 0))
            .map(|schema| (schema.content, format!("registry {id}@{version}")))
            .map_err(|e| format!("schema registry: {id}@{version}: {e:?}"));
    }
    let wanted = configuration.property("schema");
    configuration
        .module_schemas
        .iter()
        .find(|schema| match wanted {
            Some(name) => schema.name == name,
            None => schema.content_type.to_ascii_lowercase().contains("json"),
        })
        .map(|schema| (schema.content.clone(), format!("module schema {}", schema.name)))
        .ok_or_else(|| match wanted {
            Some(name) => format!("no module schema is named `{name}`"),
            None => "no JSON module schema was given".to_string(),
        })
}

fn validate_init(configuration: ModuleConfiguration) -> bool {
    let compiled = schema_text(&configuration).and_then(|(text, origin)| {
        let schema: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{origin} is not JSON: {e}"))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| format!("{origin} is not a valid JSON Schema: {e}"))?;
        Ok((validator, origin))
    });
    match compiled {
        Ok((validator, origin)) => {
            logger::log(Level::Info, CONTEXT, &format!("validating against {origin}"));
            let _ = VALIDATOR.set(validator);
            true
        }
        Err(reason) => {
            logger::log(Level::Error, CONTEXT, &reason);
            false
        }
    }
}

fn reject(reason: &str) -> Result<bool, Error> {
    let labels = [Label {
        key: "reason".into(),
        value: reason.into(),
    }];
    let _ = metrics::add_to_counter("schema_rejections", CounterValue::U64(1), Some(&labels));
    Ok(false)
}

#[filter_operator(init = "validate_init")]
fn validate(input: DataModel) -> Result<bool, Error> {
    let DataModel::Message(message) = input else {
        return Err(Error::new("schema-filter: expected a message"));
    };
    let Some(validator) = VALIDATOR.get() else {
        return Err(Error::new("schema-filter: no schema (init did not succeed)"));
    };
    let Ok(payload) = serde_json::from_slice::<Value>(&message.payload.read()) else {
        return reject("not-json");
    };
    if validator.is_valid(&payload) {
        Ok(true)
    } else {
        reject("invalid")
    }
}
