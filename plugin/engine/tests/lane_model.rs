//! The lane's checkpoint protocol (`plugin/engine/src/lane.rs`), step by step and under every
//! interleaving of concurrent pushers and a moving watermark, model-checked with shuttle.
//!
//! The lane's source file is compiled here against shuttle's atomics and lock (the `sync`
//! module it imports from its parent), so what is checked is the code Weir runs, scheduled by
//! shuttle: sequentially consistent, as the lane's SeqCst atomics are, with its interleavings
//! chosen by PCT (which finds a bug of depth 3 with a known probability per run) and at
//! random. The promise checked:
//! every item stamped below a settled checkpoint's watermark is queued before the place the
//! checkpoint names, so that a source that has drained that many items may move its frontier
//! to the watermark.

/// What the lane imports as `super::sync`: shuttle's atomics and lock.
mod sync {
    pub use shuttle::sync::{atomic, Mutex};
}

/// What the lane imports as `super::time`.
mod time {
    pub use weir_model::time::COUNTER_BITS;
}

#[path = "../src/lane.rs"]
#[allow(dead_code)]
mod lane;

use lane::{Lane, CHECKPOINT_EVERY, CHECKPOINT_SPAN};
use shuttle::sync::atomic::{AtomicU64, Ordering};
use shuttle::sync::{Arc, Mutex};
use std::collections::VecDeque;

/// A worker's queue: the times of the items in it, in queue order.
type Queue = Mutex<Vec<u64>>;

/// One push as the feeder makes it: counted in the lane's epoch, stamped no earlier than the
/// watermark it reads, queued, counted as sent, done, then a checkpoint if one is due.
fn push(lane: &Lane, watermark: &AtomicU64, queue: &Queue, stamp: u64) {
    let epoch = lane.pushing();
    let frontier = watermark.load(Ordering::SeqCst);
    queue.lock().unwrap().push(stamp.max(frontier));
    let sent = lane.sent_one();
    lane.pushed(epoch);
    lane.checkpoint_if_due(sent, frontier, watermark);
}

fn settled(lane: &Lane) -> Vec<(u64, u64)> {
    let mut into = VecDeque::new();
    lane.take_settled(&mut into);
    into.into()
}

/// Every item stamped below a checkpoint's watermark is within the checkpoint's place.
fn assert_kept(checkpoints: &[(u64, u64)], queue: &[u64]) {
    for &(watermark, within) in checkpoints {
        for (place, &time) in queue.iter().enumerate() {
            assert!(
                time >= watermark || (place as u64) < within,
                "item {place} stamped {time} is behind the checkpoint ({watermark}, {within}); queue {queue:?}"
            );
        }
    }
}

/// Pushers, each pushing its stamps in order, while the watermark moves to each of `moves`:
/// every checkpoint settled keeps its promise.
fn pushers_and_a_moving_watermark(pushers: &[&[u64]], moves: &[u64]) {
    let lane = Arc::new(Lane::default());
    let watermark = Arc::new(AtomicU64::new(0));
    let queue = Arc::new(Queue::new(Vec::new()));
    let threads: Vec<_> = pushers
        .iter()
        .map(|stamps| {
            let (lane, watermark, queue) = (lane.clone(), watermark.clone(), queue.clone());
            let stamps = stamps.to_vec();
            shuttle::thread::spawn(move || {
                for stamp in stamps {
                    push(&lane, &watermark, &queue, stamp);
                }
            })
        })
        .collect();
    let mut checkpoints = Vec::new();
    for &to in moves {
        watermark.fetch_max(to, Ordering::SeqCst);
        checkpoints.extend(settled(&lane));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    checkpoints.extend(settled(&lane));
    let queue = queue.lock().unwrap();
    let pushed: usize = pushers.iter().map(|stamps| stamps.len()).sum();
    assert_eq!(queue.len(), pushed);
    assert!(
        !checkpoints.is_empty(),
        "the first push is due a checkpoint"
    );
    assert_kept(&checkpoints, &queue);
}

/// A push that read the watermark before it moved, and another pusher that takes a
/// checkpoint after the move and pushes again while the first is still under way.
fn a_slow_push_beside_a_checkpoint() {
    pushers_and_a_moving_watermark(&[&[0], &[0, 0]], &[CHECKPOINT_SPAN]);
}

/// Two pushers (two items each, one stamped ahead) and a watermark moving twice by a
/// checkpoint's span.
fn two_pushers_and_two_moves() {
    pushers_and_a_moving_watermark(
        &[&[0, 0], &[CHECKPOINT_SPAN / 2, 0]],
        &[CHECKPOINT_SPAN, 2 * CHECKPOINT_SPAN],
    );
}

#[test]
fn a_slow_push_stays_within_the_checkpoint_it_holds_back() {
    shuttle::check_pct(a_slow_push_beside_a_checkpoint, 20_000, 3);
    shuttle::check_random(a_slow_push_beside_a_checkpoint, 20_000);
}

/// The race at the end of a checkpoint, every interleaving of it (depth-first): a slow push
/// of the old epoch (it read the watermark before the checkpoint's) ends, and settles the
/// checkpoint, while a push of the new epoch that queued its item first counts it sent and
/// ends. The slow item is the last in the queue, and the checkpoint must place it so.
#[test]
fn a_push_ending_while_a_checkpoint_settles_is_counted() {
    shuttle::check_dfs(
        || {
            let lane = Arc::new(Lane::default());
            let watermark = Arc::new(AtomicU64::new(0));
            let queue = Arc::new(Queue::default());
            // The slow push counts itself and reads the watermark, which then moves.
            let slow = lane.pushing();
            let read = watermark.load(Ordering::SeqCst);
            watermark.store(CHECKPOINT_SPAN, Ordering::SeqCst);
            // Another push takes a checkpoint at the new watermark; it waits for the slow one.
            push(&lane, &watermark, &queue, 0);
            assert_eq!(settled(&lane), []);
            // A push of the new epoch queues its item.
            let new = lane.pushing();
            assert_ne!(new, slow);
            let frontier = watermark.load(Ordering::SeqCst);
            queue.lock().unwrap().push(frontier);
            let ending_slow = {
                let (lane, queue) = (lane.clone(), queue.clone());
                shuttle::thread::spawn(move || {
                    queue.lock().unwrap().push(read);
                    lane.sent_one();
                    lane.pushed(slow);
                })
            };
            let ending_new = {
                let (lane, watermark) = (lane.clone(), watermark.clone());
                shuttle::thread::spawn(move || {
                    let sent = lane.sent_one();
                    lane.pushed(new);
                    lane.checkpoint_if_due(sent, frontier, &watermark);
                })
            };
            ending_slow.join().unwrap();
            ending_new.join().unwrap();
            let checkpoints = settled(&lane);
            assert_eq!(checkpoints.first().map(|c| c.0), Some(CHECKPOINT_SPAN));
            assert_kept(&checkpoints, &queue.lock().unwrap());
        },
        None,
    );
}

#[test]
fn every_item_below_a_checkpoint_is_within_its_place() {
    shuttle::check_pct(two_pushers_and_two_moves, 20_000, 3);
    shuttle::check_random(two_pushers_and_two_moves, 20_000);
}

#[test]
fn checkpoints_come_every_few_pushes_and_with_the_watermark() {
    shuttle::check_dfs(
        || {
            let lane = Lane::default();
            let watermark = AtomicU64::new(100);
            let queue = Queue::default();
            push(&lane, &watermark, &queue, 0);
            assert_eq!(settled(&lane), [(100, 1)]);
            for _ in 2..CHECKPOINT_EVERY {
                push(&lane, &watermark, &queue, 0);
            }
            assert_eq!(settled(&lane), []);
            watermark.store(200, Ordering::SeqCst);
            push(&lane, &watermark, &queue, 0);
            assert_eq!(settled(&lane), [(200, CHECKPOINT_EVERY)]);
            watermark.store(200 + CHECKPOINT_SPAN, Ordering::SeqCst);
            push(&lane, &watermark, &queue, 0);
            assert_eq!(
                settled(&lane),
                [(200 + CHECKPOINT_SPAN, CHECKPOINT_EVERY + 1)]
            );
        },
        None,
    );
}

#[test]
fn a_checkpoint_waits_for_the_pushes_of_its_old_epoch() {
    shuttle::check_dfs(
        || {
            let lane = Lane::default();
            let watermark = AtomicU64::new(100);
            let queue = Queue::default();
            // A push under way (it read a watermark below the checkpoint's)...
            let slow = lane.pushing();
            // ...while another one takes a checkpoint.
            push(&lane, &watermark, &queue, 0);
            assert_eq!(settled(&lane), []);
            // A push of the new epoch under way: its item may be queued before the slow one's.
            let new = lane.pushing();
            assert_ne!(new, slow);
            lane.sent_one();
            lane.pushed(slow);
            assert_eq!(settled(&lane), [(100, 3)], "2 sent, 1 more under way");
            lane.pushed(new);
        },
        None,
    );
}
