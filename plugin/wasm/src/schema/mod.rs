//! Schemas that reach modules: the `module-schemas` every node's `init` receives (from the graph
//! definition's `schemas:` section and from schema files the graph is given), and the local
//! schema directory that answers the `schema-registry` host API ([`registry`]).

pub mod registry;

pub use registry::{RegistrySchema, SchemaDirectory, SchemaFormat, SchemaLookupError};
pub use weir_model::module::{ModuleSchema, SchemaFileError};
