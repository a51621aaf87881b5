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
    #[cfg(feature = "kafka")]
    kafka: BTreeMap<String, Arc<KafkaSourceMetrics>>,
}

#[cfg(feature = "kafka")]
use weir_kafka_source::KafkaSourceMetrics;

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

    /// Graph `name` reads Kafka, with counters `source` (or no longer, with `None`).
    #[cfg(feature = "kafka")]
    pub fn insert_kafka(&self, name: &str, source: Option<Arc<KafkaSourceMetrics>>) {
        let mut entries = self.write();
        match source {
            Some(source) => entries.kafka.insert(name.to_string(), source),
            None => entries.kafka.remove(name),
        };
    }

    /// Every Kafka source's counters.
    #[cfg(feature = "kafka")]
    pub fn kafka_sources(&self) -> Vec<Arc<KafkaSourceMetrics>> {
        self.read().kafka.values().cloned().collect()
    }

    /// Graph `name` is gone.
    pub fn remove(&self, name: &str) {
        let mut entries = self.write();
        entries.graphs.remove(name);
        entries.sinks.remove(name);
        #[cfg(feature = "kafka")]
        entries.kafka.remove(name);
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

/// The running graphs' families (`weir_graph_*`, `weir_node_*`, `weir_module_*`), their
/// upstream sinks' (`weir_sink_*`) and Kafka sources' (`weir_kafka_source_*`), read from the
/// graphs running at each scrape.
impl weir_model::metrics::Collector for Catalog {
    fn encode(&self, mut encoder: weir_model::metrics::DescriptorEncoder) -> std::fmt::Result {
        weir_engine::metrics::encode(&self.graphs(), &mut encoder)?;
        #[cfg(feature = "kafka")]
        weir_kafka_source::metrics::encode(&self.kafka_sources(), &mut encoder)?;
        weir_sink::buffer::encode(&self.sinks(), &mut encoder)
    }
}
