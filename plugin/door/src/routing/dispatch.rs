//! Where a publish goes once the door accepted it: to the graphs whose sources match, and
//! (unless one of them intercepts it) to the bridges whose `out` topics match (into the
//! publisher's [`Outbox`], written to their queues before the publish is acknowledged), to the
//! retained store when it is retained, and to the router with the door's tag (which carries
//! its retain flag and expiry; the router itself gets it unretained, so that it keeps no
//! retained messages). Clients' publishes, wills, graph results and what bridges bring in all
//! go this way. A `$` topic that gets here (a bridge's state, `$SYS/broker/connection/+/state`)
//! is kept by the door's `$SYS` tree instead.

use crate::bridge::queue::Outbox;
use crate::ingress::{Offered, Waiting};
use crate::logs::FilterLog;
use crate::message::{Properties, Publish};
use crate::retained::Retained;
use crate::router::Batch;
use crate::tag::Tag;
use crate::Shared;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// A publish the door accepted.
pub(crate) struct Accepted<'a> {
    /// Its topic (valid, no wildcards).
    pub topic: &'a str,
    /// Topic bytes, payload and retain flag.
    pub publish: Publish,
    /// MQTT 5 properties (no topic alias).
    pub properties: Option<Properties>,
    /// Published QoS and publisher.
    pub tag: Tag,
    /// The graph whose result this is, if any.
    pub origin: Option<&'a str>,
    /// The bridge that brought it in, if any (it does not go back out there).
    pub bridge: Option<&'a str>,
}

/// What became of a publish.
pub(crate) struct Dispatched {
    /// Graph messages that wait for room in a full queue: the caller pushes them before it
    /// acknowledges the publish.
    pub waiting: Waiting,
    /// A router log the publish went to whose slowest reader is too far behind: a client's
    /// connection waits for it before it reads more.
    pub behind: Option<Arc<FilterLog>>,
}

/// Offers `accepted` to the graphs, to the bridges (in `outbox`) and queues it for the router
/// in `batch`.
pub(crate) fn dispatch(
    shared: &Shared,
    batch: &mut Batch,
    outbox: &mut Outbox,
    accepted: Accepted<'_>,
) -> Dispatched {
    let Accepted {
        topic,
        mut publish,
        properties,
        mut tag,
        origin,
        bridge,
    } = accepted;
    if crate::session::is_local_namespace(topic) {
        shared
            .operations
            .sys
            .set_all([(topic.to_string(), publish.payload)]);
        return Dispatched {
            waiting: Vec::new(),
            behind: None,
        };
    }
    let offer = match shared.routing.graphs() {
        Some(graphs) => graphs.offer(Offered {
            topic,
            publish: &publish,
            properties: properties.as_ref(),
            origin,
        }),
        None => Default::default(),
    };
    if !offer.intercepted {
        if let Some(bridges) = shared.routing.bridges() {
            let message = crate::bridge::Published {
                topic,
                payload: &publish.payload,
                qos: tag.qos,
                retain: publish.retain,
                properties: properties.as_ref(),
            };
            bridges.offer(&message, bridge, outbox);
        }
        tag.expires_at = properties
            .as_ref()
            .and_then(|p| p.message_expiry_interval)
            .map(|secs| now_millis().saturating_add(u64::from(secs) * 1000));
        tag.sequence = shared.routing.next_sequence.fetch_add(1, Relaxed);
        if publish.retain {
            retain(shared, topic, &publish, properties.as_ref(), &tag);
            publish.retain = false;
        }
        let behind =
            shared
                .routing
                .logs
                .append(topic, publish.payload.len(), shared.routing.lag.high);
        batch.publish(publish, properties, tag);
        return Dispatched {
            waiting: offer.waiting,
            behind,
        };
    }
    Dispatched {
        waiting: offer.waiting,
        behind: None,
    }
}

/// Keeps a retained publish (an empty payload clears its topic).
fn retain(
    shared: &Shared,
    topic: &str,
    publish: &Publish,
    properties: Option<&Properties>,
    tag: &Tag,
) {
    let count = if publish.payload.is_empty() {
        shared.routing.retained.clear(topic)
    } else {
        let properties = properties.cloned().filter(|p| !p.is_empty()).map(Box::new);
        let message = Retained {
            topic: publish.topic.clone(),
            payload: publish.payload.clone(),
            qos: tag.qos,
            properties,
            expires_at: tag.expires_at,
        };
        shared.routing.retained.set(topic, message)
    };
    shared.operations.stats.retained.set(count as u64);
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
