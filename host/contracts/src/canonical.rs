//! Canonical JSON and `sha256:` fingerprints: the one encoding every hash in the project uses.
//!
//! Canonical form: object keys sorted by their UTF-8 bytes, no insignificant whitespace, strings
//! escaped as `serde_json` does, numbers in `serde_json`'s shortest form. Hashes are therefore
//! stable across processes and platforms (upstream hashed Erlang terms; only the `sha256:<hex>`
//! format is shared, not the bytes).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Writes `value` in canonical form: compact JSON (serde_json's escaping and number format)
/// with the keys of every object sorted by their bytes.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out);
    // serde_json writes UTF-8 only; the fallback is never taken.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends the canonical form of `value` to `out` (for writers that build a larger line).
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            // serde_json's map is a BTreeMap unless a dependency turns on `preserve_order`:
            // sorted already, so the sort is only a check.
            if map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b) {
                for (i, (key, item)) in map.iter().enumerate() {
                    write_entry(i, key, item, out);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (i, (key, item)) in entries.into_iter().enumerate() {
                    write_entry(i, key, item, out);
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // Writing a scalar into a Vec cannot fail.
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

fn write_entry(i: usize, key: &str, item: &Value, out: &mut Vec<u8>) {
    if i > 0 {
        out.push(b',');
    }
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
    write_canonical(item, out);
}

/// `sha256:<64 lowercase hex>` of `bytes`.
pub fn sha256_ref(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `sha256:<hex>` of the canonical JSON of `value`: payload hashes, decision fingerprints.
pub fn hash_value(value: &Value) -> String {
    sha256_ref(canonical_json(value).as_bytes())
}

/// `{"sha256": "sha256:<hex>", "byte_size": n}` over the canonical JSON of `value`; the shape
/// evidence carries instead of the value itself.
pub fn fingerprint(value: &Value) -> Value {
    let bytes = canonical_json(value);
    let mut map = Map::new();
    map.insert(
        "sha256".to_owned(),
        Value::String(sha256_ref(bytes.as_bytes())),
    );
    map.insert("byte_size".to_owned(), Value::from(bytes.len()));
    Value::Object(map)
}

/// Whether `s` is a well-formed `sha256:` ref (64 lowercase hex digits).
pub fn is_sha256_ref(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    /// The definition, written the slow way: sort every object's keys, print each piece with
    /// serde_json.
    fn reference(value: &Value) -> String {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let items: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{}:{}", Value::String(k.clone()), reference(&map[k])))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            Value::Array(items) => {
                let items: Vec<String> = items.iter().map(reference).collect();
                format!("[{}]", items.join(","))
            }
            scalar => scalar.to_string(),
        }
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".*".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                proptest::collection::btree_map(".*", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn canonical_json_is_the_sorted_compact_form(value in arbitrary_json()) {
            proptest::prop_assert_eq!(canonical_json(&value), reference(&value));
        }
    }

    #[test]
    fn fingerprint_reports_canonical_size_and_hash() {
        let fp = fingerprint(&json!({"k": "v"}));
        assert_eq!(fp["byte_size"], json!(9));
        let sha = fp["sha256"].as_str().unwrap();
        assert!(is_sha256_ref(sha));
        assert_eq!(sha, sha256_ref(br#"{"k":"v"}"#));
    }

    #[test]
    fn sha256_ref_shape_is_checked() {
        assert!(!is_sha256_ref("sha256:abc"));
        assert!(!is_sha256_ref(&format!("md5:{}", "0".repeat(64))));
    }
}
