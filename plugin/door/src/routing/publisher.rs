//! Weir's own publishers (a graph's results): they enter the broker the way a client's
//! publishes do — offered to the graphs, then to the router with the door's tag — from a plain
//! thread, and wait (blocking their thread) when a subscriber's full queue closes their gate or
//! a graph's queue is full.

use crate::bridge::queue::Outbox;
use crate::dispatch::{self, Accepted};
use crate::flow::Gate;
use crate::message::{Properties, Publish};
use crate::router::{self, Batch, FromRouter, Link};
use crate::tag::Tag;
use crate::{DoorError, Shared, INTERNAL_LINKS};
use bytes::Bytes;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A publisher attached to the router on Weir's behalf.
pub struct InternalPublisher {
    shared: Arc<Shared>,
    name: String,
    id: u64,
    origin: Option<String>,
    /// The bridge whose incoming messages this publisher carries, if any.
    bridge: Option<String>,
    link: Link,
    gate: Arc<Gate>,
    batch: Batch,
    /// Messages for bridges' queues, written before [`InternalPublisher::publish_all`] returns.
    outbox: Outbox,
    /// A batch is in the router, not yet answered.
    in_flight: bool,
}

/// A message for [`InternalPublisher::publish`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Topic (a valid topic name).
    pub topic: Bytes,
    /// Payload.
    pub payload: Bytes,
    /// QoS it is published with (subscribers get at most this).
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
    /// MQTT 5 properties.
    pub properties: Option<Properties>,
}

impl InternalPublisher {
    pub(crate) fn new(
        shared: Arc<Shared>,
        name: &str,
        origin: Option<&str>,
    ) -> Result<InternalPublisher, DoorError> {
        if shared.routing.internal_links.fetch_add(1, Relaxed) >= INTERNAL_LINKS as u64 {
            return Err(DoorError::Router {
                client_id: name.to_string(),
                message: format!("more than {INTERNAL_LINKS} internal publishers"),
            });
        }
        let link = shared.routing.router.link(name, true)?;
        let id = shared.operations.next_id();
        let gate = shared.routing.gates.register(id);
        Ok(InternalPublisher {
            shared,
            name: name.to_string(),
            id,
            origin: origin.map(str::to_string),
            bridge: None,
            link,
            gate,
            batch: Batch::default(),
            outbox: Outbox::default(),
            in_flight: false,
        })
    }

    /// Publishes `message`, waiting while a subscriber holds this publisher back. Fails when
    /// the router is gone.
    pub fn publish(&mut self, message: Outgoing) -> Result<(), DoorError> {
        self.publish_all(std::iter::once(message))
    }

    /// Publishes `messages`, handed to the router together (one wake-up), waiting before each
    /// while a subscriber holds this publisher back. Returns once those that bridges forward
    /// at QoS 1 or 2 are in their queues on disk.
    pub fn publish_all(
        &mut self,
        messages: impl IntoIterator<Item = Outgoing>,
    ) -> Result<(), DoorError> {
        for message in messages {
            if !self.gate.is_open() {
                self.flush_batch()?;
                self.shared.operations.runtime.block_on(self.gate.opened());
            }
            self.offer(message);
            if self.batch.is_full() {
                self.flush_batch()?;
            }
        }
        self.flush_batch()?;
        self.commit_outbox()
    }

    /// Carries what bridge `bridge` brings in: none of it goes back out there.
    pub(crate) fn set_bridge(&mut self, bridge: &str) {
        self.bridge = Some(bridge.to_string());
    }

    /// Writes what bridges forward to their queues, waiting for room in a full queue that
    /// blocks and for the writes to be on disk.
    fn commit_outbox(&mut self) -> Result<(), DoorError> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        while let Some(full) = self.outbox.full_queue() {
            self.shared.operations.runtime.block_on(full.room());
        }
        match self.outbox.submit().map(|ticket| ticket.wait_blocking()) {
            Some(Err(e)) => Err(DoorError::Bridge(e)),
            _ => Ok(()),
        }
    }

    /// Hands the batch to the router once it took the previous one (see [`crate::flow::Pace`]).
    fn flush_batch(&mut self) -> Result<(), DoorError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.settle(ROUTER_PATIENCE)?;
        self.batch.ping();
        self.in_flight = true;
        self.batch
            .flush(&mut self.link.tx)
            .map_err(|_| DoorError::RouterGone)
    }

    /// Waits (at most `patience`) until the router answered the last batch.
    fn settle(&mut self, patience: Duration) -> Result<(), DoorError> {
        if !self.in_flight {
            return Ok(());
        }
        let deadline = Instant::now() + patience;
        loop {
            match self.link.rx.recv_deadline(deadline) {
                Ok(Some(FromRouter::Pong)) => {
                    self.in_flight = false;
                    return Ok(());
                }
                Ok(Some(FromRouter::Unschedule)) => {
                    let _ = self.link.rx.ready();
                }
                Ok(Some(_)) => {}
                Ok(None) if Instant::now() >= deadline => {
                    return Err(DoorError::Router {
                        client_id: self.name.clone(),
                        message: format!("no answer within {patience:?}"),
                    })
                }
                Ok(None) => {}
                Err(_) => return Err(DoorError::RouterGone),
            }
        }
    }

    fn offer(&mut self, message: Outgoing) {
        let Ok(topic) = std::str::from_utf8(&message.topic) else {
            return;
        };
        // Graph results and wills do not wait for slow readers (their subscribers' own holds do).
        let waiting = dispatch::dispatch(
            &self.shared,
            &mut self.batch,
            &mut self.outbox,
            Accepted {
                topic,
                publish: Publish::new(message.topic.clone(), message.payload, message.retain),
                properties: message.properties,
                tag: Tag {
                    qos: message.qos,
                    retain: message.retain,
                    publisher: self.id,
                    expires_at: None,
                    // Numbered by dispatch.
                    sequence: 0,
                },
                origin: self.origin.as_deref(),
                bridge: self.bridge.as_deref(),
            },
        )
        .waiting;
        if let (Some(graphs), false) = (self.shared.routing.graphs(), waiting.is_empty()) {
            graphs.push_blocking(waiting);
        }
    }

    /// Waits (at most `patience`) until the router has taken everything published so far.
    pub fn flush(&mut self, patience: Duration) -> Result<(), DoorError> {
        self.flush_batch()?;
        self.settle(patience)
    }
}

/// How long the router may take to answer a batch.
const ROUTER_PATIENCE: Duration = Duration::from_secs(30);

impl Drop for InternalPublisher {
    fn drop(&mut self) {
        router::end(&mut self.link.tx);
        self.shared.routing.internal_links.fetch_sub(1, Relaxed);
    }
}
