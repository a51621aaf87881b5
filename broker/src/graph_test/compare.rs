//! Comparing a graph's results with a test's expectations.
//!
//! A result is seen as a JSON object (its *view*): `topic`, `payload` (its JSON when it is JSON,
//! else its text, else `{"base64": ...}`), `content-type` when set,
//! `properties.user-properties` (an object; `__ts` left out) and `timestamp` (the `__ts` form).
//! Paths (`payload.temperature.value`, `properties.user-properties.KEY`) walk objects by key
//! (a key may itself contain dots) and arrays by index. Strings that hold JSON compare as that
//! JSON, and numbers compare by value (`21` equals `21.0`).

use serde_json::{Map, Value};
use weir_model::data::DataModel;
use weir_model::record::Payload;

/// The view of a result.
pub fn view(item: &DataModel) -> Value {
    let mut view = Map::new();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if let DataModel::Message(message) = item {
        view.insert("topic".into(), Value::String(text(&message.topic)));
        if let Some(content_type) = &message.content_type {
            view.insert("content-type".into(), Value::String(text(content_type)));
        }
        let properties: Map<String, Value> = message
            .user_properties
            .iter()
            .filter(|(key, _)| key.as_ref() != b"__ts")
            .map(|(key, value)| (text(key), Value::String(text(value))))
            .collect();
        let mut user = Map::new();
        user.insert("user-properties".into(), Value::Object(properties));
        view.insert("properties".into(), Value::Object(user));
    }
    view.insert("payload".into(), payload_value(item.payload()));
    if let Some(timestamp) = item.timestamp() {
        view.insert("timestamp".into(), Value::String(timestamp.to_string()));
    }
    Value::Object(view)
}

fn payload_value(bytes: &[u8]) -> Value {
    if let Ok(json) = serde_json::from_slice::<Value>(bytes) {
        return json;
    }
    serde_json::to_value(Payload::from_bytes(bytes)).unwrap_or(Value::Null)
}

/// `expected` with a `payload` string that holds JSON replaced by that JSON, so that paths
/// reach inside it.
pub fn parse_payload(mut expected: Value) -> Value {
    if let Some(payload) = expected.get_mut("payload") {
        if let std::borrow::Cow::Owned(json) = as_json(payload) {
            *payload = json;
        }
    }
    expected
}

/// The value at `path` in `value`, if any.
pub fn lookup<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    if path.is_empty() {
        return Some(value);
    }
    match value {
        Value::Object(object) => {
            if let Some(found) = object.get(path) {
                return Some(found);
            }
            // The longest key that is a prefix of the path wins.
            path.match_indices('.').rev().find_map(|(dot, _)| {
                let child = object.get(&path[..dot])?;
                lookup(child, &path[dot + 1..])
            })
        }
        Value::Array(items) => {
            let (index, rest) = path.split_once('.').unwrap_or((path, ""));
            lookup(items.get(index.parse::<usize>().ok()?)?, rest)
        }
        _ => None,
    }
}

/// Removes the value at `path` from `value`, if there is one.
pub fn remove(value: &mut Value, path: &str) {
    match value {
        Value::Object(object) => {
            if object.remove(path).is_some() {
                return;
            }
            let split = path
                .match_indices('.')
                .rev()
                .map(|(dot, _)| dot)
                .find(|&dot| object.contains_key(&path[..dot]));
            if let Some(dot) = split {
                if let Some(child) = object.get_mut(&path[..dot]) {
                    remove(child, &path[dot + 1..]);
                }
            }
        }
        Value::Array(items) => {
            let (index, rest) = path.split_once('.').unwrap_or((path, ""));
            let Ok(index) = index.parse::<usize>() else {
                return;
            };
            if rest.is_empty() {
                if index < items.len() {
                    items.remove(index);
                }
            } else if let Some(child) = items.get_mut(index) {
                remove(child, rest);
            }
        }
        _ => {}
    }
}

/// Where `expected` and `actual` first differ: a path below `at` and what each side holds;
/// `None` when they are equal.
pub fn first_difference(at: &str, expected: &Value, actual: &Value) -> Option<String> {
    let expected = as_json(expected);
    let actual = as_json(actual);
    let here = |what: String| {
        Some(format!(
            "{}{what}",
            if at.is_empty() {
                String::new()
            } else {
                format!("{at}: ")
            }
        ))
    };
    match (&*expected, &*actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (key, value) in e {
                let path = join(at, key);
                match a.get(key) {
                    Some(other) => {
                        if let Some(difference) = first_difference(&path, value, other) {
                            return Some(difference);
                        }
                    }
                    None => return Some(format!("{path}: expected {value}, got nothing")),
                }
            }
            a.iter()
                .find(|(key, _)| !e.contains_key(*key))
                .map(|(key, value)| format!("{}: unexpected {value}", join(at, key)))
        }
        (Value::Array(e), Value::Array(a)) => {
            for (index, (value, other)) in e.iter().zip(a).enumerate() {
                if let Some(difference) =
                    first_difference(&join(at, &index.to_string()), value, other)
                {
                    return Some(difference);
                }
            }
            (e.len() != a.len()).then(|| {
                format!(
                    "{}: expected {} elements, got {}",
                    if at.is_empty() { "." } else { at },
                    e.len(),
                    a.len()
                )
            })
        }
        (Value::Number(e), Value::Number(a)) if numbers_equal(e, a) => None,
        (e, a) if e == a => None,
        (e, a) => here(format!("expected {e}, got {a}")),
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// A string that holds a JSON object or array compares as that JSON.
fn as_json(value: &Value) -> std::borrow::Cow<'_, Value> {
    if let Value::String(text) = value {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Ok(json) = serde_json::from_str::<Value>(text) {
                return std::borrow::Cow::Owned(json);
            }
        }
    }
    std::borrow::Cow::Borrowed(value)
}

fn numbers_equal(e: &serde_json::Number, a: &serde_json::Number) -> bool {
    match (e.as_i64(), a.as_i64(), e.as_u64(), a.as_u64()) {
        (Some(x), Some(y), _, _) => x == y,
        (_, _, Some(x), Some(y)) => x == y,
        _ => e.as_f64() == a.as_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_objects_arrays_and_dotted_keys() {
        let value = json!({"payload": {"readings": [{"v": 1}, {"v": 2}]}, "a.b": {"c": 3}});
        assert_eq!(lookup(&value, "payload.readings.1.v"), Some(&json!(2)));
        assert_eq!(lookup(&value, "a.b.c"), Some(&json!(3)));
        assert_eq!(lookup(&value, "payload.missing"), None);
        assert_eq!(lookup(&value, "payload.readings.9"), None);
    }

    #[test]
    fn removal_follows_the_same_paths() {
        let mut value = json!({"payload": {"humidity": 40, "t": 1}, "k.x": {"y": 1, "z": 2}});
        remove(&mut value, "payload.humidity");
        remove(&mut value, "k.x.y");
        remove(&mut value, "nothing.here");
        assert_eq!(value, json!({"payload": {"t": 1}, "k.x": {"z": 2}}));
    }

    #[test]
    fn differences_name_the_first_path() {
        let expected = json!({"payload": {"t": 21, "unit": "C"}});
        assert_eq!(
            first_difference("", &expected, &json!({"payload": {"t": 21.0, "unit": "C"}})),
            None
        );
        assert_eq!(
            first_difference("", &expected, &json!({"payload": {"t": 22, "unit": "C"}})).unwrap(),
            "payload.t: expected 21, got 22"
        );
        assert_eq!(
            first_difference(
                "",
                &expected,
                &json!({"payload": {"t": 21, "unit": "C", "x": 1}})
            )
            .unwrap(),
            "payload.x: unexpected 1"
        );
        assert_eq!(
            first_difference("", &json!([1, 2]), &json!([1])).unwrap(),
            ".: expected 2 elements, got 1"
        );
    }

    #[test]
    fn json_in_strings_compares_as_json() {
        assert_eq!(
            first_difference("payload", &json!("{\"a\": 1}"), &json!({"a": 1})),
            None
        );
        assert!(first_difference("payload", &json!("plain"), &json!("other")).is_some());
    }
}
