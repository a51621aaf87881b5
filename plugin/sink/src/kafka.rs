//! The Kafka sink: a graph's results produced to a Kafka topic by librdkafka (crate `rdkafka`),
//! from a delivery thread of its own behind a bounded [`buffer`](super::buffer).
//!
//! Each result becomes one record: the payload as value, the key chosen by [`KafkaKey`], the
//! MQTT user properties as headers in order, then `__ts` (the result's hybrid logical clock)
//! and `content-type` when the result has one; the record's timestamp is the clock's
//! milliseconds.
//!
//! Delivery: the producer is idempotent by default and keeps at most `window` records in
//! flight. A record that fails (its delivery timeout passes while the cluster is unreachable,
//! or the cluster refuses it) is retried, in order, after a backoff, with a fresh producer: a
//! cluster that came back without the producer's state (a restarted in-memory broker) would
//! otherwise refuse its sequence numbers for ever. A record that times out after the cluster
//! stored it is then sent again; with a durable cluster and the default timeouts that needs an
//! outage longer than the timeout that ends in the middle of a write.

use super::buffer::{buffer, Backoff, BufferReader, Delivery, SinkMetrics, SinkThread};
use super::{SinkError, Upstream, UpstreamSink};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weir_model::data::Message;

/// Which Kafka key a record gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KafkaKey {
    /// No key (the partitioner spreads records).
    None,
    /// The MQTT topic of the result (the default: one device's records stay in order).
    #[default]
    Topic,
    /// The value of a user property (the first with that name); no key when it is absent.
    Property(String),
}

impl std::str::FromStr for KafkaKey {
    type Err = String;

    fn from_str(text: &str) -> Result<KafkaKey, String> {
        match text {
            "none" => Ok(KafkaKey::None),
            "topic" => Ok(KafkaKey::Topic),
            other => match other.strip_prefix("property:") {
                Some(name) if !name.is_empty() => Ok(KafkaKey::Property(name.to_string())),
                _ => Err(format!(
                    "unknown key `{other}`: expected `none`, `topic` or `property:<name>`"
                )),
            },
        }
    }
}

/// A Kafka sink as configured (`sink.kafka` in weir.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawKafkaConfig")]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub bootstrap_servers: String,
    /// The topic records go to.
    pub topic: String,
    /// The record key.
    pub key: KafkaKey,
    /// `all`, `1` or `0` (an idempotent producer needs `all`).
    pub acks: String,
    /// `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: String,
    /// How long the producer waits to fill a batch, in milliseconds.
    pub linger_ms: u64,
    /// Idempotent producer (no duplicates from the producer's own retries).
    pub idempotent: bool,
    /// How long one attempt to deliver a record may take before it is retried, in milliseconds.
    pub delivery_timeout_ms: u64,
    /// Further librdkafka properties (security, SASL, ...), passed as they are.
    pub options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKafkaConfig {
    bootstrap_servers: String,
    topic: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    acks: Option<serde_yaml::Value>,
    #[serde(default)]
    compression: Option<String>,
    #[serde(default = "default_linger_ms")]
    linger_ms: u64,
    #[serde(default = "yes")]
    idempotent: bool,
    #[serde(default = "default_delivery_timeout_ms")]
    delivery_timeout_ms: u64,
    #[serde(default)]
    exactly_once: bool,
    #[serde(default)]
    options: BTreeMap<String, serde_yaml::Value>,
}

/// Why `exactly_once: true` (and a `transactional.id` among the options) is refused.
const NO_TRANSACTIONS: &str = "Weir does not write Kafka transactions; results are written at \
least once, and a Kafka-fed graph's carry a `weir-result-id` header to drop repeats by \
(docs/scale-out.md)";

fn default_linger_ms() -> u64 {
    5
}

fn default_delivery_timeout_ms() -> u64 {
    10_000
}

fn yes() -> bool {
    true
}

fn scalar(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(text) => Some(text.clone()),
        serde_yaml::Value::Number(number) => Some(number.to_string()),
        serde_yaml::Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl TryFrom<RawKafkaConfig> for KafkaConfig {
    type Error = String;

    fn try_from(raw: RawKafkaConfig) -> Result<KafkaConfig, String> {
        if raw.bootstrap_servers.trim().is_empty() {
            return Err("bootstrap_servers is empty".into());
        }
        if raw.topic.is_empty() {
            return Err("topic is empty".into());
        }
        let key = raw.key.as_deref().unwrap_or("topic").parse()?;
        let acks = match raw.acks.as_ref().map(scalar) {
            None => "all".to_string(),
            Some(Some(acks)) if ["all", "-1", "1", "0"].contains(&acks.as_str()) => acks,
            Some(_) => return Err("acks must be `all`, `1` or `0`".into()),
        };
        if raw.idempotent && acks != "all" && acks != "-1" {
            return Err(format!(
                "an idempotent producer needs acks `all` (got `{acks}`); set `idempotent: false` to use it"
            ));
        }
        if raw.exactly_once {
            return Err(format!(
                "`exactly_once: true` is not supported: {NO_TRANSACTIONS}"
            ));
        }
        if raw.options.contains_key("transactional.id") {
            return Err(format!(
                "option `transactional.id` is not supported: {NO_TRANSACTIONS}"
            ));
        }
        let compression = raw.compression.unwrap_or_else(|| "none".into());
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&compression.as_str()) {
            return Err(format!(
                "unknown compression `{compression}`: expected none, gzip, snappy, lz4 or zstd"
            ));
        }
        let mut options = BTreeMap::new();
        for (name, value) in raw.options {
            let value = scalar(&value)
                .ok_or_else(|| format!("option `{name}` must be a string or number"))?;
            options.insert(name, value);
        }
        let config = KafkaConfig {
            bootstrap_servers: raw.bootstrap_servers,
            topic: raw.topic,
            key,
            acks,
            compression,
            linger_ms: raw.linger_ms,
            idempotent: raw.idempotent,
            delivery_timeout_ms: raw.delivery_timeout_ms.max(1),
            options,
        };
        // librdkafka checks every property when a client is made (no connection yet).
        config
            .client_config()
            .create::<BaseProducer>()
            .map_err(|e| e.to_string())?;
        Ok(config)
    }
}

impl KafkaConfig {
    /// The librdkafka configuration of the sink's producer.
    fn client_config(&self) -> ClientConfig {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("enable.idempotence", self.idempotent.to_string())
            .set("acks", &self.acks)
            .set("compression.type", &self.compression)
            .set("linger.ms", self.linger_ms.to_string())
            .set("message.timeout.ms", self.delivery_timeout_ms.to_string())
            .set("queue.buffering.max.messages", (WINDOW * 2).to_string());
        for (name, value) in &self.options {
            client.set(name, value);
        }
        client
    }
}

/// Records handed to librdkafka and not yet acknowledged, at most (and never more than the
/// buffer holds: the sink holds at most twice its buffer).
const WINDOW: usize = 10_000;

/// A Kafka sink: `start` checks the configuration by building a producer, then delivers from
/// a thread of its own. The cluster need not be reachable: results wait in the
/// buffer, and the sink reports itself down while it cannot reach the cluster.
impl Upstream for KafkaConfig {
    fn describe(&self) -> String {
        format!("kafka {}/{}", self.bootstrap_servers, self.topic)
    }

    fn start(&self, graph: &str, delivery: &Delivery) -> Result<UpstreamSink, SinkError> {
        let config = self;
        let (buffer, reader, metrics) = buffer(
            graph,
            "kafka",
            &format!("{}/{}", config.bootstrap_servers, config.topic),
            delivery.buffer,
            delivery.when_full,
        );
        let failed = Arc::new(Mutex::new(Vec::new()));
        let producer = producer(config, &metrics, &failed)?;
        let worker = Worker {
            config: config.clone(),
            reader,
            metrics: metrics.clone(),
            failed,
            backoff: Backoff::new(delivery),
            window: WINDOW.min(delivery.buffer.max(1)),
        };
        let thread = SinkThread::spawn(format!("weir-kafka-{graph}"), move || worker.run(producer))
            .map_err(SinkError::Thread)?;
        Ok(UpstreamSink {
            buffer,
            metrics,
            thread,
        })
    }
}

/// Records whose delivery failed, in the order librdkafka reported them.
type Failed = Mutex<Vec<Box<Message>>>;

/// Receives librdkafka's delivery reports and client errors.
struct Reports {
    metrics: Arc<SinkMetrics>,
    failed: Arc<Failed>,
}

impl ClientContext for Reports {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // Connection failures repeat while the cluster is down; the sink reports the state
        // change itself, so librdkafka's own lines stay at debug level.
        tracing::debug!(graph = %self.metrics.graph, ?level, facility, "librdkafka: {message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(RDKafkaErrorCode::AllBrokersDown) = error.rdkafka_error_code() {
            self.metrics.set_up(false, reason);
        } else {
            tracing::debug!(graph = %self.metrics.graph, "librdkafka error: {error}: {reason}");
        }
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<Message>;

    fn delivery(&self, result: &DeliveryResult<'_>, message: Box<Message>) {
        match result {
            Ok(_) => {
                self.metrics.delivered.fetch_add(1, Relaxed);
                self.metrics.set_up(true, "");
            }
            Err((error, _)) => {
                self.metrics.set_up(false, &error.to_string());
                self.failed
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(message);
            }
        }
    }
}

fn producer(
    config: &KafkaConfig,
    metrics: &Arc<SinkMetrics>,
    failed: &Arc<Failed>,
) -> Result<BaseProducer<Reports>, SinkError> {
    config
        .client_config()
        .create_with_context(Reports {
            metrics: metrics.clone(),
            failed: failed.clone(),
        })
        .map_err(|e| SinkError::Config(format!("kafka: {e}")))
}

struct Worker {
    config: KafkaConfig,
    reader: BufferReader<Message>,
    metrics: Arc<SinkMetrics>,
    failed: Arc<Failed>,
    backoff: Backoff,
    window: usize,
}

impl Worker {
    fn run(mut self, mut producer: BaseProducer<Reports>) {
        match producer
            .client()
            .fetch_metadata(Some(&self.config.topic), Duration::from_secs(5))
        {
            Ok(_) => self.metrics.set_up(true, ""),
            Err(e) => self.metrics.set_up(false, &e.to_string()),
        }
        // Records to send before anything new from the buffer, in order.
        let mut pending: VecDeque<Box<Message>> = VecDeque::new();
        let mut failures: Vec<Box<Message>> = Vec::new();
        loop {
            let in_flight = producer.in_flight_count().max(0) as usize;
            if failures.is_empty() {
                if pending.is_empty() && in_flight < self.window {
                    let wait = if in_flight == 0 {
                        Duration::from_millis(100)
                    } else {
                        Duration::ZERO
                    };
                    pending.extend(
                        self.reader
                            .take(self.window - in_flight, wait)
                            .into_iter()
                            .map(Box::new),
                    );
                }
                while let Some(message) = pending.pop_front() {
                    if let Err(back) = self.send(&producer, message) {
                        pending.push_front(back);
                        break;
                    }
                }
            }
            let in_flight = producer.in_flight_count().max(0) as usize;
            producer.poll(if in_flight > 0 {
                Duration::from_millis(5)
            } else {
                Duration::ZERO
            });
            failures.append(&mut self.failed.lock().unwrap_or_else(|p| p.into_inner()));
            let in_flight = producer.in_flight_count().max(0) as usize;
            self.metrics
                .set_in_flight(in_flight + pending.len() + failures.len());
            if !failures.is_empty() && in_flight == 0 {
                // Every outstanding record is reported: resend the failed ones first, in the
                // order they were reported, from a fresh producer.
                self.metrics
                    .retried
                    .fetch_add(failures.len() as u64, Relaxed);
                for message in failures.drain(..).rev() {
                    pending.push_front(message);
                }
                std::thread::sleep(self.backoff.next_wait());
                match producer_again(&self.config, &self.metrics, &self.failed) {
                    Some(fresh) => producer = fresh,
                    None => continue,
                }
            } else if failures.is_empty() && in_flight == 0 && pending.is_empty() {
                if self.reader.is_closed() {
                    return;
                }
                self.backoff.reset();
            }
        }
    }

    /// Hands one record to librdkafka; gives it back when librdkafka's queue is full.
    fn send(
        &self,
        producer: &BaseProducer<Reports>,
        message: Box<Message>,
    ) -> Result<(), Box<Message>> {
        let payload = message.payload.clone();
        let key = match &self.config.key {
            KafkaKey::None => None,
            KafkaKey::Topic => Some(message.topic.clone()),
            KafkaKey::Property(name) => message
                .user_properties
                .iter()
                .find(|(key, _)| key.as_ref() == name.as_bytes())
                .map(|(_, value)| value.clone()),
        };
        let mut headers = OwnedHeaders::new_with_capacity(message.user_properties.len() + 2);
        for (name, value) in &message.user_properties {
            headers = headers.insert(Header {
                key: &String::from_utf8_lossy(name),
                value: Some(value.as_ref()),
            });
        }
        let stamp = message.timestamp.to_string();
        headers = headers.insert(Header {
            key: "__ts",
            value: Some(stamp.as_bytes()),
        });
        if let Some(content_type) = &message.content_type {
            headers = headers.insert(Header {
                key: "content-type",
                value: Some(content_type.as_ref()),
            });
        }
        let millis = i64::try_from(message.timestamp.millis()).unwrap_or(i64::MAX);
        let mut record = BaseRecord::with_opaque_to(&self.config.topic, message)
            .payload(payload.as_ref())
            .headers(headers)
            .timestamp(millis);
        if let Some(key) = &key {
            record = record.key(key.as_ref());
        }
        match producer.send(record) {
            Ok(()) => Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                Err(record.delivery_opaque)
            }
            Err((error, record)) => {
                // Refused before leaving the process (too large, say): it cannot succeed later.
                self.metrics.dropped.fetch_add(1, Relaxed);
                tracing::error!(
                    graph = %self.metrics.graph,
                    topic = %String::from_utf8_lossy(&record.delivery_opaque.topic),
                    "kafka sink {} refused a result: {error}; dropped and counted",
                    self.metrics.target
                );
                Ok(())
            }
        }
    }
}

fn producer_again(
    config: &KafkaConfig,
    metrics: &Arc<SinkMetrics>,
    failed: &Arc<Failed>,
) -> Option<BaseProducer<Reports>> {
    match producer(config, metrics, failed) {
        Ok(producer) => Some(producer),
        Err(e) => {
            tracing::error!(graph = %metrics.graph, "kafka sink: {e}");
            None
        }
    }
}
