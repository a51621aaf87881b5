//! Misbehaves on purpose: loops forever on a payload `loop`, echoes anything else.

use wasm_graph_sdk::macros::map_operator;

#[map_operator]
fn loop_on_request(input: DataModel) -> Result<DataModel, Error> {
    if input.payload_bytes() == b"loop" {
        let mut spins = 0u64;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
    Ok(input)
}
