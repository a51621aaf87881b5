//! Graph results as OTLP data: the OTel-shaped JSON that AIO's otel-transform module emits
//! becomes metrics; any other payload becomes a log record.
//!
//! The metrics shape: `{"metrics": [{"name", "value", "metric_type", "unit", "timestamp",
//! "attributes": [{"key", "value"}]}]}`. `metric_type` is `gauge` (the default), `counter` or
//! `sum` (a monotonic cumulative sum) or `updowncounter` (a non-monotonic one); `value` a number;
//! `timestamp` milliseconds since the epoch (seconds, microseconds and nanoseconds are told
//! apart by size), an RFC 3339 time or an HLC stamp, and the message's own time when absent.
//! A payload that does not have this shape in full is a log record: body the payload (text
//! when it is UTF-8, bytes otherwise), time the message's clock, attributes `mqtt.topic`,
//! `mqtt.content_type` when set, and the user properties in order.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum,
};
use serde::Deserialize;
use std::time::{SystemTime, UNIX_EPOCH};
use weir_model::data::Message;
use weir_model::hlc::Hlc;

#[derive(Deserialize)]
struct OtelPayload {
    metrics: Vec<OtelMetric>,
}

#[derive(Deserialize)]
struct OtelMetric {
    name: String,
    value: serde_json::Number,
    #[serde(default)]
    metric_type: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    timestamp: Option<serde_json::Value>,
    #[serde(default)]
    attributes: Vec<OtelAttribute>,
}

#[derive(Deserialize)]
struct OtelAttribute {
    key: String,
    value: serde_json::Value,
}

/// The metrics in `message`'s payload, or `None` when it is not the OTel metrics shape.
///
/// ```
/// use weir_model::data::Message;
/// use weir_model::hlc::Hlc;
/// use weir_sink::otel_payload::metrics;
/// let payload = r#"{"metrics":[{"name":"temp","value":21.5,"metric_type":"gauge","unit":"Cel",
///     "attributes":[{"key":"room","value":"a"}]}]}"#;
/// let message = Message::new(Hlc::from_millis(1_000, 0, "n".into()), "t", payload);
/// let found = metrics(&message).unwrap();
/// assert_eq!(found[0].name, "temp");
/// let plain = Message::new(Hlc::from_millis(1, 0, "n".into()), "t", "21");
/// assert!(metrics(&plain).is_none());
/// ```
pub fn metrics(message: &Message) -> Option<Vec<Metric>> {
    let payload: OtelPayload = serde_json::from_slice(&message.payload).ok()?;
    if payload.metrics.is_empty() {
        return None;
    }
    let default_time = nanos_of(&message.timestamp);
    payload
        .metrics
        .into_iter()
        .map(|written| {
            let kind = written.metric_type.as_deref().unwrap_or("gauge");
            let time = match &written.timestamp {
                None => default_time,
                Some(value) => time_of(value)?,
            };
            let value = if let Some(integer) = written.value.as_i64() {
                number_data_point::Value::AsInt(integer)
            } else {
                number_data_point::Value::AsDouble(written.value.as_f64()?)
            };
            let point = NumberDataPoint {
                attributes: written
                    .attributes
                    .iter()
                    .map(|a| KeyValue {
                        key: a.key.clone(),
                        value: Some(json_value(&a.value)),
                    })
                    .collect(),
                time_unix_nano: time,
                value: Some(value),
                ..Default::default()
            };
            let data = match kind {
                "gauge" => metric::Data::Gauge(Gauge {
                    data_points: vec![point],
                }),
                "counter" | "sum" | "updowncounter" => metric::Data::Sum(Sum {
                    data_points: vec![point],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: kind != "updowncounter",
                }),
                _ => return None,
            };
            Some(Metric {
                name: written.name,
                description: written.description.unwrap_or_default(),
                unit: written.unit.unwrap_or_default(),
                metadata: Vec::new(),
                data: Some(data),
            })
        })
        .collect()
}

/// `message` as a log record (see the module's documentation).
pub fn log_record(message: &Message) -> LogRecord {
    let body = match std::str::from_utf8(&message.payload) {
        Ok(text) => any_value::Value::StringValue(text.to_string()),
        Err(_) => any_value::Value::BytesValue(message.payload.to_vec()),
    };
    let mut attributes = Vec::with_capacity(message.user_properties.len() + 2);
    attributes.push(string_attribute("mqtt.topic", &message.topic));
    if let Some(content_type) = &message.content_type {
        attributes.push(string_attribute("mqtt.content_type", content_type));
    }
    for (key, value) in &message.user_properties {
        attributes.push(string_attribute(&String::from_utf8_lossy(key), value));
    }
    LogRecord {
        time_unix_nano: nanos_of(&message.timestamp),
        observed_time_unix_nano: now_nanos(),
        body: Some(AnyValue { value: Some(body) }),
        attributes,
        ..Default::default()
    }
}

/// A string attribute.
pub fn string_attribute(key: &str, value: &[u8]) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(
                String::from_utf8_lossy(value).into_owned(),
            )),
        }),
    }
}

fn json_value(value: &serde_json::Value) -> AnyValue {
    let value = match value {
        serde_json::Value::Bool(flag) => any_value::Value::BoolValue(*flag),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(integer) => any_value::Value::IntValue(integer),
            None => any_value::Value::DoubleValue(number.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(text) => any_value::Value::StringValue(text.clone()),
        other => any_value::Value::StringValue(other.to_string()),
    };
    AnyValue { value: Some(value) }
}

fn nanos_of(stamp: &Hlc) -> u64 {
    stamp.millis().saturating_mul(1_000_000)
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A written timestamp in nanoseconds since the epoch.
fn time_of(value: &serde_json::Value) -> Option<u64> {
    match value {
        serde_json::Value::Number(number) => {
            let n = number.as_u64()?;
            Some(match n {
                0..100_000_000_000 => n * 1_000_000_000,
                100_000_000_000..100_000_000_000_000 => n * 1_000_000,
                100_000_000_000_000..100_000_000_000_000_000 => n * 1_000,
                _ => n,
            })
        }
        serde_json::Value::String(text) => {
            if let Ok(stamp) = Hlc::parse(text) {
                return Some(nanos_of(&stamp));
            }
            let time = humantime::parse_rfc3339_weak(text).ok()?;
            Some(time.duration_since(UNIX_EPOCH).ok()?.as_nanos() as u64)
        }
        _ => None,
    }
}
