//! What a connection's reading half, and the door, tell its writing half.

use super::session::state::SessionState;
use super::session::Subscription;
use super::sys::LocalMessage;
use rmqtt_codec::v5::{DisconnectReasonCode, PublishAckReason, SubscribeAckReason};
use weir_model::topic::TopicFilter;

/// What a connection's reading half (and the door) tells its writing half.
///
/// Kept to 40 bytes (larger, rarer payloads are boxed): a connection's channel of these holds
/// a block of 32 from the start, idle or not.
#[derive(Debug)]
pub enum Control {
    /// Replies to write, in order.
    Reply(Vec<Reply>),
    /// Replies to write, in order, once the ticket says what bridges forward from their
    /// publishes is on disk (later replies wait behind them).
    DurableReply(crate::bridge::queue::Ticket, Vec<Reply>),
    /// Subscriptions added or replaced, by door subscription id.
    Subscribed(Vec<(u32, Subscription)>),
    /// Subscriptions removed.
    Unsubscribed(Vec<u32>),
    /// A SUBACK to write once the router has confirmed its subscriptions.
    AwaitSubAck(Box<PendingSubAck>),
    /// The client acknowledged a QoS 1 delivery.
    PubAck(u16),
    /// The client received a QoS 2 delivery.
    PubRec(u16),
    /// The client completed a QoS 2 delivery.
    PubComp(u16),
    /// A `$SYS` message for the client.
    Local(Box<LocalMessage>),
    /// The reading half ended: tell the client `reason` (MQTT 5) with the words why, and close.
    Close(Option<DisconnectReasonCode>, String),
    /// Another connection took the client id.
    TakenOver,
    /// The broker shuts down: deliver what the router holds, then disconnect.
    Shutdown,
    /// A copy of the session as it is now, for the store.
    Snapshot(tokio::sync::oneshot::Sender<SessionState>),
}

/// A reply the reading half decided on.
#[derive(Debug)]
pub enum Reply {
    /// PUBACK.
    PubAck(u16, PublishAckReason),
    /// PUBREC.
    PubRec(u16, PublishAckReason),
    /// PUBCOMP (whether the packet id was known).
    PubComp(u16, bool),
    /// PINGRESP.
    PingResp,
    /// UNSUBACK (whether each subscription existed).
    UnsubAck(u16, Vec<bool>),
}

/// A SUBACK waiting for the router.
#[derive(Debug)]
pub struct PendingSubAck {
    /// The client's packet id (`None`: a resumed session's subscriptions, acknowledged to
    /// nobody).
    pub pkid: Option<u16>,
    /// Granted QoS or refusal, per filter.
    pub granted: Vec<Result<u8, SubscribeAckReason>>,
    /// Router confirmations still to come.
    pub router_acks: usize,
    /// Retained `$SYS` values to send after the SUBACK.
    pub local: Vec<LocalMessage>,
    /// Subscriptions that get the retained messages they match after the SUBACK.
    pub retained: Vec<RetainedRequest>,
}

/// A new subscription's claim on the retained messages it matches (as its retain handling
/// allows), served once the SUBACK is written.
#[derive(Debug)]
pub struct RetainedRequest {
    /// The filter (never a shared subscription's).
    pub filter: TopicFilter,
    /// The granted QoS.
    pub qos: u8,
    /// The subscription identifier.
    pub identifier: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::Control;

    #[test]
    fn a_control_message_stays_small() {
        assert!(
            std::mem::size_of::<Control>() <= 40,
            "{}",
            std::mem::size_of::<Control>()
        );
    }
}
