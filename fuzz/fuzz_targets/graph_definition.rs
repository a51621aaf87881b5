//! A graph definition (YAML) is parsed and validated: any text gives a graph or located
//! errors, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|text: &str| {
    let configuration = HashMap::from([("window_ms".to_string(), "1000".to_string())]);
    let _ = weir_graph::Graph::parse(text, "fuzz.yaml", &configuration);
});
