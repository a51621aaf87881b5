//! Shared subscriptions (`$share/GROUP/FILTER`), done by the door: a group is one group name
//! with one filter (groups with the same name and other filters are other groups). Each group
//! has a router link of its own subscribed to the plain filter; every message it receives goes
//! to one member, round robin, preferring members whose clients are connected (a persistent
//! session away queues it). Members are sessions: a member's [`Mailbox`] outlives its
//! connections, so membership survives a reconnect.

use crate::delivery::Arrival;
use crate::router::FromRouter;
use crate::router::{self, Link};
use crate::{DoorError, Shared};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// A shared-subscription message for one member: its subscription id and the message (boxed:
/// every session's mailbox channel holds a block of these from the start, so they are small).
pub(crate) type SharedDelivery = (u32, Box<Arrival>);

/// Where a session receives its shared-subscription messages, connected or away.
pub struct Mailbox {
    pub(crate) tx: mpsc::UnboundedSender<SharedDelivery>,
    pub(crate) rx: mpsc::UnboundedReceiver<SharedDelivery>,
    /// Whether the session's client is connected.
    pub(crate) live: Arc<AtomicBool>,
}

impl Default for Mailbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Mailbox {
            tx,
            rx,
            live: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("live", &self.live.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// One member of a group.
#[derive(Clone)]
pub(crate) struct Member {
    pub client_id: String,
    pub subscription: u32,
    pub tx: mpsc::UnboundedSender<SharedDelivery>,
    pub live: Arc<AtomicBool>,
}

struct Group {
    members: Mutex<Vec<Member>>,
    next: AtomicUsize,
    stop: CancellationToken,
}

/// Every shared-subscription group.
#[derive(Default)]
pub(crate) struct Groups {
    groups: Mutex<HashMap<(String, String), Arc<Group>>>,
}

/// `$share/GROUP/FILTER` into its group and filter.
pub(crate) fn split(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

impl Groups {
    /// Adds `member` to the group of `group` and `filter` (replacing the session's previous
    /// membership), starting the group if it is new. Returns once the group's router
    /// subscription is in place.
    pub async fn join(
        &self,
        shared: &Arc<Shared>,
        group: &str,
        filter: &str,
        member: Member,
    ) -> Result<(), DoorError> {
        let key = (group.to_string(), filter.to_string());
        let existing = {
            let groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            groups.get(&key).cloned()
        };
        if let Some(existing) = existing {
            existing.add(member);
            return Ok(());
        }
        let created = Arc::new(Group {
            members: Mutex::new(vec![member]),
            next: AtomicUsize::new(0),
            stop: CancellationToken::new(),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let name = format!("weir-share-{}", shared.operations.next_id());
        let router = shared.routing.router.clone();
        let link = tokio::task::spawn_blocking(move || router.link(&name, true))
            .await
            .map_err(|_| DoorError::RouterGone)??;
        {
            let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(raced) = groups.get(&key).cloned() {
                // Another session made the group meanwhile: join it instead.
                drop(groups);
                let mut link = link;
                router::end(&mut link.tx);
                let member = created
                    .members
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop();
                if let Some(member) = member {
                    raced.add(member);
                }
                return Ok(());
            }
            groups.insert(key, created.clone());
        }
        tokio::spawn(serve(created, link, filter.to_string(), ready_tx));
        ready_rx.await.map_err(|_| DoorError::RouterGone)
    }

    /// Removes `client_id`'s membership of the group of `group` and `filter`; the group ends
    /// with its last member.
    pub fn leave(&self, group: &str, filter: &str, client_id: &str) {
        let key = (group.to_string(), filter.to_string());
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let Some(existing) = groups.get(&key) else {
            return;
        };
        let empty = {
            let mut members = existing.members.lock().unwrap_or_else(|e| e.into_inner());
            members.retain(|m| m.client_id != client_id);
            members.is_empty()
        };
        if empty {
            if let Some(gone) = groups.remove(&key) {
                gone.stop.cancel();
            }
        }
    }

    /// Removes `client_id` from the groups of its shared subscriptions (its session ended).
    pub fn leave_all(&self, client_id: &str, subscriptions: &crate::session::Subscriptions) {
        for subscription in subscriptions.values() {
            if let Some((group, filter)) = split(&subscription.filter) {
                self.leave(group, filter, client_id);
            }
        }
    }
}

impl Group {
    fn add(&self, member: Member) {
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(|m| m.client_id != member.client_id);
        members.push(member);
    }

    /// Hands `arrival` to the next member, connected ones first; `false` when no member could
    /// take it.
    fn deliver(&self, arrival: Arrival) -> bool {
        let members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        if members.is_empty() {
            return false;
        }
        let start = self.next.fetch_add(1, Relaxed);
        let mut arrival = Box::new(arrival);
        // Connected members first, then any (a persistent member away queues it).
        for live_only in [true, false] {
            for i in 0..members.len() {
                let member = &members[(start + i) % members.len()];
                if live_only && !member.live.load(Relaxed) {
                    continue;
                }
                match member.tx.send((member.subscription, arrival)) {
                    Ok(()) => return true,
                    Err(mpsc::error::SendError((_, back))) => arrival = back,
                }
            }
        }
        false
    }
}

/// A group's task: subscribes its link to `filter`, says when that is done, then hands every
/// message to a member until the group ends.
async fn serve(group: Arc<Group>, mut link: Link, filter: String, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    if router::subscribe_now(&mut link.tx, 1, filter.clone()).is_err() {
        return;
    }
    loop {
        tokio::select! {
            _ = group.stop.cancelled() => break,
            next = link.rx.next() => match next {
                Ok(Some(FromRouter::Deliver(forwarded))) => {
                    if !group.deliver(Arrival::of(forwarded)) {
                        tracing::warn!(filter, "a shared-subscription message found no member");
                    }
                }
                Ok(Some(FromRouter::SubAck)) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(Some(FromRouter::Unschedule)) => {
                    let _ = link.rx.ready();
                }
                Ok(_) => {}
                Err(_) => break,
            },
        }
    }
    router::end(&mut link.tx);
}
