//! What the router's queue gauge adds to every hand-over: the door reads how full the router's
//! event queue is before each send (`router::QueueGauge::nearly_full`), to move a send that
//! could wait off the tokio worker. Measured on a running router's real queue, idle and with
//! links sending to it from another thread.
//!
//! Run: `cargo bench -p weir-door --bench router_gauge`

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use weir_door::router::{self, Router};
use weir_door::RouterLimits;

fn limits() -> RouterLimits {
    RouterLimits {
        max_outgoing_packet_count: 200,
        max_segment_size: 1 << 20,
        max_segment_count: 10,
    }
}

fn gauge(c: &mut Criterion) {
    let router = Router::spawn(limits(), 16);
    let gauge = router.queue().clone();
    c.bench_function("nearly_full, idle router", |b| {
        b.iter(|| black_box(gauge.nearly_full()))
    });
    // Another thread hands PINGREQs over as fast as the router takes them.
    let busy = Arc::new(AtomicBool::new(true));
    let sender = {
        let (router, busy) = (router.clone(), busy.clone());
        std::thread::spawn(move || {
            let mut link = router.link("busy", true).expect("a link");
            while busy.load(Relaxed) {
                if router::ping(&mut link.tx).is_err() {
                    return;
                }
                // Its answers are read so that they do not pile up.
                while let Ok(Some(_)) = link.rx.recv_deadline(std::time::Instant::now()) {}
            }
        })
    };
    c.bench_function("nearly_full, router busy", |b| {
        b.iter(|| black_box(gauge.nearly_full()))
    });
    busy.store(false, Relaxed);
    let _ = sender.join();
}

criterion_group!(benches, gauge);
criterion_main!(benches);
