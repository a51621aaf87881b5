//! The metrics endpoint: Prometheus text at `GET /metrics`.

use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use weir_plugin::engine::metrics::render_prometheus;
use weir_plugin::engine::GraphMetrics;
use weir_plugin::sink::buffer::{render_prometheus as render_sinks, SinkMetrics};

/// Serves `graphs`' and `sinks`' counters on `address` from a thread of its own.
pub fn serve(
    address: SocketAddr,
    graphs: Vec<Arc<GraphMetrics>>,
    sinks: Vec<Arc<SinkMetrics>>,
) -> anyhow::Result<()> {
    let server = tiny_http::Server::http(address)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("metrics endpoint cannot bind {address}"))?;
    tracing::info!("metrics on http://{address}/metrics");
    std::thread::Builder::new()
        .name("weir-metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let response = if request.url() == "/metrics" {
                    let header = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; version=0.0.4; charset=utf-8"[..],
                    )
                    .expect("a valid header");
                    let text = render_prometheus(&graphs) + &render_sinks(&sinks);
                    tiny_http::Response::from_string(text).with_header(header)
                } else {
                    tiny_http::Response::from_string("not found: try /metrics\n")
                        .with_status_code(404)
                };
                let _ = request.respond(response);
            }
        })?;
    Ok(())
}
