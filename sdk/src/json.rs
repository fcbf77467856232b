//! The two JSON rules the ABI needs: values that must be objects become objects, and objects
//! become the JSON text that crosses the boundary.

mod write;

use serde_json::{Map, Value};

/// A value the contracts require to be an object: an object stays as it is, `null` becomes
/// `{}`, and anything else is wrapped as `{"value": ...}` so nothing the lane says is lost.
pub(crate) fn into_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => {
            let mut map = Map::new();
            map.insert("value".to_owned(), other);
            map
        }
    }
}

/// The JSON text of an object, in one allocation of exactly its length ([`write`] says why
/// it is not `serde_json::to_string`).
pub(crate) fn to_text(map: &Map<String, Value>) -> String {
    write::object_text(map)
}

/// Reads JSON text that should hold an object, for the test harness; anything else is
/// kept under `value` (or `raw` when it is not JSON) so a test sees what crossed.
pub(crate) fn from_text(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => into_object(value),
        Err(_) => {
            let mut map = Map::new();
            map.insert("raw".to_owned(), Value::from(text));
            map
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn objects_stay_null_empties_and_scalars_are_wrapped() {
        assert_eq!(Value::Object(into_object(json!({"a": 1}))), json!({"a": 1}));
        assert_eq!(Value::Object(into_object(Value::Null)), json!({}));
        assert_eq!(
            Value::Object(into_object(json!([1, 2]))),
            json!({"value": [1, 2]})
        );
        assert_eq!(
            Value::Object(into_object(json!("s"))),
            json!({"value": "s"})
        );
    }

    #[test]
    fn objects_round_trip_through_text() {
        let map = into_object(json!({"b": [1, {"c": null}], "a": "x"}));
        assert_eq!(from_text(&to_text(&map)), map);
    }

    #[test]
    fn text_is_written_into_one_allocation_of_its_length() {
        let map = into_object(json!({"body": "x\"y".repeat(1000), "n": 1}));
        let text = to_text(&map);
        assert_eq!(text, serde_json::to_string(&map).unwrap());
        assert_eq!(text.capacity(), text.len());
    }

    #[test]
    fn non_json_text_is_kept_raw() {
        assert_eq!(Value::Object(from_text("nope")), json!({"raw": "nope"}));
    }
}
