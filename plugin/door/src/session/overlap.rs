//! One copy of a message for a client whose subscriptions overlap (`a/b` and `a/#`).
//!
//! The router sends a client one copy of a message for each of its subscriptions the topic
//! matches. The door delivers the first copy that arrives, at the highest QoS those
//! subscriptions grant and carrying each one's subscription identifier (MQTT 5, 3.3.4), and
//! drops the others, which it knows by the message's number ([`crate::tag::Tag::sequence`]).
//! A session whose filters cannot overlap (most have one) pays nothing per message: whether
//! two of them can match one topic is worked out when they change.
//!
//! Shared subscriptions are left out: a group delivers through its own link, and MQTT gives a
//! client a shared subscription's message as well as its own subscriptions'. So are `$SYS` and
//! `$weir` filters, which the door serves itself.

use super::{Subscription, Subscriptions};
use smallvec::SmallVec;
use std::collections::{HashMap, VecDeque};
use weir_model::topic::{filter_matches, TopicFilter};

/// How many delivered messages a session remembers the copies still to come of. A copy that
/// never comes (its subscription went meanwhile) is forgotten after this many more messages;
/// a copy that comes after its message was forgotten is delivered again, never lost.
const REMEMBERED: usize = 1024;

/// Past this many filters, whether two overlap is not worked out (it takes a comparison of
/// every pair): each message is matched against them all.
const PAIRS_UP_TO: usize = 256;

/// The subscriptions (by door id) a message's first copy is delivered for.
pub(crate) type Matched = SmallVec<[u32; 4]>;

/// What to do with one copy the router sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Copy {
    /// The message's only copy: deliver it for the subscription it came through.
    Only,
    /// The first of several: deliver it once for all these subscriptions.
    First(Matched),
    /// A copy of a message already delivered: drop it.
    Repeat,
}

/// A session's record of the copies still to come.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Overlaps {
    /// Whether two of the session's filters can match one topic.
    possible: bool,
    /// Copies still to come, by message number.
    expected: HashMap<u64, usize>,
    /// The message numbers in `expected`, oldest first (some already done).
    order: VecDeque<u64>,
}

/// Whether the router delivers `subscription`'s messages on the client's own link.
fn routed(subscription: &Subscription) -> bool {
    !subscription.is_local() && !subscription.filter.starts_with("$share/")
}

impl Overlaps {
    #[cfg(test)]
    fn of(subscriptions: &Subscriptions) -> Overlaps {
        let mut overlaps = Overlaps::default();
        overlaps.update(subscriptions);
        overlaps
    }

    /// Notes the session's subscriptions as they are now.
    pub fn update(&mut self, subscriptions: &Subscriptions) {
        let filters: Vec<TopicFilter> = subscriptions
            .values()
            .filter(|s| routed(s))
            .filter_map(|s| TopicFilter::new(&s.filter).ok())
            .collect();
        self.possible = filters.len() > PAIRS_UP_TO
            || filters
                .iter()
                .enumerate()
                .any(|(i, a)| filters[i + 1..].iter().any(|b| a.overlaps(b)));
        if !self.possible {
            self.expected.clear();
            self.order.clear();
        }
    }

    /// Whether two of the session's filters can match one topic (else every copy is the
    /// only one).
    pub fn possible(&self) -> bool {
        self.possible
    }

    /// What to do with a copy of message `sequence` on `topic`, given the session's
    /// `subscriptions` (the one it came through among them).
    pub fn copy(&mut self, subscriptions: &Subscriptions, topic: &[u8], sequence: u64) -> Copy {
        if !self.possible {
            return Copy::Only;
        }
        if let Some(left) = self.expected.get_mut(&sequence) {
            *left -= 1;
            if *left == 0 {
                self.expected.remove(&sequence);
            }
            return Copy::Repeat;
        }
        let Ok(topic) = std::str::from_utf8(topic) else {
            return Copy::Only;
        };
        let mut matched: Matched = subscriptions
            .iter()
            .filter(|(_, s)| routed(s) && filter_matches(&s.filter, topic))
            .map(|(id, _)| *id)
            .collect();
        if matched.len() < 2 {
            return Copy::Only;
        }
        // Identifiers in the order the client subscribed.
        matched.sort_unstable();
        self.remember(sequence, matched.len() - 1);
        Copy::First(matched)
    }

    fn remember(&mut self, sequence: u64, copies: usize) {
        if self.order.len() >= REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.expected.remove(&oldest);
            }
        }
        self.order.push_back(sequence);
        self.expected.insert(sequence, copies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriptions(filters: &[&str]) -> Subscriptions {
        (1..)
            .zip(filters.iter().map(|f| Subscription::to(f)))
            .collect()
    }

    #[test]
    fn filters_that_cannot_overlap_cost_nothing() {
        let subs = subscriptions(&["a/b", "c/#", "$share/g/a/#", "$SYS/#"]);
        let mut overlaps = Overlaps::of(&subs);
        assert!(!overlaps.possible);
        assert_eq!(overlaps.copy(&subs, b"a/b", 1), Copy::Only);
        assert_eq!(overlaps.copy(&subs, b"a/b", 1), Copy::Only);
    }

    #[test]
    fn the_first_copy_is_delivered_for_every_match_and_the_others_dropped() {
        let subs = subscriptions(&["a/b", "a/#", "+/b", "c"]);
        let mut overlaps = Overlaps::of(&subs);
        assert_eq!(
            overlaps.copy(&subs, b"a/b", 7),
            Copy::First(Matched::from_slice(&[1, 2, 3]))
        );
        assert_eq!(overlaps.copy(&subs, b"a/b", 7), Copy::Repeat);
        assert_eq!(overlaps.copy(&subs, b"a/b", 7), Copy::Repeat);
        // All three came: a fourth copy with that number is another message's.
        assert_eq!(
            overlaps.copy(&subs, b"a/b", 7),
            Copy::First(Matched::from_slice(&[1, 2, 3]))
        );
        // A topic only one filter matches.
        assert_eq!(overlaps.copy(&subs, b"a/c", 8), Copy::Only);
    }

    #[test]
    fn copies_that_never_come_are_forgotten_and_a_late_one_is_delivered() {
        let subs = subscriptions(&["a/b", "a/#"]);
        let mut overlaps = Overlaps::of(&subs);
        for sequence in 0..=REMEMBERED as u64 {
            assert!(matches!(
                overlaps.copy(&subs, b"a/b", sequence),
                Copy::First(_)
            ));
        }
        assert_eq!(overlaps.expected.len(), REMEMBERED);
        assert!(matches!(overlaps.copy(&subs, b"a/b", 0), Copy::First(_)));
        assert_eq!(
            overlaps.copy(&subs, b"a/b", REMEMBERED as u64),
            Copy::Repeat
        );
    }

    #[test]
    fn an_unsubscribe_that_ends_the_overlap_forgets_what_was_expected() {
        let mut subs = subscriptions(&["a/b", "a/#"]);
        let mut overlaps = Overlaps::of(&subs);
        assert!(matches!(overlaps.copy(&subs, b"a/b", 1), Copy::First(_)));
        subs.remove(&2);
        overlaps.update(&subs);
        assert_eq!(overlaps.copy(&subs, b"a/b", 1), Copy::Only);
    }
}
