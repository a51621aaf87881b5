//! One `map` call on a 100-byte message, through the host (host buffers in, conversion back,
//! limits armed) beside a bare call of the same export with the item already in WIT form.
//! The difference is the host's overhead per message.
//!
//! Run: `scripts/build-modules.sh && cargo bench -p weir-plugin --bench map_call`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::path::PathBuf;
use std::sync::Arc;
use weir_model::data::{DataModel, Message};
use weir_model::hlc::Hlc;
use weir_state::StateStore;
use weir_wasm::bindings::current::imports::wasm_graph::processor::{
    hybrid_logical_clock::Timespec,
    types::{self as wit},
};
use weir_wasm::operators::bare;
use weir_wasm::{OperatorInstance, OperatorKind, RuntimeConfig, WasmRuntime};

fn instance(module: &str) -> OperatorInstance {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/modules")
        .join(format!("{module}.wasm"));
    let state = Arc::new(StateStore::in_memory("bench").expect("state store"));
    let runtime = WasmRuntime::new(&RuntimeConfig::default(), state).expect("runtime");
    let module = Arc::new(
        runtime
            .load(&path)
            .expect("run scripts/build-modules.sh first"),
    );
    OperatorInstance::new(
        module,
        "bench",
        OperatorKind::Map,
        Vec::new(),
        Default::default(),
    )
    .expect("instance")
}

const TOPIC: &str = "sensors/gw1/temperature";

fn payload() -> Vec<u8> {
    let mut payload = br#"{"temperature":{"value":72.5,"unit":"F"},"id":""#.to_vec();
    payload.resize(98, b'0');
    payload.extend_from_slice(b"\"}");
    assert_eq!(payload.len(), 100);
    payload
}

fn host_item() -> DataModel {
    DataModel::Message(Message::new(
        Hlc::from_millis(1_700_000_000_000, 0, "bench".into()),
        Bytes::from_static(TOPIC.as_bytes()),
        Bytes::from(payload()),
    ))
}

fn wit_item() -> wit::DataModel {
    wit::DataModel::Message(wit::Message {
        timestamp: wit::Timestamp {
            timestamp: Timespec {
                secs: 1_700_000_000,
                nanos: 0,
            },
            counter: 0,
            node_id: wit::BufferOrString::String("bench".into()),
        },
        topic: wit::BufferOrBytes::Bytes(TOPIC.as_bytes().to_vec()),
        content_type: None,
        payload: wit::BufferOrBytes::Bytes(payload()),
        properties: wit::MessageProperties {
            user_properties: Vec::new(),
        },
        schema: None,
    })
}

fn map_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("map_100B");
    let mut echo = instance("echo");
    let item = host_item();
    group.bench_function("echo/host", |b| b.iter(|| echo.map(&item).expect("map")));
    group.bench_function("echo/bare", |b| {
        b.iter_batched_ref(
            wit_item,
            |item| bare::map(&mut echo, item).expect("map"),
            BatchSize::SmallInput,
        )
    });
    let mut temperature = instance("temperature");
    group.bench_function("temperature/host", |b| {
        b.iter(|| temperature.map(&item).expect("map"))
    });
    group.bench_function("temperature/bare", |b| {
        b.iter_batched_ref(
            wit_item,
            |item| bare::map(&mut temperature, item).expect("map"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, map_call);
criterion_main!(benches);
