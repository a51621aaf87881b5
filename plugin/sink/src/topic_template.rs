//! Output topics made from the result's own topic.
//!
//! A template is an MQTT topic name in which `{topic}` stands for the whole topic of the
//! result message, `{N}` for its level N (0-based) and `{N..}` for its levels from N on.
//! `processed/{1..}` turns `sensors/gw1/temperature` into `processed/gw1/temperature`.

use std::fmt;
use weir_model::topic::{check_topic_name, TopicError, TopicFilter};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Topic,
    Level(usize),
    LevelsFrom(usize),
}

/// An output topic template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    written: String,
    parts: Vec<Part>,
}

/// Why a template is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{` without its `}` or with something else than `topic`, `N` or `N..` inside.
    #[error("invalid placeholder `{0}`: expected {{topic}}, {{N}} or {{N..}}")]
    Placeholder(String),
    /// The text around the placeholders is not a valid topic name.
    #[error(transparent)]
    Topic(#[from] TopicError),
}

impl TopicTemplate {
    /// Parses a template.
    ///
    /// ```
    /// use weir_sink::TopicTemplate;
    /// let template = TopicTemplate::parse("processed/{1..}").unwrap();
    /// assert_eq!(template.render(b"sensors/gw1/temperature").as_deref(), Some("processed/gw1/temperature"));
    /// assert_eq!(TopicTemplate::parse("out/{2}").unwrap().render(b"a/b"), None);
    /// assert!(TopicTemplate::parse("out/{x}").is_err());
    /// ```
    pub fn parse(written: &str) -> Result<TopicTemplate, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = written;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| TemplateError::Placeholder(rest[open..].to_string()))?
                + open;
            let inside = &rest[open + 1..close];
            let part = if inside == "topic" {
                Part::Topic
            } else if let Some(from) = inside.strip_suffix("..") {
                Part::LevelsFrom(
                    from.parse()
                        .map_err(|_| TemplateError::Placeholder(format!("{{{inside}}}")))?,
                )
            } else {
                Part::Level(
                    inside
                        .parse()
                        .map_err(|_| TemplateError::Placeholder(format!("{{{inside}}}")))?,
                )
            };
            parts.push(part);
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        let template = TopicTemplate {
            written: written.to_string(),
            parts,
        };
        // The literal text must make a valid topic name whatever the placeholders become.
        check_topic_name(&template.fill_with("x", "x"))?;
        Ok(template)
    }

    /// Whether the template has no placeholder.
    pub fn is_fixed(&self) -> bool {
        self.parts.iter().all(|part| matches!(part, Part::Text(_)))
    }

    /// The topic for a result whose own topic is `topic`, or `None` when a level it needs is
    /// missing or the result is not a valid topic name.
    pub fn render(&self, topic: &[u8]) -> Option<String> {
        let topic = std::str::from_utf8(topic).ok()?;
        let levels: Vec<&str> = topic.split('/').collect();
        let mut out = String::with_capacity(self.written.len() + topic.len());
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Topic => out.push_str(topic),
                Part::Level(n) => out.push_str(levels.get(*n)?),
                Part::LevelsFrom(n) => {
                    if *n >= levels.len() {
                        return None;
                    }
                    out.push_str(&levels[*n..].join("/"));
                }
            }
        }
        check_topic_name(&out).ok()?;
        Some(out)
    }

    /// A filter matching every topic the template can produce (placeholders as wildcards),
    /// for checking that a graph's output cannot feed its own input.
    ///
    /// ```
    /// use weir_sink::TopicTemplate;
    /// assert_eq!(TopicTemplate::parse("processed/{1..}").unwrap().reach().as_str(), "processed/#");
    /// assert_eq!(TopicTemplate::parse("out/{0}/x").unwrap().reach().as_str(), "out/+/x");
    /// ```
    pub fn reach(&self) -> TopicFilter {
        // Literal text holds no `+` or `#` (checked by `parse`), so they mark the placeholders.
        let marked = self.fill_with("+", "#");
        let mut levels = Vec::new();
        for level in marked.split('/') {
            if level.contains('#') {
                levels.push("#");
                break;
            }
            levels.push(if level.contains('+') { "+" } else { level });
        }
        TopicFilter::new(&levels.join("/"))
            .unwrap_or_else(|_| TopicFilter::new("#").expect("`#` is a valid filter"))
    }

    /// The template with each `{N}` replaced by `level` and each `{topic}` or `{N..}` by
    /// `levels`.
    fn fill_with(&self, level: &str, levels: &str) -> String {
        let mut out = String::new();
        for part in &self.parts {
            out.push_str(match part {
                Part::Text(text) => text,
                Part::Level(_) => level,
                Part::Topic | Part::LevelsFrom(_) => levels,
            });
        }
        out
    }
}

impl fmt::Display for TopicTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}
