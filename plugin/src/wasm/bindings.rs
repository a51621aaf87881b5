//! Host bindings generated from the WIT packages in `wit/`; nothing here restates them.
//!
//! [`current`] is `wasm-graph:processor@1.1.0`: one invocation generates the traits of every
//! interface a host provides, and one per operator world generates that world's export, reusing
//! the import bindings. [`preview`] generates the exports of `tinykube-graph:processor@1.0.0`
//! over the same Rust types: the preview's interfaces have the same shapes, so the host serves
//! both packages with one implementation (see `runtime`).

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
            path: "../wit/processor",
            world: "weir:host/imports",
            imports: { default: trappable },
            with: {
                "wasm-graph:processor/types.buffer": crate::wasm::host::HostBuffer,
                "wasm-graph:processor/command-invoker.request-builder": crate::wasm::host::RequestBuilder,
                "wasm-graph:processor/command-invoker.command-invoker": crate::wasm::host::CommandInvoker,
            },
        });
    }

    macro_rules! operator_world {
        ($module:ident, $world:literal) => {
            #[doc = concat!("The `", $world, "` world's export.")]
            pub mod $module {
                wasmtime::component::bindgen!({
                    path: "../wit/processor",
                    world: $world,
                    with: {
                        "wasm-graph:processor": super::imports::wasm_graph::processor,
                    },
                });
            }
        };
    }

    operator_world!(map, "wasm-graph:processor/map-impl");
    operator_world!(filter, "wasm-graph:processor/filter-impl");
    operator_world!(branch, "wasm-graph:processor/branch-impl");
    operator_world!(accumulate, "wasm-graph:processor/accumulate-impl");
    operator_world!(delay, "wasm-graph:processor/delay-impl");
}

/// `tinykube-graph:processor@1.0.0`: the preview package. `process` returns plain values.
pub mod preview {
    macro_rules! operator_world {
        ($module:ident, $world:literal) => {
            #[doc = concat!("The `", $world, "` world's export.")]
            pub mod $module {
                wasmtime::component::bindgen!({
                    path: "../wit/preview",
                    world: $world,
                    with: {
                        "tinykube-graph:processor/types": super::super::current::imports::wasm_graph::processor::types,
                        "tinykube-graph:processor/hybrid-logical-clock": super::super::current::imports::wasm_graph::processor::hybrid_logical_clock,
                        "tinykube-graph:processor/logger": super::super::current::imports::wasm_graph::processor::logger,
                        "tinykube-graph:processor/metrics": super::super::current::imports::wasm_graph::processor::metrics,
                        "tinykube-graph:processor/state-store": super::super::current::imports::wasm_graph::processor::state_store,
                        "tinykube-graph:processor/state-store-types": super::super::current::imports::wasm_graph::processor::state_store_types,
                    },
                });
            }
        };
    }

    operator_world!(map, "tinykube-graph:processor/map-impl");
    operator_world!(filter, "tinykube-graph:processor/filter-impl");
    operator_world!(branch, "tinykube-graph:processor/branch-impl");
    operator_world!(accumulate, "tinykube-graph:processor/accumulate-impl");
    operator_world!(delay, "tinykube-graph:processor/delay-impl");
}
