//! Why a connection's reading half stopped, and what the client is told.

use rmqtt_codec::error::DecodeError;
use rmqtt_codec::v5::DisconnectReasonCode;

/// Why the reading half stopped.
#[derive(Debug)]
pub(crate) enum End {
    /// The client sent DISCONNECT (MQTT 5 reason 0x04 asks for the will).
    Disconnect {
        /// Publish the will anyway.
        with_will: bool,
        /// A new session expiry interval.
        session_expiry: Option<u32>,
    },
    /// The socket closed without DISCONNECT.
    Closed,
    /// Nothing for 1.5 times the keep-alive.
    KeepAlive,
    /// The client broke the protocol.
    Violation {
        /// What it did.
        what: String,
        /// The MQTT 5 reason code to tell it.
        reason: DisconnectReasonCode,
    },
    /// The door stopped it (shutdown, or its writing half ended).
    Stopped,
}

/// The violation a packet that cannot be decoded is, with the MQTT 5 reason that fits.
pub(super) fn malformed(error: DecodeError) -> End {
    let reason = match error {
        DecodeError::MaxSizeExceeded { .. } => DisconnectReasonCode::PacketTooLarge,
        DecodeError::InvalidTopicName => DisconnectReasonCode::TopicNameInvalid,
        DecodeError::InvalidTopicFilter => DisconnectReasonCode::TopicFilterInvalid,
        DecodeError::InvalidProtocol | DecodeError::UnsupportedPacketType => {
            DisconnectReasonCode::ProtocolError
        }
        _ => DisconnectReasonCode::MalformedPacket,
    };
    End::Violation {
        what: format!("a malformed packet ({error})"),
        reason,
    }
}

impl End {
    /// What to tell an MQTT 5 client in the DISCONNECT that ends its connection, if anything.
    pub fn reason(&self) -> Option<DisconnectReasonCode> {
        match self {
            End::Violation { reason, .. } => Some(*reason),
            End::KeepAlive => Some(DisconnectReasonCode::KeepAliveTimeout),
            _ => None,
        }
    }
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Disconnect {
                with_will: true, ..
            } => f.write_str("disconnected, asking for its will"),
            End::Disconnect { .. } => f.write_str("disconnected"),
            End::Closed => f.write_str("closed the connection without DISCONNECT"),
            End::KeepAlive => f.write_str("sent nothing for 1.5 times its keep-alive"),
            End::Violation { what, .. } => write!(f, "broke the protocol: {what}"),
            End::Stopped => f.write_str("stopped by the broker"),
        }
    }
}
