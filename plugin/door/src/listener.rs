//! Listening sockets: bound when the door starts (so that a taken port fails start-up with the
//! listener's name), accepting from [`super::Door::open`] until shutdown. Every accepted socket
//! gets TCP_NODELAY: without it, Nagle's algorithm and delayed acknowledgements hold small
//! publishes back by up to 40 ms under a steady stream.

use super::config::ListenerConfig;
use super::{connection, DoorError, Shared};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

/// Binds `config`'s address, non-blocking, ready for the runtime.
pub(super) fn bind(config: &ListenerConfig) -> Result<std::net::TcpListener, DoorError> {
    let error = |source| DoorError::Bind {
        name: config.name.clone(),
        address: config.address,
        source,
    };
    let listener = std::net::TcpListener::bind(config.address).map_err(error)?;
    listener.set_nonblocking(true).map_err(error)?;
    Ok(listener)
}

/// Accepts connections until the door stops reading.
pub(super) async fn accept(
    listener: TcpListener,
    config: Arc<ListenerConfig>,
    shared: Arc<Shared>,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shared.operations.reading.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(listener = %config.name, %peer, "cannot set TCP_NODELAY: {e}");
                }
                connections.spawn(connection::serve(
                    stream,
                    peer,
                    config.clone(),
                    shared.clone(),
                ));
            }
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                tracing::warn!(listener = %config.name, "cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
