//! Weir's own logs and metrics exported over OTLP/HTTP (`telemetry.otlp` in weir.yaml, with
//! the `otlp` feature): [`export`] runs the exporting threads, [`logs`] turns log lines into
//! records.

#[cfg(feature = "otlp")]
pub mod export;
#[cfg(feature = "otlp")]
mod logs;

#[cfg(feature = "otlp")]
pub use logs::OtlpLogs;

pub use crate::config::telemetry::{OwnTelemetry, TelemetryConfig};
use crate::metrics_endpoint::Scrape;

/// Starts exporting Weir's logs and the counters of `scrape` if `config` asks for it.
pub fn start(config: &TelemetryConfig, scrape: Scrape) -> anyhow::Result<()> {
    match &config.otlp {
        #[cfg(feature = "otlp")]
        Some(otlp) => export::start(otlp, scrape),
        #[cfg(not(feature = "otlp"))]
        Some(never) => match *never {},
        None => {
            drop(scrape);
            Ok(())
        }
    }
}
