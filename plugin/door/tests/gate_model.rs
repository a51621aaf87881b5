//! Flow control's two waits (`plugin/door/src/routing/flow/gate.rs`), model-checked with shuttle.
//!
//! The gate's source file is compiled here against shuttle's atomics and a model of tokio's
//! `Notify` on shuttle's lock (the `sync` module it imports from its parent), so what is
//! checked is the code Weir runs,
//! with its interleavings chosen by shuttle (PCT, which finds a bug of depth 3 with a known
//! probability per run, and at random). The promises checked:
//! - a publisher waiting on its gate wakes once the last subscriber holding it releases it,
//!   whatever the order of holds, releases and the publisher's own check (a lost wake-up is a
//!   deadlock, which shuttle reports), and it never wakes to a gate still held;
//! - a publisher waiting on its pace wakes once the router answered every batch, and each
//!   answer is taken by exactly one batch, even beside answers that were someone else's.

/// What the gate imports as `super::sync`: shuttle's atomics, and a `Notify` with tokio's
/// guarantees built on shuttle's lock, so that registering a waiter and notifying are
/// scheduling points too (tokio's own takes a lock shuttle cannot see, and a wake-up lost
/// between a publisher's check and its registration would go unexplored).
mod sync {
    pub use super::notify::Notify;
    pub use shuttle::sync::atomic;
}

/// tokio's `Notify`, as far as the gate uses it: `notify_waiters` completes every `Notified`
/// made before it, polled or not (tokio's documented promise), and none made after.
mod notify {
    use shuttle::sync::Mutex;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    #[derive(Debug, Default)]
    pub struct Notify {
        state: Mutex<State>,
    }

    #[derive(Debug, Default)]
    struct State {
        /// How many times `notify_waiters` was called.
        calls: u64,
        waiters: Vec<Waker>,
    }

    impl Notify {
        pub fn notified(&self) -> Notified<'_> {
            let calls = self.state.lock().unwrap().calls;
            Notified {
                notify: self,
                calls,
            }
        }

        pub fn notify_waiters(&self) {
            let mut state = self.state.lock().unwrap();
            state.calls += 1;
            for waker in state.waiters.drain(..) {
                waker.wake();
            }
        }
    }

    pub struct Notified<'a> {
        notify: &'a Notify,
        calls: u64,
    }

    impl Notified<'_> {
        /// Registration is at creation already in this model.
        pub fn enable(self: Pin<&mut Self>) -> bool {
            false
        }
    }

    impl Future for Notified<'_> {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let mut state = self.notify.state.lock().unwrap();
            if state.calls != self.calls {
                return Poll::Ready(());
            }
            state.waiters.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

#[path = "../src/routing/flow/gate.rs"]
mod gate;

use gate::{Gate, Pace};
use shuttle::sync::atomic::{AtomicU32, Ordering};
use shuttle::sync::Arc;

/// A gate held by `holders` subscribers, each releasing it from a thread of its own, while its
/// publisher waits on it. With `rehold`, the first subscriber holds it once more on the way (a
/// queue that filled again) and releases it again.
///
/// Returns whether the publisher woke to an open gate, once every thread is done; the gate
/// must then be open. A publisher that never wakes is a deadlock, which fails the check.
fn subscribers_release_a_waiting_publisher(holders: usize, rehold: bool) -> bool {
    let gate = Arc::new(Gate::default());
    for _ in 0..holders {
        gate.close();
    }
    let publisher = {
        let gate = gate.clone();
        shuttle::future::spawn(async move {
            gate.opened().await;
            gate.is_open()
        })
    };
    let subscribers: Vec<_> = (0..holders)
        .map(|n| {
            let gate = gate.clone();
            shuttle::thread::spawn(move || {
                if rehold && n == 0 {
                    gate.close();
                    gate.release();
                }
                gate.release();
            })
        })
        .collect();
    for subscriber in subscribers {
        subscriber.join().unwrap();
    }
    let woke_open = shuttle::future::block_on(publisher).unwrap();
    assert!(gate.is_open(), "every holder released the gate");
    woke_open
}

/// `batches` batches sent, the router answering each from a thread of its own, and one stray
/// answer (a PINGREQ that was not a batch's): the publisher wakes, and exactly `batches`
/// answers were taken.
fn the_router_answers_a_waiting_publisher(batches: u32) {
    let pace = Arc::new(Pace::default());
    for _ in 0..batches {
        pace.sent();
    }
    let taken = Arc::new(AtomicU32::new(0));
    let publisher = {
        let pace = pace.clone();
        shuttle::future::spawn(async move { pace.settled().await })
    };
    let answers: Vec<_> = (0..=batches)
        .map(|_| {
            let (pace, taken) = (pace.clone(), taken.clone());
            shuttle::thread::spawn(move || {
                if pace.answered() {
                    taken.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for answer in answers {
        answer.join().unwrap();
    }
    shuttle::future::block_on(publisher).unwrap();
    assert_eq!(taken.load(Ordering::SeqCst), batches);
    assert!(!pace.answered(), "nothing is outstanding any more");
}

#[test]
fn a_gate_held_by_several_subscribers_wakes_its_publisher_once_all_release() {
    let run = || {
        subscribers_release_a_waiting_publisher(2, true);
    };
    shuttle::check_pct(run, 10_000, 3);
    shuttle::check_random(
        || {
            subscribers_release_a_waiting_publisher(3, true);
        },
        10_000,
    );
}

#[test]
fn a_publisher_never_wakes_to_a_held_gate() {
    let run = |holders| {
        move || {
            assert!(
                subscribers_release_a_waiting_publisher(holders, false),
                "the publisher woke to a gate still held"
            )
        }
    };
    shuttle::check_pct(run(2), 10_000, 3);
    shuttle::check_random(run(3), 10_000);
}

#[test]
fn a_paced_publisher_wakes_once_every_batch_is_answered() {
    shuttle::check_pct(|| the_router_answers_a_waiting_publisher(2), 10_000, 3);
    shuttle::check_random(|| the_router_answers_a_waiting_publisher(3), 10_000);
}
