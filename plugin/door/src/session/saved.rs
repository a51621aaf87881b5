//! Between the door and its store ([`crate::store`]): what is saved (the retained messages
//! when they changed, and every parked session as it is now) and how saved sessions come back
//! at start (parked again, with their router subscriptions and shared-subscription groups, and
//! the time left before they expire).
//!
//! A persistent session whose client is connected is saved as its connection's writer has it
//! (at shutdown every connection ends first, so every session is saved parked then).

use crate::control::Control;
use crate::dispatch::now_millis;
use crate::router;
use crate::session::parked;
use crate::shared::{self, Mailbox, Member};
use crate::store::{Store, StoreError, StoredSession};
use crate::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// How long a parked session has to hand over its state.
const SNAPSHOT_PATIENCE: Duration = Duration::from_secs(2);

/// What one save writes.
pub(crate) struct Snapshot {
    /// The retained messages, when they changed since the last save.
    retained: Option<Vec<(String, crate::retained::Retained)>>,
    /// Every parked session.
    sessions: Vec<(String, StoredSession)>,
}

/// Takes what is to be saved now.
pub(crate) async fn snapshot(shared: &Shared) -> Snapshot {
    let now = Instant::now();
    let wall = now_millis();
    let mut sessions = Vec::new();
    for (client_id, expires_at, requests) in shared.sessions.registry.parked() {
        let (reply, state) = oneshot::channel();
        if requests.send(reply).is_err() {
            continue;
        }
        let Ok(Ok(state)) = tokio::time::timeout(SNAPSHOT_PATIENCE, state).await else {
            tracing::warn!(client = %client_id, "the session of `{client_id}` did not answer: not saved");
            continue;
        };
        let expires_at = expires_at.map(|at| {
            let left = at.saturating_duration_since(now).as_millis();
            wall.saturating_add(u64::try_from(left).unwrap_or(u64::MAX))
        });
        sessions.push((client_id, StoredSession { state, expires_at }));
    }
    // Sessions whose client is connected: as they are now, expiring their interval after
    // this save if the broker does not come back sooner.
    for (client_id, interval, control) in shared.sessions.registry.persistent_live() {
        let (reply, state) = oneshot::channel();
        if control.send(Control::Snapshot(reply)).is_err() {
            continue;
        }
        let Ok(Ok(state)) = tokio::time::timeout(SNAPSHOT_PATIENCE, state).await else {
            continue;
        };
        let expires_at =
            (interval != u32::MAX).then(|| wall.saturating_add(u64::from(interval) * 1000));
        sessions.push((client_id, StoredSession { state, expires_at }));
    }
    Snapshot {
        retained: shared.routing.retained.snapshot_if_changed(wall),
        sessions,
    }
}

impl Snapshot {
    /// Whether writing it would change nothing: the retained messages are as saved, and there
    /// is no session now, as there was none at the last save (`saved_sessions`).
    pub(crate) fn changes_nothing(&self, saved_sessions: Option<usize>) -> bool {
        self.retained.is_none() && self.sessions.is_empty() && saved_sessions == Some(0)
    }
}

/// Writes `snapshot`; returns how many sessions were saved (`None` on an error: then the
/// retained messages are marked for the next save). Logged at info level when something was
/// saved, at debug level when there was nothing to save.
pub(crate) fn write(shared: &Shared, store: &Store, snapshot: Snapshot) -> Option<usize> {
    let written = (|| -> Result<(Option<usize>, usize), StoreError> {
        let retained = match &snapshot.retained {
            Some(messages) => {
                store.save_retained(messages)?;
                Some(messages.len())
            }
            None => None,
        };
        store.save_sessions(&snapshot.sessions)?;
        Ok((retained, snapshot.sessions.len()))
    })();
    match written {
        Ok((retained, sessions)) => {
            shared.operations.stats.store.saved(retained, sessions);
            let path = store.path().display();
            let retained = retained.unwrap_or(0);
            if retained > 0 || sessions > 0 {
                tracing::info!(
                    "store {path}: {retained} retained messages and {sessions} sessions saved"
                );
            } else {
                tracing::debug!("store {path}: no retained message or session to save");
            }
            Some(sessions)
        }
        Err(e) => {
            shared.operations.stats.store.save_errors.inc();
            tracing::error!("{e}");
            if snapshot.retained.is_some() {
                shared.routing.retained.mark_changed();
            }
            None
        }
    }
}

/// Parks the saved `sessions` again (those expired meanwhile end here); returns how many came
/// back.
pub(crate) async fn restore(shared: &Arc<Shared>, sessions: Vec<(String, StoredSession)>) -> usize {
    let wall = now_millis();
    let mut restored = 0;
    for (client_id, stored) in sessions {
        if stored.expires_at.is_some_and(|at| at <= wall) {
            tracing::info!(client = %client_id, "saved session of `{client_id}` expired while the broker was down");
            continue;
        }
        match park_saved(shared, &client_id, stored, wall).await {
            Ok(()) => restored += 1,
            Err(e) => {
                tracing::error!(client = %client_id, "saved session of `{client_id}` not restored: {e}")
            }
        }
    }
    restored
}

async fn park_saved(
    shared: &Arc<Shared>,
    client_id: &str,
    stored: StoredSession,
    wall: u64,
) -> Result<(), crate::DoorError> {
    let StoredSession {
        mut state,
        expires_at,
    } = stored;
    let router = shared.routing.router.clone();
    let id = client_id.to_string();
    let mut link = tokio::task::spawn_blocking(move || router.link(&id, true))
        .await
        .map_err(|_| crate::DoorError::RouterGone)??;
    let mailbox = Mailbox::default();
    for (&sub_id, subscription) in state.subscriptions.iter_mut() {
        // Offsets were the old router's.
        subscription.next_offset = None;
        if subscription.is_local() {
            continue;
        }
        match shared::split(&subscription.filter) {
            Some((group, filter)) => {
                let member = Member {
                    client_id: client_id.to_string(),
                    subscription: sub_id,
                    tx: mailbox.tx.clone(),
                    live: mailbox.live.clone(),
                };
                shared
                    .routing
                    .groups
                    .join(shared, group, filter, member)
                    .await?;
            }
            None => {
                router::subscribe_now(&mut link.tx, sub_id, subscription.filter.clone())
                    .map_err(|_| crate::DoorError::RouterGone)?;
            }
        }
    }
    let expires_at = expires_at.map(|at| Instant::now() + Duration::from_millis(at - wall));
    let handle = parked::park(
        shared.clone(),
        client_id.to_string(),
        state,
        link,
        mailbox,
        expires_at,
        None,
    );
    if let Some(unkept) = shared.sessions.registry.insert_parked(client_id, handle) {
        parked::discard(shared, client_id, unkept).await;
    }
    Ok(())
}
