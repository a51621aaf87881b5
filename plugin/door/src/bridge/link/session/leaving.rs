//! A session's clean end: leaving the shared subscriptions (so that the remote gives this
//! bridge's share to the other members rather than to an absent one, or dropping what it had
//! in flight), and at a stop, sending what is queued for the remote before DISCONNECT.

use super::{Outcome, Session};
use std::time::{Duration, Instant};

/// How long leaving the shared subscriptions may take.
const LEAVE_PATIENCE: Duration = Duration::from_secs(5);
/// How long the remote must have sent nothing after its UNSUBACK for the share to be left:
/// a broker goes on sending what it had queued for this member before the UNSUBSCRIBE
/// (mosquitto does, a few messages in flight at a time), and there is no packet that says it
/// has finished.
const QUIET: Duration = Duration::from_millis(300);
/// How often an ending session looks again whether it is done.
pub(super) const ENDING_CHECK: Duration = Duration::from_millis(50);
/// How long a stopping session goes on sending what is queued before it says goodbye (within
/// the bridges' `STOP_PATIENCE`; what is left stays queued for the next start).
const STOP_FLUSH: Duration = Duration::from_millis(2500);

/// Leaving the shared subscriptions.
pub(super) struct Leaving {
    /// The UNSUBSCRIBE's packet id, until the remote answers it.
    unsubscribe: Option<u16>,
    /// When leaving stops waiting for the remote.
    deadline: Instant,
    /// The remote answered and every message it sent is acknowledged (or the deadline passed).
    done: bool,
}

impl Session<'_> {
    /// UNSUBSCRIBE from the shared `in` lines' filters; the session then acknowledges what the
    /// remote had sent, and says it has left once both are done.
    pub(super) fn start_leaving(&mut self) {
        if self.leaving.is_some() {
            return;
        }
        let shared: Vec<String> = self
            .link
            .config
            .topics
            .iter()
            .filter(|rule| rule.share.is_some())
            .map(|rule| rule.remote_filter().to_string())
            .collect();
        let mut leaving = Leaving {
            unsubscribe: None,
            deadline: Instant::now() + LEAVE_PATIENCE,
            // Nothing to leave: done at once.
            done: shared.is_empty(),
        };
        if !shared.is_empty() {
            let pkid = self.window.control_pkid(self.cursor);
            if self.wire.unsubscribe(pkid, &shared, &mut self.out).is_ok() {
                leaving.unsubscribe = Some(pkid);
            }
            tracing::info!(bridge = %self.link.config.name, "leaving the shared subscriptions {}", shared.join(", "));
        }
        self.leaving = Some(leaving);
    }

    /// The remote answered UNSUBSCRIBE `pkid`.
    pub(super) fn unsubscribed(&mut self, pkid: u16) {
        if let Some(leaving) = &mut self.leaving {
            if leaving.unsubscribe == Some(pkid) {
                leaving.unsubscribe = None;
            }
        }
    }

    /// Stopping: leave the shared subscriptions, send what is queued, then go.
    pub(super) fn start_stopping(&mut self) {
        self.start_leaving();
        self.stopping = Some(Instant::now() + STOP_FLUSH);
    }

    /// Whether the session is leaving or stopping and not done yet (it then looks again every
    /// [`ENDING_CHECK`]).
    pub(super) fn ending_pending(&self) -> bool {
        self.stopping.is_some() || self.leaving.as_ref().is_some_and(|leaving| !leaving.done)
    }

    /// Whether the session ends now: a stopping session once it has left its shared
    /// subscriptions and the remote has everything queued for it, or at its deadline.
    /// Called after every event: a session that is neither leaving nor stopping returns at
    /// once.
    pub(super) fn ending(&mut self) -> Option<Outcome> {
        if !self.ending_pending() {
            return None;
        }
        let now = Instant::now();
        self.settle_leaving(now);
        let deadline = self.stopping?;
        let left = self.leaving.as_ref().is_some_and(|leaving| leaving.done);
        let sent = self.window.is_empty()
            && self.staged.is_empty()
            && self.qos0.is_empty()
            && self.out.is_empty()
            && self.link.queue.is_empty()
            && self.link.volatile.is_empty();
        (left && sent || now >= deadline).then_some(Outcome::Stopped)
    }

    /// Says the shared subscriptions are left once the remote answered the UNSUBSCRIBE and
    /// every message it sent is acknowledged, or once waiting for that has taken too long.
    fn settle_leaving(&mut self, now: Instant) {
        let settled = self.in_flight_in == 0
            && self.incoming.is_empty()
            && self.awaiting_release.is_empty()
            && now.saturating_duration_since(self.last_received) >= QUIET;
        let Some(leaving) = &mut self.leaving else {
            return;
        };
        if leaving.done {
            return;
        }
        let answered = leaving.unsubscribe.is_none();
        if !(answered && settled) && now < leaving.deadline {
            return;
        }
        if !(answered && settled) {
            tracing::warn!(
                bridge = %self.link.config.name,
                "left the shared subscriptions after {LEAVE_PATIENCE:?} without {}: {} messages from the remote not yet acknowledged",
                if answered { "every acknowledgement" } else { "the remote's UNSUBACK" },
                self.in_flight_in + self.awaiting_release.len()
            );
        }
        leaving.done = true;
        self.link.leave.done.cancel();
    }
}
