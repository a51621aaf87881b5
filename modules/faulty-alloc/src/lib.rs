//! Misbehaves on purpose: allocates without bound on a payload `alloc`, echoes anything else.

use wasm_graph_sdk::macros::map_operator;

#[map_operator]
fn allocate_on_request(input: DataModel) -> Result<DataModel, Error> {
    if input.payload_bytes() == b"alloc" {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(vec![1u8; 1 << 20]);
            std::hint::black_box(&hoard);
        }
    }
    Ok(input)
}
