//! Routing: where a publish goes. rumqttd's router behind its one module ([`router`]), the
//! publishers' gates ([`flow`]) and how far subscribers trail the router's logs ([`logs`]); the
//! graphs' ingress, the services and the bridges that take publishes before the router
//! ([`ingress`], [`services`], [`dispatch`]); the door's tag a publish carries through it
//! ([`tag`]); what comes back, for one client ([`delivery`]) or for a shared-subscription group
//! ([`shared`]); retained messages ([`retained`]); and Weir's own publishers ([`publisher`]).

pub mod delivery;
pub(crate) mod dispatch;
pub mod flow;
pub mod ingress;
pub mod logs;
pub mod publisher;
pub mod retained;
pub mod router;
pub mod services;
pub mod shared;
pub mod tag;
