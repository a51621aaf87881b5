//! Configuration errors, each pointing at the file, line and column the user wrote.

use super::env::{line_column, Expanded};
use std::path::PathBuf;
use thiserror::Error;

/// Why a configuration could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read configuration: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong. `message` starts with the key's path
    /// (for example `broker.listeners[0].tls.cert: ...`) when the error belongs to a key.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
}

impl ConfigError {
    /// Turns a YAML error on the expanded text into one located in the original text, with the
    /// full path of the key it belongs to.
    pub(super) fn from_yaml(
        error: &serde_path_to_error::Error<serde_yaml::Error>,
        file: &str,
        original: &str,
        expanded: &Expanded,
    ) -> Self {
        let inner = error.inner();
        let mut message = inner.to_string();
        let (line, column) = match inner.location() {
            Some(location) => {
                // serde_yaml appends its own (expanded-text) position; ours replaces it.
                let suffix = format!(" at line {} column {}", location.line(), location.column());
                if let Some(stripped) = message.strip_suffix(&suffix) {
                    message.truncate(stripped.len());
                }
                line_column(original, expanded.original_offset(location.index()))
            }
            None => (1, 1),
        };
        let path = error.path().to_string();
        let message = strip_path_prefix(&message, &path);
        let message = if path == "." || path.is_empty() {
            message.to_string()
        } else {
            format!("{path}: {message}")
        };
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            message,
        }
    }
}

/// serde_yaml prefixes its messages with the path it knows, which for errors raised by a value's
/// own validation stops one key short. Remove it: the caller prefixes the full path instead.
fn strip_path_prefix<'m>(message: &'m str, full_path: &str) -> &'m str {
    let mut best = message;
    for (end, _) in full_path
        .char_indices()
        .filter(|(_, c)| *c == '.' || *c == '[')
        .chain(std::iter::once((full_path.len(), ' ')))
    {
        let ancestor = &full_path[..end];
        if let Some(rest) = message
            .strip_prefix(ancestor)
            .and_then(|rest| rest.strip_prefix(": "))
        {
            if rest.len() < best.len() {
                best = rest;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::strip_path_prefix;

    #[test]
    fn strips_the_longest_ancestor_path() {
        let path = "broker.listeners[0].tls.cert";
        assert_eq!(
            strip_path_prefix("broker.listeners[0].tls: cannot read", path),
            "cannot read"
        );
        assert_eq!(strip_path_prefix("broker: bad", path), "bad");
        assert_eq!(
            strip_path_prefix("unknown field `x`", path),
            "unknown field `x`"
        );
        assert_eq!(strip_path_prefix("brokerx: y", path), "brokerx: y");
    }
}
