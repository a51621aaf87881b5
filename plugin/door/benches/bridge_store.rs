//! The store behind bridges' queues, against the alternative Weir already has: the same queue
//! load on fjall and on redb (appends in groups of 256, each group synced to disk; reads from
//! the head with removals, not synced; both in turn), then what a commit of the bridge's own
//! queue costs a publisher (one message, and a group of 256).
//!
//! Run: `cargo bench -p weir-door --bench bridge_store` (it writes under `target/`).

use bytes::Bytes;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_door::bridge::config::QueueLimits;
use weir_door::bridge::metrics::BridgeMetrics;
use weir_door::bridge::queue::{BridgeStore, Outbox, Queued};

const MESSAGES: u64 = 200_000;
const GROUP: u64 = 256;
const READ: usize = 1000;

/// A message as a bridge queues it: a topic of ~30 bytes and 128 bytes of payload.
fn value(n: u64) -> Vec<u8> {
    message(n).encode()
}

fn message(n: u64) -> Queued {
    Queued {
        topic: Bytes::from(format!("plant1/sensors/dev{}/temperature", n % 100)),
        payload: Bytes::from(vec![b'x'; 128]),
        qos: 1,
        retain: false,
        properties: None,
        queued_at: 1_700_000_000_000 + n,
    }
}

fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => bytes_under(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Messages per second, appends, drain, both in turn, and bytes per message after the appends.
type Figures = (f64, f64, f64, u64);

fn rate(count: u64, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

fn fjall(dir: &Path) -> Figures {
    use fjall::{Database, KeyspaceCreateOptions, PersistMode};
    let db = Database::builder(dir).cache_size(4 << 20).open().unwrap();
    let ks = db
        .keyspace("q", || {
            KeyspaceCreateOptions::default().max_memtable_size(8 << 20)
        })
        .unwrap();
    let key = |n: u64| n.to_be_bytes();
    let started = Instant::now();
    for first in (0..MESSAGES).step_by(GROUP as usize) {
        let mut batch = db.batch();
        for n in first..first + GROUP {
            batch.insert(&ks, key(n), value(n));
        }
        batch.commit().unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
    }
    let append = rate(MESSAGES, started.elapsed());
    let disk = bytes_under(dir) / MESSAGES;
    let started = Instant::now();
    let mut head = 0u64;
    while head < MESSAGES {
        let mut batch = db.batch();
        for item in ks.range(key(head)..).take(READ) {
            let (k, _) = item.into_inner().unwrap();
            head = u64::from_be_bytes(k[..8].try_into().unwrap()) + 1;
            batch.remove_weak(&ks, k);
        }
        batch.commit().unwrap();
    }
    let drain = rate(MESSAGES, started.elapsed());
    let started = Instant::now();
    for first in (MESSAGES..2 * MESSAGES).step_by(GROUP as usize) {
        let mut batch = db.batch();
        for n in first..first + GROUP {
            batch.insert(&ks, key(n), value(n));
        }
        batch.commit().unwrap();
        db.persist(PersistMode::SyncAll).unwrap();
        let mut batch = db.batch();
        for item in ks.range(key(first)..).take(GROUP as usize) {
            batch.remove_weak(&ks, item.key().unwrap());
        }
        batch.commit().unwrap();
    }
    (append, drain, rate(MESSAGES, started.elapsed()), disk)
}

fn redb(dir: &Path) -> Figures {
    use redb::{Database, Durability, ReadableDatabase, TableDefinition};
    const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("q");
    let db = Database::builder()
        .set_cache_size(4 << 20)
        .create(dir.join("q.redb"))
        .unwrap();
    let append_group = |first: u64| {
        let write = db.begin_write().unwrap();
        {
            let mut table = write.open_table(QUEUE).unwrap();
            for n in first..first + GROUP {
                table.insert(n, value(n).as_slice()).unwrap();
            }
        }
        write.commit().unwrap();
    };
    let remove = |range: std::ops::Range<u64>| {
        let mut write = db.begin_write().unwrap();
        write.set_durability(Durability::None).unwrap();
        {
            let mut table = write.open_table(QUEUE).unwrap();
            table.retain_in(range, |_, _| false).unwrap();
        }
        write.commit().unwrap();
    };
    let started = Instant::now();
    for first in (0..MESSAGES).step_by(GROUP as usize) {
        append_group(first);
    }
    let append = rate(MESSAGES, started.elapsed());
    let disk = bytes_under(dir) / MESSAGES;
    let started = Instant::now();
    let mut head = 0u64;
    while head < MESSAGES {
        let read = db.begin_read().unwrap();
        let table = read.open_table(QUEUE).unwrap();
        let mut last = head;
        for item in table.range(head..).unwrap().take(READ) {
            let (k, _) = item.unwrap();
            last = k.value();
        }
        drop((table, read));
        remove(head..last + 1);
        head = last + 1;
    }
    let drain = rate(MESSAGES, started.elapsed());
    let started = Instant::now();
    for first in (MESSAGES..2 * MESSAGES).step_by(GROUP as usize) {
        append_group(first);
        remove(first..first + GROUP);
    }
    (append, drain, rate(MESSAGES, started.elapsed()), disk)
}

/// The bridge queue's own commits: a publisher's wait for `size` messages to be on disk.
fn commits(dir: &Path, size: u64, rounds: usize) -> (Duration, Duration) {
    let store = BridgeStore::open(dir).unwrap();
    let metrics = Arc::new(BridgeMetrics::new("bench", Default::default()));
    let (queue, _) = store
        .queue("bench", &QueueLimits::default(), metrics)
        .unwrap();
    let mut took: Vec<Duration> = (0..rounds)
        .map(|round| {
            let mut outbox = Outbox::default();
            for n in 0..size {
                outbox.push(queue.clone(), message(round as u64 * size + n));
            }
            let started = Instant::now();
            outbox.submit().unwrap().wait_blocking().unwrap();
            started.elapsed()
        })
        .collect();
    took.sort();
    (took[rounds / 2], took[rounds * 99 / 100])
}

fn main() {
    let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-bridge-store");
    let _ = std::fs::remove_dir_all(&base);
    let dir = |name: &str| {
        let dir = base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    let rows = [
        ("fjall", fjall(&dir("fjall"))),
        ("redb", redb(&dir("redb"))),
    ];
    println!("{MESSAGES} messages of ~170 bytes, appends synced every {GROUP}:");
    println!(
        "{:<8} {:>14} {:>14} {:>14} {:>10}",
        "store", "append msg/s", "drain msg/s", "both msg/s", "B/msg"
    );
    for (name, (append, drain, both, disk)) in rows {
        println!("{name:<8} {append:>14.0} {drain:>14.0} {both:>14.0} {disk:>10}");
    }
    for size in [1, GROUP] {
        let (p50, p99) = commits(&dir(&format!("queue-{size}")), size, 2000);
        println!("bridge queue commit of {size} message(s): p50 {p50:?}, p99 {p99:?}");
    }
    let _ = std::fs::remove_dir_all(&base);
}
