//! What the door needs to know: its listeners, how clients authenticate, and its limits.
//!
//! Plain data, filled from `weir.yaml` by the broker (which validates it with located errors).

use super::tls::TlsSource;
use crate::security::{AclSource, PasswordSource};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The door's configuration.
#[derive(Debug, Clone)]
pub struct DoorConfig {
    /// Where it listens.
    pub listeners: Vec<ListenerConfig>,
    /// Most clients connected at once; more are refused with "server unavailable/busy".
    pub max_connections: usize,
    /// A client's queue: messages (0: no limit).
    pub max_queued_messages: usize,
    /// A client's queue: bytes of topic and payload (0: no limit).
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for persistent sessions whose clients are away.
    pub queue_qos0_messages: bool,
    /// The longest keep-alive an MQTT 5 client may use, in seconds (0: no limit); one asking
    /// for more, or for none, is told this one (server keep-alive), as mosquitto's
    /// `max_keepalive`.
    pub max_keep_alive: u16,
    /// Where retained messages are kept across restarts (`None`: in memory only).
    pub persistence: Option<PersistenceConfig>,
    /// How often `$SYS/broker/...` is published (zero: never).
    pub sys_interval: Duration,
    /// The router's log limits.
    pub router: RouterLimits,
}

/// The router's limits (`broker.router` in weir.yaml, beside `max_connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterLimits {
    /// Packets the router hands a link in one turn.
    pub max_outgoing_packet_count: u64,
    /// Bytes of one segment of a filter's log.
    pub max_segment_size: usize,
    /// Segments a filter's log keeps.
    pub max_segment_count: usize,
}

/// Keeping state across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistenceConfig {
    /// The directory of the store (created if missing).
    pub dir: PathBuf,
    /// How often what changed is saved (also at shutdown).
    pub autosave_interval: Duration,
}

/// One listener.
#[derive(Clone)]
pub struct ListenerConfig {
    /// Its name, for logs.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// TLS, when set.
    pub tls: Option<Arc<TlsSource>>,
    /// MQTT in WebSocket frames (subprotocol `mqtt`, paths `/` and `/mqtt`), inside TLS when
    /// that is set.
    pub websockets: bool,
    /// Who may connect.
    pub auth: AuthConfig,
    /// Largest packet accepted, in bytes.
    pub max_packet_size: u32,
    /// QoS 1 and 2 messages in flight to or from one client.
    pub max_inflight: u16,
    /// Topic aliases an MQTT 5 client may set (mosquitto's `max_topic_alias`).
    pub max_topic_alias: u16,
    /// Time a new connection has to send CONNECT.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("name", &self.name)
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field("websockets", &self.websockets)
            .field("auth", &self.auth)
            .field("max_packet_size", &self.max_packet_size)
            .field("max_inflight", &self.max_inflight)
            .field("max_topic_alias", &self.max_topic_alias)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Username/password authentication.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// Whether a client without a username may connect.
    pub allow_anonymous: bool,
    /// Username → password.
    pub users: BTreeMap<String, String>,
    /// mosquitto's password file (after `users`).
    pub password_file: Option<Arc<PasswordSource>>,
    /// mosquitto's ACL file: without one, every client may publish and read anything.
    pub acl: Option<Arc<AclSource>>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let users: Vec<&String> = self.users.keys().collect();
        f.debug_struct("AuthConfig")
            .field("allow_anonymous", &self.allow_anonymous)
            .field("users", &users)
            .field(
                "password_file",
                &self.password_file.as_ref().map(|p| p.path()),
            )
            .finish()
    }
}

impl AuthConfig {
    /// Anyone may connect.
    pub fn anonymous() -> AuthConfig {
        AuthConfig {
            allow_anonymous: true,
            users: BTreeMap::new(),
            password_file: None,
            acl: None,
        }
    }
}
