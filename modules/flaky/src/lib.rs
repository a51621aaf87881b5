//! Fails on purpose on some messages: returns an error for a payload that is a number
//! divisible by `every` (configuration, default 100: one message in a hundred), echoes anything
//! else. For soak tests, where every message must end at the sink or the dead-letter topic.

use std::sync::atomic::{AtomicU64, Ordering};
use wasm_graph_sdk::macros::map_operator;

static EVERY: AtomicU64 = AtomicU64::new(100);

fn flaky_init(configuration: ModuleConfiguration) -> bool {
    match configuration.property("every") {
        None => true,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(every) if every > 0 => {
                EVERY.store(every, Ordering::Relaxed);
                true
            }
            _ => false,
        },
    }
}

#[map_operator(init = "flaky_init")]
fn flaky(input: DataModel) -> Result<DataModel, Error> {
    let number = std::str::from_utf8(&input.payload_bytes())
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok());
    match number {
        Some(n) if n % EVERY.load(Ordering::Relaxed) == 0 => Err(Error {
            message: format!("flaky: {n} is a multiple of {}", EVERY.load(Ordering::Relaxed)),
        }),
        _ => Ok(input),
    }
}
