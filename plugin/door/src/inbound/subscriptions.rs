//! SUBSCRIBE and UNSUBSCRIBE from a client: plain subscriptions go to the router on the client's
//! link, `$SYS` ones to the door's `$SYS`, shared ones to their group ([`crate::shared`]);
//! new subscriptions claim the retained messages they match.

use super::{End, Inbound, Next};
use crate::codec::SubscriptionOptions;
use crate::control::{Control, PendingSubAck, Reply, RetainedRequest};
use crate::session::{is_local_filter, Subscription};
use crate::shared::{self, Member};
use crate::DoorError;
use bytestring::ByteString;
use rmqtt_codec::v5::{DisconnectReasonCode, SubscribeAckReason};
use tokio::io::AsyncRead;
use weir_model::topic::TopicFilter;

impl<R: AsyncRead + Unpin> Inbound<R> {
    pub(super) async fn subscribe(
        &mut self,
        pkid: u16,
        filters: Vec<(ByteString, SubscriptionOptions)>,
        id: Option<u32>,
    ) -> Next {
        let mut granted = Vec::with_capacity(filters.len());
        let mut added = Vec::new();
        let mut router_filters = Vec::new();
        let mut local = Vec::new();
        let mut retained = Vec::new();
        for (filter, mut options) in filters {
            let parsed = match self.admit(&filter, &options) {
                Ok(parsed) => parsed,
                Err(Refused::Ack(reason)) => {
                    granted.push(Err(reason));
                    continue;
                }
                Err(Refused::End(end)) => return Next::End(end),
            };
            let group = shared::split(&filter);
            options.qos = options.qos.min(2);
            if self.bridge && group.is_none() {
                // As mosquitto serves a bridge: what it publishes does not come back to it,
                // and what it forwards keeps its retain flag.
                options.no_local = true;
                options.retain_as_published = true;
            }
            let existing = self.filters.get(&*filter).copied();
            let sub_id = existing.unwrap_or_else(|| {
                let id = self.next_subscription;
                self.next_subscription = self.next_subscription.wrapping_add(1).max(1);
                id
            });
            let subscription = Subscription {
                filter: filter.to_string(),
                options,
                identifier: id,
                next_offset: None,
            };
            if let Some((group, plain)) = group {
                if let Err(e) = self.join(group, plain, sub_id).await {
                    tracing::warn!(client = %self.client_id, "shared subscription `{filter}` refused: {e}");
                    granted.push(Err(SubscribeAckReason::QuotaExceeded));
                    continue;
                }
            } else if subscription.is_local() {
                local.extend(self.shared.operations.subscribe_local(
                    &self.shared.sessions.registry,
                    self.connection,
                    &self.control,
                    sub_id,
                    parsed,
                ));
            } else {
                // Retain handling 1: only for a new subscription; 2: never.
                let wants_retained = match options.retain_handling {
                    0 => true,
                    1 => existing.is_none(),
                    _ => false,
                };
                if wants_retained {
                    retained.push(RetainedRequest {
                        filter: parsed,
                        qos: options.qos,
                        identifier: id,
                    });
                }
                router_filters.push((sub_id, filter.to_string()));
            }
            if existing.is_none() {
                self.filters.insert(filter.to_string(), sub_id);
                self.shared.operations.stats.subscriptions.inc();
            }
            added.push((sub_id, subscription));
            granted.push(Ok(options.qos));
        }
        let router_acks = router_filters.len();
        self.tell_writer(Control::Subscribed(added));
        self.tell_writer(Control::AwaitSubAck(Box::new(PendingSubAck {
            pkid: Some(pkid),
            granted,
            router_acks,
            local,
            retained,
        })));
        for (sub_id, filter) in router_filters {
            self.batch.subscribe(sub_id, filter);
        }
        Next::Continue
    }

    /// `filter` parsed, if this client may subscribe to it with `options`.
    fn admit(
        &mut self,
        filter: &str,
        options: &SubscriptionOptions,
    ) -> Result<TopicFilter, Refused> {
        let parsed = parse_filter(filter).map_err(|e| {
            tracing::debug!(client = %self.client_id, "subscription refused: {e}");
            Refused::Ack(SubscribeAckReason::TopicFilterInvalid)
        })?;
        let group = shared::split(filter);
        if group.is_some() && options.no_local {
            return Err(Refused::End(End::Violation {
                what: format!("no-local on shared subscription `{filter}`"),
                reason: DisconnectReasonCode::ProtocolError,
            }));
        }
        if !self.may_subscribe(&parsed, group.map(|(_, plain)| plain)) {
            self.shared.operations.stats.acl_denied_subscriptions.inc();
            tracing::info!(client = %self.client_id, "subscription to `{filter}` denied by the ACL");
            return Err(Refused::Ack(SubscribeAckReason::NotAuthorized));
        }
        Ok(parsed)
    }

    /// Makes this session a member of `group` on `filter`, as subscription `sub_id`.
    async fn join(&mut self, group: &str, filter: &str, sub_id: u32) -> Result<(), DoorError> {
        let member = Member {
            client_id: self.client_id.clone(),
            subscription: sub_id,
            tx: self.mailbox.clone(),
            live: self.live.clone(),
        };
        let shared = self.shared.clone();
        shared
            .routing
            .groups
            .join(&shared, group, filter, member)
            .await
    }

    pub(super) fn unsubscribe(&mut self, pkid: u16, filters: Vec<ByteString>) {
        let mut existed = Vec::with_capacity(filters.len());
        let mut removed = Vec::new();
        let mut router_filters = Vec::new();
        for filter in filters {
            match self.filters.remove(&*filter) {
                Some(id) => {
                    removed.push(id);
                    if let Some((group, plain)) = shared::split(&filter) {
                        self.shared
                            .routing
                            .groups
                            .leave(group, plain, &self.client_id);
                    } else if !is_local_filter(&filter) {
                        router_filters.push(filter.to_string());
                    }
                    existed.push(true);
                }
                None => existed.push(false),
            }
        }
        self.shared
            .operations
            .stats
            .subscriptions
            .dec_by(removed.len() as u64);
        self.shared
            .operations
            .sys
            .unsubscribe(self.connection, &removed);
        self.tell_writer(Control::Unsubscribed(removed));
        self.replies.push(Reply::UnsubAck(pkid, existed));
        if !router_filters.is_empty() {
            self.batch.unsubscribe(router_filters);
        }
    }
}

/// A filter as the client wrote it, checked: `$share/GROUP/FILTER` or a plain filter.
impl<R: AsyncRead + Unpin> Inbound<R> {
    /// Whether the ACL lets this client subscribe to `filter` (a shared subscription is
    /// checked by its `plain` filter).
    fn may_subscribe(&mut self, filter: &TopicFilter, plain: Option<&str>) -> bool {
        let Some(acl) = &mut self.acl else {
            return true;
        };
        match plain.map(TopicFilter::new) {
            Some(Ok(plain)) => acl.may_subscribe(&plain),
            Some(Err(_)) => false,
            None => acl.may_subscribe(filter),
        }
    }
}

fn parse_filter(filter: &str) -> Result<TopicFilter, String> {
    let plain = match filter.strip_prefix("$share/") {
        Some(shared) => match shared.split_once('/') {
            Some((group, rest)) if !group.is_empty() && !group.contains(['+', '#']) => rest,
            _ => return Err(format!("invalid shared subscription `{filter}`")),
        },
        None => filter,
    };
    TopicFilter::new(plain).map_err(|e| e.to_string())?;
    TopicFilter::new(filter).map_err(|e| e.to_string())
}

/// Why one filter of a SUBSCRIBE is not taken.
enum Refused {
    /// Refused in the SUBACK with this reason.
    Ack(SubscribeAckReason),
    /// A protocol violation that ends the connection.
    End(End),
}
