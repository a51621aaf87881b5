//! What the reading half (and the door) tells a client's writing half: replies to write,
//! subscriptions added and removed, SUBACKs waiting for the router, acknowledgements of
//! deliveries, `$SYS` messages, and the end.

use super::inflight::Stage;
use super::{Delivery, Drain, Outbound, Why};
use crate::control::{Control, Reply, RetainedRequest};
use crate::dispatch::now_millis;
use crate::session::router_filter;
use crate::session::state::SessionState;
use crate::session::Subscription;
use crate::sys::LocalMessage;
use tokio::io::AsyncWrite;

impl<W: AsyncWrite + Unpin> Outbound<W> {
    pub(super) fn on_control(&mut self, control: Control) {
        match control {
            Control::Reply(replies) if self.durable.is_empty() => {
                replies.into_iter().for_each(|reply| self.reply(reply))
            }
            Control::Reply(replies) => self.durable.push_back((None, replies)),
            Control::DurableReply(ticket, replies) => {
                self.durable.push_back((Some(ticket), replies))
            }
            Control::Subscribed(added) => {
                for (id, mut subscription) in added {
                    if let Some(existing) = self.subscriptions.get(&id) {
                        subscription.next_offset = existing.next_offset;
                    }
                    self.watch(id, &subscription);
                    self.subscriptions.insert(id, subscription);
                }
                self.overlaps.update(&self.subscriptions);
            }
            Control::Unsubscribed(ids) => {
                for id in ids {
                    self.subscriptions.remove(&id);
                    self.logs.remove(&id);
                }
                self.overlaps.update(&self.subscriptions);
            }
            Control::AwaitSubAck(pending) => {
                self.pending_subacks.push_back(*pending);
                self.complete_subacks();
            }
            Control::PubAck(pkid) => self.acknowledged(pkid, Stage::Ack, None),
            Control::PubRec(pkid) => {
                if self
                    .inflight
                    .advance(pkid, Stage::Received, Some(Stage::Complete))
                {
                    self.wire.pubrel(pkid, &mut self.out);
                    self.shared.operations.stats.packets_sent.inc();
                    self.progress();
                }
            }
            Control::PubComp(pkid) => self.acknowledged(pkid, Stage::Complete, None),
            Control::Local(message) => self.local(*message),
            Control::Close(reason, why) => {
                self.farewell = Some(why);
                self.ending = Some(Why::Closed(reason));
            }
            Control::TakenOver => self.ending = Some(Why::TakenOver),
            Control::Shutdown => {
                self.drain = Some(Drain::default());
                self.ping_router();
            }
            Control::Snapshot(reply) => {
                let _ = reply.send(SessionState {
                    subscriptions: self.subscriptions.clone(),
                    queued: self.queue.cloned_items(),
                    unacknowledged: self.inflight.unacknowledged(),
                    incoming: Default::default(),
                    last_packet_id: self.inflight.next,
                    overlaps: Default::default(),
                });
            }
        }
    }

    /// Follows the router log behind subscription `id`.
    pub(super) fn watch(&mut self, id: u32, subscription: &Subscription) {
        if subscription.is_local() {
            return;
        }
        if let Some(log) = self
            .shared
            .routing
            .logs
            .log(router_filter(&subscription.filter))
        {
            self.logs.insert(id, log.reader());
        }
    }

    pub(super) fn acknowledged(&mut self, pkid: u16, stage: Stage, to: Option<Stage>) {
        if self.inflight.advance(pkid, stage, to) {
            self.progress();
        }
    }

    pub(super) fn reply(&mut self, reply: Reply) {
        let out = &mut self.out;
        match reply {
            Reply::PubAck(pkid, reason) => self.wire.puback(pkid, reason, out),
            Reply::PubRec(pkid, reason) => self.wire.pubrec(pkid, reason, out),
            Reply::PubComp(pkid, found) => self.wire.pubcomp(pkid, found, out),
            Reply::PingResp => self.wire.pingresp(out),
            Reply::UnsubAck(pkid, existed) => self.wire.unsuback(pkid, &existed, out),
        }
        self.shared.operations.stats.packets_sent.inc();
    }

    /// Writes the SUBACKs whose router subscriptions are all confirmed, in order, each followed
    /// by the retained `$SYS` values it brings.
    pub(super) fn complete_subacks(&mut self) {
        while self
            .pending_subacks
            .front()
            .is_some_and(|p| p.router_acks == 0)
        {
            let Some(done) = self.pending_subacks.pop_front() else {
                break;
            };
            if let Some(pkid) = done.pkid {
                self.wire.suback(pkid, &done.granted, &mut self.out);
                self.shared.operations.stats.packets_sent.inc();
            }
            for message in done.local {
                self.local(message);
            }
            self.send_retained(done.retained);
        }
    }

    /// Puts the retained messages the new subscriptions match at the head of the queue, right
    /// after their SUBACK, in topic order.
    fn send_retained(&mut self, requests: Vec<RetainedRequest>) {
        let now = now_millis();
        let mut deliveries = Vec::new();
        for request in requests {
            for message in self.shared.routing.retained.matching(&request.filter, now) {
                deliveries.push(message.delivery(request.qos, request.identifier));
            }
        }
        for delivery in deliveries.into_iter().rev() {
            if !self.may_read(&delivery) {
                continue;
            }
            let size = delivery.size();
            self.queue.push_front(delivery, size);
        }
    }

    pub(super) fn local(&mut self, message: LocalMessage) {
        let Some(subscription) = self.subscriptions.get(&message.subscription) else {
            return;
        };
        let delivery = Delivery {
            topic: message.topic,
            payload: message.payload,
            qos: 0,
            retain: message.retain,
            properties: None,
            identifiers: subscription.identifier.into_iter().collect(),
            expires_at: None,
        };
        self.enqueue(delivery, None);
    }

    /// Takes the control messages already sent (the router can be ahead of them).
    pub(super) fn catch_up(&mut self) {
        while let Ok(control) = self.control.try_recv() {
            self.on_control(control);
        }
    }
}
