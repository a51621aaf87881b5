//! `${VAR}` and `${VAR:-default}` substitution in configuration text, keeping a map from the
//! expanded text back to the original so that parse errors point at what the user wrote.
//!
//! Substitution runs on the text before YAML parsing, so a variable can stand anywhere a value
//! can (a port inside an address, a whole password). `$$` writes a literal `$`. Comment lines and
//! trailing comments are left alone, so a commented-out `${UNSET}` is not an error.

use thiserror::Error;

/// The result of substitution: the text to parse and the way back to the user's positions.
#[derive(Debug)]
pub struct Expanded {
    /// The text with every variable replaced by its value.
    pub text: String,
    /// One entry per substitution, in text order.
    substitutions: Vec<Substitution>,
}

#[derive(Debug, Clone, Copy)]
struct Substitution {
    expanded_start: usize,
    expanded_end: usize,
    original_start: usize,
    original_end: usize,
}

/// A substitution that could not be made, with its byte offset in the original text.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EnvError {
    /// `${NAME}` names a variable that is not set and has no `:-default`.
    #[error("environment variable `{name}` is not set and `${{{name}}}` gives no default (write `${{{name}:-value}}` for one)")]
    Unset { name: String, offset: usize },
    /// `${` without its closing `}`, or an empty or malformed name.
    #[error("malformed variable reference `{text}`: expected `${{NAME}}` or `${{NAME:-default}}`")]
    Malformed { text: String, offset: usize },
    /// The value would break the line structure of the file.
    #[error("environment variable `{name}` holds a line break; configuration values must fit on one line")]
    Multiline { name: String, offset: usize },
}

impl EnvError {
    /// Byte offset of the reference in the original text.
    pub fn offset(&self) -> usize {
        match self {
            EnvError::Unset { offset, .. }
            | EnvError::Malformed { offset, .. }
            | EnvError::Multiline { offset, .. } => *offset,
        }
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in `text`, reading variables through `lookup`.
///
/// ```
/// use weir_config::env::expand;
/// let expanded = expand("listen: 127.0.0.1:${PORT:-1883} # ${NOT_READ}", |_| None).unwrap();
/// assert_eq!(expanded.text, "listen: 127.0.0.1:1883 # ${NOT_READ}");
/// ```
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Expanded, EnvError> {
    let mut out = String::with_capacity(text.len());
    let mut substitutions = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let code_len = code_part_len(line);
        let (code, comment) = line.split_at(code_len);
        expand_code(code, line_start, &lookup, &mut out, &mut substitutions)?;
        out.push_str(comment);
        line_start += line.len();
    }
    Ok(Expanded {
        text: out,
        substitutions,
    })
}

fn expand_code(
    code: &str,
    base: usize,
    lookup: &impl Fn(&str) -> Option<String>,
    out: &mut String,
    substitutions: &mut Vec<Substitution>,
) -> Result<(), EnvError> {
    let bytes = code.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push_str(&code[copied..=i]);
                record(
                    substitutions,
                    out.len(),
                    base + i + 1,
                    base + i + 2,
                    out.len(),
                );
                i += 2;
                copied = i;
            }
            Some(b'{') => {
                let offset = base + i;
                let close =
                    code[i..]
                        .find('}')
                        .map(|p| i + p)
                        .ok_or_else(|| EnvError::Malformed {
                            text: code[i..].trim_end().to_string(),
                            offset,
                        })?;
                let reference = &code[i + 2..close];
                let (name, default) = match reference.split_once(":-") {
                    Some((name, default)) => (name, Some(default)),
                    None => (reference, None),
                };
                if !is_variable_name(name) {
                    return Err(EnvError::Malformed {
                        text: code[i..=close].to_string(),
                        offset,
                    });
                }
                let value = match (lookup(name), default) {
                    (Some(value), _) => value,
                    (None, Some(default)) => default.to_string(),
                    (None, None) => {
                        return Err(EnvError::Unset {
                            name: name.to_string(),
                            offset,
                        })
                    }
                };
                if value.contains('\n') {
                    return Err(EnvError::Multiline {
                        name: name.to_string(),
                        offset,
                    });
                }
                out.push_str(&code[copied..i]);
                let expanded_start = out.len();
                out.push_str(&value);
                record(
                    substitutions,
                    expanded_start,
                    offset,
                    base + close + 1,
                    out.len(),
                );
                i = close + 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&code[copied..]);
    Ok(())
}

fn record(
    substitutions: &mut Vec<Substitution>,
    expanded_start: usize,
    original_start: usize,
    original_end: usize,
    expanded_end: usize,
) {
    substitutions.push(Substitution {
        expanded_start,
        expanded_end,
        original_start,
        original_end,
    });
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Length of the part of `line` before a YAML comment: a `#` at the start or after white space,
/// outside quotes.
fn code_part_len(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut previous = ' ';
    for (index, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && previous.is_whitespace() => return index,
            None => {}
        }
        previous = c;
    }
    line.len()
}

impl Expanded {
    /// Maps a byte offset in the expanded text to the byte offset the user wrote. An offset
    /// inside a substituted value maps to the start of its `${...}`.
    pub fn original_offset(&self, expanded: usize) -> usize {
        let index = self
            .substitutions
            .partition_point(|s| s.expanded_start <= expanded);
        match index.checked_sub(1).map(|i| self.substitutions[i]) {
            None => expanded,
            Some(s) if expanded < s.expanded_end => s.original_start,
            Some(s) => s.original_end + (expanded - s.expanded_end),
        }
    }
}

/// Line and column (both 1-based, column in characters) of a byte offset in `text`.
pub use weir_model::yaml::line_column;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PORT" => Some("18830".into()),
            "SECRET" => Some("s3cr3t-value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_set_variables_and_defaults() {
        let e = expand("a: ${PORT}\nb: ${NOPE:-x y}\nc: ${EMPTY:-d}\n", env).unwrap();
        assert_eq!(e.text, "a: 18830\nb: x y\nc: \n");
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        let e = expand("p: a$$b${PORT}", env).unwrap();
        assert_eq!(e.text, "p: a$b18830");
        assert_eq!(e.original_offset(e.text.find('1').unwrap()), 7);
    }

    #[test]
    fn comments_are_not_expanded() {
        let e = expand("# ${UNSET}\nx: \"#${PORT}\" # ${UNSET}\n", env).unwrap();
        assert_eq!(e.text, "# ${UNSET}\nx: \"#18830\" # ${UNSET}\n");
    }

    #[test]
    fn unset_variable_is_an_error_with_its_offset() {
        let err = expand("a: 1\nb: ${MISSING}\n", env).unwrap_err();
        assert_eq!(
            err,
            EnvError::Unset {
                name: "MISSING".into(),
                offset: 8
            }
        );
        assert_eq!(line_column("a: 1\nb: ${MISSING}\n", err.offset()), (2, 4));
    }

    #[test]
    fn malformed_references_are_errors() {
        assert!(matches!(
            expand("a: ${PORT", env),
            Err(EnvError::Malformed { .. })
        ));
        assert!(matches!(
            expand("a: ${1X}", env),
            Err(EnvError::Malformed { .. })
        ));
    }

    #[test]
    fn offsets_after_a_substitution_map_back() {
        let original = "k: ${SECRET} bad";
        let e = expand(original, env).unwrap();
        let bad = e.text.find("bad").unwrap();
        assert_eq!(e.original_offset(bad), original.find("bad").unwrap());
        let inside = e.text.find("cr3t").unwrap();
        assert_eq!(e.original_offset(inside), original.find("${").unwrap());
    }
}
