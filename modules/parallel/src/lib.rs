//! A map operator written with rayon, as crates that parallelise their work (image codecs,
//! numeric kernels) are: `{"values": [numbers]}` becomes
//! `{"sum": S, "squares": Q, "count": N, "workers": W}`, computed with `par_iter`.
//!
//! WebAssembly components run on one thread: spawning a thread fails with "unsupported", and
//! rayon then runs its pool on the calling thread (`workers` is 1). The module proves that such
//! crates link and run in Weir unchanged.

use rayon::prelude::*;
use serde_json::{json, Value};
use wasm_graph_sdk::macros::map_operator;

#[map_operator]
fn statistics(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error::new("parallel: expected a message"));
    };
    let json: Value = serde_json::from_slice(&message.payload.read())
        .map_err(|e| Error::new(format!("parallel: payload is not JSON: {e}")))?;
    let Some(values) = json.get("values").and_then(Value::as_array) else {
        return Err(Error::new("parallel: payload has no `values` array"));
    };
    let numbers: Vec<f64> = values
        .par_iter()
        .map(|value| value.as_f64().ok_or("not a number"))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::new(format!("parallel: a value is {e}")))?;
    let sum: f64 = numbers.par_iter().sum();
    let squares: f64 = numbers.par_iter().map(|x| x * x).sum();
    let result = json!({
        "sum": sum,
        "squares": squares,
        "count": numbers.len(),
        "workers": rayon::current_num_threads(),
    });
    message.payload = BufferOrBytes::Bytes(result.to_string().into_bytes());
    Ok(DataModel::Message(message))
}
