//! The two waits of flow control, lock-free: a publisher's [`Gate`], which subscribers close and
//! release, and its [`Pace`], one batch in the router at a time.
//!
//! Both are a counter and a `Notify`. A waiter registers its interest (`enable`) *before* it
//! reads the counter, and the side that brings the counter to its goal notifies after the
//! change: so a change between the waiter's read and its sleep still wakes it. The model check
//! in `plugin/door/tests/gate_model.rs` runs this file under shuttle's schedules.

use super::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use super::sync::Notify;

/// A publisher's gate: open unless some subscriber holds it closed.
#[derive(Debug, Default)]
pub struct Gate {
    holders: AtomicUsize,
    opened: Notify,
}

impl Gate {
    /// Whether the publisher may go on.
    pub fn is_open(&self) -> bool {
        self.holders.load(Ordering::Acquire) == 0
    }

    /// Waits until the gate is open.
    pub async fn opened(&self) {
        loop {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if self.is_open() {
                return;
            }
            opened.await;
        }
    }

    pub(super) fn close(&self) {
        self.holders.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn release(&self) {
        if self.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.opened.notify_waiters();
        }
    }
}

/// One batch of a publisher's messages in the router at a time.
///
/// The router handles the events of all links in turns of up to 500, and serves subscribers
/// between turns: a publisher that queued many batches could append more than a filter's log
/// keeps before any subscriber reads. So each batch ends with a PINGREQ, and the next batch
/// goes once the router answered it (a round trip of the router's loop).
#[derive(Debug, Default)]
pub struct Pace {
    outstanding: AtomicU32,
    answered: Notify,
}

impl Pace {
    /// A batch (ending with a PINGREQ) went to the router.
    pub fn sent(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    /// The router answered a PINGREQ. False when no batch was waiting for it (the answer is
    /// someone else's).
    pub fn answered(&self) -> bool {
        let taken = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if taken {
            self.answered.notify_waiters();
        }
        taken
    }

    /// Waits until the router answered every batch sent.
    pub async fn settled(&self) {
        loop {
            let answered = self.answered.notified();
            tokio::pin!(answered);
            answered.as_mut().enable();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return;
            }
            answered.await;
        }
    }
}
