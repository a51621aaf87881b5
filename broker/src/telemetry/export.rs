//! The export of Weir's own logs and metrics over OTLP/HTTP.
//!
//! - Logs: every log line at or above the configured level becomes an OTLP log record
//!   (severity, body, the event's fields and target as attributes), buffered (drop-oldest,
//!   counted) and exported in batches by a thread of its own.
//! - Metrics: every interval, the counters `/metrics` serves, converted from their Prometheus
//!   text: counters become monotonic cumulative sums, gauges gauges, and a histogram its
//!   `_sum` and `_count` series as sums. Cumulative values make a failed export harmless: the
//!   next one carries everything.

use super::logs::OtlpLogs;
use super::OwnTelemetry;
use crate::metrics_endpoint::Scrape;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum,
};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weir_sink::buffer::{self, Backoff, Delivery, WhenFull};
use weir_sink::otlp::{Exported, Exporter};

/// Starts exporting Weir's logs and the counters of `scrape`.
pub fn start(config: &OwnTelemetry, scrape: Scrape) -> anyhow::Result<()> {
    if let Some(level) = config.logs {
        let (records, reader, counters) = buffer::buffer(
            "",
            "otlp",
            &config.collector.endpoint,
            config.log_buffer,
            WhenFull::DropOldest,
        );
        OtlpLogs::attach(records, level);
        let exporter = Exporter::new("", &config.collector);
        let batch = config.collector.batch;
        std::thread::Builder::new()
            .name("weir-otlp-logs".into())
            .spawn(move || {
                OtlpLogs::mute_this_thread();
                let mut backoff = Backoff::new(&Delivery::default());
                loop {
                    let records: Vec<LogRecord> = reader.take(batch, Duration::from_secs(1));
                    if records.is_empty() {
                        continue;
                    }
                    let count = records.len() as u64;
                    let body = exporter.logs_request(records);
                    loop {
                        match exporter.post("/v1/logs", &body) {
                            Exported::Taken => break,
                            Exported::Retry(_) => std::thread::sleep(backoff.next_wait()),
                            Exported::Refused(why) => {
                                counters.dropped.fetch_add(count, Relaxed);
                                // This thread's own lines go to stderr only.
                                tracing::warn!("{count} log records refused: {why}");
                                break;
                            }
                        }
                    }
                    backoff.reset();
                }
            })?;
    }
    if config.metrics_interval_s > 0 {
        let exporter = Exporter::new("", &config.collector);
        let interval = Duration::from_secs(config.metrics_interval_s);
        let started = now_nanos();
        std::thread::Builder::new()
            .name("weir-otlp-metrics".into())
            .spawn(move || {
                OtlpLogs::mute_this_thread();
                let mut failing = false;
                loop {
                    std::thread::sleep(interval);
                    let text = scrape.render();
                    let body = exporter.metrics_request(from_prometheus(&text, started));
                    match exporter.post("/v1/metrics", &body) {
                        Exported::Taken => failing = false,
                        Exported::Retry(why) | Exported::Refused(why) if !failing => {
                            failing = true;
                            tracing::warn!("Weir's metrics not exported: {why}; trying again every {interval:?}");
                        }
                        _ => {}
                    }
                }
            })?;
    }
    tracing::info!(
        "Weir's own telemetry to {} (logs: {}, metrics every {} s)",
        config.collector.endpoint,
        config.logs.map_or("off".to_string(), |l| l.to_string()),
        config.metrics_interval_s
    );
    Ok(())
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Prometheus text (as Weir renders it) as OTLP metrics, one per family, one data point per
/// series. `started`: when the cumulative counters started, in nanoseconds since the epoch.
///
/// ```
/// let text = "# TYPE weir_graph_received_total counter\nweir_graph_received_total{graph=\"g\"} 3\n";
/// let metrics = weir::telemetry::export::from_prometheus(text, 0);
/// assert_eq!(metrics[0].name, "weir_graph_received_total");
/// ```
pub fn from_prometheus(text: &str, started: u64) -> Vec<Metric> {
    let now = now_nanos();
    let mut kinds: BTreeMap<&str, &str> = BTreeMap::new();
    let mut families: Vec<(String, bool, Vec<NumberDataPoint>)> = Vec::new();
    for line in text.lines() {
        if let Some(declaration) = line.strip_prefix("# TYPE ") {
            if let Some((name, kind)) = declaration.split_once(' ') {
                kinds.insert(name, kind);
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, labels_of(rest.trim_end_matches('}'))),
            None => (series, Vec::new()),
        };
        let family = name
            .strip_suffix("_sum")
            .or_else(|| name.strip_suffix("_count"))
            .filter(|base| kinds.get(base) == Some(&"histogram"));
        let cumulative = match (family, kinds.get(name)) {
            (Some(_), _) => true,
            (None, Some(&"counter")) => true,
            (None, Some(&"gauge")) => false,
            // Histogram buckets, and module metrics written without a TYPE line: sums.
            (None, _) if name.ends_with("_bucket") => continue,
            (None, _) => true,
        };
        let point = NumberDataPoint {
            attributes: labels,
            start_time_unix_nano: if cumulative { started } else { 0 },
            time_unix_nano: now,
            value: Some(if value.fract() == 0.0 && value.abs() < 9e15 {
                number_data_point::Value::AsInt(value as i64)
            } else {
                number_data_point::Value::AsDouble(value)
            }),
            ..Default::default()
        };
        match families.last_mut() {
            Some((last, _, points)) if last == name => points.push(point),
            _ => families.push((name.to_string(), cumulative, vec![point])),
        }
    }
    families
        .into_iter()
        .map(|(name, cumulative, data_points)| Metric {
            name,
            data: Some(if cumulative {
                metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                    is_monotonic: true,
                })
            } else {
                metric::Data::Gauge(Gauge { data_points })
            }),
            ..Default::default()
        })
        .collect()
}

/// `a="x",b="y\"z"` as attributes.
fn labels_of(text: &str) -> Vec<KeyValue> {
    let mut labels = Vec::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, escaped)) => value.push(escaped),
                    None => {}
                },
                '"' => {
                    end = at + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.push(KeyValue {
            key: key.trim_start_matches(',').to_string(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value)),
            }),
        });
        rest = &after[end..];
    }
    labels
}
