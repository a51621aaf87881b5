//! mosquitto's ACL file: who may publish to and read which topics.
//!
//! ```text
//! # before any `user` line: rules for clients without a username
//! topic read public/#
//! user alice
//! topic readwrite sensors/#
//! topic deny sensors/secret
//! # for every client, %c its client id and %u its user name
//! pattern write devices/%c/#
//! ```
//!
//! `topic [read|write|readwrite|deny] FILTER` (no access word: readwrite) applies to the user of
//! the `user` line above it, or to anonymous clients before any; `pattern` lines apply to every
//! client wherever they are, with `%c` and `%u` replaced (a pattern naming `%u` does not apply
//! to a client without a user name, nor one naming an id or user containing `/`, `+` or `#`).
//! Everything not granted is denied, and a matching `deny` rule wins over any grant, as in
//! mosquitto. A subscription is allowed when its whole filter lies within a readable rule's
//! filter (`sensors/+/t` within `sensors/#`; `#` within nothing narrower).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_model::topic::TopicFilter;

/// An ACL file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The file could not be read.
    #[error("cannot read ACL file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line Weir does not understand.
    #[error("{path}:{line}:{column}: {what}")]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        what: String,
    },
}

/// What a rule grants (or, for `deny`, refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Subscribe and receive.
    Read,
    /// Publish.
    Write,
    /// Both.
    ReadWrite,
    /// Neither, whatever else grants.
    Deny,
}

impl Access {
    fn grants(self, wanted: Access) -> bool {
        matches!(
            (self, wanted),
            (Access::ReadWrite, Access::Read | Access::Write)
                | (Access::Read, Access::Read)
                | (Access::Write, Access::Write)
        )
    }
}

/// A rule as written (patterns still hold `%c`/`%u`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    access: Access,
    filter: String,
}

/// The rules of an ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFile {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl AclFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<AclFile, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        AclFile::parse(&text, path)
    }

    /// Parses `text`, naming `path` in errors.
    ///
    /// ```
    /// use weir_door::security::acl::AclFile;
    /// use std::path::Path;
    /// let acl = AclFile::parse("user alice\ntopic write a/#\n", Path::new("acl")).unwrap();
    /// let alice = acl.for_client("c1", Some("alice"));
    /// assert!(alice.may_write("a/b"));
    /// assert!(!alice.may_read("a/b"));
    /// assert!(!acl.for_client("c2", None).may_write("a/b"));
    /// let bad = AclFile::parse("topic sometimes a/#\n", Path::new("acl")).unwrap_err();
    /// assert_eq!(bad.to_string(), "acl:1:7: unknown access `sometimes`, expected read, write, readwrite or deny");
    /// ```
    pub fn parse(text: &str, path: &Path) -> Result<AclFile, AclError> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (index, line) in text.lines().enumerate() {
            let error = |column: usize, what: String| AclError::Line {
                path: path.to_path_buf(),
                line: index + 1,
                column,
                what,
            };
            let line = line.trim_end_matches('\r');
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            let (keyword, rest) = trimmed.split_once([' ', '\t']).unwrap_or((trimmed, ""));
            let rest_column = indent + keyword.len() + 2 + (rest.len() - rest.trim_start().len());
            let rest = rest.trim();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(error(indent + 1, "`user` needs a user name".into()));
                    }
                    user = Some(rest.to_string());
                }
                "topic" | "pattern" => {
                    let rule =
                        rule(rest).map_err(|(offset, what)| error(rest_column + offset, what))?;
                    match (keyword, &user) {
                        ("pattern", _) => acl.patterns.push(rule),
                        (_, Some(user)) => acl.users.entry(user.clone()).or_default().push(rule),
                        (_, None) => acl.anonymous.push(rule),
                    }
                }
                other => {
                    return Err(error(
                        indent + 1,
                        format!("unknown keyword `{other}`, expected user, topic or pattern"),
                    ))
                }
            }
        }
        Ok(acl)
    }

    /// The rules that apply to client `client_id` with `username`, patterns filled in.
    pub fn for_client(&self, client_id: &str, username: Option<&str>) -> ClientAcl {
        let own = match username {
            Some(user) => self.users.get(user).map(Vec::as_slice).unwrap_or_default(),
            None => &self.anonymous,
        };
        let unsafe_value = |v: &str| v.contains(['/', '+', '#']);
        let mut rules: Vec<(Access, TopicFilter)> = own
            .iter()
            .filter_map(|r| Some((r.access, TopicFilter::new(&r.filter).ok()?)))
            .collect();
        for pattern in &self.patterns {
            if pattern.filter.contains("%c") && unsafe_value(client_id) {
                continue;
            }
            if pattern.filter.contains("%u") && username.is_none_or(unsafe_value) {
                continue;
            }
            let filled = pattern
                .filter
                .replace("%c", client_id)
                .replace("%u", username.unwrap_or_default());
            if let Ok(filter) = TopicFilter::new(&filled) {
                rules.push((pattern.access, filter));
            }
        }
        ClientAcl {
            rules: rules.into(),
        }
    }
}

/// `[access] filter` of a `topic` or `pattern` line; on an error, the byte offset in `rest`
/// and what is wrong.
fn rule(rest: &str) -> Result<Rule, (usize, String)> {
    if rest.is_empty() {
        return Err((0, "expected `[read|write|readwrite|deny] FILTER`".into()));
    }
    let (first, after) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let after = after.trim();
    let (access, filter, at) = if after.is_empty() {
        (Access::ReadWrite, first, 0)
    } else {
        let access = match first {
            "read" => Access::Read,
            "write" => Access::Write,
            "readwrite" => Access::ReadWrite,
            "deny" => Access::Deny,
            other => {
                return Err((
                    0,
                    format!("unknown access `{other}`, expected read, write, readwrite or deny"),
                ))
            }
        };
        (access, after, rest.len() - after.len())
    };
    let checked = filter.replace("%c", "c").replace("%u", "u");
    TopicFilter::new(&checked).map_err(|e| (at, e.to_string()))?;
    Ok(Rule {
        access,
        filter: filter.to_string(),
    })
}

/// One client's rules, decided at CONNECT (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct ClientAcl {
    rules: Arc<[(Access, TopicFilter)]>,
}

impl ClientAcl {
    /// Whether the client may publish to `topic`.
    pub fn may_write(&self, topic: &str) -> bool {
        self.allows(Access::Write, |filter| filter.matches(topic))
    }

    /// Whether the client may receive a message on `topic`.
    pub fn may_read(&self, topic: &str) -> bool {
        self.allows(Access::Read, |filter| filter.matches(topic))
    }

    /// Whether the client may subscribe to `filter`: it lies within a readable rule's filter
    /// and within no deny rule's. Under a broader subscription, deliveries on denied topics
    /// are refused one by one ([`ClientAcl::may_read`]).
    pub fn may_subscribe(&self, filter: &TopicFilter) -> bool {
        let denied = self
            .rules
            .iter()
            .any(|(access, rule)| *access == Access::Deny && rule.contains(filter));
        !denied
            && self
                .rules
                .iter()
                .any(|(access, rule)| access.grants(Access::Read) && rule.contains(filter))
    }

    fn allows(&self, wanted: Access, matches: impl Fn(&TopicFilter) -> bool) -> bool {
        let mut granted = false;
        for (access, filter) in self.rules.iter() {
            if *access == Access::Deny {
                if matches(filter) {
                    return false;
                }
            } else if !granted && access.grants(wanted) && matches(filter) {
                granted = true;
            }
        }
        granted
    }
}

#[cfg(test)]
mod tests;
