//! Log lines as OTLP log records: a `tracing` layer that buffers them for the export once
//! `telemetry.otlp.logs` asks for it.

use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::layer::{Context, Layer};
use weir_sink::buffer::SinkBuffer;

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
