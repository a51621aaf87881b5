//! Reading the temperature out of a JSON payload.

use serde_json::Value;

/// The `temperature` object of a payload: its value and unit.
pub struct Reading {
    pub value: f64,
    pub unit: String,
}

impl Reading {
    /// The value in °C, converting from °F when the unit says so.
    pub fn celsius(&self) -> f64 {
        if self.unit == "F" {
            (self.value - 32.0) * 5.0 / 9.0
        } else {
            self.value
        }
    }
}

/// Parses `{"temperature":{"value":N,"unit":"F"|"C"}}`; `None` if the payload has another shape.
pub fn reading(payload: &[u8]) -> Option<Reading> {
    let json: Value = serde_json::from_slice(payload).ok()?;
    let temperature = json.get("temperature")?;
    Some(Reading {
        value: temperature.get("value")?.as_f64()?,
        unit: temperature
            .get("unit")
            .and_then(Value::as_str)
            .unwrap_or("C")
            .to_string(),
    })
}
