//! The `graphs` section of `weir.yaml`: which definition runs on which topics, and how.

use super::paths::ExistingFile;
use serde::de::IntoDeserializer;
use serde::{Deserialize, Deserializer};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use weir_graph::options::BackPressure;
use weir_model::topic::{check_topic_name, TopicFilter};
use weir_sink::buffer::{Delivery, WhenFull};
#[cfg(feature = "kafka")]
use weir_sink::kafka::KafkaConfig;
#[cfg(feature = "otlp")]
use weir_sink::otlp::OtlpConfig;
use weir_sink::TopicTemplate;
use weir_sink::UpstreamConfig;

impl GraphBinding {
    /// The source filters, comma-separated, or the Kafka source, for logs.
    pub fn sources(&self) -> String {
        #[cfg(feature = "kafka")]
        if let Some(kafka) = &self.kafka {
            return kafka.describe();
        }
        let filters: Vec<&str> = self.source.iter().map(TopicFilter::as_str).collect();
        filters.join(", ")
    }
}

/// A `source: {kafka: ...}` in a binary without the `kafka` feature: taken as anything, then
/// refused.
#[cfg(not(feature = "kafka"))]
pub type KafkaSourceConfig = serde::de::IgnoredAny;
#[cfg(feature = "kafka")]
pub use weir_kafka_source::KafkaSourceConfig;

/// A binding's `source`: a list of MQTT topic filters, or `{kafka: {...}}`.
enum SourceSpec {
    Topics(Vec<TopicFilter>),
    Kafka(Box<KafkaSourceConfig>),
}

impl<'de> Deserialize<'de> for SourceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Spec;
        impl<'de> serde::de::Visitor<'de> for Spec {
            type Value = SourceSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of MQTT topic filters, or `kafka:` with a Kafka source")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<SourceSpec, A::Error> {
                filters(serde::de::value::SeqAccessDeserializer::new(seq)).map(SourceSpec::Topics)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SourceSpec, A::Error> {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct Sources {
                    kafka: KafkaSourceConfig,
                }
                let sources =
                    Sources::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                if cfg!(not(feature = "kafka")) {
                    return Err(serde::de::Error::custom(super::features::missing(
                        "kafka",
                        "a `kafka` source",
                    )));
                }
                Ok(SourceSpec::Kafka(Box::new(sources.kafka)))
            }
        }
        d.deserialize_any(Spec)
    }
}

/// Deserializes a string through `parse`, so that an error points at the value itself.
fn parsed<'de, D: Deserializer<'de>, T>(
    d: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    struct Text<F>(&'static str, F);
    impl<'de, T, F: FnOnce(&str) -> Result<T, String>> serde::de::Visitor<'de> for Text<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
            (self.1)(text).map_err(E::custom)
        }
    }
    d.deserialize_str(Text(expecting, parse))
}

/// Graph definitions compiled into the binary, named `builtin:<name>` in `definition`.
pub const BUILTIN_GRAPHS: &[(&str, &str)] = &[
    (
        "temperature-map",
        include_str!("../../../config/graphs/temperature-map.yaml"),
    ),
    (
        "windowed-statistics",
        include_str!("../../../config/graphs/windowed-statistics.yaml"),
    ),
];

/// Where a graph's definition comes from.
#[derive(Clone)]
pub enum DefinitionSource {
    /// A file (relative paths resolve against the configuration's directory).
    File(ExistingFile),
    /// A definition in an OCI registry (`oci://host[:port]/repository:tag` or `@sha256:...`),
    /// pulled when the graph starts.
    Registry {
        /// The reference, without `oci://`.
        reference: String,
        /// Where it is written (`weir.yaml:12:17`), for errors found when it is pulled.
        written_at: String,
    },
    /// A definition compiled into the binary (`builtin:<name>`).
    Builtin {
        /// Its name.
        name: &'static str,
        /// Its text.
        text: &'static str,
    },
}

impl std::fmt::Debug for DefinitionSource {
    /// What the graph is built from: where a registry reference is written in weir.yaml is
    /// left out, so that a line added above it does not make a reload replace the graph.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DefinitionSource::File(file) => f.debug_tuple("File").field(file).finish(),
            DefinitionSource::Registry { reference, .. } => {
                f.debug_tuple("Registry").field(reference).finish()
            }
            DefinitionSource::Builtin { name, .. } => f.debug_tuple("Builtin").field(name).finish(),
        }
    }
}

impl<'de> Deserialize<'de> for DefinitionSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        parsed(
            deserializer,
            "a file, oci://<reference> or builtin:<name>",
            |written| {
                if let Some(reference) = written.strip_prefix("oci://") {
                    return weir_oci::check_reference(reference)
                        .map(|()| DefinitionSource::Registry {
                            reference: reference.to_string(),
                            written_at: String::new(),
                        })
                        .map_err(|e| e.to_string());
                }
                match written.strip_prefix("builtin:") {
                    Some(wanted) => BUILTIN_GRAPHS
                        .iter()
                        .find(|(name, _)| *name == wanted)
                        .map(|&(name, text)| DefinitionSource::Builtin { name, text })
                        .ok_or_else(|| {
                            let known: Vec<_> = BUILTIN_GRAPHS.iter().map(|(n, _)| *n).collect();
                            format!(
                                "no built-in graph `{wanted}` (built in: {})",
                                known.join(", ")
                            )
                        }),
                    None => {
                        let file: serde::de::value::StrDeserializer<serde::de::value::Error> =
                            written.into_deserializer();
                        ExistingFile::deserialize(file)
                            .map(DefinitionSource::File)
                            .map_err(|e| e.to_string())
                    }
                }
            },
        )
    }
}

/// Where a graph's results go: back into the broker over MQTT (the default), or upstream to
/// Kafka or an OTLP collector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawSink")]
pub struct SinkConfig {
    /// The output topic: fixed, or a template over the result's own topic (`{topic}`, `{N}`,
    /// `{N..}`). Absent: the result's own topic (as the module left it). MQTT only.
    pub topic: Option<TopicTemplate>,
    /// Publish results retained. MQTT only.
    pub retain: bool,
    /// QoS of results, 0, 1 or 2: each subscriber gets the lower of this and its subscription's.
    pub qos: u8,
    /// The upstream the results go to instead of MQTT.
    pub upstream: Option<UpstreamConfig>,
    /// An upstream sink's buffer and retries.
    pub delivery: Delivery,
}

impl SinkConfig {
    /// Where results go, in a few words for logs: `kafka 127.0.0.1:9092/weir-out`.
    pub fn describe(&self) -> String {
        match &self.upstream {
            None => match &self.topic {
                Some(topic) => format!("mqtt {topic}"),
                None => "mqtt (the results' own topics)".into(),
            },
            Some(upstream) => upstream.describe(),
        }
    }
}

/// A `kafka:` sink in a binary without the `kafka` feature: taken as anything, then refused.
#[cfg(not(feature = "kafka"))]
type KafkaConfig = serde::de::IgnoredAny;
/// An `otlp:` sink in a binary without the `otlp` feature: taken as anything, then refused.
#[cfg(not(feature = "otlp"))]
type OtlpConfig = serde::de::IgnoredAny;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    #[serde(default, deserialize_with = "template")]
    topic: Option<TopicTemplate>,
    #[serde(default)]
    retain: bool,
    #[serde(default, deserialize_with = "qos")]
    qos: u8,
    #[serde(default)]
    kafka: Option<KafkaConfig>,
    #[serde(default)]
    otlp: Option<OtlpConfig>,
    #[serde(default, deserialize_with = "some_at_least_one")]
    buffer: Option<usize>,
    #[serde(default, deserialize_with = "when_full")]
    when_full: Option<WhenFull>,
    #[serde(default)]
    retry_initial_ms: Option<u64>,
    #[serde(default)]
    retry_max_ms: Option<u64>,
}

impl TryFrom<RawSink> for SinkConfig {
    type Error = String;

    fn try_from(raw: RawSink) -> Result<SinkConfig, String> {
        let mqtt = raw.topic.is_some() || raw.retain || raw.qos != 0;
        let kinds = [mqtt, raw.kafka.is_some(), raw.otlp.is_some()];
        if kinds.iter().filter(|&&set| set).count() > 1 {
            return Err(
                "a graph has one sink: set MQTT (`topic`), `kafka` or `otlp`, not several".into(),
            );
        }
        let upstream: Option<UpstreamConfig> = match (raw.kafka, raw.otlp) {
            #[cfg(feature = "kafka")]
            (Some(kafka), _) => Some(UpstreamConfig::Kafka(kafka)),
            #[cfg(not(feature = "kafka"))]
            (Some(_), _) => return Err(super::features::missing("kafka", "a `kafka` sink")),
            #[cfg(feature = "otlp")]
            (_, Some(otlp)) => Some(UpstreamConfig::Otlp(otlp)),
            #[cfg(not(feature = "otlp"))]
            (_, Some(_)) => return Err(super::features::missing("otlp", "an `otlp` sink")),
            (None, None) => None,
        };
        let tuned = raw.buffer.is_some()
            || raw.when_full.is_some()
            || raw.retry_initial_ms.is_some()
            || raw.retry_max_ms.is_some();
        if upstream.is_none() && tuned {
            return Err("buffer, when_full and retry_* apply to `kafka` and `otlp` sinks; MQTT results are published inside the broker".into());
        }
        let defaults = Delivery::default();
        let delivery = Delivery {
            buffer: raw.buffer.unwrap_or(defaults.buffer),
            when_full: raw.when_full.unwrap_or(defaults.when_full),
            retry_initial: raw
                .retry_initial_ms
                .map_or(defaults.retry_initial, Duration::from_millis),
            retry_max: raw
                .retry_max_ms
                .map_or(defaults.retry_max, Duration::from_millis),
        };
        Ok(SinkConfig {
            topic: raw.topic,
            retain: raw.retain,
            qos: raw.qos,
            upstream,
            delivery,
        })
    }
}

/// One graph bound to the broker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawBinding")]
pub struct GraphBinding {
    /// Its name, in logs, metrics and the default dead-letter topic.
    pub name: String,
    /// The graph definition.
    pub definition: DefinitionSource,
    /// The topic filters whose messages enter the graph (none when it reads Kafka).
    pub source: Vec<TopicFilter>,
    /// The Kafka source the graph reads instead of the broker's topics.
    pub kafka: Option<Box<KafkaSourceConfig>>,
    /// Where results go.
    pub sink: SinkConfig,
    /// Where items a module failed on are published (with the reason as user properties).
    pub dead_letter: String,
    /// The graph's configuration: values for its modules' parameters.
    pub configuration: BTreeMap<String, String>,
    /// Worker threads.
    pub workers: usize,
    /// Capacity of each worker's input queue, in messages.
    pub queue: usize,
    /// What happens when the input queue is full.
    pub back_pressure: BackPressure,
    /// How long (ms) a window waits for late messages stamped by their devices.
    pub lateness_ms: u64,
    /// Start without this graph (and say why) when its modules cannot be found.
    pub optional: bool,
    /// The graph takes the publishes on its sources away from the router: subscribers see
    /// only its results.
    pub intercept: bool,
    /// The graph's results may feed it again.
    pub allow_loop: bool,
    /// Schema files every node's `init` receives (after the definition's own `schemas:`).
    pub schemas: Vec<ExistingFile>,
    /// A state-store seed loaded before the graph starts (keys already present are kept).
    pub state_seed: Option<ExistingFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBinding {
    #[serde(deserialize_with = "graph_name")]
    name: String,
    definition: DefinitionSource,
    source: SourceSpec,
    #[serde(default)]
    sink: SinkConfig,
    #[serde(default, deserialize_with = "topic_name")]
    dead_letter: Option<String>,
    #[serde(default, deserialize_with = "scalars")]
    configuration: BTreeMap<String, String>,
    #[serde(default = "one", deserialize_with = "at_least_one")]
    workers: usize,
    #[serde(default = "default_queue", deserialize_with = "at_least_one")]
    queue: usize,
    #[serde(default, deserialize_with = "back_pressure")]
    back_pressure: BackPressure,
    #[serde(default)]
    lateness_ms: u64,
    #[serde(default)]
    allow_loop: bool,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    intercept: bool,
    #[serde(default)]
    schemas: Vec<ExistingFile>,
    #[serde(default)]
    state_seed: Option<ExistingFile>,
}

impl TryFrom<RawBinding> for GraphBinding {
    type Error = String;

    fn try_from(raw: RawBinding) -> Result<Self, String> {
        let (source, kafka) = match raw.source {
            SourceSpec::Topics(filters) => (filters, None),
            SourceSpec::Kafka(kafka) => (Vec::new(), Some(kafka)),
        };
        if kafka.is_some() && raw.intercept {
            return Err(format!(
                "graph `{}` reads Kafka: `intercept` applies to MQTT sources only",
                raw.name
            ));
        }
        // An intercepting graph's results never re-enter it, whatever their topic; a graph
        // reading Kafka is not fed by MQTT.
        if !raw.allow_loop && !raw.intercept && raw.sink.upstream.is_none() && kafka.is_none() {
            match &raw.sink.topic {
                None => {
                    return Err(format!(
                        "graph `{}` has no sink.topic, so results keep their own topic and can feed the graph's source again; set sink.topic, or `allow_loop: true` if that is intended",
                        raw.name
                    ))
                }
                Some(template) => {
                    let reach = template.reach();
                    if let Some(filter) = source.iter().find(|f| f.overlaps(&reach)) {
                        return Err(format!(
                            "graph `{}`: sink.topic `{template}` can match source filter `{}`, so the graph would feed itself; change one, or set `allow_loop: true` if that is intended",
                            raw.name,
                            filter.as_str()
                        ));
                    }
                }
            }
        }
        Ok(GraphBinding {
            dead_letter: raw
                .dead_letter
                .unwrap_or_else(|| format!("weir/dead-letter/{}", raw.name)),
            name: raw.name,
            definition: raw.definition,
            source,
            kafka,
            sink: raw.sink,
            configuration: raw.configuration,
            workers: raw.workers,
            queue: raw.queue,
            back_pressure: raw.back_pressure,
            lateness_ms: raw.lateness_ms,
            optional: raw.optional,
            intercept: raw.intercept,
            allow_loop: raw.allow_loop,
            schemas: raw.schemas,
            state_seed: raw.state_seed,
        })
    }
}

/// Records where each registry definition of `graphs` is written in `text` (the configuration
/// after `${VAR}` substitution), as `locate(offset)` names an offset.
pub(super) fn locate_registry_definitions(
    graphs: &mut [GraphBinding],
    text: &str,
    locate: impl Fn(usize) -> String,
) {
    let mut from = 0;
    for binding in graphs {
        if let DefinitionSource::Registry {
            reference,
            written_at,
        } = &mut binding.definition
        {
            let written = format!("oci://{reference}");
            if let Some(found) = text.get(from..).and_then(|rest| rest.find(&written)) {
                from += found + written.len();
                *written_at = locate(from - written.len());
            }
        }
    }
}

/// The graphs, with unique names.
pub(super) fn graphs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<GraphBinding>, D::Error> {
    let graphs = Vec::<GraphBinding>::deserialize(d)?;
    let mut names = HashSet::new();
    for graph in &graphs {
        if !names.insert(graph.name.as_str()) {
            return Err(serde::de::Error::custom(format_args!(
                "two graphs are named `{}`: names must be unique",
                graph.name
            )));
        }
    }
    Ok(graphs)
}

fn one() -> usize {
    1
}
fn default_queue() -> usize {
    1024
}

fn template<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TopicTemplate>, D::Error> {
    parsed(
        d,
        "an MQTT topic, with {topic}, {N} or {N..} placeholders",
        |written| {
            TopicTemplate::parse(written)
                .map(Some)
                .map_err(|e| e.to_string())
        },
    )
}

fn topic_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    parsed(d, "an MQTT topic", |written| {
        check_topic_name(written).map_err(|e| e.to_string())?;
        Ok(Some(written.to_string()))
    })
}

/// A graph's name: it is one level of MQTT topics (`$weir/status/<graph>`,
/// `weir/dead-letter/<graph>`), so it is not empty and has no `/`, `+`, `#` or control
/// character.
fn graph_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parsed(d, "a graph name", |written| {
        if written.is_empty() {
            return Err("a graph name cannot be empty".into());
        }
        match written.chars().find(|c| matches!(c, '/' | '+' | '#') || c.is_control()) {
            Some(c) => Err(format!(
                "graph name `{}` contains {c:?}: a name is one topic level (no `/`, `+`, `#` or control characters)",
                written.escape_debug()
            )),
            None => Ok(written.to_string()),
        }
    })
}

/// One source filter, located at its own value when invalid.
struct Filter(TopicFilter);

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parsed(d, "an MQTT topic filter", |written| {
            TopicFilter::new(written)
                .map(Filter)
                .map_err(|e| e.to_string())
        })
    }
}

fn filters<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TopicFilter>, D::Error> {
    let filters = Vec::<Filter>::deserialize(d)?;
    if filters.is_empty() {
        return Err(serde::de::Error::custom(
            "no source filter: expected at least one MQTT topic filter",
        ));
    }
    Ok(filters.into_iter().map(|Filter(filter)| filter).collect())
}

fn qos<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    match u8::deserialize(d)? {
        qos @ 0..=2 => Ok(qos),
        other => Err(serde::de::Error::custom(format_args!(
            "QoS {other}: expected 0, 1 or 2"
        ))),
    }
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom("expected at least 1")),
        n => Ok(n),
    }
}

pub(super) fn at_least_one_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom("expected at least 1")),
        n => Ok(n),
    }
}

fn some_at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    at_least_one(d).map(Some)
}

fn when_full<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WhenFull>, D::Error> {
    parsed(d, "`block` or `drop-oldest`", |written| {
        written.parse().map(Some)
    })
}

fn back_pressure<'de, D: Deserializer<'de>>(d: D) -> Result<BackPressure, D::Error> {
    parsed(d, "`block` or `drop`", |written| match written {
        "block" => Ok(BackPressure::Block),
        "drop" => Ok(BackPressure::Drop),
        other => Err(format!(
            "unknown back-pressure policy `{other}`: expected `block` or `drop`"
        )),
    })
}

/// A configuration value as written: a string, number or boolean.
#[derive(Deserialize)]
#[serde(untagged, expecting = "a string, number or boolean")]
enum Scalar {
    Bool(bool),
    Integer(i64),
    Float(f64),
    Text(String),
}

/// Configuration values, all kept as the text the modules read.
fn scalars<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let values = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(values
        .into_iter()
        .map(|(key, value)| {
            let text = match value {
                Scalar::Bool(flag) => flag.to_string(),
                Scalar::Integer(number) => number.to_string(),
                Scalar::Float(number) => number.to_string(),
                Scalar::Text(text) => text,
            };
            (key, text)
        })
        .collect())
}
