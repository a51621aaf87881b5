//! Log output through `tracing`, filtered by `--log-level` or `RUST_LOG`, to stderr and, when
//! `telemetry.otlp` asks, to an OTLP collector.

use std::io::IsTerminal;
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use weir_door::router;

/// The bridges' store (fjall, on lsm-tree) logs each table it opens and writes at info: kept to
/// warnings unless the filter names them.
const STORE_TARGETS: [&str; 2] = ["fjall", "lsm_tree"];

/// rumqttd logs every connection at info; keep it to warnings unless asked.
const DEFAULT_FILTER: &str = "info,rumqttd=warn";

/// wasmtime-wasi-nn logs each error it returns to a module (with its Rust backtrace when
/// `RUST_BACKTRACE` is set, whose symbolisation can outlast the module's call time limit); the
/// module's own failure is reported once. Off unless a filter names the target.
const QUIET_TARGET: &str = "wasmtime_wasi_nn";

/// Turns the router's per-message spans ([`router::is_per_message_span`]: a fifth of its time)
/// off unless `written` (the log filter) asks for debug or trace output; the router's warnings
/// keep their message, without that context.
fn router_span_filter(
    written: &str,
) -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool + Send + Sync + 'static> {
    let keep = written.contains("debug") || written.contains("trace");
    filter_fn(move |meta| keep || !router::is_per_message_span(meta))
}

/// Installs the global subscriber. `level` (from `--log-level`) wins over `RUST_LOG`.
pub fn init(level: Option<&str>) -> anyhow::Result<()> {
    let (filter, written) = match level {
        Some(level) => (
            EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("--log-level {level:?}: {e}"))?,
            level.to_string(),
        ),
        None => match EnvFilter::try_from_default_env() {
            Ok(filter) => (filter, std::env::var("RUST_LOG").unwrap_or_default()),
            Err(_) => (EnvFilter::new(DEFAULT_FILTER), DEFAULT_FILTER.to_string()),
        },
    };
    let mut filter = if written.contains(QUIET_TARGET) {
        filter
    } else {
        filter.add_directive(format!("{QUIET_TARGET}=off").parse()?)
    };
    for target in STORE_TARGETS {
        if !written.contains(target) {
            filter = filter.add_directive(format!("{target}=warn").parse()?);
        }
    }
    #[cfg(feature = "otlp")]
    let otlp_logs = crate::telemetry::OtlpLogs;
    #[cfg(not(feature = "otlp"))]
    let otlp_logs = tracing_subscriber::layer::Identity::new();
    tracing_subscriber::registry()
        .with(router_span_filter(&written))
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(otlp_logs)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a span like rumqttd's per-publish span is created under `filter`.
    fn publish_span_enabled(filter: &str) -> bool {
        let subscriber = tracing_subscriber::registry()
            .with(router_span_filter(filter))
            .with(EnvFilter::new(filter));
        tracing::subscriber::with_default(subscriber, || {
            let topic = bytes::Bytes::from_static(b"a/b");
            !tracing::error_span!(target: router::ROUTING_LOG_TARGET, "publish", topic = ?topic)
                .is_disabled()
        })
    }

    #[test]
    fn the_routers_per_message_spans_are_off_unless_debugging() {
        assert!(!publish_span_enabled(DEFAULT_FILTER));
        assert!(!publish_span_enabled("warn"));
        assert!(publish_span_enabled("info,rumqttd=debug"));
        let subscriber = tracing_subscriber::registry().with(router_span_filter(DEFAULT_FILTER));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::error_span!(target: router::ROUTING_LOG_TARGET, "incoming_connect");
            assert!(!span.is_disabled(), "other router spans are kept");
        });
    }
}
