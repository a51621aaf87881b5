//! The metrics endpoint: Prometheus text at `GET /metrics`.

use crate::graphs::Catalog;
use crate::reloads::Reloads;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use weir_door::bridge::Bridges;
use weir_door::stats::Stats;
use weir_engine as engine;
use weir_model::prometheus::Exposition;
use weir_sink as sink;
use weir_state::mqtt::ServiceMetrics;

/// Every counter Weir exposes: the broker's, each graph's and each upstream sink's. One
/// rendering serves `/metrics` and the OTLP export, so the two never disagree.
#[derive(Clone)]
pub struct Scrape {
    /// The connection layer's counters.
    pub broker: Arc<Stats>,
    /// The running graphs' and upstream sinks' counters.
    pub graphs: Catalog,
    /// The state store service's counters, when it runs.
    pub state_store: Option<Arc<ServiceMetrics>>,
    /// The bridges' counters.
    pub bridges: Option<Arc<Bridges>>,
    /// Reloads applied and refused.
    pub reloads: Arc<Reloads>,
}

impl Scrape {
    /// The counters in Prometheus text form.
    pub fn render(&self) -> String {
        let mut text = Exposition::default();
        self.broker.write_prometheus(&mut text);
        engine::metrics::write_prometheus(&self.graphs.graphs(), &mut text);
        sink::buffer::write_prometheus(&self.graphs.sinks(), &mut text);
        if let Some(state_store) = &self.state_store {
            state_store.write_prometheus(&mut text);
        }
        if let Some(bridges) = &self.bridges {
            weir_door::bridge::metrics::write_prometheus(&bridges.snapshots(), &mut text);
        }
        self.reloads.write_prometheus(&mut text);
        text.finish()
    }
}

/// Serves `scrape`'s counters on `address` from a thread of its own.
pub fn serve(address: SocketAddr, scrape: Scrape) -> anyhow::Result<()> {
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
                    tiny_http::Response::from_string(scrape.render()).with_header(header)
                } else {
                    tiny_http::Response::from_string("not found: try /metrics\n")
                        .with_status_code(404)
                };
                let _ = request.respond(response);
            }
        })?;
    Ok(())
}
