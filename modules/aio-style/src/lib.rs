//! Operators written the way Azure IoT Operations' samples write them against its
//! `wasm_graph_sdk` 1.1: `Duration` in scope inside operator functions, `Timespec` ↔ `Duration`
//! conversions for window ends, the state store's `SetConditions` and `SetOptions::default()`,
//! and the usual traits on the interface's records. It builds only if Weir's SDK offers what
//! such code expects.
//!
//! - `delay`: moves each item to the end of its `window_ms` window (default 1000).
//! - `map`: counts the messages it has seen in the state store (key `aio-style/count`) and
//!   replaces the payload with `{"count": N, "first": BOOL}`.

use std::sync::atomic::{AtomicU64, Ordering};
use wasm_graph_sdk::logger::{self, Level};
use wasm_graph_sdk::macros::{delay_operator, map_operator};
use wasm_graph_sdk::state_store::{self, SetConditions, SetOptions};

static WINDOW_MS: AtomicU64 = AtomicU64::new(1000);

fn delay_init(configuration: ModuleConfiguration) -> bool {
    if let Some(window) = configuration.property("window_ms") {
        match window.parse::<u64>() {
            Ok(ms) if ms > 0 => WINDOW_MS.store(ms, Ordering::Relaxed),
            _ => return false,
        }
    }
    logger::log(
        Level::Info,
        "aio-style/delay",
        &format!("{configuration:?}"),
    );
    true
}

#[delay_operator(init = "delay_init")]
fn delay(_input: DataModel, timestamp: HybridLogicalClock) -> Result<HybridLogicalClock, Error> {
    let window = Duration::from_millis(WINDOW_MS.load(Ordering::Relaxed));
    let since_epoch = Duration::from(timestamp.timestamp.clone());
    let windows = since_epoch.as_millis() / window.as_millis() + 1;
    let end = Duration::from_millis((windows * window.as_millis()) as u64);
    let moved = HybridLogicalClock {
        timestamp: Timespec::from(end),
        counter: 0,
        node_id: timestamp.node_id.clone(),
    };
    if moved != timestamp && moved.timestamp == Timespec::default() {
        return Err(Error {
            message: "a window ended at the epoch".to_string(),
        });
    }
    Ok(moved)
}

const COUNT_KEY: &[u8] = b"aio-style/count";

fn map_init(_configuration: ModuleConfiguration) -> bool {
    // Marks the first start: kept only if nobody set it before.
    let first = SetOptions {
        conditions: SetConditions::OnlyIfDoesNotExist,
        expires: None,
    };
    state_store::set(b"aio-style/started", b"1", None, None, first).is_ok()
}

#[map_operator(init = "map_init")]
fn map(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error {
            message: "expected a message".to_string(),
        });
    };
    let seen = state_store::get(COUNT_KEY, None)
        .map_err(|e| Error {
            message: format!("{e:?}"),
        })?
        .response
        .and_then(|bytes| String::from_utf8(bytes).ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    let count = seen + 1;
    state_store::set(
        COUNT_KEY,
        count.to_string().as_bytes(),
        None,
        None,
        SetOptions::default(),
    )
    .map_err(|e| Error {
        message: format!("{e:?}"),
    })?;
    let payload = format!(r#"{{"count": {count}, "first": {}}}"#, seen == 0);
    message.payload = BufferOrBytes::Bytes(payload.into_bytes());
    Ok(DataModel::Message(message))
}
