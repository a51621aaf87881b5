//! Write operator modules for `wasm-graph:processor@1.1.0` in Rust.
//!
//! An operator is a plain function with an attribute naming its kind; the attribute generates
//! the component bindings and exports the function under the right interface:
//!
//! ```no_run
//! use wasm_graph_sdk::logger::{self, Level};
//! use wasm_graph_sdk::macros::map_operator;
//!
//! fn upper_init(configuration: ModuleConfiguration) -> bool {
//!     logger::log(Level::Info, "upper", &format!("{} properties", configuration.properties.len()));
//!     true
//! }
//!
//! #[map_operator(init = "upper_init")]
//! fn upper(input: DataModel) -> Result<DataModel, Error> {
//!     let DataModel::Message(mut message) = input else {
//!         return Err(Error::new("expected a message"));
//!     };
//!     message.payload = BufferOrBytes::Bytes(message.payload.read().to_ascii_uppercase());
//!     Ok(DataModel::Message(message))
//! }
//! # fn main() {}
//! ```
//!
//! The attributes are [`macros::map_operator`], [`macros::filter_operator`],
//! [`macros::branch_operator`], [`macros::accumulate_operator`] and [`macros::delay_operator`].
//! Several operators may live in one crate, each in a module of its own; the component then
//! exports each interface. The types of the interface ([`types::DataModel`],
//! [`types::Error`], ...) are in scope wherever an operator attribute is used.
//!
//! Host services: [`logger`], [`metrics`], [`state_store`] and [`schema_registry`], generated
//! from the WIT package in `wit/processor` (the one statement of the interface). A component
//! imports only the services its code calls.

mod bindings {
    wit_bindgen::generate!({
        inline: "
            package weir:guest-sdk;
            world imports {
                import wasm-graph:processor/types@1.1.0;
                import wasm-graph:processor/hybrid-logical-clock@1.1.0;
                import wasm-graph:processor/logger@1.1.0;
                import wasm-graph:processor/metrics@1.1.0;
                import wasm-graph:processor/state-store@1.1.0;
                import wasm-graph:processor/state-store-types@1.1.0;
                import wasm-graph:processor/schema-registry@1.1.0;
            }
        ",
        path: "../../../wit/processor",
        world: "weir:guest-sdk/imports",
        generate_all,
        // Records and enums compare like values (those holding a host buffer cannot: a
        // buffer is a handle).
        additional_derives: [PartialEq],
        additional_derives_ignore: [
            "buffer-or-bytes", "buffer-or-string", "timestamp", "message-properties",
            "inline-schema", "message-schema", "message", "snapshot", "data-model",
        ],
    });
}

mod convenience;

pub use bindings::wasm_graph::processor::{
    hybrid_logical_clock, logger, metrics, state_store_types, types,
};

/// The state store shared by the modules of a broker: `get`, `set`, `del`, `vdel`, and every
/// type they take or return.
///
/// ```no_run
/// use wasm_graph_sdk::state_store::{self, SetConditions, SetOptions};
/// let options = SetOptions { conditions: SetConditions::OnlyIfDoesNotExist, ..SetOptions::default() };
/// let set = state_store::set(b"machine", b"A", None, None, options).unwrap();
/// assert!(set.response);
/// ```
pub mod state_store {
    pub use crate::bindings::wasm_graph::processor::state_store::*;
    pub use crate::state_store_types::{
        Duration, SetConditions, SetOptions, StateStoreDelResponse, StateStoreError,
        StateStoreGetResponse, StateStoreSetResponse,
    };
}
/// The schema registry: `get(id, version, timeout)` and the types it answers with. Weir serves it
/// from a schema directory (`modules.schema_dir` in weir.yaml, `--schema-dir` offline).
///
/// ```no_run
/// use wasm_graph_sdk::schema_registry::{self, SchemaError, SchemaFormat};
/// match schema_registry::get("reading", "1.0.0", (5, 0)) {
///     Ok(schema) => assert_eq!(schema.format, SchemaFormat::JsonSchemaDraft07),
///     Err(SchemaError::NotFound) => {}
///     Err(other) => panic!("{other:?}"),
/// }
/// ```
pub mod schema_registry {
    pub use crate::bindings::wasm_graph::processor::schema_registry::*;
    pub use crate::bindings::wasm_graph::processor::schema_types::{
        Schema, SchemaError, SchemaFormat, SchemaKind,
    };
}

/// The attribute macros that turn functions into exported operators.
pub mod macros {
    pub use wasm_graph_sdk_macros::{
        accumulate_operator, branch_operator, delay_operator, filter_operator, map_operator,
    };
}

/// Everything an operator function's signature names, brought into scope by the attributes,
/// with `std::time::Duration` (for window arithmetic on [`Timespec`](hybrid_logical_clock::Timespec)).
pub mod prelude {
    pub use crate::hybrid_logical_clock::{HybridLogicalClock, Timespec};
    pub use crate::types::{
        Buffer, BufferOrBytes, BufferOrString, DataModel, Error, InlineSchema, Message,
        MessageProperties, MessageSchema, ModuleConfiguration, ModuleSchema, Snapshot, Timestamp,
    };
    pub use std::time::Duration;
}

#[doc(hidden)]
pub use wit_bindgen;
