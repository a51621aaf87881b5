//! Weir's plugin layer: everything between "a publish arrived" and "a result left".
//!
//! It will hold the hook (topic filters → graphs), graph definitions, the timely-dataflow
//! engine, the wasmtime operator host and the sinks. Its tests already prove that the guest
//! toolchain's components load and run in wasmtime.
