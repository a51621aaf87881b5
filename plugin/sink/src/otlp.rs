//! The OTLP sink: a graph's results exported to an OpenTelemetry collector over OTLP/HTTP with
//! protobuf bodies, from a delivery thread of its own behind a bounded [`buffer`](super::buffer).
//!
//! Results become metrics or log records as [`otel_payload`](super::otel_payload) says; each
//! batch is one `ExportMetricsServiceRequest` to `ENDPOINT/v1/metrics` and one
//! `ExportLogsServiceRequest` to `ENDPOINT/v1/logs`, with the resource attributes
//! `service.name` and `weir.graph`. A batch is retried, after a backoff, until the collector
//! takes it (a connection failure, 408, 429, 502, 503 or 504); a collector that rejects it
//! for good (any other status) has its messages counted as dropped, with the reason in the log.

use super::buffer::{buffer, Backoff, BufferReader, Delivery, SinkMetrics, SinkThread};
use super::otel_payload::{log_record, metrics, string_attribute};
use super::{SinkError, Upstream, UpstreamSink};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use weir_model::data::Message;
use weir_model::error::chain;

/// Which OTLP signal results become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Metrics when the payload has the OTel metrics shape, log records otherwise.
    #[default]
    Auto,
    /// Every result a log record.
    Logs,
    /// Every result metrics; a result without the metrics shape is dropped and counted.
    Metrics,
}

/// An OTLP sink as configured (`sink.otlp` in weir.yaml).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawOtlpConfig")]
pub struct OtlpConfig {
    /// The collector's base URL, e.g. `http://127.0.0.1:4318`; `/v1/metrics` and `/v1/logs`
    /// are appended.
    pub endpoint: String,
    /// Which signal results become.
    pub signal: Signal,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// HTTP headers sent with every export (authentication, say).
    pub headers: BTreeMap<String, String>,
    /// How long one export may take, in milliseconds.
    pub timeout_ms: u64,
    /// Messages per export request, at most.
    pub batch: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlpConfig {
    endpoint: String,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default)]
    signal: Signal,
    #[serde(default)]
    service_name: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_batch")]
    batch: usize,
}

fn default_timeout_ms() -> u64 {
    10_000
}

fn default_batch() -> usize {
    512
}

impl TryFrom<RawOtlpConfig> for OtlpConfig {
    type Error = String;

    fn try_from(raw: RawOtlpConfig) -> Result<OtlpConfig, String> {
        match raw.protocol.as_deref() {
            None | Some("http/protobuf") | Some("http") => {}
            Some("grpc") => {
                return Err(
                    "protocol `grpc` is not built into this Weir; use `http/protobuf` (collectors serve both, on 4317 and 4318)"
                        .into(),
                )
            }
            Some(other) => {
                return Err(format!(
                    "unknown protocol `{other}`: expected `http/protobuf`"
                ))
            }
        }
        let endpoint = raw.endpoint.trim_end_matches('/').to_string();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(format!(
                "endpoint `{endpoint}` must be an http:// or https:// URL"
            ));
        }
        Ok(OtlpConfig {
            endpoint,
            signal: raw.signal,
            service_name: raw.service_name.unwrap_or_else(|| "weir".into()),
            headers: raw.headers,
            timeout_ms: raw.timeout_ms.max(1),
            batch: raw.batch.max(1),
        })
    }
}

/// An OTLP sink, delivering from a thread of its own. The collector need not be reachable: results wait in the
/// buffer, and the sink reports itself down once an export fails, up once one succeeds.
impl Upstream for OtlpConfig {
    fn describe(&self) -> String {
        format!("otlp {}", self.endpoint)
    }

    fn start(&self, graph: &str, delivery: &Delivery) -> Result<UpstreamSink, SinkError> {
        let config = self;
        let (buffer, reader, metrics) = buffer(
            graph,
            "otlp",
            &config.endpoint,
            delivery.buffer,
            delivery.when_full,
        );
        let exporter = Exporter::new(graph, config);
        let worker = Worker {
            config: config.clone(),
            reader,
            metrics: metrics.clone(),
            backoff: Backoff::new(delivery),
            exporter,
        };
        let thread = SinkThread::spawn(format!("weir-otlp-{graph}"), move || worker.run())
            .map_err(SinkError::Thread)?;
        Ok(UpstreamSink {
            buffer,
            metrics,
            thread,
        })
    }
}

/// What became of one export request.
#[derive(Debug)]
pub enum Exported {
    /// The collector took it.
    Taken,
    /// Worth trying again (the collector is unreachable, busy or failing).
    Retry(String),
    /// The collector refused it for good.
    Refused(String),
}

/// Posts OTLP requests to one collector.
///
/// The HTTP client is reqwest, the client Weir's registries use too, on a single-threaded tokio
/// runtime of the exporter's own, made by the first [`post`](Exporter::post) on the thread that
/// posts: an exporter may be made on an async thread and moved to a delivery thread.
pub struct Exporter {
    transport: OnceLock<Result<Transport, String>>,
    timeout: Duration,
    endpoint: String,
    headers: BTreeMap<String, String>,
    resource: Resource,
}

/// A client and the runtime its requests run on.
struct Transport {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Transport {
    fn new(timeout: Duration) -> Result<Transport, String> {
        // reqwest's rustls without a bundled provider uses the process default: ring, as the
        // rest of Weir's TLS does. Installing it twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("the exporter's runtime: {e}"))?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("the exporter's HTTP client: {e}"))?;
        Ok(Transport { runtime, client })
    }
}

impl Exporter {
    /// An exporter to `config.endpoint` whose resource names `graph` (empty: Weir itself).
    pub fn new(graph: &str, config: &OtlpConfig) -> Exporter {
        let mut attributes = vec![string_attribute(
            "service.name",
            config.service_name.as_bytes(),
        )];
        if !graph.is_empty() {
            attributes.push(string_attribute("weir.graph", graph.as_bytes()));
        }
        Exporter {
            transport: OnceLock::new(),
            timeout: Duration::from_millis(config.timeout_ms),
            endpoint: config.endpoint.clone(),
            headers: config.headers.clone(),
            resource: Resource {
                attributes,
                ..Default::default()
            },
        }
    }

    fn scope() -> InstrumentationScope {
        InstrumentationScope {
            name: "weir".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }
    }

    /// An export request for `metrics`, encoded.
    pub fn metrics_request(&self, metrics: Vec<Metric>) -> Vec<u8> {
        let request = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(Self::scope()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        request.encode_to_vec()
    }

    /// An export request for `records`, encoded.
    pub fn logs_request(&self, records: Vec<LogRecord>) -> Vec<u8> {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(Self::scope()),
                    log_records: records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        request.encode_to_vec()
    }

    /// Posts an encoded request to `ENDPOINT{path}` (`/v1/metrics` or `/v1/logs`). Blocks the
    /// calling thread, which must not be one of an async runtime's.
    pub fn post(&self, path: &str, body: &[u8]) -> Exported {
        let url = format!("{}{path}", self.endpoint);
        let transport = match self.transport.get_or_init(|| Transport::new(self.timeout)) {
            Ok(transport) => transport,
            Err(why) => return Exported::Refused(format!("{url}: {why}")),
        };
        let mut request = transport
            .client
            .post(&url)
            .header("Content-Type", "application/x-protobuf")
            .body(body.to_vec());
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let answer = transport.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, text))
        });
        match answer {
            Ok((200..=299, _)) => Exported::Taken,
            Ok((status @ (408 | 429 | 502 | 503 | 504), _)) => {
                Exported::Retry(format!("{url} answered {status}"))
            }
            Ok((status, text)) => {
                Exported::Refused(format!("{url} answered {status}: {}", text.trim()))
            }
            Err(e) => Exported::Retry(format!("{url}: {}", chain(&e))),
        }
    }
}

struct Worker {
    config: OtlpConfig,
    reader: BufferReader<Message>,
    metrics: Arc<SinkMetrics>,
    backoff: Backoff,
    exporter: Exporter,
}

impl Worker {
    fn run(mut self) {
        loop {
            let batch = self
                .reader
                .take(self.config.batch, Duration::from_millis(100));
            if batch.is_empty() {
                if self.reader.is_closed() {
                    return;
                }
                continue;
            }
            self.metrics.set_in_flight(batch.len());
            let mut found = Vec::new();
            let mut counted_metrics = 0;
            let mut records = Vec::new();
            for message in &batch {
                let as_metrics = match self.config.signal {
                    Signal::Logs => None,
                    Signal::Auto | Signal::Metrics => metrics(message),
                };
                match (as_metrics, self.config.signal) {
                    (Some(mut some), _) => {
                        found.append(&mut some);
                        counted_metrics += 1;
                    }
                    (None, Signal::Metrics) => {
                        self.metrics.dropped.fetch_add(1, Relaxed);
                        tracing::warn!(
                            graph = %self.metrics.graph,
                            topic = %String::from_utf8_lossy(&message.topic),
                            "otlp sink (signal metrics): a result is not OTel metrics JSON; dropped and counted"
                        );
                    }
                    (None, _) => records.push(log_record(message)),
                }
            }
            let counted_logs = records.len();
            if !found.is_empty() {
                let body = self.exporter.metrics_request(found);
                self.deliver(counted_metrics, "/v1/metrics", &body);
            }
            if !records.is_empty() {
                let body = self.exporter.logs_request(records);
                self.deliver(counted_logs, "/v1/logs", &body);
            }
            self.metrics.set_in_flight(0);
        }
    }

    /// Exports until the collector takes the request or refuses it for good.
    fn deliver(&mut self, messages: usize, path: &str, body: &[u8]) {
        loop {
            match self.exporter.post(path, body) {
                Exported::Taken => {
                    self.metrics.delivered.fetch_add(messages as u64, Relaxed);
                    self.metrics.set_up(true, "");
                    self.backoff.reset();
                    return;
                }
                Exported::Refused(why) => {
                    self.metrics.dropped.fetch_add(messages as u64, Relaxed);
                    self.metrics.set_up(true, "");
                    tracing::error!(
                        graph = %self.metrics.graph,
                        "otlp sink: {messages} result(s) refused: {why}; dropped and counted"
                    );
                    return;
                }
                Exported::Retry(why) => {
                    self.metrics.set_up(false, &why);
                    self.metrics.retried.fetch_add(messages as u64, Relaxed);
                    std::thread::sleep(self.backoff.next_wait());
                }
            }
        }
    }
}
