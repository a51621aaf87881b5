//! A bridge's MQTT client: the connection to the remote (TCP, from a chosen local address when
//! asked, then TLS when configured) and the packets it speaks ([`wire`]).

pub mod tls;
pub mod wire;

use crate::bridge::config::Address;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};

/// A connection to a remote, plain or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Why a connection to a remote could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The host name does not resolve.
    #[error("cannot resolve {address}: {reason}")]
    Resolve {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// No address of the host accepted the connection.
    #[error("cannot connect to {address}: {reason}")]
    Connect {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
    /// Nothing answered in time.
    #[error("no connection to {address} within {timeout:?}")]
    Timeout {
        /// The address.
        address: String,
        /// How long it had.
        timeout: Duration,
    },
    /// The TLS handshake failed (a certificate not trusted, a name that does not match, ...).
    #[error("TLS with {address} failed: {reason}")]
    Tls {
        /// The address.
        address: String,
        /// Why.
        reason: String,
    },
}

/// Connects to `address` (from `bind` when given), within `timeout`, then TLS when `tls`.
pub async fn dial(
    address: &Address,
    bind: Option<IpAddr>,
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Box<dyn Stream>, DialError> {
    let connect = async {
        let tcp = connect_tcp(address, bind).await?;
        let _ = tcp.set_nodelay(true);
        let Some(config) = tls else {
            return Ok(Box::new(tcp) as Box<dyn Stream>);
        };
        let name = rustls::pki_types::ServerName::try_from(address.host.clone()).map_err(|e| {
            DialError::Tls {
                address: address.to_string(),
                reason: e.to_string(),
            }
        })?;
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| DialError::Tls {
                address: address.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Box::new(stream) as Box<dyn Stream>)
    };
    tokio::time::timeout(timeout, connect)
        .await
        .unwrap_or_else(|_| {
            Err(DialError::Timeout {
                address: address.to_string(),
                timeout,
            })
        })
}

/// A TCP connection to the first of `address`'s resolved addresses that accepts one.
async fn connect_tcp(address: &Address, bind: Option<IpAddr>) -> Result<TcpStream, DialError> {
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((address.host.as_str(), address.port))
        .await
        .map_err(|e| DialError::Resolve {
            address: address.to_string(),
            reason: e.to_string(),
        })?
        .filter(|a| bind.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
        .collect();
    let mut last = None;
    for target in resolved {
        let socket = match target {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        };
        let attempt = async {
            let socket = socket?;
            if let Some(ip) = bind {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            socket.connect(target).await
        };
        match attempt.await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e.to_string()),
        }
    }
    Err(DialError::Connect {
        address: address.to_string(),
        reason: last.unwrap_or_else(|| "no address of the right family".into()),
    })
}
