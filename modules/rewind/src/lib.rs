//! Misbehaves on purpose: a delay that answers a time `rewind_ms` (default 1000) *earlier*
//! than the item's, so tests can see the host clamp it.

use std::sync::atomic::{AtomicU64, Ordering};
use wasm_graph_sdk::macros::delay_operator;

static REWIND_MS: AtomicU64 = AtomicU64::new(1000);

fn rewind_init(configuration: ModuleConfiguration) -> bool {
    if let Some(ms) = configuration
        .property("rewind_ms")
        .and_then(|v| v.parse().ok())
    {
        REWIND_MS.store(ms, Ordering::Relaxed);
    }
    true
}

#[delay_operator(init = "rewind_init")]
fn back_in_time(
    _input: DataModel,
    timestamp: HybridLogicalClock,
) -> Result<HybridLogicalClock, Error> {
    let millis = timestamp
        .millis()
        .saturating_sub(REWIND_MS.load(Ordering::Relaxed));
    Ok(HybridLogicalClock::from_millis(
        millis,
        0,
        timestamp.node_id,
    ))
}
