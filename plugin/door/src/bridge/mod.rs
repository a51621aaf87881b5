//! Bridges: the gateway's links to remote brokers, as mosquitto's `connection` blocks make
//! them, with a store-and-forward queue that loses nothing it acknowledged.
//!
//! - [`config`]: what a bridge is configured with; [`topics`]: its topic lines.
//! - [`routes`]: what the door offers each accepted publish to; the `out` lines' matches go to
//!   the bridge's [`queue`] (on disk before the publisher is acknowledged, at QoS 1 and 2).
//! - [`link`]: the connection to the remote (start, failover, backoff), streaming the queue
//!   out and handing what comes in to the bridge's [`local`] publisher; [`client`]: its MQTT.
//! - [`metrics`]: the `weir_bridge_*` counters.
//!
//! [`Bridges`] runs them: it starts, changes and stops bridges as the configuration says
//! (a bridge whose settings did not change keeps its connection), and keeps each bridge's queue
//! across changes and removals.

pub mod client;
pub mod config;
pub mod link;
pub mod local;
pub mod metrics;
pub mod queue;
pub mod routes;
pub mod topics;

pub use config::BridgeConfig;
pub use routes::{BridgeRoute, BridgeRoutes, Published};

use crate::DoorHandle;
use link::{Leave, Link};
use local::LocalPublisher;
use metrics::{BridgeMetrics, Snapshot};
use queue::volatile::Volatile;
use queue::{BridgeStore, Queue, QueueError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Why a bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Its queue cannot be opened.
    #[error("bridge `{bridge}`: {source}")]
    Queue {
        /// The bridge.
        bridge: String,
        /// Why.
        source: QueueError,
    },
    /// Its TLS files do not make a configuration.
    #[error("bridge `{bridge}`: tls: {source}")]
    Tls {
        /// The bridge.
        bridge: String,
        /// Why.
        source: crate::tls::TlsError,
    },
    /// Its local publisher cannot start.
    #[error("bridge `{bridge}`: {source}")]
    Door {
        /// The bridge.
        bridge: String,
        /// Why.
        source: crate::DoorError,
    },
}

/// What [`Bridges::apply`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Bridges started.
    pub added: Vec<String>,
    /// Bridges restarted with new settings.
    pub changed: Vec<String>,
    /// Bridges stopped (their queues kept).
    pub removed: Vec<String>,
    /// Bridges that could not start, and why.
    pub failed: Vec<(String, BridgeError)>,
}

/// A bridge's queues and counters: kept while the broker runs, whatever the configuration.
struct Kept {
    queue: Arc<Queue>,
    volatile: Arc<Volatile>,
    metrics: Arc<BridgeMetrics>,
}

/// A running bridge.
struct Running {
    config: Arc<BridgeConfig>,
    stop: CancellationToken,
    leave: Leave,
    metrics: Arc<BridgeMetrics>,
    task: JoinHandle<()>,
}

/// The running bridges.
pub struct Bridges {
    door: DoorHandle,
    dir: PathBuf,
    routes: Arc<BridgeRoutes>,
    store: Mutex<Option<Arc<BridgeStore>>>,
    kept: Mutex<BTreeMap<String, Arc<Kept>>>,
    running: Mutex<BTreeMap<String, Running>>,
}

impl Bridges {
    /// No bridge yet; queues go to `dir` (opened with the first bridge).
    pub fn new(door: DoorHandle, dir: PathBuf) -> Bridges {
        Bridges {
            door,
            dir,
            routes: Arc::new(BridgeRoutes::default()),
            store: Mutex::new(None),
            kept: Mutex::default(),
            running: Mutex::default(),
        }
    }

    /// What the door offers publishes to.
    pub fn routes(&self) -> Arc<BridgeRoutes> {
        self.routes.clone()
    }

    /// Runs exactly the bridges of `configs`: new ones start, changed ones restart (their
    /// queues kept), unchanged ones go on untouched, missing ones stop (their queues kept on
    /// disk).
    pub fn apply(&self, configs: &[BridgeConfig]) -> Applied {
        let mut applied = Applied::default();
        let wanted: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        let gone: Vec<String> = self
            .running()
            .keys()
            .filter(|name| !wanted.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.routes.remove(&name);
            self.stop(&name);
            tracing::info!(bridge = %name, "bridge removed (its queue is kept: `weir bridge purge {name}` deletes it)");
            applied.removed.push(name);
        }
        for config in configs {
            let previous = self.running().get(&config.name).map(|r| r.config.clone());
            match previous {
                Some(running) if *running == *config => continue,
                Some(_) => {
                    self.stop(&config.name);
                    match self.start(config) {
                        Ok(()) => applied.changed.push(config.name.clone()),
                        Err(e) => applied.failed.push((config.name.clone(), e)),
                    }
                }
                None => match self.start(config) {
                    Ok(()) => applied.added.push(config.name.clone()),
                    Err(e) => applied.failed.push((config.name.clone(), e)),
                },
            }
        }
        for (name, error) in &applied.failed {
            self.routes.remove(name);
            tracing::error!(bridge = %name, "{error}");
        }
        applied
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts bridge `config`.
    fn start(&self, config: &BridgeConfig) -> Result<(), BridgeError> {
        let name = &config.name;
        let kept = self.kept(config)?;
        kept.queue.set_limits(&config.queue);
        kept.volatile
            .set_limits(config.queue.qos0, config.queue.max_messages);
        let tls = match &config.tls {
            Some(tls) => {
                Some(
                    client::tls::client_config(tls).map_err(|source| BridgeError::Tls {
                        bridge: name.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let local =
            LocalPublisher::start(&self.door, &config.local_client_id, name).map_err(|source| {
                BridgeError::Door {
                    bridge: name.clone(),
                    source,
                }
            })?;
        self.routes.install(BridgeRoute {
            name: name.as_str().into(),
            rules: config.topics.clone(),
            queue: kept.queue.clone(),
            volatile: kept.volatile.clone(),
        });
        let config = Arc::new(config.clone());
        let stop = CancellationToken::new();
        let leave = Leave::default();
        let link = Link {
            config: config.clone(),
            tls,
            queue: kept.queue.clone(),
            volatile: kept.volatile.clone(),
            metrics: kept.metrics.clone(),
            door: self.door.clone(),
            local,
            stop: stop.clone(),
            leave: leave.clone(),
        };
        let task = self.door.runtime().spawn(link.run());
        let addresses: Vec<String> = config.addresses.iter().map(ToString::to_string).collect();
        tracing::info!(
            bridge = %name,
            "bridge to {} as `{}` ({}, {} topic lines, {} messages queued)",
            addresses.join(", "),
            config.client_id,
            config.protocol,
            config.topics.len(),
            kept.queue.len()
        );
        let running = Running {
            config,
            stop,
            leave,
            metrics: kept.metrics.clone(),
            task,
        };
        self.running().insert(name.clone(), running);
        Ok(())
    }

    /// Bridge `config`'s queues and counters, opened the first time.
    fn kept(&self, config: &BridgeConfig) -> Result<Arc<Kept>, BridgeError> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = kept.get(&config.name) {
            return Ok(found.clone());
        }
        let error = |source| BridgeError::Queue {
            bridge: config.name.clone(),
            source,
        };
        let store = self.store().map_err(error)?;
        let metrics = Arc::new(BridgeMetrics::new(&config.name, self.door.stats()));
        let (queue, loaded) = store
            .queue(&config.name, &config.queue, metrics.clone())
            .map_err(error)?;
        if loaded.messages > 0 {
            tracing::info!(
                bridge = %config.name,
                "{} messages ({} bytes) queued by an earlier run, to be sent",
                loaded.messages,
                loaded.bytes
            );
        }
        let volatile = Arc::new(Volatile::new(
            config.queue.qos0,
            config.queue.max_messages,
            metrics.clone(),
        ));
        let entry = Arc::new(Kept {
            queue,
            volatile,
            metrics,
        });
        kept.insert(config.name.clone(), entry.clone());
        Ok(entry)
    }

    fn store(&self) -> Result<Arc<BridgeStore>, QueueError> {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(store) = store.as_ref() {
            return Ok(store.clone());
        }
        let opened = Arc::new(BridgeStore::open(&self.dir)?);
        *store = Some(opened.clone());
        Ok(opened)
    }

    /// Stops bridge `name`'s link (a clean disconnect) and waits for it, briefly.
    fn stop(&self, name: &str) {
        let Some(running) = self.running().remove(name) else {
            return;
        };
        running.stop.cancel();
        let wait = async {
            let _ = tokio::time::timeout(STOP_PATIENCE, running.task).await;
        };
        self.door.runtime().block_on(wait);
    }

    /// Has every bridge with a shared subscription (`$share/...`) leave it, and waits (at most
    /// [`LEAVE_PATIENCE`]) until each has: the remote answered its UNSUBSCRIBE and every
    /// message it had sent is handed over here and acknowledged. The links stay up for what
    /// goes out. A stop does this first, before the graphs drain, so that what the remote had
    /// in flight for this broker is processed here rather than lost.
    pub fn leave_shares(&self) {
        let leaving: Vec<(Leave, Arc<BridgeMetrics>)> = self
            .running()
            .values()
            .filter(|running| running.config.topics.iter().any(|t| t.share.is_some()))
            .map(|running| (running.leave.clone(), running.metrics.clone()))
            .collect();
        if leaving.is_empty() {
            return;
        }
        for (leave, _) in &leaving {
            leave.asked.cancel();
        }
        let all_left = async {
            for (leave, metrics) in &leaving {
                // A link that is down has nothing of its shares in flight.
                if metrics.connected() {
                    leave.done.cancelled().await;
                }
            }
        };
        let wait = async {
            let _ = tokio::time::timeout(LEAVE_PATIENCE, all_left).await;
        };
        self.door.runtime().block_on(wait);
    }

    /// Stops every bridge (a clean disconnect from each remote) and syncs their queues.
    pub fn stop_all(&self) {
        let names: Vec<String> = self.running().keys().cloned().collect();
        for name in names {
            self.stop(&name);
        }
        if let Some(store) = self
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            store.sync();
        }
    }

    /// Registers the bridges' families (`weir_bridge_*`) in `registry`, read from the
    /// bridges running at each scrape.
    pub fn register(self: &Arc<Self>, registry: &mut weir_model::metrics::Registry) {
        registry.register_collector(Box::new(metrics::BridgesCollector(self.clone())));
    }

    /// Each running bridge's figures now.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        let names: Vec<String> = self.running().keys().cloned().collect();
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let now = crate::now_millis();
        names
            .iter()
            .filter_map(|name| kept.get(name))
            .map(|kept| Snapshot {
                metrics: kept.metrics.clone(),
                queued_messages: kept.queue.len() + kept.volatile.len(),
                queued_bytes: kept.queue.bytes(),
                oldest_queued_seconds: kept
                    .queue
                    .oldest_queued_at()
                    .map_or(0.0, |at| now.saturating_sub(at) as f64 / 1000.0),
            })
            .collect()
    }
}

/// How long a stopping link may take to send what is queued and say goodbye to its remote.
const STOP_PATIENCE: Duration = Duration::from_secs(3);
/// How long the bridges may take to leave their shared subscriptions.
pub const LEAVE_PATIENCE: Duration = Duration::from_secs(6);
