//! `wasi:nn` on the ONNX backend with the nn-classify module: what the first call costs (a new
//! instance whose `init` loads and optimises the embedded model) and what each classification
//! costs (one `map` call: JSON in, one inference, JSON out), beside the same module's call
//! overhead without inference (`echo`, the module that does nothing).
//!
//! Run: `scripts/build-modules.sh && cargo bench -p weir-plugin --bench nn_call`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use std::path::PathBuf;
use std::sync::Arc;
use weir_model::data::{DataModel, Message};
use weir_model::hlc::Hlc;
use weir_state::StateStore;
use weir_wasm::{OperatorInstance, OperatorKind, OperatorModule, RuntimeConfig, WasmRuntime};

fn module(runtime: &Arc<WasmRuntime>, name: &str) -> Arc<OperatorModule> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/modules")
        .join(format!("{name}.wasm"));
    Arc::new(
        runtime
            .load(&path)
            .expect("run scripts/build-modules.sh first"),
    )
}

fn instance(module: &Arc<OperatorModule>) -> OperatorInstance {
    let kind = OperatorKind::Map;
    OperatorInstance::new(
        module.clone(),
        "bench",
        kind,
        Vec::new(),
        Default::default(),
    )
    .expect("instance")
}

fn reading() -> DataModel {
    DataModel::Message(Message::new(
        Hlc::from_millis(1_700_000_000_000, 0, "bench".into()),
        Bytes::from_static(b"readings/m1"),
        Bytes::from_static(br#"{"features":[0.1,5.0,0.2,0.0]}"#),
    ))
}

fn nn_call(c: &mut Criterion) {
    let state = Arc::new(StateStore::in_memory("bench").expect("state store"));
    let runtime = WasmRuntime::new(&RuntimeConfig::default(), state).expect("runtime");
    let classify = module(&runtime, "nn-classify");
    let echo = module(&runtime, "echo");
    let item = reading();
    let mut group = c.benchmark_group("nn");
    group.sample_size(20);
    group.bench_function("nn-classify/first-call", |b| {
        b.iter(|| instance(&classify).map(&item).expect("map"))
    });
    group.bench_function("echo/first-call", |b| {
        b.iter(|| instance(&echo).map(&item).expect("map"))
    });
    group.finish();
    let mut group = c.benchmark_group("nn");
    let (mut classify, mut echo) = (instance(&classify), instance(&echo));
    group.bench_function("nn-classify/call", |b| {
        b.iter(|| classify.map(&item).expect("map"))
    });
    group.bench_function("echo/call", |b| b.iter(|| echo.map(&item).expect("map")));
    group.finish();
}

criterion_group!(benches, nn_call);
criterion_main!(benches);
