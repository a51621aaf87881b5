//! Operations: what an operator sees of the door, its counters ([`stats`], which `/metrics`
//! serves) and the `$SYS` tree ([`sys`]).

pub mod stats;
pub mod sys;
