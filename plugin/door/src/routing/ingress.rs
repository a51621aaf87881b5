//! Where the door offers a publish it accepted before the router sees it: the sources of the
//! graphs. The door knows them only through [`Ingress`]; the graph ingress that implements it
//! (weir-plugin's `ingress`) knows both the door and the engine, so neither knows the other.

use crate::message::{Properties, Publish};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use weir_model::data::Message;

/// A message the ingress could not queue yet (its graph's queue is full under
/// `back_pressure: block`), with the ingress's own handle on where it goes. The door hands it
/// back to [`Ingress::push_async`] or [`Ingress::push_blocking`] before it acknowledges the
/// publish.
pub type Waiting = Vec<(Arc<dyn Any + Send + Sync>, Message)>;

/// What offering a publish did.
#[derive(Default)]
pub struct Offer {
    /// A graph took the publish away from the router (`intercept: true`).
    pub intercepted: bool,
    /// Messages that wait for room.
    pub waiting: Waiting,
}

/// A publish as it is offered.
pub struct Offered<'a> {
    /// Its topic (valid, no wildcards).
    pub topic: &'a str,
    /// Topic bytes, payload and retain flag.
    pub publish: &'a Publish,
    /// MQTT 5 properties.
    pub properties: Option<&'a Properties>,
    /// The graph whose result this is, if any.
    pub origin: Option<&'a str>,
}

/// The graphs' sources, as the door sees them.
pub trait Ingress: Send + Sync {
    /// Offers a publish to every graph whose sources match; queues what fits now.
    fn offer(&self, offered: Offered<'_>) -> Offer;

    /// Queues what waited for room, blocking the thread.
    fn push_blocking(&self, waiting: Waiting);

    /// Queues what waited for room, without blocking the thread.
    fn push_async(&self, waiting: Waiting) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}
