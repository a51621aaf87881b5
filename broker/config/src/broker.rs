//! The `broker:` section of `weir.yaml`: listeners, TLS, authentication and router limits.
//!
//! Each struct validates itself while it is parsed, so that an error is reported at the key
//! that holds the wrong value. The binary's `server` module turns the result into the
//! connection layer's settings.

use super::auth::AuthConfig;
use super::paths::ExistingFile;
use super::persistence::PersistenceConfig;
use serde::{Deserialize, Deserializer};
use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;

/// The broker: where it listens and how much it keeps.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Router limits shared by all listeners.
    #[serde(default)]
    pub router: RouterLimits,
    /// Authentication for every listener that has no `auth` of its own.
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// The MQTT listeners (at least one).
    #[serde(default = "default_listeners", deserialize_with = "listeners")]
    pub listeners: Vec<ListenerConfig>,
    /// Messages a client's queue holds before what passes it is held back or dropped
    /// (0: no limit), as mosquitto's `max_queued_messages`.
    #[serde(default = "default_max_queued_messages")]
    pub max_queued_messages: usize,
    /// Bytes (topic and payload) a client's queue holds (0: no limit), as mosquitto's
    /// `max_queued_bytes`.
    #[serde(default)]
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for persistent sessions whose clients are away, as mosquitto's
    /// `queue_qos0_messages` (default off: they are dropped and counted).
    #[serde(default)]
    pub queue_qos0_messages: bool,
    /// The longest keep-alive MQTT 5 clients may use, in seconds (0: no limit), as
    /// mosquitto's `max_keepalive`: a client asking for more, or for none, is told this one.
    #[serde(default)]
    pub max_keepalive: u16,
    /// What survives a restart, and where (`None`: nothing, `persistence: off`).
    #[serde(default, deserialize_with = "super::persistence::persistence")]
    pub persistence: Option<PersistenceConfig>,
    /// Seconds between updates of `$SYS/broker/...` (0: none).
    #[serde(default = "default_sys_interval")]
    pub sys_interval: u64,
}

impl BrokerConfig {
    /// Checks that every listener lets someone in: `allow_anonymous: false` needs users
    /// (`users`, `password_file`) or client certificates that name them.
    pub fn check_access(&self) -> Result<(), String> {
        for listener in &self.listeners {
            let Some(auth) = listener.auth.as_ref().or(self.auth.as_ref()) else {
                continue;
            };
            let by_certificate = listener
                .tls
                .as_ref()
                .is_some_and(|tls| tls.use_identity_as_username);
            if !auth.allows_anonymous() && !auth.has_users() && !by_certificate {
                let key = if listener.auth.is_some() {
                    format!("broker.listeners[`{}`].auth", listener.name())
                } else {
                    "broker.auth".to_string()
                };
                return Err(format!(
                    "{key}: allow_anonymous: false needs at least one entry in `users`, a `password_file`, or (listener `{}`) `tls.use_identity_as_username`: nobody could connect",
                    listener.name()
                ));
            }
        }
        Ok(())
    }
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            router: RouterLimits::default(),
            auth: None,
            listeners: default_listeners(),
            max_queued_messages: default_max_queued_messages(),
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keepalive: 0,
            persistence: None,
            sys_interval: default_sys_interval(),
        }
    }
}

fn default_max_queued_messages() -> usize {
    1000
}

fn default_sys_interval() -> u64 {
    10
}

fn default_listeners() -> Vec<ListenerConfig> {
    vec![ListenerConfig::plain(
        Protocol::Mqtt,
        SocketAddr::from(([127, 0, 0, 1], 1883)),
    )]
}

fn listeners<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ListenerConfig>, D::Error> {
    let listeners = Vec::<ListenerConfig>::deserialize(d)?;
    if listeners.is_empty() {
        return Err(serde::de::Error::custom(
            "no listener: expected at least one entry with `protocol` and `address`",
        ));
    }
    let mut names = HashSet::new();
    let mut addresses = HashSet::new();
    for listener in &listeners {
        if !addresses.insert(listener.address) {
            return Err(serde::de::Error::custom(format_args!(
                "two listeners use address {}: one listener serves every MQTT version",
                listener.address
            )));
        }
        if !names.insert(listener.name()) {
            return Err(serde::de::Error::custom(format_args!(
                "two listeners are named `{}`: names must be unique",
                listener.name()
            )));
        }
    }
    Ok(listeners)
}

/// Limits of rumqttd's router. The defaults suit a gateway: each topic filter keeps at most
/// `max_segment_size * max_segment_count` bytes (1 MiB) of recent messages in memory, and a
/// subscriber is handed up to `max_outgoing_packet_count` messages at a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterLimits {
    /// Maximum simultaneous client connections (`None`: as many as the open file limit
    /// allows, as mosquitto sets no limit).
    #[serde(deserialize_with = "some_at_least_one")]
    pub max_connections: Option<usize>,
    /// Messages the router hands a subscriber at a time.
    #[serde(deserialize_with = "at_least_one_u64")]
    pub max_outgoing_packet_count: u64,
    /// Size of one in-memory log segment per topic filter, in bytes (at least 1024).
    #[serde(deserialize_with = "segment_size")]
    pub max_segment_size: usize,
    /// Number of segments kept per topic filter (at least 2: the router drops the oldest
    /// when the newest fills, so only `count - 1` full segments are always kept).
    #[serde(deserialize_with = "segment_count")]
    pub max_segment_count: usize,
}

impl Default for RouterLimits {
    fn default() -> Self {
        RouterLimits {
            max_connections: None,
            max_outgoing_packet_count: 1000,
            max_segment_size: 256 * 1024,
            max_segment_count: 4,
        }
    }
}

fn at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "expected a number of at least 1, got 0",
        )),
        n => Ok(n),
    }
}

fn some_at_least_one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    at_least_one(d).map(Some)
}

fn at_least_one_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match u64::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "expected a number of at least 1, got 0",
        )),
        n => Ok(n),
    }
}

fn packet_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        n @ 1..=268_435_455 => Ok(n),
        n => Err(serde::de::Error::custom(format_args!(
            "expected a packet size from 1 to 268435455 bytes (MQTT's largest), got {n}"
        ))),
    }
}

fn inflight<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        n @ 1..=65535 => Ok(n),
        n => Err(serde::de::Error::custom(format_args!(
            "expected from 1 to 65535 messages in flight, got {n}"
        ))),
    }
}

fn segment_count<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        n if n < 2 => Err(serde::de::Error::custom(format_args!(
            "expected at least 2 segments (the router drops the oldest when the newest fills), got {n}"
        ))),
        n => Ok(n),
    }
}

fn segment_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match usize::deserialize(d)? {
        n if n < 1024 => Err(serde::de::Error::custom(format_args!(
            "expected a segment size of at least 1024 bytes, got {n}"
        ))),
        n => Ok(n),
    }
}

/// The protocol a listener speaks. Every listener serves MQTT 3.1, 3.1.1 and 5 (the version
/// comes from each client's CONNECT), over TCP or over WebSocket; `"3.1.1"` and `"5"` are
/// accepted as names for `mqtt`, as earlier configurations wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// MQTT over TCP, any version (written `mqtt`).
    Mqtt,
    /// Written `"3.1.1"` (or `v4`, `4`): MQTT over TCP, any version.
    V3_1_1,
    /// Written `"5"` (or `v5`): MQTT over TCP, any version.
    V5,
    /// MQTT over WebSocket, any version (written `websockets`, as mosquitto's `protocol
    /// websockets`).
    WebSockets,
}

impl Protocol {
    /// Whether MQTT is carried in WebSocket frames.
    pub fn is_websockets(self) -> bool {
        self == Protocol::WebSockets
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::WebSockets => f.write_str("MQTT 3.1/3.1.1/5 over WebSocket"),
            _ => f.write_str("MQTT 3.1/3.1.1/5"),
        }
    }
}

/// A version as written, `5` or `"3.1.1"`: YAML reads the first as a number.
pub(super) fn number_or_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(f64),
        Text(String),
    }
    Ok(match Written::deserialize(d)? {
        Written::Number(n) => n.to_string(),
        Written::Text(s) => s,
    })
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let written = number_or_text(d)?;
        match written.as_str() {
            "mqtt" => Ok(Protocol::Mqtt),
            "3.1.1" | "v4" | "4" | "311" => Ok(Protocol::V3_1_1),
            "5" | "5.0" | "v5" => Ok(Protocol::V5),
            #[cfg(feature = "websockets")]
            "websockets" => Ok(Protocol::WebSockets),
            #[cfg(not(feature = "websockets"))]
            "websockets" => Err(serde::de::Error::custom(super::features::missing(
                "websockets",
                "a `websockets` listener",
            ))),
            other => Err(serde::de::Error::custom(format_args!(
                "unknown protocol `{other}`, expected mqtt or websockets (\"3.1.1\" and \"5\" mean mqtt)"
            ))),
        }
    }
}

/// One MQTT listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// A name for logs (default: `mqtt-PORT`, or `ws-PORT` for WebSocket).
    #[serde(default)]
    pub name: Option<String>,
    /// `mqtt` (`"3.1.1"` and `"5"` mean the same) or `websockets`: every MQTT version on this
    /// port, over TCP or over WebSocket.
    pub protocol: Protocol,
    /// Socket address to bind, e.g. `127.0.0.1:1883` or `0.0.0.0:8883`.
    pub address: SocketAddr,
    /// Serve MQTT over TLS with this certificate and key.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Authentication for this listener (overrides `broker.auth`).
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    /// Per-connection limits.
    #[serde(default)]
    pub limits: ListenerLimits,
}

impl ListenerConfig {
    fn plain(protocol: Protocol, address: SocketAddr) -> Self {
        ListenerConfig {
            name: None,
            protocol,
            address,
            tls: None,
            auth: None,
            limits: ListenerLimits::default(),
        }
    }

    /// The listener's name, given or derived from its protocol and port.
    pub fn name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None if self.protocol.is_websockets() => format!("ws-{}", self.address.port()),
            None => format!("mqtt-{}", self.address.port()),
        }
    }
}

/// Limits that apply to each connection on a listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListenerLimits {
    /// Largest accepted packet, in bytes (advertised to MQTT 5 clients as their maximum).
    #[serde(deserialize_with = "packet_size")]
    pub max_payload_size: usize,
    /// Unacknowledged QoS 1/2 messages in flight per connection, each way.
    #[serde(deserialize_with = "inflight")]
    pub max_inflight_count: usize,
    /// Topic aliases an MQTT 5 client may set on this listener (0: none), as mosquitto's
    /// `max_topic_alias`.
    pub max_topic_alias: u16,
    /// Time a new connection has to send CONNECT, in milliseconds.
    pub connection_timeout_ms: u16,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            max_payload_size: 1024 * 1024,
            max_inflight_count: 100,
            max_topic_alias: 10,
            connection_timeout_ms: 10_000,
        }
    }
}

/// A TLS certificate chain and private key, in PEM files, checked when the file is loaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, try_from = "WrittenTls")]
pub struct TlsConfig {
    /// PEM file with the server certificate (and its chain).
    pub cert: ExistingFile,
    /// PEM file with the private key.
    pub key: ExistingFile,
    /// PEM file with the CA certificates that sign client certificates.
    pub ca: Option<ExistingFile>,
    /// Refuse clients without a valid certificate (needs `ca`).
    pub require_certificate: bool,
    /// The client certificate's common name is the username (for the ACL); no password is
    /// asked (needs `ca`).
    pub use_identity_as_username: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenTls {
    cert: ExistingFile,
    key: ExistingFile,
    #[serde(default)]
    ca: Option<ExistingFile>,
    #[serde(default)]
    require_certificate: bool,
    #[serde(default)]
    use_identity_as_username: bool,
}

impl TryFrom<WrittenTls> for TlsConfig {
    type Error = String;

    fn try_from(written: WrittenTls) -> Result<Self, String> {
        let pem = |file: &ExistingFile| {
            std::fs::read(file.path())
                .map_err(|e| format!("cannot read {}: {e}", file.path().display()))
        };
        let cert_pem = pem(&written.cert)?;
        let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("cert {}: {e}", written.cert.path().display()))?;
        if certs.is_empty() {
            return Err(format!(
                "cert {}: expected a PEM file with at least one CERTIFICATE",
                written.cert.path().display()
            ));
        }
        let key_pem = pem(&written.key)?;
        match rustls_pemfile::private_key(&mut key_pem.as_slice()) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(format!(
                    "key {}: expected a PEM file with a PRIVATE KEY",
                    written.key.path().display()
                ))
            }
            Err(e) => return Err(format!("key {}: {e}", written.key.path().display())),
        }
        if written.ca.is_none() && (written.require_certificate || written.use_identity_as_username)
        {
            return Err(
                "require_certificate and use_identity_as_username need `ca`, the CA that signs client certificates".into(),
            );
        }
        Ok(TlsConfig {
            cert: written.cert,
            key: written.key,
            ca: written.ca,
            require_certificate: written.require_certificate,
            use_identity_as_username: written.use_identity_as_username,
        })
    }
}
