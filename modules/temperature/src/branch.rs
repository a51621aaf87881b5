//! Sends temperature payloads to the arm "True", everything else to "False".

use crate::reading::reading;
use wasm_graph_sdk::macros::branch_operator;

#[branch_operator]
fn is_temperature(_timestamp: HybridLogicalClock, input: DataModel) -> Result<bool, Error> {
    Ok(reading(&input.payload_bytes()).is_some())
}
