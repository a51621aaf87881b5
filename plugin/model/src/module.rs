//! What a module is given at `init`, as the WIT `module-configuration` record carries it: a
//! node's parameters and the schemas of its graph ([`InitConfiguration`], [`ModuleSchema`]),
//! and the names of the features a graph may require of the host ([`WASI_NN`]).
//!
//! Graph definitions produce these, the WebAssembly host hands them to modules: both crates
//! speak them without knowing each other.

use std::path::{Path, PathBuf};

/// A schema handed to a module's `init`, as the WIT `module-schema` record carries it.
///
/// ```
/// use weir_model::module::ModuleSchema;
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

/// The `wasi:nn` feature's name in a graph's `moduleRequirements.features`.
pub const WASI_NN: &str = "wasi-nn";

/// What a node's `init` receives.
///
/// ```
/// use weir_model::module::InitConfiguration;
///
/// let configuration = InitConfiguration::from(vec![("window_ms".to_string(), "500".to_string())]);
/// assert!(configuration.schemas.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitConfiguration {
    /// The node's resolved parameters, `(name, value)`.
    pub properties: Vec<(String, String)>,
    /// The schemas the graph was given (`module-schemas`).
    pub schemas: Vec<ModuleSchema>,
}

impl From<Vec<(String, String)>> for InitConfiguration {
    fn from(properties: Vec<(String, String)>) -> Self {
        InitConfiguration {
            properties,
            schemas: Vec::new(),
        }
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
