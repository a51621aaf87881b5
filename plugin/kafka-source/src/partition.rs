//! One assigned partition: its graph input, the offsets it gave the graph, and how far the
//! graph has settled them (what may be committed), its event time and whether it is idle.

use super::PartitionInput;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use weir_model::data::Message;
use weir_model::time::{encode, minus_millis};

/// An assigned partition.
pub(crate) struct Assigned {
    pub input: Box<dyn PartitionInput>,
    /// Records given to the graph or dead-lettered and not yet settled, oldest first: how many
    /// pushed messages must be settled for the record to be, and its offset.
    unsettled: VecDeque<(u64, i64)>,
    /// Messages pushed so far: the position of the next one.
    pushed: u64,
    /// The offset to commit next (everything before it settled), once something settled.
    pub settled_offset: Option<i64>,
    /// The offset last committed.
    pub committed: Option<i64>,
    /// The offset after the last record read.
    pub next_offset: Option<i64>,
    /// The partition's end, as the last statistics said.
    pub high_watermark: Option<i64>,
    /// The latest event time read.
    latest_event: u64,
    /// When the last record came.
    last_record: Instant,
    /// Whether the input was moved by the clock (idle), which only a new record undoes.
    pub idle: bool,
    /// How far this instance had read the partition when it owned it before.
    pub read_before: Option<i64>,
}

impl Assigned {
    pub fn new(input: Box<dyn PartitionInput>) -> Assigned {
        Assigned {
            input,
            unsettled: VecDeque::new(),
            pushed: 0,
            settled_offset: None,
            committed: None,
            next_offset: None,
            high_watermark: None,
            latest_event: 0,
            last_record: Instant::now(),
            idle: false,
            read_before: None,
        }
    }

    /// Whether a record at `offset` was read here before the partition last left.
    pub fn replaying(&self, offset: i64) -> bool {
        self.read_before.is_some_and(|before| offset < before)
    }

    /// Gives the graph `message`, read at `offset`; its event time moves the input's frontier,
    /// `lateness_ms` behind.
    pub fn push(&mut self, message: Message, offset: i64, lateness_ms: u64) {
        let event = encode(&message.timestamp);
        self.input.push(message);
        self.pushed += 1;
        self.unsettled.push_back((self.pushed, offset));
        self.read(offset);
        if event > self.latest_event {
            self.latest_event = event;
            self.input.advance_to(minus_millis(event, lateness_ms));
        }
    }

    /// A record at `offset` that did not become a message (dead-lettered): settled once
    /// everything before it is.
    pub fn skip(&mut self, offset: i64) {
        self.unsettled.push_back((self.pushed, offset));
        self.read(offset);
    }

    fn read(&mut self, offset: i64) {
        self.next_offset = Some(offset.saturating_add(1));
        self.last_record = Instant::now();
        self.idle = false;
    }

    /// Moves [`Assigned::settled_offset`] as far as the graph has settled; true when it moved
    /// past what was committed.
    pub fn settle(&mut self) -> bool {
        let settled = self.input.settled();
        while let Some(&(needed, offset)) = self.unsettled.front() {
            if needed > settled {
                break;
            }
            self.unsettled.pop_front();
            self.settled_offset = Some(offset.saturating_add(1));
        }
        self.settled_offset.is_some() && self.settled_offset != self.committed
    }

    /// Whether the partition has been read to its end and silent for `timeout`.
    pub fn is_idle(&self, timeout: Duration) -> bool {
        self.lag() == Some(0) && self.last_record.elapsed() >= timeout
    }

    /// Records behind the partition's end.
    pub fn lag(&self) -> Option<i64> {
        let high = self.high_watermark?;
        let next = self.next_offset.or(self.committed).unwrap_or(0);
        Some(high.saturating_sub(next).max(0))
    }
}
