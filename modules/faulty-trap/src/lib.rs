//! Misbehaves on purpose: panics (a trap) on a payload `trap`, echoes anything else.

use wasm_graph_sdk::macros::map_operator;

#[map_operator]
fn trap_on_request(input: DataModel) -> Result<DataModel, Error> {
    if input.payload_bytes() == b"trap" {
        panic!("asked to trap");
    }
    Ok(input)
}
