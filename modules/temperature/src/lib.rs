//! Temperature operators: °F → °C (map), bounds (filter), temperature-or-not (branch) and
//! statistics over a window (accumulate). Payloads look like
//! `{"temperature":{"value":72.5,"unit":"F"}}`.

mod accumulate;
mod branch;
mod filter;
mod map;
mod reading;
