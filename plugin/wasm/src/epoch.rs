//! The clock that bounds each module call: a thread that advances the engine's epoch every tick
//! while some call runs, so a call's deadline (in ticks) interrupts it, and sleeps when none
//! does, so an idle broker is not woken hundreds of times a second.
//!
//! Each instance has a [`CallFlag`] of its own, set while one of its calls runs (its own cache
//! line: calls on different workers do not contend). The ticker looks at the flags after each
//! tick; after [`IDLE_TICKS`] ticks with none set it says it sleeps and parks. A call that
//! begins sees that and wakes it. Both sides write their own flag, then read the other's,
//! sequentially consistent: either the call sees the ticker asleep and wakes it, or the ticker
//! sees the call and does not sleep.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};
use wasmtime::Engine;

/// Ticks with no call running before the ticker sleeps.
const IDLE_TICKS: u32 = 20;

/// What the ticker and the calls share.
#[derive(Default)]
struct Shared {
    /// One flag per instance, set while one of its calls runs.
    flags: Mutex<Vec<Weak<AtomicBool>>>,
    /// Set by the ticker before it parks; cleared by whoever wakes it.
    asleep: AtomicBool,
    stop: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Shared {
    /// Whether some call runs now (flags of dropped instances are forgotten on the way).
    fn any_running(&self) -> bool {
        let mut flags = self.flags.lock().unwrap_or_else(|e| e.into_inner());
        let mut running = false;
        flags.retain(|flag| match flag.upgrade() {
            Some(flag) => {
                running |= flag.load(SeqCst);
                true
            }
            None => false,
        });
        running
    }

    fn wake(&self) {
        if self.asleep.load(SeqCst) && self.asleep.swap(false, SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }
}

/// Advances an engine's epoch while calls run (dropping it stops the thread).
pub(crate) struct EpochTicker {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the thread, ticking every `tick`.
    pub(crate) fn start(engine: Engine, tick: Duration) -> std::io::Result<EpochTicker> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn({
                let shared = shared.clone();
                move || run(&engine, &shared, tick)
            })?;
        let _ = shared.thread.set(thread.thread().clone());
        Ok(EpochTicker {
            shared,
            thread: Some(thread),
        })
    }

    /// A flag for one more instance.
    pub(crate) fn flag(&self) -> CallFlag {
        let flag = Arc::new(AtomicBool::new(false));
        let mut flags = self.shared.flags.lock().unwrap_or_else(|e| e.into_inner());
        flags.push(Arc::downgrade(&flag));
        CallFlag {
            flag,
            shared: self.shared.clone(),
        }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// The ticker's loop: tick while calls run, park when none has for [`IDLE_TICKS`] ticks.
fn run(engine: &Engine, shared: &Shared, tick: Duration) {
    let mut idle = 0;
    while !shared.stop.load(SeqCst) {
        sleep(tick, shared);
        engine.increment_epoch();
        if shared.any_running() {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < IDLE_TICKS {
            continue;
        }
        idle = 0;
        shared.asleep.store(true, SeqCst);
        if shared.any_running() {
            shared.asleep.store(false, SeqCst);
            continue;
        }
        while shared.asleep.load(SeqCst) && !shared.stop.load(SeqCst) {
            std::thread::park();
        }
    }
}

/// Sleeps `tick` (an early unpark does not shorten it), or until the ticker stops.
fn sleep(tick: Duration, shared: &Shared) {
    let until = Instant::now() + tick;
    loop {
        let now = Instant::now();
        if now >= until || shared.stop.load(SeqCst) {
            return;
        }
        std::thread::park_timeout(until - now);
    }
}

/// One instance's flag: set while one of its calls runs.
pub(crate) struct CallFlag {
    flag: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl CallFlag {
    /// Says a call begins (waking the ticker if it sleeps) until the guard is dropped.
    pub(crate) fn begin(&self) -> Running {
        self.flag.store(true, SeqCst);
        self.shared.wake();
        Running(self.flag.clone())
    }
}

/// A call running; dropped when it returns (or unwinds).
pub(crate) struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (at most 5 s) for `condition`.
    fn eventually(condition: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !condition() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    #[test]
    fn ticks_while_a_call_runs_and_sleeps_when_none_does() {
        let engine = Engine::default();
        let ticker = EpochTicker::start(engine, Duration::from_millis(1)).expect("thread");
        let flag = ticker.flag();
        assert!(
            eventually(|| ticker.shared.asleep.load(SeqCst)),
            "the ticker sleeps with no call running"
        );
        let running = flag.begin();
        assert!(
            !ticker.shared.asleep.load(SeqCst),
            "a call that begins wakes the ticker"
        );
        std::thread::sleep(Duration::from_millis(3 * IDLE_TICKS as u64));
        assert!(
            !ticker.shared.asleep.load(SeqCst),
            "the ticker does not sleep while a call runs"
        );
        drop(running);
        assert!(eventually(|| ticker.shared.asleep.load(SeqCst)));
    }

    #[test]
    fn a_dropped_instance_is_forgotten() {
        let ticker = EpochTicker::start(Engine::default(), Duration::from_millis(1)).unwrap();
        let flag = ticker.flag();
        drop(flag);
        assert!(!ticker.shared.any_running());
        assert!(ticker.shared.flags.lock().unwrap().is_empty());
    }
}
