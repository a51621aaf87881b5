//! `schema-registry`: answered from the schema directory the runtime was given
//! ([`crate::schema::SchemaDirectory`]); without one, every call answers "not available".

use super::HostState;
use crate::bindings::current::imports::wasm_graph::processor::{
    schema_registry,
    schema_types::{self, Schema, SchemaError, SchemaFormat as WitFormat, SchemaKind},
};
use crate::schema::{RegistrySchema, SchemaFormat, SchemaLookupError};

const NO_DIRECTORY: &str =
    "no schema directory is configured (modules.schema_dir, or --schema-dir)";

impl schema_types::Host for HostState {}

impl schema_registry::Host for HostState {
    fn get(
        &mut self,
        id: String,
        version: String,
        _timeout: (u64, u32),
    ) -> wasmtime::Result<Result<Schema, SchemaError>> {
        let Some(schemas) = &self.schemas else {
            return Ok(Err(SchemaError::NotAvailable(NO_DIRECTORY.into())));
        };
        Ok(match schemas.get(&id, &version) {
            Ok(schema) => Ok(into_wit(schema)),
            Err(error) => {
                tracing::debug!(
                    module = %self.identity.module,
                    node = %self.identity.node,
                    "schema-registry.get: {error}"
                );
                Err(match error {
                    SchemaLookupError::NotFound { .. } => SchemaError::NotFound,
                    SchemaLookupError::InvalidArgument(why) => SchemaError::InvalidArgument(why),
                    SchemaLookupError::Unreadable(why) => SchemaError::UnknownError(why),
                })
            }
        })
    }
}

fn into_wit(schema: RegistrySchema) -> Schema {
    Schema {
        name: schema.name,
        namespace: schema.namespace,
        version: schema.version,
        content: schema.content,
        format: match schema.format {
            SchemaFormat::JsonSchemaDraft07 => WitFormat::JsonSchemaDraft07,
            SchemaFormat::DeltaV1 => WitFormat::DeltaV1,
        },
        kind: SchemaKind::Message,
        hash: Some(schema.hash),
    }
}
