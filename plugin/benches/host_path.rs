//! The per-message host path without the network: a publish becomes a graph message (as the
//! connection layer converts it), is stamped and queued (feeder), runs through the one-node
//! temperature map on a worker (engine, operator runtime) and reaches the graph's outputs; then
//! the result becomes a router publish again (sink). Measured per message over batches, beside
//! the two conversions alone. A counting allocator reports the heap allocations each costs
//! per message (every thread's: the worker's too).
//!
//! Run: `scripts/build-modules.sh && cargo bench -p weir-plugin --bench host_path`

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;
use weir_door::message::{message_from_publish, publish_from_message, Publish};
use weir_engine::{self as engine, time, DeadLetter, EngineOptions, GraphSpec, Outputs};
use weir_graph::{Graph, ModuleSources};
use weir_model::data::DataModel;
use weir_model::hlc::HlcClock;
use weir_state::StateStore;
use weir_wasm::{RuntimeConfig, WasmRuntime};

/// The system allocator, counting allocations (all threads).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, i.e. from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations per call of `run(count)`, over `count` calls.
fn allocations_per(count: u64, run: impl FnOnce(u64)) -> f64 {
    let before = ALLOCATIONS.load(Relaxed);
    run(count);
    (ALLOCATIONS.load(Relaxed) - before) as f64 / count as f64
}

/// Outputs that turn each result into a router publish (as the MQTT sink does) and count it.
#[derive(Default)]
struct Publishing {
    results: AtomicU64,
}

impl Outputs for Publishing {
    fn result(&self, item: DataModel) -> bool {
        if let DataModel::Message(message) = item {
            let topic = message.topic.clone();
            std::hint::black_box(publish_from_message(message, topic, false));
        }
        self.results.fetch_add(1, Relaxed);
        true
    }

    fn dead_letter(&self, _: DeadLetter) {}
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

fn payload() -> Bytes {
    let mut payload = br#"{"temperature":{"value":72.5,"unit":"F"},"id":""#.to_vec();
    payload.resize(98, b'0');
    payload.extend_from_slice(b"\"}");
    Bytes::from(payload)
}

fn host_path(c: &mut Criterion) {
    let graph = Graph::load(&repo("config/graphs/temperature-map.yaml"), &HashMap::new())
        .expect("the demo graph");
    let state = Arc::new(StateStore::in_memory("bench").expect("state store"));
    let runtime = Arc::new(WasmRuntime::new(&RuntimeConfig::default(), state).expect("runtime"));
    let modules = engine::load_modules(
        &graph,
        &ModuleSources::local(vec![repo("target/modules")]),
        &runtime,
    )
    .expect("run scripts/build-modules.sh first");
    let outputs = Arc::new(Publishing::default());
    let spec = GraphSpec {
        name: "bench".into(),
        graph,
        modules,
    };
    let options = EngineOptions {
        queue_capacity: 4096,
        ..Default::default()
    };
    let (feeder, running) = engine::start(spec, options, outputs.clone()).expect("engine");
    let publish = Publish::new(
        Bytes::from_static(b"sensors/gw1/temperature"),
        payload(),
        false,
    );
    let mut clock = HlcClock::new("bench");

    let mut group = c.benchmark_group("host path, 100-byte message");
    group.bench_function("door: publish to graph message", |b| {
        b.iter(|| message_from_publish(std::hint::black_box(&publish), None, &mut clock))
    });
    let (message, _) = message_from_publish(&publish, None, &mut clock);
    group.bench_function("sink: graph result to router publish", |b| {
        b.iter_batched(
            || message.clone(),
            |message| {
                let topic = message.topic.clone();
                publish_from_message(std::hint::black_box(message), topic, false)
            },
            BatchSize::SmallInput,
        )
    });
    let door = allocations_per(10_000, |n| {
        for _ in 0..n {
            std::hint::black_box(message_from_publish(&publish, None, &mut clock));
        }
    });
    // The sink takes each result apart: give it copies made beforehand.
    let results: Vec<_> = (0..10_000).map(|_| message.clone()).collect();
    let sink = allocations_per(10_000, |_| {
        for message in results {
            let topic = message.topic.clone();
            std::hint::black_box(publish_from_message(message, topic, false));
        }
    });
    let mut through = |messages: u64| {
        let before = outputs.results.load(Relaxed);
        let started = Instant::now();
        for _ in 0..messages {
            let (message, _) = message_from_publish(&publish, None, &mut clock);
            feeder.push(message);
        }
        feeder.advance_to(time::encode(&clock.now()) + 1);
        while outputs.results.load(Relaxed) < before + messages {
            std::thread::yield_now();
        }
        started.elapsed()
    };
    group.bench_function(
        "door → engine → temperature map → sink, per message",
        |b| b.iter_custom(&mut through),
    );
    group.finish();

    let whole = allocations_per(10_000, |n| {
        through(n);
    });
    println!(
        "allocations per message: door {door:.1}, sink {sink:.1}, door → engine → map → sink {whole:.1}"
    );
    // Close the input before waiting for the workers.
    drop(feeder);
    running.join().expect("the graph's workers");
}

criterion_group!(benches, host_path);
criterion_main!(benches);
