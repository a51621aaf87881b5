//! Services the broker answers itself over MQTT (Azure IoT Operations' state store): a client's
//! publish on a service's request topic goes to the service, not to subscribers. The service
//! answers through an [`crate::InternalPublisher`], on the request's response topic.

use crate::message::Properties;
use bytes::Bytes;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A request for a service, as a client published it.
#[derive(Debug)]
pub struct ServiceRequest {
    /// The client that published it (the connection's client id, not what it claims).
    pub client_id: Arc<str>,
    /// The payload.
    pub payload: Bytes,
    /// Its MQTT 5 properties (response topic, correlation data, user properties).
    pub properties: Option<Properties>,
}

/// Where the requests on one topic go.
#[derive(Debug, Clone)]
pub struct ServiceRoute {
    /// The request topic (a topic name: no wildcards).
    pub topic: String,
    /// The service's queue; a connection waits (reads nothing) while it is full.
    pub requests: mpsc::Sender<ServiceRequest>,
}

/// The services of a broker.
#[derive(Debug, Default)]
pub(crate) struct Services(Vec<ServiceRoute>);

impl Services {
    pub fn new(routes: Vec<ServiceRoute>) -> Services {
        Services(routes)
    }

    /// The service whose request topic is `topic`.
    pub fn route(&self, topic: &str) -> Option<&ServiceRoute> {
        self.0.iter().find(|route| route.topic == topic)
    }
}
