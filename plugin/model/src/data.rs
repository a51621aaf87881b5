//! The items that flow through a graph, as the host holds them.
//!
//! Byte fields are [`Bytes`], so handing a field to a module as a host buffer, keeping the
//! original for a filter, or fanning an item out to two arms never copies the payload.

use crate::hlc::Hlc;
use bytes::Bytes;

/// One item of a graph: the host-side twin of the WIT `data-model` variant.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum DataModel {
    /// Raw bytes.
    Bytes(Bytes),
    /// An MQTT message.
    Message(Message),
    /// A video frame.
    Snapshot(Snapshot),
}

/// An MQTT message with its timestamp.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// When the message happened (the `__ts` user property, or the broker's clock).
    pub timestamp: Hlc,
    /// The MQTT topic (empty when a module made the message without one).
    pub topic: Bytes,
    /// The MQTT 5 content type.
    pub content_type: Option<Bytes>,
    /// The payload.
    pub payload: Bytes,
    /// MQTT 5 user properties, in order, duplicates kept.
    pub user_properties: Vec<(Bytes, Bytes)>,
    /// The schema the payload follows, if known (boxed: most messages have none, and every
    /// message moves between the dataflow's containers several times).
    pub schema: Option<Box<MessageSchema>>,
}

/// Where a message's schema is found.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum MessageSchema {
    /// An id in a schema registry.
    RegistryReference(Bytes),
    /// The schema itself.
    Inline {
        /// The schema's name.
        name: Bytes,
        /// The schema document.
        content: Bytes,
    },
}

/// A video frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// When the frame was taken.
    pub timestamp: Hlc,
    /// The pixel format.
    pub format: Bytes,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The frame's bytes.
    pub frame: Bytes,
}

impl Message {
    /// A message on `topic` with `payload`, at `timestamp`, without properties.
    ///
    /// ```
    /// use weir_model::{data::Message, hlc::Hlc};
    /// let m = Message::new(Hlc::from_millis(1, 0, "n".into()), "a/b", r#"{"v":1}"#);
    /// assert_eq!(&m.topic[..], b"a/b");
    /// ```
    pub fn new(timestamp: Hlc, topic: impl Into<Bytes>, payload: impl Into<Bytes>) -> Message {
        Message {
            timestamp,
            topic: topic.into(),
            content_type: None,
            payload: payload.into(),
            user_properties: Vec::new(),
            schema: None,
        }
    }

    /// The first value of user property `key`.
    pub fn user_property(&self, key: &str) -> Option<&Bytes> {
        self.user_properties
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v)
    }
}

impl DataModel {
    /// The payload of any variant: a message's payload, a snapshot's frame, or the bytes.
    pub fn payload(&self) -> &Bytes {
        match self {
            DataModel::Bytes(bytes) => bytes,
            DataModel::Message(message) => &message.payload,
            DataModel::Snapshot(snapshot) => &snapshot.frame,
        }
    }

    /// The item's timestamp, if its variant has one.
    pub fn timestamp(&self) -> Option<&Hlc> {
        match self {
            DataModel::Bytes(_) => None,
            DataModel::Message(message) => Some(&message.timestamp),
            DataModel::Snapshot(snapshot) => Some(&snapshot.timestamp),
        }
    }

    /// Sets the item's timestamp (raw bytes have none and are left as they are).
    pub fn set_timestamp(&mut self, timestamp: Hlc) {
        match self {
            DataModel::Bytes(_) => {}
            DataModel::Message(message) => message.timestamp = timestamp,
            DataModel::Snapshot(snapshot) => snapshot.timestamp = timestamp,
        }
    }

    /// The item as a message: raw bytes and frames become a message without topic, stamped
    /// now by a clock of `node_id` when they carry no time.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use weir_model::data::DataModel;
    ///
    /// let message = DataModel::Bytes(Bytes::from_static(b"21.5")).into_message("gw1");
    /// assert!(message.topic.is_empty());
    /// assert_eq!(message.payload, "21.5");
    /// assert_eq!(message.timestamp.node_id.as_ref(), "gw1");
    /// ```
    pub fn into_message(self, node_id: &str) -> Message {
        match self {
            DataModel::Message(message) => message,
            other => {
                let timestamp = other
                    .timestamp()
                    .cloned()
                    .unwrap_or_else(|| crate::hlc::HlcClock::new(node_id).now());
                Message::new(timestamp, Bytes::new(), other.payload().clone())
            }
        }
    }

    /// The first staged value of an accumulate: a message with empty topic and payload, no
    /// content type, properties or schema, at the group's `timestamp`.
    pub fn empty_staged(timestamp: Hlc) -> DataModel {
        DataModel::Message(Message::new(timestamp, Bytes::new(), Bytes::new()))
    }
}
