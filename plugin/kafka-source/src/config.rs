//! A Kafka source as configured (`source.kafka` of a graph binding in weir.yaml).

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::time::Duration;

/// What the record key becomes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SourceKey {
    /// The message's MQTT topic, as the Kafka sink writes it (the default). A record without
    /// a key gets the Kafka topic's name.
    #[default]
    Topic,
    /// Nothing: every message gets the Kafka topic's name as its topic.
    None,
    /// A user property of that name (the message's topic is the Kafka topic's name).
    Property(String),
}

impl std::str::FromStr for SourceKey {
    type Err = String;

    fn from_str(text: &str) -> Result<SourceKey, String> {
        match text {
            "topic" => Ok(SourceKey::Topic),
            "none" => Ok(SourceKey::None),
            other => match other.strip_prefix("property:") {
                Some(name) if !name.is_empty() => Ok(SourceKey::Property(name.to_string())),
                _ => Err(format!(
                    "unknown key `{other}`: expected `topic`, `none` or `property:<name>`"
                )),
            },
        }
    }
}

/// Where this instance starts reading a partition the first time it is given it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// The group's committed offset; the beginning when there is none (the default).
    #[default]
    Committed,
    /// The beginning, whatever was committed.
    Earliest,
    /// The end: only records written from now on.
    Latest,
}

impl std::str::FromStr for Start {
    type Err = String;

    fn from_str(text: &str) -> Result<Start, String> {
        match text {
            "committed" => Ok(Start::Committed),
            "earliest" => Ok(Start::Earliest),
            "latest" => Ok(Start::Latest),
            other => Err(format!(
                "unknown start `{other}`: expected `committed`, `earliest` or `latest`"
            )),
        }
    }
}

/// `source.kafka`: a consumer group's share of Kafka topics as a graph's input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawSource")]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// The topics read.
    pub topics: Vec<String>,
    /// The consumer group: instances with the same group share the topics' partitions.
    pub group: String,
    /// What the record key becomes.
    pub key: SourceKey,
    /// Where a partition is first read from.
    pub start: Start,
    /// How long a caught-up partition stays silent before it stops holding event time back.
    pub idle_timeout: Duration,
    /// Further librdkafka consumer properties, passed as they are.
    pub options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    bootstrap_servers: String,
    topics: Vec<String>,
    group: String,
    #[serde(default, deserialize_with = "parsed")]
    key: Option<SourceKey>,
    #[serde(default, deserialize_with = "parsed")]
    start: Option<Start>,
    #[serde(default = "default_idle_timeout_ms")]
    idle_timeout_ms: u64,
    #[serde(default)]
    options: BTreeMap<String, serde_yaml::Value>,
}

fn default_idle_timeout_ms() -> u64 {
    5_000
}

/// A value read as text through its `FromStr`.
fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr<Err = String>,
{
    let text = String::deserialize(d)?;
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

/// Properties Weir sets itself: the source would not work as documented with them changed.
const OWN_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "partition.assignment.strategy",
];

impl TryFrom<RawSource> for KafkaSourceConfig {
    type Error = String;

    fn try_from(raw: RawSource) -> Result<KafkaSourceConfig, String> {
        if raw.bootstrap_servers.trim().is_empty() {
            return Err("kafka source: bootstrap_servers is empty".into());
        }
        if raw.topics.is_empty() || raw.topics.iter().any(|t| t.trim().is_empty()) {
            return Err("kafka source: topics needs at least one topic name, none empty".into());
        }
        if raw.group.trim().is_empty() {
            return Err("kafka source: group is empty".into());
        }
        if raw.idle_timeout_ms == 0 {
            return Err("kafka source: idle_timeout_ms must be at least 1".into());
        }
        let mut options = BTreeMap::new();
        for (name, value) in raw.options {
            if OWN_PROPERTIES.contains(&name.as_str()) {
                return Err(format!(
                    "kafka source: option `{name}` is set by Weir (use the source's own keys)"
                ));
            }
            let text = match value {
                serde_yaml::Value::String(text) => text,
                serde_yaml::Value::Number(number) => number.to_string(),
                serde_yaml::Value::Bool(flag) => flag.to_string(),
                _ => return Err(format!("kafka source: option `{name}` is not a scalar")),
            };
            options.insert(name, text);
        }
        Ok(KafkaSourceConfig {
            bootstrap_servers: raw.bootstrap_servers,
            topics: raw.topics,
            group: raw.group,
            key: raw.key.unwrap_or_default(),
            start: raw.start.unwrap_or_default(),
            idle_timeout: Duration::from_millis(raw.idle_timeout_ms),
            options,
        })
    }
}

impl KafkaSourceConfig {
    /// In a few words for logs: `kafka 127.0.0.1:9092 readings (group weir-windows)`.
    pub fn describe(&self) -> String {
        format!(
            "kafka {} {} (group {})",
            self.bootstrap_servers,
            self.topics.join(","),
            self.group
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KafkaSourceConfig, String> {
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_keys() {
        let config = parse("{bootstrap_servers: 'a:9092', topics: [r], group: g}").unwrap();
        assert_eq!(config.key, SourceKey::Topic);
        assert_eq!(config.start, Start::Committed);
        assert_eq!(config.idle_timeout, Duration::from_secs(5));
        let config = parse(
            "{bootstrap_servers: 'a:9092', topics: [r], group: g, key: 'property:device', start: earliest, options: {session.timeout.ms: 6000}}",
        )
        .unwrap();
        assert_eq!(config.key, SourceKey::Property("device".into()));
        assert_eq!(config.start, Start::Earliest);
        assert_eq!(config.options["session.timeout.ms"], "6000");
    }

    #[test]
    fn mistakes_are_named() {
        let error = parse("{bootstrap_servers: 'a:9092', topics: [], group: g}").unwrap_err();
        assert!(error.contains("at least one topic"), "{error}");
        let error =
            parse("{bootstrap_servers: 'a:9092', topics: [r], group: g, start: now}").unwrap_err();
        assert!(error.contains("unknown start `now`"), "{error}");
        let error =
            parse("{bootstrap_servers: 'a:9092', topics: [r], group: g, options: {group.id: x}}")
                .unwrap_err();
        assert!(error.contains("`group.id` is set by Weir"), "{error}");
    }
}
