//! A client's queue of messages waiting to be written to it, bounded as mosquitto bounds it
//! (`max_queued_messages`, `max_queued_bytes`; 0 means no limit).
//!
//! Past the limit, what happens depends on whether the client is still reading. A reading
//! client's queue takes a message over the limit and asks its caller to push back on the
//! message's publisher: the messages already on their way when the publisher stops are not
//! lost. (What can still arrive is bounded: a publisher held back sends nothing more, and the
//! router keeps a bounded log per filter.) A client that stopped reading (stalled) loses what
//! passes its limit, and each loss is counted by the caller.

use std::collections::VecDeque;

/// A queue's limits. Zero: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    /// Messages.
    pub messages: usize,
    /// Bytes of topic and payload.
    pub bytes: usize,
}

impl Limits {
    fn over(limit: usize, value: usize) -> bool {
        limit != 0 && value >= limit
    }
}

/// What [`DeliveryQueue::push`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// Queued within the limits.
    Queued,
    /// Queued past the limit: push back on the message's publisher.
    OverLimit,
    /// Not queued: count it as dropped.
    Dropped,
}

/// A bounded queue of `T`, each with its size in bytes.
///
/// ```
/// use weir_door::queue::{Admitted, DeliveryQueue, Limits};
/// let mut queue = DeliveryQueue::new(Limits { messages: 2, bytes: 0 });
/// assert_eq!(queue.push("a", 1, false), Admitted::Queued);
/// assert_eq!(queue.push("b", 1, false), Admitted::Queued);
/// assert_eq!(queue.push("c", 1, false), Admitted::OverLimit); // still reading: kept
/// assert_eq!(queue.push("d", 1, true), Admitted::Dropped); // stalled: dropped
/// assert_eq!(queue.pop(), Some("a"));
/// ```
#[derive(Debug)]
pub struct DeliveryQueue<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    limits: Limits,
}

impl<T> DeliveryQueue<T> {
    /// An empty queue with `limits`.
    pub fn new(limits: Limits) -> Self {
        DeliveryQueue {
            items: VecDeque::new(),
            bytes: 0,
            limits,
        }
    }

    /// A queue with `limits` holding `items` (whatever their number), `size` telling each
    /// one's bytes.
    pub fn from_items(limits: Limits, items: VecDeque<T>, size: impl Fn(&T) -> usize) -> Self {
        let items: VecDeque<(T, usize)> = items
            .into_iter()
            .map(|item| {
                let bytes = size(&item);
                (item, bytes)
            })
            .collect();
        DeliveryQueue {
            bytes: items.iter().map(|(_, bytes)| bytes).sum(),
            items,
            limits,
        }
    }

    /// A copy of the items, oldest first (the queue keeps them).
    pub fn cloned_items(&self) -> VecDeque<T>
    where
        T: Clone,
    {
        self.items.iter().map(|(item, _)| item.clone()).collect()
    }

    /// Takes every message out, oldest first.
    pub fn take_items(&mut self) -> VecDeque<T> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
            .into_iter()
            .map(|(item, _)| item)
            .collect()
    }

    /// Queues `item` of `size` bytes, unless the limits say otherwise (see the module docs).
    pub fn push(&mut self, item: T, size: usize, stalled: bool) -> Admitted {
        let (count, bytes) = (self.items.len(), self.bytes.saturating_add(size));
        let over = Limits::over(self.limits.messages, count)
            || (self.bytes > 0 && self.limits.bytes != 0 && bytes > self.limits.bytes);
        let admitted = match (over, stalled) {
            (false, _) => Admitted::Queued,
            (true, false) => Admitted::OverLimit,
            (true, true) => Admitted::Dropped,
        };
        if admitted != Admitted::Dropped {
            self.items.push_back((item, size));
            self.bytes = bytes;
        }
        admitted
    }

    /// Takes the oldest message.
    pub fn pop(&mut self) -> Option<T> {
        let (item, size) = self.items.pop_front()?;
        self.bytes -= size;
        Some(item)
    }

    /// Puts a message back at the front (it could not be sent yet).
    pub fn push_front(&mut self, item: T, size: usize) {
        self.bytes = self.bytes.saturating_add(size);
        self.items.push_front((item, size));
    }

    /// Messages queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether the queue is down to half its limits: publishers held back may go on.
    pub fn has_room(&self) -> bool {
        let half = |limit: usize, value: usize| limit == 0 || value <= limit / 2;
        half(self.limits.messages, self.items.len()) && half(self.limits.bytes, self.bytes)
    }

    /// Empties the queue, returning how many messages it held.
    pub fn clear(&mut self) -> usize {
        let count = self.items.len();
        self.items.clear();
        self.bytes = 0;
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_client_takes_what_passes_its_limit_and_pushes_back() {
        let mut queue = DeliveryQueue::new(Limits {
            messages: 1000,
            bytes: 0,
        });
        let outcomes: Vec<Admitted> = (0..3000).map(|i| queue.push(i, 10, false)).collect();
        assert!(outcomes[..1000].iter().all(|a| *a == Admitted::Queued));
        assert!(outcomes[1000..].iter().all(|a| *a == Admitted::OverLimit));
        assert_eq!(queue.len(), 3000);
        assert!(!queue.has_room());
        while queue.len() > 500 {
            queue.pop();
        }
        assert!(queue.has_room());
    }

    #[test]
    fn a_stalled_client_loses_what_passes_its_limit() {
        let mut queue = DeliveryQueue::new(Limits {
            messages: 3,
            bytes: 0,
        });
        let dropped = (0..10)
            .filter(|i| queue.push(*i, 1, true) == Admitted::Dropped)
            .count();
        assert_eq!((queue.len(), dropped), (3, 7));
    }

    #[test]
    fn bytes_are_bounded_too_and_zero_means_unlimited() {
        let mut queue = DeliveryQueue::new(Limits {
            messages: 0,
            bytes: 100,
        });
        assert_eq!(queue.push("a", 60, true), Admitted::Queued);
        assert_eq!(queue.push("b", 60, true), Admitted::Dropped);
        // One message larger than the limit still goes into an empty queue.
        queue.pop();
        assert_eq!(queue.push("c", 500, true), Admitted::Queued);
        let mut unbounded = DeliveryQueue::new(Limits::default());
        for i in 0..100_000 {
            assert_eq!(unbounded.push(i, 100, true), Admitted::Queued);
        }
    }
}
