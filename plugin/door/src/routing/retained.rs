//! Retained messages, kept by the door: the last retained message of each topic, given to a
//! subscription when it is made (as its retain handling says) and never by the router, which
//! holds none (publishes reach it with the retain flag cleared). A retained message expires
//! with its message expiry interval.

use crate::delivery::Delivery;
use crate::message::Properties;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Mutex;
use weir_model::topic::TopicFilter;

/// A retained message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retained {
    /// Its topic.
    pub topic: Bytes,
    /// Its payload (never empty: an empty one clears the topic).
    pub payload: Bytes,
    /// The QoS it was published with.
    pub qos: u8,
    /// Its MQTT 5 properties.
    pub properties: Option<Box<Properties>>,
    /// When it expires (ms since the Unix epoch).
    pub expires_at: Option<u64>,
}

/// The retained messages, by topic.
///
/// ```
/// use bytes::Bytes;
/// use weir_door::retained::{Retained, RetainedStore};
/// use weir_model::topic::TopicFilter;
///
/// let store = RetainedStore::default();
/// let message = |topic: &'static str, payload: &'static str| Retained {
///     topic: Bytes::from_static(topic.as_bytes()),
///     payload: Bytes::from_static(payload.as_bytes()),
///     qos: 1,
///     properties: None,
///     expires_at: None,
/// };
/// store.set("a/b", message("a/b", "on"));
/// store.set("a/c", message("a/c", "off"));
/// assert_eq!(store.len(), 2);
/// let found = store.matching(&TopicFilter::new("a/+").unwrap(), 0);
/// assert_eq!(found.len(), 2);
/// store.clear("a/b");
/// assert_eq!(store.matching(&TopicFilter::new("a/b").unwrap(), 0).len(), 0);
/// ```
#[derive(Debug, Default)]
pub struct RetainedStore {
    messages: Mutex<HashMap<String, Retained>>,
    /// Changed since the last [`RetainedStore::snapshot_if_changed`].
    changed: AtomicBool,
}

impl RetainedStore {
    /// Keeps `message` as the retained message of `topic`; returns how many there are.
    pub fn set(&self, topic: &str, message: Retained) -> usize {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages.insert(topic.to_string(), message);
        self.changed.store(true, Relaxed);
        messages.len()
    }

    /// Clears the retained message of `topic`; returns how many there are.
    pub fn clear(&self, topic: &str) -> usize {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if messages.remove(topic).is_some() {
            self.changed.store(true, Relaxed);
        }
        messages.len()
    }

    /// Every message not expired at `now`, when any changed since the last call.
    pub fn snapshot_if_changed(&self, now: u64) -> Option<Vec<(String, Retained)>> {
        let messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        if !self.changed.swap(false, Relaxed) {
            return None;
        }
        Some(
            messages
                .iter()
                .filter(|(_, m)| m.expires_at.is_none_or(|at| at > now))
                .map(|(topic, m)| (topic.clone(), m.clone()))
                .collect(),
        )
    }

    /// Marks the messages as not saved yet.
    pub fn mark_changed(&self) {
        self.changed.store(true, Relaxed);
    }

    /// Puts back messages kept on disk (those expired at `now` are left out); returns how
    /// many there are.
    pub fn restore(&self, kept: Vec<(String, Retained)>, now: u64) -> usize {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages.extend(
            kept.into_iter()
                .filter(|(_, m)| m.expires_at.is_none_or(|at| at > now)),
        );
        messages.len()
    }

    /// How many topics have a retained message.
    pub fn len(&self) -> usize {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Whether none has.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The retained messages whose topic `filter` matches and that have not expired at `now`
    /// (ms since the Unix epoch), in topic order; expired ones are removed.
    pub fn matching(&self, filter: &TopicFilter, now: u64) -> Vec<Retained> {
        let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        messages.retain(|_, m| m.expires_at.is_none_or(|at| at > now));
        let mut found: Vec<(&String, &Retained)> = messages
            .iter()
            .filter(|(topic, _)| {
                // `#` and `+` at the first level do not match `$` topics.
                (!topic.starts_with('$') || filter.as_str().starts_with('$'))
                    && filter.matches(topic)
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        found.into_iter().map(|(_, m)| m.clone()).collect()
    }
}

impl Retained {
    /// The message for a subscriber granted `qos`, with `identifier`: retained, at the lower
    /// QoS.
    pub fn delivery(self, qos: u8, identifier: Option<u32>) -> Delivery {
        Delivery {
            topic: self.topic,
            payload: self.payload,
            qos: self.qos.min(qos),
            retain: true,
            properties: self.properties,
            identifiers: identifier.into_iter().collect(),
            expires_at: self.expires_at,
        }
    }
}
