//! Wills: published by the door (the router's own will handling never fires for local links),
//! at once or after the MQTT 5 will delay unless the client comes back.

use crate::bridge::queue::Outbox;
use crate::connect::Will;
use crate::dispatch::{self, Accepted};
use crate::message::Publish;
use crate::router::Tx as LinkTx;
use crate::router::{self, Batch};
use crate::tag::Tag;
use crate::Shared;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Publishes `will` through the leaving client's own link.
pub(crate) fn publish_will_now(shared: &Shared, will: &Will, connection: u64, link: &mut LinkTx) {
    let mut batch = Batch::default();
    let mut outbox = Outbox::default();
    let waiting = dispatch::dispatch(
        shared,
        &mut batch,
        &mut outbox,
        Accepted {
            topic: &will.topic,
            publish: Publish::new(
                Bytes::from(will.topic.clone()),
                will.payload.clone(),
                will.retain,
            ),
            properties: will.properties.clone(),
            tag: Tag {
                qos: will.qos,
                retain: will.retain,
                publisher: connection,
                expires_at: None,
                // Numbered by dispatch.
                sequence: 0,
            },
            origin: None,
            bridge: None,
        },
    )
    .waiting;
    // Written without waiting: a will has no publisher to acknowledge.
    drop(outbox.submit());
    if let (Some(graphs), false) = (shared.routing.graphs(), waiting.is_empty()) {
        // A will is rare and small: waiting for a full graph queue here is bounded by the
        // graph's progress.
        let graphs = graphs.clone();
        shared
            .operations
            .runtime
            .spawn(async move { graphs.push_async(waiting).await });
    }
    let _ = batch.flush(link);
}

/// Publishes `will` after `delay` seconds, unless the client comes back first.
pub(crate) fn delay_will(
    shared: Arc<Shared>,
    client_id: String,
    connection: u64,
    will: Will,
    delay: u32,
) {
    let cancel = shared.sessions.registry.delay_will(&client_id, connection);
    let runtime = shared.operations.runtime.clone();
    runtime.spawn(async move {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = shared.operations.reading.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(u64::from(delay))) => {}
        }
        shared.sessions.registry.will_done(&client_id, connection);
        let router = shared.routing.router.clone();
        let name = format!("weir-will-{connection}");
        let link = tokio::task::spawn_blocking(move || router.link(&name, true)).await;
        if let Ok(Ok(mut link)) = link {
            publish_will_now(&shared, &will, connection, &mut link.tx);
            router::end(&mut link.tx);
        }
    });
}
