//! In-process tests of the door: a [`Door`](crate::Door) started alone on loopback, driven by
//! MQTT clients, with the router's internals within reach.

mod burst;
mod flow;
mod harness;
mod router_queue;
mod sessions;
