//! Where a publish goes once the door accepted it: to the graphs whose sources match, and
//! (unless one of them intercepts it) to the router with the door's tag. Clients' publishes,
//! wills and graph results all go this way.

use super::router::Batch;
use super::tag::Tag;
use super::Shared;
use crate::data::Message;
use bytes::Bytes;
use rumqttd::protocol::{Packet, Publish, PublishProperties};

/// A publish the door accepted.
pub(super) struct Accepted<'a> {
    /// Its topic (valid, no wildcards).
    pub topic: &'a str,
    /// Topic bytes, payload and retain flag.
    pub publish: Publish,
    /// MQTT 5 properties (no topic alias).
    pub properties: Option<PublishProperties>,
    /// Published QoS and publisher.
    pub tag: Tag,
    /// The graph whose result this is, if any.
    pub origin: Option<&'a str>,
}

/// Offers `accepted` to the graphs and queues it for the router in `batch`. Returns the
/// graph messages that wait for room in a full queue: the caller pushes them before it
/// acknowledges the publish.
pub(super) fn dispatch(
    shared: &Shared,
    batch: &mut Batch,
    accepted: Accepted<'_>,
) -> Vec<(usize, Message)> {
    let Accepted {
        topic,
        publish,
        mut properties,
        tag,
        origin,
    } = accepted;
    let offer = match shared.graphs() {
        Some(graphs) => graphs.offer(topic, &publish, properties.as_ref(), origin),
        None => Default::default(),
    };
    if !offer.intercepted {
        if publish.retain {
            shared.note_retained(topic, publish.payload.is_empty());
        }
        shared.logs.append(topic, publish.payload.len());
        tag.attach(&mut properties);
        batch.push(Packet::Publish(publish, properties));
    }
    offer.waiting
}

/// A publish for the router from its parts.
pub(super) fn publish(topic: Bytes, payload: Bytes, retain: bool) -> Publish {
    Publish::new(topic, payload, retain)
}
