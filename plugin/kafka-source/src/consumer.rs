//! The consumer thread of a Kafka source: it joins the group, opens an input for each
//! partition assigned, gives it the partition's records, moves idle partitions' event time
//! with the clock, and commits what the graph has settled (every second, and before a
//! partition is given up).
//!
//! librdkafka calls the rebalance and statistics callbacks from within `poll`, on this thread,
//! so the partitions' state is only ever touched here.

use super::config::{KafkaSourceConfig, Start};
use super::metrics::KafkaSourceMetrics;
use super::partition::Assigned;
use super::record::message_of;
use super::PartitionInputs;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use weir_model::data::Message;
use weir_model::hlc::Hlc;
use weir_model::time::{encode, minus_millis};

/// How long one poll waits for a record.
const POLL: Duration = Duration::from_millis(100);

/// How often settled offsets are committed.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

/// How often librdkafka reports the partitions' ends (for lag and idleness), in milliseconds.
const STATISTICS_INTERVAL_MS: &str = "1000";

/// Why a Kafka source could not start.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be made or subscribed (a bad option, for example).
    #[error("graph `{graph}`: kafka source: {source}")]
    Client {
        /// The graph.
        graph: String,
        /// librdkafka's error.
        source: KafkaError,
    },
    /// Its thread could not start.
    #[error("graph `{graph}`: kafka source: cannot start its thread: {source}")]
    Thread {
        /// The graph.
        graph: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// A running Kafka source. [`KafkaSource::stop`] (or dropping it) commits what is settled,
/// drops the open windows and leaves the group.
pub struct KafkaSource {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    metrics: Arc<KafkaSourceMetrics>,
}

/// What the consumer thread and its callbacks share.
struct Shared {
    graph: String,
    config: KafkaSourceConfig,
    lateness_ms: u64,
    node_id: Arc<str>,
    inputs: Arc<dyn PartitionInputs>,
    metrics: Arc<KafkaSourceMetrics>,
    /// The partitions owned now (few: looked up by a scan, without allocating per record).
    assigned: Mutex<Vec<(String, i32, Assigned)>>,
    /// The offset after the last record read of each partition this instance owned before.
    read_before: Mutex<HashMap<(String, i32), i64>>,
    /// Errors reported by librdkafka (logged at powers of two).
    errors: AtomicU64,
}

struct SourceContext(Arc<Shared>);

impl KafkaSource {
    /// Joins `config`'s group for graph `graph`, feeding each assigned partition into an input
    /// of `inputs`; event time moves `lateness_ms` behind the latest record's, and records
    /// without `__ts` are stamped with `node_id`.
    pub fn start(
        graph: &str,
        config: &KafkaSourceConfig,
        lateness_ms: u64,
        node_id: Arc<str>,
        inputs: Arc<dyn PartitionInputs>,
    ) -> Result<KafkaSource, SourceError> {
        let metrics = Arc::new(KafkaSourceMetrics::new(graph));
        let shared = Arc::new(Shared {
            graph: graph.to_string(),
            config: config.clone(),
            lateness_ms,
            node_id,
            inputs,
            metrics: metrics.clone(),
            assigned: Mutex::new(Vec::new()),
            read_before: Mutex::new(HashMap::new()),
            errors: AtomicU64::new(0),
        });
        let client = |source| SourceError::Client {
            graph: graph.to_string(),
            source,
        };
        let consumer: BaseConsumer<SourceContext> = client_config(config)
            .create_with_context(SourceContext(shared.clone()))
            .map_err(client)?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(client)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("weir-kafka-{graph}"))
                .spawn(move || run(&shared, &consumer, &stop))
                .map_err(|source| SourceError::Thread {
                    graph: graph.to_string(),
                    source,
                })?
        };
        Ok(KafkaSource {
            stop,
            thread: Some(thread),
            metrics,
        })
    }

    /// Its counters.
    pub fn metrics(&self) -> &Arc<KafkaSourceMetrics> {
        &self.metrics
    }

    /// Commits what the graph has settled, drops the open windows and leaves the group.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The consumer's properties: the user's options, then what the source needs.
fn client_config(config: &KafkaSourceConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    for (name, value) in &config.options {
        client.set(name, value);
    }
    let reset = match config.start {
        Start::Latest => "latest",
        Start::Committed | Start::Earliest => "earliest",
    };
    client
        .set("bootstrap.servers", &config.bootstrap_servers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", reset)
        .set("partition.assignment.strategy", "range,roundrobin")
        .set_log_level(RDKafkaLogLevel::Warning);
    client
}

/// The thread: poll, feed, tick, until told to stop.
fn run(shared: &Shared, consumer: &BaseConsumer<SourceContext>, stop: &AtomicBool) {
    let mut last_commit = Instant::now();
    let mut last_tick = Instant::now();
    while !stop.load(Relaxed) {
        match consumer.poll(POLL) {
            Some(Ok(record)) => shared.record(&record),
            Some(Err(error)) => shared.failed(&error.to_string()),
            None => {}
        }
        if last_tick.elapsed() >= POLL {
            last_tick = Instant::now();
            shared.tick();
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                last_commit = Instant::now();
                shared.commit(consumer, CommitMode::Async);
            }
        }
    }
    shared.commit(consumer, CommitMode::Sync);
    let abandoned = shared.release_all();
    consumer.unsubscribe();
    tracing::info!(
        graph = %shared.graph,
        "kafka source stopped: settled offsets committed, {abandoned} partitions' open windows left to their next owner"
    );
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Vec<(String, i32, Assigned)>> {
        self.assigned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `record` to its partition's input (or the dead-letter destination).
    fn record<M: rdkafka::Message>(&self, record: &M) {
        let (topic, partition, offset) = (record.topic(), record.partition(), record.offset());
        self.metrics.records.fetch_add(1, Relaxed);
        let mut assigned = self.lock();
        let Some((_, _, state)) = assigned
            .iter_mut()
            .find(|(t, p, _)| t == topic && *p == partition)
        else {
            return; // a record of a partition given up meanwhile: its next owner reads it
        };
        if state.replaying(offset) {
            self.metrics.replayed.fetch_add(1, Relaxed);
        }
        match message_of(record, &self.config.key, &self.node_id) {
            Ok(message) => state.push(message, offset, self.lateness_ms),
            Err(error) => {
                self.metrics.dead_letters.fetch_add(1, Relaxed);
                let reason =
                    format!("{error} (topic {topic}, partition {partition}, offset {offset})");
                let payload = bytes::Bytes::copy_from_slice(record.payload().unwrap_or_default());
                let stamp = Hlc::from_millis(now_millis(), 0, self.node_id.clone());
                let message = Message::new(stamp, topic.to_string(), payload);
                self.inputs.dead_letter(message, reason);
                state.skip(offset);
            }
        }
    }

    /// Moves idle partitions' event time with the clock.
    fn tick(&self) {
        let now = encode(&Hlc::from_millis(now_millis(), 0, self.node_id.clone()));
        let mut assigned = self.lock();
        for (_, _, state) in assigned.iter_mut() {
            if state.is_idle(self.config.idle_timeout) {
                state.idle = true;
                state.input.advance_to(minus_millis(now, self.lateness_ms));
            }
        }
        self.publish(&assigned);
    }

    /// Commits each partition's settled offset that moved.
    fn commit(&self, consumer: &BaseConsumer<SourceContext>, mode: CommitMode) {
        let mut assigned = self.lock();
        self.commit_these(
            consumer,
            mode,
            assigned.iter_mut().map(|(t, p, s)| (&*t, *p, s)),
        );
    }

    fn commit_these<'a>(
        &self,
        consumer: &BaseConsumer<SourceContext>,
        mode: CommitMode,
        partitions: impl Iterator<Item = (&'a String, i32, &'a mut Assigned)>,
    ) {
        let mut offsets = TopicPartitionList::new();
        let mut moved = Vec::new();
        for (topic, partition, state) in partitions {
            if state.settle() {
                if let Some(offset) = state.settled_offset {
                    let _ = offsets.add_partition_offset(topic, partition, Offset::Offset(offset));
                    moved.push((state, offset));
                }
            }
        }
        if offsets.count() == 0 {
            return;
        }
        match consumer.commit(&offsets, mode) {
            Ok(()) => {
                self.metrics.commits.fetch_add(1, Relaxed);
                for (state, offset) in moved {
                    state.committed = Some(offset);
                }
            }
            Err(error) => {
                self.metrics.commit_failures.fetch_add(1, Relaxed);
                self.failed(&format!("commit: {error}"));
            }
        }
    }

    /// Opens an input for each partition of `partitions`, and sets where this instance starts
    /// reading one it has not read before.
    fn assign(&self, partitions: &mut TopicPartitionList) {
        self.metrics.rebalances.fetch_add(1, Relaxed);
        let read_before = self.read_before.lock().unwrap_or_else(|e| e.into_inner());
        let mut opened = Vec::new();
        let mut assigned = self.lock();
        for element in partitions.elements() {
            let (topic, partition) = (element.topic().to_string(), element.partition());
            if assigned
                .iter()
                .any(|(t, p, _)| *t == topic && *p == partition)
            {
                continue;
            }
            match self.inputs.open(&topic, partition) {
                Ok(input) => {
                    let mut state = Assigned::new(input);
                    state.read_before = read_before.get(&(topic.clone(), partition)).copied();
                    opened.push(format!("{topic}/{partition}"));
                    assigned.push((topic, partition, state));
                }
                Err(error) => tracing::error!(
                    graph = %self.graph,
                    "kafka source: cannot open an input for {topic}/{partition}: {error}"
                ),
            }
        }
        let first_time: Vec<(String, i32)> = partitions
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .filter(|key| !read_before.contains_key(key))
            .collect();
        let start = match self.config.start {
            Start::Committed => None,
            Start::Earliest => Some(Offset::Beginning),
            Start::Latest => Some(Offset::End),
        };
        if let Some(offset) = start {
            for (topic, partition) in first_time {
                let _ = partitions.set_partition_offset(&topic, partition, offset);
            }
        }
        self.metrics.joined.store(true, Relaxed);
        self.publish(&assigned);
        tracing::info!(
            graph = %self.graph,
            "kafka rebalance: assigned {} (owning {})",
            list(&opened),
            assigned.len()
        );
    }

    /// Commits what is settled of `partitions`, then abandons their inputs.
    fn revoke(&self, consumer: &BaseConsumer<SourceContext>, partitions: &TopicPartitionList) {
        let revoked: Vec<(String, i32)> = partitions
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let mut assigned = self.lock();
        let (leaving, staying): (Vec<_>, Vec<_>) = assigned
            .drain(..)
            .partition(|(t, p, _)| revoked.iter().any(|(rt, rp)| rt == t && rp == p));
        *assigned = staying;
        if leaving.is_empty() {
            // Already given up (the source is stopping): nothing moved.
            return;
        }
        self.metrics.rebalances.fetch_add(1, Relaxed);
        let mut leaving = leaving;
        self.commit_these(
            consumer,
            CommitMode::Sync,
            leaving.iter_mut().map(|(t, p, s)| (&*t, *p, s)),
        );
        let names: Vec<String> = leaving.iter().map(|(t, p, _)| format!("{t}/{p}")).collect();
        self.forget(leaving);
        self.publish(&assigned);
        tracing::info!(
            graph = %self.graph,
            "kafka rebalance: revoked {} (owning {}); their open windows are left to the next owner",
            list(&names),
            assigned.len()
        );
    }

    /// Abandons every input (the source stops); returns how many there were.
    fn release_all(&self) -> usize {
        let mut assigned = self.lock();
        let all: Vec<_> = assigned.drain(..).collect();
        let count = all.len();
        self.forget(all);
        self.publish(&assigned);
        count
    }

    /// Abandons the inputs of `partitions`, remembering how far each was read.
    fn forget(&self, partitions: Vec<(String, i32, Assigned)>) {
        let mut read_before = self.read_before.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, partition, state) in partitions {
            if let Some(next) = state.next_offset {
                let entry = read_before.entry((topic, partition)).or_insert(next);
                *entry = (*entry).max(next);
            }
            state.input.abandon();
        }
    }

    /// Shows the partitions owned and their lag on /metrics.
    fn publish(&self, assigned: &[(String, i32, Assigned)]) {
        let now: BTreeMap<(String, i32), Option<i64>> = assigned
            .iter()
            .map(|(t, p, s)| ((t.clone(), *p), s.lag()))
            .collect();
        self.metrics.set_partitions(now);
    }

    /// Logs an error librdkafka reported: the first, then at each power of two.
    fn failed(&self, error: &str) {
        let count = self.errors.fetch_add(1, Relaxed) + 1;
        if count.is_power_of_two() {
            tracing::warn!(
                graph = %self.graph,
                "kafka source: {error} ({count} errors so far; librdkafka retries)"
            );
        }
    }
}

/// `a/0, a/1`, or `nothing`.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// The wall clock in milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        // Connection troubles also come through `error`, which is rate-limited.
        let severe = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
        );
        if severe {
            self.0.failed(&format!("{facility}: {message}"));
        } else {
            tracing::debug!(graph = %self.0.graph, "librdkafka {facility}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.failed(&format!("{error}: {reason}"));
    }

    fn stats(&self, statistics: Statistics) {
        let mut assigned = self.0.lock();
        for (topic, partition, state) in assigned.iter_mut() {
            let reported = statistics
                .topics
                .get(topic.as_str())
                .and_then(|t| t.partitions.get(partition));
            if let Some(reported) = reported.filter(|p| p.hi_offset >= 0) {
                state.high_watermark = Some(reported.hi_offset);
                if state.committed.is_none() && reported.committed_offset >= 0 {
                    state.committed = Some(reported.committed_offset);
                }
            }
        }
        self.0.publish(&assigned);
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let outcome: KafkaResult<()> = match error {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.0.assign(partitions);
                consumer.assign(partitions)
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.0.revoke(consumer, partitions);
                consumer.unassign()
            }
            other => {
                self.0.failed(&format!("rebalance: {other:?}"));
                consumer.unassign()
            }
        };
        if let Err(error) = outcome {
            self.0.failed(&format!("rebalance: {error}"));
        }
    }
}
