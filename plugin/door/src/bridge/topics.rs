//! A bridge's topic lines, as mosquitto's `topic` directive has them: a pattern, a direction, a
//! QoS, and prefixes that rename topics on the way. An `out` line forwards local publishes on
//! `local_prefix + pattern` to the remote as `remote_prefix + ...`; an `in` line subscribes on
//! the remote to `remote_prefix + pattern` and publishes what arrives locally as
//! `local_prefix + ...`.
//!
//! An `in` line's pattern may be a shared subscription, `$share/<group>/<filter>`, so that
//! several bridges (several Weirs) each get a share of one stream: the line subscribes on the
//! remote to `$share/<group>/` + `remote_prefix + filter`, and what arrives (on its own topic)
//! is renamed as for any `in` line.

use std::fmt;
use weir_model::topic::{TopicError, TopicFilter};

/// Which way a topic line forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local publishes go to the remote.
    Out,
    /// The remote's publishes come here.
    In,
    /// Both.
    Both,
}

impl Direction {
    /// Whether local publishes go out.
    pub fn out(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    /// Whether the remote's publishes come in.
    pub fn inward(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Out => "out",
            Direction::In => "in",
            Direction::Both => "both",
        })
    }
}

/// Why a topic line is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicRuleError {
    /// A prefix with a wildcard (mosquitto refuses them too).
    #[error("{which} `{prefix}` contains a wildcard: prefixes are literal topic levels")]
    WildcardPrefix {
        /// `local_prefix` or `remote_prefix`.
        which: &'static str,
        /// The prefix.
        prefix: String,
    },
    /// An empty pattern without both prefixes.
    #[error("an empty pattern needs `local_prefix` and `remote_prefix`: they are then the whole topics on each side")]
    EmptyPattern,
    /// The filter made of prefix and pattern is not valid.
    #[error(transparent)]
    Filter(#[from] TopicError),
    /// A QoS other than 0, 1 or 2.
    #[error("qos must be 0, 1 or 2, got {0}")]
    Qos(u8),
    /// A shared subscription on a line that also forwards out.
    #[error("a shared subscription (`$share/...`) only brings messages in: set `direction: in`")]
    SharedNotIn,
    /// A shared subscription without a group name or a filter.
    #[error("expected `$share/<group>/<filter>`, with a group name without `/`, `+` or `#` and a filter after it")]
    SharedForm,
}

/// One topic line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    /// The pattern (a topic filter, or empty when the prefixes are whole topics).
    pub pattern: String,
    /// Which way it forwards.
    pub direction: Direction,
    /// The highest QoS on the bridge hop (each message goes at the lower of this and its own).
    pub qos: u8,
    /// Prepended locally.
    pub local_prefix: String,
    /// Prepended on the remote.
    pub remote_prefix: String,
    /// The shared subscription's group, when the line subscribes as `$share/<group>/...`.
    pub share: Option<String>,
    local: TopicFilter,
    remote: TopicFilter,
    /// What the line subscribes to on the remote: the remote filter, or its shared form.
    subscription: String,
}

impl TopicRule {
    /// Checks a topic line.
    ///
    /// ```
    /// use weir_door::bridge::topics::{Direction, TopicRule};
    /// let rule = TopicRule::new("sensors/#", Direction::Out, 1, "", "plant1/").unwrap();
    /// assert_eq!(rule.to_remote("sensors/gw1/t").as_deref(), Some("plant1/sensors/gw1/t"));
    /// assert_eq!(rule.remote_filter(), "plant1/sensors/#");
    /// assert!(TopicRule::new("a/#", Direction::In, 0, "x/+/", "").is_err());
    ///
    /// let shared = TopicRule::new("$share/weir/sensors/#", Direction::In, 1, "", "site/").unwrap();
    /// assert_eq!(shared.remote_filter(), "$share/weir/site/sensors/#");
    /// assert_eq!(shared.to_local("site/sensors/t").as_deref(), Some("sensors/t"));
    /// ```
    pub fn new(
        pattern: &str,
        direction: Direction,
        qos: u8,
        local_prefix: &str,
        remote_prefix: &str,
    ) -> Result<TopicRule, TopicRuleError> {
        for (which, prefix) in [
            ("local_prefix", local_prefix),
            ("remote_prefix", remote_prefix),
        ] {
            if prefix.contains(['+', '#']) {
                return Err(TopicRuleError::WildcardPrefix {
                    which,
                    prefix: prefix.to_string(),
                });
            }
        }
        let (share, pattern) = match pattern.strip_prefix("$share/") {
            None => (None, pattern),
            Some(shared) => {
                let (group, filter) = shared.split_once('/').ok_or(TopicRuleError::SharedForm)?;
                if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
                    return Err(TopicRuleError::SharedForm);
                }
                if direction != Direction::In {
                    return Err(TopicRuleError::SharedNotIn);
                }
                (Some(group.to_string()), filter)
            }
        };
        if pattern.is_empty() && (local_prefix.is_empty() || remote_prefix.is_empty()) {
            return Err(TopicRuleError::EmptyPattern);
        }
        if qos > 2 {
            return Err(TopicRuleError::Qos(qos));
        }
        let remote = TopicFilter::new(&format!("{remote_prefix}{pattern}"))?;
        let subscription = match &share {
            Some(group) => format!("$share/{group}/{}", remote.as_str()),
            None => remote.as_str().to_string(),
        };
        Ok(TopicRule {
            pattern: pattern.to_string(),
            direction,
            qos,
            local_prefix: local_prefix.to_string(),
            remote_prefix: remote_prefix.to_string(),
            share,
            local: TopicFilter::new(&format!("{local_prefix}{pattern}"))?,
            remote,
            subscription,
        })
    }

    /// The filter local publishes are matched against.
    pub fn local_filter(&self) -> &str {
        self.local.as_str()
    }

    /// The filter the bridge subscribes to on the remote (`$share/<group>/...` for a shared
    /// line).
    pub fn remote_filter(&self) -> &str {
        &self.subscription
    }

    /// The remote topic of local `topic`, if this line forwards it out.
    pub fn to_remote(&self, topic: &str) -> Option<String> {
        if !self.direction.out() || !self.local.matches(topic) {
            return None;
        }
        let rest = topic.strip_prefix(self.local_prefix.as_str())?;
        Some(format!("{}{rest}", self.remote_prefix))
    }

    /// The local topic of remote `topic`, if this line brings it in.
    pub fn to_local(&self, topic: &str) -> Option<String> {
        if !self.direction.inward() || !self.remote.matches(topic) {
            return None;
        }
        let rest = topic.strip_prefix(self.remote_prefix.as_str())?;
        Some(format!("{}{rest}", self.local_prefix))
    }
}

/// The first `out` line forwarding local `topic`: its remote topic and the line's QoS.
pub fn outward(rules: &[TopicRule], topic: &str) -> Option<(String, u8)> {
    rules
        .iter()
        .find_map(|rule| Some((rule.to_remote(topic)?, rule.qos)))
}

/// The first `in` line bringing remote `topic` in: its local topic.
pub fn inward(rules: &[TopicRule], topic: &str) -> Option<String> {
    rules.iter().find_map(|rule| rule.to_local(topic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_rename_both_ways() {
        let rule = TopicRule::new("commands/#", Direction::Both, 2, "local/", "plant1/").unwrap();
        assert_eq!(rule.local_filter(), "local/commands/#");
        assert_eq!(
            rule.to_remote("local/commands/reboot").as_deref(),
            Some("plant1/commands/reboot")
        );
        assert_eq!(
            rule.to_local("plant1/commands/reboot").as_deref(),
            Some("local/commands/reboot")
        );
        assert_eq!(rule.to_remote("commands/reboot"), None);
    }

    #[test]
    fn direction_decides_which_way() {
        let out = TopicRule::new("a/#", Direction::Out, 0, "", "").unwrap();
        let inward_only = TopicRule::new("a/#", Direction::In, 0, "", "").unwrap();
        assert!(out.to_remote("a/b").is_some() && out.to_local("a/b").is_none());
        assert!(inward_only.to_local("a/b").is_some() && inward_only.to_remote("a/b").is_none());
    }

    #[test]
    fn an_empty_pattern_maps_one_topic_to_another() {
        let rule = TopicRule::new("", Direction::In, 1, "local/state", "remote/state").unwrap();
        assert_eq!(rule.remote_filter(), "remote/state");
        assert_eq!(
            rule.to_local("remote/state").as_deref(),
            Some("local/state")
        );
        assert_eq!(rule.to_local("remote/state/x"), None);
        assert_eq!(
            TopicRule::new("", Direction::In, 1, "", "remote/"),
            Err(TopicRuleError::EmptyPattern)
        );
    }

    #[test]
    fn the_first_matching_line_wins() {
        let rules = [
            TopicRule::new("a/b", Direction::Out, 2, "", "first/").unwrap(),
            TopicRule::new("a/#", Direction::Out, 0, "", "second/").unwrap(),
        ];
        assert_eq!(outward(&rules, "a/b"), Some(("first/a/b".into(), 2)));
        assert_eq!(outward(&rules, "a/c"), Some(("second/a/c".into(), 0)));
        assert_eq!(outward(&rules, "b"), None);
    }

    #[test]
    fn a_shared_line_subscribes_to_its_share_and_renames_as_any_in_line() {
        let rule = TopicRule::new("$share/weir/sensors/#", Direction::In, 1, "in/", "").unwrap();
        assert_eq!(rule.share.as_deref(), Some("weir"));
        assert_eq!(rule.remote_filter(), "$share/weir/sensors/#");
        assert_eq!(rule.local_filter(), "in/sensors/#");
        assert_eq!(
            rule.to_local("sensors/a/t").as_deref(),
            Some("in/sensors/a/t")
        );
        assert_eq!(rule.to_local("$share/weir/sensors/a/t"), None);
    }

    #[test]
    fn shared_lines_bring_in_only_and_need_a_group_and_a_filter() {
        for direction in [Direction::Out, Direction::Both] {
            assert_eq!(
                TopicRule::new("$share/g/a/#", direction, 1, "", ""),
                Err(TopicRuleError::SharedNotIn)
            );
        }
        for bad in [
            "$share/g",
            "$share//a",
            "$share/g/",
            "$share/g+/a",
            "$share/#/a",
        ] {
            assert_eq!(
                TopicRule::new(bad, Direction::In, 1, "", ""),
                Err(TopicRuleError::SharedForm),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_lines_are_refused() {
        assert!(matches!(
            TopicRule::new("a", Direction::Out, 3, "", ""),
            Err(TopicRuleError::Qos(3))
        ));
        assert!(matches!(
            TopicRule::new("a/#/b", Direction::Out, 0, "", ""),
            Err(TopicRuleError::Filter(_))
        ));
        assert!(matches!(
            TopicRule::new("a", Direction::Out, 0, "", "x/#/"),
            Err(TopicRuleError::WildcardPrefix {
                which: "remote_prefix",
                ..
            })
        ));
    }
}
