//! Schemas that reach modules: the `module-schemas` every node's `init` receives (from the graph
//! definition's `schemas:` section and from schema files the graph is given), and the local
//! schema directory that answers the `schema-registry` host API ([`registry`]).

pub mod registry;

pub use registry::{RegistrySchema, SchemaDirectory, SchemaFormat, SchemaLookupError};

use std::path::{Path, PathBuf};

/// A schema handed to a module's `init`, as the WIT `module-schema` record carries it.
///
/// ```
/// use weir_wasm::schema::ModuleSchema;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("reading.json");
/// std::fs::write(&path, r#"{"type": "object"}"#).unwrap();
/// let schema = ModuleSchema::from_file(&path).unwrap();
/// assert_eq!(schema.name, "reading.json");
/// assert_eq!(schema.content_type, "application/json");
/// assert_eq!(schema.content, r#"{"type": "object"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleSchema {
    /// The schema's name: a definition entry's `name`, or a file's name.
    pub name: String,
    /// What the content is: a definition entry's `format` (e.g. `Delta/1.0`), or the media type
    /// of a file's extension.
    pub content_type: String,
    /// The schema document.
    pub content: String,
}

/// A schema file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read schema file {}: {source}", path.display())]
pub struct SchemaFileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl ModuleSchema {
    /// The schema in file `path`, named after the file; its content type follows the
    /// extension: `application/json` for `.json`, `application/yaml` for `.yaml`/`.yml`,
    /// `text/plain` otherwise.
    pub fn from_file(path: &Path) -> Result<ModuleSchema, SchemaFileError> {
        let content = std::fs::read_to_string(path).map_err(|source| SchemaFileError {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(ModuleSchema {
            content_type: media_type(path).to_string(),
            name,
            content,
        })
    }
}

fn media_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => "application/json",
        Some("yaml" | "yml") => "application/yaml",
        _ => "text/plain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named() {
        let error = ModuleSchema::from_file(Path::new("/nonexistent/s.json")).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/s.json"), "{error}");
    }

    #[test]
    fn media_types_follow_the_extension() {
        assert_eq!(media_type(Path::new("a.JSON")), "application/json");
        assert_eq!(media_type(Path::new("a.yml")), "application/yaml");
        assert_eq!(media_type(Path::new("schema")), "text/plain");
    }
}
