//! Starting and stopping the embedded rumqttd broker.
//!
//! [`rumqttd_config`] maps Weir's configuration onto rumqttd's settings; [`Broker::start`]
//! checks that every listener can bind (rumqttd would only log a failed bind and carry on),
//! then runs rumqttd's router and listeners on their own threads.

use crate::config::{AuthConfig, BrokerConfig, ListenerConfig, Protocol};
use crate::protocol::V4WithoutProperties;
use rumqttd::local::LinkBuilder;
use rumqttd::protocol::v5::V5;
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use thiserror::Error;
use weir_plugin::hook::LinkFactory;

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
    links: LinkFactory,
}

impl Broker {
    /// Binds every listener and starts rumqttd's router and listeners. Returns once the
    /// listeners are about to accept.
    pub fn start(config: &BrokerConfig) -> Result<Broker, ServerError> {
        for listener in &config.listeners {
            check_bind(listener)?;
        }
        let rumqttd = rumqttd_config(config);
        // The router is started here rather than through `rumqttd::Broker`, which keeps its
        // sender private: the graphs' hook needs it to build local links with dynamic filters.
        let router_tx = rumqttd::Router::new(rumqttd.id, rumqttd.router.clone()).spawn();
        let (stopped_tx, stopped) = crossbeam_channel::bounded(4);
        let servers = rumqttd.v4.into_iter().flatten().map(|(name, settings)| {
            let server = rumqttd::Server::new(settings, router_tx.clone(), V4WithoutProperties);
            (name, ListenerTask::V4(server))
        });
        let servers = servers.chain(rumqttd.v5.into_iter().flatten().map(|(name, settings)| {
            let server = rumqttd::Server::new(settings, router_tx.clone(), V5);
            (name, ListenerTask::V5(server))
        }));
        for (name, task) in servers {
            let stopped_tx = stopped_tx.clone();
            thread::Builder::new().name(name.clone()).spawn(move || {
                let outcome = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())
                    .and_then(|runtime| runtime.block_on(task.run()));
                // A listener returns only when it has failed.
                let message = match outcome {
                    Ok(()) => format!("listener `{name}` stopped"),
                    Err(e) => format!("listener `{name}` failed: {e}"),
                };
                let _ = stopped_tx.send(Err(ServerError::Rumqttd(message)));
            })?;
        }
        for listener in &config.listeners {
            match crate::nodelay::set_on_listener(listener.address, Duration::from_secs(5)) {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    listener = %listener.name(),
                    "listener {} not found to set TCP_NODELAY: small messages may wait for Nagle's algorithm",
                    listener.address
                ),
                Err(e) => tracing::warn!(
                    listener = %listener.name(),
                    "cannot set TCP_NODELAY on {}: {e}",
                    listener.address
                ),
            }
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
        let links: LinkFactory = Arc::new(move |client_id: &str| {
            let (tx, rx, _connack) = LinkBuilder::new(client_id, router_tx.clone())
                .dynamic_filters(true)
                .build()
                .map_err(Box::new)?;
            Ok((tx, rx))
        });
        Ok(Broker { stopped, links })
    }

    /// A channel that yields once if rumqttd stops on its own (which is always an error).
    pub fn stopped(&self) -> &crossbeam_channel::Receiver<Result<(), ServerError>> {
        &self.stopped
    }

    /// Builds local links to the router (in-process clients), for the graphs' hook.
    pub fn links(&self) -> LinkFactory {
        self.links.clone()
    }
}

/// One listener's accept loop.
enum ListenerTask {
    V4(rumqttd::Server<V4WithoutProperties>),
    V5(rumqttd::Server<V5>),
}

impl ListenerTask {
    async fn run(self) -> Result<(), String> {
        let result = match self {
            ListenerTask::V4(mut server) => server.start(rumqttd::LinkType::Remote).await,
            ListenerTask::V5(mut server) => server.start(rumqttd::LinkType::Remote).await,
        };
        result.map_err(|e| e.to_string())
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
