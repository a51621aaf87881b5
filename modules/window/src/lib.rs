//! Tumbling windows: a delay that moves each item's timestamp to the end of its window, so an
//! accumulate after it sees one batch per window. The window length is `window_ms`
//! (default 10000) from the module configuration.

use std::sync::atomic::{AtomicU64, Ordering};
use wasm_graph_sdk::macros::delay_operator;

const DEFAULT_WINDOW_MS: u64 = 10_000;
static WINDOW_MS: AtomicU64 = AtomicU64::new(DEFAULT_WINDOW_MS);

fn window_init(configuration: ModuleConfiguration) -> bool {
    match configuration.property("window_ms") {
        None => true,
        Some(text) => match text.trim().parse::<u64>() {
            Ok(ms) if ms > 0 => {
                WINDOW_MS.store(ms, Ordering::Relaxed);
                true
            }
            _ => false,
        },
    }
}

/// The window [k·w, (k+1)·w) holding `timestamp` ends at (k+1)·w.
#[delay_operator(init = "window_init")]
fn end_of_window(
    _input: DataModel,
    timestamp: HybridLogicalClock,
) -> Result<HybridLogicalClock, Error> {
    let window = WINDOW_MS.load(Ordering::Relaxed);
    let end = (timestamp.millis() / window + 1) * window;
    Ok(HybridLogicalClock::from_millis(end, 0, timestamp.node_id))
}
