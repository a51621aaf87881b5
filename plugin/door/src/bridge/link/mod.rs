//! A bridge's link to its remote: when to connect (`start`), to which address (failover), how
//! long to wait after a failure (`restart_timeout_s`), and what to say about it. One connected
//! session at a time is [`session`]'s.
//!
//! Addresses: with `round_robin: false` the first is the primary; a failure moves to the next,
//! and while on another the primary is probed every [`PRIMARY_PROBE`] and taken back as soon as
//! it answers. With `round_robin: true` the link stays on whichever address works. A failure is
//! logged when it differs from the previous one (each retry of the same failure only at debug
//! level), and a full queue never stops the link from reconnecting.

mod session;
mod window;

use super::config::{BridgeConfig, Start};
use super::local::{LocalPublisher, Work};
use super::metrics::BridgeMetrics;
use super::queue::{volatile::Volatile, Queue};
use crate::DoorHandle;
use bytes::Bytes;
use session::Outcome;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the primary address is probed while the link is on another (as mosquitto does).
pub const PRIMARY_PROBE: Duration = Duration::from_secs(5);

/// Everything a bridge's link works with.
pub struct Link {
    /// The bridge's configuration.
    pub config: Arc<BridgeConfig>,
    /// TLS to the remote, when configured.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// QoS 1 and 2 messages for the remote.
    pub queue: Arc<Queue>,
    /// QoS 0 messages for the remote.
    pub volatile: Arc<Volatile>,
    /// The bridge's counters.
    pub metrics: Arc<BridgeMetrics>,
    /// The broker, for `$SYS` and retained messages.
    pub door: DoorHandle,
    /// Publishes what comes in.
    pub local: LocalPublisher,
    /// Cancelled to stop the link (a clean disconnect).
    pub stop: CancellationToken,
    /// Asks the link to leave its shared subscriptions, and says when it has.
    pub leave: Leave,
}

/// Leaving a bridge's shared subscriptions (`$share/...` `in` lines) ahead of a stop, so that
/// the remote gives this bridge's share to the other members: UNSUBSCRIBE, then every message
/// the remote sent acknowledged once handed over here, while the link stays up for what goes
/// out. A link asked to leave does not subscribe to its shared lines again.
#[derive(Debug, Clone, Default)]
pub struct Leave {
    /// Cancelled to ask the link to leave.
    pub asked: CancellationToken,
    /// Cancelled by the link once it has left (the remote answered the UNSUBSCRIBE and every
    /// message it sent is acknowledged), or lost its connection after being asked.
    pub done: CancellationToken,
}

/// What carries over from one connection to the next.
pub(crate) struct LinkState {
    /// Messages below this sequence number may have been sent (they go again with DUP).
    sent_before: u64,
    /// The remote has not refused the bridge bit.
    try_private: bool,
    /// The address in use, by index.
    current: usize,
    /// The last wait after a failure.
    previous_wait: Duration,
    /// The last failure reported.
    reported: Option<String>,
}

impl Link {
    /// Runs the link until it is stopped.
    pub async fn run(self) {
        let mut state = LinkState {
            // What an earlier run queued may have been sent before it stopped.
            sent_before: self.queue.end(),
            try_private: self.config.try_private,
            current: 0,
            previous_wait: Duration::ZERO,
            reported: None,
        };
        self.notify_local(false);
        let mut first = true;
        loop {
            if !self.wait_for_start(first).await {
                break;
            }
            first = false;
            let index = state.current;
            let address = self.config.addresses[index].clone();
            let wait = match session::run(&self, &address, index, &mut state).await {
                Outcome::Stopped => break,
                Outcome::Idle => {
                    tracing::info!(bridge = %self.config.name, "idle for the lazy start's idle_timeout_s: disconnected until the queue reaches its threshold");
                    continue;
                }
                Outcome::Primary => {
                    tracing::info!(bridge = %self.config.name, "the primary address {} answers again: moving back to it", self.config.addresses[0]);
                    state.current = 0;
                    continue;
                }
                Outcome::RetryPlain => continue,
                Outcome::Lost(why) => {
                    self.report(&mut state, format!("link to {address} lost: {why}"));
                    state.previous_wait = Duration::ZERO;
                    self.next_address(&mut state);
                    self.config.restart.first()
                }
                Outcome::Failed(why) => {
                    self.report(&mut state, why);
                    self.next_address(&mut state);
                    let wait = self.config.restart.next(state.previous_wait, random());
                    state.previous_wait = wait;
                    wait
                }
            };
            if self.config.start == Start::Once {
                tracing::warn!(bridge = %self.config.name, "start: once: the link is not made again");
                self.stop.cancelled().await;
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.stop.cancelled() => break,
            }
        }
    }

    /// Logs `failure` when it is not the one logged last.
    fn report(&self, state: &mut LinkState, failure: String) {
        if state.reported.as_deref() == Some(failure.as_str()) {
            tracing::debug!(bridge = %self.config.name, "{failure} (again)");
        } else {
            tracing::warn!(bridge = %self.config.name, "{failure}; retrying");
            state.reported = Some(failure);
        }
    }

    /// The link connected: the next failure is news again.
    fn connected(&self, state: &mut LinkState, address: &super::config::Address) {
        state.reported = None;
        state.previous_wait = Duration::ZERO;
        tracing::info!(bridge = %self.config.name, "connected to {address} ({})", self.config.protocol);
    }

    fn next_address(&self, state: &mut LinkState) {
        state.current = (state.current + 1) % self.config.addresses.len();
    }

    /// Waits until the link should connect; `false` when it is stopped instead.
    async fn wait_for_start(&self, first: bool) -> bool {
        if self.stop.is_cancelled() {
            return false;
        }
        let (threshold, _) = match self.config.start {
            Start::Automatic => return true,
            Start::Once => return first,
            Start::Lazy {
                threshold,
                idle_timeout,
            } => (threshold, idle_timeout),
        };
        loop {
            let queued = self.queue.len() + self.volatile.len();
            if queued >= threshold.max(1) {
                tracing::info!(bridge = %self.config.name, "{queued} messages queued: connecting (lazy start)");
                return true;
            }
            tokio::select! {
                _ = self.queue.committed_past(self.queue.end()) => {}
                _ = self.volatile.added() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = self.stop.cancelled() => return false,
            }
        }
    }

    /// Sets the connection's state on this broker (`1` up, `0` down), retained.
    fn notify_local(&self, up: bool) {
        if !self.config.notifications.enabled {
            return;
        }
        let topic = self.config.notification_topic();
        let payload = Bytes::from_static(if up { b"1" } else { b"0" });
        if crate::session::is_local_namespace(&topic) {
            self.door.set_local(topic, payload);
        } else {
            self.local.send(Work::Notify { topic, payload });
        }
    }
}

/// A number in `[0, 1)` for the backoff's jitter.
fn random() -> f64 {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}
