//! `telemetry` in weir.yaml: Weir's own logs and metrics exported over OTLP (the binary's
//! `telemetry` module runs the export).

use serde::Deserialize;
#[cfg(feature = "otlp")]
use weir_sink::otlp::OtlpConfig;

/// `telemetry` in weir.yaml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Export Weir's own logs and metrics to an OTLP collector.
    #[serde(default)]
    pub otlp: Option<OwnTelemetry>,
}

/// `telemetry.otlp` in a binary without the `otlp` feature: refused where it is written.
#[cfg(not(feature = "otlp"))]
#[derive(Debug, Clone)]
pub enum OwnTelemetry {}

#[cfg(not(feature = "otlp"))]
impl<'de> Deserialize<'de> for OwnTelemetry {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(crate::features::missing(
            "otlp",
            "`telemetry.otlp`",
        )))
    }
}

/// `telemetry.otlp`.
#[cfg(feature = "otlp")]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnTelemetry {
    /// The collector (`endpoint`, `service_name`, `headers`, `timeout_ms` as for an OTLP sink).
    #[serde(flatten)]
    pub collector: OtlpConfig,
    /// Seconds between metrics exports; 0: no metrics.
    #[serde(default = "default_interval")]
    pub metrics_interval_s: u64,
    /// The lowest level of log lines exported (`error`, `warn`, `info`, `debug`, `trace`), or
    /// `off`.
    #[serde(default = "default_level", deserialize_with = "level")]
    pub logs: Option<tracing::Level>,
    /// Log records held while the collector is away; the oldest are dropped beyond.
    #[serde(default = "default_log_buffer")]
    pub log_buffer: usize,
}

#[cfg(feature = "otlp")]
fn default_interval() -> u64 {
    10
}

#[cfg(feature = "otlp")]
fn default_level() -> Option<tracing::Level> {
    Some(tracing::Level::INFO)
}

#[cfg(feature = "otlp")]
fn level<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<tracing::Level>, D::Error> {
    let written = String::deserialize(d)?;
    if written == "off" {
        return Ok(None);
    }
    written.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format_args!(
            "`{written}` is not a level: expected error, warn, info, debug, trace or off"
        ))
    })
}

#[cfg(feature = "otlp")]
fn default_log_buffer() -> usize {
    10_000
}
