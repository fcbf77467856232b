//! Canonical JSON and `sha256:` fingerprints: the one encoding every hash in the project uses.
//!
//! Canonical form: object keys sorted by their UTF-8 bytes, no insignificant whitespace, strings
//! escaped as `serde_json` does, numbers in `serde_json`'s shortest form. Hashes are therefore
//! stable across processes and platforms (upstream hashed Erlang terms; only the `sha256:<hex>`
//! format is shared, not the bytes).

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Writes `value` in canonical form.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
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
