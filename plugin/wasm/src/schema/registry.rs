//! A schema registry kept in a directory, answering the `schema-registry` host API.
//!
//! Layout: `DIR/<id>/<version>.json` holds version `<version>` of schema `<id>`; a flat
//! `DIR/<id>.json` serves every version of `<id>` when there is no `DIR/<id>/` directory. A
//! schema whose JSON says `"$schema": "Delta/1.0"` is a Delta schema; any other is JSON Schema
//! (draft-07).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The largest schema file served, in bytes.
pub const MAX_SCHEMA_BYTES: u64 = 16 << 20;

/// The namespace every schema of a directory registry is in.
pub const NAMESPACE: &str = "local";

/// The format of a registry schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFormat {
    /// JSON Schema, draft-07.
    JsonSchemaDraft07,
    /// Delta/1.0.
    DeltaV1,
}

/// A schema as the registry answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySchema {
    /// The schema's id.
    pub name: String,
    /// Always [`NAMESPACE`].
    pub namespace: String,
    /// The version asked for.
    pub version: String,
    /// The document.
    pub content: String,
    /// Its format.
    pub format: SchemaFormat,
    /// SHA-256 of the content, in lowercase hex.
    pub hash: String,
}

/// Why a lookup found no schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaLookupError {
    /// No such id or version.
    #[error("schema `{id}` version `{version}` is not in {dir}")]
    NotFound {
        /// The id asked for.
        id: String,
        /// The version asked for.
        version: String,
        /// The directory searched.
        dir: String,
    },
    /// An id or version that cannot name a file.
    #[error("{0}")]
    InvalidArgument(String),
    /// The file exists but cannot be served.
    #[error("{0}")]
    Unreadable(String),
}

/// A registry over one directory. Files are read at each lookup, so edits take effect at once.
///
/// ```
/// use weir_wasm::schema::{SchemaDirectory, SchemaFormat};
///
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join("reading")).unwrap();
/// std::fs::write(dir.path().join("reading/1.0.0.json"), r#"{"type": "object"}"#).unwrap();
/// let registry = SchemaDirectory::new(dir.path());
/// let schema = registry.get("reading", "1.0.0").unwrap();
/// assert_eq!(schema.format, SchemaFormat::JsonSchemaDraft07);
/// assert_eq!(schema.content, r#"{"type": "object"}"#);
/// assert!(registry.get("reading", "2.0.0").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct SchemaDirectory {
    dir: PathBuf,
}

impl SchemaDirectory {
    /// A registry over `dir`.
    pub fn new(dir: &Path) -> SchemaDirectory {
        SchemaDirectory {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory it reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Version `version` of schema `id`.
    pub fn get(&self, id: &str, version: &str) -> Result<RegistrySchema, SchemaLookupError> {
        check_component("id", id)?;
        check_component("version", version)?;
        let versioned = self.dir.join(id);
        let path = if versioned.is_dir() {
            versioned.join(format!("{version}.json"))
        } else {
            self.dir.join(format!("{id}.json"))
        };
        if !path.is_file() {
            return Err(SchemaLookupError::NotFound {
                id: id.into(),
                version: version.into(),
                dir: self.dir.display().to_string(),
            });
        }
        let content = read(&path)?;
        Ok(RegistrySchema {
            name: id.into(),
            namespace: NAMESPACE.into(),
            version: version.into(),
            format: format_of(&content),
            hash: hex(&Sha256::digest(content.as_bytes())),
            content,
        })
    }
}

/// An id or version must be one plain file-name component.
fn check_component(what: &str, value: &str) -> Result<(), SchemaLookupError> {
    let plain =
        !value.is_empty() && value != "." && value != ".." && !value.contains(['/', '\\', '\0']);
    if plain {
        Ok(())
    } else {
        Err(SchemaLookupError::InvalidArgument(format!(
            "schema {what} `{}` is not a plain name",
            value.escape_debug()
        )))
    }
}

fn read(path: &Path) -> Result<String, SchemaLookupError> {
    let unreadable = |reason: String| {
        SchemaLookupError::Unreadable(format!("schema file {}: {reason}", path.display()))
    };
    let size = std::fs::metadata(path)
        .map_err(|e| unreadable(e.to_string()))?
        .len();
    if size > MAX_SCHEMA_BYTES {
        return Err(unreadable(format!(
            "{size} bytes, more than the {MAX_SCHEMA_BYTES} served"
        )));
    }
    std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))
}

fn format_of(content: &str) -> SchemaFormat {
    let declared = serde_json::from_str::<serde_json::Value>(content)
        .ok()
        .and_then(|json| json.get("$schema")?.as_str().map(str::to_owned));
    match declared.as_deref() {
        Some(format) if format.eq_ignore_ascii_case("Delta/1.0") => SchemaFormat::DeltaV1,
        _ => SchemaFormat::JsonSchemaDraft07,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, SchemaDirectory) {
        let dir = tempfile::tempdir().unwrap();
        let registry = SchemaDirectory::new(dir.path());
        (dir, registry)
    }

    #[test]
    fn a_flat_file_serves_every_version() {
        let (dir, registry) = registry();
        std::fs::write(dir.path().join("any.json"), "{}").unwrap();
        assert_eq!(registry.get("any", "1").unwrap().version, "1");
        assert_eq!(registry.get("any", "7.2").unwrap().content, "{}");
    }

    #[test]
    fn a_version_directory_serves_only_its_versions() {
        let (dir, registry) = registry();
        std::fs::create_dir(dir.path().join("s")).unwrap();
        std::fs::write(dir.path().join("s.json"), "{}").unwrap();
        std::fs::write(dir.path().join("s/1.json"), "{}").unwrap();
        assert!(registry.get("s", "1").is_ok());
        assert!(matches!(
            registry.get("s", "2"),
            Err(SchemaLookupError::NotFound { .. })
        ));
    }

    #[test]
    fn delta_schemas_are_recognised_and_hashed() {
        let (dir, registry) = registry();
        let delta = r#"{"$schema": "Delta/1.0", "type": "object"}"#;
        std::fs::write(dir.path().join("d.json"), delta).unwrap();
        let schema = registry.get("d", "1").unwrap();
        assert_eq!(schema.format, SchemaFormat::DeltaV1);
        assert_eq!(schema.namespace, NAMESPACE);
        assert_eq!(schema.hash, hex(&Sha256::digest(delta.as_bytes())));
        assert_eq!(schema.hash.len(), 64);
    }

    #[test]
    fn names_that_leave_the_directory_are_invalid() {
        let (_dir, registry) = registry();
        for (id, version) in [
            ("..", "1"),
            ("a/b", "1"),
            ("a", "../x"),
            ("", "1"),
            ("a", ""),
        ] {
            assert!(
                matches!(
                    registry.get(id, version),
                    Err(SchemaLookupError::InvalidArgument(_))
                ),
                "{id} {version}"
            );
        }
    }
}
