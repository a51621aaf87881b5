//! The export of Weir's own logs and metrics over OTLP/HTTP.
//!
//! - Logs: every log line at or above the configured level becomes an OTLP log record
//!   (severity, body, the event's fields and target as attributes), buffered (drop-oldest,
//!   counted) and exported in batches by a thread of its own.
//! - Metrics: every interval, the registry `/metrics` serves, read as OpenMetrics' data model:
//!   counters become monotonic cumulative sums, gauges gauges, histograms cumulative
//!   histograms. Cumulative values make a failed export harmless: the next one carries
//!   everything.

use super::logs::OtlpLogs;
use super::OwnTelemetry;
use crate::metrics_endpoint::Scrape;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, Sum,
};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use weir_model::metrics::prometheus_client::encoding::prometheus_protobuf::{
    self, prometheus_data_model as pm,
};
use weir_model::metrics::Registry;
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
                    let metrics = from_registry(scrape.registry(), started);
                    let body = exporter.metrics_request(metrics);
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

/// The registry's metrics as OTLP metrics, one per family, one data point per series, read
/// from the Prometheus data model (no text in between). Counters (named with `_total`, as
/// `/metrics` names them) and untyped series become monotonic cumulative sums, gauges gauges,
/// histograms cumulative histograms; whole values are sent as integers. `started`: when the
/// cumulative values started, in nanoseconds since the epoch.
///
/// ```
/// use weir_model::metrics::{Counter, Registry};
///
/// let mut registry = Registry::default();
/// let received = Counter::<u64>::default();
/// registry.register("weir_received", "Messages received", received.clone());
/// received.inc_by(3);
/// let metrics = weir::telemetry::export::from_registry(&registry, 0);
/// assert_eq!(metrics[0].name, "weir_received_total");
/// ```
pub fn from_registry(registry: &Registry, started: u64) -> Vec<Metric> {
    // Encoding into memory fails only if a collector does, and Weir's return no errors.
    let Ok(families) = prometheus_protobuf::encode(registry) else {
        return Vec::new();
    };
    let now = now_nanos();
    families
        .into_iter()
        .filter_map(|family| otlp_metric(family, started, now))
        .collect()
}

/// One family as an OTLP metric (`None`: a type Weir does not write).
fn otlp_metric(family: pm::MetricFamily, started: u64, now: u64) -> Option<Metric> {
    let kind = pm::MetricType::try_from(family.r#type).ok()?;
    let series = family.metric.into_iter();
    let number = |metric: pm::Metric, start: u64| {
        let value = match kind {
            pm::MetricType::Counter => metric.counter?.value,
            pm::MetricType::Gauge => metric.gauge?.value,
            _ => metric
                .counter
                .map(|c| c.value)
                .or(metric.untyped.map(|u| u.value))?,
        };
        Some(NumberDataPoint {
            attributes: attributes(metric.label),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_of(value)),
            ..Default::default()
        })
    };
    let data = match kind {
        pm::MetricType::Gauge => metric::Data::Gauge(Gauge {
            data_points: series.filter_map(|m| number(m, 0)).collect(),
        }),
        pm::MetricType::Histogram => metric::Data::Histogram(Histogram {
            data_points: series
                .filter_map(|m| histogram_point(m, started, now))
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
        pm::MetricType::Counter | pm::MetricType::Untyped => metric::Data::Sum(Sum {
            data_points: series.filter_map(|m| number(m, started)).collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
        _ => return None,
    };
    Some(Metric {
        name: family.name,
        description: family.help,
        data: Some(data),
        ..Default::default()
    })
}

/// A value as an integer when it is a whole number an `f64` holds exactly.
fn number_of(value: f64) -> number_data_point::Value {
    if value.fract() == 0.0 && value.abs() < 9e15 {
        number_data_point::Value::AsInt(value as i64)
    } else {
        number_data_point::Value::AsDouble(value)
    }
}

/// A histogram series: each bucket's own count (Prometheus' are cumulative), then the count
/// above the last bound.
fn histogram_point(metric: pm::Metric, started: u64, now: u64) -> Option<HistogramDataPoint> {
    let histogram = metric.histogram?;
    let bounded = histogram
        .bucket
        .iter()
        .filter(|b| b.upper_bound.is_finite());
    let explicit_bounds: Vec<f64> = bounded.clone().map(|b| b.upper_bound).collect();
    let mut below = 0_u64;
    let mut bucket_counts: Vec<u64> = bounded
        .map(|b| {
            let own = b.cumulative_count.saturating_sub(below);
            below = b.cumulative_count;
            own
        })
        .collect();
    bucket_counts.push(histogram.sample_count.saturating_sub(below));
    Some(HistogramDataPoint {
        attributes: attributes(metric.label),
        start_time_unix_nano: started,
        time_unix_nano: now,
        count: histogram.sample_count,
        sum: Some(histogram.sample_sum),
        bucket_counts,
        explicit_bounds,
        ..Default::default()
    })
}

/// Labels as attributes.
fn attributes(labels: Vec<pm::LabelPair>) -> Vec<KeyValue> {
    labels
        .into_iter()
        .map(|label| KeyValue {
            key: label.name,
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(label.value)),
            }),
        })
        .collect()
}
