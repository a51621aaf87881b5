//! rumqttc clients (MQTT 3.1.1 and 5) driven from async tests.

use super::harness::PATIENCE;
use rumqttc::v5::mqttbytes::v5::Packet as Packet5;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// A received MQTT 3.1.1 publish.
pub type Publish4 = rumqttc::Publish;
/// A received MQTT 5 publish.
pub type Publish5 = rumqttc::v5::mqttbytes::v5::Publish;

/// An MQTT 3.1.1 client whose event loop runs on a task; incoming publishes arrive on a channel.
pub struct Client4 {
    pub client: rumqttc::AsyncClient,
    /// The CONNACK's session present flag.
    pub session_present: bool,
    publishes: mpsc::UnboundedReceiver<Publish4>,
    acks: mpsc::UnboundedReceiver<rumqttc::Packet>,
    task: tokio::task::JoinHandle<()>,
}

impl Client4 {
    /// Connects with `options` and waits for the CONNACK.
    pub async fn connect(
        options: rumqttc::MqttOptions,
    ) -> Result<Client4, rumqttc::ConnectionError> {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
        let session_present = loop {
            match eventloop.poll().await? {
                rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) => {
                    break ack.session_present
                }
                _ => continue,
            }
        };
        let (publish_tx, publishes) = mpsc::unbounded_channel();
        let (ack_tx, acks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                match event {
                    rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => {
                        let _ = publish_tx.send(p);
                    }
                    rumqttc::Event::Incoming(packet) => {
                        let _ = ack_tx.send(packet);
                    }
                    rumqttc::Event::Outgoing(_) => {}
                }
            }
        });
        Ok(Client4 {
            client,
            session_present,
            publishes,
            acks,
            task,
        })
    }

    /// Options for a plain connection to 127.0.0.1:`port`.
    pub fn options(id: &str, port: u16) -> rumqttc::MqttOptions {
        let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(std::time::Duration::from_secs(5));
        options
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        self.wait_ack(|p| matches!(p, rumqttc::Packet::SubAck(_)))
            .await;
    }

    /// Waits for an incoming packet that `is_it` accepts.
    pub async fn wait_ack(&mut self, is_it: impl Fn(&rumqttc::Packet) -> bool) {
        timeout(PATIENCE, async {
            loop {
                let packet = self.acks.recv().await.expect("connection closed");
                if is_it(&packet) {
                    return;
                }
            }
        })
        .await
        .expect("expected acknowledgement did not arrive");
    }

    /// The next publish received.
    pub async fn next(&mut self) -> Publish4 {
        timeout(PATIENCE, self.publishes.recv())
            .await
            .expect("no publish arrived")
            .expect("connection closed")
    }

    /// Drops the connection without DISCONNECT, as a crashed client would.
    pub fn crash(self) {
        self.task.abort();
    }

    /// Waits until the connection has closed (after a disconnect).
    pub async fn wait_closed(self) {
        let _ = timeout(PATIENCE, self.task).await;
    }
}

/// An MQTT 5 client whose event loop runs on a task.
pub struct Client5 {
    pub client: rumqttc::v5::AsyncClient,
    publishes: mpsc::UnboundedReceiver<Publish5>,
    acks: mpsc::UnboundedReceiver<Packet5>,
}

impl Client5 {
    /// Connects to 127.0.0.1:`port` and waits for the CONNACK.
    pub async fn connect(id: &str, port: u16) -> Client5 {
        let mut options = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(std::time::Duration::from_secs(5));
        let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 100);
        loop {
            match eventloop.poll().await.expect("MQTT 5 connect failed") {
                rumqttc::v5::Event::Incoming(Packet5::ConnAck(_)) => break,
                _ => continue,
            }
        }
        let (publish_tx, publishes) = mpsc::unbounded_channel();
        let (ack_tx, acks) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(event) = eventloop.poll().await {
                match event {
                    rumqttc::v5::Event::Incoming(Packet5::Publish(p)) => {
                        let _ = publish_tx.send(p);
                    }
                    rumqttc::v5::Event::Incoming(packet) => {
                        let _ = ack_tx.send(packet);
                    }
                    rumqttc::v5::Event::Outgoing(_) => {}
                }
            }
        });
        Client5 {
            client,
            publishes,
            acks,
        }
    }

    /// Subscribes and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: rumqttc::v5::mqttbytes::QoS) {
        self.client.subscribe(filter, qos).await.unwrap();
        timeout(PATIENCE, async {
            loop {
                if let Packet5::SubAck(_) = self.acks.recv().await.expect("connection closed") {
                    return;
                }
            }
        })
        .await
        .expect("no SUBACK");
    }

    /// The next publish received.
    pub async fn next(&mut self) -> Publish5 {
        timeout(PATIENCE, self.publishes.recv())
            .await
            .expect("no publish arrived")
            .expect("connection closed")
    }
}
