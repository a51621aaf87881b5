//! Bridges in `weir run` (started from `bridges:` before clients are accepted, changed by a
//! reload, stopped at shutdown) and `weir bridge list|purge` for the queues they keep.
//!
//! The queues live in `<broker.persistence.path>/bridges`, whatever `persistence:` says for
//! retained messages and sessions (with `persistence: off`, in the default directory).

use crate::cli::BridgeStoreArgs;
use crate::config::{persistence, WeirConfig};
use crate::server::Broker;
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use weir_door::bridge::config::QueueLimits;
use weir_door::bridge::metrics::BridgeMetrics;
use weir_door::bridge::queue::BridgeStore;
use weir_door::bridge::Bridges;

/// Where `config`'s bridges keep their queues.
pub fn queue_dir(config: &WeirConfig) -> PathBuf {
    config
        .broker
        .persistence
        .as_ref()
        .map_or_else(persistence::default_path, |p| p.path.clone())
        .join("bridges")
}

/// Starts the bridges of `config` and has the door offer them every publish.
pub fn start(config: &WeirConfig, broker: &Broker) -> anyhow::Result<Arc<Bridges>> {
    let bridges = Arc::new(Bridges::new(broker.door().handle(), queue_dir(config)));
    broker.door().set_bridges(bridges.routes());
    let applied = bridges.apply(&config.bridges);
    if let Some((name, error)) = applied.failed.into_iter().next() {
        return Err(error).with_context(|| format!("bridge `{name}` cannot start"));
    }
    Ok(bridges)
}

/// Applies the bridges of a reloaded `config`; says what changed.
pub fn reload(bridges: &Bridges, config: &WeirConfig) {
    let applied = bridges.apply(&config.bridges);
    if applied.added.len() + applied.changed.len() + applied.removed.len() > 0 {
        tracing::info!(
            "bridges: {} started, {} changed, {} removed, {} refused",
            applied.added.len(),
            applied.changed.len(),
            applied.removed.len(),
            applied.failed.len()
        );
    }
}

/// Opens the store of the configuration `args` names.
fn open(args: &BridgeStoreArgs) -> anyhow::Result<BridgeStore> {
    let config = match &args.config {
        Some(file) => WeirConfig::from_file(file)?,
        None => WeirConfig::embedded_default()?,
    };
    let dir = queue_dir(&config);
    if !dir.exists() {
        anyhow::bail!("no bridge queue in {}", dir.display());
    }
    BridgeStore::open(&dir).map_err(|e| {
        let text = e.to_string();
        if text.contains("locked") || text.contains("Locked") {
            anyhow::anyhow!("{text}: the store is in use (is weir running? stop it first)")
        } else {
            anyhow::anyhow!(text)
        }
    })
}

/// `weir bridge list`: each queue on disk and what it holds.
pub fn list(args: &BridgeStoreArgs) -> anyhow::Result<()> {
    let store = open(args)?;
    let names = store.names();
    if names.is_empty() {
        println!("no bridge queue in {}", store.path().display());
    }
    for name in names {
        let metrics = Arc::new(BridgeMetrics::new(&name, Default::default()));
        let (_, loaded) = store.queue(&name, &QueueLimits::default(), metrics)?;
        println!(
            "{name}: {} messages, {} bytes",
            loaded.messages, loaded.bytes
        );
    }
    Ok(())
}

/// `weir bridge purge NAME`: deletes bridge NAME's queue.
pub fn purge(name: &str, args: &BridgeStoreArgs) -> anyhow::Result<()> {
    let store = open(args)?;
    match store.purge(name)? {
        Some(messages) => {
            println!("bridge `{name}`: queue deleted ({messages} messages)");
            Ok(())
        }
        None => anyhow::bail!(
            "bridge `{name}` has no queue in {} (queues: {})",
            store.path().display(),
            store.names().join(", ")
        ),
    }
}
