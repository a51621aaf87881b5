//! Host bindings generated from the WIT packages in `wit/`; nothing here restates them.
//!
//! [`current`] is `wasm-graph:processor@1.1.0`: one invocation generates the traits of every
//! interface a host provides and the Rust types of their records and variants. The preview
//! package, `tinykube-graph:processor@1.0.0`, has the same shapes, so the host serves both with
//! these types: its imports with the same implementation (see `runtime`), the operator exports
//! of either package through one typed call (see `export`).

/// `wasm-graph:processor@1.1.0`.
pub mod current {
    /// Every interface a host provides.
    pub mod imports {
        wasmtime::component::bindgen!({
            inline: "
                package weir:host;
                world imports {
                    import wasm-graph:processor/types@1.1.0;
                    import wasm-graph:processor/hybrid-logical-clock@1.1.0;
                    import wasm-graph:processor/logger@1.1.0;
                    import wasm-graph:processor/metrics@1.1.0;
                    import wasm-graph:processor/state-store@1.1.0;
                    import wasm-graph:processor/command-invoker@1.1.0;
                    import wasm-graph:processor/schema-registry@1.1.0;
                }
            ",
            path: "../../wit/processor",
            world: "weir:host/imports",
            imports: { default: trappable },
            with: {
                "wasm-graph:processor/types.buffer": crate::host::HostBuffer,
                "wasm-graph:processor/command-invoker.request-builder": crate::host::RequestBuilder,
                "wasm-graph:processor/command-invoker.command-invoker": crate::host::CommandInvoker,
            },
        });
    }
}
