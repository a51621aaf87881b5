//! A message in a bridge's queue, as it is kept on disk, and the keys it is kept under.
//!
//! Keys sort as the queue does: `m` and the message's sequence number (big-endian) for a
//! message, `r` and the same number for the mark of a QoS 2 message the remote received
//! (PUBREC) and that now waits for its PUBCOMP, `n` for the next sequence number.

use crate::message::Properties;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A message on its way to the remote, its topic already renamed for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// The remote topic.
    pub topic: Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The QoS on the bridge hop (the lower of the published one and the topic line's).
    pub qos: u8,
    /// The retain flag it was published with.
    pub retain: bool,
    /// Its MQTT 5 properties (the message expiry interval as published).
    pub properties: Option<Box<Properties>>,
    /// When it was queued (ms since the Unix epoch).
    pub queued_at: u64,
}

impl Queued {
    /// The message's form on disk.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// A message read back from disk.
    pub fn decode(bytes: &[u8]) -> Result<Queued, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// When it expires (ms since the Unix epoch), from its message expiry interval.
    pub fn expires_at(&self) -> Option<u64> {
        let interval = self.properties.as_ref()?.message_expiry_interval?;
        Some(
            self.queued_at
                .saturating_add(u64::from(interval).saturating_mul(1000)),
        )
    }
}

/// The kinds of key.
const MESSAGE: u8 = b'm';
const RECEIVED: u8 = b'r';
const NEXT: u8 = b'n';

/// The key of message `seq`.
pub fn message_key(seq: u64) -> [u8; 9] {
    key(MESSAGE, seq)
}

/// The key of the mark "the remote received QoS 2 message `seq`".
pub fn received_key(seq: u64) -> [u8; 9] {
    key(RECEIVED, seq)
}

/// The key of the next sequence number.
pub const NEXT_KEY: [u8; 1] = [NEXT];

fn key(kind: u8, seq: u64) -> [u8; 9] {
    let mut key = [kind; 9];
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// What a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Message `seq`.
    Message(u64),
    /// The mark of QoS 2 message `seq`, received by the remote.
    Received(u64),
    /// The next sequence number.
    Next,
    /// Not a key of the queue.
    Other,
}

impl Key {
    /// Reads a key.
    ///
    /// ```
    /// use weir_door::bridge::queue::record::{message_key, received_key, Key};
    /// assert_eq!(Key::read(&message_key(7)), Key::Message(7));
    /// assert_eq!(Key::read(&received_key(9)), Key::Received(9));
    /// assert_eq!(Key::read(b"x"), Key::Other);
    /// ```
    pub fn read(key: &[u8]) -> Key {
        let seq = || Some(u64::from_be_bytes(key.get(1..9)?.try_into().ok()?));
        match (key.first(), key.len()) {
            (Some(&MESSAGE), 9) => seq().map_or(Key::Other, Key::Message),
            (Some(&RECEIVED), 9) => seq().map_or(Key::Other, Key::Received),
            (Some(&NEXT), 1) => Key::Next,
            _ => Key::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_reads_back_as_written() {
        let message = Queued {
            topic: Bytes::from_static(b"plant1/sensors/t"),
            payload: Bytes::from_static(b"21.5"),
            qos: 2,
            retain: true,
            properties: Some(Box::new(Properties {
                content_type: Some("text/plain".into()),
                message_expiry_interval: Some(30),
                user_properties: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
                ..Default::default()
            })),
            queued_at: 1_700_000_000_000,
        };
        let back = Queued::decode(&message.encode()).unwrap();
        assert_eq!(back, message);
        assert_eq!(back.expires_at(), Some(1_700_000_030_000));
    }

    #[test]
    fn message_keys_sort_by_sequence() {
        assert!(message_key(255) < message_key(256));
        assert!(message_key(u64::MAX) < received_key(0));
    }
}
