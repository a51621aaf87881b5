//! The broker's state store: one per broker, shared by every graph's modules and, over MQTT
//! with Azure IoT Operations' protocol, by clients.

use crate::config::EngineConfig;
use crate::server::Broker;
use anyhow::Context;
use std::sync::Arc;
use weir_door::ServiceRoute;
use weir_state::mqtt::{ServiceMetrics, StateStoreService, REQUEST_TOPIC};
use weir_state::StateStore;

/// Opens `engine.state_file` (in memory when absent).
pub fn open(engine: &EngineConfig) -> anyhow::Result<Arc<StateStore>> {
    let store = match &engine.state_file {
        Some(file) => StateStore::open(file.path(), &engine.node_id)
            .with_context(|| format!("state store {}", file.path().display()))?,
        None => StateStore::in_memory(&engine.node_id)?,
    };
    Ok(Arc::new(store))
}

/// Serves `store` to MQTT clients through `broker` unless `engine.state_store_over_mqtt` is
/// off: the door's routes to the service, and its counters.
pub fn serve(
    engine: &EngineConfig,
    store: &Arc<StateStore>,
    broker: &Broker,
) -> anyhow::Result<(Vec<ServiceRoute>, Option<Arc<ServiceMetrics>>)> {
    if !engine.state_store_over_mqtt {
        return Ok((Vec::new(), None));
    }
    let service = StateStoreService::start(store.clone(), &broker.door().handle(), &engine.node_id)
        .context("cannot start the state store service")?;
    tracing::info!("state store served over MQTT on {REQUEST_TOPIC}");
    Ok((vec![service.route], Some(service.metrics)))
}
