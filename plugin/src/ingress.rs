//! Graph sources at the door: a publish whose topic matches a graph's source filters is handed
//! to that graph's feeder by whoever read it (a client's connection, or another graph's result
//! publisher), with no round trip through the router. [`GraphRoutes`] is the door's
//! [`Ingress`]: it knows the door's publishes and the engine's feeders, so that neither of those
//! knows the other.
//!
//! A graph that intercepts its sources (`intercept: true`) takes those publishes away from the
//! router: subscribers see only its results. A graph's own results never re-enter it unless
//! it allows loops (and an intercepting graph never takes its own results back).
//!
//! The frontier of each graph follows the broker's clock: it moves after each message it is
//! given and on a tick ([`GraphRoutes::start_clock`]), so windows close without further input.
//!
//! Routes change while the broker runs (a graph added, removed or replaced by a new version):
//! the set is swapped whole, so a publish sees either the old set or the new one, without a
//! lock. A message that reached the old version of a graph after its input closed is given to
//! its replacement: nothing accepted is lost or processed twice.

use arc_swap::ArcSwap;
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;
use std::time::Duration;
use weir_door::ingress::{Ingress, Offer, Offered, Waiting};
use weir_door::message::{message_from_publish, Stamp};
use weir_engine::{Feeder, GraphMetrics, Pushed, StatusHook};
use weir_model::data::Message;
use weir_model::hlc::HlcClock;
use weir_model::time::{encode, minus_millis};
use weir_model::topic::TopicFilter;

/// A graph as the door sees it.
pub struct GraphRoute {
    /// The graph's name (the binding's), for logs.
    pub name: String,
    /// Its source filters.
    pub filters: Vec<TopicFilter>,
    /// Stamps and queues its messages.
    pub feeder: Arc<Feeder>,
    /// How long (ms) a window stays open after its end, for messages stamped by devices.
    pub lateness_ms: u64,
    /// Whether matching publishes go to the graph only (not to the router).
    pub intercept: bool,
    /// Whether the graph's results may feed it again.
    pub allow_loop: bool,
    /// Its counters.
    pub metrics: Arc<GraphMetrics>,
}

impl GraphRoute {
    fn matches(&self, topic: &str) -> bool {
        self.filters.iter().any(|filter| filter.matches(topic))
    }

    /// Whether results published by graph `origin` may enter this graph.
    fn takes_results_of(&self, origin: Option<&str>) -> bool {
        origin != Some(self.name.as_str()) || (self.allow_loop && !self.intercept)
    }
}

/// Every graph's route, and the clock that stamps their messages.
pub struct GraphRoutes {
    routes: ArcSwap<Vec<Arc<GraphRoute>>>,
    clock: Mutex<HlcClock>,
    closed: AtomicBool,
    /// The thread of [`GraphRoutes::start_clock`], once started.
    clock_thread: OnceLock<Thread>,
}

/// How long the clock sleeps, when no graph holds anything, before it looks again (a feeder
/// that starts holding wakes it sooner).
const CLOCK_IDLE_CHECK: Duration = Duration::from_secs(30);

impl GraphRoutes {
    /// Routes to `routes`, stamping with node id `node_id`.
    pub fn new(routes: Vec<GraphRoute>, node_id: Arc<str>) -> GraphRoutes {
        GraphRoutes {
            routes: ArcSwap::from_pointee(routes.into_iter().map(Arc::new).collect()),
            clock: Mutex::new(HlcClock::new(node_id)),
            closed: AtomicBool::new(false),
            clock_thread: OnceLock::new(),
        }
    }

    /// No graph at all.
    pub fn none() -> GraphRoutes {
        GraphRoutes::new(Vec::new(), "weir".into())
    }

    /// The routes now.
    pub fn routes(&self) -> Arc<Vec<Arc<GraphRoute>>> {
        self.routes.load_full()
    }

    /// Routes publishes to `route`, in place of the route of the same name if there is one
    /// (returned: close its feeder to let the old version finish what it holds).
    pub fn install(&self, route: GraphRoute) -> Option<Arc<GraphRoute>> {
        self.listen(&route);
        let route = Arc::new(route);
        let mut replaced = None;
        self.routes.rcu(|routes| {
            let mut next: Vec<Arc<GraphRoute>> = routes.iter().cloned().collect();
            replaced = match next.iter_mut().find(|r| r.name == route.name) {
                Some(old) => Some(std::mem::replace(old, route.clone())),
                None => {
                    next.push(route.clone());
                    None
                }
            };
            next
        });
        replaced
    }

    /// Stops routing publishes to graph `name`; returns its route (close its feeder).
    pub fn remove(&self, name: &str) -> Option<Arc<GraphRoute>> {
        let mut removed = None;
        self.routes.rcu(|routes| {
            removed = routes.iter().find(|r| r.name == name).cloned();
            routes
                .iter()
                .filter(|r| r.name != name)
                .cloned()
                .collect::<Vec<_>>()
        });
        removed
    }

    /// The current route of `route`'s graph, if it was replaced since.
    fn replacement(&self, route: &GraphRoute) -> Option<Arc<GraphRoute>> {
        self.routes
            .load()
            .iter()
            .find(|r| r.name == route.name && !std::ptr::eq(r.as_ref(), route))
            .cloned()
    }

    fn now(&self) -> u64 {
        encode(&self.clock.lock().unwrap_or_else(|e| e.into_inner()).now())
    }

    /// Queues `message` for `route` if there is room (else adds it to `offer.waiting`); gives
    /// it to the graph's replacement if its input closed meanwhile.
    fn try_push(&self, route: &Arc<GraphRoute>, message: Message, topic: &str, offer: &mut Offer) {
        match route.feeder.try_push(message) {
            Ok(pushed) => {
                if let Some((next, back)) = self.settle(route, topic, pushed) {
                    self.try_push(&next, *back, topic, offer);
                }
            }
            Err(back) => offer.waiting.push((route.clone(), *back)),
        }
    }

    /// Counts a message whose own timestamp was not used, and says so (the first time, then
    /// at each power of two, per graph).
    fn distrusted(&self, route: &GraphRoute, topic: &str, stamp: &Stamp) {
        let before = route.metrics.invalid_timestamps.fetch_add(1, Relaxed);
        if before == 0 || (before + 1).is_power_of_two() {
            let max_skew = self
                .clock
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .max_skew_ms();
            if let Some(why) = stamp.distrust(max_skew) {
                tracing::warn!(
                    graph = %route.name,
                    topic,
                    "{why}; stamped from the broker's clock ({} such messages so far)",
                    before + 1
                );
            }
        }
    }

    /// Trusts `__ts` values up to `ms` ahead of the broker's clock (`engine.max_clock_skew_ms`).
    pub fn set_max_clock_skew_ms(&self, ms: u64) {
        self.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_max_skew_ms(ms);
    }

    /// Queues `message`, which waited for room, for `route`, asynchronously.
    async fn push_waiting_async(&self, mut route: Arc<GraphRoute>, mut message: Message) {
        let topic = String::from_utf8_lossy(&message.topic).into_owned();
        loop {
            let pushed = route.feeder.push_async(message).await;
            match self.settle(&route, &topic, pushed) {
                Some((next, back)) => (route, message) = (next, *back),
                None => break,
            }
        }
    }

    /// Queues `message`, which waited for room, for `route`, blocking the thread.
    fn push_waiting_blocking(&self, mut route: Arc<GraphRoute>, mut message: Message) {
        let topic = String::from_utf8_lossy(&message.topic).into_owned();
        loop {
            let pushed = route.feeder.push(message);
            match self.settle(&route, &topic, pushed) {
                Some((next, back)) => (route, message) = (next, *back),
                None => break,
            }
        }
    }

    /// Accounts for what pushing a message to `route` did; gives the message back with the
    /// route to push it to next when the graph's input had closed and it has a replacement.
    fn settle(
        &self,
        route: &GraphRoute,
        topic: &str,
        pushed: Pushed,
    ) -> Option<(Arc<GraphRoute>, Box<Message>)> {
        match pushed {
            Pushed::Closed(back) => self.closed_on(route, topic, back),
            pushed => {
                self.pushed(route, topic, pushed);
                None
            }
        }
    }

    /// A message reached a graph whose input had closed: the graph's replacement, to give it
    /// to, or `None` when there is none (the message is then counted as lost, unless the
    /// broker is stopping).
    fn closed_on(
        &self,
        route: &GraphRoute,
        topic: &str,
        message: Box<Message>,
    ) -> Option<(Arc<GraphRoute>, Box<Message>)> {
        if self.closed.load(Relaxed) {
            return None;
        }
        if let Some(next) = self.replacement(route) {
            return Some((next, message));
        }
        let lost = route.metrics.lost.fetch_add(1, Relaxed) + 1;
        // The first, then at each power of two, as for drops.
        if lost.is_power_of_two() {
            tracing::error!(
                graph = %route.name,
                topic,
                "the graph has stopped; message lost ({lost} so far)"
            );
        }
        None
    }

    fn pushed(&self, route: &GraphRoute, topic: &str, pushed: Pushed) {
        match pushed {
            Pushed::Queued | Pushed::Late => {
                route
                    .feeder
                    .advance_to(minus_millis(self.now(), route.lateness_ms));
            }
            Pushed::Dropped => {
                let dropped = route.metrics.dropped.load(Relaxed);
                // One line for the first drop and then at each power of two.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        graph = %route.name,
                        topic,
                        "input queue full: message dropped ({dropped} so far)"
                    );
                }
            }
            Pushed::Closed(_) => {}
        }
    }

    /// Moves every graph's frontier with the clock every `tick`, on a thread of its own, until
    /// [`GraphRoutes::close`], while some graph holds items that only time releases (an open
    /// window, a result waiting for its time). When none does, the thread sleeps until one
    /// starts to (its feeder rings): an idle broker is not woken for nothing.
    pub fn start_clock(self: &Arc<Self>, tick: Duration) -> std::io::Result<()> {
        let routes = Arc::downgrade(self);
        let thread = std::thread::Builder::new()
            .name("weir-graph-clock".into())
            .spawn(move || loop {
                let Some(routes) = routes.upgrade() else {
                    return;
                };
                if routes.closed.load(Relaxed) {
                    return;
                }
                let holding = routes.tick();
                drop(routes);
                if holding {
                    std::thread::sleep(tick);
                } else {
                    std::thread::park_timeout(CLOCK_IDLE_CHECK);
                }
            })?;
        let _ = self.clock_thread.set(thread.thread().clone());
        for route in self.routes.load().iter() {
            self.listen(route);
        }
        Ok(())
    }

    /// Moves every graph's frontier to now; whether some graph still holds items.
    fn tick(&self) -> bool {
        let now = self.now();
        let mut holding = false;
        for route in self.routes.load().iter() {
            route
                .feeder
                .advance_to(minus_millis(now, route.lateness_ms));
            holding |= route.feeder.is_holding();
        }
        holding
    }

    /// Has `route`'s feeder wake the clock when the graph starts holding items.
    fn listen(&self, route: &GraphRoute) {
        if let Some(thread) = self.clock_thread.get() {
            let thread = thread.clone();
            route
                .feeder
                .on_hold(StatusHook::new(move || thread.unpark()));
        }
    }

    /// Wakes the clock thread.
    fn ring(&self) {
        if let Some(thread) = self.clock_thread.get() {
            thread.unpark();
        }
    }

    /// Ends every graph's input: what is queued is processed, windows close, workers stop.
    pub fn close(&self) {
        self.closed.store(true, Relaxed);
        self.ring();
        for route in self.routes.load().iter() {
            route.feeder.close();
        }
    }
}

impl Ingress for GraphRoutes {
    /// Offers a publish to every graph whose sources match (a graph's own results, published
    /// by `origin`, only where loops are allowed). Messages that fit are queued now.
    fn offer(&self, offered: Offered<'_>) -> Offer {
        let Offered {
            topic,
            publish,
            properties,
            origin,
        } = offered;
        let mut offer = Offer::default();
        if self.closed.load(Relaxed) {
            return offer;
        }
        let mut message = None;
        let routes = self.routes.load();
        for route in routes.iter() {
            if !route.matches(topic) || !route.takes_results_of(origin) {
                continue;
            }
            offer.intercepted |= route.intercept;
            let message = message.get_or_insert_with(|| {
                let mut clock = self.clock.lock().unwrap_or_else(|e| e.into_inner());
                message_from_publish(publish, properties, &mut clock)
            });
            if !matches!(message.1, Stamp::Property | Stamp::Clock) {
                self.distrusted(route, topic, &message.1);
            }
            self.try_push(route, message.0.clone(), topic, &mut offer);
        }
        offer
    }

    fn push_blocking(&self, waiting: Waiting) {
        for (route, message) in waiting {
            if let Some(route) = as_route(route, &message) {
                self.push_waiting_blocking(route, message);
            }
        }
    }

    fn push_async(&self, waiting: Waiting) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            for (route, message) in waiting {
                if let Some(route) = as_route(route, &message) {
                    self.push_waiting_async(route, message).await;
                }
            }
        })
    }
}

/// The route a waiting message was offered to: every handle in [`Waiting`] is one of
/// [`GraphRoutes::offer`]'s, so the downcast holds.
fn as_route(handle: Arc<dyn Any + Send + Sync>, message: &Message) -> Option<Arc<GraphRoute>> {
    let route = handle.downcast::<GraphRoute>().ok();
    if route.is_none() {
        tracing::error!(
            topic = %String::from_utf8_lossy(&message.topic),
            "a message waiting for a graph came back without its route: lost"
        );
    }
    route
}
