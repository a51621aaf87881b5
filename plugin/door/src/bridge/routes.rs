//! The bridges as the door sees them: for each, its `out` topic lines and its queues. Every
//! accepted publish is offered here ([`BridgeRoutes::offer`]); one that an `out` line matches
//! goes to that bridge's queue at the lower of its QoS and the line's: on disk (through the
//! publisher's [`Outbox`]) at QoS 1 and 2, in memory at QoS 0.
//!
//! The set changes while the broker runs (a reload adds, changes or removes bridges): it is
//! swapped whole, read without a lock per publish.

use super::queue::{volatile::Volatile, Outbox, Queue, Queued};
use super::topics::{self, TopicRule};
use crate::message::Properties;
use arc_swap::ArcSwap;
use bytes::Bytes;
use std::sync::Arc;

/// One bridge as the door sees it.
pub struct BridgeRoute {
    /// The bridge's name.
    pub name: Arc<str>,
    /// Its topic lines (only `out` and `both` ones forward local publishes).
    pub rules: Vec<TopicRule>,
    /// QoS 1 and 2 messages, on disk.
    pub queue: Arc<Queue>,
    /// QoS 0 messages, in memory.
    pub volatile: Arc<Volatile>,
}

/// A publish the door accepted, as the bridges need it.
#[derive(Debug, Clone, Copy)]
pub struct Published<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its payload.
    pub payload: &'a Bytes,
    /// The QoS it was published with.
    pub qos: u8,
    /// Its retain flag.
    pub retain: bool,
    /// Its MQTT 5 properties (without the door's tag).
    pub properties: Option<&'a Properties>,
}

/// Every bridge's route.
#[derive(Default)]
pub struct BridgeRoutes {
    routes: ArcSwap<Vec<Arc<BridgeRoute>>>,
}

impl BridgeRoutes {
    /// Routes to `route`, in place of the route of the same name if there is one.
    pub fn install(&self, route: BridgeRoute) {
        let route = Arc::new(route);
        self.routes.rcu(|routes| {
            let mut next: Vec<Arc<BridgeRoute>> = routes
                .iter()
                .filter(|r| r.name != route.name)
                .cloned()
                .collect();
            next.push(route.clone());
            next
        });
    }

    /// Stops routing publishes to bridge `name`.
    pub fn remove(&self, name: &str) {
        self.routes.rcu(|routes| {
            routes
                .iter()
                .filter(|r| &*r.name != name)
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Whether any bridge forwards local publishes.
    pub fn is_empty(&self) -> bool {
        self.routes.load().is_empty()
    }

    /// Offers `message` to every bridge but `from` (the bridge that brought it in): QoS 1 and 2
    /// messages go into `outbox`, to be written before the publisher is acknowledged.
    pub fn offer(&self, message: &Published<'_>, from: Option<&str>, outbox: &mut Outbox) {
        let routes = self.routes.load();
        for route in routes.iter() {
            if from == Some(&*route.name) {
                continue;
            }
            let Some((remote, rule_qos)) = topics::outward(&route.rules, message.topic) else {
                continue;
            };
            let queued = Queued {
                topic: Bytes::from(remote),
                payload: message.payload.clone(),
                qos: message.qos.min(rule_qos),
                retain: message.retain,
                properties: message
                    .properties
                    .cloned()
                    .filter(|p| !p.is_empty())
                    .map(Box::new),
                queued_at: crate::now_millis(),
            };
            if queued.qos == 0 {
                route.volatile.push(queued);
            } else {
                outbox.push(route.queue.clone(), queued);
            }
        }
    }
}
