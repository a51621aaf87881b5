//! Returns every item unchanged after `delay_ms` milliseconds (default 20) of work: a slow
//! operator, for exercising back-pressure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasm_graph_sdk::macros::map_operator;

static DELAY_MS: AtomicU64 = AtomicU64::new(20);

fn slow_init(configuration: ModuleConfiguration) -> bool {
    match configuration.property("delay_ms") {
        None => true,
        Some(text) => match text.trim().parse() {
            Ok(ms) => {
                DELAY_MS.store(ms, Ordering::Relaxed);
                true
            }
            Err(_) => false,
        },
    }
}

#[map_operator(init = "slow_init")]
fn slow(input: DataModel) -> Result<DataModel, Error> {
    let until = Instant::now() + Duration::from_millis(DELAY_MS.load(Ordering::Relaxed));
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    Ok(input)
}
