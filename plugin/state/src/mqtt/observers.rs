//! Key notifications: which client watches which key (`KEYNOTIFY`), and the notification each
//! gets when the key changes, whoever changed it (a client over MQTT or a module).

use super::{envelope, resp3, ServiceMetrics, NOTIFY_TOPIC_PREFIX};
use crate::{KeyChange, KeyWatcher, StateStore, SystemClock, WallClock};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;
use weir_door::publisher::Outgoing;
use weir_door::InternalPublisher;
use weir_model::hlc::Hlc;

/// Observations kept at most (a client, a key); past it `KEYNOTIFY` is refused.
pub const MAX_OBSERVATIONS: usize = 65_536;

/// What `KEYNOTIFY` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The client watches the key (now or already).
    Watching,
    /// The client no longer watches the key.
    Stopped,
    /// The client did not watch the key.
    NotWatching,
    /// [`MAX_OBSERVATIONS`] reached.
    Full,
}

/// The observations, and the publisher their notifications leave by.
pub struct Observers {
    by_key: RwLock<HashMap<Vec<u8>, BTreeSet<Arc<str>>>>,
    count: AtomicUsize,
    publisher: Mutex<InternalPublisher>,
    source_id: String,
    metrics: Arc<ServiceMetrics>,
    /// When watched values expire (ms since the Unix epoch), earliest first.
    deadlines: Mutex<BTreeSet<(u64, Vec<u8>)>>,
    /// Wakes [`Observers::expire`] when an earlier deadline comes.
    deadline_moved: Condvar,
}

impl Observers {
    pub fn new(
        publisher: InternalPublisher,
        source_id: String,
        metrics: Arc<ServiceMetrics>,
    ) -> Observers {
        Observers {
            by_key: RwLock::default(),
            count: AtomicUsize::new(0),
            publisher: Mutex::new(publisher),
            source_id,
            metrics,
            deadlines: Mutex::default(),
            deadline_moved: Condvar::new(),
        }
    }

    /// `KEYNOTIFY key` (`stop`: `KEYNOTIFY key STOP`) from `client_id`; the key's value
    /// expires at `expires_at`.
    pub fn observe(
        &self,
        client_id: &Arc<str>,
        key: &[u8],
        stop: bool,
        expires_at: Option<u64>,
    ) -> Observed {
        let Ok(mut by_key) = self.by_key.write() else {
            return Observed::Full;
        };
        if stop {
            let Some(clients) = by_key.get_mut(key) else {
                return Observed::NotWatching;
            };
            if !clients.remove(client_id) {
                return Observed::NotWatching;
            }
            if clients.is_empty() {
                by_key.remove(key);
            }
            self.count.fetch_sub(1, Relaxed);
            return Observed::Stopped;
        }
        if self.count.load(Relaxed) >= MAX_OBSERVATIONS {
            return Observed::Full;
        }
        if by_key
            .entry(key.to_vec())
            .or_default()
            .insert(client_id.clone())
        {
            self.count.fetch_add(1, Relaxed);
        }
        drop(by_key);
        if let Some(at) = expires_at {
            self.add_deadline(at, key);
        }
        Observed::Watching
    }

    fn add_deadline(&self, at: u64, key: &[u8]) {
        let Ok(mut deadlines) = self.deadlines.lock() else {
            return;
        };
        let earliest = deadlines.first().is_none_or(|(first, _)| at < *first);
        deadlines.insert((at, key.to_vec()));
        if earliest {
            self.deadline_moved.notify_one();
        }
    }

    /// Sends a delete notification for each watched value of `store` when it expires; runs
    /// for the life of the process (on a thread of its own).
    pub fn expire(&self, store: &StateStore) {
        let Ok(mut deadlines) = self.deadlines.lock() else {
            return;
        };
        loop {
            let now = SystemClock.now_millis();
            let due: Vec<Vec<u8>> = std::iter::from_fn(|| {
                deadlines
                    .first()
                    .is_some_and(|(at, _)| *at <= now)
                    .then(|| deadlines.pop_first())
                    .flatten()
                    .map(|(_, key)| key)
            })
            .collect();
            if !due.is_empty() {
                drop(deadlines);
                for key in due {
                    self.expired(store, &key);
                }
                deadlines = match self.deadlines.lock() {
                    Ok(deadlines) => deadlines,
                    Err(_) => return,
                };
                continue;
            }
            let wait = deadlines
                .first()
                .map_or(Duration::from_secs(3600), |(at, _)| {
                    Duration::from_millis(at.saturating_sub(now))
                });
            deadlines = match self.deadline_moved.wait_timeout(deadlines, wait) {
                Ok((deadlines, _)) => deadlines,
                Err(_) => return,
            };
        }
    }

    /// `key`'s deadline passed: its watchers hear of the deletion unless it was written again.
    fn expired(&self, store: &StateStore, key: &[u8]) {
        if !self.watches(key) {
            return;
        }
        match store.get(key) {
            Ok(got) if got.value.is_none() => match store.now() {
                Ok(version) => self.notify(key, None, &version),
                Err(e) => tracing::warn!("state store expiry: {e}"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!("state store expiry: {e}"),
        }
    }

    /// The topic `client_id`'s notifications about `key` go to.
    fn topic(client_id: &str, key: &[u8]) -> String {
        let mut topic = String::with_capacity(
            NOTIFY_TOPIC_PREFIX.len() + 2 * (client_id.len() + key.len()) + 16,
        );
        topic.push_str(NOTIFY_TOPIC_PREFIX);
        push_hex(&mut topic, client_id.as_bytes());
        topic.push_str("/command/notify/");
        push_hex(&mut topic, key);
        topic
    }
}

impl KeyWatcher for Observers {
    fn watches(&self, key: &[u8]) -> bool {
        self.count.load(Relaxed) > 0
            && self
                .by_key
                .read()
                .is_ok_and(|by_key| by_key.contains_key(key))
    }

    fn changed(&self, key: &[u8], change: KeyChange<'_>) {
        if let Some(at) = change.expires_at {
            self.add_deadline(at, key);
        }
        self.notify(key, change.value, change.version);
    }
}

impl Observers {
    /// Tells every client watching `key` that it holds `value` (`None`: deleted).
    fn notify(&self, key: &[u8], value: Option<&[u8]>, version: &Hlc) {
        let clients: Vec<Arc<str>> = match self.by_key.read() {
            Ok(by_key) => match by_key.get(key) {
                Some(clients) => clients.iter().cloned().collect(),
                None => return,
            },
            Err(_) => return,
        };
        let payload = bytes::Bytes::from(resp3::notification(value));
        let messages: Vec<Outgoing> = clients
            .iter()
            .map(|client| Outgoing {
                topic: Self::topic(client, key).into(),
                payload: payload.clone(),
                qos: 1,
                retain: false,
                properties: Some(envelope::notification(version, &self.source_id)),
            })
            .collect();
        let sent = messages.len() as u64;
        let Ok(mut publisher) = self.publisher.lock() else {
            return;
        };
        match publisher.publish_all(messages) {
            Ok(()) => {
                self.metrics.notifications.inc_by(sent);
            }
            Err(e) => {
                self.metrics.lost.inc_by(sent);
                tracing::warn!("{sent} state store key notifications not sent: {e}");
            }
        }
    }
}

/// Appends `bytes` as upper-case hexadecimal, as AIO encodes client ids and keys in topics.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_carry_client_and_key_in_hex() {
        assert_eq!(
            Observers::topic("dev-1", b"k\x00"),
            format!("{NOTIFY_TOPIC_PREFIX}6465762D31/command/notify/6B00")
        );
    }
}
