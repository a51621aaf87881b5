//! Sessions: which clients are connected, which persistent sessions wait for their clients,
//! and what a session holds.
//!
//! A client id is held by one connection at a time: a second connection with the same id takes
//! over (the first is disconnected, and the second waits until it has gone). A persistent
//! session (3.1.1 clean session 0, MQTT 5 session expiry > 0) outlives its connection: it is
//! parked ([`parked`]) with its [`state::SessionState`] and its router link until its client
//! comes back with clean session 0 (session present = 1) or it expires.

pub(crate) mod context;
pub(crate) mod handshake;
pub(crate) mod overlap;
pub mod parked;
pub mod queue;
pub(crate) mod saved;
pub mod state;
pub mod store;
pub(crate) mod will;

use super::codec::SubscriptionOptions;
use super::control::Control;
use parked::ParkedHandle;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_model::metrics::CountGauge;

/// One subscription of a session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Whether the door serves it itself (`$SYS/...`, `$weir/...`).
    pub fn is_local(&self) -> bool {
        is_local_filter(&self.filter)
    }

    /// A subscription to `filter` at QoS 1, no other option set.
    #[cfg(test)]
    pub(crate) fn to(filter: &str) -> Subscription {
        Subscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos: 1,
                no_local: false,
                retain_as_published: false,
                retain_handling: 0,
            },
            identifier: None,
            next_offset: None,
        }
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

/// Whether the door serves `filter` itself rather than the router: filters in the namespaces
/// of its own values (`$SYS/...`, `$weir/...`).
pub fn is_local_filter(filter: &str) -> bool {
    is_local_namespace(filter)
}

/// Whether `name` (a topic or a filter) is in a namespace whose values the door keeps itself:
/// `$SYS` (the broker's counters, bridges' connection states) and `$weir` (graphs' status).
/// Other `$` topics are routed as any topic is (only a filter that starts with a wildcard does
/// not match them).
pub fn is_local_namespace(name: &str) -> bool {
    let first = name.split('/').next().unwrap_or_default();
    first == "$SYS" || first == "$weir"
}

/// A session's subscriptions by the door's own subscription id (passed to the router, which
/// returns it with every delivery).
pub type Subscriptions = HashMap<u32, Subscription>;

/// The subscription whose filter matches `topic`, for a router delivery that does not name one
/// (`$` filters served by the door itself are left out).
pub fn subscription_matching(subscriptions: &Subscriptions, topic: &[u8]) -> Option<u32> {
    let topic = std::str::from_utf8(topic).ok()?;
    subscriptions
        .iter()
        .filter(|(_, s)| !s.is_local())
        .find(|(_, s)| {
            weir_model::topic::TopicFilter::new(router_filter(&s.filter))
                .is_ok_and(|filter| filter.matches(topic))
        })
        .map(|(id, _)| *id)
}

/// A connected client, as other connections see it.
#[derive(Debug)]
struct Live {
    connection: u64,
    control: UnboundedSender<Control>,
    ended: CancellationToken,
    /// The session's expiry interval in seconds (0: it ends with the connection).
    session_expiry: u32,
}

#[derive(Debug)]
enum Entry {
    Live(Live),
    Offline(ParkedHandle),
}

/// What a new connection gets for its client id.
#[derive(Debug)]
pub enum Claim {
    /// The id is now this connection's.
    Granted {
        /// The parked session it continues (`None`: a new session).
        resumed: Option<ParkedHandle>,
        /// A parked session its clean start discards: end it before attaching.
        discarded: Option<ParkedHandle>,
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
    /// Tells parked sessions apart (a session parked again after a resume is another one).
    generations: AtomicU64,
    /// How many sessions are parked now, changed with `entries` (the `weir_sessions_offline`
    /// gauge, shared with the broker's stats).
    parked: CountGauge,
}

impl Registry {
    /// A registry that keeps `parked` equal to the number of parked sessions.
    pub fn counting_parked(parked: CountGauge) -> Registry {
        Registry {
            parked,
            ..Registry::default()
        }
    }

    /// Claims `client_id` for connection `connection`. A clean start discards a saved session.
    pub fn claim(
        &self,
        client_id: &str,
        connection: u64,
        control: &UnboundedSender<Control>,
        ended: &CancellationToken,
        clean_start: bool,
        session_expiry: u32,
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
        let (resumed, discarded) = match entries.remove(client_id) {
            Some(Entry::Live(live)) => {
                let _ = live.control.send(Control::TakenOver);
                let ended = live.ended.clone();
                entries.insert(client_id.to_string(), Entry::Live(live));
                return Claim::TakeOver { ended };
            }
            Some(Entry::Offline(parked)) if clean_start => (None, Some(parked)),
            Some(Entry::Offline(parked)) => (Some(parked), None),
            None => (None, None),
        };
        if resumed.is_some() || discarded.is_some() {
            self.parked.dec();
        }
        entries.insert(
            client_id.to_string(),
            Entry::Live(Live {
                connection,
                control: control.clone(),
                ended: ended.clone(),
                session_expiry,
            }),
        );
        Claim::Granted { resumed, discarded }
    }

    /// Connection `connection` of `client_id` has gone; its session stays parked if `parked`
    /// is set. Returns `parked` when it was not kept (the id is no longer this connection's):
    /// the caller ends it.
    pub fn release(
        &self,
        client_id: &str,
        connection: u64,
        parked: Option<ParkedHandle>,
    ) -> Option<ParkedHandle> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let ours = matches!(entries.get(client_id), Some(Entry::Live(live)) if live.connection == connection);
        if !ours {
            return parked;
        }
        match parked {
            Some(parked) => {
                entries.insert(client_id.to_string(), Entry::Offline(parked));
                self.parked.inc();
            }
            None => {
                entries.remove(client_id);
            }
        };
        None
    }

    /// A number for a newly parked session.
    pub fn next_generation(&self) -> u64 {
        self.generations.fetch_add(1, Relaxed)
    }

    /// Removes parked session `generation` of `client_id` (it expired); false if it is no
    /// longer in the registry (its client is taking it back).
    pub fn remove_parked(&self, client_id: &str, generation: u64) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let found = matches!(entries.get(client_id), Some(Entry::Offline(parked)) if parked.generation == generation);
        if found {
            entries.remove(client_id);
            self.parked.dec();
        }
        found
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

    /// Parked sessions, the subscriptions they hold and the messages queued for them.
    pub fn offline(&self) -> (u64, u64, u64) {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .fold((0, 0, 0), |(count, subs, queued), entry| match entry {
                Entry::Offline(parked) => (
                    count + 1,
                    subs + parked.subscriptions() as u64,
                    queued + parked.queued() as u64,
                ),
                Entry::Live(_) => (count, subs, queued),
            })
    }

    /// Every parked session: its client id, when it expires, and where to ask for its state.
    pub fn parked(&self) -> Vec<(String, Option<Instant>, parked::SnapshotRequest)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .filter_map(|(client_id, entry)| match entry {
                Entry::Offline(parked) => Some((
                    client_id.clone(),
                    parked.expires_at,
                    parked.snapshots.clone(),
                )),
                Entry::Live(_) => None,
            })
            .collect()
    }

    /// Every connected client whose session outlives its connection: its client id, its
    /// session expiry interval (seconds) and its control channel.
    pub fn persistent_live(&self) -> Vec<(String, u32, UnboundedSender<Control>)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .filter_map(|(client_id, entry)| match entry {
                Entry::Live(live) if live.session_expiry > 0 => {
                    Some((client_id.clone(), live.session_expiry, live.control.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Registers a session restored from the store as parked (unless the id is in use).
    pub fn insert_parked(&self, client_id: &str, parked: ParkedHandle) -> Option<ParkedHandle> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.contains_key(client_id) {
            return Some(parked);
        }
        entries.insert(client_id.to_string(), Entry::Offline(parked));
        self.parked.inc();
        None
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
    fn a_second_connection_takes_over_and_the_first_cannot_release_it() {
        let registry = Registry::default();
        let (first_tx, mut first_rx) = tokio::sync::mpsc::unbounded_channel();
        let first_ended = CancellationToken::new();
        registry.claim("c", 1, &first_tx, &first_ended, true, 0);
        let second = (control(), CancellationToken::new());
        match registry.claim("c", 2, &second.0, &second.1, true, 0) {
            Claim::TakeOver { ended } => assert!(!ended.is_cancelled()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(first_rx.try_recv(), Ok(Control::TakenOver)));
        registry.release("c", 1, None);
        first_ended.cancel();
        assert!(matches!(
            registry.claim("c", 2, &second.0, &second.1, true, 0),
            Claim::Granted {
                resumed: None,
                discarded: None
            }
        ));
        // The first connection is gone: its late release changes nothing.
        registry.release("c", 1, None);
        assert_eq!(registry.live().len(), 1);
    }

    #[test]
    fn filters_match_router_deliveries_without_an_id() {
        let subscriptions: Subscriptions = [
            (1, Subscription::to("$SYS/#")),
            (2, Subscription::to("$share/g/a/+")),
            (3, Subscription::to("b/#")),
        ]
        .into();
        assert_eq!(subscription_matching(&subscriptions, b"a/x"), Some(2));
        assert_eq!(subscription_matching(&subscriptions, b"b/y/z"), Some(3));
        assert_eq!(subscription_matching(&subscriptions, b"$SYS/x"), None);
    }
}
