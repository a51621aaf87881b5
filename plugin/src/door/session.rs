//! Sessions: which clients are connected, which persistent sessions wait for their clients, and
//! what a session holds (its subscriptions).
//!
//! A client id is held by one connection at a time: a second connection with the same id takes
//! over (the first is disconnected, and the second waits until it has gone). A persistent
//! session (3.1.1 clean session 0, MQTT 5 session expiry > 0) outlives its connection: its
//! subscriptions are kept here, the router keeps its place in each subscription's log, and a
//! client coming back with clean session 0 finds them (session present = 1).

use super::codec::SubscriptionOptions;
use super::control::Control;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The filter as the client wrote it (`$share/group/filter` included).
    pub filter: String,
    /// Its options; `options.qos` is the granted QoS.
    pub options: SubscriptionOptions,
    /// The client's MQTT 5 subscription identifier.
    pub identifier: Option<u32>,
    /// The offset in the router's log of the next message expected from it: a forward further
    /// on means the router skipped messages (counted as dropped).
    pub next_offset: Option<u64>,
}

impl Subscription {
    /// Whether the door serves it itself (`$SYS/...`, `$weir/...`): every `$` filter except
    /// shared subscriptions.
    pub fn is_local(&self) -> bool {
        is_local_filter(&self.filter)
    }
}

/// The filter of the router's log behind `filter`: a shared subscription's without
/// `$share/GROUP/`.
pub fn router_filter(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, filter)| filter)
}

/// Whether the door serves `filter` itself rather than the router.
pub fn is_local_filter(filter: &str) -> bool {
    filter.starts_with('$') && !filter.starts_with("$share/")
}

/// A session's subscriptions by the door's own subscription id (passed to the router, which
/// returns it with every delivery).
pub type Subscriptions = HashMap<u32, Subscription>;

/// A persistent session whose client is away.
#[derive(Debug, Clone, Default)]
pub struct SavedSession {
    /// Its subscriptions.
    pub subscriptions: Subscriptions,
    /// When it ends, if ever.
    pub expires_at: Option<Instant>,
}

/// A connected client, as other connections see it.
#[derive(Debug)]
struct Live {
    connection: u64,
    control: UnboundedSender<Control>,
    ended: CancellationToken,
}

#[derive(Debug)]
enum Entry {
    Live(Live),
    Offline(SavedSession),
}

/// What a new connection gets for its client id.
#[derive(Debug)]
pub enum Claim {
    /// The id is now this connection's; `resumed` is the session it continues, if any.
    Granted {
        /// The persistent session found (`None`: a new session).
        resumed: Option<SavedSession>,
    },
    /// Another connection holds the id: it was told to go; wait for `ended`, then claim again.
    TakeOver {
        /// Cancelled when the other connection has gone.
        ended: CancellationToken,
    },
}

/// Every client id in use, live or offline.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
    /// Wills waiting for their delay (by the connection that left them), cancelled if their
    /// client comes back.
    wills: Mutex<HashMap<String, (u64, CancellationToken)>>,
}

impl Registry {
    /// Claims `client_id` for connection `connection`. A clean start discards a saved session.
    pub fn claim(
        &self,
        client_id: &str,
        connection: u64,
        control: &UnboundedSender<Control>,
        ended: &CancellationToken,
        clean_start: bool,
    ) -> Claim {
        if let Some(will) = self
            .wills
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(client_id)
        {
            will.1.cancel();
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let resumed = match entries.remove(client_id) {
            Some(Entry::Live(live)) => {
                let _ = live.control.send(Control::TakenOver);
                let ended = live.ended.clone();
                entries.insert(client_id.to_string(), Entry::Live(live));
                return Claim::TakeOver { ended };
            }
            Some(Entry::Offline(saved)) if !expired(&saved, Instant::now()) && !clean_start => {
                Some(saved)
            }
            _ => None,
        };
        entries.insert(
            client_id.to_string(),
            Entry::Live(Live {
                connection,
                control: control.clone(),
                ended: ended.clone(),
            }),
        );
        Claim::Granted { resumed }
    }

    /// Connection `connection` of `client_id` has gone; its session is kept if `saved` is set.
    pub fn release(&self, client_id: &str, connection: u64, saved: Option<SavedSession>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let ours = matches!(entries.get(client_id), Some(Entry::Live(live)) if live.connection == connection);
        if ours {
            match saved {
                Some(saved) => entries.insert(client_id.to_string(), Entry::Offline(saved)),
                None => entries.remove(client_id),
            };
        }
    }

    /// Registers the delayed will that connection `connection` of `client_id` left: the token
    /// is cancelled if the client connects again first.
    pub fn delay_will(&self, client_id: &str, connection: u64) -> CancellationToken {
        let cancel = CancellationToken::new();
        let mut wills = self.wills.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, previous)) =
            wills.insert(client_id.to_string(), (connection, cancel.clone()))
        {
            previous.cancel();
        }
        cancel
    }

    /// The delayed will connection `connection` left for `client_id` is over (published).
    pub fn will_done(&self, client_id: &str, connection: u64) {
        let mut wills = self.wills.lock().unwrap_or_else(|e| e.into_inner());
        if wills
            .get(client_id)
            .is_some_and(|(owner, _)| *owner == connection)
        {
            wills.remove(client_id);
        }
    }

    /// Removes the persistent sessions that have expired, returning their client ids.
    pub fn expire(&self, now: Instant) -> Vec<String> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = entries
            .iter()
            .filter(|(_, entry)| matches!(entry, Entry::Offline(saved) if expired(saved, now)))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            entries.remove(id);
        }
        gone
    }

    /// Persistent sessions whose clients are away, and the subscriptions they hold.
    pub fn offline(&self) -> (u64, u64) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .fold((0, 0), |(count, subs), entry| match entry {
                Entry::Offline(saved) => (count + 1, subs + saved.subscriptions.len() as u64),
                Entry::Live(_) => (count, subs),
            })
    }

    /// Every live connection's control channel.
    pub fn live(&self) -> Vec<UnboundedSender<Control>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .filter_map(|entry| match entry {
                Entry::Live(live) => Some(live.control.clone()),
                Entry::Offline(_) => None,
            })
            .collect()
    }
}

fn expired(saved: &SavedSession, now: Instant) -> bool {
    saved.expires_at.is_some_and(|at| at <= now)
}

/// When a session with expiry interval `secs` ends, counted from `now` (`None`: never).
pub fn expiry(secs: u32, now: Instant) -> Option<Instant> {
    (secs != u32::MAX).then(|| now + Duration::from_secs(u64::from(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control() -> UnboundedSender<Control> {
        tokio::sync::mpsc::unbounded_channel().0
    }

    #[test]
    fn a_persistent_session_is_found_again_unless_the_client_starts_clean() {
        let registry = Registry::default();
        let (tx, ended) = (control(), CancellationToken::new());
        assert!(matches!(
            registry.claim("c", 1, &tx, &ended, false),
            Claim::Granted { resumed: None }
        ));
        let mut saved = SavedSession::default();
        saved.subscriptions.insert(
            1,
            Subscription {
                filter: "a/#".into(),
                options: SubscriptionOptions {
                    qos: 1,
                    no_local: false,
                    retain_as_published: false,
                    retain_handling: 0,
                },
                identifier: None,
                next_offset: Some(7),
            },
        );
        registry.release("c", 1, Some(saved.clone()));
        assert_eq!(registry.offline(), (1, 1));
        match registry.claim("c", 2, &tx, &ended, false) {
            Claim::Granted {
                resumed: Some(found),
            } => {
                assert_eq!(found.subscriptions, saved.subscriptions)
            }
            other => panic!("{other:?}"),
        }
        registry.release("c", 2, Some(saved));
        assert!(matches!(
            registry.claim("c", 3, &tx, &ended, true),
            Claim::Granted { resumed: None }
        ));
    }

    #[test]
    fn a_second_connection_takes_over_and_the_first_cannot_release_it() {
        let registry = Registry::default();
        let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
        let first_ended = CancellationToken::new();
        registry.claim("c", 1, &first_tx, &first_ended, true);
        let second = (control(), CancellationToken::new());
        match registry.claim("c", 2, &second.0, &second.1, true) {
            Claim::TakeOver { ended } => assert!(!ended.is_cancelled()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(first_rx.try_recv(), Ok(Control::TakenOver)));
        registry.release("c", 1, None);
        first_ended.cancel();
        assert!(matches!(
            registry.claim("c", 2, &second.0, &second.1, true),
            Claim::Granted { resumed: None }
        ));
        // The first connection is gone: its late release changes nothing.
        registry.release("c", 1, None);
        assert_eq!(registry.live().len(), 1);
    }

    #[test]
    fn expired_sessions_go() {
        let registry = Registry::default();
        let now = Instant::now();
        let (tx, ended) = (control(), CancellationToken::new());
        registry.claim("c", 1, &tx, &ended, false);
        registry.release(
            "c",
            1,
            Some(SavedSession {
                expires_at: expiry(0, now),
                ..Default::default()
            }),
        );
        assert_eq!(registry.expire(now), vec!["c".to_string()]);
        assert_eq!(registry.offline(), (0, 0));
    }
}
