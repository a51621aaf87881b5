//! State-store seeds: initial key/value pairs loaded before a graph's first message, in the
//! format Azure IoT Operations' local tooling reads (`statestore.json`): a JSON array of
//! single-key objects, `[{"factoryId": "factoryA"}, {"machineId": "machineA"}]`.
//!
//! A string value is stored as its UTF-8 bytes; any other JSON value as its JSON text (`42`,
//! `{"line": 3}`).

use super::{SetCondition, StateError, StateStore};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The pairs of one seed file, in file order.
///
/// ```
/// use weir_state::{seed::StateSeed, StateStore};
///
/// let seed = StateSeed::parse(r#"[{"factoryId": "factoryA"}, {"line": 3}]"#, "statestore.json")
///     .unwrap();
/// let store = StateStore::in_memory("test").unwrap();
/// assert_eq!(seed.apply(&store).unwrap(), 2);
/// assert_eq!(store.get(b"factoryId").unwrap().value.as_deref(), Some(&b"factoryA"[..]));
/// assert_eq!(store.get(b"line").unwrap().value.as_deref(), Some(&b"3"[..]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSeed {
    /// Where it was read from.
    pub file: String,
    /// `(key, value)` pairs.
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A seed file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file cannot be read.
    #[error("cannot read state seed {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not JSON, or not an array of single-key objects.
    #[error("{location}{}{message}", if location.is_empty() { "" } else { ": " })]
    Format {
        /// `file:line:column` of the problem (empty when `message` carries it).
        location: String,
        /// What is wrong.
        message: String,
    },
}

const SHAPE: &str =
    r#"a state seed is an array of single-key objects, e.g. [{"factoryId": "factoryA"}]"#;

impl StateSeed {
    /// Reads the seed in `path`.
    pub fn load(path: &Path) -> Result<StateSeed, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses seed `text`, named `file` in errors.
    pub fn parse(text: &str, file: &str) -> Result<StateSeed, SeedError> {
        let format = |(line, column): (usize, usize), message: String| SeedError::Format {
            location: format!("{file}:{line}:{column}"),
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| SeedError::Format {
            location: String::new(),
            message: weir_model::json::located(file, &e),
        })?;
        let Value::Array(items) = value else {
            return Err(format((1, 1), SHAPE.into()));
        };
        let mut pairs = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let single = match item {
                Value::Object(object) if object.len() == 1 => object.into_iter().next(),
                _ => None,
            };
            let Some((key, value)) = single else {
                let position = element_offset(text, index)
                    .map_or((1, 1), |offset| weir_model::yaml::line_column(text, offset));
                return Err(format(
                    position,
                    format!("element {index} is not an object with one key; {SHAPE}"),
                ));
            };
            let value = match value {
                Value::String(text) => text.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            pairs.push((key.into_bytes(), value));
        }
        Ok(StateSeed {
            file: file.to_string(),
            pairs,
        })
    }

    /// Writes every pair whose key `store` does not hold yet (a restarted broker keeps what its
    /// modules wrote since); returns how many were written.
    pub fn apply(&self, store: &StateStore) -> Result<usize, StateError> {
        let mut written = 0;
        for (key, value) in &self.pairs {
            let set = store.set(key, value, None, SetCondition::OnlyIfDoesNotExist, None)?;
            written += usize::from(set.written);
        }
        Ok(written)
    }
}

/// The byte offset of element `index` of the top-level array, found by scanning the JSON
/// (strings and nesting respected).
fn element_offset(text: &str, index: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut seen = 0usize;
    let mut expecting = false;
    for (offset, c) in text.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if expecting && depth == 1 && !c.is_whitespace() && c != ']' {
            if seen == index {
                return Some(offset);
            }
            seen += 1;
            expecting = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expecting = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_keys_are_kept() {
        let store = StateStore::in_memory("test").unwrap();
        store
            .set(b"k", b"mine", None, SetCondition::Unconditional, None)
            .unwrap();
        let seed = StateSeed::parse(r#"[{"k": "seed"}, {"j": "seed"}]"#, "s.json").unwrap();
        assert_eq!(seed.apply(&store).unwrap(), 1);
        assert_eq!(
            store.get(b"k").unwrap().value.as_deref(),
            Some(&b"mine"[..])
        );
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let error = StateSeed::parse("[\n  {\"a\": 1},\n  {\"b\": 1, \"c\": 2}\n]", "seed.json")
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("seed.json:3:3: element 1 is not an object with one key; {SHAPE}")
        );
        let error = StateSeed::parse("{\"a\": 1}", "seed.json").unwrap_err();
        assert!(error.to_string().starts_with("seed.json:1:1: "), "{error}");
        let error = StateSeed::parse("[{\"a\": }]", "seed.json").unwrap_err();
        assert!(error.to_string().starts_with("seed.json:1:8: "), "{error}");
    }

    #[test]
    fn strings_inside_values_do_not_confuse_positions() {
        let text = r#"[{"a": "x,[y"}, "oops"]"#;
        let error = StateSeed::parse(text, "s.json").unwrap_err();
        assert!(error.to_string().starts_with("s.json:1:17: "), "{error}");
    }
}
