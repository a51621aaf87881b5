//! The hook between rumqttd's router and the graphs. So far: turning router publishes into
//! graph messages and results back into publishes ([`message`]).

pub mod message;
