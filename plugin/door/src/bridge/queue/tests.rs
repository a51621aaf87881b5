//! The queue on disk, in process: what is committed is read back in order (from memory, or
//! from disk past the window), survives a reopen with its sequence numbers and marks, and a
//! full queue drops exactly its oldest messages or makes publishers wait.

use super::*;
use crate::bridge::config::{QueueLimits, WhenFull};
use crate::stats::Stats;
use bytes::Bytes;

fn message(n: u64) -> Queued {
    Queued {
        topic: Bytes::from(format!("plant1/t/{}", n % 3)),
        payload: Bytes::from(n.to_string()),
        qos: 1,
        retain: false,
        properties: None,
        queued_at: 1_700_000_000_000 + n,
    }
}

fn open(dir: &std::path::Path, limits: QueueLimits) -> (BridgeStore, Arc<Queue>) {
    let store = BridgeStore::open(dir).unwrap();
    let metrics = Arc::new(BridgeMetrics::new("cloud", Arc::new(Stats::default())));
    let (queue, _) = store.queue("cloud", &limits, metrics).unwrap();
    (store, queue)
}

fn append(queue: &Arc<Queue>, range: std::ops::Range<u64>) {
    let mut outbox = Outbox::default();
    for n in range {
        outbox.push(queue.clone(), message(n));
    }
    outbox.submit().unwrap().wait_blocking().unwrap();
}

fn payloads(stored: &[Stored]) -> Vec<String> {
    stored
        .iter()
        .map(|s| String::from_utf8_lossy(&s.message.payload).into_owned())
        .collect()
}

#[test]
fn committed_messages_are_read_in_order_and_leave_when_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, queue) = open(dir.path(), QueueLimits::default());
    append(&queue, 0..5);
    assert_eq!(queue.len(), 5);
    let mut taken = Vec::new();
    assert_eq!(queue.take(queue.first(), 10, &mut taken), Taken::Some);
    assert_eq!(payloads(&taken), ["0", "1", "2", "3", "4"]);
    assert_eq!(taken[0].seq, 1, "sequence numbers start at 1");
    for stored in &taken[..2] {
        queue.acknowledge(stored.seq, stored.size);
    }
    append(&queue, 5..6); // the acknowledgements are written with the next commit
    assert_eq!(queue.len(), 4);
    assert_eq!(queue.first(), 3);
}

#[test]
fn a_reopened_queue_has_its_messages_numbers_and_marks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, queue) = open(dir.path(), QueueLimits::default());
        append(&queue, 0..4);
        let mut taken = Vec::new();
        queue.take(queue.first(), 4, &mut taken);
        queue.acknowledge(taken[0].seq, taken[0].size);
        let (marked, mut done) = tokio::sync::mpsc::unbounded_channel();
        queue.mark_received(taken[1].seq, marked);
        assert_eq!(done.blocking_recv(), Some(taken[1].seq));
        store.sync();
    }
    let (_store, queue) = open(dir.path(), QueueLimits::default());
    assert_eq!(queue.len(), 3);
    assert_eq!(queue.end(), 5);
    assert!(queue.is_received(2));
    assert!(!queue.is_received(3));
    let stored = queue.read_stored(queue.first(), 10).unwrap();
    assert_eq!(stored.iter().map(|s| s.seq).collect::<Vec<_>>(), [2, 3, 4]);
    append(&queue, 10..11);
    assert_eq!(queue.end(), 6, "numbers go on from where they were");
}

#[test]
fn a_full_queue_drops_exactly_its_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let limits = QueueLimits {
        max_messages: 5,
        ..QueueLimits::default()
    };
    let (_store, queue) = open(dir.path(), limits);
    append(&queue, 0..3);
    append(&queue, 3..8);
    assert_eq!(queue.len(), 5);
    assert_eq!(queue.metrics().dropped(), 3);
    let mut taken = Vec::new();
    assert_eq!(queue.take(1, 10, &mut taken), Taken::Some);
    assert_eq!(payloads(&taken), ["3", "4", "5", "6", "7"]);
    // An acknowledgement of a dropped message changes nothing.
    queue.acknowledge(2, 10);
    append(&queue, 8..9);
    assert_eq!(queue.len(), 5);
    assert_eq!(queue.metrics().dropped(), 4);
}

#[test]
fn a_full_queue_that_blocks_makes_publishers_wait() {
    let dir = tempfile::tempdir().unwrap();
    let limits = QueueLimits {
        max_messages: 2,
        when_full: WhenFull::Block,
        ..QueueLimits::default()
    };
    let (_store, queue) = open(dir.path(), limits);
    append(&queue, 0..2);
    let mut outbox = Outbox::default();
    outbox.push(queue.clone(), message(2));
    assert!(outbox.full_queue().is_some(), "full: the publisher waits");
    let mut taken = Vec::new();
    queue.take(queue.first(), 1, &mut taken);
    queue.acknowledge(taken[0].seq, taken[0].size);
    outbox.submit().unwrap().wait_blocking().unwrap();
    assert_eq!(queue.len(), 2, "nothing dropped");
    assert_eq!(queue.metrics().dropped(), 0);
}

#[test]
fn a_reader_behind_the_window_in_memory_reads_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, queue) = open(dir.path(), QueueLimits::default());
    let count = TAIL_MESSAGES as u64 + 100;
    append(&queue, 0..count);
    let mut taken = Vec::new();
    assert_eq!(queue.take(1, 10, &mut taken), Taken::OnDisk);
    let stored = queue.read_stored(1, 3).unwrap();
    assert_eq!(payloads(&stored), ["0", "1", "2"]);
    assert_eq!(queue.take(count - 1, 10, &mut taken), Taken::Some);
    assert_eq!(
        payloads(&taken),
        [(count - 2).to_string(), (count - 1).to_string()]
    );
}
