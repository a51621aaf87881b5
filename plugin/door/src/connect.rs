//! CONNECT: what a client asks for, whether it may have it, and the CONNACK that says so.
//!
//! Refusals follow mosquitto 2.0: a wrong username or password and a client that must log in
//! are both "not authorised" (3.1.1 code 5; MQTT 5 0x86 and 0x87), an empty client id with a
//! persistent session (or any empty id in MQTT 3.1) is "identifier rejected" (2 / 0x85), a full
//! broker is "server unavailable" (3 / 0x89). Each refusal is a CONNACK in the client's version,
//! then the connection closes.

use super::codec::{Connack, ConnectPacket, Version, Wire};
use super::config::AuthConfig;
use crate::message::Properties;
use bytes::Bytes;
use rmqtt_codec::{v3, v5};
use std::fmt;
use std::num::NonZeroU16;

/// A client's CONNECT, whatever its version.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// The client's version.
    pub version: Version,
    /// Client id as sent (may be empty).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Keep-alive in seconds (0: none).
    pub keep_alive: u16,
    /// How long the session outlives the connection, in seconds (3.1.1: 0 for a clean session,
    /// for ever otherwise).
    pub session_expiry: u32,
    /// QoS 1 and 2 messages the client takes in flight (MQTT 5 receive maximum).
    pub receive_maximum: u16,
    /// Largest packet the client accepts (0: no limit).
    pub max_packet_size: u32,
    /// Topic aliases the client accepts from the door (MQTT 5; 0: none).
    pub topic_alias_maximum: u16,
    /// Whether the client takes reason strings on acknowledgements (MQTT 5 request problem
    /// information; MQTT 3 has none).
    pub problem_information: bool,
    /// Whether the client asked for response information in the CONNACK (MQTT 5).
    pub response_information: bool,
    /// The will.
    pub will: Option<Will>,
    /// Username, if given.
    pub username: Option<String>,
    /// Password, if given.
    pub password: Option<Bytes>,
    /// MQTT 5 enhanced authentication method (not supported).
    pub auth_method: Option<String>,
    /// The client is a bridge (mosquitto's `try_private`): its subscriptions are no-local and
    /// keep the retain flag as published.
    pub bridge: bool,
}

/// A client's will: published by the door when the client goes without saying goodbye.
#[derive(Debug, Clone)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: u8,
    /// Retain flag.
    pub retain: bool,
    /// Seconds to wait before publishing (MQTT 5).
    pub delay: u32,
    /// MQTT 5 properties forwarded with it.
    pub properties: Option<Properties>,
}

impl ConnectRequest {
    /// The wire this client negotiated: its version, maximum packet size, topic alias maximum,
    /// and reason strings unless it declined them.
    pub fn wire(&self) -> Wire {
        Wire::negotiated(
            self.version,
            self.max_packet_size,
            self.topic_alias_maximum,
            self.problem_information,
        )
    }

    /// Normalises a decoded CONNECT.
    pub fn from_packet(packet: ConnectPacket, version: Version) -> ConnectRequest {
        match packet {
            ConnectPacket::V3(connect) => {
                let connect = *connect;
                ConnectRequest {
                    version,
                    client_id: connect.client_id.to_string(),
                    clean_start: connect.clean_session,
                    keep_alive: connect.keep_alive,
                    session_expiry: if connect.clean_session { 0 } else { u32::MAX },
                    receive_maximum: u16::MAX,
                    max_packet_size: 0,
                    topic_alias_maximum: 0,
                    problem_information: false,
                    response_information: false,
                    will: connect.last_will.map(|will| Will {
                        topic: will.topic.to_string(),
                        payload: will.message,
                        qos: will.qos.value(),
                        retain: will.retain,
                        delay: 0,
                        properties: None,
                    }),
                    username: connect.username.map(|u| u.to_string()),
                    password: connect.password,
                    auth_method: None,
                    bridge: false,
                }
            }
            ConnectPacket::V5(connect) => {
                let connect = *connect;
                ConnectRequest {
                    version,
                    client_id: connect.client_id.to_string(),
                    clean_start: connect.clean_start,
                    keep_alive: connect.keep_alive,
                    session_expiry: connect.session_expiry_interval_secs,
                    receive_maximum: connect.receive_max.map_or(u16::MAX, NonZeroU16::get),
                    max_packet_size: connect.max_packet_size.map_or(0, |size| size.get()),
                    topic_alias_maximum: connect.topic_alias_max,
                    problem_information: connect.request_problem_info,
                    response_information: connect.request_response_info,
                    will: connect.last_will.map(will_v5),
                    username: connect.username.map(|u| u.to_string()),
                    password: connect.password,
                    auth_method: connect.auth_method.map(|m| m.to_string()),
                    bridge: false,
                }
            }
        }
    }

    /// Whether the session outlives this connection.
    pub fn persistent(&self) -> bool {
        self.session_expiry > 0
    }

    /// The keep-alive the door holds the client to under `max` seconds (0: no limit), and
    /// whether the CONNACK must say so (MQTT 5 server keep-alive).
    ///
    /// As mosquitto 2.0's `max_keepalive`: an MQTT 5 client asking for more than `max`, or for
    /// none, is given `max`; MQTT 3 has no way to be told, so its own stands.
    ///
    /// ```
    /// # use weir_door::connect::ConnectRequest;
    /// # use weir_door::codec::Version;
    /// let mut request = ConnectRequest::anonymous(Version::V5, "c");
    /// request.keep_alive = 600;
    /// assert_eq!(request.keep_alive_under(60), (60, Some(60)));
    /// request.keep_alive = 0;
    /// assert_eq!(request.keep_alive_under(60), (60, Some(60)));
    /// assert_eq!(request.keep_alive_under(0), (0, None));
    /// ```
    pub fn keep_alive_under(&self, max: u16) -> (u16, Option<u16>) {
        let over = max > 0 && (self.keep_alive == 0 || self.keep_alive > max);
        if over && self.version.is_v5() {
            (max, Some(max))
        } else {
            (self.keep_alive, None)
        }
    }

    /// The CONNACK's response information for `client_id`, when the client asked for it: the
    /// topic prefix `response/<client id>` under which it may take responses (levels and
    /// wildcards in the id become `_`).
    ///
    /// ```
    /// # use weir_door::connect::ConnectRequest;
    /// # use weir_door::codec::Version;
    /// let mut request = ConnectRequest::anonymous(Version::V5, "a/b+");
    /// assert_eq!(request.response_information_for("a/b+"), None);
    /// request.response_information = true;
    /// assert_eq!(request.response_information_for("a/b+").as_deref(), Some("response/a_b_"));
    /// ```
    pub fn response_information_for(&self, client_id: &str) -> Option<String> {
        self.response_information.then(|| {
            let level: String = client_id
                .chars()
                .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
                .collect();
            format!("response/{level}")
        })
    }

    /// A clean MQTT `version` CONNECT from `client_id`, without credentials or will.
    pub fn anonymous(version: Version, client_id: &str) -> ConnectRequest {
        ConnectRequest {
            version,
            client_id: client_id.to_string(),
            clean_start: true,
            keep_alive: 60,
            session_expiry: 0,
            receive_maximum: u16::MAX,
            max_packet_size: 0,
            topic_alias_maximum: 0,
            problem_information: true,
            response_information: false,
            will: None,
            username: None,
            password: None,
            auth_method: None,
            bridge: false,
        }
    }
}

fn will_v5(will: v5::LastWill) -> Will {
    let properties = Properties {
        payload_format_indicator: will.is_utf8_payload.map(u8::from),
        message_expiry_interval: will.message_expiry_interval.map(|i| i.get()),
        response_topic: will.response_topic.map(|t| t.to_string()),
        correlation_data: will.correlation_data,
        user_properties: will
            .user_properties
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        content_type: will.content_type.map(|c| c.to_string()),
    };
    Will {
        topic: will.topic.to_string(),
        payload: will.message,
        qos: will.qos.value(),
        retain: will.retain,
        delay: will.will_delay_interval_sec.unwrap_or(0),
        properties: Some(properties),
    }
}

/// Why a CONNECT is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A protocol level Weir does not speak.
    UnsupportedVersion,
    /// An empty or unusable client id.
    BadClientId,
    /// Too many clients.
    ServerBusy,
    /// A username that is unknown or a password that does not match.
    BadCredentials,
    /// No credentials where they are required.
    NotAuthorized,
    /// MQTT 5 enhanced authentication, which Weir does not support.
    BadAuthMethod,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::UnsupportedVersion => "unsupported protocol version",
            Refusal::BadClientId => "client identifier rejected",
            Refusal::ServerBusy => "too many connections",
            Refusal::BadCredentials => "bad username or password",
            Refusal::NotAuthorized => "not authorised",
            Refusal::BadAuthMethod => "unsupported authentication method",
        })
    }
}

impl Refusal {
    /// The CONNACK that says so.
    pub fn connack(self) -> Connack {
        use v3::ConnectAckReason as C3;
        use v5::ConnectAckReason as C5;
        let (v3_code, v5_code) = match self {
            Refusal::UnsupportedVersion => (
                C3::UnacceptableProtocolVersion,
                C5::UnsupportedProtocolVersion,
            ),
            Refusal::BadClientId => (C3::IdentifierRejected, C5::ClientIdentifierNotValid),
            Refusal::ServerBusy => (C3::ServiceUnavailable, C5::ServerBusy),
            // mosquitto 2.0 answers a bad password with "not authorised" in MQTT 3.1.1.
            Refusal::BadCredentials => (C3::NotAuthorized, C5::BadUserNameOrPassword),
            Refusal::NotAuthorized => (C3::NotAuthorized, C5::NotAuthorized),
            Refusal::BadAuthMethod => (C3::NotAuthorized, C5::BadAuthenticationMethod),
        };
        Connack {
            v3_code,
            session_present: false,
            v5: v5::ConnectAck {
                reason_code: v5_code,
                reason_string: Some(self.to_string().into()),
                ..Default::default()
            },
        }
    }
}

/// Checks a client's credentials against `auth`.
///
/// ```
/// use weir_door::config::AuthConfig;
/// use weir_door::connect::{authenticate, Refusal};
/// let auth = AuthConfig {
///     allow_anonymous: false,
///     users: [("alice".into(), "pw".into())].into(),
///     password_file: None,
///     acl: None,
/// };
/// assert_eq!(authenticate(&auth, Some("alice"), Some(b"pw")), Ok(()));
/// assert_eq!(authenticate(&auth, Some("alice"), Some(b"no")), Err(Refusal::BadCredentials));
/// assert_eq!(authenticate(&auth, None, None), Err(Refusal::NotAuthorized));
/// ```
pub fn authenticate(
    auth: &AuthConfig,
    username: Option<&str>,
    password: Option<&[u8]>,
) -> Result<(), Refusal> {
    let Some(username) = username else {
        return if auth.allow_anonymous {
            Ok(())
        } else {
            Err(Refusal::NotAuthorized)
        };
    };
    let password = password.unwrap_or_default();
    if let Some(expected) = auth.users.get(username) {
        return if same(expected.as_bytes(), password) {
            Ok(())
        } else {
            Err(Refusal::BadCredentials)
        };
    }
    match auth
        .password_file
        .as_ref()
        .and_then(|file| file.current().verify(username, password))
    {
        Some(true) => Ok(()),
        Some(false) => Err(Refusal::BadCredentials),
        // A username nobody configured: anonymous listeners without users let it in, as
        // mosquitto does.
        None if auth.users.is_empty() && auth.password_file.is_none() && auth.allow_anonymous => {
            Ok(())
        }
        None => Err(Refusal::BadCredentials),
    }
}

/// Compares in time that depends on the lengths only.
fn same(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// What the door grants a client, for its CONNACK.
#[derive(Debug, Clone)]
pub struct Granted {
    /// Whether a session was resumed.
    pub session_present: bool,
    /// The id the door chose, when the client sent none.
    pub assigned_client_id: Option<String>,
    /// QoS 1 and 2 publishes the client may have in flight to the door.
    pub receive_maximum: u16,
    /// Largest packet the door accepts.
    pub max_packet_size: u32,
    /// Topic aliases the client may use.
    pub topic_alias_maximum: u16,
    /// The keep-alive the door holds the client to, when it is not the client's own (MQTT 5
    /// server keep-alive).
    pub server_keep_alive: Option<u16>,
    /// The response information the client asked for (MQTT 5).
    pub response_information: Option<String>,
}

impl Granted {
    /// The CONNACK of an accepted connection.
    pub fn connack(&self) -> Connack {
        Connack {
            v3_code: v3::ConnectAckReason::ConnectionAccepted,
            session_present: self.session_present,
            v5: v5::ConnectAck {
                session_present: self.session_present,
                reason_code: v5::ConnectAckReason::Success,
                receive_max: NonZeroU16::new(self.receive_maximum).unwrap_or(NonZeroU16::MAX),
                max_packet_size: Some(self.max_packet_size),
                assigned_client_id: self.assigned_client_id.clone().map(Into::into),
                topic_alias_max: self.topic_alias_maximum,
                server_keepalive_sec: self.server_keep_alive,
                response_info: self.response_information.clone().map(Into::into),
                ..Default::default()
            },
        }
    }
}
