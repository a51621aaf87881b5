//! Starting and stopping the broker: `weir.yaml`'s `broker:` section mapped onto the connection
//! layer (`weir_door`), which runs rumqttd's router behind Weir's own listeners.

use crate::config::{AuthConfig, BrokerConfig, ListenerConfig};
use crate::reloads::{Reloadable, Reloads};
use std::sync::Arc;
use std::time::Duration;
use weir_door::security::{AclSource, PasswordSource};
use weir_door::{self as door, Door, DoorError};

/// Builds the connection layer's configuration from Weir's, for `max_connections` clients at
/// once.
pub fn door_config(
    config: &BrokerConfig,
    max_connections: usize,
) -> Result<door::DoorConfig, DoorError> {
    let router = door::RouterLimits {
        max_outgoing_packet_count: config.router.max_outgoing_packet_count,
        max_segment_size: config.router.max_segment_size,
        max_segment_count: config.router.max_segment_count,
    };
    let listeners = config
        .listeners
        .iter()
        .map(|listener| listener_config(listener, listener.auth.as_ref().or(config.auth.as_ref())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(door::DoorConfig {
        listeners,
        max_connections,
        max_queued_messages: config.max_queued_messages,
        max_queued_bytes: config.max_queued_bytes,
        queue_qos0_messages: config.queue_qos0_messages,
        max_keep_alive: config.max_keepalive,
        persistence: config
            .persistence
            .as_ref()
            .map(|p| door::PersistenceConfig {
                dir: p.path.clone(),
                autosave_interval: Duration::from_secs(p.autosave_interval_s),
            }),
        sys_interval: Duration::from_secs(config.sys_interval),
        router,
    })
}

fn listener_config(
    listener: &ListenerConfig,
    auth: Option<&AuthConfig>,
) -> Result<door::ListenerConfig, DoorError> {
    let tls = match &listener.tls {
        Some(tls) => Some(Arc::new(door::tls::TlsSource::new(
            door::tls::TlsSettings {
                cert: tls.cert.path().to_path_buf(),
                key: tls.key.path().to_path_buf(),
                ca: tls.ca.as_ref().map(|ca| ca.path().to_path_buf()),
                require_certificate: tls.require_certificate,
                use_identity_as_username: tls.use_identity_as_username,
            },
        )?)),
        None => None,
    };
    let auth = match auth {
        Some(auth) => door::AuthConfig {
            allow_anonymous: auth.allows_anonymous(),
            users: auth.users.clone(),
            password_file: auth
                .password_file
                .as_ref()
                .map(|p| Arc::new(PasswordSource::new(p.path(), p.file.clone()))),
            acl: auth
                .acl_file
                .as_ref()
                .map(|a| Arc::new(AclSource::new(&a.path, a.file.clone()))),
        },
        None => door::AuthConfig::anonymous(),
    };
    let limits = &listener.limits;
    Ok(door::ListenerConfig {
        name: listener.name(),
        address: listener.address,
        tls,
        websockets: listener.protocol.is_websockets(),
        auth,
        max_packet_size: u32::try_from(limits.max_payload_size).unwrap_or(u32::MAX),
        max_inflight: u16::try_from(limits.max_inflight_count).unwrap_or(u16::MAX),
        max_topic_alias: limits.max_topic_alias,
        connect_timeout: Duration::from_millis(u64::from(limits.connection_timeout_ms)),
    })
}

/// File descriptors Weir needs besides its clients' sockets (listeners, files, the metrics
/// endpoint, upstream sinks).
const SPARE_FILES: u64 = 256;

/// How many clients may be connected at once: `configured` (`router.max_connections`), else as
/// many as the open file limit allows. Raises the soft limit on open files to the hard limit
/// first (each client is a socket; a service's soft limit is often 1024), says the figure in
/// the log, and warns when even the hard limit is below what `configured` clients need.
fn client_limit(configured: Option<usize>) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!("cannot read or raise the open file limit: {e}");
            None
        }
    };
    match (configured, limit) {
        (Some(max), Some(limit)) if limit < (max as u64).saturating_add(SPARE_FILES) => {
            tracing::warn!(
                "the open file limit is {limit}, below the {} that {max} clients need: connections \
                 past it are refused (raise the hard limit, e.g. LimitNOFILE= in systemd)",
                (max as u64).saturating_add(SPARE_FILES)
            );
            max
        }
        (Some(max), _) => {
            tracing::info!("clients: up to {max} at once (router.max_connections)");
            max
        }
        (None, Some(limit)) => {
            let max =
                usize::try_from(limit.saturating_sub(SPARE_FILES).max(1)).unwrap_or(usize::MAX);
            tracing::info!(
                "clients: up to {max} at once (the open file limit, {limit}, less {SPARE_FILES} \
                 for Weir's own files; set router.max_connections or raise the limit to change it)"
            );
            max
        }
        (None, None) => {
            tracing::info!(
                "clients: up to {UNKNOWN_LIMIT_CLIENTS} at once (the open file limit is unknown)"
            );
            UNKNOWN_LIMIT_CLIENTS
        }
    }
}

/// Clients at once when neither `router.max_connections` nor the open file limit says.
const UNKNOWN_LIMIT_CLIENTS: usize = 1024;

/// A running broker.
pub struct Broker {
    door: Door,
    /// The password and ACL files its listeners use, read again on SIGHUP.
    passwords: Vec<Arc<PasswordSource>>,
    acls: Vec<Arc<AclSource>>,
    certificates: Vec<(String, Arc<door::tls::TlsSource>)>,
}

impl Broker {
    /// Binds every listener (failing with the listener's name) and starts the router. Clients
    /// are accepted once [`Broker::open`] is called.
    pub fn start(config: &BrokerConfig) -> Result<Broker, DoorError> {
        let door_config = door_config(config, client_limit(config.router.max_connections))?;
        let passwords = door_config
            .listeners
            .iter()
            .filter_map(|l| l.auth.password_file.clone())
            .collect();
        let acls = door_config
            .listeners
            .iter()
            .filter_map(|l| l.auth.acl.clone())
            .collect();
        let certificates = door_config
            .listeners
            .iter()
            .filter_map(|l| Some((l.name.clone(), l.tls.clone()?)))
            .collect();
        let door = Door::start(door_config)?;
        for listener in &config.listeners {
            let transport = if listener.tls.is_some() { "tls" } else { "tcp" };
            let auth = listener.auth.as_ref().or(config.auth.as_ref());
            let access = match auth {
                Some(auth) if auth.has_users() && auth.allows_anonymous() => {
                    "username/password or anonymous"
                }
                Some(auth) if auth.has_users() => "username/password",
                _ => "anonymous",
            };
            tracing::info!(
                listener = %listener.name(),
                "{} listener on {} ({transport}, {access})",
                listener.protocol,
                listener.address
            );
        }
        Ok(Broker {
            door,
            passwords,
            acls,
            certificates,
        })
    }

    /// Reads the password, ACL, certificate and key files again (SIGHUP). A file that fails
    /// to parse keeps its previous version, and the error is logged; connections stay up
    /// either way (new TLS handshakes use the new certificate). Each file read is counted in
    /// `reloads`.
    pub fn reload_security(&self, reloads: &Reloads) {
        for (name, source) in &self.certificates {
            let result = source.reload();
            reloads.count(Reloadable::Certificate, result.is_ok(), 1);
            match result {
                Ok(()) => tracing::info!(listener = %name, "TLS certificate and key reloaded"),
                Err(e) => {
                    tracing::error!(listener = %name, "{e}: keeping the previous TLS configuration")
                }
            }
        }
        let mut done = std::collections::HashSet::new();
        for source in &self.passwords {
            let first = done.insert(source.path().to_path_buf());
            let result = source.reload();
            if first {
                reloads.count(Reloadable::PasswordFile, result.is_ok(), 1);
            }
            match result {
                Ok(users) if first => tracing::info!(
                    "password file {} reloaded: {users} users",
                    source.path().display()
                ),
                Ok(_) => {}
                Err(e) if first => tracing::error!("{e}: keeping the previous version"),
                Err(_) => {}
            }
        }
        for source in &self.acls {
            let first = done.insert(source.path().to_path_buf());
            let result = source.reload();
            if first {
                reloads.count(Reloadable::AclFile, result.is_ok(), 1);
            }
            match result {
                Ok(()) if first => {
                    tracing::info!("ACL file {} reloaded", source.path().display())
                }
                Ok(()) => {}
                Err(e) if first => tracing::error!("{e}: keeping the previous version"),
                Err(_) => {}
            }
        }
        if done.is_empty() && self.certificates.is_empty() {
            tracing::info!("hangup: no password, ACL or certificate file to reload");
        }
    }

    /// The connection layer.
    pub fn door(&self) -> &Door {
        &self.door
    }

    /// The connection layer, to open or stop it.
    pub fn door_mut(&mut self) -> &mut Door {
        &mut self.door
    }
}
