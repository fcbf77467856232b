//! Compact JSON text of a `serde_json::Value`, byte for byte what `serde_json::to_string`
//! writes, but with string contents scanned eight bytes at a time.
//!
//! Every event, output and detail a lane hands the host crosses the boundary as JSON text, so
//! its serialization runs once per stream item. `serde_json` looks up every byte of a string in
//! an escape table; in a guest that byte loop was the largest single cost of streaming large
//! SSE events. Most strings need no escape at all, and a word-at-a-time test finds that out
//! (and finds the next byte that does need one) in an eighth of the steps. Numbers are still
//! written by `serde_json`, so their text cannot drift from its.

use serde_json::Value;

/// Eight copies of `byte` in one word.
const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

const ONES: u64 = splat(0x01);
const HIGHS: u64 = splat(0x80);

/// Whether any byte of `word` is zero (exact for "any"; which byte is left to the byte scan).
const fn any_zero(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGHS != 0
}

/// Whether any byte of `word` needs an escape in a JSON string: a control character (below
/// 0x20), a quote or a backslash.
const fn any_escape(word: u64) -> bool {
    let control = word.wrapping_sub(splat(0x20)) & !word & HIGHS != 0;
    control || any_zero(word ^ splat(b'"')) || any_zero(word ^ splat(b'\\'))
}

/// What `byte` becomes inside a JSON string: `None` when it stays as it is.
fn escape(byte: u8) -> Option<&'static [u8]> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const SHORT: [Option<&[u8]>; 32] = {
        let mut table: [Option<&[u8]>; 32] = [None; 32];
        table[0x08] = Some(b"\\b");
        table[0x09] = Some(b"\\t");
        table[0x0A] = Some(b"\\n");
        table[0x0C] = Some(b"\\f");
        table[0x0D] = Some(b"\\r");
        table
    };
    /// `\u00XX` for every control character without a short escape.
    static UNICODE: [[u8; 6]; 32] = {
        let mut table = [[0u8; 6]; 32];
        let mut byte = 0;
        while byte < 32 {
            table[byte] = [b'\\', b'u', b'0', b'0', HEX[byte >> 4], HEX[byte & 0xF]];
            byte += 1;
        }
        table
    };
    match byte {
        b'"' => Some(b"\\\""),
        b'\\' => Some(b"\\\\"),
        0x00..=0x1F => {
            let index = usize::from(byte);
            SHORT
                .get(index)
                .copied()
                .flatten()
                .or_else(|| UNICODE.get(index).map(<[u8; 6]>::as_slice))
        }
        _ => None,
    }
}

/// Where JSON text goes: written for real, or only measured.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes it would have written.
struct Counter(usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}

/// `text` as a quoted, escaped JSON string.
fn put_str(sink: &mut impl Sink, text: &str) {
    let bytes = text.as_bytes();
    sink.put(b"\"");
    // Bytes before `start` are written; `at` is where the scan is.
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(word) = bytes.get(at..at + 8) {
            let mut chunk = [0u8; 8];
            chunk.copy_from_slice(word);
            if !any_escape(u64::from_ne_bytes(chunk)) {
                at += 8;
                continue;
            }
        }
        // A word with something to escape, or the tail shorter than a word: byte by byte.
        let end = (at + 8).min(bytes.len());
        for index in at..end {
            let Some(byte) = bytes.get(index).copied() else {
                break;
            };
            if let Some(escaped) = escape(byte) {
                sink.put(bytes.get(start..index).unwrap_or_default());
                sink.put(escaped);
                start = index + 1;
            }
        }
        at = end;
    }
    sink.put(bytes.get(start..).unwrap_or_default());
    sink.put(b"\"");
}

fn put_value(sink: &mut impl Sink, value: &Value) {
    match value {
        Value::Null => sink.put(b"null"),
        Value::Bool(true) => sink.put(b"true"),
        Value::Bool(false) => sink.put(b"false"),
        Value::Number(number) => {
            // Short, and serde_json's own digits: one small buffer per number.
            let mut digits = Vec::with_capacity(24);
            if serde_json::to_writer(&mut digits, number).is_ok() {
                sink.put(&digits);
            } else {
                sink.put(b"null");
            }
        }
        Value::String(text) => put_str(sink, text),
        Value::Array(items) => {
            sink.put(b"[");
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    sink.put(b",");
                }
                put_value(sink, item);
            }
            sink.put(b"]");
        }
        Value::Object(map) => put_object(sink, map),
    }
}

fn put_object(sink: &mut impl Sink, map: &serde_json::Map<String, Value>) {
    sink.put(b"{");
    for (index, (key, item)) in map.iter().enumerate() {
        if index > 0 {
            sink.put(b",");
        }
        put_str(sink, key);
        sink.put(b":");
        put_value(sink, item);
    }
    sink.put(b"}");
}

/// The JSON text of `map`, in one allocation of exactly its length (measured first: a buffer
/// that doubles as it fills would briefly need up to three times the text in the lane's linear
/// memory, which for a large output decides whether it fits the lane's memory limit).
pub(crate) fn object_text(map: &serde_json::Map<String, Value>) -> String {
    let mut counter = Counter(0);
    put_object(&mut counter, map);
    let mut bytes = Vec::with_capacity(counter.0);
    put_object(&mut bytes, map);
    // Only whole UTF-8 strings and ASCII were written, so this never fails; `{}` rather than a
    // panic if it ever did.
    String::from_utf8(bytes).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn same_as_serde(value: Value) {
        let mut map = Map::new();
        map.insert("v".to_owned(), value);
        let expected = serde_json::to_string(&map).unwrap();
        let text = object_text(&map);
        assert_eq!(text, expected);
        assert_eq!(text.capacity(), text.len());
    }

    #[test]
    fn every_char_below_0x100_at_every_offset_of_a_word_reads_as_serde_writes_it() {
        for code in 0u32..0x100 {
            let c = char::from_u32(code).unwrap();
            for before in 0..17 {
                for after in [0, 1, 7, 8, 9] {
                    let text = format!("{}{c}{}", "a".repeat(before), "é".repeat(after));
                    same_as_serde(Value::String(text));
                }
            }
        }
    }

    #[test]
    fn runs_of_escapes_and_multibyte_text_read_as_serde_writes_them() {
        for text in [
            "",
            "\"\"\"\"\"\"\"\"\"",
            "\\\\\\\\\\\\\\\\\\\\",
            "\u{0}\u{1}\u{1f}\u{7f}\u{80}",
            "line\r\nbreak\ttab\u{c}\u{8}",
            "日本語のテキスト、そして \"引用\" と \\",
            "\u{10FFFF}\u{FEFF}\u{2028}\u{2029}",
        ] {
            same_as_serde(Value::String(text.to_owned()));
            same_as_serde(Value::String(text.repeat(33)));
        }
    }

    #[test]
    fn nested_values_and_numbers_read_as_serde_writes_them() {
        same_as_serde(json!({
            "n": [0, -1, u64::MAX, i64::MIN, 1.5, -0.0, 1e300, 2.5e-8],
            "b": [true, false, null],
            "o": {"z": {}, "a": [], "k\"ey": "v\nal"},
        }));
    }
}
