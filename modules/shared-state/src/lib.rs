//! A map operator that keeps its state in `std::sync` statics, as code written for threaded
//! hosts does: a `Mutex` holding the payload sizes seen so far, and a `Condvar` signalled on
//! each update and waited on (with a predicate that holds, so the wait returns at once).
//!
//! Each payload becomes `{"seen": N, "bytes": TOTAL, "spawn": "unsupported"}`: the last field
//! records what `std::thread::spawn` answered, an error and not a trap, on a single-threaded
//! component.

use serde_json::json;
use std::sync::{Condvar, Mutex};
use std::time::Duration;
use wasm_graph_sdk::macros::map_operator;

/// Payload sizes seen so far.
static SIZES: Mutex<Vec<usize>> = Mutex::new(Vec::new());
/// Signalled after each update of `SIZES`.
static UPDATED: Condvar = Condvar::new();

fn poisoned() -> Error {
    Error::new("shared-state: the lock is poisoned")
}

fn spawn_outcome() -> &'static str {
    match std::thread::Builder::new().spawn(|| ()) {
        Ok(handle) => {
            let _ = handle.join();
            "spawned"
        }
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => "unsupported",
        Err(_) => "failed",
    }
}

#[map_operator]
fn tally(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error::new("shared-state: expected a message"));
    };
    let size = message.payload.read().len();
    let mut sizes = SIZES.lock().map_err(|_| poisoned())?;
    sizes.push(size);
    let seen = sizes.len();
    UPDATED.notify_all();
    let (sizes, _timeout) = UPDATED
        .wait_timeout_while(sizes, Duration::from_millis(10), |sizes| sizes.len() < seen)
        .map_err(|_| poisoned())?;
    let bytes: usize = sizes.iter().sum();
    drop(sizes);
    let result = json!({ "seen": seen, "bytes": bytes, "spawn": spawn_outcome() });
    message.payload = BufferOrBytes::Bytes(result.to_string().into_bytes());
    Ok(DataModel::Message(message))
}
