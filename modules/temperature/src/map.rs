//! °F → °C: rewrites `temperature.value` and `temperature.unit`, keeping the rest of the payload.

use serde_json::Value;
use wasm_graph_sdk::logger::{self, Level};
use wasm_graph_sdk::macros::map_operator;
use wasm_graph_sdk::metrics::{self, CounterValue, Label};

fn fahrenheit_to_celsius_init(_configuration: ModuleConfiguration) -> bool {
    logger::log(Level::Info, "temperature/map", "ready to convert °F to °C");
    true
}

#[map_operator(init = "fahrenheit_to_celsius_init")]
fn fahrenheit_to_celsius(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error::new("temperature/map: expected a message"));
    };
    let mut json: Value = serde_json::from_slice(&message.payload.read())
        .map_err(|e| Error::new(format!("temperature/map: payload is not JSON: {e}")))?;
    let Some(temperature) = json.get_mut("temperature").and_then(Value::as_object_mut) else {
        return Err(Error::new(
            "temperature/map: payload has no `temperature` object",
        ));
    };
    if temperature.get("unit").and_then(Value::as_str) != Some("F") {
        return Ok(DataModel::Message(message));
    }
    let Some(fahrenheit) = temperature.get("value").and_then(Value::as_f64) else {
        return Err(Error::new(
            "temperature/map: `temperature.value` is not a number",
        ));
    };
    temperature.insert("value".into(), ((fahrenheit - 32.0) * 5.0 / 9.0).into());
    temperature.insert("unit".into(), "C".into());
    let labels = [Label {
        key: "module".into(),
        value: "temperature/map".into(),
    }];
    let _ = metrics::add_to_counter("conversions", CounterValue::U64(1), Some(&labels));
    message.payload = BufferOrBytes::Bytes(json.to_string().into_bytes());
    Ok(DataModel::Message(message))
}
