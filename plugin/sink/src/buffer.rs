//! The bounded buffer in front of an upstream sink (Kafka, OTLP) and the sink's counters.
//!
//! A graph's worker pushes results; the sink's own thread takes them in batches and delivers
//! them. When the buffer is full, [`WhenFull`] decides: wait for room (the graph slows down,
//! then its input queue applies its own back-pressure), or drop the oldest buffered message
//! and count it.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;
use weir_model::metrics::{write_family, DescriptorEncoder, MetricType};

/// What a sink does when its buffer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Wait for room: the graph's worker blocks, nothing is lost.
    #[default]
    Block,
    /// Drop the oldest buffered message to make room, and count it.
    DropOldest,
}

impl std::str::FromStr for WhenFull {
    type Err = String;

    fn from_str(text: &str) -> Result<WhenFull, String> {
        match text {
            "block" => Ok(WhenFull::Block),
            "drop-oldest" => Ok(WhenFull::DropOldest),
            other => Err(format!(
                "unknown policy `{other}`: expected `block` or `drop-oldest`"
            )),
        }
    }
}

/// One upstream sink's counters, shared by the graph side, the delivery thread and the
/// metrics endpoint.
pub struct SinkMetrics {
    /// The graph whose results the sink delivers.
    pub graph: String,
    /// The sink's kind: `kafka` or `otlp`.
    pub kind: &'static str,
    /// Where it delivers (bootstrap servers or endpoint), for logs.
    pub target: String,
    /// Messages the upstream acknowledged.
    pub delivered: AtomicU64,
    /// Deliveries attempted again after a failure (one per message per attempt).
    pub retried: AtomicU64,
    /// Messages dropped: the oldest ones when the buffer was full under `drop-oldest`, and
    /// those the upstream rejected for good.
    pub dropped: AtomicU64,
    /// Whether the last attempt to reach the upstream succeeded (assumed at start).
    pub up: AtomicBool,
    buffered: Box<dyn Fn() -> usize + Send + Sync>,
    in_flight: AtomicU64,
}

impl SinkMetrics {
    /// Messages waiting in the buffer plus those handed to the upstream client and not yet
    /// acknowledged.
    pub fn in_buffer(&self) -> u64 {
        (self.buffered)() as u64 + self.in_flight.load(Relaxed)
    }

    /// Records how many messages the delivery thread holds (taken from the buffer, not yet
    /// acknowledged or dropped).
    pub fn set_in_flight(&self, messages: usize) {
        self.in_flight.store(messages as u64, Relaxed);
    }

    /// Marks the upstream reachable or not; says so in the log when it changes.
    pub fn set_up(&self, up: bool, why: &str) {
        // Called per delivery: read before writing, so the shared line stays clean.
        if self.up.load(Relaxed) != up && self.up.swap(up, Relaxed) != up {
            if up {
                tracing::info!(graph = %self.graph, "{} sink {} is up", self.kind, self.target);
            } else {
                tracing::warn!(
                    graph = %self.graph,
                    "{} sink {} is down: {why}; buffering ({} waiting)",
                    self.kind,
                    self.target,
                    self.in_buffer()
                );
            }
        }
    }

    /// A one-line summary for logs.
    pub fn summary(&self) -> String {
        format!(
            "{} sink {}: {}, delivered {}, retried {}, dropped {}, in buffer {}",
            self.kind,
            self.target,
            if self.up.load(Relaxed) { "up" } else { "down" },
            self.delivered.load(Relaxed),
            self.retried.load(Relaxed),
            self.dropped.load(Relaxed),
            self.in_buffer()
        )
    }
}

/// Writes `sinks`' families (`weir_sink_*`), from the registry's collector of running graphs.
///
/// ```
/// use weir_model::metrics::{text, Collector, DescriptorEncoder, Registry};
///
/// #[derive(Debug)]
/// struct NoSinks;
///
/// impl Collector for NoSinks {
///     fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
///         weir_sink::buffer::encode(&[], &mut encoder)
///     }
/// }
///
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(NoSinks));
/// assert!(text(&registry).contains("# TYPE weir_sink_delivered_total counter"));
/// ```
pub fn encode(sinks: &[Arc<SinkMetrics>], encoder: &mut DescriptorEncoder) -> fmt::Result {
    type Read = fn(&SinkMetrics) -> u64;
    let families: [(&str, MetricType, &str, Read); 5] = [
        (
            "delivered",
            MetricType::Counter,
            "Messages the upstream acknowledged.",
            |s| s.delivered.load(Relaxed),
        ),
        (
            "retried",
            MetricType::Counter,
            "Delivery attempts repeated after a failure.",
            |s| s.retried.load(Relaxed),
        ),
        (
            "dropped",
            MetricType::Counter,
            "Messages dropped: oldest on a full buffer, or rejected by the upstream.",
            |s| s.dropped.load(Relaxed),
        ),
        (
            "in_buffer",
            MetricType::Gauge,
            "Messages buffered or in flight.",
            |s| s.in_buffer(),
        ),
        (
            "up",
            MetricType::Gauge,
            "1 when the last attempt to reach the upstream succeeded.",
            |s| u64::from(s.up.load(Relaxed)),
        ),
    ];
    for (name, kind, help, read) in families {
        let series = sinks.iter().map(|sink| {
            let labels = [("graph", sink.graph.as_str()), ("sink", sink.kind)];
            (labels, read(sink))
        });
        write_family(encoder, &format!("weir_sink_{name}"), help, kind, series)?;
    }
    Ok(())
}

/// The graph side of a sink's buffer.
pub struct SinkBuffer<T> {
    sender: Sender<T>,
    oldest: Receiver<T>,
    when_full: WhenFull,
    metrics: Arc<SinkMetrics>,
}

/// The delivery side of a sink's buffer.
pub struct BufferReader<T> {
    receiver: Receiver<T>,
    closed: std::cell::Cell<bool>,
}

/// A buffer of `capacity` messages for the sink of `graph`, and its counters.
///
/// ```
/// use weir_sink::buffer::{buffer, WhenFull};
/// let (buffer, reader, metrics) = buffer::<u32>("g", "kafka", "127.0.0.1:9092", 2, WhenFull::DropOldest);
/// for n in 0..3 {
///     buffer.push(n);
/// }
/// assert_eq!(metrics.dropped.load(std::sync::atomic::Ordering::Relaxed), 1);
/// assert_eq!(reader.take(10, std::time::Duration::ZERO), vec![1, 2]);
/// ```
pub fn buffer<T: Send + 'static>(
    graph: &str,
    kind: &'static str,
    target: &str,
    capacity: usize,
    when_full: WhenFull,
) -> (SinkBuffer<T>, BufferReader<T>, Arc<SinkMetrics>) {
    let (sender, receiver) = crossbeam_channel::bounded(capacity.max(1));
    let length = receiver.clone();
    let metrics = Arc::new(SinkMetrics {
        graph: graph.to_string(),
        kind,
        target: target.to_string(),
        delivered: AtomicU64::new(0),
        retried: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        up: AtomicBool::new(true),
        buffered: Box::new(move || length.len()),
        in_flight: AtomicU64::new(0),
    });
    (
        SinkBuffer {
            sender,
            oldest: receiver.clone(),
            when_full,
            metrics: metrics.clone(),
        },
        BufferReader {
            receiver,
            closed: std::cell::Cell::new(false),
        },
        metrics,
    )
}

impl<T> SinkBuffer<T> {
    /// Buffers `message`, applying the policy when full. Returns whether it was buffered (the
    /// buffer lives as long as its counters, so it always is).
    pub fn push(&self, mut message: T) -> bool {
        loop {
            match self.sender.try_send(message) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => match self.when_full {
                    WhenFull::Block => return self.sender.send(back).is_ok(),
                    WhenFull::DropOldest => {
                        if self.oldest.try_recv().is_ok() {
                            self.metrics.dropped.fetch_add(1, Relaxed);
                        }
                        message = back;
                    }
                },
            }
        }
    }
}

impl<T> BufferReader<T> {
    /// Up to `max` messages, waiting at most `wait` for the first one. Empty when none came.
    pub fn take(&self, max: usize, wait: Duration) -> Vec<T> {
        let mut batch = Vec::new();
        let first = if wait.is_zero() {
            self.receiver.try_recv().map_err(|e| e.is_disconnected())
        } else {
            self.receiver
                .recv_timeout(wait)
                .map_err(|e| e.is_disconnected())
        };
        let first = match first {
            Ok(first) => Some(first),
            Err(disconnected) => {
                self.closed.set(disconnected);
                None
            }
        };
        if let Some(first) = first {
            batch.push(first);
            batch.extend(self.receiver.try_iter().take(max.saturating_sub(1)));
        }
        batch
    }
}

impl<T> BufferReader<T> {
    /// Whether the graph side is gone and everything it buffered was taken (known after a
    /// [`BufferReader::take`] came back empty).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

/// A sink's delivery thread: it ends once its buffer is closed and everything in it was
/// delivered (or dropped and counted).
pub struct SinkThread {
    done: Receiver<()>,
}

impl SinkThread {
    /// Runs `work` on a thread named `name`.
    pub fn spawn(
        name: String,
        work: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<SinkThread> {
        let (ended, done) = crossbeam_channel::bounded::<()>(0);
        std::thread::Builder::new().name(name).spawn(move || {
            let _ended = ended;
            work();
        })?;
        Ok(SinkThread { done })
    }

    /// Waits at most `patience` for the thread to end; whether it did.
    pub fn wait(&self, patience: Duration) -> bool {
        matches!(
            self.done.recv_timeout(patience),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        )
    }
}

/// How a sink buffers and retries (`sink.buffer`, `sink.when_full`, `sink.retry_*` in weir.yaml).
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// Messages the buffer holds.
    pub buffer: usize,
    /// What happens when it is full.
    pub when_full: WhenFull,
    /// First wait after a failure; doubles on each failure in a row.
    pub retry_initial: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
}

impl Default for Delivery {
    fn default() -> Delivery {
        Delivery {
            buffer: 10_000,
            when_full: WhenFull::Block,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// Exponential backoff between delivery attempts.
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(delivery: &Delivery) -> Backoff {
        Backoff {
            initial: delivery.retry_initial,
            max: delivery.retry_max.max(delivery.retry_initial),
            next: delivery.retry_initial,
        }
    }

    /// The wait before the next attempt; doubles the one after.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}
