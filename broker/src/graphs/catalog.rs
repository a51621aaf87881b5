//! The counters of the graphs and sinks running now, for `/metrics`, the OTLP export and the
//! periodic log line. Graphs come and go while the broker runs (hot reload), so readers take a
//! snapshot each time.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use weir_engine::GraphMetrics;
use weir_sink::buffer::SinkMetrics;

#[derive(Default)]
struct Entries {
    graphs: BTreeMap<String, Arc<GraphMetrics>>,
    sinks: BTreeMap<String, Arc<SinkMetrics>>,
}

/// The counters of every running graph and upstream sink, by graph name.
#[derive(Clone, Default)]
pub struct Catalog(Arc<RwLock<Entries>>);

impl Catalog {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Entries> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Every graph's counters.
    pub fn graphs(&self) -> Vec<Arc<GraphMetrics>> {
        self.read().graphs.values().cloned().collect()
    }

    /// Every upstream sink's counters.
    pub fn sinks(&self) -> Vec<Arc<SinkMetrics>> {
        self.read().sinks.values().cloned().collect()
    }

    /// Graph `name` now counts with `graph` (and `sink`, if its results go upstream).
    pub fn insert(&self, name: &str, graph: Arc<GraphMetrics>, sink: Option<Arc<SinkMetrics>>) {
        let mut entries = self.write();
        entries.graphs.insert(name.to_string(), graph);
        match sink {
            Some(sink) => entries.sinks.insert(name.to_string(), sink),
            None => entries.sinks.remove(name),
        };
    }

    /// Graph `name` is gone.
    pub fn remove(&self, name: &str) {
        let mut entries = self.write();
        entries.graphs.remove(name);
        entries.sinks.remove(name);
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.read();
        f.debug_struct("Catalog")
            .field("graphs", &entries.graphs.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The running graphs' families (`weir_graph_*`, `weir_node_*`, `weir_module_*`) and their
/// upstream sinks' (`weir_sink_*`), read from the graphs running at each scrape.
impl weir_model::metrics::Collector for Catalog {
    fn encode(&self, mut encoder: weir_model::metrics::DescriptorEncoder) -> std::fmt::Result {
        weir_engine::metrics::encode(&self.graphs(), &mut encoder)?;
        weir_sink::buffer::encode(&self.sinks(), &mut encoder)
    }
}
