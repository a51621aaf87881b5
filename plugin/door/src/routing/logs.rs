//! The door's mirror of the router's logs: how far each filter's log has grown.
//!
//! The router keeps, per subscribed filter, a log of recent messages in segments; a reader that
//! falls more than the retained segments behind skips messages. The router does not say how far
//! behind a reader is, and does not slow publishers down. The door counts what it hands the
//! router for each filter (every publish goes through it), and each reader compares that with
//! the offsets of the messages the router forwards to it: a reader too far behind closes the
//! gates of the publishers filling its filter, as a full queue does, until it has caught up.
//!
//! A reader may also be too slow to notice: when publishers keep many cores busy, its task may
//! not run before the log has wrapped. So each reader also posts its place in the log
//! ([`ReadPosition`]), and a publisher checks, every [`CHECK_EVERY`] messages of a log, how
//! far the log's slowest reader is behind: past the limit it waits (reads nothing) until the
//! readers have caught up.
//!
//! Counting starts when the router has confirmed the filter's first subscription (from then on
//! the router's log exists); the few messages the router took before are not counted, so a
//! reader's lag is, if anything, under-estimated by a constant.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use weir_model::topic::TopicFilter;

/// Topics remembered with their matching logs, at most.
const TOPIC_CACHE: usize = 65_536;

/// A publisher checks a log's slowest reader once per this many messages of the log.
pub const CHECK_EVERY: u64 = 32;

/// One filter's log, as counted by the door.
#[derive(Debug)]
pub struct FilterLog {
    filter: TopicFilter,
    ready: AtomicBool,
    messages: AtomicU64,
    bytes: AtomicU64,
    /// Where each reader is: the offset of the next message it takes.
    readers: RwLock<Vec<Arc<AtomicU64>>>,
}

impl FilterLog {
    /// Marks the router's log as existing: publishes are counted from now on.
    pub fn ready(&self) {
        self.ready.store(true, Relaxed);
    }

    /// Messages counted since the log became ready.
    pub fn messages(&self) -> u64 {
        self.messages.load(Relaxed)
    }

    /// The average size of a message in the router's accounting (bytes).
    pub fn average_size(&self) -> u64 {
        let messages = self.messages.load(Relaxed).max(1);
        (self.bytes.load(Relaxed) / messages).max(1)
    }

    /// Registers a reader, at the end of the log as counted now.
    pub fn reader(self: &Arc<Self>) -> ReadPosition {
        let next = Arc::new(AtomicU64::new(self.messages()));
        write(&self.readers).push(next.clone());
        ReadPosition {
            log: self.clone(),
            next,
        }
    }

    /// Bytes the slowest reader is behind the end of the log (0 without readers).
    pub fn slowest_lag(&self) -> u64 {
        let floor = read(&self.readers).iter().map(|r| r.load(Relaxed)).min();
        floor.map_or(0, |floor| {
            self.messages().saturating_sub(floor) * self.average_size()
        })
    }
}

/// A reader's place in a log, posted for publishers to see; it leaves the log when dropped.
#[derive(Debug)]
pub struct ReadPosition {
    log: Arc<FilterLog>,
    next: Arc<AtomicU64>,
}

impl ReadPosition {
    /// The log.
    pub fn log(&self) -> &Arc<FilterLog> {
        &self.log
    }

    /// The reader took the message at `offset`.
    pub fn took(&self, offset: u64) {
        self.next.store(offset.saturating_add(1), Relaxed);
    }
}

impl Drop for ReadPosition {
    fn drop(&mut self) {
        write(&self.log.readers).retain(|r| !Arc::ptr_eq(r, &self.next));
    }
}

/// The logs a topic's publishes are appended to.
type Matching = Arc<[Arc<FilterLog>]>;

/// Every filter log the router keeps (the router never drops one).
#[derive(Debug, Default)]
pub struct Logs {
    filters: RwLock<HashMap<String, Arc<FilterLog>>>,
    topics: RwLock<HashMap<Box<str>, Matching>>,
}

impl Logs {
    /// The log of router filter `filter` (a shared subscription's filter without `$share/G/`).
    pub fn log(&self, filter: &str) -> Option<Arc<FilterLog>> {
        if let Some(log) = read(&self.filters).get(filter) {
            return Some(log.clone());
        }
        let parsed = TopicFilter::new(filter).ok()?;
        let mut filters = self.filters.write().unwrap_or_else(|e| e.into_inner());
        let log = filters
            .entry(filter.to_string())
            .or_insert_with(|| {
                Arc::new(FilterLog {
                    filter: parsed,
                    ready: AtomicBool::new(false),
                    messages: AtomicU64::new(0),
                    bytes: AtomicU64::new(0),
                    readers: RwLock::new(Vec::new()),
                })
            })
            .clone();
        drop(filters);
        // The new log may match topics already remembered.
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Some(log)
    }

    /// Counts a publish on `topic` with `payload_len` bytes of payload, handed to the router.
    /// Returns a log it went to whose slowest reader is more than `limit` bytes behind (checked
    /// every [`CHECK_EVERY`] messages of each log): the publisher should wait for it.
    pub fn append(&self, topic: &str, payload_len: usize, limit: u64) -> Option<Arc<FilterLog>> {
        // The router's size of a message: 4 + topic + payload.
        let size = (4 + topic.len() + payload_len) as u64;
        let matching = read(&self.topics).get(topic).cloned();
        let matching = matching.unwrap_or_else(|| self.remember(topic));
        let mut behind = None;
        for log in matching.iter() {
            if log.ready.load(Relaxed) {
                let count = log.messages.fetch_add(1, Relaxed) + 1;
                log.bytes.fetch_add(size, Relaxed);
                if count % CHECK_EVERY == 0 && log.slowest_lag() > limit {
                    behind = Some(log.clone());
                }
            }
        }
        behind
    }

    fn remember(&self, topic: &str) -> Matching {
        let matching: Matching = read(&self.filters)
            .values()
            .filter(|log| log.filter.matches(topic))
            .cloned()
            .collect();
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        if topics.len() >= TOPIC_CACHE {
            topics.clear();
        }
        topics.insert(topic.into(), matching.clone());
        matching
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

/// How far a reader may fall behind in a log whose router keeps `retained` bytes, before it
/// holds publishers back (`high`), and when it lets them go (`low`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LagLimits {
    /// Hold publishers back past this many bytes behind.
    pub high: u64,
    /// Let them go under this many.
    pub low: u64,
}

impl LagLimits {
    /// Limits for a router keeping `count` segments of `size` bytes per filter: it always keeps
    /// the `count - 1` newest full segments.
    pub fn for_router(size: usize, count: usize) -> LagLimits {
        let retained = (size as u64).saturating_mul(count.saturating_sub(1) as u64);
        LagLimits {
            high: retained / 3,
            low: retained / 6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_count_in_every_ready_log_they_match() {
        let logs = Logs::default();
        let all = logs.log("sensors/#").unwrap();
        let one = logs.log("sensors/+/temperature").unwrap();
        logs.append("sensors/a/temperature", 10, u64::MAX);
        assert_eq!(all.messages(), 0, "not ready yet");
        all.ready();
        one.ready();
        logs.append("sensors/a/temperature", 10, u64::MAX);
        logs.append("sensors/a/humidity", 20, u64::MAX);
        assert_eq!((all.messages(), one.messages()), (2, 1));
        assert_eq!(one.average_size(), 4 + 21 + 10);
        // A log added later matches topics seen before.
        let late = logs.log("+/a/humidity").unwrap();
        late.ready();
        logs.append("sensors/a/humidity", 20, u64::MAX);
        assert_eq!(late.messages(), 1);
        assert!(Arc::ptr_eq(&late, &logs.log("+/a/humidity").unwrap()));
    }

    #[test]
    fn a_publisher_learns_when_the_slowest_reader_is_too_far_behind() {
        let logs = Logs::default();
        let log = logs.log("a/#").unwrap();
        log.ready();
        let fast = log.reader();
        let slow = log.reader();
        let limit = 10 * (4 + 3 + 1);
        let mut told = None;
        for n in 0..CHECK_EVERY {
            fast.took(n);
            told = logs.append("a/b", 1, limit);
        }
        assert!(
            told.is_some(),
            "the slow reader is {CHECK_EVERY} messages behind"
        );
        slow.took(CHECK_EVERY - 1);
        assert_eq!(log.slowest_lag(), 0);
        drop((fast, slow));
        assert_eq!(log.slowest_lag(), 0, "no reader, nobody behind");
    }

    #[test]
    fn the_defaults_leave_room_behind_the_limit() {
        let limits = LagLimits::for_router(256 * 1024, 4);
        assert_eq!(limits.high, 256 * 1024);
        assert!(limits.low < limits.high);
        assert_eq!(LagLimits::for_router(1024, 1).high, 0);
    }
}
