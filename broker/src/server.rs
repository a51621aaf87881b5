//! Starting and stopping the embedded rumqttd broker.
//!
//! [`rumqttd_config`] maps Weir's configuration onto rumqttd's settings; [`Broker::start`]
//! checks that every listener can bind (rumqttd would only log a failed bind and carry on),
//! then runs rumqttd's router and listeners on their own threads.

use crate::config::{AuthConfig, BrokerConfig, ListenerConfig, Protocol};
use std::collections::HashMap;
use std::net::TcpListener;
use std::thread;
use thiserror::Error;

/// Why the broker could not start or stopped.
#[derive(Debug, Error)]
pub enum ServerError {
    /// A listener's address cannot be bound.
    #[error("listener `{name}` ({protocol}) cannot bind {address}: {source}")]
    Bind {
        name: String,
        protocol: Protocol,
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// rumqttd refused to start.
    #[error("the MQTT broker failed: {0}")]
    Rumqttd(String),
    /// A thread could not be spawned.
    #[error("cannot start the broker thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Builds rumqttd's configuration from Weir's.
pub fn rumqttd_config(config: &BrokerConfig) -> rumqttd::Config {
    let router = rumqttd::RouterConfig {
        max_connections: config.router.max_connections,
        max_outgoing_packet_count: config.router.max_outgoing_packet_count,
        max_segment_size: config.router.max_segment_size,
        max_segment_count: config.router.max_segment_count,
        ..Default::default()
    };
    let mut v4 = HashMap::new();
    let mut v5 = HashMap::new();
    for listener in &config.listeners {
        let auth = listener.auth.as_ref().or(config.auth.as_ref());
        let settings = server_settings(listener, auth);
        match listener.protocol {
            Protocol::V3_1_1 => v4.insert(listener.name(), settings),
            Protocol::V5 => v5.insert(listener.name(), settings),
        };
    }
    rumqttd::Config {
        router,
        v4: (!v4.is_empty()).then_some(v4),
        v5: (!v5.is_empty()).then_some(v5),
        ..Default::default()
    }
}

fn server_settings(
    listener: &ListenerConfig,
    auth: Option<&AuthConfig>,
) -> rumqttd::ServerSettings {
    let users = auth
        .filter(|auth| !auth.allows_anonymous())
        .map(|auth| auth.users.clone().into_iter().collect());
    rumqttd::ServerSettings {
        name: listener.name(),
        listen: listener.address,
        tls: listener.tls.as_ref().map(|tls| rumqttd::TlsConfig::Rustls {
            capath: None,
            certpath: tls.cert.path().display().to_string(),
            keypath: tls.key.path().display().to_string(),
        }),
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: listener.limits.connection_timeout_ms,
            max_payload_size: listener.limits.max_payload_size,
            max_inflight_count: listener.limits.max_inflight_count,
            auth: users,
            external_auth: None,
            // Clients publish to topics nobody subscribed to yet; without dynamic filters
            // rumqttd would disconnect them.
            dynamic_filters: true,
        },
    }
}

/// A running broker.
pub struct Broker {
    stopped: crossbeam_channel::Receiver<Result<(), ServerError>>,
}

impl Broker {
    /// Binds every listener and starts rumqttd. Returns once the listeners are about to accept.
    pub fn start(config: &BrokerConfig) -> Result<Broker, ServerError> {
        for listener in &config.listeners {
            check_bind(listener)?;
        }
        let mut rumqttd = rumqttd::Broker::new(rumqttd_config(config));
        let (stopped_tx, stopped) = crossbeam_channel::bounded(1);
        thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                let result = rumqttd
                    .start()
                    .map_err(|e| ServerError::Rumqttd(e.to_string()));
                // rumqttd returns only when every listener has stopped.
                let _ = stopped_tx
                    .send(result.and(Err(ServerError::Rumqttd("every listener stopped".into()))));
            })?;
        for listener in &config.listeners {
            let transport = if listener.tls.is_some() { "tls" } else { "tcp" };
            let auth = listener.auth.as_ref().or(config.auth.as_ref());
            let access = match auth {
                Some(auth) if !auth.allows_anonymous() => "username/password",
                _ => "anonymous",
            };
            tracing::info!(
                listener = %listener.name(),
                "{} listener on {} ({transport}, {access})",
                listener.protocol,
                listener.address
            );
        }
        Ok(Broker { stopped })
    }

    /// A channel that yields once if rumqttd stops on its own (which is always an error).
    pub fn stopped(&self) -> &crossbeam_channel::Receiver<Result<(), ServerError>> {
        &self.stopped
    }
}

fn check_bind(listener: &ListenerConfig) -> Result<(), ServerError> {
    TcpListener::bind(listener.address)
        .map(drop)
        .map_err(|source| ServerError::Bind {
            name: listener.name(),
            protocol: listener.protocol,
            address: listener.address,
            source,
        })
}
