//! Renders JSON values the way error messages show them (`nil` for null, as upstream).

use serde_json::Value;

/// Longest rendering kept in an error message; longer input is cut so errors stay one line and
/// never echo a large (possibly secret) document back.
const MAX_RENDER: usize = 120;

/// Renders `value` for an error message: `null` as `nil`, strings quoted, others as compact JSON.
pub fn inspect(value: &Value) -> String {
    let text = match value {
        Value::Null => "nil".to_owned(),
        other => other.to_string(),
    };
    if text.len() <= MAX_RENDER {
        return text;
    }
    let mut cut = MAX_RENDER;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

/// Renders an optional value, `nil` when absent.
pub fn inspect_opt(value: Option<&Value>) -> String {
    value.map_or_else(|| "nil".to_owned(), inspect)
}
