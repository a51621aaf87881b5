//! Counts messages per topic in the broker's state store and replaces each payload with
//! `{"topic":..,"count":N}`. Exercises the state-store host API from a module.

use serde_json::json;
use wasm_graph_sdk::macros::map_operator;
use wasm_graph_sdk::state_store::{self};
use wasm_graph_sdk::state_store_types::{SetConditions, SetOptions};

#[map_operator]
fn count_per_topic(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error::new("state-counter: expected a message"));
    };
    let topic = String::from_utf8_lossy(&message.topic.read()).into_owned();
    let key = format!("state-counter/{topic}").into_bytes();
    let current = state_store::get(&key, None)
        .map_err(|e| Error::new(format!("state-counter: get failed: {e:?}")))?;
    let count = current
        .response
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    let options = SetOptions {
        conditions: SetConditions::Unconditional,
        expires: None,
    };
    state_store::set(&key, count.to_string().as_bytes(), None, None, options)
        .map_err(|e| Error::new(format!("state-counter: set failed: {e:?}")))?;
    message.payload = BufferOrBytes::Bytes(
        json!({"topic": topic, "count": count})
            .to_string()
            .into_bytes(),
    );
    Ok(DataModel::Message(message))
}
