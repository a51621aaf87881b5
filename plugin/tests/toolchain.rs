//! The guest toolchain works: the trivial Rust and Python modules that scripts/build-modules.sh
//! built load in wasmtime and answer a call.

use std::path::PathBuf;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn module(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/modules")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-modules.sh",
        path.display()
    );
    path
}

fn greet(module_name: &str, who: &str) -> String {
    let engine = Engine::new(&Config::new()).unwrap();
    let component = Component::from_file(&engine, module(module_name)).unwrap();
    let mut linker = Linker::<Host>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let mut store = Store::new(
        &engine,
        Host {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    let instance = linker.instantiate(&mut store, &component).unwrap();
    let greet = instance
        .get_typed_func::<(String,), (String,)>(&mut store, "greet")
        .unwrap();
    let (answer,) = greet.call(&mut store, (who.to_string(),)).unwrap();
    answer
}

#[test]
fn rust_guest_answers() {
    assert_eq!(greet("hello-rust", "weir"), "hello, weir, from rust");
}

#[test]
fn python_guest_answers() {
    assert_eq!(greet("hello-python", "weir"), "hello, weir, from python");
}
