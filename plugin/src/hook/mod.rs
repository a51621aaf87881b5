//! The hook between rumqttd's router and the graphs.
//!
//! One local link subscribes to every graph's source filters. Its thread turns each publish
//! into a graph message ([`message`]), stamps it (from `__ts` or the broker's clock) and gives
//! it to the feeder of every graph whose filters match. On a tick (and after each message) it
//! moves each graph's input frontier to the clock's time less the graph's allowed lateness, so
//! windows close without further input. Results go back through [`crate::sink::mqtt`].

pub mod message;

use crate::engine::time::{encode, minus_millis};
use crate::engine::{Feeder, GraphMetrics, Pushed};
use crate::hlc::HlcClock;
use crate::topic::TopicFilter;
use message::{message_from_publish, Stamp};
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::Notification;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds a local link to the router for a client id.
pub type LinkFactory =
    Arc<dyn Fn(&str) -> Result<(LinkTx, LinkRx), Box<LinkError>> + Send + Sync + 'static>;

/// Why the hook could not start.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// The router refused a local link or a subscription.
    #[error("cannot connect to the router: {0}")]
    Link(String),
    /// A thread could not be spawned.
    #[error("cannot start the hook thread: {0}")]
    Thread(std::io::Error),
}

/// A graph as the hook sees it: which topics feed it, and its feeder.
pub struct Route {
    /// The graph's name, for logs.
    pub graph: String,
    /// The source filters.
    pub filters: Vec<TopicFilter>,
    /// Stamps and queues the graph's messages.
    pub feeder: Feeder,
    /// How long a window stays open after its end, for messages stamped by their devices.
    pub lateness_ms: u64,
    /// The graph's counters.
    pub metrics: Arc<GraphMetrics>,
}

/// How the hook runs.
#[derive(Debug, Clone)]
pub struct HookOptions {
    /// The local link's client id.
    pub client_id: String,
    /// The node id of timestamps the broker issues.
    pub node_id: Arc<str>,
    /// How often frontiers move with the clock when no message arrives.
    pub tick: Duration,
}

/// Subscribes to every route's filters and starts the hook thread.
pub fn start(
    links: &LinkFactory,
    routes: Vec<Route>,
    options: HookOptions,
) -> Result<std::thread::JoinHandle<()>, HookError> {
    let (mut link_tx, link_rx) =
        links(&options.client_id).map_err(|e| HookError::Link(e.to_string()))?;
    let mut filters: Vec<String> = routes
        .iter()
        .flat_map(|route| route.filters.iter().map(|f| f.as_str().to_string()))
        .collect();
    filters.sort_unstable();
    filters.dedup();
    for filter in &filters {
        link_tx
            .subscribe(filter.as_str())
            .map_err(|e| HookError::Link(format!("subscribe to `{filter}`: {e}")))?;
    }
    let mut hook = Hook {
        routes,
        clock: HlcClock::new(options.node_id.clone()),
        tick: options.tick,
    };
    let mut link_rx = link_rx;
    hook.await_subscriptions(&mut link_rx, filters.len())?;
    std::thread::Builder::new()
        .name("weir-hook".into())
        .spawn(move || {
            // The subscriptions live as long as the link's sending half.
            let _link_tx = link_tx;
            hook.run(link_rx)
        })
        .map_err(HookError::Thread)
}

/// How long the router may take to confirm the hook's subscriptions.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(10);

struct Hook {
    routes: Vec<Route>,
    clock: HlcClock,
    tick: Duration,
}

impl Hook {
    /// Waits until the router confirmed `subscriptions` subscriptions, routing what arrives
    /// meanwhile: once it returns, every message published on a source filter reaches a graph.
    fn await_subscriptions(
        &mut self,
        link: &mut LinkRx,
        subscriptions: usize,
    ) -> Result<(), HookError> {
        let deadline = Instant::now() + SUBSCRIBE_PATIENCE;
        let mut confirmed = 0;
        while confirmed < subscriptions {
            match link.recv_deadline(deadline) {
                // This link publishes nothing: its only acknowledgements are SUBACKs.
                Ok(Some(Notification::DeviceAck(_))) => confirmed += 1,
                Ok(Some(notification)) => self.handle(notification, link).map_err(HookError::Link)?,
                Ok(None) => {}
                Err(LinkError::RecvTimeout(_)) => {
                    return Err(HookError::Link(format!(
                        "the router confirmed {confirmed} of {subscriptions} subscriptions in {SUBSCRIBE_PATIENCE:?}"
                    )))
                }
                Err(e) => return Err(HookError::Link(e.to_string())),
            }
        }
        Ok(())
    }

    /// Acts on one notification from the router; `Err` when the link is gone.
    fn handle(&mut self, notification: Notification, link: &mut LinkRx) -> Result<(), String> {
        match notification {
            Notification::Forward(forward) => {
                self.route(&forward.publish, forward.properties.as_ref());
                Ok(())
            }
            Notification::Unschedule => link.ready().map_err(|e| format!("graph input link: {e}")),
            Notification::Disconnect(..) => {
                Err("the router disconnected the graphs' input link".into())
            }
            _ => Ok(()),
        }
    }

    fn run(mut self, mut link: LinkRx) {
        let mut next_tick = Instant::now() + self.tick;
        loop {
            match link.recv_deadline(next_tick) {
                Ok(Some(notification)) => {
                    if let Err(e) = self.handle(notification, &mut link) {
                        tracing::error!("{e}");
                        return;
                    }
                }
                Ok(None) | Err(LinkError::RecvTimeout(_)) => {}
                Err(e) => {
                    tracing::error!("graph input link closed: {e}");
                    return;
                }
            }
            let now = Instant::now();
            if now >= next_tick {
                self.advance_frontiers();
                next_tick = now + self.tick;
            }
        }
    }

    fn route(
        &mut self,
        publish: &rumqttd::protocol::Publish,
        properties: Option<&rumqttd::protocol::PublishProperties>,
    ) {
        let Ok(topic) = std::str::from_utf8(&publish.topic) else {
            return;
        };
        let mut message = None;
        for route in &mut self.routes {
            if !route.filters.iter().any(|filter| filter.matches(topic)) {
                continue;
            }
            let (message, stamp) = message
                .get_or_insert_with(|| message_from_publish(publish, properties, &mut self.clock));
            if let Stamp::Invalid(error) = stamp {
                route.metrics.invalid_timestamps.fetch_add(1, Relaxed);
                tracing::warn!(graph = %route.graph, topic, "{error}; stamped from the broker's clock");
            }
            match route.feeder.push(message.clone()) {
                Pushed::Queued | Pushed::Late => {}
                Pushed::Dropped => {
                    let dropped = route.metrics.dropped.load(Relaxed);
                    // One line for the first drop and then at each power of two.
                    if dropped.is_power_of_two() {
                        tracing::warn!(
                            graph = %route.graph,
                            topic,
                            "input queue full: message dropped ({dropped} so far)"
                        );
                    }
                }
                Pushed::Closed => {
                    tracing::error!(graph = %route.graph, topic, "the graph has stopped; message lost");
                    route.metrics.lost.fetch_add(1, Relaxed);
                }
            }
        }
        if message.is_some() {
            self.advance_frontiers();
        }
    }

    /// Moves every graph's frontier to the clock, less its lateness, and wakes its workers.
    fn advance_frontiers(&mut self) {
        let now = encode(&self.clock.now());
        for route in &mut self.routes {
            route
                .feeder
                .advance_to(minus_millis(now, route.lateness_ms));
        }
    }
}
