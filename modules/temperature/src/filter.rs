//! Keeps readings between `temperature_lower_bound` and `temperature_upper_bound` (inclusive,
//! in °C, defaults -40 and 125; °F readings are converted before the comparison).

use crate::reading::reading;
use std::sync::OnceLock;
use wasm_graph_sdk::macros::filter_operator;

static BOUNDS: OnceLock<(f64, f64)> = OnceLock::new();

const DEFAULT_LOWER: f64 = -40.0;
const DEFAULT_UPPER: f64 = 125.0;

fn bounds_init(configuration: ModuleConfiguration) -> bool {
    let bound = |name: &str, default: f64| match configuration.property(name) {
        None => Some(default),
        Some(text) => text.trim().parse::<f64>().ok(),
    };
    match (
        bound("temperature_lower_bound", DEFAULT_LOWER),
        bound("temperature_upper_bound", DEFAULT_UPPER),
    ) {
        (Some(lower), Some(upper)) if lower <= upper => BOUNDS.set((lower, upper)).is_ok(),
        _ => false,
    }
}

#[filter_operator(init = "bounds_init")]
fn within_bounds(input: DataModel) -> Result<bool, Error> {
    let (lower, upper) = *BOUNDS.get_or_init(|| (DEFAULT_LOWER, DEFAULT_UPPER));
    let reading = reading(&input.payload_bytes())
        .ok_or_else(|| Error::new("temperature/filter: payload has no temperature reading"))?;
    Ok((lower..=upper).contains(&reading.celsius()))
}
