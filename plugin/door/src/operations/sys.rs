//! `$SYS/broker/...`: the broker's counters as retained messages, as mosquitto publishes them;
//! and `$weir/...`, Weir's own reports (each graph's status), kept the same way.
//!
//! The door serves these two namespaces itself, not the router: a client's subscriptions in
//! them are kept here, each value is published to them when it changes (every
//! `broker.sys_interval` seconds, while someone subscribes to `$SYS`: with no subscriber the
//! counters are not read and the ticker sleeps), and a new subscription gets the current
//! values at once, retained. Clients cannot publish to them (but for a bridge's connection
//! state), and `#` or `+` at the first level never match them. Other `$` topics are the
//! router's, as any topic.

use crate::control::Control;
use crate::session::Registry;
use crate::stats::Stats;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use weir_model::topic::TopicFilter;

/// A message the door delivers itself.
#[derive(Debug, Clone)]
pub struct LocalMessage {
    /// Topic.
    pub topic: Bytes,
    /// Payload.
    pub payload: Bytes,
    /// Sent as retained (on subscribe).
    pub retain: bool,
    /// The door's id of the subscription it matched.
    pub subscription: u32,
}

#[derive(Debug)]
struct Subscriber {
    control: UnboundedSender<Control>,
    filters: Vec<(u32, TopicFilter)>,
}

/// The `$SYS` tree and who subscribed to it.
#[derive(Debug, Default)]
pub struct Sys {
    subscribers: Mutex<HashMap<u64, Subscriber>>,
    values: Mutex<BTreeMap<String, Bytes>>,
    /// Rung by each subscription to `$SYS`: wakes a ticker that sleeps for want of one.
    watcher_came: Notify,
}

/// Whether `filter` is a subscription to the broker's counters (`$SYS` or `$SYS/...`).
pub(crate) fn is_sys(filter: &TopicFilter) -> bool {
    filter.as_str().split('/').next() == Some("$SYS")
}

impl Sys {
    /// Subscribes connection `connection` to `filter` (door subscription `id`); returns the
    /// current values it matches, to send after the SUBACK.
    pub fn subscribe(
        &self,
        connection: u64,
        control: &UnboundedSender<Control>,
        id: u32,
        filter: TopicFilter,
    ) -> Vec<LocalMessage> {
        let current: Vec<LocalMessage> = {
            let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
            values
                .iter()
                .filter(|(topic, _)| filter.matches(topic))
                .map(|(topic, payload)| LocalMessage {
                    topic: Bytes::from(topic.clone()),
                    payload: payload.clone(),
                    retain: true,
                    subscription: id,
                })
                .collect()
        };
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        let subscriber = subscribers.entry(connection).or_insert_with(|| Subscriber {
            control: control.clone(),
            filters: Vec::new(),
        });
        subscriber.filters.retain(|(existing, _)| *existing != id);
        let watches = is_sys(&filter);
        subscriber.filters.push((id, filter));
        if watches {
            self.watcher_came.notify_one();
        }
        current
    }

    /// Whether any client subscribes to `$SYS` (`$weir` subscribers do not count).
    pub fn watched(&self) -> bool {
        let subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers
            .values()
            .any(|subscriber| subscriber.filters.iter().any(|(_, filter)| is_sys(filter)))
    }

    /// Completes when a client subscribes to `$SYS` (at once if one did since the last call).
    pub async fn watcher_came(&self) {
        self.watcher_came.notified().await;
    }

    /// Removes subscriptions `ids` of connection `connection`.
    pub fn unsubscribe(&self, connection: u64, ids: &[u32]) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subscriber) = subscribers.get_mut(&connection) {
            subscriber.filters.retain(|(id, _)| !ids.contains(id));
            if subscriber.filters.is_empty() {
                subscribers.remove(&connection);
            }
        }
    }

    /// Forgets connection `connection`.
    pub fn forget(&self, connection: u64) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.remove(&connection);
    }

    /// Reads the counters and publishes the values that changed.
    pub fn update(&self, stats: &Stats, registry: &Registry) {
        self.set_all(current(stats, registry));
    }

    /// Sets `values` (topic, payload), publishing those that changed to their subscribers.
    pub fn set_all(&self, values: impl IntoIterator<Item = (String, Bytes)>) {
        let changed: Vec<(String, Bytes)> = {
            let mut kept = self.values.lock().unwrap_or_else(|e| e.into_inner());
            let mut changed = Vec::new();
            for (topic, value) in values {
                if kept.get(&topic) != Some(&value) {
                    kept.insert(topic.clone(), value.clone());
                    changed.push((topic, value));
                }
            }
            changed
        };
        if changed.is_empty() {
            return;
        }
        let subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        for subscriber in subscribers.values() {
            for (topic, payload) in &changed {
                for (id, filter) in &subscriber.filters {
                    if filter.matches(topic) {
                        let message = LocalMessage {
                            topic: Bytes::from(topic.clone()),
                            payload: payload.clone(),
                            retain: false,
                            subscription: *id,
                        };
                        let _ = subscriber.control.send(Control::Local(Box::new(message)));
                    }
                }
            }
        }
    }
}

/// Every `$SYS` topic and its value now.
fn current(stats: &Stats, registry: &Registry) -> Vec<(String, Bytes)> {
    let (offline, offline_subscriptions, _) = registry.offline();
    let connected = stats.clients_connected.get();
    let values: [(&str, String); 11] = [
        (
            "version",
            format!("weir version {}", env!("CARGO_PKG_VERSION")),
        ),
        ("uptime", format!("{} seconds", stats.uptime_secs())),
        ("clients/connected", connected.to_string()),
        ("clients/total", (connected + offline).to_string()),
        (
            "messages/received",
            stats.packets_received.get().to_string(),
        ),
        ("messages/sent", stats.packets_sent.get().to_string()),
        ("bytes/received", stats.bytes_received.get().to_string()),
        ("bytes/sent", stats.bytes_sent.get().to_string()),
        (
            "subscriptions/count",
            (stats.subscriptions.get() + offline_subscriptions).to_string(),
        ),
        ("retained messages/count", stats.retained.get().to_string()),
        ("messages/dropped", stats.dropped.get().to_string()),
    ];
    values
        .into_iter()
        .map(|(name, value)| (format!("$SYS/broker/{name}"), Bytes::from(value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn a_new_subscriber_gets_the_current_values_then_only_changes() {
        let (sys, stats, registry) = (Sys::default(), Stats::default(), Registry::default());
        sys.update(&stats, &registry);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let filter = TopicFilter::new("$SYS/broker/clients/+").unwrap();
        let current = sys.subscribe(1, &tx, 5, filter);
        let topics: Vec<&[u8]> = current.iter().map(|m| m.topic.as_ref()).collect();
        assert_eq!(
            topics,
            [
                &b"$SYS/broker/clients/connected"[..],
                b"$SYS/broker/clients/total"
            ]
        );
        assert!(current.iter().all(|m| m.retain && m.subscription == 5));
        sys.update(&stats, &registry);
        assert!(rx.try_recv().is_err(), "nothing changed");
        stats.clients_connected.set(2);
        sys.update(&stats, &registry);
        let mut changed = Vec::new();
        while let Ok(Control::Local(message)) = rx.try_recv() {
            changed.push((message.topic, message.payload, message.retain));
        }
        assert_eq!(changed.len(), 2, "{changed:?}");
        assert!(changed
            .iter()
            .all(|(_, payload, retain)| payload == "2" && !retain));
    }

    #[test]
    fn only_a_subscription_to_sys_wakes_the_ticker() {
        let sys = Sys::default();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        assert!(!sys.watched());
        sys.subscribe(1, &tx, 1, TopicFilter::new("$weir/status/+").unwrap());
        assert!(
            !sys.watched(),
            "a $weir subscriber does not read the counters"
        );
        assert!(!rung(&sys), "woken by a $weir subscription");
        sys.subscribe(2, &tx, 1, TopicFilter::new("$SYS/#").unwrap());
        assert!(sys.watched());
        // The subscription came before the ticker waited: it does not wait.
        assert!(rung(&sys));
        sys.forget(2);
        assert!(!sys.watched());
    }

    /// Whether the ticker, waiting for a `$SYS` subscriber now, would go on at once.
    fn rung(sys: &Sys) -> bool {
        let waiting = std::pin::pin!(sys.watcher_came());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        waiting.poll(&mut context).is_ready()
    }
}
