//! Attribute macros that export a Rust function as a `wasm-graph:processor@1.1.0` operator.
//!
//! Each macro keeps the function as written and adds, next to it, the component bindings of
//! the operator's world (`map-impl`, `filter-impl`, ...) and an implementation of the exported
//! interface that calls the function. `init = "function"` names the function called once with
//! the module configuration before any item; without it, `init` accepts any configuration.
//! Use them through `wasm_graph_sdk::macros`.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::{parse_macro_input, Expr, ExprLit, ItemFn, Lit, MetaNameValue, Token};

/// The WIT package, found from this crate's own location in the repository.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../wit/processor");

/// One operator kind: its interface and the shape of its `process`.
struct Kind {
    interface: &'static str,
    process_params: proc_macro2::TokenStream,
    process_args: proc_macro2::TokenStream,
    process_output: proc_macro2::TokenStream,
}

fn kind(interface: &'static str) -> Kind {
    let (process_params, process_args, process_output) = match interface {
        "map" => (
            quote!(message: DataModel),
            quote!(message),
            quote!(DataModel),
        ),
        "filter" => (quote!(message: DataModel), quote!(message), quote!(bool)),
        "branch" => (
            quote!(timestamp: HybridLogicalClock, message: DataModel),
            quote!(timestamp, message),
            quote!(bool),
        ),
        "accumulate" => (
            quote!(staged: DataModel, message: ::std::vec::Vec<DataModel>),
            quote!(staged, message),
            quote!(DataModel),
        ),
        "delay" => (
            quote!(data: DataModel, timestamp: HybridLogicalClock),
            quote!(data, timestamp),
            quote!(HybridLogicalClock),
        ),
        other => unreachable!("no operator kind {other}"),
    };
    Kind {
        interface,
        process_params,
        process_args,
        process_output,
    }
}

/// `#[map_operator(init = "f")] fn g(input: DataModel) -> Result<DataModel, Error>`
#[proc_macro_attribute]
pub fn map_operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator(kind("map"), args, item)
}

/// `#[filter_operator(init = "f")] fn g(input: DataModel) -> Result<bool, Error>` (true keeps).
#[proc_macro_attribute]
pub fn filter_operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator(kind("filter"), args, item)
}

/// `#[branch_operator(init = "f")] fn g(timestamp: HybridLogicalClock, input: DataModel) -> Result<bool, Error>`
/// (false: arm "False", true: arm "True").
#[proc_macro_attribute]
pub fn branch_operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator(kind("branch"), args, item)
}

/// `#[accumulate_operator(init = "f")] fn g(staged: DataModel, inputs: Vec<DataModel>) -> Result<DataModel, Error>`
#[proc_macro_attribute]
pub fn accumulate_operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator(kind("accumulate"), args, item)
}

/// `#[delay_operator(init = "f")] fn g(input: DataModel, timestamp: HybridLogicalClock) -> Result<HybridLogicalClock, Error>`
#[proc_macro_attribute]
pub fn delay_operator(args: TokenStream, item: TokenStream) -> TokenStream {
    operator(kind("delay"), args, item)
}

fn operator(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let args =
        parse_macro_input!(args with Punctuated::<MetaNameValue, Token![,]>::parse_terminated);
    let function = parse_macro_input!(item as ItemFn);
    let init = match init_function(&args) {
        Ok(init) => init,
        Err(error) => return error.to_compile_error().into(),
    };
    let name = &function.sig.ident;
    let interface = kind.interface;
    let module = format_ident!("__wasm_graph_{}_operator", interface);
    let world = format!("wasm-graph:processor/{interface}-impl");
    let interface_ident = format_ident!("{}", interface);
    let (params, args, output) = (kind.process_params, kind.process_args, kind.process_output);
    let init_call = match init {
        Some(init) => quote!(super::#init(configuration)),
        None => quote!({
            let _ = configuration;
            true
        }),
    };
    quote! {
        #function

        #[allow(unused_imports)]
        use ::wasm_graph_sdk::prelude::*;

        #[doc(hidden)]
        #[allow(non_snake_case, unused_imports, clippy::all)]
        mod #module {
            use ::wasm_graph_sdk::prelude::*;

            ::wasm_graph_sdk::wit_bindgen::generate!({
                path: #WIT_DIR,
                world: #world,
                with: {
                    "wasm-graph:processor/types@1.1.0": ::wasm_graph_sdk::types,
                    "wasm-graph:processor/hybrid-logical-clock@1.1.0": ::wasm_graph_sdk::hybrid_logical_clock,
                    "wasm-graph:processor/logger@1.1.0": ::wasm_graph_sdk::logger,
                    "wasm-graph:processor/metrics@1.1.0": ::wasm_graph_sdk::metrics,
                    "wasm-graph:processor/state-store@1.1.0": ::wasm_graph_sdk::state_store,
                    "wasm-graph:processor/state-store-types@1.1.0": ::wasm_graph_sdk::state_store_types,
                },
                runtime_path: "::wasm_graph_sdk::wit_bindgen::rt",
            });

            pub struct Operator;

            impl exports::wasm_graph::processor::#interface_ident::Guest for Operator {
                fn init(configuration: ModuleConfiguration) -> bool {
                    #init_call
                }

                fn process(#params) -> ::std::result::Result<#output, Error> {
                    super::#name(#args)
                }
            }

            export!(Operator);
        }
    }
    .into()
}

/// The function named by `init = "..."`, if any.
fn init_function(args: &Punctuated<MetaNameValue, Token![,]>) -> syn::Result<Option<syn::Ident>> {
    let mut init = None;
    for arg in args {
        if !arg.path.is_ident("init") {
            return Err(syn::Error::new_spanned(
                &arg.path,
                "unknown argument: expected `init = \"function_name\"`",
            ));
        }
        let Expr::Lit(ExprLit {
            lit: Lit::Str(name),
            ..
        }) = &arg.value
        else {
            return Err(syn::Error::new_spanned(
                &arg.value,
                "expected a string: `init = \"function_name\"`",
            ));
        };
        init = Some(syn::Ident::new(&name.value(), Span::call_site()));
    }
    Ok(init)
}
