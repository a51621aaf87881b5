//! Enrichment from the state store: adds the values of the keys named by the `keys` parameter
//! (comma-separated, default `factoryId,machineId`) to each message. With `into: payload` (the
//! default) they become fields of the JSON object payload; with `into: user-properties`, MQTT
//! user properties (any payload). A key the store does not hold is left out. Seed the keys
//! with a `statestore.json`, `--state FILE` or a binding's `state_seed`.

use serde_json::{Map, Value};
use std::sync::Mutex;
use wasm_graph_sdk::macros::map_operator;
use wasm_graph_sdk::state_store;

/// Where the values go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Into {
    Payload,
    UserProperties,
}

struct Settings {
    keys: Vec<String>,
    into: Into,
}

static SETTINGS: Mutex<Option<Settings>> = Mutex::new(None);

fn enrich_init(configuration: ModuleConfiguration) -> bool {
    let into = match configuration.property("into").unwrap_or("payload") {
        "payload" => Into::Payload,
        "user-properties" => Into::UserProperties,
        _ => return false,
    };
    let keys = configuration
        .property("keys")
        .unwrap_or("factoryId,machineId")
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(str::to_string)
        .collect();
    match SETTINGS.lock() {
        Ok(mut slot) => {
            *slot = Some(Settings { keys, into });
            true
        }
        Err(_) => false,
    }
}

/// The `(key, value)` pairs the store holds for `keys`.
fn lookup(keys: &[String]) -> Result<Vec<(String, String)>, Error> {
    let mut found = Vec::new();
    for key in keys {
        let answer = state_store::get(key.as_bytes(), None)
            .map_err(|e| Error::new(format!("enrich: state store: {e:?}")))?;
        if let Some(value) = answer.response {
            found.push((key.clone(), String::from_utf8_lossy(&value).into_owned()));
        }
    }
    Ok(found)
}

#[map_operator(init = "enrich_init")]
fn enrich(input: DataModel) -> Result<DataModel, Error> {
    let DataModel::Message(mut message) = input else {
        return Err(Error::new("enrich: expected a message"));
    };
    let settings = SETTINGS
        .lock()
        .map_err(|_| Error::new("enrich: the settings are poisoned"))?;
    let settings = settings
        .as_ref()
        .ok_or_else(|| Error::new("enrich: init did not run"))?;
    let found = lookup(&settings.keys)?;
    match settings.into {
        Into::Payload => {
            let mut payload: Map<String, Value> = serde_json::from_slice(&message.payload.read())
                .map_err(|e| Error::new(format!("enrich: payload is not a JSON object: {e}")))?;
            for (key, value) in found {
                payload.insert(key, Value::String(value));
            }
            message.payload = BufferOrBytes::Bytes(Value::Object(payload).to_string().into_bytes());
        }
        Into::UserProperties => {
            for (key, value) in found {
                message
                    .properties
                    .user_properties
                    .push((BufferOrString::String(key), BufferOrString::String(value)));
            }
        }
    }
    Ok(DataModel::Message(message))
}
