//! What the two halves of one connected session share: both are built from one
//! [`SessionContext`] (`Inbound::new` and `Outbound::new` take it), the reading half also from
//! what it [`Carried`] over from the session.

use super::state::SessionState;
use super::Subscriptions;
use crate::flow::Pace;
use crate::router::Tx as LinkTx;
use crate::security::ClientRules;
use crate::shared::{Mailbox, SharedDelivery};
use crate::Shared;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

/// One connected session: the door, who the client is and what it was granted, the router
/// link's sending side both halves use, and the signal that one half ended.
pub(crate) struct SessionContext {
    /// The door's state.
    pub shared: Arc<Shared>,
    /// The client's id.
    pub client_id: String,
    /// The connection's id (a publisher id: no-local subscriptions skip its own publishes).
    pub connection: u64,
    /// The router link's sending side: publishes and subscriptions go through it, and so do
    /// the acknowledgements of what the router delivered.
    pub link_tx: Arc<Mutex<LinkTx>>,
    /// How fast the writing half drains its queue, which the reading half's gate follows.
    pub pace: Arc<Pace>,
    /// Cancelled when the writing half ends, to stop the reading half.
    pub stop: CancellationToken,
    /// What the ACL file lets this client do (`None`: anything).
    pub acl: Option<ClientRules>,
    /// What the client asked for and the listener granted.
    pub terms: Terms,
}

/// What the client asked for in CONNECT and the listener granted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Terms {
    /// The keep-alive, in seconds (0: none).
    pub keep_alive: u16,
    /// QoS 1/2 publishes the client may have unacknowledged (the listener's limit).
    pub receive_maximum: u16,
    /// QoS 1/2 deliveries in flight to the client at most (its receive maximum and the
    /// listener's limit).
    pub window: u16,
    /// Topic aliases the client may set.
    pub topic_alias_maximum: u16,
    /// The client is a bridge (mosquitto's `try_private`).
    pub bridge: bool,
}

/// What the reading half takes over from the session it continues.
pub(crate) struct Carried {
    /// The session's subscriptions: filter → door subscription id.
    pub filters: HashMap<String, u32>,
    /// The next door subscription id.
    pub next_subscription: u32,
    /// The client's QoS 2 publishes waiting for their PUBREL.
    pub awaiting_release: HashSet<u16>,
    /// Where the session's shared-subscription messages go.
    pub mailbox: UnboundedSender<SharedDelivery>,
    /// Whether the session's client is connected.
    pub live: Arc<AtomicBool>,
}

impl Carried {
    /// What the reading half needs of `state` (its QoS 2 publishes waiting for PUBREL are
    /// taken out) and of its `mailbox`.
    pub fn take(state: &mut SessionState, mailbox: &Mailbox) -> Carried {
        let (filters, next_subscription) = filters_of(&state.subscriptions);
        Carried {
            filters,
            next_subscription,
            awaiting_release: std::mem::take(&mut state.incoming).into_iter().collect(),
            mailbox: mailbox.tx.clone(),
            live: mailbox.live.clone(),
        }
    }
}

/// Each subscription's filter and id, and the next id.
fn filters_of(subscriptions: &Subscriptions) -> (HashMap<String, u32>, u32) {
    let filters = subscriptions
        .iter()
        .map(|(id, sub)| (sub.filter.clone(), *id))
        .collect();
    let next = subscriptions.keys().max().map_or(1, |max| max + 1);
    (filters, next)
}
