//! Recorded messages, one JSON object per line: the input and output format of
//! `weir graph run`.
//!
//! ```text
//! {"topic": "sensors/gw1/temperature", "payload": "{\"temperature\": 72}", "user_properties": [["k", "v"]], "ts": "001700000000000:00000:gw1"}
//! {"topic": "camera/1", "payload": {"base64": "iVBORw0KGgo="}}
//! ```
//! `payload` is the UTF-8 text, or `{"base64": ...}` for bytes that are not UTF-8;
//! `user_properties` and `ts` (the `__ts` form) are optional; `content_type` is also accepted.

use crate::data::{DataModel, Message};
use crate::hlc::{Hlc, ParseHlcError};
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The MQTT topic.
    pub topic: String,
    /// The payload.
    pub payload: Payload,
    /// MQTT 5 content type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// MQTT 5 user properties, in order.
    #[serde(default)]
    pub user_properties: Vec<(String, String)>,
    /// The timestamp, `<ms:15 digits>:<counter:5 digits>:<node-id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
}

/// A payload: text when it is UTF-8, else base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Payload {
    /// UTF-8 text.
    Text(String),
    /// Other bytes.
    Binary {
        /// The bytes in standard base64.
        base64: String,
    },
}

/// Why a record cannot become a message.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not the expected JSON.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// `payload.base64` is not base64.
    #[error("payload.base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// `ts` is not a timestamp.
    #[error("ts: {0}")]
    Timestamp(#[from] ParseHlcError),
}

impl Payload {
    /// The payload of `bytes`: text if they are UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Payload {
        match std::str::from_utf8(bytes) {
            Ok(text) => Payload::Text(text.to_string()),
            Err(_) => Payload::Binary {
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            },
        }
    }

    /// The bytes.
    pub fn to_bytes(&self) -> Result<Bytes, RecordError> {
        Ok(match self {
            Payload::Text(text) => Bytes::from(text.clone()),
            Payload::Binary { base64 } => {
                Bytes::from(base64::engine::general_purpose::STANDARD.decode(base64)?)
            }
        })
    }
}

impl Record {
    /// Parses one line.
    ///
    /// ```
    /// use weir_model::record::Record;
    /// let record = Record::parse(r#"{"topic": "a/b", "payload": "hi", "ts": "001700000000000:00001:n"}"#).unwrap();
    /// assert_eq!(record.topic, "a/b");
    /// assert!(Record::parse(r#"{"topic": "a/b"}"#).unwrap_err().to_string().contains("payload"));
    /// ```
    pub fn parse(line: &str) -> Result<Record, RecordError> {
        Ok(serde_json::from_str(line)?)
    }

    /// The message this record describes; its timestamp is `ts`, else `now()`.
    pub fn to_message(&self, now: impl FnOnce() -> Hlc) -> Result<Message, RecordError> {
        let timestamp = match &self.ts {
            Some(ts) => Hlc::parse(ts)?,
            None => now(),
        };
        Ok(Message {
            timestamp,
            topic: Bytes::from(self.topic.clone()),
            content_type: self.content_type.clone().map(Bytes::from),
            payload: self.payload.to_bytes()?,
            user_properties: self
                .user_properties
                .iter()
                .map(|(k, v)| (Bytes::from(k.clone()), Bytes::from(v.clone())))
                .collect(),
            schema: None,
        })
    }

    /// The record of a graph result.
    pub fn from_data(data: &DataModel) -> Record {
        let text = |bytes: &Bytes| String::from_utf8_lossy(bytes).into_owned();
        match data {
            DataModel::Message(message) => Record {
                topic: text(&message.topic),
                payload: Payload::from_bytes(&message.payload),
                content_type: message.content_type.as_ref().map(text),
                user_properties: message
                    .user_properties
                    .iter()
                    .map(|(k, v)| (text(k), text(v)))
                    .collect(),
                ts: Some(message.timestamp.to_string()),
            },
            other => Record {
                topic: String::new(),
                payload: Payload::from_bytes(other.payload()),
                content_type: None,
                user_properties: Vec::new(),
                ts: other.timestamp().map(ToString::to_string),
            },
        }
    }

    /// The record as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
