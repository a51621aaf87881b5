//! Misbehaves on purpose: its `init` refuses every configuration.

use wasm_graph_sdk::macros::map_operator;

fn refuse(_configuration: ModuleConfiguration) -> bool {
    false
}

#[map_operator(init = "refuse")]
fn never_called(input: DataModel) -> Result<DataModel, Error> {
    Ok(input)
}
