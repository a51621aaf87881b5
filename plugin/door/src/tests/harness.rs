//! A door started alone on an ephemeral loopback port, and clients for it.

use crate::ingress::{Ingress, Offer, Offered, Waiting};
use crate::{AuthConfig, Door, DoorConfig, ListenerConfig};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// No graph: every publish goes to the router.
pub struct NoGraphs;

impl Ingress for NoGraphs {
    fn offer(&self, _: Offered<'_>) -> Offer {
        Offer::default()
    }

    fn push_blocking(&self, _: Waiting) {}

    fn push_async(&self, _: Waiting) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// A running door and the address of its one listener.
pub struct Running {
    pub door: Door,
    pub address: SocketAddr,
}

impl Running {
    /// A door with the default limits, accepting anonymous clients on 127.0.0.1.
    pub fn start() -> Running {
        Running::start_with(|_| {})
    }

    /// A door as [`Running::start`] makes it, its configuration changed by `change` first.
    pub fn start_with(change: impl FnOnce(&mut DoorConfig)) -> Running {
        let listener = ListenerConfig {
            name: "test".into(),
            address: "127.0.0.1:0".parse().expect("an address"),
            tls: None,
            websockets: false,
            auth: AuthConfig::anonymous(),
            max_packet_size: 1 << 20,
            max_inflight: 100,
            max_topic_alias: 10,
            connect_timeout: Duration::from_secs(5),
        };
        let config = DoorConfig {
            listeners: vec![listener],
            max_connections: 100,
            max_queued_messages: 1000,
            max_queued_bytes: 1 << 20,
            queue_qos0_messages: false,
            max_keep_alive: 60,
            persistence: None,
            sys_interval: Duration::ZERO,
            router: crate::RouterLimits {
                max_outgoing_packet_count: 200,
                max_segment_size: 1 << 20,
                max_segment_count: 10,
            },
        };
        let mut config = config;
        change(&mut config);
        let mut door = Door::start(config).expect("the door starts");
        let address = door.listeners[0].1.local_addr().expect("a bound listener");
        door.open(Arc::new(NoGraphs), Vec::new());
        Running { door, address }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.door.disconnect_all(Duration::from_secs(5));
    }
}

/// A connected rumqttc client named `id` with a clean session, its event loop polled until
/// CONNACK; events after that go to the returned channel, which closes with the connection.
pub async fn client(
    address: SocketAddr,
    id: &str,
) -> (rumqttc::AsyncClient, UnboundedReceiver<rumqttc::Event>) {
    let (client, events, _) = connect(address, id, true).await;
    (client, events)
}

/// A connected rumqttc client named `id` (MQTT 3.1.1, clean session or not), its events after
/// CONNACK, and whether the broker had a session for it.
pub async fn connect(
    address: SocketAddr,
    id: &str,
    clean_session: bool,
) -> (
    rumqttc::AsyncClient,
    UnboundedReceiver<rumqttc::Event>,
    bool,
) {
    let mut options = rumqttc::MqttOptions::new(id, address.ip().to_string(), address.port());
    options.set_keep_alive(Duration::from_secs(60));
    options.set_clean_session(clean_session);
    let (client, mut events) = rumqttc::AsyncClient::new(options, 100);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let session_present = loop {
        match events.poll().await.expect("the client connects") {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) => break ack.session_present,
            _ => continue,
        }
    };
    // The channel closes when the connection does (rumqttc would reconnect; these do not).
    tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    (client, rx, session_present)
}

/// The next event that `select` picks out of `events`, at most 10 s away.
pub async fn next<T>(
    events: &mut UnboundedReceiver<rumqttc::Event>,
    what: &str,
    mut select: impl FnMut(rumqttc::Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => {
                if let Some(found) = select(event) {
                    return found;
                }
            }
            Ok(None) => panic!("the client's event loop ended before {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// The next PUBLISH the client receives, at most 10 s away.
pub async fn next_publish(
    events: &mut UnboundedReceiver<rumqttc::Event>,
    what: &str,
) -> rumqttc::Publish {
    next(events, what, |e| match e {
        rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => Some(p),
        _ => None,
    })
    .await
}

/// Waits for the client's next SUBACK, at most 10 s away.
pub async fn next_suback(events: &mut UnboundedReceiver<rumqttc::Event>) {
    next(events, "SUBACK", |e| {
        matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))).then_some(())
    })
    .await
}

/// Waits (polling a counter or gauge, at most 10 s) until `ready` holds.
pub async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
