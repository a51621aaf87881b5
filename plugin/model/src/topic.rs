//! MQTT topic filters: validation, matching, and whether a graph's output could feed its own
//! input (a publish loop).

use std::fmt;

/// A valid MQTT topic filter (`sensors/+/temperature`, `sensors/#`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter(String);

/// Why a string is not a topic filter or topic name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Empty.
    #[error("a topic filter cannot be empty")]
    Empty,
    /// `#` not alone in the last level, or `+` not alone in its level.
    #[error("invalid topic filter `{0}`: `+` must fill a whole level and `#` a whole last level")]
    Wildcard(String),
    /// A wildcard in a topic name (where only filters may have them).
    #[error("a topic name cannot contain wildcards: `{0}`")]
    WildcardInName(String),
    /// A NUL character.
    #[error("a topic cannot contain NUL: `{0}`")]
    Nul(String),
}

impl TopicFilter {
    /// Checks `filter` against the MQTT rules.
    ///
    /// ```
    /// use weir_model::topic::TopicFilter;
    /// let filter = TopicFilter::new("sensors/+/temperature").unwrap();
    /// assert!(filter.matches("sensors/gw1/temperature"));
    /// assert!(!filter.matches("sensors/gw1/humidity"));
    /// assert!(TopicFilter::new("sensors/#/x").is_err());
    /// ```
    pub fn new(filter: &str) -> Result<TopicFilter, TopicError> {
        if filter.is_empty() {
            return Err(TopicError::Empty);
        }
        if filter.contains('\0') {
            return Err(TopicError::Nul(filter.to_string()));
        }
        let levels: Vec<&str> = filter.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            let last = i + 1 == levels.len();
            let bad_hash = level.contains('#') && (*level != "#" || !last);
            let bad_plus = level.contains('+') && *level != "+";
            if bad_hash || bad_plus {
                return Err(TopicError::Wildcard(filter.to_string()));
            }
        }
        Ok(TopicFilter(filter.to_string()))
    }

    /// The filter as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the topic name `topic` matches. Topics starting with `$` match only filters
    /// that start with the same literal level (MQTT 4.7.2).
    pub fn matches(&self, topic: &str) -> bool {
        filter_matches(&self.0, topic)
    }

    /// Whether every topic `inner` matches, this filter matches too (a subscription within an
    /// ACL rule).
    ///
    /// ```
    /// use weir_model::topic::TopicFilter;
    /// let rule = TopicFilter::new("sensors/#").unwrap();
    /// assert!(rule.contains(&TopicFilter::new("sensors/+/t").unwrap()));
    /// assert!(rule.contains(&TopicFilter::new("sensors").unwrap()));
    /// assert!(!rule.contains(&TopicFilter::new("#").unwrap()));
    /// assert!(!TopicFilter::new("a/+").unwrap().contains(&TopicFilter::new("a/#").unwrap()));
    /// ```
    pub fn contains(&self, inner: &TopicFilter) -> bool {
        let mut outer = self.0.split('/');
        let mut inner = inner.0.split('/');
        loop {
            match (outer.next(), inner.next()) {
                (Some("#"), _) => return true,
                (Some("+"), Some(level)) if level != "#" => {}
                (Some(o), Some(i)) if o == i && i != "+" && i != "#" => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }

    /// Whether some topic name could match both filters (used to find publish loops, where
    /// the output side may itself be a pattern).
    pub fn overlaps(&self, other: &TopicFilter) -> bool {
        let mut a = self.0.split('/');
        let mut b = other.0.split('/');
        loop {
            match (a.next(), b.next()) {
                (Some("#"), _) | (_, Some("#")) => return true,
                (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
                (Some(x), Some(y)) if x == y => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether the topic name `topic` matches `filter`, a filter already checked (as
/// [`TopicFilter::new`] does). Topics starting with `$` match only filters that start with the
/// same literal level (MQTT 4.7.2).
///
/// ```
/// use weir_model::topic::filter_matches;
/// assert!(filter_matches("a/#", "a/b/c"));
/// assert!(!filter_matches("#", "$SYS/broker/uptime"));
/// ```
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut filter = filter.split('/');
    let mut name = topic.split('/');
    let mut first = true;
    loop {
        match (filter.next(), name.next()) {
            (Some("#"), Some(level)) => return !(first && level.starts_with('$')),
            (Some("#"), None) => return true,
            (Some("+"), Some(level)) if !(first && level.starts_with('$')) => {}
            (Some(f), Some(n)) if f == n => {}
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

/// Checks a topic name (what a message is published to): no wildcards.
pub fn check_topic_name(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.contains(['+', '#']) {
        return Err(TopicError::WildcardInName(topic.to_string()));
    }
    if topic.contains('\0') {
        return Err(TopicError::Nul(topic.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(filter: &str) -> TopicFilter {
        TopicFilter::new(filter).unwrap()
    }

    #[test]
    fn validates_wildcards() {
        for good in ["a", "a/b", "+", "#", "a/+/b", "a/#", "+/+/#", "/a", "a//b"] {
            assert!(TopicFilter::new(good).is_ok(), "{good}");
        }
        for bad in ["", "a/#/b", "a#", "a+/b", "#/a", "a/b+"] {
            assert!(TopicFilter::new(bad).is_err(), "{bad}");
        }
        assert!(check_topic_name("a/+").is_err());
        assert!(check_topic_name("a/b").is_ok());
    }

    #[test]
    fn matches_like_mqtt() {
        assert!(f("a/#").matches("a"));
        assert!(f("a/#").matches("a/b/c"));
        assert!(f("#").matches("a/b"));
        assert!(f("+/b").matches("a/b"));
        assert!(!f("+/b").matches("a/b/c"));
        assert!(f("+/+").matches("/b"));
        assert!(!f("a/+").matches("a"));
        assert!(!f("#").matches("$SYS/x"));
        assert!(!f("+/x").matches("$SYS/x"));
        assert!(f("$SYS/#").matches("$SYS/x"));
    }

    #[test]
    fn finds_overlaps() {
        assert!(f("sensors/+/temperature").overlaps(&f("sensors/gw1/temperature")));
        assert!(f("sensors/#").overlaps(&f("sensors/x/y")));
        assert!(f("a/+").overlaps(&f("+/b")));
        assert!(!f("processed/+").overlaps(&f("sensors/+")));
        assert!(!f("a/b").overlaps(&f("a/b/c")));
        assert!(f("a/b/#").overlaps(&f("a/b")));
    }
}
