//! Statistics of humidity readings `{"humidity":{"value":N}}` per timestamp (window):
//! `{"humidity":{"count":N,"min":..,"max":..,"average":..,"last":..}}`. An empty staged payload
//! means "no previous state".

use serde_json::{json, Value};
use wasm_graph_sdk::macros::accumulate_operator;

fn humidity(payload: &[u8]) -> Option<f64> {
    let json: Value = serde_json::from_slice(payload).ok()?;
    json.get("humidity")?.get("value")?.as_f64()
}

#[accumulate_operator]
fn humidity_statistics(staged: DataModel, inputs: Vec<DataModel>) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = staged else {
        return Err(Error::new("humidity: staged value is not a message"));
    };
    let previous = message.payload.read();
    let (mut count, mut min, mut max, mut sum, mut last) = if previous.is_empty() {
        (0u64, f64::INFINITY, f64::NEG_INFINITY, 0.0, 0.0)
    } else {
        let json: Value = serde_json::from_slice(&previous)
            .map_err(|e| Error::new(format!("humidity: bad staged state: {e}")))?;
        let h = &json["humidity"];
        let count = h["count"].as_u64().unwrap_or(0);
        let average = h["average"].as_f64().unwrap_or(0.0);
        (
            count,
            h["min"].as_f64().unwrap_or(f64::INFINITY),
            h["max"].as_f64().unwrap_or(f64::NEG_INFINITY),
            average * count as f64,
            h["last"].as_f64().unwrap_or(0.0),
        )
    };
    for input in &inputs {
        let value = humidity(&input.payload_bytes())
            .ok_or_else(|| Error::new("humidity: input has no humidity reading"))?;
        count += 1;
        min = min.min(value);
        max = max.max(value);
        sum += value;
        last = value;
    }
    if count > 0 {
        let statistics = json!({"humidity": {
            "count": count,
            "min": min,
            "max": max,
            "average": sum / count as f64,
            "last": last,
        }});
        message.payload = BufferOrBytes::Bytes(statistics.to_string().into_bytes());
        message.content_type = Some(BufferOrString::String("application/json".into()));
    }
    Ok(DataModel::Message(message))
}
