//! A module built against the preview package `tinykube-graph:processor@1.0.0` with plain
//! wit-bindgen, as modules of that era were: °F → °C, where `process` returns the item itself
//! (no `error` record; a payload that is not a temperature passes unchanged).

wit_bindgen::generate!({
    path: "../../wit/preview",
    world: "tinykube-graph:processor/map-impl",
});

use exports::tinykube_graph::processor::map::Guest;
use tinykube_graph::processor::logger::{self, Level};
use tinykube_graph::processor::types::{BufferOrBytes, DataModel, ModuleConfiguration};

struct PreviewMap;

impl Guest for PreviewMap {
    fn init(_configuration: ModuleConfiguration) -> bool {
        logger::log(Level::Info, "preview-map", "preview module ready");
        true
    }

    fn process(message: DataModel) -> DataModel {
        let DataModel::Message(mut message) = message else {
            return message;
        };
        let payload = match &message.payload {
            BufferOrBytes::Buffer(buffer) => buffer.read(),
            BufferOrBytes::Bytes(bytes) => bytes.clone(),
        };
        let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(&payload) else {
            return DataModel::Message(message);
        };
        let temperature = &mut json["temperature"];
        if temperature["unit"] == "F" {
            if let Some(fahrenheit) = temperature["value"].as_f64() {
                temperature["value"] = ((fahrenheit - 32.0) * 5.0 / 9.0).into();
                temperature["unit"] = "C".into();
                message.payload = BufferOrBytes::Bytes(json.to_string().into_bytes());
            }
        }
        DataModel::Message(message)
    }
}

export!(PreviewMap);
