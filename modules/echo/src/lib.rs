//! Returns every item unchanged: the smallest map, for measuring the host's own cost per call.

use wasm_graph_sdk::macros::map_operator;

#[map_operator]
fn echo(input: DataModel) -> Result<DataModel, Error> {
    Ok(input)
}
