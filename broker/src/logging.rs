//! Log output through `tracing`, filtered by `--log-level` or `RUST_LOG`, to stderr and, when
//! `telemetry.otlp` asks, to an OTLP collector.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use std::cell::Cell;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;
use weir_plugin::sink::buffer::SinkBuffer;

/// The bridges' store (fjall, on lsm-tree) logs each table it opens and writes at info: kept to
/// warnings unless the filter names them.
const STORE_TARGETS: [&str; 2] = ["fjall", "lsm_tree"];

/// rumqttd logs every connection at info; keep it to warnings unless asked.
const DEFAULT_FILTER: &str = "info,rumqttd=warn";

/// wasmtime-wasi-nn logs each error it returns to a module (with its Rust backtrace when
/// `RUST_BACKTRACE` is set, whose symbolisation can outlast the module's call time limit); the
/// module's own failure is reported once. Off unless a filter names the target.
const QUIET_TARGET: &str = "wasmtime_wasi_nn";

/// The spans rumqttd's router opens for every message it handles, at error level (so that no
/// level filter turns them off), each formatting the message's topic for the log: a fifth of
/// the router's time. Off unless the log filter asks for debug or trace output; rumqttd's
/// warnings keep their message, without that context.
const ROUTER_MESSAGE_SPANS: [&str; 4] = ["[>] incoming", "incoming_payload", "publish", "puback"];

/// Whether `meta` is one of rumqttd's per-message spans.
fn router_message_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span()
        && meta.target().starts_with("rumqttd::router")
        && ROUTER_MESSAGE_SPANS.contains(&meta.name())
}

/// Turns rumqttd's per-message spans off unless `written` (the log filter) asks for debug or
/// trace output.
fn router_span_filter(
    written: &str,
) -> FilterFn<impl Fn(&tracing::Metadata<'_>) -> bool + Send + Sync + 'static> {
    let keep = written.contains("debug") || written.contains("trace");
    filter_fn(move |meta| keep || !router_message_span(meta))
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
    tracing_subscriber::registry()
        .with(router_span_filter(&written))
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(OtlpLogs)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))
}

/// A layer that turns log events into OTLP log records once [`OtlpLogs::attach`] gave it a
/// buffer (`telemetry.otlp.logs`); until then it costs one atomic load per event.
pub struct OtlpLogs;

static OTLP_LOGS: OnceLock<(SinkBuffer<LogRecord>, Level)> = OnceLock::new();

thread_local! {
    /// Set on the exporting threads, whose own lines must not feed the export.
    static MUTED: Cell<bool> = const { Cell::new(false) };
}

impl OtlpLogs {
    /// Starts buffering events at `level` or above as log records into `records`.
    pub fn attach(records: SinkBuffer<LogRecord>, level: Level) {
        let _ = OTLP_LOGS.set((records, level));
    }

    /// Keeps this thread's events out of the export.
    pub fn mute_this_thread() {
        MUTED.with(|muted| muted.set(true));
    }
}

impl<S: tracing::Subscriber> Layer<S> for OtlpLogs {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let Some((records, level)) = OTLP_LOGS.get() else {
            return;
        };
        if event.metadata().level() > level || MUTED.with(Cell::get) {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields
            .attributes
            .push(text_attribute("target", event.metadata().target()));
        let (severity_number, severity_text) = match *event.metadata().level() {
            Level::ERROR => (SeverityNumber::Error, "ERROR"),
            Level::WARN => (SeverityNumber::Warn, "WARN"),
            Level::INFO => (SeverityNumber::Info, "INFO"),
            Level::DEBUG => (SeverityNumber::Debug, "DEBUG"),
            Level::TRACE => (SeverityNumber::Trace, "TRACE"),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        records.push(LogRecord {
            time_unix_nano: now,
            observed_time_unix_nano: now,
            severity_number: severity_number as i32,
            severity_text: severity_text.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(fields.message)),
            }),
            attributes: fields.attributes,
            ..Default::default()
        });
    }
}

fn text_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

/// An event's message and other fields.
#[derive(Default)]
struct Fields {
    message: String,
    attributes: Vec<KeyValue>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.attributes.push(text_attribute(field.name(), &text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.into();
        } else {
            self.attributes.push(text_attribute(field.name(), value));
        }
    }
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
            !tracing::error_span!(target: "rumqttd::router::routing", "publish", topic = ?topic)
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
            let span = tracing::error_span!(target: "rumqttd::router::routing", "incoming_connect");
            assert!(!span.is_disabled(), "other router spans are kept");
        });
    }
}
