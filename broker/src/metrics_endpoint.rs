//! Weir's metrics registry, built once at start-up, and the endpoint that serves it as
//! Prometheus text at `GET /metrics`.

use crate::graphs::Catalog;
use crate::reloads::Reloads;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use weir_door::bridge::Bridges;
use weir_door::stats::Stats;
use weir_model::metrics::{self, Registry};
use weir_state::mqtt::ServiceMetrics;

/// What registers its metrics: the broker's, each graph's and each upstream sink's, the state
/// store's, the bridges' and the reloads'.
pub struct Sources {
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

/// Weir's one metrics registry: `/metrics` and the OTLP export encode it, `$SYS` reads the
/// broker's counters registered in it, so the three never disagree.
#[derive(Clone)]
pub struct Scrape {
    registry: Arc<Registry>,
}

impl Scrape {
    /// The registry of every metric of `sources`.
    pub fn new(sources: Sources) -> Scrape {
        let mut registry = Registry::default();
        sources.broker.register(&mut registry);
        registry.register_collector(Box::new(sources.graphs));
        if let Some(state_store) = &sources.state_store {
            state_store.register(&mut registry);
        }
        if let Some(bridges) = &sources.bridges {
            bridges.register(&mut registry);
        }
        registry.register_collector(Box::new(sources.reloads));
        Scrape {
            registry: Arc::new(registry),
        }
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The metrics in Prometheus text form.
    pub fn render(&self) -> String {
        metrics::text(&self.registry)
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
                        metrics::TEXT_CONTENT_TYPE.as_bytes(),
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
