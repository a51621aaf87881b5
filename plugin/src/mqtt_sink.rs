//! The MQTT sink: results and dead letters published back into the broker through the door,
//! on a thread of the graph's own, as a client's publishes are: to other graphs whose sources
//! match, then to the router, delivered to each subscriber at the lower of `sink.qos` and its
//! subscription's QoS. A subscriber whose queue is full holds the thread back, and with it the
//! graph's workers: back-pressure reaches the graph's input.

use bytes::Bytes;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use weir_door::message::publish_from_message;
use weir_door::publisher::Outgoing;
use weir_door::{DoorError, DoorHandle, InternalPublisher};
use weir_engine::{DeadLetter, Outputs};
use weir_model::data::{DataModel, Message};
use weir_sink::TopicTemplate;

/// Results handed to the router together, at most.
const BATCH: usize = 256;

/// How long a publisher waits at the end for the router to take its last results.
const FLUSH_PATIENCE: Duration = Duration::from_secs(5);

/// Publishes a graph's results into the broker; cloned into the graph's outputs.
#[derive(Clone)]
pub struct MqttPublisher {
    queue: Sender<Outgoing>,
    counts: Arc<PublishCounts>,
}

/// Messages queued for the router and those the router took, in queue order.
#[derive(Default)]
struct PublishCounts {
    handed: AtomicU64,
    published: AtomicU64,
}

impl crate::outputs::Acknowledged for PublishCounts {
    fn handed(&self) -> u64 {
        self.handed.load(Relaxed)
    }

    fn acknowledged(&self) -> u64 {
        self.published.load(Relaxed)
    }
}

/// The thread behind an [`MqttPublisher`]: it ends once every clone is dropped (the graph's
/// workers stopped) and everything queued is in the router.
pub struct PublisherThread {
    name: String,
    handle: std::thread::JoinHandle<()>,
}

impl PublisherThread {
    /// Waits until every result was handed to the router.
    pub fn join(self) {
        if self.handle.join().is_err() {
            tracing::error!(publisher = %self.name, "the result publisher failed");
        }
    }
}

impl MqttPublisher {
    /// Attaches publisher `name` for graph `graph` to the door and starts its thread.
    /// `capacity` bounds the results waiting for the router (graph workers wait when it is
    /// full).
    pub fn start(
        door: &DoorHandle,
        name: &str,
        graph: &str,
        capacity: usize,
    ) -> Result<(MqttPublisher, PublisherThread), DoorError> {
        let mut publisher = door.publisher(name, Some(graph))?;
        let (queue, outgoing) = crossbeam_channel::bounded::<Outgoing>(capacity.max(1));
        let counts = Arc::new(PublishCounts::default());
        let published = counts.clone();
        let thread_name = name.to_string();
        let handle = std::thread::Builder::new()
            .name("weir-publish".into())
            .spawn(move || {
                // Results come in bursts (a window closing, a frontier passing): what is
                // waiting goes to the router together, with one wake-up.
                let mut batch = Vec::with_capacity(BATCH);
                while let Ok(first) = outgoing.recv() {
                    batch.push(first);
                    batch.extend(outgoing.try_iter().take(BATCH - 1));
                    let count = batch.len() as u64;
                    if let Err(e) = publisher.publish_all(batch.drain(..)) {
                        tracing::error!(publisher = %thread_name, "{e}; results are no longer published");
                        return;
                    }
                    published.published.fetch_add(count, Relaxed);
                }
                if let Err(e) = publisher.flush(FLUSH_PATIENCE) {
                    tracing::warn!(publisher = %thread_name, "{e}");
                }
                drop::<InternalPublisher>(publisher);
            })?;
        let thread = PublisherThread {
            name: name.to_string(),
            handle,
        };
        Ok((MqttPublisher { queue, counts }, thread))
    }

    /// How far what was handed to it has got into the router.
    pub fn acknowledgements(&self) -> Arc<dyn crate::outputs::Acknowledged> {
        self.counts.clone()
    }

    fn publish(&self, message: Message, topic: Bytes, retain: bool, qos: u8) -> bool {
        let (publish, properties) = publish_from_message(message, topic, retain);
        self.counts.handed.fetch_add(1, Relaxed);
        self.queue
            .send(Outgoing {
                topic: publish.topic,
                payload: publish.payload,
                qos,
                retain,
                properties: Some(properties),
            })
            .is_ok()
    }
}

/// The longest `weir-error` property, in bytes.
const MAX_REASON: usize = 1024;

/// `text` fit for an MQTT user property every client accepts: on one line (control characters,
/// which mosquitto's clients refuse, become spaces) and at most [`MAX_REASON`] bytes.
fn property_text(text: &str) -> String {
    let mut fitted = String::with_capacity(text.len().min(MAX_REASON));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if fitted.len() + c.len_utf8() > MAX_REASON {
            break;
        }
        fitted.push(c);
    }
    fitted
}

/// A graph's MQTT outputs: where results and dead letters are published.
pub struct MqttOutputs {
    graph: String,
    topic: Option<TopicTemplate>,
    retain: bool,
    qos: u8,
    dead_letter: Option<Bytes>,
    publisher: MqttPublisher,
    node_id: String,
    /// Results without a valid output topic so far (for the log's power-of-two lines).
    topicless: std::sync::atomic::AtomicU64,
}

impl MqttOutputs {
    /// Results go to `topic` (rendered from the result's own topic), or to the result's own
    /// topic when there is no template, at `qos`; dead letters to `dead_letter` when set.
    pub fn new(
        graph: &str,
        topic: Option<TopicTemplate>,
        retain: bool,
        qos: u8,
        dead_letter: Option<String>,
        publisher: MqttPublisher,
    ) -> MqttOutputs {
        MqttOutputs {
            graph: graph.to_string(),
            topic,
            retain,
            qos,
            dead_letter: dead_letter.map(Bytes::from),
            publisher,
            node_id: "weir".into(),
            topicless: std::sync::atomic::AtomicU64::new(0),
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
        let message = item.into_message(&self.node_id);
        let topic = match &self.topic {
            Some(template) => template.render(&message.topic),
            None => std::str::from_utf8(&message.topic)
                .ok()
                .filter(|topic| weir_model::topic::check_topic_name(topic).is_ok())
                .map(str::to_string),
        };
        let Some(topic) = topic else {
            let count = self
                .topicless
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            // The first, then at each power of two: one line per message would flood the log.
            if count.is_power_of_two() {
                tracing::warn!(
                    graph = %self.graph,
                    topic = %String::from_utf8_lossy(&message.topic),
                    template = %self.topic.as_ref().map(ToString::to_string).unwrap_or_default(),
                    "a result has no valid output topic; it is counted as lost ({count} so far)"
                );
            }
            return false;
        };
        self.publisher
            .publish(message, Bytes::from(topic), self.retain, self.qos)
    }

    fn dead_letter(&self, letter: DeadLetter) {
        let Some(topic) = &self.dead_letter else {
            return;
        };
        let mut message = letter.item.into_message(&self.node_id);
        let original_topic = std::mem::take(&mut message.topic);
        for (key, value) in [
            ("weir-graph", Bytes::from(self.graph.clone())),
            ("weir-node", Bytes::from(letter.node)),
            ("weir-module", Bytes::from(letter.module)),
            ("weir-error", Bytes::from(property_text(&letter.reason))),
            ("weir-topic", original_topic),
        ] {
            message
                .user_properties
                .push((Bytes::from_static(key.as_bytes()), value));
        }
        self.publisher
            .publish(message, topic.clone(), false, self.qos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_put_on_one_line_and_bounded() {
        assert_eq!(property_text("trap\n  at 0x1\u{0}"), "trap   at 0x1 ");
        let long = "é".repeat(1000);
        let fitted = property_text(&long);
        assert_eq!(fitted.len(), MAX_REASON);
        assert!(fitted.chars().all(|c| c == 'é'));
    }
}
