//! The state store over MQTT, as Azure IoT Operations serves it: MQTT 5 clients (such as the
//! official `azure_iot_operations_services` crate) send RESP3 commands to
//! [`REQUEST_TOPIC`] with a response topic and correlation data, and get the answer there;
//! `KEYNOTIFY` subscribes them to changes of a key, sent to
//! `clients/statestore/v1/<id>/<HEX(client id)>/command/notify/<HEX(key)>`. Modules and clients
//! share one store: a module's write notifies clients too.
//!
//! Requests are answered in order by one thread (`weir-statestore`), which a connection waits
//! for, reading nothing, when its queue is full.

mod envelope;
mod observers;
pub mod resp3;

use self::envelope::Status;
use self::observers::{Observed, Observers};
use self::resp3::{Command, Reply};
use super::{StateError, StateStore};
use std::sync::Arc;
use tokio::sync::mpsc;
use weir_door::publisher::Outgoing;
use weir_door::{DoorError, DoorHandle, InternalPublisher, ServiceRequest, ServiceRoute};
use weir_model::hlc::Hlc;
use weir_model::metrics::{Counter, Registry};

/// Where clients send their requests.
pub const REQUEST_TOPIC: &str = "statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/command/invoke";
/// What key notification topics start with.
pub const NOTIFY_TOPIC_PREFIX: &str = "clients/statestore/v1/FA9AE35F-2F64-47CD-9BFF-08E2B32A0FE8/";
/// Requests waiting for the service at most.
const QUEUE: usize = 1024;

/// The service's counters.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    /// Requests answered.
    pub requests: Counter,
    /// Requests answered with an error (RESP3 `-ERR` or an RPC error status).
    pub errors: Counter,
    /// Requests that could not be answered: no (valid) response topic.
    pub unanswerable: Counter,
    /// Key notifications sent.
    pub notifications: Counter,
    /// Answers and notifications that could not be published (the broker was stopping).
    pub lost: Counter,
}

impl ServiceMetrics {
    /// Registers the counters (`weir_state_store_*`) in `registry`.
    ///
    /// ```
    /// use weir_state::mqtt::ServiceMetrics;
    /// use weir_model::metrics::{text, Registry};
    ///
    /// let mut registry = Registry::default();
    /// ServiceMetrics::default().register(&mut registry);
    /// assert!(text(&registry).contains("weir_state_store_requests_total 0"));
    /// ```
    pub fn register(&self, registry: &mut Registry) {
        for (name, help, counter) in [
            (
                "requests",
                "State store requests over MQTT answered",
                &self.requests,
            ),
            (
                "errors",
                "State store requests answered with an error",
                &self.errors,
            ),
            (
                "unanswerable",
                "State store requests without a valid response topic",
                &self.unanswerable,
            ),
            (
                "notifications",
                "State store key notifications sent",
                &self.notifications,
            ),
            (
                "lost",
                "State store answers and notifications not sent (broker stopping)",
                &self.lost,
            ),
        ] {
            registry.register(format!("weir_state_store_{name}"), help, counter.clone());
        }
    }
}

/// The running service.
pub struct StateStoreService {
    /// The door's route to it: give it to [`weir_door::Door::open`].
    pub route: ServiceRoute,
    /// Its counters.
    pub metrics: Arc<ServiceMetrics>,
}

impl StateStoreService {
    /// Serves `store` on [`REQUEST_TOPIC`] through `door`; answers and notifications say they
    /// come from `source_id` (the broker's node id).
    pub fn start(
        store: Arc<StateStore>,
        door: &DoorHandle,
        source_id: &str,
    ) -> Result<StateStoreService, DoorError> {
        let metrics = Arc::new(ServiceMetrics::default());
        let observers = Arc::new(Observers::new(
            door.publisher("$weir-statestore-notify", None)?,
            source_id.to_string(),
            metrics.clone(),
        ));
        store.watch(observers.clone());
        {
            let (observers, store) = (observers.clone(), store.clone());
            std::thread::Builder::new()
                .name("weir-statestore-expiry".into())
                .spawn(move || observers.expire(&store))?;
        }
        let mut answerer = Answerer {
            store,
            observers,
            publisher: door.publisher("$weir-statestore", None)?,
            source_id: source_id.to_string(),
            metrics: metrics.clone(),
        };
        let (requests, mut queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("weir-statestore".into())
            .spawn(move || {
                while let Some(request) = queue.blocking_recv() {
                    answerer.answer(request);
                }
            })?;
        Ok(StateStoreService {
            route: ServiceRoute {
                topic: REQUEST_TOPIC.to_string(),
                requests,
            },
            metrics,
        })
    }
}

/// Answers requests, one at a time.
struct Answerer {
    store: Arc<StateStore>,
    observers: Arc<Observers>,
    publisher: InternalPublisher,
    source_id: String,
    metrics: Arc<ServiceMetrics>,
}

/// What a request gets: an RPC status, a RESP3 payload, and the version it reports.
struct Answer {
    status: Status,
    payload: Vec<u8>,
    version: Option<Hlc>,
}

impl Answer {
    fn reply(reply: Reply<'_>, version: Option<Hlc>) -> Answer {
        Answer {
            status: Status::Ok,
            payload: reply.encode(),
            version,
        }
    }

    fn status(status: Status) -> Answer {
        Answer {
            status,
            payload: Vec::new(),
            version: None,
        }
    }

    fn is_error(&self) -> bool {
        self.status != Status::Ok || self.payload.starts_with(b"-")
    }
}

impl Answerer {
    fn answer(&mut self, request: ServiceRequest) {
        let properties = request.properties.unwrap_or_default();
        let topic = properties
            .response_topic
            .as_deref()
            .filter(|topic| weir_model::topic::check_topic_name(topic).is_ok());
        let Some(topic) = topic else {
            // Logged before it is counted: whoever sees the count finds the line in the log.
            tracing::warn!(
                client = %request.client_id,
                "state store request without a valid response topic: not answered"
            );
            self.metrics.unanswerable.inc();
            return;
        };
        let answer = match envelope::supported_version(&properties) {
            Ok(()) => self.execute(&request.client_id, &request.payload, &properties),
            Err(status) => Answer::status(status),
        };
        self.metrics.requests.inc();
        if answer.is_error() {
            self.metrics.errors.inc();
        }
        let version = match answer.version {
            Some(version) => version,
            None => match self.store.now() {
                Ok(now) => now,
                Err(e) => {
                    tracing::error!("state store: {e}");
                    return;
                }
            },
        };
        let message = Outgoing {
            topic: bytes::Bytes::copy_from_slice(topic.as_bytes()),
            payload: answer.payload.into(),
            qos: 1,
            retain: false,
            properties: Some(envelope::response(
                &answer.status,
                properties.correlation_data,
                &version,
                &self.source_id,
            )),
        };
        if let Err(e) = self.publisher.publish(message) {
            self.metrics.lost.inc();
            tracing::warn!(client = %request.client_id, "state store answer not sent: {e}");
        }
    }

    fn execute(
        &self,
        client_id: &Arc<str>,
        payload: &[u8],
        properties: &weir_door::message::Properties,
    ) -> Answer {
        let fencing_token = match envelope::property(properties, envelope::FENCING_TOKEN) {
            None => None,
            Some(token) => match Hlc::parse(token) {
                Ok(token) => Some(token),
                Err(_) => {
                    return Answer::status(Status::BadHeader {
                        name: envelope::FENCING_TOKEN,
                        value: token.to_string(),
                    })
                }
            },
        };
        let command = match Command::parse(payload) {
            Ok(command) => command,
            Err(e) => return Answer::reply(Reply::Error(&e.to_string()), None),
        };
        match self.run(client_id, command, fencing_token.as_ref()) {
            Ok(answer) => answer,
            Err(StateError::FencingTokenTooLow { .. }) => Answer::reply(
                Reply::Error(
                    "the request fencing token is a lower version than the fencing token protecting the resource",
                ),
                None,
            ),
            Err(e @ StateError::FencingTokenRequired) => {
                Answer::reply(Reply::Error(&e.to_string()), None)
            }
            Err(e) => Answer::status(Status::Internal(e.to_string())),
        }
    }

    fn run(
        &self,
        client_id: &Arc<str>,
        command: Command<'_>,
        fencing_token: Option<&Hlc>,
    ) -> Result<Answer, StateError> {
        let store = &self.store;
        Ok(match command {
            Command::Set {
                key,
                value,
                condition,
                expires,
            } => {
                let set = store.set(key, value, fencing_token, condition, expires)?;
                match set.written {
                    true => Answer::reply(Reply::Ok, set.version),
                    false => Answer::reply(Reply::Integer(-1), None),
                }
            }
            Command::Get { key } => {
                let got = store.get(key)?;
                match &got.value {
                    Some(value) => Answer::reply(Reply::Value(value), got.version),
                    None => Answer::reply(Reply::Nil, None),
                }
            }
            Command::Del { key } => {
                Answer::reply(Reply::Integer(store.del(key, fencing_token)?), None)
            }
            Command::VDel { key, value } => {
                Answer::reply(Reply::Integer(store.vdel(key, value, fencing_token)?), None)
            }
            Command::KeyNotify { key, stop } => {
                let expires_at = store.get(key)?.expires_at;
                match self.observers.observe(client_id, key, stop, expires_at) {
                    Observed::Watching | Observed::Stopped => Answer::reply(Reply::Ok, None),
                    Observed::NotWatching => Answer::reply(Reply::Integer(0), None),
                    Observed::Full => {
                        Answer::reply(Reply::Error("the quota has been exceeded"), None)
                    }
                }
            }
        })
    }
}
