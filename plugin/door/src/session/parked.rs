//! Persistent sessions whose clients are away.
//!
//! A parked session keeps its client's router link, so its subscriptions go on matching, and
//! takes what the router delivers into the session's own queue: QoS 1 and 2 messages (QoS 0
//! too with `queue_qos0_messages`), bounded like a connected client's queue, each message past
//! the bound dropped and counted. The client coming back takes the session, link and queue
//! over (nothing is lost in between); a session whose expiry interval passes first ends on
//! time, counting what it still held.

use super::overlap::Copy;
use super::state::SessionState;
use super::subscription_matching;
use crate::delivery::{Arrival, Delivery};
use crate::queue::{Admitted, DeliveryQueue};
use crate::router::FromRouter;
use crate::router::{self, Link};
use crate::security::ClientRules;
use crate::shared::Mailbox;
use crate::Shared;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A session taken back from its parking: its state, its router link and its mailbox.
pub struct Parked {
    /// What the session holds.
    pub state: SessionState,
    /// Its client's router link.
    pub link: Link,
    /// Where its shared-subscription messages arrive.
    pub mailbox: Mailbox,
}

/// Asks a parked session for a copy of its state.
pub type SnapshotRequest = mpsc::UnboundedSender<oneshot::Sender<SessionState>>;

/// The registry's hold on a parked session.
pub struct ParkedHandle {
    pub(super) generation: u64,
    stop: CancellationToken,
    task: JoinHandle<Option<Parked>>,
    queued: Arc<AtomicUsize>,
    subscriptions: usize,
    /// When it expires (`None`: never).
    pub(super) expires_at: Option<Instant>,
    pub(super) snapshots: SnapshotRequest,
}

impl std::fmt::Debug for ParkedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedHandle")
            .field("generation", &self.generation)
            .field("queued", &self.queued())
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl ParkedHandle {
    /// Stops the parking and takes the session back (`None` if it ended meanwhile).
    pub async fn resume(self) -> Option<Parked> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }

    /// Messages waiting for the client.
    pub fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Subscriptions the session holds.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions
    }
}

/// Parks the session of `client_id` until its client returns or `expires_at` passes.
pub(crate) fn park(
    shared: Arc<Shared>,
    client_id: String,
    state: SessionState,
    link: Link,
    mailbox: Mailbox,
    expires_at: Option<Instant>,
    acl: Option<ClientRules>,
) -> ParkedHandle {
    mailbox.live.store(false, Relaxed);
    let generation = shared.sessions.registry.next_generation();
    let stop = CancellationToken::new();
    let queued = Arc::new(AtomicUsize::new(state.queued.len()));
    let subscriptions = state.subscriptions.len();
    let mut state = state;
    let items = std::mem::take(&mut state.queued);
    state.overlaps.update(&state.subscriptions);
    let away = Away {
        queue: DeliveryQueue::from_items(shared.sessions.limits, items, Delivery::size),
        shared,
        client_id,
        generation,
        state,
        link,
        mailbox,
        queued: queued.clone(),
        drops: None,
        acl,
    };
    let (snapshots, requests) = mpsc::unbounded_channel();
    let task = tokio::spawn(away.run(stop.clone(), expires_at, requests));
    ParkedHandle {
        generation,
        stop,
        task,
        queued,
        subscriptions,
        expires_at,
        snapshots,
    }
}

/// Ends a parked session taken out of the registry (a clean start discards it), counting what
/// it held as dropped.
pub(crate) async fn discard(shared: &Shared, client_id: &str, handle: ParkedHandle) {
    if let Some(mut parked) = handle.resume().await {
        router::end(&mut parked.link.tx);
        shared
            .routing
            .groups
            .leave_all(client_id, &parked.state.subscriptions);
        let lost = undelivered(&parked.state);
        if lost > 0 {
            let counter = shared.operations.stats.client_drops(client_id);
            shared.operations.stats.report_dropped(
                &counter,
                lost,
                client_id,
                "the client started a clean session, discarding the one that held it",
            );
        }
    }
}

/// Messages a session holds that its client has not received.
fn undelivered(state: &SessionState) -> u64 {
    let unacknowledged = state
        .unacknowledged
        .iter()
        .filter(|u| matches!(u, super::state::Unacknowledged::Publish { .. }))
        .count();
    (state.queued.len() + unacknowledged) as u64
}

/// The parking task's state.
struct Away {
    shared: Arc<Shared>,
    client_id: String,
    generation: u64,
    state: SessionState,
    queue: DeliveryQueue<Delivery>,
    link: Link,
    mailbox: Mailbox,
    queued: Arc<AtomicUsize>,
    drops: Option<Arc<AtomicU64>>,
    /// What the ACL file lets the client read (`None`: anything).
    acl: Option<ClientRules>,
}

impl Away {
    async fn run(
        mut self,
        stop: CancellationToken,
        expires_at: Option<Instant>,
        mut snapshots: mpsc::UnboundedReceiver<oneshot::Sender<SessionState>>,
    ) -> Option<Parked> {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Some(self.into_parked()),
                Some(reply) = snapshots.recv() => {
                    let mut state = self.state.clone();
                    state.queued = self.queue.cloned_items();
                    let _ = reply.send(state);
                }
                Some((id, arrival)) = self.mailbox.rx.recv() => self.deliver(id, *arrival),
                next = self.link.rx.next() => match next {
                    Ok(Some(notification)) => self.on_notification(notification),
                    Ok(None) => {}
                    Err(_) => {
                        // The router is gone: nothing more arrives; keep what is held.
                        stop.cancelled().await;
                        return Some(self.into_parked());
                    }
                },
                _ = tokio::time::sleep_until(expires_at.unwrap_or_else(Instant::now)), if expires_at.is_some() => {
                    if self.shared.sessions.registry.remove_parked(&self.client_id, self.generation) {
                        self.expire();
                        return None;
                    }
                    // Its client is taking it back right now.
                    stop.cancelled().await;
                    return Some(self.into_parked());
                }
            }
        }
    }

    fn on_notification(&mut self, notification: FromRouter) {
        match notification {
            FromRouter::Deliver(forwarded) => self.forward(Arrival::of(forwarded)),
            FromRouter::Unschedule => {
                // The router serves this link again once told it may.
                let _ = self.link.rx.ready();
            }
            _ => {}
        }
    }

    fn forward(&mut self, arrival: Arrival) {
        let SessionState {
            subscriptions,
            overlaps,
            ..
        } = &mut self.state;
        let id = match arrival.subscription {
            Some(id) => id,
            None => match subscription_matching(subscriptions, &arrival.topic) {
                Some(id) => id,
                None => return,
            },
        };
        let copy = match arrival.tag {
            Some(tag) if overlaps.possible() && subscriptions.contains_key(&id) => {
                overlaps.copy(subscriptions, &arrival.topic, tag.sequence)
            }
            _ => Copy::Only,
        };
        let Some(subscription) = self.state.subscriptions.get_mut(&id) else {
            return;
        };
        let skipped = arrival.advance(subscription);
        if skipped > 0 {
            self.dropped(skipped, "the router's log overran an offline session");
        }
        let subscriptions = &self.state.subscriptions;
        let delivery = match copy {
            Copy::Only => arrival.delivery_for(subscriptions.get(&id), None),
            Copy::First(matched) => {
                arrival.delivery_for(matched.iter().filter_map(|id| subscriptions.get(id)), None)
            }
            Copy::Repeat => None,
        };
        if let Some(delivery) = delivery {
            self.queue_delivery(delivery);
        }
    }

    /// Queues `arrival` for subscription `id` (a shared subscription's).
    fn deliver(&mut self, id: u32, arrival: Arrival) {
        let Some(subscription) = self.state.subscriptions.get_mut(&id) else {
            return;
        };
        let (delivery, skipped) = arrival.deliver(subscription, None);
        if skipped > 0 {
            self.dropped(skipped, "the router's log overran an offline session");
        }
        if let Some(delivery) = delivery {
            self.queue_delivery(delivery);
        }
    }

    /// Queues `delivery`, as the client's ACL and the session's limits allow.
    fn queue_delivery(&mut self, delivery: Delivery) {
        if !crate::delivery::readable(&mut self.acl, &self.shared.operations.stats, &delivery) {
            return;
        }
        if delivery.qos == 0 && !self.shared.sessions.queue_qos0_messages {
            self.dropped(
                1,
                "QoS 0 for an offline session (queue_qos0_messages is off)",
            );
            return;
        }
        let size = delivery.size();
        if self.queue.push(delivery, size, true) == Admitted::Dropped {
            self.dropped(1, "the offline session's queue is full");
        }
        self.queued.store(self.queue.len(), Relaxed);
    }

    fn dropped(&mut self, count: u64, why: &str) {
        let counter = self
            .drops
            .get_or_insert_with(|| self.shared.operations.stats.client_drops(&self.client_id));
        self.shared
            .operations
            .stats
            .report_dropped(counter, count, &self.client_id, why);
    }

    /// The session's expiry interval passed: it ends, and what it held is counted.
    fn expire(mut self) {
        router::end(&mut self.link.tx);
        self.shared
            .routing
            .groups
            .leave_all(&self.client_id, &self.state.subscriptions);
        let state = self.state_now();
        let lost = undelivered(&state);
        if lost > 0 {
            self.dropped(lost, "its session expired before the client came back");
        }
        tracing::info!(
            client = %self.client_id,
            "session of `{}` expired ({lost} messages not delivered)",
            self.client_id
        );
    }

    fn state_now(&mut self) -> SessionState {
        let mut state = std::mem::take(&mut self.state);
        state.queued = self.queue.take_items();
        state
    }

    fn into_parked(mut self) -> Parked {
        Parked {
            state: self.state_now(),
            link: self.link,
            mailbox: self.mailbox,
        }
    }
}
