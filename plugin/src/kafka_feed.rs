//! A graph fed from Kafka: the Kafka source's partitions ([`weir_kafka_source`]) joined to the
//! engine's partitioned inputs ([`weir_engine::Partitions`]), one input per partition.
//!
//! Results of a Kafka-fed graph carry a result id, `weir-result-id` (a user property, a Kafka
//! header with the Kafka sink): `<graph>/<kafka topic>:<partition>/<result topic>/<millis>:
//! <counter>` of the result's timestamp (for a window, its end). A window emitted again after
//! a crash (by the partition's next owner) has the same id, so consumers can drop repeats.

use crate::outputs::Acknowledged;
use crate::status::SourceStatus;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use weir_engine::{DeadLetter, Outputs, Partition, Partitions};
use weir_kafka_source::{KafkaSourceMetrics, PartitionInput, PartitionInputs};
use weir_model::data::{DataModel, Message};

/// The user property (and Kafka header) naming a result.
pub const RESULT_ID: &str = "weir-result-id";

/// A graph's partitioned inputs, for its Kafka source.
pub struct EngineInputs {
    graph: String,
    partitions: Partitions,
    outputs: Arc<dyn Outputs>,
    acknowledged: Arc<dyn Acknowledged>,
}

impl EngineInputs {
    /// The inputs of graph `graph`, opened on `partitions`, whose results go to `outputs`
    /// (where records that are no messages go too, as dead letters), which `acknowledged`
    /// follows: a message counts as settled once its results are acknowledged.
    pub fn new(
        graph: &str,
        partitions: Partitions,
        outputs: Arc<dyn Outputs>,
        acknowledged: Arc<dyn Acknowledged>,
    ) -> EngineInputs {
        EngineInputs {
            graph: graph.to_string(),
            partitions,
            outputs,
            acknowledged,
        }
    }
}

impl PartitionInputs for EngineInputs {
    fn open(&self, topic: &str, partition: i32) -> Result<Box<dyn PartitionInput>, String> {
        let named = format!("{}/{topic}:{partition}", self.graph);
        let outputs = Arc::new(ResultIds::new(&named, self.outputs.clone()));
        let input = self.partitions.open(outputs).map_err(|e| e.to_string())?;
        Ok(Box::new(EngineInput {
            input,
            acknowledged: self.acknowledged.clone(),
            waiting: VecDeque::new(),
            seen: 0,
            released: 0,
        }))
    }

    fn dead_letter(&self, message: Message, reason: String) {
        self.outputs.dead_letter(DeadLetter {
            node: "source".into(),
            module: format!("kafka source of graph {}", self.graph),
            reason,
            item: DataModel::Message(message),
        });
    }
}

/// One partition's input, and how far its settled messages' results are acknowledged.
struct EngineInput {
    input: Partition,
    acknowledged: Arc<dyn Acknowledged>,
    /// Settled counts not yet released, with how many messages the outputs had been handed
    /// when each was seen: released once the outputs acknowledge that many.
    waiting: VecDeque<(u64, u64)>,
    seen: u64,
    released: u64,
}

impl PartitionInput for EngineInput {
    fn push(&mut self, message: Message) {
        self.input.feeder().push(message);
    }

    fn advance_to(&self, time: u64) {
        self.input.feeder().advance_to(time);
    }

    fn settled(&mut self) -> u64 {
        // The results of what is settled were handed over before it settled: the count of
        // handed messages read after it covers them.
        let settled = self.input.settled();
        if settled > self.seen {
            self.seen = settled;
            self.waiting
                .push_back((settled, self.acknowledged.handed()));
        }
        let acknowledged = self.acknowledged.acknowledged();
        while let Some(&(settled, handed)) = self.waiting.front() {
            if handed > acknowledged {
                break;
            }
            self.released = settled;
            self.waiting.pop_front();
        }
        self.released
    }

    fn abandon(self: Box<Self>) {
        self.input.abandon();
    }
}

/// Outputs that add [`RESULT_ID`] to each result before passing it on.
pub struct ResultIds {
    /// `<graph>/<kafka topic>:<partition>`.
    input: String,
    inner: Arc<dyn Outputs>,
}

impl ResultIds {
    /// Names the results of `input` (`<graph>/<kafka topic>:<partition>`) going to `inner`.
    pub fn new(input: &str, inner: Arc<dyn Outputs>) -> ResultIds {
        ResultIds {
            input: input.to_string(),
            inner,
        }
    }
}

impl Outputs for ResultIds {
    fn result(&self, mut item: DataModel) -> bool {
        if let DataModel::Message(message) = &mut item {
            let id = format!(
                "{}/{}/{:015}:{:05}",
                self.input,
                String::from_utf8_lossy(&message.topic),
                message.timestamp.millis(),
                message.timestamp.counter
            );
            message
                .user_properties
                .push((Bytes::from_static(RESULT_ID.as_bytes()), Bytes::from(id)));
        }
        self.inner.result(item)
    }

    fn dead_letter(&self, letter: DeadLetter) {
        self.inner.dead_letter(letter);
    }
}

impl SourceStatus for KafkaSourceMetrics {
    fn waiting(&self) -> bool {
        !self.joined.load(Relaxed)
    }

    fn report(&self) -> serde_json::Value {
        let partitions: Vec<serde_json::Value> = self
            .partitions()
            .into_iter()
            .map(|((topic, partition), lag)| {
                serde_json::json!({"topic": topic, "partition": partition, "lag": lag})
            })
            .collect();
        serde_json::json!({
            "kafka": {
                "partitions": partitions,
                "records": self.records.load(Relaxed),
                "dead_letters": self.dead_letters.load(Relaxed),
                "commits": self.commits.load(Relaxed),
                "rebalances": self.rebalances.load(Relaxed),
                "replayed": self.replayed.load(Relaxed),
            }
        })
    }
}
