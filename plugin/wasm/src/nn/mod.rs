//! `wasi:nn` (`0.2.0-rc-2024-10-28`, the version Azure IoT Operations' modules import), for
//! graphs that request the `wasi-nn` feature: wasmtime-wasi-nn's host implementation over an
//! ONNX backend on tract ([`tract`]), with no other backend compiled in.

#[cfg(feature = "wasi-nn")]
mod tract;

/// The feature's name in a graph's `moduleRequirements.features`.
pub const FEATURE: &str = weir_model::module::WASI_NN;

/// What imports of the feature start with.
pub const IMPORT_PREFIX: &str = "wasi:nn/";

/// Whether this build has `wasi:nn` (the `wasi-nn` cargo feature, on by default).
pub const AVAILABLE: bool = cfg!(feature = "wasi-nn");

/// A fresh context for one instance: the ONNX backend, no preloaded models.
#[cfg(feature = "wasi-nn")]
pub(crate) fn context() -> wasmtime_wasi_nn::wit::WasiNnCtx {
    use wasmtime_wasi_nn::{Backend, InMemoryRegistry, Registry};
    let registry: Registry = InMemoryRegistry::new().into();
    wasmtime_wasi_nn::wit::WasiNnCtx::new([Backend::from(tract::TractBackend)], registry)
}

/// Whether a module importing `imports` needs the feature.
pub fn needs_feature(imports: &[String]) -> Option<&str> {
    imports
        .iter()
        .map(String::as_str)
        .find(|import| import.starts_with(IMPORT_PREFIX))
}
