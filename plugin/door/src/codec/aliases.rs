//! Topic aliases the door sets on what it sends an MQTT 5 client (server to client), within the
//! maximum the client gave in its CONNECT.
//!
//! The first message on a topic carries the topic and a new alias; later ones carry the alias
//! and an empty topic. Aliases are handed out in order until the client's maximum; topics seen
//! after that go in full (an alias is never moved to another topic, so a client never has to
//! follow a remapping). Aliases live as long as the connection.

use bytestring::ByteString;
use std::collections::HashMap;

/// What to write for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    /// The topic has this alias already: send the alias and an empty topic.
    Known(u16),
    /// The topic gets this alias: send both; [`TopicAliases::assign`] once it was written.
    New(u16),
    /// No alias: send the topic.
    None,
}

/// One connection's outbound topic aliases.
///
/// ```
/// # use weir_door::codec::aliases::{Alias, TopicAliases};
/// let mut aliases = TopicAliases::new(1);
/// assert_eq!(aliases.lookup("a"), Alias::New(1));
/// aliases.assign("a".into(), 1);
/// assert_eq!(aliases.lookup("a"), Alias::Known(1));
/// assert_eq!(aliases.lookup("b"), Alias::None);
/// ```
#[derive(Debug, Default)]
pub struct TopicAliases {
    maximum: u16,
    by_topic: HashMap<ByteString, u16>,
}

impl TopicAliases {
    /// Aliases up to `maximum` (0: none).
    pub fn new(maximum: u16) -> TopicAliases {
        TopicAliases {
            maximum,
            by_topic: HashMap::new(),
        }
    }

    /// What to send for `topic`.
    pub fn lookup(&self, topic: &str) -> Alias {
        if self.maximum == 0 || topic.is_empty() {
            return Alias::None;
        }
        if let Some(&alias) = self.by_topic.get(topic) {
            return Alias::Known(alias);
        }
        // Fewer than `maximum` (a u16) are assigned, so the next fits.
        match u16::try_from(self.by_topic.len() + 1) {
            Ok(next) if next <= self.maximum => Alias::New(next),
            _ => Alias::None,
        }
    }

    /// Records that `topic` went out with `alias` (from [`Alias::New`]).
    pub fn assign(&mut self, topic: ByteString, alias: u16) {
        self.by_topic.insert(topic, alias);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_run_out_at_the_clients_maximum_and_never_move() {
        let mut aliases = TopicAliases::new(2);
        for topic in ["a", "b", "c"] {
            if let Alias::New(alias) = aliases.lookup(topic) {
                aliases.assign(topic.into(), alias);
            }
        }
        assert_eq!(aliases.lookup("a"), Alias::Known(1));
        assert_eq!(aliases.lookup("b"), Alias::Known(2));
        assert_eq!(aliases.lookup("c"), Alias::None);
    }

    #[test]
    fn a_client_without_a_maximum_gets_no_alias() {
        assert_eq!(TopicAliases::new(0).lookup("a"), Alias::None);
    }
}
