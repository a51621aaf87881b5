//! YAML parsing for configuration and graph files, behind one module: typed parsing with errors
//! that carry a line, a column and the full key path, said once for every YAML file Weir reads.

use serde::de::DeserializeOwned;

/// A YAML file that could not be parsed into the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct YamlError {
    /// Line, 1-based.
    pub line: usize,
    /// Column, 1-based, in characters.
    pub column: usize,
    /// What is wrong, prefixed by the key path when there is one
    /// (`operations[2].name: invalid type: ...`).
    pub message: String,
}

/// Parses `text` as a `T`. `position` maps a byte offset of `text` to the line and column to
/// report (for text that was rewritten before parsing, the user's position).
///
/// ```
/// #[derive(serde::Deserialize, Debug)]
/// #[serde(deny_unknown_fields)]
/// struct Port { port: u16 }
/// let err = weir_model::yaml::from_str::<Port>("port: high\n", |o| (1, o + 1)).unwrap_err();
/// assert_eq!(err.to_string(), "1:7: port: invalid type: string \"high\", expected u16");
/// ```
pub fn from_str<T: DeserializeOwned>(
    text: &str,
    position: impl Fn(usize) -> (usize, usize),
) -> Result<T, YamlError> {
    serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|error| {
        let inner = error.inner();
        let mut message = inner.to_string();
        let (line, column) = match inner.location() {
            Some(location) => {
                // serde_yaml appends its own position; the caller's replaces it.
                let suffix = format!(" at line {} column {}", location.line(), location.column());
                if let Some(stripped) = message.strip_suffix(&suffix) {
                    message.truncate(stripped.len());
                }
                position(location.index())
            }
            None => (1, 1),
        };
        let path = error.path().to_string();
        let message = strip_path_prefix(&message, &path);
        YamlError {
            line,
            column,
            message: if path == "." || path.is_empty() {
                message.to_string()
            } else {
                format!("{path}: {message}")
            },
        }
    })
}

/// Line and column (both 1-based, column in characters) of a byte offset in `text`.
///
/// ```
/// assert_eq!(weir_model::yaml::line_column("ab\ncd", 4), (2, 2));
/// ```
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, before[line_start..].chars().count() + 1)
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
