//! A Kafka record as a graph's message: value -> payload; headers -> user properties in order
//! (`__ts` -> the timestamp, else the record's timestamp; `content-type` -> the content type);
//! key -> the MQTT topic or a user property ([`SourceKey`]). The Kafka sink writes records
//! this way, so its records read back as the messages they were.

use super::config::SourceKey;
use bytes::Bytes;
use rdkafka::message::Headers;
use std::sync::Arc;
use weir_model::data::Message;
use weir_model::hlc::Hlc;
use weir_model::topic::check_topic_name;

/// Why a record could not become a message (it goes to the dead-letter topic).
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The key is not a valid MQTT topic name (with `key: topic`).
    #[error("record key is not an MQTT topic name: {0}")]
    Key(String),
    /// `__ts` is not a hybrid-logical-clock timestamp.
    #[error("header __ts is not a timestamp: {0}")]
    Timestamp(String),
}

/// The message of `record`, read as `key` says; `node_id` stamps a record without `__ts`.
pub fn message_of<M: rdkafka::Message>(
    record: &M,
    key: &SourceKey,
    node_id: &Arc<str>,
) -> Result<Message, RecordError> {
    let payload = Bytes::copy_from_slice(record.payload().unwrap_or_default());
    let mut timestamp = None;
    let mut content_type = None;
    let mut user_properties = Vec::new();
    if let Some(headers) = record.headers() {
        for header in headers.iter() {
            let value = header.value.unwrap_or_default();
            match header.key {
                "__ts" => {
                    let text = String::from_utf8_lossy(value);
                    let parsed =
                        Hlc::parse(&text).map_err(|e| RecordError::Timestamp(e.to_string()))?;
                    timestamp = Some(parsed);
                }
                "content-type" => content_type = Some(Bytes::copy_from_slice(value)),
                name => user_properties.push((
                    Bytes::copy_from_slice(name.as_bytes()),
                    Bytes::copy_from_slice(value),
                )),
            }
        }
    }
    let timestamp = timestamp.unwrap_or_else(|| {
        let millis = record
            .timestamp()
            .to_millis()
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or_else(now_millis);
        Hlc::from_millis(millis, 0, node_id.clone())
    });
    let kafka_topic = Bytes::copy_from_slice(record.topic().as_bytes());
    let topic = match (key, record.key()) {
        (SourceKey::Topic, Some(bytes)) => {
            let text =
                std::str::from_utf8(bytes).map_err(|_| RecordError::Key("not UTF-8".into()))?;
            check_topic_name(text).map_err(|e| RecordError::Key(format!("`{text}`: {e}")))?;
            Bytes::copy_from_slice(bytes)
        }
        (SourceKey::Property(name), Some(bytes)) => {
            user_properties.push((
                Bytes::copy_from_slice(name.as_bytes()),
                Bytes::copy_from_slice(bytes),
            ));
            kafka_topic
        }
        _ => kafka_topic,
    };
    let mut message = Message::new(timestamp, topic, payload);
    message.content_type = content_type;
    message.user_properties = user_properties;
    Ok(message)
}

/// The wall clock in milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};

    fn record(key: Option<&str>, headers: &[(&str, &str)]) -> OwnedMessage {
        let mut owned = OwnedHeaders::new();
        for (name, value) in headers {
            owned = owned.insert(Header {
                key: name,
                value: Some(value.as_bytes()),
            });
        }
        OwnedMessage::new(
            Some(b"21.5".to_vec()),
            key.map(|k| k.as_bytes().to_vec()),
            "readings".into(),
            Timestamp::CreateTime(1_700_000_000_000),
            3,
            42,
            Some(owned),
        )
    }

    #[test]
    fn the_sinks_records_read_back_as_their_messages() {
        let node: Arc<str> = "weir".into();
        let ts = "001700000000123:00000:gw";
        let message = message_of(
            &record(Some("sensors/a"), &[("site", "north"), ("__ts", ts)]),
            &SourceKey::Topic,
            &node,
        )
        .unwrap();
        assert_eq!(&message.topic[..], b"sensors/a");
        assert_eq!(&message.payload[..], b"21.5");
        assert_eq!(message.timestamp.millis(), 1_700_000_000_123);
        assert_eq!(message.user_properties.len(), 1);
    }

    #[test]
    fn without_ts_the_records_timestamp_and_a_property_key() {
        let node: Arc<str> = "weir".into();
        let key = SourceKey::Property("device".into());
        let message = message_of(&record(Some("a"), &[]), &key, &node).unwrap();
        assert_eq!(&message.topic[..], b"readings");
        assert_eq!(message.timestamp.millis(), 1_700_000_000_000);
        assert_eq!(
            message.user_properties,
            vec![(Bytes::from("device"), Bytes::from("a"))]
        );
    }

    #[test]
    fn a_key_that_is_no_topic_name_is_refused() {
        let node: Arc<str> = "weir".into();
        let error = message_of(&record(Some("a/#"), &[]), &SourceKey::Topic, &node).unwrap_err();
        assert!(error.to_string().contains("`a/#`"), "{error}");
    }
}
