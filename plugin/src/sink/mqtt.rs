//! The MQTT sink: results and dead letters published back into the broker's router through a
//! local link, on a thread of its own.
//!
//! A local link publishes at QoS 0 inside the router; rumqttd then delivers to each subscriber
//! at its subscription's QoS.

use super::{as_message, TopicTemplate};
use crate::data::{DataModel, Message};
use crate::engine::{DeadLetter, Outputs};
use crate::hook::message::publish_from_message;
use crate::hook::{HookError, LinkFactory};
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish, PublishProperties};
use rumqttd::Notification;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// A publish on its way to the router.
struct Outgoing {
    publish: Publish,
    properties: PublishProperties,
}

/// Publishes into the router; cloned into each graph's outputs.
#[derive(Clone)]
pub struct MqttPublisher {
    queue: Sender<Outgoing>,
}

impl MqttPublisher {
    /// Opens a local link named `client_id` and starts the publishing thread. `capacity` bounds
    /// the publishes waiting for the router (graph workers wait when it is full).
    pub fn start(
        links: &LinkFactory,
        client_id: &str,
        capacity: usize,
    ) -> Result<MqttPublisher, HookError> {
        let (link_tx, link_rx) = links(client_id).map_err(|e| HookError::Link(e.to_string()))?;
        let (queue, outgoing) = crossbeam_channel::bounded(capacity.max(1));
        std::thread::Builder::new()
            .name("weir-publish".into())
            .spawn(move || publish_loop(link_tx, outgoing))
            .map_err(HookError::Thread)?;
        std::thread::Builder::new()
            .name("weir-publish-acks".into())
            .spawn(move || drain(link_rx))
            .map_err(HookError::Thread)?;
        Ok(MqttPublisher { queue })
    }

    fn publish(&self, message: &Message, topic: Bytes, retain: bool) -> bool {
        let (publish, properties) = publish_from_message(message, topic, retain);
        self.queue
            .send(Outgoing {
                publish,
                properties,
            })
            .is_ok()
    }
}

fn publish_loop(mut link: LinkTx, outgoing: Receiver<Outgoing>) {
    let mut context = Context::from_waker(Waker::noop());
    for Outgoing {
        publish,
        properties,
    } in outgoing
    {
        // `LinkTx::send` is async in signature only: it queues and notifies synchronously.
        let sent = pin!(link.send(Packet::Publish(publish, Some(properties))));
        match sent.poll(&mut context) {
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => {
                tracing::error!("the router refused a graph result: {e}; publishing stops");
                return;
            }
            Poll::Pending => tracing::error!("the router did not take a graph result"),
        }
    }
}

/// Reads what the router sends the publishing link (nothing is subscribed; acknowledgements
/// and scheduling notices only), so that its buffers never fill.
fn drain(mut link: LinkRx) {
    while let Ok(notification) = link.recv() {
        if let Some(Notification::Unschedule) = notification {
            let _ = link.ready();
        }
    }
}

/// A graph's MQTT outputs: where results and dead letters are published.
pub struct MqttOutputs {
    graph: String,
    topic: Option<TopicTemplate>,
    retain: bool,
    dead_letter: Option<Bytes>,
    publisher: MqttPublisher,
    node_id: String,
}

impl MqttOutputs {
    /// Results go to `topic` (rendered from the result's own topic), or to the result's own
    /// topic when there is no template; dead letters to `dead_letter` when set.
    pub fn new(
        graph: &str,
        topic: Option<TopicTemplate>,
        retain: bool,
        dead_letter: Option<String>,
        publisher: MqttPublisher,
    ) -> MqttOutputs {
        MqttOutputs {
            graph: graph.to_string(),
            topic,
            retain,
            dead_letter: dead_letter.map(Bytes::from),
            publisher,
            node_id: "weir".into(),
        }
    }

    /// Stamps results that carry no time (raw bytes, frames) with node id `node_id`
    /// (default `weir`).
    pub fn with_node_id(mut self, node_id: &str) -> MqttOutputs {
        self.node_id = node_id.to_string();
        self
    }
}

impl Outputs for MqttOutputs {
    fn result(&self, item: DataModel) -> bool {
        let message = as_message(item, &self.node_id);
        let topic = match &self.topic {
            Some(template) => template.render(&message.topic),
            None => std::str::from_utf8(&message.topic)
                .ok()
                .filter(|topic| crate::topic::check_topic_name(topic).is_ok())
                .map(str::to_string),
        };
        let Some(topic) = topic else {
            tracing::warn!(
                graph = %self.graph,
                topic = %String::from_utf8_lossy(&message.topic),
                template = %self.topic.as_ref().map(ToString::to_string).unwrap_or_default(),
                "a result has no valid output topic; it is counted as lost"
            );
            return false;
        };
        self.publisher
            .publish(&message, Bytes::from(topic), self.retain)
    }

    fn dead_letter(&self, letter: DeadLetter) {
        let Some(topic) = &self.dead_letter else {
            return;
        };
        let mut message = as_message(letter.item, &self.node_id);
        let original_topic = std::mem::take(&mut message.topic);
        for (key, value) in [
            ("weir-graph", Bytes::from(self.graph.clone())),
            ("weir-node", Bytes::from(letter.node)),
            ("weir-module", Bytes::from(letter.module)),
            ("weir-error", Bytes::from(letter.reason)),
            ("weir-topic", original_topic),
        ] {
            message
                .user_properties
                .push((Bytes::from_static(key.as_bytes()), value));
        }
        self.publisher.publish(&message, topic.clone(), false);
    }
}
