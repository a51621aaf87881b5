//! `bridges:` in `weir.yaml`: one entry per remote broker, with mosquitto's bridge settings under
//! Weir's names (docs/bridges.md maps one onto the other). Each entry is checked while it is
//! parsed, so that an error names the key that holds it: an address that does not parse, a
//! prefix with a wildcard, TLS files that do not load; two bridges with the same name or client
//! id are refused at `bridges`.

use super::paths::ExistingFile;
use serde::{Deserialize, Deserializer};
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use weir_door::bridge::config::{
    Address, Backoff, BridgeConfig, ClientTls, Notifications, Protocol, QueueLimits, Secret, Start,
    TlsVersion, WhenFull,
};
use weir_door::bridge::topics::{Direction, TopicRule};

/// Reads `bridges:`, refusing two bridges with the same name or client id.
pub(super) fn bridges<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<BridgeConfig>, D::Error> {
    let bridges: Vec<BridgeConfig> = Vec::<Bridge>::deserialize(d)?
        .into_iter()
        .map(|b| b.0)
        .collect();
    let (mut names, mut ids) = (HashSet::new(), HashSet::new());
    for bridge in &bridges {
        if !names.insert(bridge.name.as_str()) {
            return Err(serde::de::Error::custom(format_args!(
                "two bridges are named `{}`: names must be unique",
                bridge.name
            )));
        }
        if !ids.insert(bridge.client_id.as_str()) {
            return Err(serde::de::Error::custom(format_args!(
                "two bridges use client id `{}`: the remote would disconnect one for the other",
                bridge.client_id
            )));
        }
    }
    Ok(bridges)
}

/// One entry of `bridges:`, checked as a whole once its keys are read.
#[derive(Deserialize)]
#[serde(try_from = "WrittenBridge")]
struct Bridge(BridgeConfig);

/// A bridge as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenBridge {
    name: String,
    #[serde(deserialize_with = "addresses")]
    addresses: Vec<Address>,
    #[serde(default)]
    round_robin: bool,
    #[serde(default, deserialize_with = "protocol")]
    protocol: Option<Protocol>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    local_client_id: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    clean_start: Option<bool>,
    #[serde(default = "default_keepalive")]
    keepalive_s: u16,
    #[serde(default, deserialize_with = "restart_timeout")]
    restart_timeout_s: Option<Backoff>,
    #[serde(default)]
    start: WrittenStart,
    #[serde(default)]
    threshold: Option<u64>,
    #[serde(default)]
    idle_timeout_s: Option<u64>,
    #[serde(default)]
    tls: Option<TlsValue>,
    #[serde(default = "yes")]
    try_private: bool,
    #[serde(default = "yes")]
    notifications: bool,
    #[serde(default)]
    notification_topic: Option<String>,
    #[serde(default, alias = "local_only")]
    notifications_local_only: bool,
    #[serde(default = "yes")]
    outgoing_retain: bool,
    #[serde(default, deserialize_with = "packet_size")]
    max_packet_size: Option<u32>,
    #[serde(default = "default_inflight", deserialize_with = "inflight")]
    max_inflight: u16,
    #[serde(default = "yes")]
    attempt_unsubscribe: bool,
    #[serde(default)]
    bind_address: Option<IpAddr>,
    /// mosquitto's `local_username`, `local_password` and `local_cleansession` describe the
    /// bridge's connection to its own broker, which a Weir bridge does not make (it is inside
    /// the broker): accepted, with no effect (docs/bridges.md).
    #[serde(default, rename = "local_username")]
    _local_username: Option<String>,
    #[serde(default, rename = "local_password")]
    _local_password: Option<String>,
    #[serde(default, rename = "local_clean_start")]
    _local_clean_start: Option<bool>,
    #[serde(deserialize_with = "topics")]
    topics: Vec<TopicRule>,
    #[serde(default)]
    queue: WrittenQueue,
}

fn yes() -> bool {
    true
}

fn default_keepalive() -> u16 {
    60
}

fn default_inflight() -> u16 {
    100
}

/// `start:`.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum WrittenStart {
    #[default]
    Automatic,
    Lazy,
    Once,
}

impl TryFrom<WrittenBridge> for Bridge {
    type Error = String;

    fn try_from(w: WrittenBridge) -> Result<Self, String> {
        if w.name.is_empty()
            || !w
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "name `{}`: expected letters, digits, `_`, `-` and `.` (it names the bridge's queue, metrics and client id)",
                w.name
            ));
        }
        let start = match (w.start, w.threshold, w.idle_timeout_s) {
            (WrittenStart::Lazy, threshold, idle) => Start::Lazy {
                threshold: threshold.unwrap_or(10),
                idle_timeout: Duration::from_secs(idle.unwrap_or(60)),
            },
            (_, Some(_), _) | (_, _, Some(_)) => {
                return Err("threshold and idle_timeout_s apply to `start: lazy` only".into())
            }
            (WrittenStart::Automatic, ..) => Start::Automatic,
            (WrittenStart::Once, ..) => Start::Once,
        };
        if w.password.is_some() && w.username.is_none() {
            return Err(
                "password without username: MQTT sends a password only with a username".into(),
            );
        }
        // A member of a shared subscription leaves its share cleanly and starts afresh: a kept
        // session would go on being given a share while the bridge is away.
        let shared = w.topics.iter().any(|rule| rule.share.is_some());
        let clean_start = match w.clean_start {
            Some(false) if shared => return Err(
                "`clean_start: false` with a shared subscription (`$share/...`): a bridge with a shared `in` line uses a clean session, so that the remote gives its share to the others while it is away; remove `clean_start`".into(),
            ),
            written => written.unwrap_or(shared),
        };
        let client_id = w
            .client_id
            .unwrap_or_else(|| format!("{}.{}", w.name, hostname()));
        if client_id.is_empty() || client_id.len() > 65535 {
            return Err("client_id: expected 1 to 65535 bytes".into());
        }
        let notifications = Notifications {
            enabled: w.notifications,
            topic: w.notification_topic,
            local_only: w.notifications_local_only,
        };
        if let Some(topic) = &notifications.topic {
            weir_model::topic::check_topic_name(topic)
                .map_err(|e| format!("notification_topic: {e}"))?;
        }
        Ok(Bridge(BridgeConfig {
            local_client_id: w
                .local_client_id
                .unwrap_or_else(|| format!("local.{client_id}")),
            name: w.name,
            addresses: w.addresses,
            round_robin: w.round_robin,
            protocol: w.protocol.unwrap_or(Protocol::V3_1_1),
            client_id,
            username: w.username,
            password: w.password.map(Secret),
            clean_start,
            keepalive_s: w.keepalive_s,
            restart: w.restart_timeout_s.unwrap_or(Backoff::Jittered {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(30),
            }),
            start,
            tls: w.tls.map(|tls| tls.0),
            try_private: w.try_private,
            notifications,
            outgoing_retain: w.outgoing_retain,
            max_packet_size: w.max_packet_size,
            max_inflight: w.max_inflight,
            attempt_unsubscribe: w.attempt_unsubscribe,
            bind_address: w.bind_address,
            topics: w.topics,
            queue: w.queue.into(),
        }))
    }
}

/// This machine's name, for default client ids.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Address>, D::Error> {
    struct Addresses;
    impl<'de> serde::de::Visitor<'de> for Addresses {
        type Value = Vec<AddressValue>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of host[:port]")
        }
        // mosquitto's `addresses` line: several separated by spaces.
        fn visit_str<E: serde::de::Error>(self, line: &str) -> Result<Self::Value, E> {
            line.split_whitespace()
                .map(|a| Address::parse(a, 1883).map(AddressValue).map_err(E::custom))
                .collect()
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut all = Vec::new();
            while let Some(address) = seq.next_element::<AddressValue>()? {
                all.push(address);
            }
            Ok(all)
        }
    }
    let addresses = d.deserialize_any(Addresses)?;
    if addresses.is_empty() {
        return Err(serde::de::Error::custom(
            "no address: expected at least one host[:port]",
        ));
    }
    Ok(addresses.into_iter().map(|a| a.0).collect())
}

/// One `host[:port]`, checked where it is written.
struct AddressValue(Address);

impl<'de> Deserialize<'de> for AddressValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Address::parse(&text, 1883)
            .map(AddressValue)
            .map_err(serde::de::Error::custom)
    }
}

fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Protocol>, D::Error> {
    let written = super::broker::number_or_text(d)?;
    match written.as_str() {
        "3.1" | "mqttv31" => Ok(Some(Protocol::V3_1)),
        "3.1.1" | "4" | "mqttv311" => Ok(Some(Protocol::V3_1_1)),
        "5" | "5.0" | "mqttv50" => Ok(Some(Protocol::V5)),
        other => Err(serde::de::Error::custom(format_args!(
            "unknown protocol `{other}`, expected \"3.1\", \"3.1.1\" or \"5\""
        ))),
    }
}

fn restart_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Backoff>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Constant(u64),
        Range(Vec<u64>),
    }
    let s = Duration::from_secs;
    match Written::deserialize(d)? {
        Written::Constant(0) => Err(serde::de::Error::custom(
            "expected at least 1 second between attempts",
        )),
        Written::Constant(n) => Ok(Some(Backoff::Constant(s(n)))),
        Written::Range(range) => match range[..] {
            [base, cap] if base >= 1 && base <= cap => Ok(Some(Backoff::Jittered {
                base: s(base),
                cap: s(cap),
            })),
            _ => Err(serde::de::Error::custom(
                "expected seconds, or [base, cap] with 1 <= base <= cap",
            )),
        },
    }
}

fn packet_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(d)? {
        n @ 16..=268_435_455 => Ok(Some(n)),
        n => Err(serde::de::Error::custom(format_args!(
            "expected a packet size from 16 to 268435455 bytes, got {n}"
        ))),
    }
}

fn inflight<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    match u16::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "expected from 1 to 65535 messages in flight, got 0",
        )),
        n => Ok(n),
    }
}

/// A topic line as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenTopic {
    pattern: String,
    #[serde(default)]
    direction: WrittenDirection,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    local_prefix: String,
    #[serde(default)]
    remote_prefix: String,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WrittenDirection {
    #[default]
    Out,
    In,
    Both,
}

fn topics<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TopicRule>, D::Error> {
    let lines = Vec::<TopicLine>::deserialize(d)?;
    if lines.is_empty() {
        return Err(serde::de::Error::custom(
            "no topic line: a bridge forwards nothing without one",
        ));
    }
    Ok(lines.into_iter().map(|line| line.0).collect())
}

/// One topic line, checked where it is written.
#[derive(Deserialize)]
#[serde(try_from = "WrittenTopic")]
struct TopicLine(TopicRule);

impl TryFrom<WrittenTopic> for TopicLine {
    type Error = String;

    fn try_from(t: WrittenTopic) -> Result<Self, String> {
        let direction = match t.direction {
            WrittenDirection::Out => Direction::Out,
            WrittenDirection::In => Direction::In,
            WrittenDirection::Both => Direction::Both,
        };
        TopicRule::new(
            &t.pattern,
            direction,
            t.qos,
            &t.local_prefix,
            &t.remote_prefix,
        )
        .map(TopicLine)
        .map_err(|e| format!("`{}`: {e}", t.pattern))
    }
}

/// `tls:`, checked (its files loaded) where it is written.
#[derive(Deserialize)]
#[serde(try_from = "WrittenTls")]
struct TlsValue(ClientTls);

/// `tls:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenTls {
    #[serde(default)]
    ca: Option<PemFile<Certificates>>,
    #[serde(default)]
    capath: Option<ExistingFile>,
    #[serde(default)]
    cert: Option<PemFile<Certificates>>,
    #[serde(default)]
    key: Option<PemFile<PrivateKey>>,
    #[serde(default)]
    insecure: bool,
    #[serde(default, deserialize_with = "alpn")]
    alpn: Vec<String>,
    #[serde(default)]
    version: Option<String>,
}

fn alpn<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Written::deserialize(d)? {
        Written::One(one) => one.split(',').map(|p| p.trim().to_string()).collect(),
        Written::Many(many) => many,
    })
}

impl TryFrom<WrittenTls> for TlsValue {
    type Error = String;

    fn try_from(w: WrittenTls) -> Result<Self, String> {
        if w.cert.is_some() != w.key.is_some() {
            return Err("cert and key go together".into());
        }
        let version = match w.version.as_deref() {
            None => None,
            Some("tlsv1.2" | "1.2") => Some(TlsVersion::V1_2),
            Some("tlsv1.3" | "1.3") => Some(TlsVersion::V1_3),
            Some(other) => {
                return Err(format!(
                "version `{other}`: expected tlsv1.2 or tlsv1.3 (older versions are not offered)"
            ))
            }
        };
        let tls = ClientTls {
            ca: w.ca.map(|f| f.path().to_path_buf()),
            capath: w.capath.map(|f| f.path().to_path_buf()),
            cert: w.cert.map(|f| f.path().to_path_buf()),
            key: w.key.map(|f| f.path().to_path_buf()),
            insecure: w.insecure,
            alpn: w.alpn,
            version,
        };
        weir_door::bridge::client::tls::client_config(&tls).map_err(|e| e.to_string())?;
        Ok(TlsValue(tls))
    }
}

/// What a PEM file must hold.
trait PemKind {
    /// `Err` with what is wrong when `pem` does not hold it.
    fn check(pem: &[u8]) -> Result<(), String>;
}

/// At least one certificate.
struct Certificates;

impl PemKind for Certificates {
    fn check(pem: &[u8]) -> Result<(), String> {
        let certs = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        if certs.is_empty() {
            return Err("expected a PEM file with at least one CERTIFICATE".into());
        }
        Ok(())
    }
}

/// A private key.
struct PrivateKey;

impl PemKind for PrivateKey {
    fn check(pem: &[u8]) -> Result<(), String> {
        match rustls_pemfile::private_key(&mut &pem[..]) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("expected a PEM file with a PRIVATE KEY".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A PEM file that exists and holds a `K`, checked where it is written.
struct PemFile<K>(ExistingFile, std::marker::PhantomData<K>);

impl<K> PemFile<K> {
    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl<'de, K: PemKind> Deserialize<'de> for PemFile<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let file = ExistingFile::deserialize(d)?;
        let pem = std::fs::read(file.path()).map_err(serde::de::Error::custom)?;
        K::check(&pem).map_err(|e| {
            serde::de::Error::custom(format_args!("{}: {e}", file.path().display()))
        })?;
        Ok(PemFile(file, std::marker::PhantomData))
    }
}

/// `queue:` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct WrittenQueue {
    max_bytes: u64,
    max_messages: u64,
    qos0: bool,
    when_full: WrittenWhenFull,
}

impl Default for WrittenQueue {
    fn default() -> Self {
        let limits = QueueLimits::default();
        WrittenQueue {
            max_bytes: limits.max_bytes,
            max_messages: limits.max_messages,
            qos0: limits.qos0,
            when_full: WrittenWhenFull::DropOldest,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum WrittenWhenFull {
    DropOldest,
    Block,
}

impl From<WrittenQueue> for QueueLimits {
    fn from(w: WrittenQueue) -> Self {
        QueueLimits {
            max_bytes: w.max_bytes,
            max_messages: w.max_messages,
            qos0: w.qos0,
            when_full: match w.when_full {
                WrittenWhenFull::DropOldest => WhenFull::DropOldest,
                WrittenWhenFull::Block => WhenFull::Block,
            },
        }
    }
}
