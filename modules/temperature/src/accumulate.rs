//! Statistics of the readings of one timestamp (a window, after a delay):
//! `{"temperature":{"count":N,"min":..,"max":..,"average":..,"last":..,"unit":"C"}}`.
//! Readings in °F are converted. An empty staged payload means "no previous state".

use crate::reading::reading;
use serde_json::{json, Value};
use wasm_graph_sdk::macros::accumulate_operator;

struct Statistics {
    count: u64,
    min: f64,
    max: f64,
    sum: f64,
    last: f64,
}

impl Statistics {
    fn from_staged(payload: &[u8]) -> Result<Option<Statistics>, Error> {
        if payload.is_empty() {
            return Ok(None);
        }
        let json: Value = serde_json::from_slice(payload)
            .map_err(|e| Error::new(format!("temperature/accumulate: bad staged state: {e}")))?;
        let field = |name: &str| json["temperature"][name].as_f64();
        match (
            field("count"),
            field("min"),
            field("max"),
            field("average"),
            field("last"),
        ) {
            (Some(count), Some(min), Some(max), Some(average), Some(last)) => {
                Ok(Some(Statistics {
                    count: count as u64,
                    min,
                    max,
                    sum: average * count,
                    last,
                }))
            }
            _ => Err(Error::new(
                "temperature/accumulate: staged state lacks statistics",
            )),
        }
    }

    fn add(statistics: Option<Statistics>, value: f64) -> Statistics {
        match statistics {
            None => Statistics {
                count: 1,
                min: value,
                max: value,
                sum: value,
                last: value,
            },
            Some(s) => Statistics {
                count: s.count + 1,
                min: s.min.min(value),
                max: s.max.max(value),
                sum: s.sum + value,
                last: value,
            },
        }
    }

    fn to_json(&self) -> Value {
        json!({"temperature": {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "average": self.sum / self.count as f64,
            "last": self.last,
            "unit": "C",
        }})
    }
}

#[accumulate_operator]
fn temperature_statistics(staged: DataModel, inputs: Vec<DataModel>) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = staged else {
        return Err(Error::new(
            "temperature/accumulate: staged value is not a message",
        ));
    };
    let mut statistics = Statistics::from_staged(&message.payload.read())?;
    for input in &inputs {
        let reading = reading(&input.payload_bytes()).ok_or_else(|| {
            Error::new("temperature/accumulate: input has no temperature reading")
        })?;
        statistics = Some(Statistics::add(statistics, reading.celsius()));
    }
    if let Some(statistics) = statistics {
        message.payload = BufferOrBytes::Bytes(statistics.to_json().to_string().into_bytes());
        message.content_type = Some(BufferOrString::String("application/json".into()));
    }
    Ok(DataModel::Message(message))
}
