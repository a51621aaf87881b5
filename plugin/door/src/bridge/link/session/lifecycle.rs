//! A session's beginning and end: the link's state on both sides, the subscriptions of the
//! `in` lines, the retained messages the `out` lines match, and a clean goodbye.

use super::Session;
use crate::bridge::client::Stream;
use crate::bridge::queue::{Outbox, Queued};
use crate::bridge::topics;
use crate::now_millis;
use bytes::Bytes;
use bytestring::ByteString;
use rmqtt_codec::types::{Publish, QoS};
use std::collections::HashSet;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, WriteHalf};

impl Session<'_> {
    /// The link is up: counters, notifications, subscriptions, retained messages.
    pub(super) fn connected(&mut self) {
        let link = self.link;
        link.metrics.set_connected(true);
        link.volatile.set_connected(true);
        link.notify_local(true);
        self.subscribe();
        let notifications = &link.config.notifications;
        if notifications.enabled && !notifications.local_only {
            self.notify_remote(b"1");
        }
        self.queue_retained();
    }

    /// Publishes the link's state on the remote, retained, at QoS 0: a QoS 1 publish would
    /// take a place in the remote's in-flight quota, which a resumed session may have full
    /// until its first PUBRELs (mosquitto disconnects a client that exceeds it).
    pub(super) fn notify_remote(&mut self, state: &'static [u8]) {
        let publish = Publish {
            dup: false,
            retain: true,
            qos: QoS::AtMostOnce,
            topic: ByteString::from(self.link.config.notification_topic()),
            packet_id: None,
            payload: Bytes::from_static(state),
            properties: None,
        };
        let _ = self.wire.publish(publish, &mut self.out);
    }

    /// SUBSCRIBE to the remote filters of the `in` lines (and UNSUBSCRIBE from those of the
    /// `out`-only lines, as mosquitto's `bridge_attempt_unsubscribe`).
    pub(super) fn subscribe(&mut self) {
        let config = &self.link.config;
        // A link that has left its shared subscriptions does not take a share again.
        let left = self.link.leave.asked.is_cancelled();
        let filters: Vec<(String, u8)> = config
            .topics
            .iter()
            .filter(|rule| rule.direction.inward() && !(left && rule.share.is_some()))
            .map(|rule| (rule.remote_filter().to_string(), rule.qos))
            .collect();
        if !filters.is_empty() {
            let pkid = self.window.control_pkid(self.cursor);
            if self.wire.subscribe(pkid, &filters, &mut self.out).is_ok() {
                let names = filters.into_iter().map(|(f, _)| f).collect();
                self.subscribed.push((pkid, names));
            }
        }
        let outward: Vec<String> = config
            .topics
            .iter()
            .filter(|rule| !rule.direction.inward())
            .map(|rule| rule.remote_filter().to_string())
            .collect();
        if config.attempt_unsubscribe && !outward.is_empty() {
            let pkid = self.window.control_pkid(self.cursor);
            let _ = self.wire.unsubscribe(pkid, &outward, &mut self.out);
        }
    }

    /// Queues the retained messages the `out` lines match, as mosquitto's bridge does on
    /// each connection, so that the remote has them.
    pub(super) fn queue_retained(&self) {
        let link = self.link;
        let mut seen = HashSet::new();
        let mut outbox = Outbox::default();
        for rule in link.config.topics.iter().filter(|r| r.direction.out()) {
            let Ok(filter) = weir_model::topic::TopicFilter::new(rule.local_filter()) else {
                continue;
            };
            for retained in link.door.retained(&filter) {
                let Ok(topic) = std::str::from_utf8(&retained.topic) else {
                    continue;
                };
                let Some((remote, qos)) = topics::outward(&link.config.topics, topic) else {
                    continue;
                };
                if !seen.insert(remote.clone()) {
                    continue;
                }
                let queued = Queued {
                    topic: Bytes::from(remote),
                    payload: retained.payload,
                    qos: retained.qos.min(qos),
                    retain: true,
                    properties: retained.properties,
                    queued_at: now_millis(),
                };
                if queued.qos == 0 {
                    link.volatile.push(queued);
                } else {
                    outbox.push(link.queue.clone(), queued);
                }
            }
        }
        // Retained locally already: the writes need not be awaited.
        drop(outbox.submit());
    }

    /// A clean end: the state notification, DISCONNECT (so the remote keeps the will to
    /// itself), then the socket flushed.
    pub(super) async fn say_goodbye(&mut self, writer: &mut WriteHalf<Box<dyn Stream>>) {
        let config = &self.link.config;
        if config.notifications.enabled && !config.notifications.local_only {
            self.notify_remote(b"0");
        }
        self.wire.disconnect(&mut self.out);
        let flush = async {
            writer.write_all(&self.out).await?;
            writer.shutdown().await
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), flush).await;
    }

    /// The link is down.
    pub(super) fn disconnected(&mut self) {
        self.flush_removed();
        if let Some(disk) = self.disk.take() {
            disk.abort();
        }
        if let Some(probe) = self.probe.take() {
            probe.abort();
        }
        let link = self.link;
        link.metrics.count_dropped(self.qos0.len() as u64);
        self.qos0.clear();
        link.metrics.set_connected(false);
        link.volatile.set_connected(false);
        link.notify_local(false);
        // Nothing of the shares is in flight any more: asked to leave, the link has.
        if link.leave.asked.is_cancelled() {
            link.leave.done.cancel();
        }
    }
}
