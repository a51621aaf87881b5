//! What the router hands a client's link: deliveries (each tagged with the door's subscription
//! id and the publisher's tag), acknowledgements of the door's SUBSCRIBEs and PINGREQs, and its
//! scheduling. Taken all at once, answered at once, then queued for the client.

use super::{Delivery, Outbound, Why};
use crate::delivery::Arrival;
use crate::queue::Admitted;
use crate::router;
use crate::router::{Forwarded, FromRouter};
use crate::session::overlap::Copy;
use crate::session::subscription_matching;
use tokio::io::AsyncWrite;
use tokio::time::Instant;

/// The shutdown barrier: the router has delivered everything when one of its answers to our
/// pings comes with nothing delivered since the previous one.
#[derive(Debug, Default)]
pub(super) struct Drain {
    pub(super) answered: u32,
    pub(super) delivered: bool,
}

/// Notifications taken from the link at once, at most.
const MAX_BATCH: usize = 16 * 1024;

/// The output of `future` if it is ready now. A link's `next` is ready while the link holds
/// notifications; dropping it when pending loses nothing (the router's wake-up signal stays
/// in its channel).
fn now<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(future).poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => None,
    }
}

impl<W: AsyncWrite + Unpin> Outbound<W> {
    /// Takes `first` and everything else the router has handed over already, tells the router
    /// at once when it may hand more (it waits for that before it serves this client again),
    /// then handles them in order.
    pub(super) fn on_notifications(&mut self, first: FromRouter) {
        let mut batch = std::mem::take(&mut self.arrived);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match now(self.link.next()) {
                Some(Ok(Some(notification))) => batch.push(notification),
                Some(Ok(None)) => {}
                Some(Err(_)) => {
                    self.ending = Some(Why::RouterGone);
                    break;
                }
                None => break,
            }
        }
        let unscheduled = batch
            .iter()
            .filter(|n| matches!(n, FromRouter::Unschedule))
            .count();
        for _ in 0..unscheduled {
            if self.link.ready().is_err() {
                self.ending = Some(Why::RouterGone);
            }
        }
        for notification in batch.drain(..) {
            self.on_notification(notification);
        }
        self.arrived = batch;
    }

    pub(super) fn on_notification(&mut self, notification: FromRouter) {
        match notification {
            FromRouter::Deliver(forwarded) => {
                if let Some(drain) = &mut self.drain {
                    drain.delivered = true;
                }
                self.forward(forwarded);
            }
            FromRouter::SubAck => self.router_suback(),
            FromRouter::Pong => self.router_pong(),
            FromRouter::Unschedule => {
                // Answered (`ready`) when the batch arrived.
                if let Some(drain) = &mut self.drain {
                    drain.delivered = true;
                }
            }
            FromRouter::Disconnected => self.ending = Some(Why::RouterGone),
            FromRouter::Other => {}
        }
    }

    pub(super) fn router_suback(&mut self) {
        if !self.pending_subacks.iter().any(|p| p.router_acks > 0) {
            self.catch_up();
        }
        match self.pending_subacks.iter_mut().find(|p| p.router_acks > 0) {
            Some(pending) => pending.router_acks -= 1,
            None => {
                tracing::debug!(client = %self.client_id, "an unexpected SUBACK from the router")
            }
        }
        // The router's logs behind this client's subscriptions exist now.
        for position in self.logs.values() {
            position.log().ready();
        }
        self.complete_subacks();
    }

    /// The router answered a PINGREQ: the reading half's batch, or the shutdown barrier's.
    pub(super) fn router_pong(&mut self) {
        if self.pace.answered() {
            return;
        }
        let Some(drain) = &mut self.drain else {
            return;
        };
        if drain.answered > 0 && !drain.delivered {
            self.ending = Some(Why::Shutdown);
            return;
        }
        drain.answered += 1;
        drain.delivered = false;
        self.ping_router();
    }

    pub(super) fn ping_router(&mut self) {
        let mut link = self.link_tx.lock().unwrap_or_else(|e| e.into_inner());
        if router::ping(&mut link).is_err() {
            self.ending = Some(Why::Shutdown);
        }
    }

    pub(super) fn forward(&mut self, forwarded: Forwarded) {
        let arrival = Arrival::of(forwarded);
        // A delivery may come before the router has its subscription's id.
        let id = match arrival.subscription {
            Some(id) => id,
            None => match subscription_matching(&self.subscriptions, &arrival.topic) {
                Some(id) => id,
                None => return,
            },
        };
        if !self.subscriptions.contains_key(&id) {
            self.catch_up();
        }
        let copy = match arrival.tag {
            Some(tag) if self.overlaps.possible() => {
                if !self.subscriptions.contains_key(&id) {
                    // Unsubscribed since the router sent it.
                    return;
                }
                self.overlaps
                    .copy(&self.subscriptions, &arrival.topic, tag.sequence)
            }
            _ => Copy::Only,
        };
        let Some(subscription) = self.subscriptions.get_mut(&id) else {
            // Unsubscribed since the router sent it.
            return;
        };
        let offset = arrival.offset;
        let publisher = arrival.tag.map(|tag| tag.publisher);
        let skipped = arrival.advance(subscription);
        let filter = (skipped > 0).then(|| subscription.filter.clone());
        let me = Some(self.connection);
        let delivery = match copy {
            Copy::Only => arrival.delivery_for([&*subscription], me),
            Copy::First(matched) => arrival.delivery_for(
                matched.iter().filter_map(|id| self.subscriptions.get(id)),
                me,
            ),
            Copy::Repeat => None,
        };
        if let Some(filter) = filter {
            tracing::warn!(
                client = %self.client_id,
                filter,
                "the router's log for `{filter}` overran this client by {skipped} messages: dropped (raise broker.router.max_segment_count)"
            );
            self.dropped(skipped, "");
        }
        if let Some(offset) = offset {
            self.follow(id, offset);
        }
        if let Some(delivery) = delivery {
            self.enqueue(delivery, publisher);
        }
    }

    /// A shared-subscription message its group gave this session (subscription `id`).
    pub(super) fn shared_arrival(&mut self, id: u32, arrival: Arrival) {
        let publisher = arrival.tag.map(|tag| tag.publisher);
        let Some(subscription) = self.subscriptions.get_mut(&id) else {
            // Unsubscribed meanwhile: the group will not pick this session again.
            return;
        };
        if let (Some(delivery), _) = arrival.deliver(subscription, None) {
            self.enqueue(delivery, publisher);
        }
    }

    /// Notes how far behind the router's log for subscription `id` this client is, now that
    /// it received the message at `offset`.
    pub(super) fn follow(&mut self, id: u32, offset: u64) {
        let Some(position) = self.logs.get(&id) else {
            return;
        };
        position.took(offset);
        let log = position.log();
        let lag = log.messages().saturating_sub(offset + 1) * log.average_size();
        if lag > self.shared.routing.lag.high {
            self.lagging = true;
        } else if self.lagging && lag < self.shared.routing.lag.low {
            self.lagging = self.behind(self.shared.routing.lag.low);
        }
    }

    /// Whether this client is more than `bytes` behind in any of its router logs.
    pub(super) fn behind(&self, bytes: u64) -> bool {
        self.logs.iter().any(|(id, reader)| {
            let log = reader.log();
            let position = self
                .subscriptions
                .get(id)
                .and_then(|s| s.next_offset)
                .unwrap_or(u64::MAX);
            log.messages().saturating_sub(position) * log.average_size() > bytes
        })
    }

    pub(super) fn enqueue(&mut self, delivery: Delivery, publisher: Option<u64>) {
        if !self.may_read(&delivery) {
            return;
        }
        if !self.backlogged() {
            self.last_progress = Instant::now();
        }
        let size = delivery.size();
        match self.queue.push(delivery, size, self.stalled) {
            Admitted::Queued if !self.lagging => {}
            Admitted::Queued | Admitted::OverLimit => {
                if let Some(publisher) = publisher {
                    self.held.hold(&self.shared.routing.gates, publisher);
                }
            }
            Admitted::Dropped => self.dropped(1, "its queue is full"),
        }
    }

    /// Whether the ACL lets this client read `delivery` (counted when not).
    pub(super) fn may_read(&mut self, delivery: &Delivery) -> bool {
        crate::delivery::readable(&mut self.acl, &self.shared.operations.stats, delivery)
    }

    /// Counts `count` messages lost for this client, logging the first and then every power
    /// of two (`why` empty: already logged).
    pub(super) fn dropped(&mut self, count: u64, why: &str) {
        let counter = self
            .drops
            .get_or_insert_with(|| self.shared.operations.stats.client_drops(&self.client_id));
        self.shared
            .operations
            .stats
            .report_dropped(counter, count, &self.client_id, why);
    }
}
