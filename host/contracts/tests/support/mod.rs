//! Helpers shared by the contract test suites: table-driven rule checks and the round-trip law.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ep_contracts::Contract;
use proptest::prelude::*;
use serde_json::{Map, Value};

/// One validation rule: its name, how to break a valid fixture, and the exact error it must give.
pub type Row = (&'static str, fn(&mut Value), &'static str);

/// Sets the value at a path of object keys.
pub fn set(v: &mut Value, path: &[&str], new: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().insert((*last).to_owned(), new);
}

/// Removes the key at a path of object keys.
pub fn remove(v: &mut Value, path: &[&str]) {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = v;
    for p in parents {
        cur = cur.get_mut(*p).unwrap();
    }
    cur.as_object_mut().unwrap().remove(*last);
}

/// Runs every row against `base`: each must be refused with exactly its message, naming a
/// field. Reports all mismatches at once.
pub fn run_table<T: Contract>(base: fn() -> Value, rows: &[Row]) {
    assert!(T::from_value(&base()).is_ok(), "{} base fixture", T::NAME);
    let mut failures = Vec::new();
    for (rule, mutate, expected) in rows {
        let mut attrs = base();
        mutate(&mut attrs);
        match T::from_value(&attrs) {
            Ok(_) => failures.push(format!("{rule}: accepted, expected `{expected}`")),
            Err(err) if err.to_string() == *expected => {
                if err.field().is_none() {
                    failures.push(format!("{rule}: error names no field"));
                }
            }
            Err(err) => failures.push(format!("{rule}: got `{err}`, expected `{expected}`")),
        }
    }
    assert!(failures.is_empty(), "{}:\n{}", T::NAME, failures.join("\n"));
}

/// Validates `attrs`, then checks `parse(dump(x)) == x` through both a value and JSON text.
pub fn assert_round_trip<T: Contract>(attrs: &Value) -> T {
    let value = T::from_value(attrs).unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    let dumped = value.to_value();
    assert_eq!(
        dumped["contract_version"],
        Value::String(T::NAME.to_owned())
    );
    assert_eq!(T::from_value(&dumped).unwrap(), value, "{}", T::NAME);
    assert_eq!(
        ep_contracts::parse::<T>(&ep_contracts::dump(&value)).unwrap(),
        value,
        "{}",
        T::NAME
    );
    value
}

/// Non-empty printable text.
pub fn text() -> impl Strategy<Value = String> {
    "\\PC{1,12}"
}

/// Optional non-empty printable text.
pub fn opt_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(text())
}

/// Any JSON value, nested up to three levels.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object of arbitrary values.
pub fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("\\PC{0,8}", json_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}
