//! What a bridge brings in, published on this broker: a thread per bridge with a publisher of
//! its own (mosquitto's `local_clientid`), so that messages from the remote reach local
//! subscribers, graphs and other bridges the way a client's publishes do, wait while a
//! subscriber holds the publisher back, and never go back out through the bridge that brought
//! them. The link acknowledges each message to the remote once this thread handed it over.

use crate::message::Properties;
use crate::publisher::Outgoing;
use crate::{DoorError, DoorHandle, InternalPublisher};
use bytes::Bytes;
use tokio::sync::mpsc::UnboundedSender;

/// A message from the remote, its topic already renamed for this broker.
#[derive(Debug)]
pub struct Incoming {
    /// The local topic.
    pub topic: Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The QoS it came at.
    pub qos: u8,
    /// Its retain flag.
    pub retain: bool,
    /// Its MQTT 5 properties.
    pub properties: Option<Properties>,
    /// Its packet id on the bridge (0 for QoS 0).
    pub pkid: u16,
}

/// Work for a bridge's local publisher.
pub enum Work {
    /// Publish these, then send their (packet id, QoS) to `done`, in order.
    Publish {
        /// The messages.
        messages: Vec<Incoming>,
        /// Told when they are handed over.
        done: UnboundedSender<Vec<(u16, u8)>>,
    },
    /// Publish a notification of the bridge's state, retained.
    Notify {
        /// Its topic.
        topic: String,
        /// `1` or `0`.
        payload: Bytes,
    },
}

/// A bridge's local publisher.
pub struct LocalPublisher {
    work: crossbeam_channel::Sender<Work>,
}

impl LocalPublisher {
    /// Starts the thread of bridge `bridge`, publishing as `name`.
    pub fn start(door: &DoorHandle, name: &str, bridge: &str) -> Result<LocalPublisher, DoorError> {
        let publisher = door.bridge_publisher(name, bridge)?;
        let (work, queue) = crossbeam_channel::unbounded();
        let bridge = bridge.to_string();
        std::thread::Builder::new()
            .name(format!("weir-bridge-{bridge}"))
            .spawn(move || serve(publisher, &bridge, queue))?;
        Ok(LocalPublisher { work })
    }

    /// Hands `work` over (dropped when the thread has gone: the broker is stopping).
    pub fn send(&self, work: Work) {
        let _ = self.work.send(work);
    }
}

fn serve(mut publisher: InternalPublisher, bridge: &str, queue: crossbeam_channel::Receiver<Work>) {
    for work in queue {
        match work {
            Work::Publish { messages, done } => {
                let acks: Vec<(u16, u8)> = messages.iter().map(|m| (m.pkid, m.qos)).collect();
                let outgoing = messages.into_iter().map(|m| Outgoing {
                    topic: m.topic,
                    payload: m.payload,
                    qos: m.qos,
                    retain: m.retain,
                    properties: m.properties,
                });
                if let Err(e) = publisher.publish_all(outgoing) {
                    // Not acknowledged: the remote sends them again.
                    tracing::error!(bridge, "messages from the remote not published: {e}");
                    continue;
                }
                let _ = done.send(acks);
            }
            Work::Notify { topic, payload } => {
                let notification = Outgoing {
                    topic: Bytes::from(topic),
                    payload,
                    qos: 1,
                    retain: true,
                    properties: None,
                };
                if let Err(e) = publisher.publish(notification) {
                    tracing::warn!(bridge, "state notification not published: {e}");
                }
            }
        }
    }
}
