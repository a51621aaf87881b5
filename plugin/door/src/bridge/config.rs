//! What a bridge needs to know: the remote broker, how to connect to it, what to forward each
//! way, and how much to keep while the link is down. Plain data, filled from `weir.yaml`'s
//! `bridges:` by the broker, which validates it with located errors.

use super::topics::TopicRule;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One bridge: a remote broker and the topics forwarded to and from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Its name: letters, digits, `_`, `-` and `.` (labels, logs, the queue on disk).
    pub name: String,
    /// The remote's addresses, tried in order (see [`BridgeConfig::round_robin`]).
    pub addresses: Vec<Address>,
    /// `false`: the first address is the primary, retried while on another; `true`: stay on
    /// whichever address works.
    pub round_robin: bool,
    /// The MQTT version spoken to the remote.
    pub protocol: Protocol,
    /// The client id on the remote.
    pub client_id: String,
    /// The name of the bridge's own publisher on this broker (mosquitto's `local_clientid`).
    pub local_client_id: String,
    /// Username on the remote.
    pub username: Option<String>,
    /// Password on the remote.
    pub password: Option<Secret>,
    /// Start a new session on the remote at each connection (else the remote keeps it).
    pub clean_start: bool,
    /// Seconds between keep-alive pings (0: none).
    pub keepalive_s: u16,
    /// How long to wait before connecting again.
    pub restart: Backoff,
    /// When to connect.
    pub start: Start,
    /// TLS to the remote.
    pub tls: Option<ClientTls>,
    /// Tell a mosquitto-compatible remote that this client is a bridge (protocol level with
    /// bit 7 set), so that it does not send back what the bridge published and keeps the
    /// retain flag of what it forwards (MQTT 3.x; MQTT 5 bridges subscribe with no-local).
    pub try_private: bool,
    /// The connection's state published as `1`/`0`, retained.
    pub notifications: Notifications,
    /// Forward the retain flag to the remote (else every outgoing message is unretained).
    pub outgoing_retain: bool,
    /// Largest packet the bridge sends or accepts (`None`: MQTT's limit).
    pub max_packet_size: Option<u32>,
    /// QoS 1 and 2 messages sent to the remote and not yet acknowledged (the remote's receive
    /// maximum lowers it).
    pub max_inflight: u16,
    /// Unsubscribe on the remote from `out` topics at connection (mosquitto's
    /// `bridge_attempt_unsubscribe`).
    pub attempt_unsubscribe: bool,
    /// The local address outgoing connections are made from.
    pub bind_address: Option<IpAddr>,
    /// What is forwarded, and which way.
    pub topics: Vec<TopicRule>,
    /// The store-and-forward queue's limits.
    pub queue: QueueLimits,
}

impl BridgeConfig {
    /// The topic of the connection's state notifications.
    pub fn notification_topic(&self) -> String {
        self.notifications
            .topic
            .clone()
            .unwrap_or_else(|| format!("$SYS/broker/connection/{}/state", self.client_id))
    }
}

/// A remote's address: a host name or IP address and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Address {
    /// Reads `host[:port]` (`[v6]:port` for an IPv6 address with a port), with `default_port`
    /// when none is given.
    ///
    /// ```
    /// use weir_door::bridge::config::Address;
    /// let a = Address::parse("broker.example.com:8883", 1883).unwrap();
    /// assert_eq!((a.host.as_str(), a.port), ("broker.example.com", 8883));
    /// assert_eq!(Address::parse("10.0.0.1", 1883).unwrap().port, 1883);
    /// assert_eq!(Address::parse("[::1]:1884", 1883).unwrap().host, "::1");
    /// assert!(Address::parse("host:port", 1883).is_err());
    /// assert!(Address::parse("", 1883).is_err());
    /// ```
    pub fn parse(text: &str, default_port: u16) -> Result<Address, String> {
        let text = text.trim();
        let bad = |why: &str| Err(format!("address `{text}`: {why}"));
        if text.is_empty() {
            return bad("empty, expected host[:port]");
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((host, after)) = rest.split_once(']') else {
                return bad("an IPv6 address opened with `[` is not closed");
            };
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return bad("expected `:port` after `]`"),
            }
        } else if text.matches(':').count() > 1 {
            (text, None)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return bad("expected a host name or IP address");
        }
        let port = match port {
            None => default_port,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port > 0 => port,
                _ => return bad("the port must be a number from 1 to 65535"),
            },
        };
        Ok(Address {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The MQTT version a bridge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// MQTT 3.1 (`MQIsdp`, level 3).
    V3_1,
    /// MQTT 3.1.1 (level 4).
    V3_1_1,
    /// MQTT 5.
    V5,
}

impl Protocol {
    /// Whether this is MQTT 5.
    pub fn is_v5(self) -> bool {
        self == Protocol::V5
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::V3_1 => "MQTT 3.1",
            Protocol::V3_1_1 => "MQTT 3.1.1",
            Protocol::V5 => "MQTT 5",
        })
    }
}

/// A password: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// How long a bridge waits before connecting again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Always the same time.
    Constant(Duration),
    /// From `base` up to `cap`, growing with each failure, with jitter (mosquitto's
    /// `restart_timeout base cap`: "decorrelated jitter").
    Jittered {
        /// The shortest wait.
        base: Duration,
        /// The longest wait.
        cap: Duration,
    },
}

impl Backoff {
    /// The wait after `previous` (the wait before it, zero for the first failure), with
    /// `random` a number in `[0, 1)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use weir_door::bridge::config::Backoff;
    /// let s = Duration::from_secs;
    /// let backoff = Backoff::Jittered { base: s(5), cap: s(30) };
    /// assert_eq!(backoff.next(Duration::ZERO, 0.0), s(5));
    /// assert_eq!(backoff.next(s(5), 0.5), s(10));
    /// assert_eq!(backoff.next(s(20), 0.5), s(30));
    /// assert_eq!(Backoff::Constant(s(2)).next(s(2), 0.5), s(2));
    /// ```
    pub fn next(&self, previous: Duration, random: f64) -> Duration {
        match *self {
            Backoff::Constant(wait) => wait,
            Backoff::Jittered { base, cap } => {
                let top = previous.saturating_mul(3).max(base);
                let span = top.saturating_sub(base).as_secs_f64() * random.clamp(0.0, 1.0);
                (base + Duration::from_secs_f64(span)).min(cap)
            }
        }
    }

    /// The first wait.
    pub fn first(&self) -> Duration {
        self.next(Duration::ZERO, 0.0)
    }
}

/// When a bridge connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At start-up, and again after each failure.
    Automatic,
    /// When `threshold` messages are queued; disconnects after `idle_timeout` with nothing to
    /// send.
    Lazy {
        /// Queued messages that start the connection.
        threshold: u64,
        /// Idle time that ends it.
        idle_timeout: Duration,
    },
    /// At start-up only: not again after the connection fails.
    Once,
}

/// TLS to the remote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTls {
    /// PEM file of the CA certificates that sign the remote's certificate.
    pub ca: Option<PathBuf>,
    /// A directory of PEM files of CA certificates (mosquitto's `bridge_capath`).
    pub capath: Option<PathBuf>,
    /// The bridge's own certificate chain (PEM), for remotes that ask for one.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// Accept a remote certificate whose name does not match the address (the chain is still
    /// verified).
    pub insecure: bool,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
    /// The TLS version: `None` for 1.2 or 1.3.
    pub version: Option<TlsVersion>,
}

/// A TLS protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

/// The connection's state published as `1` (connected) or `0`, retained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifications {
    /// Whether notifications are published.
    pub enabled: bool,
    /// Their topic (default `$SYS/broker/connection/<client id>/state`).
    pub topic: Option<String>,
    /// Locally only (not on the remote, and no will there).
    pub local_only: bool,
}

/// What a bridge's queue may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Bytes on disk (topic and payload of each message; 0: no limit).
    pub max_bytes: u64,
    /// Messages (0: no limit).
    pub max_messages: u64,
    /// Queue QoS 0 messages (in memory) while the link is down.
    pub qos0: bool,
    /// What happens when the queue is full.
    pub when_full: WhenFull,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_bytes: 1 << 30,
            max_messages: 0,
            qos0: false,
            when_full: WhenFull::DropOldest,
        }
    }
}

impl QueueLimits {
    /// Whether `messages` messages of `bytes` bytes are more than the queue may hold.
    ///
    /// ```
    /// use weir_door::bridge::config::QueueLimits;
    /// let limits = QueueLimits { max_messages: 2, max_bytes: 0, ..Default::default() };
    /// assert!(!limits.exceeded(2, 1 << 40));
    /// assert!(limits.exceeded(3, 0));
    /// ```
    pub fn exceeded(&self, messages: u64, bytes: u64) -> bool {
        (self.max_messages > 0 && messages > self.max_messages)
            || (self.max_bytes > 0 && bytes > self.max_bytes)
    }
}

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// The oldest messages make room (each counted as dropped).
    DropOldest,
    /// Local publishers wait for room.
    Block,
}
